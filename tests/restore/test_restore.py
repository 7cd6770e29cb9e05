"""Restore: defocus PSF vs the simulator, RL / Landweber baselines, Deep-R's quality measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
from skimage.filters import sobel_h, sobel_v

from focuskit import ConfigError
from focuskit.measures import (
    crop_border,
    find_beads,
    gaussian_fwhm,
    mip_reference,
    relative_sharpness,
    rmse_to_truth,
    ssim_to_truth,
    standardize,
)
from focuskit.optics import fwhm_um, get_preset
from focuskit.restore import defocus_psf, landweber, richardson_lucy
from focuskit.simulate import oversampling, render_stack

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def _gaussian_spot(shape: tuple[int, int], centre: tuple[float, float], sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))


def _central(a: np.ndarray, half: int) -> np.ndarray:
    cy, cx = a.shape[0] // 2, a.shape[1] // 2
    return a[cy - half : cy + half + 1, cx - half : cx + half + 1]


@pytest.fixture(scope="module")
def bead_scene() -> dict[str, np.ndarray]:
    """Isolated Gaussian beads (σ = 1 px) blurred by a Gaussian PSF (σ = 2.5 px), light noise."""
    rng = np.random.default_rng(0)
    n = 128
    truth = np.full((n, n), 5.0)
    for r in range(20, n - 10, 22):
        for c in range(20, n - 10, 22):
            centre = (r + rng.uniform(-2, 2), c + rng.uniform(-2, 2))
            truth += 100 * _gaussian_spot((n, n), centre, 1.0)
    psf = _central(_gaussian_spot((25, 25), (12, 12), 2.5), 12)
    psf /= psf.sum()
    blurred = scipy.ndimage.convolve(truth, psf, mode="reflect") + rng.normal(0, 0.2, truth.shape)
    return {"truth": truth, "psf": psf, "blurred": blurred}


# --------------------------------------------------------------------------- defocus_psf


def test_defocus_psf_sums_to_one_is_centred_and_has_the_airy_fwhm() -> None:
    optics = get_preset("deepr-40x-fluor").optics  # 0.1625 µm pixel: ~2 px FWHM, no binning
    psf = defocus_psf(optics, 0.0, (33, 33))
    assert psf.shape == (33, 33) and psf.dtype == np.float64
    assert psf.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (16, 16)
    yy, xx = np.mgrid[:33, :33]
    assert (psf * yy).sum() == pytest.approx(16, abs=1e-6)
    assert (psf * xx).sum() == pytest.approx(16, abs=1e-6)
    expected = 0.51 * optics.wavelength_um / optics.na
    assert fwhm_um(psf[16], optics.pixel_size_um) == pytest.approx(expected, rel=0.15)
    assert fwhm_um(psf[:, 16], optics.pixel_size_um) == pytest.approx(expected, rel=0.15)


def test_defocus_psf_grows_with_defocus_and_is_symmetric_in_z() -> None:
    optics = get_preset("deepr-20x-fluor").optics
    shape = (41, 41)

    def rms_radius(p: np.ndarray) -> float:
        yy, xx = np.mgrid[: p.shape[0], : p.shape[1]] - p.shape[0] // 2
        return float(np.sqrt((p * (yy**2 + xx**2)).sum()))

    radii = [rms_radius(defocus_psf(optics, z, shape)) for z in (0.0, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(radii) > 0), radii
    for z in (1.0, 3.0):
        np.testing.assert_allclose(
            defocus_psf(optics, z, shape), defocus_psf(optics, -z, shape), rtol=1e-5, atol=1e-8
        )


def test_defocus_psf_grows_its_window_to_hold_the_blur() -> None:
    optics = get_preset("deepr-40x-fluor").optics
    z = 2.0
    psf = defocus_psf(optics, z, (65, 65))
    diameter_px = 2 * z * math.tan(math.asin(optics.na / optics.n)) / optics.pixel_size_um
    assert psf.shape[0] % 2 == 1 and psf.shape[0] == psf.shape[1]
    assert psf.shape[0] >= 3 * diameter_px
    assert defocus_psf(optics, 0.0, (64, 40)).shape == (65, 41)  # made odd


def test_defocus_psf_is_what_the_simulator_makes_of_a_point() -> None:
    """A one-pixel emitter rendered by render_stack is defocus_psf at that pixel, binning
    included (20× preset: rendered on 2 × 2 sub-pixels), up to the FFT grid's sampling."""
    for name in ("deepr-20x-fluor", "deepr-40x-fluor"):
        optics = get_preset(name).optics
        zs = [0.0, 1.5, -2.5]
        # Sample larger than the padded field, even-sized: the centre crop keeps the
        # emitter's sub-pixel block aligned with the camera pixel.
        emitters = np.zeros((256, 256))
        emitters[128, 128] = 1.0
        sim = render_stack(emitters, optics, zs, shape=(48, 48), photons=None)
        assert sim.metadata["render"]["oversampling"] == oversampling(optics)
        data = sim.data.astype(np.float64)
        r, c = np.unravel_index(np.argmax(data[0]), data[0].shape)
        half = 15
        for plane, z in enumerate(zs):
            rendered = data[plane, r - half : r + half + 1, c - half : c + half + 1]
            psf = _central(defocus_psf(optics, z, (2 * half + 1, 2 * half + 1)), half)
            assert np.abs(rendered - psf).max() < 0.035 * psf.max(), (name, z)
            assert np.corrcoef(rendered.ravel(), psf.ravel())[0, 1] > 0.998, (name, z)


def test_defocus_psf_refuses_brightfield() -> None:
    with pytest.raises(ConfigError, match="fluorescence"):
        defocus_psf(get_preset("deepr-20x-bf").optics, 1.0)
    with pytest.raises(ConfigError, match="finite"):
        defocus_psf(get_preset("deepr-20x-fluor").optics, float("nan"))


# --------------------------------------------------------------------------- deconvolution


def test_rl_and_landweber_reduce_rmse_and_sharpen_beads(bead_scene: dict[str, np.ndarray]) -> None:
    truth, psf, blurred = bead_scene["truth"], bead_scene["psf"], bead_scene["blurred"]
    centres = find_beads(truth)
    assert len(centres) == 25
    fwhm_blurred = np.nanmedian(gaussian_fwhm(blurred, centres))
    rmse_blurred = rmse_to_truth(blurred, truth)
    for restored in (richardson_lucy(blurred, psf, 100), landweber(blurred, psf, 100)):
        assert restored.dtype == np.float32 and restored.shape == blurred.shape
        assert rmse_to_truth(restored, truth) < 0.95 * rmse_blurred
        assert ssim_to_truth(restored, truth) > ssim_to_truth(blurred, truth)
        assert np.nanmedian(gaussian_fwhm(restored, centres)) < 0.95 * fwhm_blurred
    # RL sharpens much more than 100 small Landweber steps, as in the paper's comparison.
    assert np.nanmedian(gaussian_fwhm(richardson_lucy(blurred, psf), centres)) < 0.7 * fwhm_blurred


def test_deconvolution_keeps_the_input_scale(bead_scene: dict[str, np.ndarray]) -> None:
    blurred, psf = bead_scene["blurred"], bead_scene["psf"]
    np.testing.assert_allclose(landweber(1000 * blurred, psf, 0), 1000 * blurred, rtol=1e-6)
    np.testing.assert_allclose(richardson_lucy(blurred, psf, 0), blurred, rtol=1e-6)
    for method in (richardson_lucy, landweber):
        small, big = method(blurred, psf, 20), method(1000 * blurred, psf, 20)
        np.testing.assert_allclose(big, 1000 * small, rtol=1e-3, atol=1e-3 * float(big.max()))
        # Mean intensity (flux) is kept away from the border.
        inner_mean = crop_border(blurred, 20).mean()
        assert crop_border(small, 20).mean() == pytest.approx(inner_mean, rel=0.02)


def test_deconvolution_of_a_flat_field_has_no_frame() -> None:
    """A uniform field stays uniform up to its border for both baselines (mirror padding):
    the issue's 'bright frame' handicap of the RL baseline is gone."""
    flat = np.random.default_rng(2).poisson(1000.0, (128, 128)).astype(np.float64)
    psf = defocus_psf(get_preset("deepr-40x-fluor").optics, 3.0)
    for method in (richardson_lucy, landweber):
        out = method(flat, psf, 50)
        centre = out[40:88, 40:88].mean()
        for edge in (out[:4], out[-4:], out[:, :4], out[:, -4:]):
            assert edge.mean() == pytest.approx(centre, rel=0.02)


def test_even_psf_has_the_same_centre_for_both_methods() -> None:
    """An even-sized PSF is centred at (p − 1) // 2 (scipy's 'same') by RL and Landweber alike."""
    rng = np.random.default_rng(6)
    x = rng.random((32, 32)) + 0.5
    for shape in ((4, 4), (4, 5)):
        delta = np.zeros(shape)
        delta[(shape[0] - 1) // 2, (shape[1] - 1) // 2] = 1
        for method in (richardson_lucy, landweber):
            np.testing.assert_allclose(method(x, delta, 10), x, rtol=1e-5)


def test_landweber_converges_to_the_exact_inverse_of_a_mild_blur() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random((64, 64)) + 1
    psf = np.array([[0, 1, 0], [1, 6, 1], [0, 1, 0]], dtype=np.float64) / 10  # OTF ≥ 0.2
    blurred = scipy.ndimage.convolve(truth, psf, mode="wrap")
    restored = landweber(blurred, psf, 400, step=1.0, nonnegative=False)
    inner = (slice(8, -8), slice(8, -8))  # the mirror padding is not the wrap blur
    assert np.abs(restored[inner] - truth[inner]).max() < 1e-3 * truth.max()
    assert np.abs(blurred[inner] - truth[inner]).max() > 1e-2 * truth.max()


def test_deconvolution_refuses_bad_input(bead_scene: dict[str, np.ndarray]) -> None:
    blurred, psf = bead_scene["blurred"], bead_scene["psf"]
    for method in (richardson_lucy, landweber):
        with pytest.raises(ConfigError, match="2-D"):
            method(np.stack([blurred, blurred]), psf)
        with pytest.raises(ConfigError, match="NaN"):
            method(np.where(blurred > 10, np.nan, blurred), psf)
        with pytest.raises(ConfigError, match="PSF"):
            method(blurred, -psf)
        with pytest.raises(ConfigError, match="iterations"):
            method(blurred, psf, -1)
    with pytest.raises(ConfigError, match="step"):
        landweber(blurred, psf, step=2.5)


# --------------------------------------------------------------------------- SSIM / RMSE


def test_ssim_and_rmse_of_identical_and_affinely_changed_images() -> None:
    rng = np.random.default_rng(2)
    x = scipy.ndimage.gaussian_filter(rng.random((80, 80)), 1.5)
    assert ssim_to_truth(x, x) == pytest.approx(1.0, abs=1e-12)
    assert rmse_to_truth(x, x) == pytest.approx(0.0, abs=1e-12)
    assert ssim_to_truth(3.7 * x + 12, x) == pytest.approx(1.0, abs=1e-9)
    assert rmse_to_truth(3.7 * x + 12, x) == pytest.approx(0.0, abs=1e-9)
    noisy = x + rng.normal(0, x.std(), x.shape)
    assert ssim_to_truth(noisy, x) < 0.9
    assert ssim_to_truth(2 * noisy - 1, x) == pytest.approx(ssim_to_truth(noisy, x), abs=1e-9)
    assert rmse_to_truth(noisy, x) > 0.3
    # An inverted image is far from the truth.
    assert rmse_to_truth(-x, x) == pytest.approx(2.0, rel=1e-6)


def test_border_is_cropped_before_comparing() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((60, 60))
    y = x.copy()
    y[:10] = 0  # garbage only in the 10-px border
    assert rmse_to_truth(y, x, border_px=10) == pytest.approx(0.0, abs=1e-12)
    assert rmse_to_truth(y, x, border_px=5) > 0.1
    assert crop_border(x, 10).shape == (40, 40)
    assert crop_border(x, 0) is x
    with pytest.raises(ConfigError, match="crop"):
        crop_border(x, 30)
    with pytest.raises(ConfigError, match="same shape"):
        ssim_to_truth(x, x[:50])


def test_standardized_has_zero_mean_unit_sd() -> None:
    s = standardize(np.arange(12, dtype=np.uint16).reshape(3, 4), dtype=np.float64)
    assert s.dtype == np.float64
    assert s.mean() == pytest.approx(0.0, abs=1e-12) and s.std() == pytest.approx(1.0)
    assert np.all(standardize(np.full((4, 4), 7.0), dtype=np.float64) == 0)


# --------------------------------------------------------------------------- beads and FWHM


def test_gaussian_fwhm_recovers_sigma_and_scales_with_pixel_size() -> None:
    rng = np.random.default_rng(4)
    centres = [(20.3, 21.7), (40.0, 60.5), (65.6, 30.2)]
    image = 10 + sum(500 * _gaussian_spot((90, 90), c, 1.5) for c in centres)
    image = image + rng.normal(0, 1.0, image.shape)
    fwhm = gaussian_fwhm(image, np.array(centres))
    np.testing.assert_allclose(fwhm, FWHM_PER_SIGMA * 1.5, rtol=0.03)  # 3.53 px
    in_um = gaussian_fwhm(image, np.array(centres), pixel_size_um=0.325)
    np.testing.assert_allclose(in_um, 0.325 * fwhm)
    # Elliptical: the mean of the x and y FWHM.
    yy, xx = np.mgrid[:40, :40]
    ellipse = np.exp(-((yy - 20) ** 2) / (2 * 1.2**2) - (xx - 20) ** 2 / (2 * 2.4**2))
    mean_fwhm = FWHM_PER_SIGMA * (1.2 + 2.4) / 2
    assert gaussian_fwhm(ellipse, np.array([[20, 20]]))[0] == pytest.approx(mean_fwhm, rel=0.01)
    # Boxes leaving the image, and flat boxes, give NaN.
    assert np.all(np.isnan(gaussian_fwhm(image, np.array([[2.0, 2.0], [45.0, 88.0]]))))
    assert np.isnan(gaussian_fwhm(np.ones((40, 40)), np.array([[20, 20]]))[0])


def test_find_beads_keeps_isolated_beads_and_drops_pairs_clusters_and_edges() -> None:
    shape = (120, 120)
    isolated = [(25.0, 25.0), (25.0, 90.0), (90.0, 25.0), (60.0, 60.0)]
    image = sum(_gaussian_spot(shape, c, 1.5) for c in isolated)
    for pair in [((95.0, 85.0), (95.0, 89.0)), ((60.0, 100.0), (60.0, 110.0))]:  # touching, close
        image += sum(_gaussian_spot(shape, c, 1.5) for c in pair)
    image += _gaussian_spot(shape, (3.0, 60.0), 1.5)  # at the edge
    found = find_beads(image, box_px=15, threshold=0.3)
    assert len(found) == len(isolated)
    expected = sorted(isolated)  # regionprops' raster order
    np.testing.assert_allclose(found, expected, atol=0.05)
    # Otsu picks a usable threshold on its own.
    assert len(find_beads(image + 0.01)) == len(isolated)
    # A big blob (dirt, > 3× median area) is dropped.
    dirt = image + 1.2 * _gaussian_spot(shape, (100.0, 60.0), 5.0)
    assert len(find_beads(dirt, threshold=0.3)) == len(isolated)
    assert find_beads(np.zeros(shape)).shape == (0, 2)


# --------------------------------------------------------------------------- sharpness


def test_relative_sharpness_of_identical_and_doubled_images() -> None:
    rng = np.random.default_rng(5)
    x = scipy.ndimage.gaussian_filter(rng.random((32, 40)), 1.0)
    beta, std = relative_sharpness(x, x)
    assert beta.shape == std.shape == (32,)
    np.testing.assert_allclose(beta, 1.0)
    np.testing.assert_allclose(std, 0.0, atol=1e-12)
    beta2, std2 = relative_sharpness(2 * x + 5, x)
    np.testing.assert_allclose(beta2, 2.0)
    np.testing.assert_allclose(std2, 0.0, atol=1e-12)
    blurred, _ = relative_sharpness(scipy.ndimage.gaussian_filter(x, 2), x)
    assert np.all(blurred < 0.8)


def test_relative_sharpness_matches_equations_6_to_8_by_hand() -> None:
    x = np.array([[1.0, 4.0, 2.0], [0.0, 3.0, 5.0], [2.0, 1.0, 0.0]])
    y = np.array([[2.0, 1.0, 3.0], [1.0, 5.0, 0.0], [4.0, 2.0, 1.0]])

    def sharpness(image: np.ndarray) -> np.ndarray:  # eq. 5 with skimage's Sobel
        return np.sqrt(sobel_h(image) ** 2 + sobel_v(image) ** 2)

    sx, sy = sharpness(x), sharpness(y)
    n = x.shape[1]
    expected_beta, expected_std = [], []
    for i in range(x.shape[0]):
        b = (sx[i] @ sy[i]) / (sy[i] @ sy[i])  # eq. 6
        rss = np.sum((sx[i] - b * sy[i]) ** 2)  # eq. 8
        expected_beta.append(b)
        expected_std.append(np.sqrt(rss / ((n - 1) * (sy[i] @ sy[i]))))  # eq. 7
    beta, std = relative_sharpness(x, y)
    np.testing.assert_allclose(beta, expected_beta, rtol=1e-10)
    np.testing.assert_allclose(std, expected_std, rtol=1e-10)
    assert np.all(std > 0)
    flat_row = relative_sharpness(x, np.ones((3, 3)))[0]
    assert np.all(np.isnan(flat_row))


def test_mip_reference_is_the_maximum_over_planes() -> None:
    planes = np.array([[[1, 5], [3, 0]], [[4, 2], [3, 7]]], dtype=np.uint16)
    np.testing.assert_array_equal(mip_reference(planes), [[4, 5], [3, 7]])
    with pytest.raises(ConfigError, match="Z, Y, X"):
        mip_reference(planes[0])
