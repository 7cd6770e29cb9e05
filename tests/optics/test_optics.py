"""Optics against analytic facts (OPTICS.md, "Checks any implementation must pass")."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.special

from focuskit import ConfigError
from focuskit.optics import (
    DPC,
    LED,
    PRESETS,
    Brightfield,
    Camera,
    Fluorescence,
    LEDPattern,
    Objective,
    Optics,
    SourcePoint,
    coherent_stack,
    depth_of_field_um,
    frequency_grid,
    fwhm_um,
    get_preset,
    image_stack,
    incoherent_psf,
    source_points,
    z_range,
)

LAM, NA = 0.53, 0.5


def test_in_focus_psf_fwhm_is_0_51_lambda_over_na() -> None:
    # 0.05 µm pixels: more than 2× Nyquist (λ/4NA = 0.265 µm) for 20×/0.5 at 0.53 µm.
    psf = incoherent_psf((512, 512), 0.05, NA, LAM, 0.0, centered=True)[0]
    for profile in (psf[256, :], psf[:, 256]):
        assert fwhm_um(profile, 0.05) == pytest.approx(0.51 * LAM / NA, rel=0.05)


@pytest.mark.parametrize("na", [0.3, 0.75, 0.95])
def test_psf_fwhm_scales_as_lambda_over_na(na: float) -> None:
    dx = LAM / (4 * na) / 2.5
    psf = incoherent_psf((512, 512), dx, na, LAM, 0.0, centered=True)[0]
    assert fwhm_um(psf[256], dx) == pytest.approx(0.51 * LAM / na, rel=0.05)


def test_incoherent_psf_is_symmetric_in_z() -> None:
    z = np.array([-4.0, -1.5, 1.5, 4.0])
    psf = incoherent_psf((256, 256), 0.1, NA, LAM, z)
    np.testing.assert_allclose(psf[0], psf[3], atol=1e-6 * psf.max())
    np.testing.assert_allclose(psf[1], psf[2], atol=1e-6 * psf.max())
    # ...and defocus really changes it (the check above is not vacuous).
    assert np.abs(psf[1] - psf[0]).max() > 0.1 * psf[1].max()


def test_psf_planes_sum_to_one_and_spread_with_defocus() -> None:
    psf = incoherent_psf((256, 256), 0.1, NA, LAM, [0, 2, 4, 8])
    np.testing.assert_allclose(psf.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    peaks = psf.max(axis=(1, 2))
    assert np.all(np.diff(peaks) < 0)


@pytest.mark.parametrize("a,f0", [(1.0, 0.05), (1.0, 0.3), (2.0, 0.2)])
def test_energy_of_phase_grating_is_sum_of_passed_bessel_orders(a: float, f0: float) -> None:
    """t = exp(i·a·cos(2π f0 x)) has orders k·f0 of amplitude J_k(a) (Jacobi–Anger).

    The mean intensity equals Σ J_k(a)² over the orders inside the pupil |k·f0| ≤ NA/λ:
    1 when the pupil passes all scattered light, less when some falls outside.
    Fine pixels (Nyquist 5 /µm) keep every order that matters unaliased on the grid.
    """
    n, dx, na = 400, 0.1, 0.25
    period_px = round(1 / (f0 * dx))  # snap the grating to the grid
    f0 = 1 / (period_px * dx)
    n = period_px * (n // period_px)
    x = np.arange(n) * dx
    t = np.exp(1j * a * np.cos(2 * np.pi * f0 * x))[None, :].repeat(8, axis=0)
    image = coherent_stack(t, dx, na, LAM, [0.0, 7.0], [SourcePoint((0, 0), 0, 0, 1.0)])
    kmax = int(np.floor(na / LAM / f0 + 1e-9))
    expected = sum(scipy.special.jv(k, a) ** 2 for k in range(-kmax, kmax + 1))
    np.testing.assert_allclose(image.mean(axis=(1, 2)), expected, rtol=1e-4)
    if f0 <= na / LAM / 8:
        assert expected == pytest.approx(1.0, abs=1e-6)  # all scattered light passes
    else:
        assert expected < 0.99  # light scattered outside the pupil is lost


def _random_phase(
    shape: tuple[int, int], seed: int = 0, sigma: float = 3, phase_rms: float = 1.5
) -> np.ndarray:
    import scipy.ndimage

    rng = np.random.default_rng(seed)
    phi = scipy.ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return np.exp(1j * phase_rms * phi / phi.std()).astype(np.complex64)


def test_off_axis_coherent_spectrum_is_two_discs_plus_autocorrelation() -> None:
    """Pinkard et al. Fig. S2: |FFT(I)| lives in two pupil discs at ±s/λ (the cross terms of
    the unscattered light with the scattered field) and the autocorrelation disc at the
    origin. For a weak object (single scattering) nothing reaches beyond (NA + |s|)/λ;
    the |scattered|² term that does is second order in the phase."""
    n, dx, s = 256, 0.325, 0.407
    src = source_points(LED(sx=s), LAM, (n, n), dx)
    fs = src[0].sx / LAM
    fy, fx = frequency_grid((n, n), dx)
    r, r_pupil, df = np.hypot(fx, fy), NA / LAM, 1 / (n * dx)
    in_discs = (np.hypot(fx - fs, fy) <= r_pupil + 1.5 * df) | (
        np.hypot(fx + fs, fy) <= r_pupil + 1.5 * df
    )
    support = in_discs | (r <= 2 * r_pupil + 1.5 * df)
    beyond = r > (NA + src[0].sx) / LAM + 1.5 * df

    def spectrum(phase_rms: float) -> np.ndarray:
        image = coherent_stack(_random_phase((n, n), phase_rms=phase_rms), dx, NA, LAM, [6.0], src)[
            0
        ]
        return np.abs(np.fft.fft2(image - image.mean(dtype=np.float64)))

    strong, weak = spectrum(1.5), spectrum(0.05)
    assert strong[~support].max() < 1e-5 * strong.max()  # exact, any object
    assert weak[beyond].max() < 1e-4 * weak.max()  # single scattering
    assert strong[beyond].max() > 10 * weak[beyond].max() / weak.max() * strong.max()
    # The discs are really filled (the structure is there, not an empty image).
    assert np.median(weak[np.hypot(fx - fs, fy) < 0.8 * r_pupil]) > 1e-3 * weak.max()


def test_defocus_sign_transport_of_intensity() -> None:
    """Weak positive phase bump = a weak converging lens. With U_z = U_0·exp(+i2πz(kz − n/λ)),
    TIE gives ∂I/∂z = −(λ/2π)∇²φ > 0 at the bump's centre: brighter at +z, darker at −z."""
    n, dx = 256, 0.325
    yy, xx = (np.mgrid[:n, :n] - n / 2) * dx
    bump = 0.3 * np.exp(-(xx**2 + yy**2) / (2 * 2.5**2))
    src = source_points(LED(0.0), LAM, (n, n), dx)
    minus, focus, plus = coherent_stack(np.exp(1j * bump), dx, NA, LAM, [-4.0, 0.0, 4.0], src)
    c = n // 2
    assert plus[c, c] > focus[c, c] > minus[c, c]
    assert plus[c, c] > 1.01 and minus[c, c] < 0.99
    # Sign-mirrored object, mirrored contrast: the convention decides, not the object.
    minus2, _, plus2 = coherent_stack(np.exp(-1j * bump), dx, NA, LAM, [-4.0, 0.0, 4.0], src)
    assert plus2[c, c] < 1 < minus2[c, c]


def test_depth_of_field_formula() -> None:
    assert depth_of_field_um(0.53, 0.5, 1.0, 6.5, 20) == pytest.approx(2.77, abs=1e-9)
    assert get_preset("fcfnn-20x-led").optics.depth_of_field_um == pytest.approx(2.8, abs=0.05)
    # Immersion scales both terms by n.
    assert depth_of_field_um(0.5, 1.2, 1.33, 6.5, 60) == pytest.approx(
        0.5 * 1.33 / 1.44 + 1.33 * 6.5 / 72, rel=1e-12
    )


def test_abbe_sum_with_one_source_point_equals_coherent_image() -> None:
    n, dx = 128, 0.325
    t = _random_phase((n, n), seed=2)
    optics = get_preset("deepr-20x-bf").optics
    tiny = optics.with_illumination(Brightfield(na_condenser=0.0))
    abbe = image_stack(t, tiny, [-3.0, 0.0, 2.0], pixel_size_um=dx)
    coherent = image_stack(
        t, optics.with_illumination(LED(0.0)), [-3.0, 0.0, 2.0], pixel_size_um=dx
    )
    np.testing.assert_allclose(abbe, coherent, rtol=1e-6, atol=1e-6)


def test_summing_single_led_images_equals_led_pattern_image() -> None:
    n = 128
    t = _random_phase((n, n), seed=3)
    base = get_preset("fcfnn-20x-led").optics
    leds = [(0.2, 0.0, 1.0), (-0.1, 0.3, 2.0), (0.0, -0.25, 0.5)]
    z = [-5.0, 1.0]
    pattern = image_stack(t, base.with_illumination(LEDPattern(tuple(leds))), z)
    singles = sum(
        w * image_stack(t, base.with_illumination(LED(sx, sy)), z) for sx, sy, w in leds
    ) / sum(w for *_, w in leds)
    np.testing.assert_allclose(pattern, singles, rtol=1e-5, atol=1e-6)


def test_brightfield_tends_to_incoherent_imaging_for_large_condenser() -> None:
    """NA_c ≥ NA: a weak absorber's image approaches |t|² ⊛ PSF (incoherent)."""
    n = 128
    rng = np.random.default_rng(4)
    import scipy.ndimage

    absorb = scipy.ndimage.gaussian_filter(rng.random((n, n)), 2)
    absorb = 0.2 * (absorb - absorb.min()) / np.ptp(absorb)
    t = np.sqrt(1 - absorb).astype(np.complex64)
    optics = get_preset("deepr-20x-bf").optics
    incoherent = image_stack(
        (1 - absorb).astype(np.float32), optics.with_illumination(Fluorescence()), [0.0]
    )
    partial = image_stack(
        t, optics.with_illumination(Brightfield(0.75, source_step_na=0.05)), [0.0]
    )
    coherent = image_stack(t, optics.with_illumination(Brightfield(0.0)), [0.0])

    def err(a: np.ndarray) -> float:
        # Compare contrast: with NA_c ≥ NA some source points fall outside the pupil
        # (dark field), which lowers the mean but is not a difference in blur.
        return float(np.abs(a / a.mean() - incoherent / incoherent.mean()).mean())

    assert err(partial) < 0.5 * err(coherent)


def test_dpc_source_is_a_half_annulus() -> None:
    ill = DPC(0.35, 0.48, side="right")
    pts = source_points(ill, LAM, (1024, 1024), 0.325)
    s = np.array([(p.sx, p.sy) for p in pts])
    r = np.hypot(s[:, 0], s[:, 1])
    snap = LAM / (1024 * 0.325)  # one frequency sample in NA units
    assert np.all(s[:, 0] > 0)
    assert r.min() >= 0.35 - snap and r.max() <= 0.48 + snap
    assert sum(p.weight for p in pts) == pytest.approx(1.0)
    assert len(pts) > 20


def test_led_frequency_snaps_to_the_grid() -> None:
    pts = source_points(LED(sx=0.407), LAM, (2048, 2048), 0.325)
    assert len(pts) == 1
    assert pts[0].sx == pytest.approx(0.407, abs=LAM / (2048 * 0.325))
    assert pts[0].shift[0] == 0


def test_presets_match_optics_md() -> None:
    p = PRESETS["fcfnn-20x-led"]
    assert p.optics.pixel_size_um == pytest.approx(0.325)
    assert p.optics.illumination == LED(sx=0.407, sy=0.0)
    assert len(p.z_positions()) == 61 and p.z_positions()[0] == -30 and p.z_positions()[-1] == 30
    assert PRESETS["deepr-40x-fluor"].optics.pixel_size_um == pytest.approx(0.1625)
    assert len(PRESETS["deepr-40x-fluor"].z_positions()) == 101
    assert PRESETS["deepr-20x-bf"].optics.illumination == Brightfield(0.55)
    assert PRESETS["deepfocus-10x"].optics.pixel_size_um == pytest.approx(0.65)
    assert set(PRESETS) == {
        "fcfnn-20x-led",
        "deepr-40x-fluor",
        "deepr-20x-fluor",
        "deepr-20x-bf",
        "deepfocus-10x",
    }


def test_optics_round_trips_through_json() -> None:
    for preset in PRESETS.values():
        for ill in (
            preset.optics.illumination,
            LEDPattern(((0.1, 0.2, 1.0), (0.0, 0.0, 0.5))),
            DPC(0.3, 0.45, "top"),
        ):
            optics = preset.optics.with_illumination(ill)
            assert Optics.from_dict(json.loads(json.dumps(optics.to_dict()))) == optics


@pytest.mark.parametrize(
    "build",
    [
        lambda: Objective(na=1.1, magnification=20, immersion_index=1.0),
        lambda: Objective(na=-0.5, magnification=20),
        lambda: Optics(Objective(0.5, 20), wavelength_um=530),
        lambda: Camera(bit_depth=20),
        lambda: LED(sx=0.9, sy=0.9),
        lambda: DPC(0.5, 0.4),
        lambda: Optics.from_dict({"wavelength_um": 0.5}),
        lambda: get_preset("nope"),
        lambda: z_range(0, 10, 0),
    ],
)
def test_invalid_configs_raise_clear_errors(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        build()


def test_undersampled_pupil_is_refused() -> None:
    with pytest.raises(ConfigError, match="Nyquist"):
        incoherent_psf((64, 64), 0.5, 0.95, 0.5, 0.0)


def test_fast_fluorescence_path_equals_the_reference_psf() -> None:
    """fluorescence_stack builds PSFs its own fast way; a point emitter must give back
    exactly the reference incoherent_psf (same physics, same normalization)."""
    from focuskit.optics import fluorescence_stack

    emitters = np.zeros((96, 96), np.float32)
    emitters[0, 0] = 1.0  # the PSF sits at the origin
    z = [-6.0, -1.0, 0.0, 2.5]
    fast = fluorescence_stack(emitters, 0.1, NA, LAM, z)
    reference = incoherent_psf((96, 96), 0.1, NA, LAM, z)
    np.testing.assert_allclose(fast, reference, atol=2e-6 * reference.max())
