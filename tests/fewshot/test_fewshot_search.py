"""DeepFocus few-shot autofocus: the blur calibration (Moffat fit, shift by correlation,
convexity) and the search on replayed stacks and a fake scope."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focuskit import AUTOFOCUS_METHODS, ConfigError, autofocus
from focuskit.fewshot import (
    DEFAULT_MAX_IMAGES,
    BlurCalibration,
    MoffatFit,
    convexity,
    deepfocus_search,
    fit_moffat,
    moffat_fwhm,
    moffat_profile,
    shift_by_correlation,
)
from focuskit.io import FocalStack
from focuskit.scopes import BaseScope, FaultyScope, ScopeError, StackScope

MOFFAT = {"top": 2.0, "amplitude": 1.5, "z0": 1.3, "alpha": 4.0, "beta": 2.5}


# --- Moffat ----------------------------------------------------------------------------------


def test_moffat_fwhm_formula() -> None:
    # beta = 1 (Lorentzian): FWHM = 2·alpha; and the profile is at half depth there.
    assert moffat_fwhm(3.0, 1.0) == pytest.approx(6.0)
    fwhm = moffat_fwhm(4.0, 2.5)
    assert fwhm == pytest.approx(2 * 4.0 * math.sqrt(2 ** (1 / 2.5) - 1))
    top, amplitude = 2.0, 1.5
    half = moffat_profile(np.array([1.3 - fwhm / 2, 1.3 + fwhm / 2]), top, amplitude, 1.3, 4.0, 2.5)
    np.testing.assert_allclose(half, top - amplitude / 2)
    assert moffat_profile(1.3, top, amplitude, 1.3, 4.0, 2.5) == pytest.approx(top - amplitude)


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_moffat_fit_recovers_known_parameters(noise: float) -> None:
    z = np.linspace(-20, 20, 81)
    b = moffat_profile(z, *MOFFAT.values())
    b = b + noise * MOFFAT["amplitude"] * np.random.default_rng(1).standard_normal(z.size)
    fit = fit_moffat(z, b)
    tol = 1e-6 if noise == 0 else 0.05
    assert fit.z0_um == pytest.approx(MOFFAT["z0"], abs=tol * 4)
    assert fit.top == pytest.approx(MOFFAT["top"], rel=tol)
    assert fit.amplitude == pytest.approx(MOFFAT["amplitude"], rel=tol)
    assert fit.fwhm_um == pytest.approx(moffat_fwhm(MOFFAT["alpha"], MOFFAT["beta"]), rel=tol)
    assert fit.r2 > (0.999999 if noise == 0 else 0.99)
    assert 0.2 <= fit.beta <= 20
    np.testing.assert_allclose(
        fit(z), moffat_profile(z, fit.top, fit.amplitude, fit.z0_um, fit.alpha_um, fit.beta)
    )
    assert MoffatFit.from_dict(fit.to_dict()) == fit


@pytest.mark.parametrize(
    ("z", "b", "match"),
    [
        ([0, 1, 2, 3], [3, 1, 0, 1], "at least 5"),
        ([0, 1, 2, 3, 4], [3, 1, np.nan, 1, 3], "NaN"),
        ([0, 1, 2, 3, 4], [1, 1, 1, 1, 1], "flat"),
        ([0, 1, 1, 3, 4], [3, 1, 0, 1, 3], "repeat"),
    ],
)
def test_moffat_fit_refuses_bad_curves(z: list[float], b: list[float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        fit_moffat(z, b)


# --- Convexity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "b", "convex"),
    [
        ([-4, 0, 4], [1.0, 0.2, 0.9], True),  # V around the minimum
        ([-4, 0, 4], [0.9, 0.2, 1.0], True),
        (np.linspace(-5, 5, 9), np.linspace(-5, 5, 9) ** 2 / 25, True),  # U
        ([-4, 0, 4], [0.2, 0.6, 1.0], False),  # monotone line
        (np.linspace(-5, 5, 9), 0.5 + 0.1 * np.linspace(-5, 5, 9), False),
        ([-4, 0, 4], [0.2, 0.9, 0.3], False),  # concave (a maximum)
        ([-4, 0, 4], [0.5, 0.5, 0.5], False),  # flat
        ([0, 4, 8], [0.10, 0.22, 0.38], False),  # convex tail, nearly straight: no gain
    ],
)
def test_convexity(z: list[float], b: list[float], convex: bool) -> None:
    is_convex, r2q, r2l, curvature = convexity(z, b)
    assert is_convex is convex
    assert r2q >= r2l - 1e-12
    if len(z) == 3 and np.ptp(b) > 0:
        assert r2q == pytest.approx(1.0)  # three points: the quadratic fits exactly
    if convex:
        assert curvature > 0


def test_convexity_min_gain_and_curvature_units() -> None:
    z, b = [0, 4, 8], [0.10, 0.22, 0.38]
    assert convexity(z, b, min_gain=0.0)[0]
    # b = 0.3·z² (µm): the second derivative is 0.6 whatever the z offset.
    zz = np.array([100.0, 101.0, 103.0, 104.0])
    assert convexity(zz, 0.3 * (zz - 102) ** 2)[3] == pytest.approx(0.6)
    with pytest.raises(ConfigError, match="at least 3"):
        convexity([0, 1], [1, 0])


# --- Calibration and the shift ----------------------------------------------------------------


def _calibration(noise: float = 0.0, **kwargs: object) -> BlurCalibration:
    z = np.arange(-20, 20.01, 0.5)
    b = moffat_profile(z, *MOFFAT.values())
    b = b + noise * np.random.default_rng(2).standard_normal(z.size)
    return BlurCalibration.from_scores(z, b, **kwargs)  # type: ignore[arg-type]


def test_calibration_is_centred_on_the_moffat_minimum() -> None:
    cal = _calibration(model="stand-in", source={"path": "synthetic"})
    assert cal.focus_z_um == pytest.approx(1.3, abs=1e-4)
    assert cal.z_um[np.argmin(cal.score)] == pytest.approx(0.2, abs=1e-3)  # the sample at 1.5 µm
    assert cal.moffat is not None and cal.moffat.z0_um == 0.0
    assert cal.fwhm_um == pytest.approx(moffat_fwhm(4.0, 2.5), rel=1e-4)
    # The curve interpolates the samples and holds its edge values beyond them.
    assert cal.curve(cal.z_um[5]) == pytest.approx(cal.score[5])
    assert cal.curve(1e3) == pytest.approx(cal.score[-1])
    assert cal.curve(-1e3) == pytest.approx(cal.score[0])
    assert cal.created and cal.model == "stand-in"


def test_calibration_from_patch_scores_and_its_checks() -> None:
    z = np.arange(-10, 10.01, 1.0)
    patches = np.stack([np.abs(z) + k for k in (0.0, 0.2, 0.4)], axis=1)
    cal = BlurCalibration.from_scores(z, patches)
    np.testing.assert_allclose(cal.score, np.abs(z) + 0.2)  # the mean over patches
    assert cal.score_sd is not None and cal.score_sd == pytest.approx(
        np.full(z.size, np.std([0, 0.2, 0.4]))
    )
    assert abs(cal.focus_z_um) < 0.5
    with pytest.raises(ConfigError, match="passes through focus"):
        BlurCalibration.from_scores(z, z + 20)  # lowest at the end: the stack misses focus


def test_calibration_falls_back_to_the_parabola_when_the_fit_fails(tmp_path: Path) -> None:
    # Noise with one dip: no Moffat worth the name (R² < 0.5). The calibration still centres
    # on the dip (parabola through it and its neighbours) and measures the width from the
    # curve; it saves and loads without a Moffat.
    z = np.arange(-10, 10.01, 1.0)
    b = 0.5 + 0.5 * np.random.default_rng(0).random(z.size)
    b[9] = b.min() - 0.02
    cal = BlurCalibration.from_scores(z, b)
    assert cal.moffat is None
    assert -2.0 <= cal.focus_z_um <= 0.0
    assert 0 < cal.fwhm_um <= 20
    loaded = BlurCalibration.load(cal.save(tmp_path / "cal.json"))
    assert loaded.moffat is None and loaded.to_dict() == cal.to_dict()


def test_calibration_save_load_round_trip(tmp_path: Path) -> None:
    cal = _calibration(
        noise=0.01,
        score_sd=np.full(81, 0.05),
        model="builtin:fewshot-widefield",
        optics={"na": 0.5, "wavelength_um": 0.55},
        pixel_size_um=0.325,
        source={"path": "stack.tif", "shape": [81, 96, 96]},
    )
    path = cal.save(tmp_path / "cal.json")
    loaded = BlurCalibration.load(path)
    assert loaded.to_dict() == cal.to_dict()
    np.testing.assert_array_equal(loaded.z_um, cal.z_um)
    np.testing.assert_array_equal(loaded.score, cal.score)
    assert loaded.fwhm_um == cal.fwhm_um
    assert json.loads(path.read_text())["kind"] == "deepfocus-calibration"
    with pytest.raises(ConfigError, match="already exists"):
        cal.save(path)
    cal.save(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["cal.json"]  # no temporary left behind


def test_calibration_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json.*invalid JSON"):
        BlurCalibration.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "fcfnn-defocus"}))
    with pytest.raises(ConfigError, match=r"other\.json.*not a DeepFocus calibration"):
        BlurCalibration.load(other)
    damaged = tmp_path / "damaged.json"
    d = _calibration().to_dict()
    del d["score"]
    damaged.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=r"damaged\.json.*damaged calibration"):
        BlurCalibration.load(damaged)
    with pytest.raises(ConfigError, match=r"missing\.json.*not found"):
        BlurCalibration.load(tmp_path / "missing.json")


def test_shift_by_correlation_finds_a_known_shift() -> None:
    cal = _calibration(noise=0.01)
    z = np.array([3.0, 8.0, 13.0])
    f, cost = shift_by_correlation(z, cal.curve(z - 7.0), cal)
    assert np.shape(f) == () and np.shape(cost) == ()
    assert f == pytest.approx(7.0, abs=1e-3)
    assert cost == pytest.approx(0.0, abs=1e-9)
    # (M, P): one shift per patch, a NaN score gives NaN for that patch only.
    shifts = np.array([-3.0, 0.0, 7.33, 12.0])
    scores = np.stack([cal.curve(z - s) for s in shifts], axis=1)
    scores = np.concatenate([scores, np.array([[np.nan], [0.5], [0.5]])], axis=1)
    f, cost = shift_by_correlation(z, scores, cal)
    assert f.shape == cost.shape == (5,)
    np.testing.assert_allclose(f[:4], shifts, atol=1e-3)
    assert math.isnan(f[4]) and math.isnan(cost[4])
    # Any (M, …) shape; explicit candidates.
    f2, _ = shift_by_correlation(z, scores[:, :4].reshape(3, 2, 2), cal)
    np.testing.assert_allclose(f2.ravel(), shifts, atol=1e-3)
    f3, _ = shift_by_correlation(z, cal.curve(z - 7.0), cal, shifts_um=[0.0, 5.0, 7.0, 9.0])
    assert f3 == pytest.approx(7.0, abs=1e-6)


def test_shift_by_correlation_refuses_bad_input() -> None:
    cal = _calibration()
    with pytest.raises(ConfigError, match="BlurCalibration"):
        shift_by_correlation([0, 1, 2], [1, 0, 1], {"z_um": [0]})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must agree"):
        shift_by_correlation([0, 1, 2], [1, 0], cal)
    with pytest.raises(ConfigError, match="≥ 2"):
        shift_by_correlation([0], [1], cal)
    with pytest.raises(ConfigError, match="coarser"):
        shift_by_correlation([0, 1], [1, 0], cal, step_um=1e-6)


# --- The search -------------------------------------------------------------------------------


def _texture_stack(focus: float, seed: int, z_lo: float = -30, z_hi: float = 30) -> FocalStack:
    """A random texture blurred by a Gaussian of σ = 0.3 + 0.4·|z − focus| (as in
    test_search's synthetic stack), on a 96² grid of 32² patches."""
    import scipy.ndimage

    base = np.random.default_rng(seed).random((96, 96)).astype(np.float32)
    z = np.arange(z_lo, z_hi + 1e-9, 0.5)
    data = np.stack(
        [scipy.ndimage.gaussian_filter(base, 0.3 + 0.4 * abs(zi - focus), mode="wrap") for zi in z]
    )
    return FocalStack(data, z, 0.2, focus_z_um=focus)


def _inverse_std_map(image: np.ndarray, patch: int = 32) -> np.ndarray:
    """Stand-in blur score per 32² patch: tanh(0.01/std), ∝ σ of the blur until it saturates."""
    im = np.asarray(image, dtype=np.float64)
    ny, nx = im.shape[0] // patch, im.shape[1] // patch
    tiles = im[: ny * patch, : nx * patch].reshape(ny, patch, nx, patch)
    return np.tanh(0.01 / tiles.std(axis=(1, 3)))


@pytest.fixture(scope="module")
def texture_calibration() -> BlurCalibration:
    stack = _texture_stack(0.0, seed=1)
    maps = np.stack([_inverse_std_map(p) for p in stack.data])
    return BlurCalibration.from_scores(stack.z_um, maps.reshape(len(maps), -1), model="inverse-std")


@pytest.fixture(scope="module")
def shifted_stack() -> FocalStack:
    return _texture_stack(7.0, seed=2)  # another texture, focus shifted by +7 µm


@pytest.mark.parametrize(("max_images", "tolerance"), [(3, 2.5), (8, 1.0)])
def test_deepfocus_finds_a_shifted_focus_on_another_sample(
    texture_calibration: BlurCalibration,
    shifted_stack: FocalStack,
    max_images: int,
    tolerance: float,
) -> None:
    assert abs(texture_calibration.focus_z_um) < 0.5
    for start in (-25.0, -10.0, 0.0, 15.0, 28.0):
        scope = StackScope(shifted_stack, start_z_um=start)
        result = deepfocus_search(
            scope,
            score_map=_inverse_std_map,
            calibration=texture_calibration,
            max_images=max_images,
            tolerance_um=3.0,  # the stack has no optics: its DOF/2, given
        )
        assert abs(result.z_final_um - 7.0) <= tolerance, (start, result.z_final_um, result.message)
        assert result.images == scope.exposures == len(result.trace) <= max_images
        assert result.method == "deepfocus" and result.measure == "blur-cnn"
        assert result.z_final_um == scope.z_um
        assert result.trace[0] == (start, -result.score_start)
        imaged = dict(result.trace)
        if max_images == 3:  # the paper's budget: an estimate, nothing left to verify it
            assert not result.success
            assert "leaves none to verify" in result.message
            assert result.z_final_um == pytest.approx(result.predictions[-1]["z_focus_um"])
        else:  # verified: the final position was imaged and its score is that image's
            assert result.success, result.message
            assert result.score_final == -imaged[result.z_final_um]
            check = result.predictions[-1]["verification"]
            assert check["verified"] and check["final_um"] == result.z_final_um
            # The final position lies between two less sharp images at most 2·d apart.
            below, above = check["bracket_um"]
            assert below < result.z_final_um < above <= below + 2 * check["step_um"] + 1e-6
            sharp = dict(check["images"])
            assert max(sharp[below], sharp[above]) < sharp[check["center_um"]]
        record = result.predictions[-1]
        assert record["images"] <= result.images
        assert np.shape(record["map"]) == np.shape(record["roi"]) == (3, 3)
        json.dumps(result.to_dict(), allow_nan=False)


def test_autofocus_dispatches_deepfocus_with_an_roi_and_a_calibration_file(
    texture_calibration: BlurCalibration, shifted_stack: FocalStack, tmp_path: Path
) -> None:
    assert "deepfocus" in AUTOFOCUS_METHODS
    path = texture_calibration.save(tmp_path / "cal.json")
    scope = StackScope(shifted_stack, start_z_um=2.0)
    result = autofocus(
        scope,
        "deepfocus",
        score_map=_inverse_std_map,
        calibration=path,
        max_images=5,
        roi=(0, 64, 0, 64),
    )
    assert abs(result.z_final_um - 7.0) <= 1.0
    assert np.array(result.predictions[-1]["roi"]).tolist() == [
        [True, True, False],
        [True, True, False],
        [False, False, False],
    ]
    with pytest.raises(ConfigError, match="needs score_map"):
        autofocus(scope, "deepfocus", calibration=texture_calibration)
    with pytest.raises(ConfigError, match="needs calibration"):
        autofocus(scope, "deepfocus", score_map=_inverse_std_map)


class _LineScope(BaseScope):
    """A fake microscope whose images carry their own defocus: every pixel is z − focus,
    plus a tilt across the field (a patch's defocus differs by `tilt` µm per patch)."""

    def __init__(self, focus: float, tilt: float = 0.0, **kwargs: object) -> None:
        super().__init__(pixel_size_um=1.0, **kwargs)  # type: ignore[arg-type]
        self.focus = focus
        self.tilt = tilt

    def _image_at(self, z_um: float) -> np.ndarray:
        x = np.arange(64) // 16 - 1.5
        image = np.broadcast_to(z_um - self.focus + self.tilt * x[None, :], (64, 64)).copy()
        # Detail whose contrast peaks at focus (a real sharpness signal), zero at the patch
        # centres _line_map reads.
        checker = (np.indices((64, 64)).sum(axis=0) % 2) * 2.0 - 1.0
        checker[8::16, 8::16] = 0.0
        return image + 50.0 * np.exp(-0.5 * ((z_um - self.focus) / 6.0) ** 2) * checker


def _blur_of(defocus: np.ndarray) -> np.ndarray:
    return moffat_profile(defocus, 1.0, 0.9, 0.0, 5.0, 1.5)


def _line_map(image: np.ndarray) -> np.ndarray:
    """One score per 16² patch: the Moffat blur of its defocus, with a fixed ±1 % wobble."""
    patches = image[8::16, 8::16]
    wobble = 0.01 * np.sin(np.arange(patches.size)).reshape(patches.shape)
    return _blur_of(patches) + wobble


@pytest.fixture(scope="module")
def line_calibration() -> BlurCalibration:
    z = np.arange(-40, 40.01, 0.5)
    return BlurCalibration.from_scores(z, _blur_of(z))


@pytest.mark.parametrize("start", [-30.0, -8.0, 3.0, 12.0, 35.0])
def test_deepfocus_on_a_fake_scope_with_tilt(
    line_calibration: BlurCalibration, start: float
) -> None:
    scope = _LineScope(focus=3.0, tilt=0.4, z_limits_um=(-40.0, 40.0), start_z_um=start)
    result = deepfocus_search(
        scope, score_map=_line_map, calibration=line_calibration, tolerance_um=1.0
    )
    assert abs(result.z_final_um - 3.0) <= 0.3, result.message
    assert result.success and result.images <= DEFAULT_MAX_IMAGES
    # The tilt shows in the per-patch focus (−0.4 µm per patch column; a median over rows,
    # as a patch with all its images on the flat tail can match anywhere).
    columns = np.median(np.array(result.predictions[-1]["map"], dtype=float), axis=0)
    slope = np.polyfit(np.arange(columns.size), columns, 1)[0]
    assert -0.6 <= slope <= -0.2, columns


def test_success_means_the_sharpest_position_is_bracketed(
    line_calibration: BlurCalibration,
) -> None:
    scope = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=1.0)
    result = deepfocus_search(
        scope, score_map=_line_map, calibration=line_calibration, tolerance_um=1.0
    )
    assert result.success, result.message
    # Three images for the estimate, the fourth at it, then its two neighbours.
    assert result.trace[3][0] == pytest.approx(result.predictions[0]["z_focus_um"])
    check = result.predictions[-1]["verification"]
    below, above = check["bracket_um"]
    sharp = dict(check["images"])
    assert sharp[below] < sharp[check["center_um"]] > sharp[above]
    assert below < 3.0 < above  # the truth lies in the bracket
    assert result.z_final_um == check["final_um"] == scope.z_um
    assert result.score_final == -dict(result.trace)[result.z_final_um]  # measured there
    assert abs(result.z_final_um - 3.0) <= 0.1


def _biased_calibration(width: float) -> BlurCalibration:
    """A calibration whose curve is ``width`` times as wide as the sample's blur."""
    z = np.arange(-40, 40.01, 0.5)
    return BlurCalibration.from_scores(z, _blur_of(z / width))


def test_an_estimate_off_by_more_than_the_bracket_climbs_to_the_peak() -> None:
    # The sample's score rises twice as fast as the calibration's and the fit may only
    # scale it by up to 1.1: the estimate misses focus by more than one bracket step.
    scope = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=-20.0)
    result = deepfocus_search(
        scope,
        score_map=_line_map,
        calibration=_biased_calibration(2.0),
        max_images=12,
        gain_range=(0.9, 1.1),
        tolerance_um=1.0,
    )
    first = result.predictions[0]["z_focus_um"]
    assert abs(first - 3.0) > 1.5  # the blur scores alone are off
    assert result.success, result.message
    assert abs(result.z_final_um - 3.0) < 1.0  # the bracket's guarantee
    check = result.predictions[-1]["verification"]
    assert len(check["images"]) >= 4  # the centre, at least one step climbed, two sides


def test_the_budget_running_out_is_not_called_success() -> None:
    scope = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=-20.0)
    result = deepfocus_search(
        scope,
        score_map=_line_map,
        calibration=_biased_calibration(2.0),
        max_images=5,
        gain_range=(0.9, 1.1),
        tolerance_um=1.0,
    )
    assert not result.success and result.images == 5
    assert "budget ran out" in result.message
    # It goes to the sharpest image it took near the estimate, and says what it measured.
    check = result.predictions[-1]["verification"]
    assert result.z_final_um == check["best_um"]
    assert result.score_final == -dict(result.trace)[result.z_final_um]


def test_an_unverified_search_never_ends_less_sharp_than_an_image_it_took() -> None:
    """Blur scores that point 23 µm away from the sharpness peak: the bracket around the
    wrong estimate runs out of images, and the first images, near the real peak, are
    sharper than every image taken there — the stage goes to the sharpest one it took and
    says why."""
    scope = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=5.0)
    result = deepfocus_search(
        scope,
        score_map=lambda image: _line_map(image + 23.0),  # reads focus at z = −20 µm
        calibration=_biased_calibration(1.0),
        max_images=5,
        tolerance_um=1.0,
    )
    assert abs(result.predictions[0]["z_focus_um"] + 20.0) < 2.0  # the scores mislead
    assert not result.success
    assert "the sharpest image taken" in result.message and "less sharp" in result.message
    imaged = [z for z, _ in result.trace]
    assert any(result.z_final_um == pytest.approx(z) for z in imaged)
    assert abs(result.z_final_um - 3.0) <= 2.0  # as near the peak as the start, or nearer
    # Without the rule it would end near the wrong estimate, 20 µm from the peak.


def test_a_far_start_on_the_flat_tail_is_not_called_success(
    line_calibration: BlurCalibration,
) -> None:
    # Every image reads the tail: no measurement says where focus is.
    scope = _LineScope(focus=300.0, z_limits_um=(-40.0, 400.0), start_z_um=-30.0)
    result = deepfocus_search(
        scope, score_map=_line_map, calibration=line_calibration, max_images=4, range_um=60.0
    )
    assert not result.success
    assert result.message.startswith("failed:")


def test_a_focus_beyond_the_stage_is_clipped_and_said_so(line_calibration: BlurCalibration) -> None:
    scope = _LineScope(focus=14.0, z_limits_um=(-10.0, 10.0), start_z_um=0.0)
    result = deepfocus_search(
        scope, score_map=_line_map, calibration=line_calibration, max_images=4
    )
    assert result.predictions[-1]["z_focus_um"] == pytest.approx(14.0, abs=0.5)
    assert result.z_final_um == 10.0
    assert "outside the search window" in result.message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.floats(-4.0, 6.0),
    focus=st.floats(-30.0, 30.0),
    max_images=st.integers(3, 7),
    range_um=st.one_of(st.none(), st.floats(0.5, 30.0)),
    stage=st.one_of(
        st.tuples(st.none(), st.none()),
        st.tuples(st.floats(0.5, 5.0), st.none()),
        st.tuples(st.none(), st.just(0.25)),
    ),
)
def test_deepfocus_never_leaves_the_stage_limits(  # type: ignore[no-untyped-def]
    line_calibration, start, focus, max_images, range_um, stage
) -> None:
    max_step, resolution = stage
    scope = _LineScope(
        focus=focus,
        z_limits_um=(-4.0, 6.0),
        start_z_um=start,
        max_step_um=max_step,
        stage_resolution_um=resolution,
    )
    z1 = scope.z_um
    visited: list[float] = []
    original = scope.move_to

    def spy(z: float) -> None:
        visited.append(z)
        original(z)

    scope.move_to = spy  # type: ignore[method-assign]
    result = deepfocus_search(
        scope,
        score_map=_line_map,
        calibration=line_calibration,
        max_images=max_images,
        range_um=range_um,
    )
    assert all(-4.0 <= z <= 6.0 for z in visited)
    if range_um is not None:
        assert all(abs(z - z1) <= range_um / 2 + 0.25 + 1e-9 for z in [*visited, result.z_final_um])
    if max_step is not None and visited:
        path = [z1, *visited]
        assert max(abs(b - a) for a, b in itertools.pairwise(path)) <= max_step + 1e-9
    assert result.images == len(result.trace) <= max_images
    # Stops early only when verified, or for a reason more images would not change.
    final_reasons = ("no patch", "window's edge", "show no focus", "depth of field is unknown")
    assert (
        result.success
        or result.images == max_images
        or any(r in result.message for r in final_reasons)
    )
    if not result.success:
        assert result.message.startswith("failed")
        if "no patch gave a finite" in result.message:  # nothing to match: back to the start
            assert result.z_final_um == z1


def test_a_failing_camera_returns_the_stage_to_the_start(line_calibration: BlurCalibration) -> None:
    inner = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=-7.0)
    scope = FaultyScope(inner, fail_after_snaps=2)
    with pytest.raises(ScopeError, match="returned to z=-7"):
        deepfocus_search(scope, score_map=_line_map, calibration=line_calibration)  # type: ignore[arg-type]
    assert inner.z_um == -7.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_images": 2}, "max_images"),
        ({"max_images": 3.5}, "max_images"),
        (
            {"calibration": {"kind": "deepfocus-calibration"}},
            "calibration must be a BlurCalibration",
        ),
        ({"score_map": lambda im: im.ravel()}, "2-D"),
        ({"score_map": lambda im: np.full((2, 2), np.nan)}, "NaN"),
        ({"score_map": "tenengrad"}, "callable"),
        ({"roi": (100, 200, 100, 200)}, "no patch centre"),
        ({"range_um": -1.0}, "range_um"),
        ({"tolerance_um": 0.0}, "tolerance_um"),
    ],
)
def test_deepfocus_config_errors(
    line_calibration: BlurCalibration, kwargs: dict[str, object], match: str
) -> None:
    scope = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=0.0)
    args: dict[str, object] = {"score_map": _line_map, "calibration": line_calibration, **kwargs}
    with pytest.raises(ConfigError, match=match):
        deepfocus_search(scope, **args)  # type: ignore[arg-type]
    assert scope.z_um == 0.0


def test_depth_ratio_tells_a_curve_the_score_sees_from_a_flat_one() -> None:
    z = np.linspace(-20, 20, 41)
    seen = BlurCalibration.from_scores(z, 0.1 + np.abs(z) / 4, score_sd=np.full(41, 0.5))
    assert seen.depth_ratio == pytest.approx(5.0 / 0.5)
    rng = np.random.default_rng(0)
    flat = 4.6 + 0.2 * rng.standard_normal(41)
    flat[20] = 4.0  # lowest in the middle, so the calibration itself is accepted
    blind = BlurCalibration.from_scores(z, flat, score_sd=np.full(41, 0.5))
    assert blind.depth_ratio < 2
    assert math.isnan(BlurCalibration.from_scores(z, 0.1 + np.abs(z) / 4).depth_ratio)


def test_without_optics_or_a_tolerance_nothing_is_called_verified(
    line_calibration: BlurCalibration,
) -> None:
    # The fake scope has no optics and the calibration none either: no depth of field to
    # verify against, so the bracket is found but not called a success.
    scope = _LineScope(focus=3.0, z_limits_um=(-40.0, 40.0), start_z_um=1.0)
    result = deepfocus_search(scope, score_map=_line_map, calibration=line_calibration)
    assert not result.success
    assert "depth of field is unknown" in result.message
    assert abs(result.z_final_um - 3.0) <= 1.0  # it still went to the bracketed peak
