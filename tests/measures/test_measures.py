"""Focus measures: blur monotonicity, brightness powers, stacks, analytic values, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from focuskit import ConfigError
from focuskit.measures import (
    LOG_FLOOR,
    MEASURES,
    FocusMeasure,
    brenner,
    chunk_budget,
    get_measure,
    high_pass_filter,
    laplacian_variance,
    normalized_variance,
    score,
    sobel_sharpness_map,
    spectral_highband,
    spectral_midband,
    std,
    sum_modified_laplacian,
    tenengrad,
    vollath_f4,
    vollath_f5,
    wavelet_energy,
    wavelet_sum,
)

NAMES = list(MEASURES)
# fcfnn-20x-led: 2NA/λ = 1.89 cycles/µm > Nyquist 1.54 cycles/µm
OPTICS = {"pixel_size_um": 0.325, "na": 0.5, "wavelength_um": 0.53}
EXPECTED_K = {
    "vollath4": 2,
    "vollath5": 2,
    "std": 1,
    "nvar": 1,
    "brenner": 2,
    "tenengrad": 2,
    "lapv": 2,
    "sml": 1,
    "ws": 1,
    "ewc": 2,
    "hpf": 2,
    "spectral-highband": 0,
    "spectral-midband": 0,
}


def textured(seed: int, size: int = 96) -> np.ndarray:
    """Unit-mean texture (correlation ~1.5 px, contrast 0.25) plus a step edge at an odd column."""
    rng = np.random.default_rng(seed)
    t = ndi.gaussian_filter(rng.normal(size=(size, size)), 1.5)
    img = 1.0 + 0.25 * t / t.std()
    img[:, 41:] += 0.3
    return img


# --- Every measure: blur, brightness, constants, stacks -------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_score_strictly_decreases_with_blur(name: str, seed: int) -> None:
    img = textured(seed)
    sigmas = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    stack = np.stack([ndi.gaussian_filter(img, s) if s else img for s in sigmas])
    values = score(stack, name, **OPTICS)
    assert values.shape == (len(sigmas),) and values.dtype == np.float64
    assert np.all(np.diff(values) < 0), (name, values)


@pytest.mark.parametrize("name", NAMES)
def test_brightness_scaling_follows_documented_power(name: str) -> None:
    img = textured(3, 64)
    k = get_measure(name).brightness_power
    assert k == EXPECTED_K[name]
    base = score(img, name, **OPTICS)
    for c in (0.37, 5.0):
        assert score(c * img, name, **OPTICS) == pytest.approx(c**k * base, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [0.0, 0.1, 7.5, 1e6 + 0.1])
def test_constant_image_scores_its_documented_value(name: str, value: float) -> None:
    expected = math.log(LOG_FLOOR) if name == "spectral-highband" else 0.0
    for img in (np.full((16, 24), value), np.full((16, 24), value).astype(np.uint32)):
        s = score(img, name, **OPTICS)
        assert isinstance(s, float) and math.isfinite(s)
        assert s == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_stack_equals_per_plane_calls_in_any_chunking(name: str) -> None:
    img = textured(4, 48)
    stack = np.stack([(i + 1) * ndi.gaussian_filter(img, s) for i, s in enumerate((0.3, 1, 2, 4))])
    per_plane = np.array([score(p, name, **OPTICS) for p in stack])
    np.testing.assert_allclose(score(stack, name, **OPTICS), per_plane, rtol=1e-12, atol=1e-15)
    with chunk_budget(3 * 48 * 48 * 8):  # 3 planes, then 1
        np.testing.assert_allclose(score(stack, name, **OPTICS), per_plane, rtol=1e-12, atol=1e-15)
    assert score(stack[:0], name, **OPTICS).shape == (0,)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_and_integer_images(name: str) -> None:
    rng = np.random.default_rng(5)
    tiny = rng.integers(100, 4000, size=(8, 8)).astype(np.uint16)
    a = score(tiny, name, **OPTICS)
    b = score(tiny.astype(np.float64), name, **OPTICS)
    assert math.isfinite(a) and a == pytest.approx(b, rel=1e-6, abs=1e-9)
    assert score(tiny.astype(np.float32), name, **OPTICS) == pytest.approx(b, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_a_config_error(name: str, bad: float) -> None:
    stack = np.ones((3, 16, 16))
    stack[2, 5, 7] = bad
    with pytest.raises(ConfigError, match=r"NaN or Inf.*plane 2"):
        score(stack, name, **OPTICS)


@pytest.mark.parametrize(
    "image",
    [np.ones(16), np.ones((2, 2, 8, 8)), np.ones((8, 8), dtype=complex), np.array([["a"]])],
)
def test_wrong_shapes_and_dtypes_are_config_errors(image: np.ndarray) -> None:
    with pytest.raises(ConfigError):
        score(image, "tenengrad")


# --- Reference formulas on a small random image ----------------------------------------------


def test_measures_match_straightforward_reference_formulas() -> None:
    rng = np.random.default_rng(6)
    img = rng.random((12, 17)) + 0.5
    ny, nx = img.shape
    mu = img.mean()
    # Vollath (Deep-R eq. 9, 10), each sum divided by its number of pairs
    s1 = sum(img[y, x] * img[y, x + 1] for y in range(ny) for x in range(nx - 1)) / (ny * (nx - 1))
    s2 = sum(img[y, x] * img[y, x + 2] for y in range(ny) for x in range(nx - 2)) / (ny * (nx - 2))
    assert vollath_f4(img) == pytest.approx(s1 - s2, rel=1e-12)
    assert vollath_f5(img) == pytest.approx(s1 - mu**2, rel=1e-12)
    assert std(img) == pytest.approx(img.std(), rel=1e-12)
    assert normalized_variance(img) == pytest.approx(img.var() / mu, rel=1e-12)
    assert brenner(img) == pytest.approx(np.mean((img[:, 2:] - img[:, :-2]) ** 2), rel=1e-12)
    # Tenengrad with scipy's Sobel (unnormalized: /8), interior only
    gx = ndi.sobel(img, axis=1)[1:-1, 1:-1] / 8
    gy = ndi.sobel(img, axis=0)[1:-1, 1:-1] / 8
    g2 = gx**2 + gy**2
    assert tenengrad(img) == pytest.approx(g2.mean(), rel=1e-12)
    t = float(np.sqrt(np.median(g2)))
    kept = np.where(g2 >= t * t, g2, 0)
    assert tenengrad(img, threshold=t) == pytest.approx(kept.mean(), rel=1e-12)
    lap = ndi.laplace(img)[1:-1, 1:-1]
    assert laplacian_variance(img) == pytest.approx(lap.var(), rel=1e-12)
    for step in (1, 2):
        s = step
        ml = np.zeros((ny - 2 * s, nx - 2 * s))
        for y in range(s, ny - s):
            for x in range(s, nx - s):
                ml[y - s, x - s] = abs(2 * img[y, x] - img[y, x - s] - img[y, x + s]) + abs(
                    2 * img[y, x] - img[y - s, x] - img[y + s, x]
                )
        assert sum_modified_laplacian(img, step=s) == pytest.approx(ml.mean(), rel=1e-12)
        assert sum_modified_laplacian(img, step=s, threshold=1.0) == pytest.approx(
            np.where(ml >= 1.0, ml, 0).mean(), rel=1e-12
        )
    # DeepFocus HPF: convolve1d [1, 0, -1] along x, reflect borders, squared
    hpf = ndi.convolve1d(img, [1.0, 0.0, -1.0], axis=-1, mode="reflect") ** 2
    assert high_pass_filter(img) == pytest.approx(hpf.mean(), rel=1e-12)
    # ... whose interior terms are Brenner's differences
    assert high_pass_filter(img) * ny * nx - hpf[:, [0, -1]].sum() == pytest.approx(
        brenner(img) * ny * (nx - 2), rel=1e-12
    )


def haar_level1(img: np.ndarray) -> list[np.ndarray]:
    c = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
    a, b, cc, d = c[0::2, 0::2], c[0::2, 1::2], c[1::2, 0::2], c[1::2, 1::2]
    return [(a - b + cc - d) / 2, (a + b - cc - d) / 2, (a - b - cc + d) / 2, (a + b + cc + d) / 2]


def test_wavelet_measures_on_orthonormal_haar() -> None:
    rng = np.random.default_rng(7)
    img = rng.random((13, 18))  # odd height: the last row is dropped
    hl, lh, hh, ll = haar_level1(img)
    n = 12 * 18
    ws = abs(hl).sum() + abs(lh).sum() + abs(hh).sum()
    assert wavelet_sum(img) == pytest.approx(ws / n, rel=1e-12)
    ewc = (hl**2).sum() + (lh**2).sum() + (hh**2).sum()
    assert wavelet_energy(img) == pytest.approx(ewc / n, rel=1e-12)
    # orthonormal: image energy = approximation + details (Parseval)
    assert (img[:12] ** 2).sum() == pytest.approx((ll**2).sum() + ewc, rel=1e-12)
    # level 2 adds the details of the level-1 approximation (crop to multiples of 4)
    crop = img[:12, :16]
    d1 = haar_level1(crop)
    d2 = haar_level1(d1[3])
    e2 = sum((w**2).sum() for w in d1[:3] + d2[:3]) / crop.size
    assert wavelet_energy(img, level=2) == pytest.approx(e2, rel=1e-12)


def test_spectral_highband_matches_pinkard_radial_average_without_periodization() -> None:
    # Pinkard's code: ln|fftshift(fft2)|² per pixel, mean in rings of integer radius, rings from
    # a quarter of the way to Nyquist; ours normalizes by N·μ² and averages (not sums) the rings.
    rng = np.random.default_rng(8)
    n = 32
    img = ndi.gaussian_filter(rng.random((n, n)), 1.0) + 1.0
    f = np.fft.fftshift(np.fft.fft2(img - img.mean()))
    logp = np.log(np.abs(f) ** 2 / (img.size * img.mean() ** 2) + LOG_FLOOR)
    yy, xx = np.mgrid[:n, :n] - n // 2
    ring = np.rint(np.hypot(yy, xx)).astype(int)
    rings = [logp[ring == i].mean() for i in range(n // 8, n // 2)]
    assert spectral_highband(img, periodic=False) == pytest.approx(np.mean(rings), rel=1e-12)
    # band is in fractions of Nyquist
    rings_hi = [logp[ring == i].mean() for i in range(n // 4, n // 2)]
    got = spectral_highband(img, band=(0.5, 1.0), periodic=False)
    assert got == pytest.approx(np.mean(rings_hi), rel=1e-12)


def test_spectral_midband_matches_full_fft_annulus_mean() -> None:
    rng = np.random.default_rng(9)
    img = rng.random((20, 28)) + 2.0
    p = np.abs(np.fft.fft2(img - img.mean())) ** 2 / (img.size * img.mean() ** 2)
    pixel, na, lam = 0.5, 0.3, 0.6  # 2NA/λ = 1.0 cycles/µm, Nyquist = 1.0 cycles/µm
    fy = np.fft.fftfreq(20, pixel)[:, None]
    fx = np.fft.fftfreq(28, pixel)[None, :]
    r = np.hypot(fy, fx)
    ring = (r >= 0.25 - 1e-12) & (r <= 0.75 + 1e-12)
    got = spectral_midband(img, pixel_size_um=pixel, na=na, wavelength_um=lam, periodic=False)
    assert got == pytest.approx(p[ring].mean(), rel=1e-12)
    # a lower NA moves the band down: cut-off 2·0.15/0.6 = 0.5 cycles/µm
    ring = (r >= 0.125 - 1e-12) & (r <= 0.375 + 1e-12)
    got = spectral_midband(img, pixel_size_um=pixel, na=0.15, wavelength_um=lam, periodic=False)
    assert got == pytest.approx(p[ring].mean(), rel=1e-12)


def test_periodic_component_removes_the_border_cross() -> None:
    # A smooth ramp has almost no detail, but its raw FFT carries the border jump as a cross of
    # power on the axes; the periodic component (Moisan) does not.
    y, x = np.mgrid[:64, :64]
    ramp = 10.0 + 0.05 * x + 0.03 * y
    raw = spectral_midband(ramp, **OPTICS, periodic=False)
    per = spectral_midband(ramp, **OPTICS)
    assert per < 1e-3 * raw


# --- spectral_midband: in band vs out of band -------------------------------------------------


def grating(cycles: int, n: int = 64, axis: int = 1, amplitude: float = 0.2) -> np.ndarray:
    x = np.arange(n)
    g = 1.0 + amplitude * np.cos(2 * np.pi * cycles * x / n)
    return np.broadcast_to(g[None, :] if axis == 1 else g[:, None], (n, n)).copy()


def test_spectral_midband_prefers_frequencies_inside_its_band() -> None:
    # Nyquist-limited cut-off: band 0.25–0.75 × 0.5 cycles/px = 0.125–0.375 cycles/px
    inside = grating(16)  # 0.25 cycles/px
    below, above = grating(4), grating(28)  # 0.0625 and 0.4375 cycles/px
    for g in (below, above):
        assert g.var() == pytest.approx(inside.var())  # the same energy
    s_in = spectral_midband(inside, **OPTICS)
    for g in (below, above, below.T):
        assert s_in > 10 * spectral_midband(g, **OPTICS)
        # these gratings are exactly periodic: the raw FFT puts all their power on their own
        # frequency (the periodic component treats the wrap-around as a border and leaks a little)
        assert spectral_midband(inside, **OPTICS, periodic=False) > 1e9 * spectral_midband(
            g, **OPTICS, periodic=False
        )
    assert spectral_midband(grating(16, axis=0), **OPTICS) == pytest.approx(s_in, rel=1e-9)


def test_spectral_midband_needs_the_optics() -> None:
    img = textured(0, 32)
    with pytest.raises(ConfigError, match="na, wavelength_um"):
        score(img, "spectral-midband", pixel_size_um=0.325)
    with pytest.raises(ConfigError, match="needs the optics"):
        spectral_midband(img)
    with pytest.raises(ConfigError, match="µm"):
        spectral_midband(img, pixel_size_um=0.325, na=0.5, wavelength_um=530)
    with pytest.raises(ConfigError):
        spectral_midband(img, pixel_size_um=-1, na=0.5, wavelength_um=0.53)
    with pytest.raises(ConfigError, match="band"):
        spectral_midband(img, **OPTICS, band=(0.8, 0.2))


def test_mean_normalized_measures_reject_a_non_positive_mean() -> None:
    img = textured(0, 32) - 5.0
    for name in ("nvar", "spectral-highband", "spectral-midband"):
        with pytest.raises(ConfigError, match="mean intensity of plane 0"):
            score(img, name, **OPTICS)
    assert score(img, "tenengrad") > 0  # measures that do not normalize do not care


# --- Sobel map ------------------------------------------------------------------------------


def test_sobel_map_is_the_gradient_magnitude_of_a_ramp() -> None:
    y, x = np.mgrid[:20, :31]
    ramp = 3.0 + 0.7 * x - 0.4 * y
    s = sobel_sharpness_map(ramp)
    assert s.shape == ramp.shape and s.dtype == np.float64
    np.testing.assert_allclose(s[1:-1, 1:-1], math.hypot(0.7, 0.4), rtol=1e-12)
    stack = np.stack([ramp, 2 * ramp, np.zeros_like(ramp)]).astype(np.float32)
    sm = sobel_sharpness_map(stack)
    assert sm.shape == stack.shape and sm.dtype == np.float32
    np.testing.assert_allclose(sm[1, 1:-1, 1:-1], 2 * math.hypot(0.7, 0.4), rtol=1e-5)
    assert not sm[2].any()  # no smoothing across z


# --- Vollath analytics ----------------------------------------------------------------------


def test_vollath_f4_of_white_noise_is_zero_not_the_variance() -> None:
    # F4 = <I(x)I(x+1)> − <I(x)I(x+2)>: for uncorrelated pixels both means estimate μ², so
    # E[F4] = 0 exactly (not σ²); for zero-mean noise its s.d. is σ²·sqrt(1/P1 + 1/P2), the two
    # averages being uncorrelated (P1 = Y(X−1), P2 = Y(X−2) pairs).
    rng = np.random.default_rng(10)
    sigma, nz, ny, nx = 2.0, 40, 64, 64
    noise = rng.normal(0.0, sigma, size=(nz, ny, nx))
    f4 = vollath_f4(noise)
    sd = sigma**2 * math.sqrt(1 / (ny * (nx - 1)) + 1 / (ny * (nx - 2)))
    assert abs(f4.mean()) < 4 * sd / math.sqrt(nz)
    assert 0.6 * sd < f4.std() < 1.4 * sd
    assert np.abs(f4).max() < 0.1 * sigma**2
    # with a mean the expectation is still 0; F5 = <I(x)I(x+1)> − μ̂² has E = −σ²/(Y·X)
    f4_mu, f5_mu = vollath_f4(noise + 10.0), vollath_f5(noise + 10.0)
    assert abs(f4_mu.mean()) < 0.02 * sigma**2
    assert abs(f5_mu.mean()) < 0.02 * sigma**2


def test_vollath_of_a_lag_one_correlated_process() -> None:
    # I = μ + (e(x) + e(x+1))/√2: autocovariance σ² at lag 0, σ²/2 at lag 1, 0 at lag 2,
    # so F4 ≈ σ²/2 and F5 ≈ σ²/2.
    rng = np.random.default_rng(11)
    e = rng.normal(0.0, 1.0, size=(16, 64, 129))
    img = 10.0 + (e[..., :-1] + e[..., 1:]) / math.sqrt(2)
    assert vollath_f4(img).mean() == pytest.approx(0.5, abs=0.03)
    assert vollath_f5(img).mean() == pytest.approx(0.5, abs=0.03)


# --- Registry -------------------------------------------------------------------------------


def test_registry_names_and_fields() -> None:
    assert set(MEASURES) == set(EXPECTED_K)
    for name, m in MEASURES.items():
        assert m.name == name and m.maximize is True
        assert m.description and m.reference
        assert m.needs_optics == (name == "spectral-midband")
    assert MEASURES["spectral-highband"].function is spectral_highband


def test_get_measure_error_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_measure("sharpness")
    for name in MEASURES:
        assert name in str(info.value)


def test_score_orients_larger_is_sharper(monkeypatch: pytest.MonkeyPatch) -> None:
    img = textured(12, 48)
    blurred = ndi.gaussian_filter(img, 2.0)
    inverted = FocusMeasure(
        "blurriness", lambda im: 1.0 / tenengrad(im), False, -2, False, "1/Tenengrad", "test"
    )
    monkeypatch.setitem(MEASURES, "blurriness", inverted)
    assert inverted.function(img) < inverted.function(blurred)  # raw: smaller = sharper
    assert score(img, "blurriness") == pytest.approx(-inverted.function(img))
    assert score(img, "blurriness") > score(blurred, "blurriness")
    stack = np.stack([img, blurred])
    np.testing.assert_allclose(score(stack, "blurriness"), [-inverted.function(p) for p in stack])


def test_score_ignores_optics_for_measures_that_do_not_need_them() -> None:
    img = textured(13, 32)
    assert score(img, "brenner", **OPTICS) == brenner(img)
    assert score(img, "spectral-midband", **OPTICS) == spectral_midband(img, **OPTICS)


@pytest.mark.parametrize(
    ("function", "kwargs"),
    [
        (tenengrad, {"threshold": -1.0}),
        (sum_modified_laplacian, {"step": 0}),
        (sum_modified_laplacian, {"threshold": float("nan")}),
        (wavelet_sum, {"level": 0}),
        (wavelet_energy, {"level": 1.5}),
        (spectral_highband, {"band": (0.5, 1.5)}),
        (spectral_highband, {"band": 0.5}),
    ],
)
def test_bad_parameters_are_config_errors(function, kwargs) -> None:
    with pytest.raises(ConfigError):
        function(textured(0, 32), **kwargs)


def test_too_small_images_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least 3×3"):
        tenengrad(np.ones((2, 8)))
    with pytest.raises(ConfigError, match="at least 5×5"):
        sum_modified_laplacian(np.ones((4, 8)), step=2)
    with pytest.raises(ConfigError, match="at least 8×8"):
        wavelet_sum(np.ones((8, 7)), level=3)
