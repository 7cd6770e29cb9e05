"""Thin-sample generators: reproducibility, validation, physics of each sample kind."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from focuskit import ConfigError
from focuskit.simulate import (
    SAMPLE_GENERATORS,
    Sample,
    beads,
    cells,
    fluorescent_tissue,
    from_image,
    load_sample_image,
    make_sample,
    tissue,
)

NAMES = ["beads", "cells", "tissue", "fluorescent-tissue"]


def _phase(sample: Sample) -> np.ndarray:
    """Unwrapped-enough phase of a transmittance whose phase lies in (−π/2, 2π)."""
    ph = np.angle(sample.values).astype(np.float64)
    return np.where(ph < -np.pi / 2, ph + 2 * np.pi, ph)


# --------------------------------------------------------------------------- all generators


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_sample_different_seed_different(name: str) -> None:
    a = make_sample(name, (96, 128), 0.325, seed=7)
    b = make_sample(name, (96, 128), 0.325, seed=7)
    c = make_sample(name, (96, 128), 0.325, seed=8)
    assert a.values.shape == (96, 128)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    assert a.description == b.description


@pytest.mark.parametrize("name", NAMES)
def test_generators_return_valid_described_samples(name: str) -> None:
    s = make_sample(name, (64, 80), 0.5, seed=3)
    want = "fluorescence" if name in ("beads", "fluorescent-tissue") else "transmittance"
    assert s.kind == want
    assert s.values.dtype == (np.float32 if want == "fluorescence" else np.complex64)
    assert s.pixel_size_um == 0.5
    assert s.extent_um == (32.0, 40.0)
    desc = json.loads(json.dumps(s.description))
    assert desc["generator"] == name and desc["seed"] == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (64,), "pixel_size_um": 0.3},
        {"shape": (2, 64), "pixel_size_um": 0.3},
        {"shape": (64, 64), "pixel_size_um": 0.0},
        {"shape": (64, 64), "pixel_size_um": float("nan")},
        {"shape": (64, 64), "pixel_size_um": 0.3, "seed": -1},
        {"shape": (64, 64), "pixel_size_um": 0.3, "seed": 1.5},
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_common_parameters_raise_config_error(name: str, kwargs: dict) -> None:
    kwargs = dict(kwargs)
    with pytest.raises(ConfigError):
        SAMPLE_GENERATORS[name](kwargs.pop("shape"), kwargs.pop("pixel_size_um"), **kwargs)


# --------------------------------------------------------------------------- Sample


def test_sample_accepts_valid_values() -> None:
    t = np.full((4, 5), np.exp(0.5j), np.complex64) * np.float32(1 + 5e-7)
    Sample("transmittance", t, 0.1, {"generator": "x"})
    Sample("fluorescence", np.zeros((4, 5), np.float32), 0.1)


@pytest.mark.parametrize(
    "kind, values, px, desc",
    [
        ("phase", np.ones((4, 4), np.complex64), 0.1, {}),
        ("transmittance", np.ones((2, 4, 4), np.complex64), 0.1, {}),
        ("transmittance", np.ones((4, 4), np.complex128), 0.1, {}),
        ("transmittance", np.full((4, 4), 1.01, np.complex64), 0.1, {}),
        ("transmittance", np.full((4, 4), np.nan, np.complex64), 0.1, {}),
        ("fluorescence", np.ones((4, 4), np.float64), 0.1, {}),
        ("fluorescence", -np.ones((4, 4), np.float32), 0.1, {}),
        ("fluorescence", np.full((4, 4), np.inf, np.float32), 0.1, {}),
        ("fluorescence", [[1.0, 2.0]], 0.1, {}),
        ("fluorescence", np.ones((4, 4), np.float32), -0.1, {}),
        ("fluorescence", np.ones((4, 4), np.float32), 0.1, {"a": np.ones(2)}),
        ("fluorescence", np.ones((4, 4), np.float32), 0.1, "beads"),
    ],
)
def test_sample_rejects_bad_values(kind, values, px, desc) -> None:
    with pytest.raises(ConfigError):
        Sample(kind, values, px, desc)


# --------------------------------------------------------------------------- beads


def test_beads_count_matches_density_and_signal_scales_with_count() -> None:
    shape, px, density = (512, 512), 0.325, 0.5
    expected = density * (shape[0] * px) * (shape[1] * px) / 100  # ≈ 138
    s = beads(shape, px, density_per_100um2=density, seed=11)
    img = s.values
    peaks = (ndimage.maximum_filter(img, size=3, mode="wrap") == img) & (img > 0.2)
    assert abs(int(peaks.sum()) - expected) <= 4 * math.sqrt(expected)
    n = s.description["n_beads"]
    assert abs(int(peaks.sum()) - n) <= 2  # only chance neighbours merge
    # Each sub-resolution bead (0.1 µm ≪ 0.325 µm pixel) emits `brightness` in total.
    assert img.sum() == pytest.approx(n * 1.0, rel=1e-5)
    dense = beads(shape, px, density_per_100um2=4 * density, brightness=2.0, seed=11)
    assert dense.values.sum() == pytest.approx(2.0 * dense.description["n_beads"], rel=1e-5)
    assert dense.description["n_beads"] / n == pytest.approx(4, rel=0.3)


def test_resolved_bead_is_a_sphere_projection_with_signal_by_volume() -> None:
    # 1 µm beads at 0.05 µm pixels: 20 px across; sphere projection ⟨r²⟩ = 2R²/5.
    d, px = 1.0, 0.05
    s = beads((256, 256), px, density_per_100um2=3.0, diameter_um=d, seed=2)
    n = s.description["n_beads"]
    assert n >= 3
    assert s.values.sum() == pytest.approx(n * (d / 0.1) ** 3, rel=1e-4)
    lab, k = ndimage.label(s.values > 0)
    sizes = ndimage.sum(np.ones_like(s.values), lab, np.arange(1, k + 1))
    single = int(np.argmin(np.abs(sizes - np.pi * (d / 2 / px) ** 2))) + 1
    yy, xx = np.nonzero(lab == single)
    w = s.values[yy, xx].astype(np.float64)
    cy, cx = np.average(yy, weights=w), np.average(xx, weights=w)
    r2 = np.average((yy - cy) ** 2 + (xx - cx) ** 2, weights=w) * px**2
    assert r2 == pytest.approx(0.4 * (d / 2) ** 2, rel=0.05)
    assert w.sum() == pytest.approx((d / 0.1) ** 3, rel=1e-4)


def test_beads_as_absorbers() -> None:
    s = beads((128, 128), 0.2, density_per_100um2=20, brightness=0.5, as_="absorption", seed=1)
    assert s.kind == "transmittance"
    amp = np.abs(s.values)
    assert amp.min() >= math.sqrt(0.1) - 1e-6 and amp.max() <= 1 + 1e-6
    assert amp.min() < 0.95  # beads absorb
    assert np.all(np.angle(s.values) == 0)
    with pytest.raises(ConfigError):
        beads((64, 64), 0.2, as_="phase")


# --------------------------------------------------------------------------- cells


def test_cells_are_nearly_pure_phase_objects_with_realistic_phase() -> None:
    s = cells((512, 512), 0.325, density=0.3, seed=4)
    amp = np.abs(s.values)
    assert amp.max() <= 1 + 1e-6
    assert amp.min() > 0.9 and amp.mean() > 0.98
    phase = _phase(s)
    # |t|² = exp(−absorption·φ) ties amplitude to phase, and proves φ did not wrap.
    np.testing.assert_allclose(phase, -2 * np.log(amp.astype(np.float64)) / 0.02, atol=0.02)
    lab, k = ndimage.label(phase > 0.05)
    assert k >= 20
    peaks = np.asarray(ndimage.maximum(phase, lab, np.arange(1, k + 1)))
    sizes = np.asarray(ndimage.sum(np.ones_like(phase), lab, np.arange(1, k + 1)))
    peaks = peaks[sizes * 0.325**2 > 30]  # whole cells, not slivers cut by others
    assert 1.0 <= np.median(peaks) <= 3.2
    assert peaks.min() > 0.7 and peaks.max() < 5.0
    assert np.all(phase > -1e-4)


def test_cell_phase_scales_inversely_with_wavelength() -> None:
    green = cells((128, 128), 0.325, wavelength_um=0.53, seed=5, absorption=0)
    red = cells((128, 128), 0.325, wavelength_um=1.06, seed=5, absorption=0)
    np.testing.assert_allclose(_phase(green), 2 * _phase(red), atol=2e-5)
    np.testing.assert_allclose(np.abs(green.values), 1, atol=1e-6)


def test_cell_coverage_follows_density() -> None:
    covered = [
        float((_phase(cells((256, 256), 0.5, density=d, seed=2)) > 0.02).mean())
        for d in (0.05, 0.15, 0.3, 0.6)
    ]
    assert covered == sorted(covered) and covered[-1] > 3 * covered[0]
    for d, c in zip((0.05, 0.15, 0.3, 0.6), covered, strict=True):
        assert c == pytest.approx(d, abs=0.08 + 0.2 * d)


def test_cells_keep_physical_scale_when_pixels_shrink() -> None:
    coarse = cells((256, 256), 0.5, density=0.15, seed=9)
    fine = cells((512, 512), 0.25, density=0.15, seed=9)

    def mean_cell_area_um2(s: Sample) -> tuple[float, int]:
        mask = _phase(s) > 0.02
        _, k = ndimage.label(mask)
        return float(mask.sum()) * s.pixel_size_um**2 / k, k

    a_coarse, k_coarse = mean_cell_area_um2(coarse)
    a_fine, k_fine = mean_cell_area_um2(fine)
    assert a_fine == pytest.approx(a_coarse, rel=0.2)
    assert 50 < a_fine < 320  # (8–20 µm cells: π·d²/4 ≈ 50–310 µm²)
    assert k_fine == k_coarse
    assert _phase(fine).max() == pytest.approx(_phase(coarse).max(), rel=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"density": 1.2},
        {"density": -0.1},
        {"diameter_um": (20, 8)},
        {"wavelength_um": 0},
        {"absorption": -1},
    ],
)
def test_cells_reject_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        cells((64, 64), 0.3, **kwargs)


# --------------------------------------------------------------------------- tissue


def test_tissue_is_an_absorber_with_nuclei_and_bright_gaps() -> None:
    s = tissue((512, 512), 0.5, seed=1)
    intensity = np.abs(s.values).astype(np.float64) ** 2
    assert intensity.min() >= 0.1 - 1e-5 and intensity.max() <= 1 + 1e-5
    assert np.abs(np.angle(s.values)).max() < 0.2
    assert np.percentile(intensity, 2) < 0.45  # dark nuclei
    assert np.percentile(intensity, 99) > 0.9  # lumens, tears
    pure = tissue((512, 512), 0.5, seed=1, index_contrast=0.0)
    assert np.all(np.angle(pure.values) == 0)
    np.testing.assert_allclose(np.abs(pure.values), np.abs(s.values), atol=1e-6)
    pale = tissue((512, 512), 0.5, seed=1, stain_strength=0.3)
    assert (np.abs(pale.values) ** 2).mean() > intensity.mean() + 0.1
    with pytest.raises(ConfigError):
        tissue((64, 64), 0.5, stain_strength=1.5)


# --------------------------------------------------------------------------- fluorescence


def test_fluorescent_tissue_is_a_non_negative_map_with_max_one() -> None:
    s = fluorescent_tissue((384, 384), 0.25, seed=2)
    v = s.values
    assert v.min() >= 0 and v.max() == pytest.approx(1.0, rel=1e-6)
    # Autofluorescence background ~1:50 below the brightest structures.
    assert 0.003 < np.percentile(v, 1) < 0.05
    assert np.percentile(v, 50) > 2 * np.percentile(v, 1)  # cells fill much of the field
    assert s.description["n_filaments"] > 0 and s.description["n_puncta"] > 0


# --------------------------------------------------------------------------- user images

IMG = np.array([[0.0, 1.0], [2.0, 4.0]])
SCALED = np.array([[0.0, 0.25], [0.5, 1.0]])


def test_from_image_phase_absorption_fluorescence_formulas() -> None:
    ph = from_image(IMG, 0.2, as_="phase", strength=2.0)
    np.testing.assert_allclose(ph.values, np.exp(2j * SCALED), atol=1e-6)
    ab = from_image(IMG, 0.2, as_="absorption", strength=0.5)
    np.testing.assert_allclose(ab.values, np.sqrt(1 - 0.5 * SCALED), atol=1e-6)
    assert ab.values.dtype == np.complex64 and np.all(ab.values.imag == 0)
    fl = from_image(IMG, 0.2, as_="fluorescence", strength=3.0)
    np.testing.assert_allclose(fl.values, 3 * SCALED, atol=1e-6)
    assert fl.kind == "fluorescence" and fl.values.dtype == np.float32
    assert ph.description == {"generator": "from_image", "as_": "phase", "strength": 2.0}


def test_from_image_rgb_is_converted_to_luminance() -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1, :] = 255
    lum = np.array([[0.2125, 0.7154, 0.0721], [1.0, 1.0, 1.0]])
    want = (lum - lum.min()) / (lum.max() - lum.min())
    s = from_image(rgb, 0.1, as_="fluorescence")
    np.testing.assert_allclose(s.values, want, atol=1e-6)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 7, np.uint8)], axis=2)
    np.testing.assert_allclose(from_image(rgba, 0.1, as_="fluorescence").values, want, atol=1e-6)


@pytest.mark.parametrize(
    "image, kwargs",
    [
        (IMG, {"as_": "absorption", "strength": 1.5}),
        (IMG, {"as_": "absorption", "strength": -0.1}),
        (IMG, {"as_": "fluorescence", "strength": -1}),
        (IMG, {"as_": "phase", "strength": float("inf")}),
        (IMG, {"as_": "amplitude"}),
        (np.full((4, 4), 3.0), {"as_": "phase"}),
        (np.zeros((3, 4, 4)), {"as_": "phase"}),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), {"as_": "phase"}),
    ],
)
def test_from_image_rejects_bad_input(image: np.ndarray, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        from_image(image, 0.2, **kwargs)


def test_load_sample_image_reads_tiff_and_png(tmp_path) -> None:
    from skimage import io as skio

    img = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    tif, png = tmp_path / "a.tif", tmp_path / "a.png"
    tifffile.imwrite(tif, img)
    skio.imsave(png, img, check_contrast=False)
    want = from_image(img, 0.3, as_="absorption", strength=0.8).values
    for path in (tif, png):
        s = load_sample_image(path, 0.3, as_="absorption", strength=0.8)
        np.testing.assert_array_equal(s.values, want)
        assert s.description["source"] == str(path)


def test_load_sample_image_errors_name_the_fix(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_sample_image(tmp_path / "missing.tif", 0.3)
    bmp = tmp_path / "a.bmp"
    bmp.write_bytes(b"BM")
    with pytest.raises(ConfigError, match="TIFF, PNG or JPEG"):
        load_sample_image(bmp, 0.3)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    with pytest.raises(ConfigError, match="cannot read"):
        load_sample_image(broken, 0.3)
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigError, match="constant"):
        load_sample_image(flat, 0.3)


# --------------------------------------------------------------------------- registry


def test_registry_names() -> None:
    assert sorted(SAMPLE_GENERATORS) == sorted(NAMES)


def test_make_sample_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        make_sample("spheroids", (32, 32), 0.3)
    for name in NAMES:
        assert name in str(err.value)


def test_make_sample_passes_wavelength_only_where_used() -> None:
    a = make_sample("cells", (64, 64), 0.3, seed=1, wavelength_um=0.5, absorption=0)
    b = make_sample("cells", (64, 64), 0.3, seed=1, wavelength_um=1.0, absorption=0)
    np.testing.assert_allclose(_phase(a), 2 * _phase(b), atol=2e-5)
    assert a.description["wavelength_um"] == 0.5
    beads_ = make_sample("beads", (64, 64), 0.3, seed=1, wavelength_um=0.5)
    assert "wavelength_um" not in beads_.description
    fl = make_sample("fluorescent_tissue", (64, 64), 0.3, seed=1, wavelength_um=0.5)
    assert fl.kind == "fluorescence"
    with pytest.raises(ConfigError, match="density"):
        make_sample("cells", (64, 64), 0.3, dencity=0.2)


def test_seed_none_draws_a_fresh_sample() -> None:
    a = make_sample("cells", (64, 64), 0.5, seed=None)
    b = make_sample("cells", (64, 64), 0.5, seed=None)
    assert a.description["seed"] is None
    assert not np.array_equal(a.values, b.values)
