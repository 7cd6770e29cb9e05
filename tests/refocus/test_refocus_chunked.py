"""Deep-R on whole slides, block by block: the same pixels as in memory (no seams), a
killed run resumed to the same result, bad input refused by name.

A tiny *random* generator (not the identity model of test_refocus_cli.py): its output
depends on each tile's context, so a block cut differently from the in-memory tile grid
would show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_cli
from scipy.ndimage import gaussian_filter

from focuskit.io import FocalStack, compute_context, read_stack, write_stack
from focuskit.optics import get_preset

pytest.importorskip("torch")
da = pytest.importorskip("dask.array")

from focuskit.refocus import DeepRConfig, DeepRGenerator, Refocuser, refocus_lazy  # noqa: E402

FLUOR = get_preset("deepr-40x-fluor").optics
TINY = DeepRConfig(channels=(4, 8, 8, 8, 8, 8))
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny-random"
    Refocuser(DeepRGenerator(TINY).eval(), optics=FLUOR, z_range_um=5.0).save(path)
    return path


def _slide(shape: tuple[int, int], seed: int = 1) -> np.ndarray:
    field = gaussian_filter(np.random.default_rng(seed).random(shape), 2)
    return (field / field.max() * 40000).astype(np.uint16)


def _slide_file(folder: Path, shape: tuple[int, int], seed: int = 1) -> Path:
    path = folder / "slide.ome.zarr"
    write_stack(FocalStack(_slide(shape, seed)[None], [0.0], FLUOR.pixel_size_um, FLUOR), path)
    return path


def test_blocks_give_the_in_memory_pixels_with_no_seams(random_model: Path) -> None:
    image = _slide((330, 420))
    memory = Refocuser.load(random_model, num_threads=1).refocus(image, tile=64)
    # Blocks of 128 cut tiles of 64 (stride 48) anywhere; 330 = 2·128 + 74 and
    # 420 = 3·128 + 36: a short remainder (36 < 64) joins the block before it.
    with compute_context(2, None):
        lazy = refocus_lazy(
            da.from_array(image[None], chunks=(1, 100, 100)), str(random_model), tile=64, block=128
        )
        assert lazy.chunks[1:] == ((128, 128, 74), (128, 128, 164))
        blocks = lazy.compute()[0]
    scale = float(np.abs(memory).max())
    assert float(np.abs(blocks - memory).max()) / scale <= 1e-5
    # The test can fail: blocks tiled on their own grid (not the image's) differ.
    own = np.concatenate(
        [
            Refocuser.load(random_model, num_threads=1).refocus(image[:, :256], tile=64),
            Refocuser.load(random_model, num_threads=1).refocus(image[:, 256:], tile=64),
        ],
        axis=1,
    )
    assert float(np.abs(own - memory).max()) / scale > 1e-3


def test_refocus_lazy_refuses_a_constant_plane_and_an_image_smaller_than_a_tile(
    random_model: Path,
) -> None:
    from focuskit._errors import ConfigError

    flat = da.from_array(np.full((1, 200, 200), 7, dtype=np.uint16), chunks=(1, 100, 100))
    with pytest.raises(ConfigError, match="plane 0 is constant"):
        refocus_lazy(flat, str(random_model), tile=64, block=128)
    small = da.from_array(_slide((40, 200))[None], chunks=(1, 40, 100))
    with pytest.raises(ConfigError, match="smaller than one 64-pixel tile"):
        refocus_lazy(small, str(random_model), tile=64, block=128)


def _cli(*args: object) -> list[str]:
    code = "import sys; from focuskit.cli import main; sys.argv[0] = 'focuskit'; main()"
    return [sys.executable, "-c", code, *(str(a) for a in args)]


def test_a_killed_run_resumed_gives_the_uninterrupted_result(
    random_model: Path, tmp_path: Path
) -> None:
    slide = _slide_file(tmp_path, (512, 512))
    args = ["refocus", "apply", slide, "--model", random_model, "--tile", "64", "--block", "128"]
    whole = tmp_path / "whole.ome.zarr"
    code, _, err = run_cli(*args, "-o", whole, "--workers", "1", "--json")
    assert code == 0, err
    out = tmp_path / "killed.ome.zarr"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        _cli(*args, "-o", out, "--workers", "1"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    progress = out / "focuskit-progress"
    deadline = time.monotonic() + 300  # a busy machine starts torch slowly
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if progress.is_dir() and len(list(progress.iterdir())) >= 4:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    marked = {p.name for p in progress.iterdir()}
    stored = {p.relative_to(out / "0").as_posix() for p in (out / "0").rglob("*") if p.is_file()}
    stored -= {".zarray", ".zattrs"}
    assert 4 <= len(marked) < 16
    # Blocks written but not yet marked done were in flight: at most one worker's worth.
    assert len(stored) - len(marked) <= 1
    code, _, err = run_cli("info", out)
    one_line_error(code, err, "incomplete", "--resume")
    code, stdout, err = run_cli(*args, "-o", out, "--resume", "--workers", "2", "--json")
    assert code == 0, err
    chunked = json.loads(stdout)["images"][0]["chunked"]
    assert chunked["skipped"] == len(marked)
    assert chunked["written"] == 16 - len(marked)
    np.testing.assert_array_equal(read_stack(out).data, read_stack(whole).data)
    assert not progress.exists()


def test_missing_and_corrupt_slide_chunks_are_named_in_one_line(
    random_model: Path, tmp_path: Path
) -> None:
    slide = _slide_file(tmp_path, (1100, 300))
    args = ["refocus", "apply", slide, "--model", random_model, "--tile", "64", "--chunked"]
    chunk = slide / "0" / "0" / "1" / "0"
    data = chunk.read_bytes()
    chunk.unlink()
    out = tmp_path / "out.ome.zarr"
    code, _, err = run_cli(*args, "-o", out)
    one_line_error(code, err, "chunk 0/0/1/0 is missing")
    assert not out.exists()
    chunk.write_bytes(data[: len(data) // 2])  # truncated
    # Found by the statistics pass (each plane's mean and SD), before any output exists.
    code, _, err = run_cli(*args, "-o", out, "--block", "256", "--workers", "1")
    one_line_error(code, err, "chunk 0/0/1/0: cannot read its pixels")
    assert not out.exists()
    chunk.write_bytes(data)
    code, _, err = run_cli(*args, "-o", out, "--block", "256")
    assert code == 0, err
    assert read_stack(out).shape == (1, 1100, 300)


def test_chunk_wise_refuses_a_tiff_output_several_inputs_and_resume_with_overwrite(
    random_model: Path, tmp_path: Path
) -> None:
    slide = _slide_file(tmp_path, (200, 200))
    args = ["refocus", "apply", slide, "--model", random_model, "--tile", "64"]
    code, _, err = run_cli(*args, "-o", tmp_path / "out.ome.tif", "--chunked")
    one_line_error(code, err, "writes OME-Zarr")
    code, _, err = run_cli(*args, slide, "-o", tmp_path, "--workers", "2")
    one_line_error(code, err, "one image at a time")
    code, _, err = run_cli(*args, "-o", tmp_path / "o.ome.zarr", "--resume", "--overwrite")
    one_line_error(code, err, "--resume", "--overwrite")
    code, _, err = run_cli(*args, "-o", slide, "--chunked", "--overwrite")
    one_line_error(code, err, "input of this command")


def test_apply_on_a_distributed_cluster_loads_the_model_once_per_worker(
    random_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    from focuskit.refocus import _chunked

    monkeypatch.setattr(_chunked, "_MODELS", {})
    loads: list[str] = []
    load = Refocuser.load.__func__  # type: ignore[attr-defined]

    def counting(cls: type, spec: str, **options: object) -> Refocuser:
        loads.append(str(spec))
        return load(cls, spec, **options)

    monkeypatch.setattr(Refocuser, "load", classmethod(counting))
    slide = _slide_file(tmp_path, (320, 320))
    out = tmp_path / "out.ome.zarr"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        code, stdout, err = run_cli(
            "refocus", "apply", slide, "-o", out, "--model", random_model, "--tile", "64",
            "--block", "64", "--scheduler", cluster.scheduler_address, "--json",
        )  # fmt: skip
    assert code == 0, err
    chunked = json.loads(stdout)["images"][0]["chunked"]
    assert chunked["written"] == 25 and chunked["workers"] == 2
    # In-process workers share this process: one load for 25 blocks (the CLI's own included).
    assert loads == [str(random_model)]
    memory = Refocuser.load(random_model, num_threads=1).refocus(_slide((320, 320)), tile=64)
    got = read_stack(out).data[0]
    assert float(np.abs(got - memory).max() / np.abs(memory).max()) <= 1e-5


def test_an_interrupted_run_says_the_output_is_incomplete_and_how_to_finish(
    random_model: Path, tmp_path: Path
) -> None:
    slide = _slide_file(tmp_path, (512, 512))
    out = tmp_path / "out.ome.zarr"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        _cli(
            "refocus",
            "apply",
            slide,
            "-o",
            out,
            "--model",
            random_model,
            "--tile",
            "64",
            "--block",
            "64",
            "--workers",
            "1",
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT deliverable even if the test runner was started with it ignored (a
        # background job of a shell without job control passes SIG_IGN on to children).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    progress = out / "focuskit-progress"
    deadline = time.monotonic() + 300  # a busy machine starts torch slowly
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.is_dir() and len(list(progress.iterdir())) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    assert len(list(progress.iterdir())) >= 2, "no block was written in time"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    text = " ".join(lines)
    assert text.startswith("error:") and "Traceback" not in err
    assert "interrupted" in text and "incomplete" in text and "--resume" in text
    code, _, err = run_cli("info", out)
    one_line_error(code, err, "incomplete")
