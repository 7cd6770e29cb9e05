"""Deep-R analyses (Luo et al. 2021, Fig. 2b, 4b, 5, 7, 8, S1c, S5) on tiny settings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from focuskit import ConfigError
from focuskit.focus import fitted_tilt
from focuskit.optics import get_preset
from focuskit.refocus.analyses import (
    PLOTS,
    analyze_bead_fwhm,
    analyze_dpm_uniform,
    analyze_nonuniform_defocus,
    analyze_refocus_quality,
    analyze_tilted_sample,
    analyze_training_range,
    default_shapes,
    image_from_json,
)
from focuskit.report import analysis_table, save_analysis
from focuskit.simulate import defocus_map

torch = pytest.importorskip("torch")

from focuskit.refocus import (  # noqa: E402
    DeepRConfig,
    DeepRGenerator,
    DPMDecoder,
    Refocuser,
)

OPTICS = get_preset("deepr-40x-fluor").optics
PX = OPTICS.pixel_size_um
TINY = (4, 8, 8, 8, 8, 8)


def _generator(identity: bool = False) -> Any:
    torch.manual_seed(0)
    gen = DeepRGenerator(DeepRConfig(channels=TINY, global_residual=True))
    if identity:  # global residual + zero last layer: output = input exactly
        torch.nn.init.zeros_(gen.decoder.out.weight)
        torch.nn.init.zeros_(gen.decoder.out.bias)
    return gen.eval()


class _PlaneDPM(torch.nn.Module):
    """A 'decoder' answering the true map of a tilt along y (centred), whatever the image."""

    def __init__(self, tilt_deg: float) -> None:
        super().__init__()
        self.slope = math.tan(math.radians(tilt_deg)) * PX

    def forward(self, features: list[Any]) -> Any:
        n, _, h, w = features[0].shape
        rows = (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) * self.slope
        return rows.reshape(1, 1, h, 1).expand(n, 1, h, w).contiguous()


def _model(
    *, identity: bool = False, dpm: Any = "decoder", z_range_um: float = 2.0, signed: bool = True
) -> Refocuser:
    gen = _generator(identity)
    head = DPMDecoder(TINY).eval() if dpm == "decoder" else dpm
    return Refocuser(gen, head, optics=OPTICS, z_range_um=z_range_um, dpm_signed=signed)


class _AbsPlaneDPM(_PlaneDPM):
    """The magnitude |z| of the centred tilt: what an unsigned decoder answers at best."""

    def forward(self, features: list[Any]) -> Any:
        return super().forward(features).abs()


def _finite_rows(result: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    for row in result["rows"]:
        for col in result["columns"]:
            v = row.get(col)
            if isinstance(v, (int, float)) and col not in skip:
                assert math.isfinite(v), (col, row)


def _saved(result: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    json_path, png_path = save_analysis(result, tmp_path, PLOTS[result["analysis"]])
    assert json_path.name == f"{result['analysis']}.json" and png_path.stat().st_size > 5000
    assert "|" in analysis_table(result)
    return json.loads(json_path.read_text())


# --------------------------------------------------------------------------- Fig. 2b / 5


def test_refocus_quality_identity_model_and_true_psf_baselines(tmp_path: Path) -> None:
    result = analyze_refocus_quality(
        _model(identity=True),
        samples=("beads",),
        fields_per_sample=1,
        z_um=[-2.0, 0.0, 2.0],
        size=96,
        iterations=30,
    )
    assert result["analysis"] == "refocus-quality"
    assert result["methods"] == ["input", "deep-r", "rl", "landweber"]
    rows = {r["z_um"]: r for r in result["rows"]}
    assert set(rows) == {-2.0, 0.0, 2.0, "|z| ≤ 2"}
    for col in ("ssim_input", "ssim_deepr", "ssim_rl", "ssim_lw", "rmse_input", "rmse_deepr"):
        assert col in result["columns"]
    _finite_rows(result)
    # the in-focus input is the truth itself
    assert rows[0.0]["ssim_input"] == pytest.approx(1.0) and rows[0.0][
        "rmse_input"
    ] == pytest.approx(0.0)
    # an identity generator changes nothing: the same SSIM as its input at every z
    for z in (-2.0, 2.0):
        assert rows[z]["ssim_deepr"] == pytest.approx(rows[z]["ssim_input"], abs=2e-4)
        assert rows[z]["ssim_input"] < 0.8  # defocused beads are really blurred
        # Richardson–Lucy with the true PSF sharpens the defocused beads
        assert rows[z]["ssim_rl"] > rows[z]["ssim_input"] + 0.05
    assert set(result["by_sample"]) == {"beads"}
    montage = result["montage"]
    assert montage is not None and montage["z_um"] == 2.0
    truth = image_from_json(montage["images"]["truth"])
    assert truth.shape == (96, 96) and truth.dtype == np.uint8 and truth.max() > 200
    back = _saved(result, tmp_path)
    assert back["rows"][-1]["z_um"] == "|z| ≤ 2"


def test_refocus_quality_refuses_baselines_for_brightfield() -> None:
    bf = Refocuser(_generator(), optics=get_preset("deepr-20x-bf").optics)
    with pytest.raises(ConfigError, match="baselines=False"):
        analyze_refocus_quality(bf, preset="deepr-20x-bf", size=64, z_um=[1.0])
    with pytest.raises(ConfigError, match="unknown sample"):
        analyze_refocus_quality(_model(), samples=("tissue",), size=64, z_um=[1.0])
    with pytest.raises(ConfigError, match="does not match the model"):  # 40× model, 20× microscope
        analyze_refocus_quality(_model(), preset="deepr-20x-fluor", size=64, z_um=[1.0])


# --------------------------------------------------------------------------- Fig. 4b


def test_bead_fwhm_grows_off_focus_in_the_input(tmp_path: Path) -> None:
    result = analyze_bead_fwhm(
        _model(identity=True), fields=1, z_um=[-1.0, 0.0, 1.0], size=256, density_per_100um2=2.0
    )
    assert result["beads"] >= 4
    rows = {r["z_um"]: r for r in result["rows"]}
    _finite_rows(result)
    focus = result["in_focus_fwhm_um"]
    # 300 nm beads at 40×/0.95, λ 0.584: diffraction limit 0.31 µm, widened by the bead
    assert result["diffraction_fwhm_um"] < focus < 0.5
    assert rows[0.0]["fwhm_input_um"] == pytest.approx(focus, rel=1e-6)
    for z in (-1.0, 1.0):
        assert rows[z]["fwhm_input_um"] > 2 * focus
        assert rows[z]["fwhm_output_um"] == pytest.approx(
            rows[z]["fwhm_input_um"], rel=0.02
        )  # identity model
    assert rows[0.0]["output_to_focus"] == pytest.approx(1.0, abs=0.02)
    assert np.asarray(result["xz"]["input"]).shape == (3, 31)
    _saved(result, tmp_path)


# --------------------------------------------------------------------------- Fig. S1c / 7c


def test_fitted_tilt_of_the_true_plane_is_exact() -> None:
    dz = defocus_map((64, 96), PX, tilt_deg=2.5, tilt_azimuth_deg=30.0)
    tilt, azimuth, rms = fitted_tilt(dz, PX)
    assert (
        tilt == pytest.approx(2.5, abs=1e-4)
        and azimuth == pytest.approx(30.0, abs=1e-3)
        and rms < 1e-5
    )


def test_tilted_sample_with_a_plane_dpm(tmp_path: Path) -> None:
    model = _model(identity=True, dpm=_PlaneDPM(3.0))
    result = analyze_tilted_sample(model, tilt_deg=3.0, size=128)
    assert result["true_tilt_deg"] == pytest.approx(3.0, abs=1e-3)
    first, second = result["rows"]
    assert first["focal_z_um"] == 0.0
    assert second["focal_z_um"] == pytest.approx(-result["defocus_span_um"] / 2, abs=1e-3)
    _finite_rows(result)
    # the DPM's plane gives back the sample's tilt and direction; at focal z = 0 it is the true map
    for row in (first, second):
        assert row["dpm_tilt_deg"] == pytest.approx(3.0, abs=0.01)
        assert row["dpm_azimuth_deg"] == pytest.approx(90.0, abs=0.1)
    assert first["dpm_rmse_um"] < 1e-3
    assert second["dpm_rmse_um"] == pytest.approx(result["defocus_span_um"] / 2, rel=0.02)
    # the identity model has the input's sharpness;
    # the half-defocused plane is less sharp than the centred one
    assert first["beta_output"] == pytest.approx(first["beta_input"], rel=1e-3)
    assert second["beta_input"] < first["beta_input"]
    assert len(result["panels"][0]["beta_input"]) == 128
    _saved(result, tmp_path)


# --------------------------------------------------------------------------- Fig. 8


def test_tilted_sample_with_an_unsigned_dpm_finds_the_tilt_through_focus(tmp_path: Path) -> None:
    """|z| of a sample crossing focus is a V; the analysis fits |plane| and
    scores against |true map|."""
    result = analyze_tilted_sample(
        _model(identity=True, dpm=_AbsPlaneDPM(3.0), signed=False), size=128
    )
    first = result["rows"][0]
    assert first["focal_z_um"] == 0.0
    assert first["dpm_tilt_deg"] == pytest.approx(3.0, abs=0.01)
    assert first["dpm_azimuth_deg"] == pytest.approx(90.0, abs=0.1)
    assert first["dpm_rmse_um"] < 1e-3


def test_default_shapes_span_the_amplitude() -> None:
    for name, spec in default_shapes(512, PX, amplitude_um=4.0).items():
        kw = {k: v for k, v in spec.items() if k != "z_um"}
        m = spec["z_um"] + defocus_map((512, 512), PX, **kw)
        assert float(m.max() - m.min()) == pytest.approx(4.0, rel=0.01), name
        assert abs(float(m.max() + m.min())) < 0.05, name  # centred on focus


def test_nonuniform_defocus(tmp_path: Path) -> None:
    result = analyze_nonuniform_defocus(_model(identity=True), size=96)
    assert [r["shape"] for r in result["rows"]] == ["tilt", "cylinder", "sphere"]
    _finite_rows(result)
    for row in result["rows"]:
        assert row["ssim_output"] == pytest.approx(row["ssim_input"], abs=2e-4)
        assert row["ssim_input"] < 0.95  # really defocused
        assert row["dpm_rmse_um"] is not None and row["dpm_rmse_um"] > 0
    with pytest.raises(ConfigError, match="defines no defocus map"):
        analyze_nonuniform_defocus(_model(), size=64, shapes={"flat": {"z_um": 1.0}})
    _saved(result, tmp_path)


# --------------------------------------------------------------------------- Fig. 7b


def test_dpm_uniform(tmp_path: Path) -> None:
    result = analyze_dpm_uniform(_model(), samples=("cells",), z_um=[-3.0, 0.0, 1.0], size=64)
    rows = [r for r in result["rows"] if isinstance(r["z_um"], float)]
    assert [r["z_um"] for r in rows] == [-3.0, 0.0, 1.0]
    _finite_rows(result)
    for r in rows:  # pooled over pixels: RMSE² = bias² + SD²
        assert r["rmse_um"] ** 2 == pytest.approx(r["bias_um"] ** 2 + r["dpm_sd_um"] ** 2, abs=2e-3)
    # the in-range summary (|z| ≤ 2) pools z = 0 and 1 only
    inside = [r["rmse_um"] for r in rows if abs(r["z_um"]) <= 2]
    assert result["rmse_in_range_um"] == pytest.approx(
        math.sqrt(np.mean(np.square(inside))), abs=2e-3
    )
    _saved(result, tmp_path)
    with pytest.raises(ConfigError, match="no defocus-map decoder"):
        analyze_dpm_uniform(_model(dpm=None), size=64, z_um=[0.0])


# --------------------------------------------------------------------------- Fig. S5


def test_training_range_tiny(tmp_path: Path) -> None:
    result = analyze_training_range(
        ranges_um=(1.0, 2.0),
        fields=2,
        steps=2,
        channels=TINY,
        size=64,
        crop=64,
        batch_size=1,
        z_step_um=1.0,
        eval_z_um=[-2.0, 0.0, 2.0],
        test_fields=1,
    )
    assert result["models"] == ["input", "1um", "2um"]
    assert [r["z_um"] for r in result["rows"]] == [-2.0, 0.0, 2.0, "|z| ≤ 1", "|z| ≤ 2"]
    assert {"ssim_input", "ssim_1um", "ssim_2um", "rmse_2um"} <= set(result["columns"])
    _finite_rows(result, skip=("ssim_input_sd", "ssim_1um_sd", "ssim_2um_sd"))
    assert set(result["training"]) == {"1", "2"}
    assert (
        result["training"]["2"]["pairs"] > result["training"]["1"]["pairs"]
    )  # a wider range: more pairs
    _saved(result, tmp_path)


# --------------------------------------------------------------------------- CLI


def test_cli_dpm_uniform_and_errors(tmp_path: Path) -> None:
    folder = _model().save(tmp_path / "tiny")
    code, out, err = run_cli(
        "evaluate",
        "dpm-uniform",
        "--model",
        folder,
        "--samples",
        "cells",
        "--z-max",
        "1",
        "--size",
        "64",
        "-o",
        tmp_path / "out",
        "--quiet",
    )
    assert code == 0, err
    assert "dpm-uniform" in out and (tmp_path / "out" / "dpm-uniform.png").is_file()
    saved = json.loads((tmp_path / "out" / "dpm-uniform.json").read_text())
    assert [r["z_um"] for r in saved["rows"]][:3] == [-1.0, 0.0, 1.0]
    plain = _model(dpm=None).save(tmp_path / "plain")
    code, _, err = run_cli(
        "evaluate", "dpm-uniform", "--model", plain, "--size", "64", "-o", tmp_path / "x"
    )
    one_line_error(code, err, "decoder")
    code, _, err = run_cli(
        "evaluate", "bead-fwhm", "--model", folder, "--z-step", "0", "-o", tmp_path / "x"
    )
    one_line_error(code, err, "--z-step")
