"""Every file a command writes follows one rule, checked before any work (issue 17, items 2,
3, 4, 8, 18): inputs are never touched, outputs do not collide, existing files need
--overwrite, unwritable places are one line and exit 2, outputs get umask permissions."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from conftest import one_line_error, run_cli
from PIL import Image

from focuskit.io import FocalStack, atomic_output, write_stack


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def small_stack(seed: int = 0) -> FocalStack:
    rng = np.random.default_rng(seed)
    data = rng.integers(100, 3000, size=(5, 32, 32), dtype=np.uint16)
    return FocalStack(data, np.linspace(-4.0, 4.0, 5), 0.5)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Inputs of every kind, in tmp_path/in."""
    folder = tmp_path / "in"
    folder.mkdir()
    png = folder / "img.png"
    Image.fromarray((np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)).save(png)
    tif = write_stack(small_stack(), folder / "x.ome.tif")
    (folder / "x.json").write_text('{"pixel_size_um": 0.5}')  # x.ome.tif's stem sidecar
    zjson = folder / "z.json"
    zjson.write_text("-4\n-2\n0\n2\n4\n")
    model = folder / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.safetensors").write_bytes(b"")
    return {
        "png": png,
        "tif": tif,
        "zarr": write_stack(small_stack(), folder / "s.ome.zarr"),
        "npy": write_stack(small_stack(), folder / "s.npy"),
        "zjson": zjson,
        "model": model,
        "folder": folder,
    }


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be created in: mode 0555, or immutable when running as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    root = os.geteuid() == 0
    if root:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no folder is unwritable")
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not supported here")
    else:
        folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            pytest.skip("the folder stayed writable")
        yield folder
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        else:
            folder.chmod(0o755)


def _args(template: list[str], paths: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in template]


# --- item 2: inputs are never overwritten ---------------------------------------------------

INPUT_CASES = [
    (["fewshot", "score", "{png}", "--plot", "{png}"], "overwrite an input"),
    (["blur", "score", "{png}", "--plot", "{png}", "--overwrite"], "overwrite an input"),
    (["blur", "score", "{tif}", "--map", "{tif}", "--overwrite"], "overwrite an input"),
    (["refocus", "apply", "{zarr}", "-o", "{zarr}"], "overwrite an input"),
    (["refocus", "apply", "{zarr}", "-o", "{zarr}", "--overwrite"], "overwrite an input"),
    (
        ["refocus", "apply", "{zarr}", "-o", "{zarr}/x.ome.tif", "--overwrite", "--force"],
        "inside",
    ),
    (["refocus", "apply", "{npy}", "-o", "{folder}/s.npy", "--overwrite"], "overwrite an input"),
    (
        ["blur", "calibrate", "{tif}", "--z-file", "{zjson}", "-o", "{zjson}", "--overwrite"],
        "overwrite an input",
    ),
    # x.json is read as x.ome.tif's metadata: a calibration written there would replace it
    (["fewshot", "calibrate", "{tif}", "-o", "{folder}/x.json", "--overwrite"], "input"),
    (["score", "{zarr}", "--plot", "{zarr}/0/p.png", "--overwrite"], "inside"),
    (["find-focus", "{zarr}", "--plot", "{zarr}/p.png"], "inside"),
    (
        ["autofocus", "--method", "singleshot", "--model", "{model}", "--plot", "{model}/t.png"],
        "inside",
    ),
    (["defocus", "train", "-o", "{folder}/m", "--data", "{folder}", "--overwrite"], "inside"),
    (["fewshot", "train", "-o", "{model}", "--init", "{model}", "--overwrite"], "input"),
    (["refocus", "train", "-o", "{folder}/m", "--stack", "{folder}"], "inside"),
]


@pytest.mark.parametrize(("template", "needle"), INPUT_CASES)
def test_inputs_are_never_overwritten_or_written_into(
    files: dict[str, Path], template: list[str], needle: str
) -> None:
    before = snapshot(files["folder"])
    code, _, err = run_cli(*_args(template, files))
    one_line_error(code, err, needle)
    assert snapshot(files["folder"]) == before


# --- item 3: one overwrite rule for every file written --------------------------------------


PLOT_CASES = [
    ["score", "{tif}", "--plot", "{png}"],
    ["find-focus", "{tif}", "--plot", "{png}"],
    ["autofocus", "--scope", "sim:deepfocus-10x", "--plot", "{png}"],
    ["fewshot", "score", "{tif}", "--plot", "{png}"],
    ["fewshot", "calibrate", "{tif}", "-o", "{out}/p.json"],  # the default plot: <out>.png
    ["samples", "--montage", "{png}"],
    ["evaluate", "saliency", "-o", "{out}"],  # <out>/saliency.png
    ["simulate", "--size", "32", "-o", "{out}/p.npy"],  # p.npy.json exists
]


@pytest.mark.parametrize("template", PLOT_CASES)
def test_every_file_written_needs_overwrite(tmp_path: Path, template: list[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    paths = {"tif": write_stack(small_stack(), tmp_path / "x.ome.tif"), "out": out}
    paths["png"] = out / "p.png"
    for name in ["p.png", "saliency.png", "p.npy.json"]:
        (out / name).write_bytes(b"keep me")
    before = snapshot(out)
    code, _, err = run_cli(*_args(template, paths))
    one_line_error(code, err, "already exists", "--overwrite")
    assert snapshot(out) == before  # nothing replaced, nothing else written


def test_a_plot_is_replaced_with_overwrite(tmp_path: Path) -> None:
    tif = write_stack(small_stack(), tmp_path / "x.ome.tif")
    png = tmp_path / "curve.png"
    png.write_bytes(b"old")
    for command in ["score", "find-focus"]:
        code, _, err = run_cli(command, tif, "--plot", png, "--overwrite", "--json")
        assert code == 0, err
        assert png.read_bytes().startswith(b"\x89PNG")
        png.write_bytes(b"old")


# --- item 4: outputs of one command may not collide -----------------------------------------


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_colliding_outputs_are_refused_before_any_work(
    tmp_path: Path, overwrite: list[str]
) -> None:
    tif = write_stack(small_stack(), tmp_path / "x.ome.tif")
    both = tmp_path / "out.ome.tif"
    code, _, err = run_cli("refocus", "apply", tif, "-o", both, "--defocus-map", both, *overwrite)
    one_line_error(code, err, "-o and --defocus-map would both write here")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ome.tif"]


def test_a_model_folder_and_its_checkpoints_may_not_overlap(tmp_path: Path) -> None:
    for command in (["fewshot", "train"], ["refocus", "train"]):
        code, _, err = run_cli(
            *command, "-o", tmp_path / "m", "--checkpoint", tmp_path / "m" / "ckpt"
        )
        one_line_error(code, err, "overlap")
    code, _, err = run_cli(
        "singleshot", "train", "-o", tmp_path / "m", "--checkpoint-dir", tmp_path / "m"
    )
    one_line_error(code, err, "overlap")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_ome_zarr_output_is_replaced_not_written_into(tmp_path: Path) -> None:
    from focuskit.cli._refocus import _targets

    zarr_out = write_stack(small_stack(), tmp_path / "out.ome.zarr")
    assert _targets([tmp_path / "a.tif"], zarr_out, None) == [(zarr_out, None)]
    code, _, err = run_cli("refocus", "apply", tmp_path / "a.tif", "-o", zarr_out)
    one_line_error(code, err, "already exists")


# --- item 8: unwritable places --------------------------------------------------------------

LOCKED_CASES = [
    ["simulate", "--size", "32", "-o", "{locked}/s.ome.tif"],
    ["simulate", "--size", "32", "-o", "{locked}/s.ome.zarr"],
    ["simulate", "--size", "32", "-o", "{locked}/s.npy"],
    ["score", "{tif}", "--plot", "{locked}/p.png"],
    ["find-focus", "{tif}", "--plot", "{locked}/p.png"],
    ["autofocus", "--scope", "sim:deepfocus-10x", "--plot", "{locked}/p.png"],
    ["fewshot", "score", "{tif}", "--plot", "{locked}/p.png"],
    ["fewshot", "calibrate", "{tif}", "-o", "{locked}/c.json"],
    ["refocus", "apply", "{tif}", "-o", "{locked}/r.ome.tif"],
    ["fewshot", "train", "-o", "{locked}/m"],
    ["refocus", "train", "-o", "{locked}/m"],
    ["singleshot", "train", "-o", "{locked}/m", "--simulate", "2"],
    ["singleshot", "train", "-o", "{tmp}/m", "--simulate", "2", "--checkpoint-dir", "{locked}/c"],
    ["evaluate", "saliency", "-o", "{locked}/results"],
    ["evaluate", "fewshot-af", "-o", "{locked}"],
    ["samples", "--montage", "{locked}/zoo.png"],
    ["demo", "-o", "{locked}/demo"],
]


@pytest.mark.parametrize("template", LOCKED_CASES)
def test_an_unwritable_folder_is_one_line_before_any_work(
    tmp_path: Path, locked: Path, monkeypatch: pytest.MonkeyPatch, template: list[str]
) -> None:
    import focuskit.fewshot
    import focuskit.refocus
    import focuskit.singleshot

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained before checking where the model goes")

    for system in (focuskit.fewshot, focuskit.refocus, focuskit.singleshot):
        monkeypatch.setattr(system, "train", no_training)
    paths = {
        "locked": locked,
        "tmp": tmp_path,
        "tif": write_stack(small_stack(), tmp_path / "x.ome.tif"),
    }
    code, _, err = run_cli(*_args(template, paths))
    one_line_error(code, err, "cannot write in", "locked")
    assert list(locked.iterdir()) == []


def test_evaluate_refuses_a_folder_under_a_file_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("a file")
    code, _, err = run_cli("evaluate", "saliency", "-o", tmp_path / "results" / "sub")
    one_line_error(code, err, "is a file, not a folder")


# --- what an interrupted command says; permissions ------------------------------------------


def test_an_interrupted_command_names_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from focuskit.cli._common import friendly_errors

    def writes_then_interrupted() -> None:
        with atomic_output(tmp_path / "first.png", overwrite=False) as tmp:
            tmp.write_bytes(b"png")
        raise KeyboardInterrupt

    def interrupted_at_once() -> None:
        raise KeyboardInterrupt

    for func, expected in [
        (writes_then_interrupted, f"interrupted after writing {tmp_path / 'first.png'}"),
        (interrupted_at_once, "interrupted; nothing was written"),
    ]:
        with pytest.raises(typer.Exit) as stopped:
            friendly_errors(func)()
        assert stopped.value.exit_code == 2
        assert expected in " ".join(capsys.readouterr().err.split())


def test_simulated_stacks_get_the_users_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        for name in ["s.ome.tif", "s.npy"]:
            code, _, err = run_cli("simulate", "--size", "32", "-o", tmp_path / name)
            assert code == 0, err
    finally:
        os.umask(old)
    for name in ["s.ome.tif", "s.npy", "s.npy.json"]:
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name
