"""The `focuskit` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from focuskit.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_simulate_then_info_json(tmp_path: Path) -> None:
    out = tmp_path / "s.ome.tif"
    code, _, err = _run(
        "simulate",
        "--preset",
        "fcfnn-20x-led",
        "--sample",
        "cells",
        "--size",
        "64",
        "--z-range",
        "-30",
        "30",
        "--z-step",
        "10",
        "--seed",
        "1",
        "-o",
        str(out),
    )
    assert code == 0, err
    code, stdout, _ = _run("info", str(out), "--json")
    assert code == 0
    info = json.loads(stdout)
    assert info["shape"] == [7, 64, 64]
    assert info["z_um"] == [-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0]
    assert info["pixel_size_um"] == pytest.approx(0.325)
    assert info["dtype"] == "uint16"
    assert info["focus_z_um"] == 0.0
    assert info["optics"]["illumination"] == {"sx": 0.407, "sy": 0.0, "kind": "led"}
    assert info["metadata"]["sample"]["generator"] == "cells"


@pytest.mark.parametrize("suffix", [".ome.zarr", ".npy"])
def test_simulate_writes_every_format(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"s{suffix}"
    code, stdout, err = _run(
        "simulate",
        "--preset",
        "deepr-40x-fluor",
        "--size",
        "48",
        "--z-range",
        "-1",
        "1",
        "--z-step",
        "0.5",
        "--tilt",
        "2",
        "--no-noise",
        "-o",
        str(out),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["dtype"] == "float32" and summary["shape"] == [5, 48, 48]
    assert summary["metadata"]["defocus_map"]["tilt_deg"] == 2.0


def test_simulate_from_a_user_image_never_touches_it(tmp_path: Path) -> None:
    image = tmp_path / "sample.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(image, (rng.random((80, 80)) * 1000).astype(np.uint16))
    before = image.read_bytes()
    out = tmp_path / "stack.ome.tif"
    code, _, err = _run(
        "simulate",
        "--preset",
        "deepr-20x-fluor",
        "--sample-image",
        str(image),
        "--sample-as",
        "fluorescence",
        "--size",
        "64",
        "--z-range",
        "-2",
        "2",
        "--z-step",
        "2",
        "-o",
        str(out),
    )
    assert code == 0, err
    assert image.read_bytes() == before
    # Writing over the input is refused even with --overwrite.
    code, _, err = _run(
        "simulate",
        "--preset",
        "deepr-20x-fluor",
        "--sample-image",
        str(image),
        "--sample-as",
        "fluorescence",
        "--size",
        "32",
        "--z-range",
        "0",
        "0",
        "--z-step",
        "1",
        "-o",
        str(image),
        "--overwrite",
    )
    assert code != 0 and "input" in err
    assert image.read_bytes() == before


@pytest.mark.parametrize(
    "args,needle",
    [
        (["simulate", "--preset", "nope", "-o", "{tmp}/x.ome.tif"], "unknown preset"),
        (
            [
                "simulate",
                "--preset",
                "deepr-40x-fluor",
                "--sample",
                "cells",
                "--size",
                "32",
                "-o",
                "{tmp}/x.ome.tif",
            ],
            "fluorescent sample",
        ),
        (["simulate", "--size", "32", "-o", "{tmp}/x.png"], "unknown file type"),
        (["simulate", "--size", "32", "-o", "{tmp}/missing/x.ome.tif"], "does not exist"),
        (["simulate", "--size", "32", "--z-step", "-1", "-o", "{tmp}/x.ome.tif"], "z step"),
        (["info", "{tmp}/nothing.ome.tif"], "not found"),
    ],
)
def test_bad_input_gives_one_clear_line_and_no_output(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    code, _, err = _run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2
    assert needle in err.lower()
    assert err.strip().count("\n") <= 1  # one line (rich may wrap long lines once)
    assert not any(p.name.startswith("x") for p in tmp_path.iterdir())


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "s.npy"
    args = [
        "simulate",
        "--preset",
        "deepfocus-10x",
        "--size",
        "32",
        "--z-range",
        "0",
        "4",
        "--z-step",
        "2",
        "-o",
        str(out),
    ]
    assert _run(*args)[0] == 0
    first = out.read_bytes()
    code, _, err = _run(*args, "--seed", "5")
    assert code == 2 and "--overwrite" in err
    assert out.read_bytes() == first
    assert _run(*args, "--seed", "5", "--overwrite")[0] == 0
    assert out.read_bytes() != first


def test_info_fills_missing_metadata_from_flags(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((5, 16, 16), np.uint16))
    code, _, err = _run("info", str(plain))
    assert code == 2 and "--pixel-size" in err
    code, stdout, _ = _run(
        "info", str(plain), "--pixel-size", "0.2", "--z-step", "0.5", "--z-start", "-0.5", "--json"
    )
    assert code == 0
    info = json.loads(stdout)
    assert info["z_um"] == [-0.5, 0.0, 0.5, 1.0, 1.5] and info["pixel_size_um"] == 0.2


def test_presets_lists_all_five() -> None:
    code, stdout, _ = _run("presets", "--json")
    assert code == 0
    assert set(json.loads(stdout)) == {
        "fcfnn-20x-led",
        "deepr-40x-fluor",
        "deepr-20x-fluor",
        "deepr-20x-bf",
        "deepfocus-10x",
    }


def test_demo_runs_and_writes_its_files(tmp_path: Path) -> None:
    code, stdout, err = _run("demo", "-o", str(tmp_path / "demo"))
    assert code == 0, err
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {
        "cells_led.ome.tif",
        "cells_led.png",
        "tissue_fluor_tilted.ome.zarr",
        "tissue_brightfield.npy",
        "sample_families.png",
        "slide.ome.zarr",
        "slide_focus_map.png",
    } <= names
    assert "read back identical: True" in " ".join(stdout.split())
    assert "Sample families" in stdout


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("focuskit")
    if not exe.exists():
        pytest.skip("focuskit console script not installed in this environment")
    result = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}
    )
    assert result.returncode == 0 and "simulate" in result.stdout


def _small_stack(tmp_path: Path) -> Path:
    out = tmp_path / "bf.ome.tif"
    code, _, err = _run(
        "simulate",
        "--preset",
        "deepr-20x-fluor",
        "--sample",
        "fluorescent-tissue",
        "--size",
        "64",
        "--z-range",
        "-4",
        "4",
        "--z-step",
        "1",
        "--focus-z",
        "1.0",
        "--seed",
        "2",
        "-o",
        str(out),
    )
    assert code == 0, err
    return out


def test_score_and_find_focus_json(tmp_path: Path) -> None:
    stack = _small_stack(tmp_path)
    code, stdout, _ = _run("score", str(stack), "--measure", "tenengrad", "--json")
    assert code == 0
    scores = json.loads(stdout)
    assert scores["measure"] == "tenengrad" and len(scores["score"]) == len(scores["z_um"]) == 9
    assert scores["z_um"][int(np.argmax(scores["score"]))] == 1.0
    code, stdout, _ = _run(
        "find-focus", str(stack), "--json", "--plot", str(tmp_path / "curve.png")
    )
    assert code == 0
    found = json.loads(stdout)
    assert (
        abs(found["z_focus_um"] - 1.0) <= 0.5
        and found["plane"] == 5
        and 0 < found["confidence"] < 1
    )
    assert (tmp_path / "curve.png").stat().st_size > 1000
    code, stdout, _ = _run("score", str(stack), "--measure", "all", "--json")
    assert code == 0 and len(json.loads(stdout)["score"]) == 13


def test_autofocus_json_on_a_stack_scope(tmp_path: Path) -> None:
    stack = _small_stack(tmp_path)
    # The default range is the stack's height (8 µm) around the start: from −1.5 µm it
    # holds the focus at +1.0 µm.
    code, stdout, err = _run(
        "autofocus",
        "--scope",
        f"stack:{stack}",
        "--method",
        "gss",
        "--start",
        "-1.5",
        "--tolerance",
        "0.2",
        "--json",
    )
    assert code == 0, err
    out = json.loads(stdout)
    # A replayed stack interpolates linearly between its 1 µm planes, so a search can
    # resolve focus only to about a plane.
    assert out["success"] and abs(out["z_final_um"] - 1.0) <= 1.0
    assert out["verified"] and out["peak_in_range"]
    assert out["images"] == len(out["trace"]) and {"z_um", "score"} <= set(out["trace"][0])
    # The last image is the verification at the final position, and its score is score_final.
    assert out["trace"][-1]["z_um"] == out["z_final_um"]
    assert out["trace"][-1]["score"] == out["score_final"]


@pytest.mark.parametrize("method", ["brent", "gss", "scan"])
def test_autofocus_with_focus_outside_the_range_fails_and_says_why(
    tmp_path: Path, method: str
) -> None:
    stack = _small_stack(tmp_path)
    # From −3.5 µm the range (8 µm, clipped to the stack) ends at +0.5 µm: focus (+1.0 µm)
    # lies outside it and the scores rise up to the edge. Before issue 14 the searches
    # reported success here, ending at the edge.
    code, stdout, _ = _run(
        "autofocus", "--scope", f"stack:{stack}", "--method", method, "--start", "-3.5", "--json"
    )
    out = json.loads(stdout)
    assert code == 1 and out["success"] is False and out["peak_in_range"] is False
    assert "outside the range" in out["message"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["autofocus", "--scope", "microscope:1"], "sim:"),
        (["autofocus", "--scope", "sim:deepr-20x-fluor", "--start", "500"], "limits"),
        (
            ["autofocus", "--scope", "sim:deepr-20x-fluor", "--method", "newton"],
            "unknown autofocus method",
        ),
        (["autofocus", "--scope", "sim:deepr-20x-fluor", "--measure", "sharpness"], "unknown"),
    ],
)
def test_autofocus_bad_input(args: list[str], needle: str) -> None:
    code, _, err = _run(*args)
    assert code == 2 and needle in err


def test_models_lists_the_bundled_models_with_their_old_names() -> None:
    from conftest import run_cli

    code, out, err = run_cli("models", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["builtin:refocus-40x-fluor"]["class"] == "Refocuser"
    assert rows["builtin:fewshot-widefield"]["old_name"] == "builtin:blur-cnn"
    code, out, _ = run_cli("models")
    assert code == 0 and "singleshot-20x-led" in out
