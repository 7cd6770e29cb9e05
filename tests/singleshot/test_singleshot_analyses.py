"""`focuskit evaluate`: Pinkard et al.'s analyses, on tiny configurations."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from focuskit.optics import LED, LEDPattern, get_preset, image_stack
from focuskit.report import analysis_table, save_analysis
from focuskit.singleshot.analyses import (
    PLOTS,
    Setup,
    analyze_generalization,
    analyze_led_angle,
    analyze_magnitude_vs_phase,
    analyze_saliency,
    analyze_training_size,
    field_specs,
    field_transmittance,
    led_region,
    render_led_images,
    synthesize_led_pattern,
)

TINY = Setup(tile=128, z_step_um=5.0, width=16, depth=2, steps=100, seed=3, repeats=1)
COMMON_KEYS = {"analysis", "figure", "note", "config", "columns", "rows", "seconds"}


def _finite_rows(result: dict, keys: list[str]) -> None:
    assert set(result) >= COMMON_KEYS
    assert "scaled-down" in result["note"]
    assert result["rows"]
    for row in result["rows"]:
        assert set(result["columns"]) <= set(row)
        for k in keys:
            assert math.isfinite(row[k]), (k, row)
    json.dumps(result)  # JSON-able as returned
    table = analysis_table(result)
    assert table.count("\n") == len(result["rows"]) + 1


def test_training_size_with_repeats() -> None:
    r = analyze_training_size(
        replace(TINY, repeats=2), field_counts=(1, 2), val_fields=1, test_fields=1
    )
    assert r["analysis"] == "training-size"
    assert [row["train_fields"] for row in r["rows"]] == [1, 2]
    assert r["rows"][1]["train_examples"] == 2 * r["rows"][0]["train_examples"]
    _finite_rows(r, ["test_rmse_um", "test_rmse_sd_um", "train_rmse_um", "test_p90_abs_um"])
    assert all(row["test_rmse_sd_um"] >= 0 for row in r["rows"]) and "trained 2×" in r["note"]


def test_generalization_reports_before_and_after() -> None:
    r = analyze_generalization(
        TINY,
        train_fields=2,
        target="dense-cells",
        finetune_fields=1,
        val_fields=1,
        test_fields=1,
        finetune_steps=50,
    )
    assert r["analysis"] == "generalization"
    assert {
        (row["model"].split(" ")[0] + row["model"].split(" ")[1], row["test_sample"])
        for row in r["rows"]
    } == {
        ("cellsonly", "cells"),
        ("cellsonly", "dense-cells"),
        ("cells+", "cells"),
        ("cells+", "dense-cells"),
    }
    _finite_rows(r, ["rmse_um", "p90_abs_um"])
    assert len(r["scatter"]["after"]["dense-cells"]) == len(r["scatter"]["target_z"])


def test_magnitude_vs_phase() -> None:
    r = analyze_magnitude_vs_phase(TINY, train_fields=2, val_fields=1, test_fields=1)
    assert [row["input"] for row in r["rows"]] == ["FFT magnitude", "FFT phase"]
    _finite_rows(r, ["train_rmse_um", "test_rmse_um"])


def test_saliency_map_lives_on_the_feature_cells() -> None:
    r = analyze_saliency(TINY, train_fields=2, val_fields=1, test_fields=1, full_plane=False)
    region = TINY.region()
    sal = np.asarray(r["saliency"])
    assert sal.shape == region.binned_shape
    mask = region.mask()
    assert np.all(sal[~mask] == 0) and np.all(np.asarray(r["saliency_raw"])[~mask] == 0)
    assert np.all(np.isfinite(sal)) and sal[mask].sum() > 0
    _finite_rows(r, ["share_in_discs", "share_in_rims", "share_in_overlap"])
    assert r["rows"][0]["share_in_discs"] == pytest.approx(1.0)  # two-disc input: all of it inside


def test_led_angle_sweep_and_pattern() -> None:
    r = analyze_led_angle(
        TINY,
        train_fields=2,
        val_fields=1,
        test_fields=1,
        angles=(0.3, 0.6),
        patterns={"line": ((0.2, 0.0), (0.3, 0.0))},
    )
    names = [row["illumination"] for row in r["rows"]]
    assert names == ["single sx 0.3", "single sx 0.6", "pattern: line"]
    assert [row["darkfield"] for row in r["rows"]] == [False, True, False]
    _finite_rows(r, ["test_rmse_um", "features"])


def test_led_region_union_and_darkfield() -> None:
    optics = get_preset("fcfnn-20x-led").optics
    one = led_region(optics, 128, [(0.3, 0.0)]).mask()
    line = led_region(optics, 128, [(0.2, 0.0), (0.3, 0.0)]).mask()
    assert np.all(line >= one) and line.sum() > one.sum()
    # The single-LED region is the package's own FourierRegion mask.
    from focuskit.singleshot import FourierRegion

    base = FourierRegion(
        tile=128,
        pixel_size_um=optics.pixel_size_um,
        na=optics.na,
        wavelength_um=optics.wavelength_um,
        sx=0.3,
        sy=0.0,
        bin=4,
    )
    assert np.array_equal(led_region(optics, 128, [(0.3, 0.0)]).mask(), base.mask())
    dark = led_region(optics, 128, [(0.6, 0.0)])
    fy, fx = dark.frequencies()
    assert np.array_equal(dark.mask(), fx**2 + fy**2 <= (2 * optics.na / optics.wavelength_um) ** 2)
    assert led_region(optics, 128, full_plane=True).mask().all()


def test_summed_single_led_images_equal_the_led_pattern_render() -> None:
    optics = get_preset("fcfnn-20x-led").optics
    spec = field_specs(1, seed=5)[0]
    leds = [(0.2, 0.0), (0.3, 0.05), (0.45, 0.0)]
    weights = [1.0, 0.5, 2.0]
    z = np.array([-10.0, 0.0, 7.0]) + spec.focus_um
    singles = render_led_images(spec, optics, leds, z, size=64)
    values, dx, defocus, crop = field_transmittance(spec, optics, leds, z, 64, 1, None)
    pattern = LEDPattern(tuple((sx, sy, w) for (sx, sy), w in zip(leds, weights, strict=True)))
    reference = image_stack(
        values, optics.with_illumination(pattern), defocus, pixel_size_um=dx, crop=crop
    )
    synthesized = synthesize_led_pattern(singles, weights) / sum(weights)
    np.testing.assert_allclose(synthesized, reference, rtol=1e-4, atol=1e-6)
    # and each single image is the one-LED render of the same sample
    one = image_stack(
        values, optics.with_illumination(LED(*leds[1])), defocus, pixel_size_um=dx, crop=crop
    )
    np.testing.assert_allclose(singles[1], one, rtol=1e-5, atol=1e-7)


def test_save_analysis_writes_png_and_json(tmp_path: Path) -> None:
    r = analyze_training_size(TINY, field_counts=(1,), val_fields=1, test_fields=1)
    json_path, png_path = save_analysis(r, tmp_path / "new", PLOTS[r["analysis"]])
    assert json.loads(json_path.read_text())["rows"] == r["rows"]
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


runner = CliRunner()
CLI_TINY = [
    "--tile",
    "128",
    "--z-step",
    "5",
    "--width",
    "16",
    "--depth",
    "2",
    "--steps",
    "100",
    "--seed",
    "3",
    "--repeats",
    "1",
    "-q",
]


@pytest.mark.parametrize(
    "command, extra",
    [
        ("training-size", ["--fields", "2", "--test-fields", "1"]),
        (
            "generalization",
            [
                "--fields",
                "2",
                "--target",
                "dense-cells",
                "--finetune-fields",
                "1",
                "--test-fields",
                "1",
            ],
        ),
        ("magnitude-vs-phase", ["--fields", "2", "--test-fields", "1"]),
        ("saliency", ["--fields", "2", "--test-fields", "1", "--discs"]),
        (
            "led-angle",
            ["--fields", "2", "--test-fields", "1", "--angles", "0.3,0.6", "--no-patterns"],
        ),
    ],
)
def test_cli_writes_png_and_json(tmp_path: Path, command: str, extra: list[str]) -> None:
    from focuskit.cli import app

    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", command, "-o", str(out), *CLI_TINY, *extra])
    assert result.exit_code == 0, result.output
    data = json.loads((out / f"{command}.json").read_text())
    assert data["analysis"] == command
    assert (out / f"{command}.png").stat().st_size > 1000
    assert "| " in result.stdout and "scaled-down" in result.stdout


def test_cli_bad_input_is_one_line_error(tmp_path: Path) -> None:
    from focuskit.cli import app

    result = runner.invoke(
        app, ["evaluate", "led-angle", "-o", str(tmp_path), "--angles", "0.3,abc"]
    )
    assert result.exit_code == 2
    assert "--angles" in result.stderr
    assert not list(tmp_path.iterdir())
