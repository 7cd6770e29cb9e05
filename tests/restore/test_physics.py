"""The physics refocusing path: noise model, PSF family, blind |z|, RL-TV, re-blur check."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from focuskit import ConfigError
from focuskit.measures import ssim_to_truth
from focuskit.optics import get_preset
from focuskit.restore import (
    PsfFamily,
    estimate_defocus,
    noise_level,
    noise_power,
    physics_refocus,
    reblur,
    reblur_consistency,
    saturated,
)
from focuskit.simulate import simulate_stack

PRESET = get_preset("deepr-40x-fluor")
OPTICS = PRESET.optics
DOF = OPTICS.depth_of_field_um


@pytest.fixture(scope="module")
def family() -> PsfFamily:
    return PsfFamily(OPTICS, z_max_um=6.0)


@pytest.fixture(scope="module")
def filaments() -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Noisy planes at z = 0, 2.5, −2.5 µm and the noise-free in-focus plane."""
    z = (0.0, 2.5, -2.5)
    noisy = simulate_stack(PRESET, sample="filaments", size=256, z_um=z, photons=2000, seed=5)
    clean = simulate_stack(PRESET, sample="filaments", size=256, z_um=z, seed=5)
    return np.asarray(noisy.data, np.float64), np.asarray(clean.data[0], np.float64), z


def _convolve(image: np.ndarray, otf: np.ndarray) -> np.ndarray:
    return scipy.fft.irfft2(scipy.fft.rfft2(image) * otf, s=image.shape)


def test_noise_level_recovers_a_poisson_gaussian_camera() -> None:
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(100.0, 4000.0, 512), (512, 1))  # smooth: no signal in d
    gain, read = 2.0, 5.0
    counts = gain * rng.poisson(ramp / gain) + rng.normal(0.0, read, ramp.shape)
    a, b = noise_level(counts)
    # var(y) = gain·y + read² for counts = gain·Poisson(y/gain) + N(0, read²)
    assert a == pytest.approx(gain, rel=0.1)
    for mu in (200.0, 1000.0, 4000.0):  # the variance it predicts, where read² is small
        assert a * mu + b == pytest.approx(gain * mu + read**2, rel=0.1)
    assert noise_power(counts) == pytest.approx(gain * ramp.mean() + read**2, rel=0.1)


def test_white_noise_power_is_its_variance() -> None:
    noise = np.random.default_rng(1).normal(50.0, 10.0, (256, 256))
    assert noise_power(noise) == pytest.approx(100.0, rel=0.1)


def test_the_in_focus_otf_bounds_every_defocused_one(family: PsfFamily) -> None:
    """Aberration-free pupil: |H_z(k)| ≤ |H₀(k)| for every k, and H(0) = 1 (flux kept)."""
    shape = (128, 128)
    h0 = np.abs(family.otf(0, shape))
    assert h0[0, 0] == pytest.approx(1.0, abs=1e-9)
    for z in (1.0, 2.5, 5.0):
        hz = np.abs(family.otf_at(z, shape))
        assert hz[0, 0] == pytest.approx(1.0, abs=1e-9)
        assert np.all(hz <= h0 + 2e-3)
        assert hz[10:40, :30].mean() < h0[10:40, :30].mean()  # and it does blur


def test_reblurring_the_in_focus_image_gives_the_defocused_one(family: PsfFamily) -> None:
    """``R = H_z / H₀``: h_z ∗ o = R·(h₀ ∗ o) wherever H₀ is not ~0, so the re-blur χ² of
    the true in-focus image against a noisy measurement at z is the noise alone (≈ 1)."""
    rng = np.random.default_rng(2)
    shape = (192, 192)
    obj = np.zeros(shape)
    obj[rng.integers(20, 172, 60), rng.integers(20, 172, 60)] = 5e4
    obj += 200.0
    x0 = _convolve(obj, family.otf(0, shape))
    for z in (1.5, 3.0):
        y_clean = _convolve(obj, family.otf_at(z, shape))
        blurred = reblur(x0, z, family)
        inner = (slice(30, -30), slice(30, -30))  # the periodic test object wraps
        rel = np.abs(blurred - y_clean)[inner].max() / y_clean[inner].max()
        assert rel < 0.02
        assert not np.allclose(x0[inner], y_clean[inner], rtol=0.05)  # z did matter


def test_blind_defocus_is_sign_free_and_within_dof_on_filaments(
    family: PsfFamily, filaments: tuple[np.ndarray, np.ndarray, tuple[float, ...]]
) -> None:
    planes, _, z = filaments
    est = [estimate_defocus(p, family) for p in planes]
    assert est[0].z_um <= DOF / 2  # in focus reads in focus
    for fit, zi in zip(est[1:], z[1:], strict=True):
        assert abs(fit.z_um - abs(zi)) <= DOF / 2
        assert fit.z_low_um <= fit.z_um <= fit.z_high_um
    assert est[1].z_um == pytest.approx(est[2].z_um, abs=DOF / 4)


def test_physics_refocus_sharpens_keeps_scale_and_passes_focus_unchanged(
    family: PsfFamily, filaments: tuple[np.ndarray, np.ndarray, tuple[float, ...]]
) -> None:
    planes, truth, _ = filaments
    focus = physics_refocus(planes[0], family, tile=128)
    assert not focus.restored.any()
    np.testing.assert_allclose(focus.image, planes[0], rtol=1e-6)
    out = physics_refocus(planes[1], family, tile=128)
    assert out.image.dtype == np.float32 and out.image.shape == planes[1].shape
    assert out.image.min() >= 0.0
    assert out.restored.any()
    assert ssim_to_truth(out.image, truth) > ssim_to_truth(planes[1], truth) + 0.02
    # the intensity scale is kept (flux of the interior within a few %)
    assert out.image[20:-20, 20:-20].mean() == pytest.approx(
        planes[1][20:-20, 20:-20].mean(), rel=0.05
    )
    told = physics_refocus(planes[2], family, z_um=-2.5, tile=128)
    assert np.all(told.z_um == 2.5)


def test_no_frame_artefacts_on_a_flat_field(family: PsfFamily) -> None:
    """A uniform field stays uniform to the noise, at the border as in the centre."""
    rng = np.random.default_rng(3)
    flat = rng.poisson(1000.0, (192, 192)).astype(np.float64) + 100.0
    out = physics_refocus(flat, family, z_um=3.0, tile=96).image
    border = np.concatenate([out[:8].ravel(), out[-8:].ravel(), out[:, :8].ravel()])
    centre = out[64:128, 64:128]
    assert abs(border.mean() - centre.mean()) < 0.01 * centre.mean()
    assert abs(out.mean() - flat.mean()) < 0.01 * flat.mean()


def test_consistency_reads_about_one_for_the_truth_and_more_for_an_invention(
    family: PsfFamily,
) -> None:
    rng = np.random.default_rng(4)
    shape = (256, 256)
    obj = np.zeros(shape)
    obj[rng.integers(10, 246, 80), rng.integers(10, 246, 80)] = 4e4
    obj = obj + 300.0
    x0 = _convolve(obj, family.otf(0, shape))
    y = _convolve(obj, family.otf_at(3.0, shape))
    y = rng.poisson(np.maximum(y, 0)).astype(np.float64)
    phys = physics_refocus(y, family, z_um=3.0, tile=128)
    chi_truth = reblur_consistency(y, np.maximum(x0, 0), phys, family)
    # invented structure 10 noise SDs strong, coarse enough that defocus passes it
    wave = np.sin(2 * np.pi * np.arange(shape[1]) / 64.0)[None, :]
    invented = x0 + 10 * np.sqrt(y.mean()) * wave
    chi_invented = reblur_consistency(y, invented, phys, family)
    assert np.all(chi_truth < 1.5)
    assert np.all(chi_invented > 3 * chi_truth)


def test_saturated_plateaus_are_masked_and_single_maxima_are_not() -> None:
    img = np.arange(100.0).reshape(10, 10)
    assert saturated(img) is None
    img[2:4, 2:4] = 99.0
    mask = saturated(img)
    assert mask is not None and int(mask.sum()) == 5


def test_measured_psf_stack_and_bad_inputs(family: PsfFamily) -> None:
    planes = [np.pad(np.ones((2 * k + 1, 2 * k + 1)), 10 - k) for k in range(4)]
    measured = PsfFamily(z_um=[0.0, 1.0, 2.0, 3.0], psfs=planes)
    assert measured.otf(0, (64, 64))[0, 0] == pytest.approx(1.0)
    assert measured.in_focus_um == 1.0
    with pytest.raises(ConfigError, match="one z"):
        PsfFamily(z_um=[0.0], psfs=planes)
    with pytest.raises(ConfigError, match="fluorescence"):
        PsfFamily(get_preset("fcfnn-20x-led").optics)
    with pytest.raises(ConfigError, match="NaN"):
        physics_refocus(np.full((64, 64), np.nan), family)
    with pytest.raises(ConfigError, match="within"):
        physics_refocus(np.ones((64, 64)), family, z_um=50.0)
    with pytest.raises(ConfigError, match="2-D"):
        estimate_defocus(np.ones((8, 8)), family)
