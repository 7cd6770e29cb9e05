"""DeepFocus: few-shot autofocus by matching blur scores to a calibrated curve
(Shajkofci & Liebling, DeepFocus, §2.2).

1. ``F`` = FWHM of the calibrated blur curve; image at ``z1`` (the start) and at the ends
   of ``[z1 − 2F, z1 + 2F]`` (clipped to the stage limits and the search range).
2. Convexity check of ``(z_i, b_i)`` (quadratic vs linear fit, ``focuskit.focus.convexity``).
3–5. Not convex and images left: one golden-section step of the bracket around the lowest
   score (into its larger side; past its end when the lowest score is at an end), image
   there, back to 2.
6. Per patch: ``f(x, y) = argmin_f Σ_i (b[x, y, z_i] − b_calib(z_i − f))²`` over all images
   (``shift_by_correlation``); the mean over the region of interest is the focus ``f̂``.
7. (Beyond the paper: no silent success) image at ``c = f̂`` and at ``c ± d`` (``d`` =
   the tolerance, DOF/2): a side sharper than ``c`` (by the classic measure
   ``focuskit.measures.default_measure`` picks for the scope's optics) becomes ``c`` and
   the search climbs one more step; both sides less sharp bracket the peak within
   ``(c − d, c + d)``: verified. The vertex of the parabola through the three is imaged
   when images are left and kept when sharper.
   ``success`` means a verified position; otherwise the stage goes to the sharpest image
   near the estimate and the result says why it could not be verified.

The blur scorer is injected (a :class:`BlurMapper`: image → 2-D array, lower = sharper,
e.g. ``BlurScorer.score_map``); :meth:`BlurScorer.autofocus` passes its own.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Protocol

import numpy as np

from focuskit._errors import ConfigError, FocuskitError
from focuskit.fewshot._calibration import BlurCalibration, convexity, shift_by_correlation
from focuskit.focus import parabola_vertex
from focuskit.measures import default_measure, score
from focuskit.scopes import Microscope, restore_on_failure
from focuskit.search import GOLDEN, Probe, SearchResult


class BlurMapper(Protocol):
    """image → 2-D array of blur scores, one per patch (lower = sharper)."""

    def __call__(self, image: np.ndarray, /) -> Any: ...


MEASURE = "blur-cnn"
# Three images for the estimate, three to bracket it (step 7), one climbing step or the vertex,
# one spare: 7.3 images on average on held-out families (bench/fewshot.py).
DEFAULT_MAX_IMAGES = 8
# Edge defocus (waves) of the first side peak of the verification measure's band power
# (spectral-midband, 0.25–0.75 of the cutoff) under the incoherent defocus OTF: far from
# focus the OTF's zero crossings sweep through the band and the sharpness curve has
# local maxima; the first is at W ≈ 1.5 waves (tests/fewshot recompute it from the OTF).
SIDE_PEAK_WAVES = 1.5
# The paper's choices (§2.2), where focuskit's defaults differ: both outer images at 2·FWHM,
# a plain shift of the calibration curve, each patch matched.
PAPER_SETTINGS: dict[str, Any] = {
    "spread_fwhm": 2.0,
    "gain_range": None,
    "combine": "patches",
}
GOLDEN_INNER = 1 - GOLDEN  # 0.381966…: the golden point's fraction into an interval
GOLDEN_GROW = 1 / GOLDEN  # 1.618…: how far past the end a monotone bracket expands
# An end of the first interval this much closer to z1 than the other end counts as collapsed.
_COLLAPSED = 0.2
# The automatic ROI keeps the patches whose correlation cost is ≤ this percentile…
_ROI_COST_PERCENTILE = 75.0
# … and averages their focus with this fraction trimmed from each side.
_ROI_TRIM = 0.1

Roi = tuple[int, int, int, int] | np.ndarray | None


def _jsonable(values: Any) -> Any:
    """Nested lists of floats for JSON, non-finite values as None."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        v = float(array)
        return v if math.isfinite(v) else None
    return [_jsonable(v) for v in array]


class _BlurProbe(Probe):
    """The classic searches' probe (step-limited, checked moves: ``Probe.move``), but each
    image gives a blur map (lower = sharper) instead of a focus measure.

    Keeps every image's map, z and ROI-mean score ``b_i``; ``trace`` holds ``(z_i, b_i)``.
    """

    def __init__(self, scope: Microscope, score_map: BlurMapper, roi: Roi) -> None:
        # No super().__init__: there is no registered focus measure to look up.
        self.scope = scope
        self.measure = MEASURE
        self.kwargs: dict[str, float] = {}
        self.trace: list[tuple[float, float]] = []
        self.score_map = score_map
        self.roi = roi
        self.roi_mask: np.ndarray | None = None  # patches of the explicit ROI (None: automatic)
        self.maps: list[np.ndarray] = []
        # The classic measure that verifies the end (larger = sharper): the one find-focus
        # and the classic searches use for this microscope.
        optics = getattr(scope, "optics", None)
        self.verify_measure = default_measure(optics)
        self.verify_kwargs: dict[str, float] = {}
        if optics is not None:
            self.verify_kwargs = {
                "pixel_size_um": float(scope.pixel_size_um),
                "na": float(optics.objective.na),
                "wavelength_um": float(optics.wavelength_um),
            }
        self.sharpness: list[float] = []

    def __call__(self, z: float) -> float:
        if z != self.scope.z_um:
            self.move(z)
        image = self.scope.snap()
        try:
            raw = self.score_map(image)
        except FocuskitError:
            raise
        except Exception as exc:  # a user's scorer: one line, not its traceback
            raise ConfigError(
                f"the blur scorer failed on the image at z = {self.scope.z_um:.3f} µm "
                f"({type(exc).__name__}: {exc}); check score_map on a plain image"
            ) from None
        m = self._checked_map(raw, np.shape(image))
        b = float(m[self.roi_mask].mean()) if self.roi_mask is not None else float(m.mean())
        self.maps.append(m)
        pixels = np.asarray(image, dtype=np.float32)
        self.sharpness.append(float(score(pixels, self.verify_measure, **self.verify_kwargs)))
        # Where the stage really is: a focus drive with finite resolution rounds targets.
        self.trace.append((float(self.scope.z_um), b))
        return b

    def _checked_map(self, raw: Any, image_shape: tuple[int, ...]) -> np.ndarray:
        try:
            m = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"score_map must return a 2-D array of blur scores, got {type(raw).__name__}"
            ) from None
        if m.ndim != 2 or m.size == 0:
            raise ConfigError(
                "score_map must return a non-empty 2-D array "
                f"(one score per patch), got shape {m.shape}"
            )
        if not np.isfinite(m).all():
            raise ConfigError(
                f"score_map returned NaN/Inf for {int((~np.isfinite(m)).sum())} of {m.size} "
                "patches — check the image and the scorer"
            )
        if self.maps and m.shape != self.maps[0].shape:
            raise ConfigError(
                f"score_map returned shape {m.shape} after {self.maps[0].shape} — "
                "every image must give the same patch grid"
            )
        if not self.maps:
            self.roi_mask = _roi_mask(self.roi, m.shape, image_shape)
        return m

    @property
    def z(self) -> np.ndarray:
        return np.array([t[0] for t in self.trace])

    @property
    def b(self) -> np.ndarray:
        return np.array([t[1] for t in self.trace])

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The (z, b) imaged so far, one point per distinct z (repeats averaged: a stage
        with a finite resolution can land twice on the same z)."""
        z, inverse = np.unique(self.z, return_inverse=True)
        b = np.bincount(inverse.ravel(), weights=self.b) / np.bincount(inverse.ravel())
        return z, b

    def convexity(self, min_gain: float) -> tuple[bool, float, float, float]:
        z, b = self.curve()
        if z.size < 3:
            return False, math.nan, math.nan, math.nan
        return convexity(z, b, min_gain=min_gain)


def _roi_mask(
    roi: Roi, map_shape: tuple[int, ...], image_shape: tuple[int, ...]
) -> np.ndarray | None:
    """The patches inside ``roi``: a boolean mask of the map's shape, or pixel bounds
    ``(y0, y1, x0, x1)`` (patches whose centre lies inside; the map is taken to tile the
    image evenly, patch j of n centred at (j + ½)·size/n). None: automatic ROI."""
    if roi is None:
        return None
    if isinstance(roi, np.ndarray) and roi.dtype == bool:
        if roi.shape != map_shape:
            raise ConfigError(
                f"roi mask has shape {roi.shape}; the blur map has {map_shape} — "
                "give one value per patch"
            )
        mask = roi.copy()
    else:
        try:
            y0, y1, x0, x1 = (float(v) for v in roi)
        except (TypeError, ValueError):
            raise ConfigError(
                f"roi must be (y0, y1, x0, x1) in pixels or a boolean patch mask, got {roi!r}"
            ) from None
        if len(image_shape) < 2:
            raise ConfigError(f"roi in pixels needs a 2-D image, got shape {image_shape}")
        height, width = image_shape[-2], image_shape[-1]
        cy = (np.arange(map_shape[0]) + 0.5) * height / map_shape[0]
        cx = (np.arange(map_shape[1]) + 0.5) * width / map_shape[1]
        mask = ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    if not mask.any():
        raise ConfigError(
            f"roi {roi if not isinstance(roi, np.ndarray) else 'mask'} holds no "
            "patch centre — enlarge it"
        )
    return mask


def _window(scope: Microscope, z1: float, range_um: float | None) -> tuple[float, float]:
    """Where the search may go: the stage limits, within ``z1 ± range_um/2`` when given."""
    lo, hi = (float(v) for v in scope.z_limits_um)
    if range_um is not None:
        if not (math.isfinite(range_um) and range_um > 0):
            raise ConfigError(
                f"range_um must be > 0 µm (or None for the whole stage), got {range_um!r}"
            )
        lo, hi = max(lo, z1 - range_um / 2), min(hi, z1 + range_um / 2)
    if not hi > lo:
        raise ConfigError(
            f"the search window [{lo:g}, {hi:g}] µm around z = {z1:g} µm is empty — "
            "widen range_um or move away from the stage limit"
        )
    return lo, hi


def _first_points(z1: float, spread: float, lo: float, hi: float) -> tuple[float, float]:
    """Step 1's interval ends ``z1 ∓ spread`` (the paper: 2·FWHM) clipped to [lo, hi]; an end
    that clipping pulls (almost) onto z1 is replaced by the golden point into the other side."""
    z2, z3 = max(lo, z1 - spread), min(hi, z1 + spread)
    below, above = z1 - z2, z3 - z1
    if below < _COLLAPSED * above:
        z2 = z1 + GOLDEN_INNER * above
    elif above < _COLLAPSED * below:
        z3 = z1 - GOLDEN_INNER * below
    return z2, z3


def _next_point(z: np.ndarray, b: np.ndarray, lo: float, hi: float) -> float:
    """One golden-section update (§2.2 step 3) of the bracket around the lowest score
    (``z`` distinct, at least two).

    Lowest score inside: the golden point 0.382 into its larger neighbouring gap. At an
    end (monotone: focus outside): 1.618 × the end gap past that end, clipped to [lo, hi];
    where the end is already at the limit, the golden point into its gap instead.
    """
    order = np.argsort(z)
    zs, bs = z[order], b[order]
    if zs.size < 2:  # every image landed on one z: try the far side of the window
        return hi if hi - zs[0] >= zs[0] - lo else lo
    j = int(np.argmin(bs))
    if 0 < j < zs.size - 1:
        left, right = zs[j] - zs[j - 1], zs[j + 1] - zs[j]
        return float(zs[j] + GOLDEN_INNER * right if right >= left else zs[j] - GOLDEN_INNER * left)
    if j == 0:
        gap = zs[1] - zs[0]
        new = max(lo, zs[0] - GOLDEN_GROW * gap)
        return float(new if zs[0] - new > 1e-3 * gap else zs[0] + GOLDEN_INNER * gap)
    gap = zs[-1] - zs[-2]
    new = min(hi, zs[-1] + GOLDEN_GROW * gap)
    return float(new if new - zs[-1] > 1e-3 * gap else zs[-1] - GOLDEN_INNER * gap)


def _estimate(
    probe: _BlurProbe,
    calibration: BlurCalibration,
    gain_range: tuple[float, float] | None = None,
    combine: str = "mean",
) -> dict[str, Any]:
    """Step 6: per-patch focus by correlation with the calibration (the map), and the focus.

    ``combine="patches"`` (the paper): the map averaged over the ROI. Patches whose best
    shift is an end of the candidate range are left out (no minimum). Automatic ROI: of the
    rest, those whose correlation cost is ≤ the 75th percentile (the worst-matching quarter
    dropped), averaged with 10 % trimmed from each side. ``combine="mean"``: the ROI-mean
    score of each image matched once — robust where patches differ a lot from the
    calibration's mean curve (a real wafer: most single patches matched 42 µm off, their
    mean 1 µm).
    """
    maps = np.stack(probe.maps)
    z = probe.z
    f, cost = shift_by_correlation(
        z, maps.reshape(len(maps), -1), calibration, gain_range=gain_range
    )
    f, cost = np.asarray(f), np.asarray(cost)
    # A patch whose best shift is the end of the candidate range found no minimum: it has
    # every image on the calibration's flat tail (held edge values), so any farther f
    # fits as well. It says nothing about where focus is.
    reach, tiny = calibration.half_range_um, 1e-6 * max(1.0, calibration.half_range_um)
    inside = (f > z.min() - reach + tiny) & (f < z.max() + reach - tiny)
    good = np.isfinite(f) & np.isfinite(cost) & inside
    if probe.roi_mask is not None:
        chosen = probe.roi_mask.ravel() & good
        f_hat = float(f[chosen].mean()) if chosen.any() else math.nan
    else:
        chosen = good.copy()
        if good.any():
            chosen &= cost <= np.percentile(cost[good], _ROI_COST_PERCENTILE)
        values = np.sort(f[chosen])
        cut = int(_ROI_TRIM * values.size)
        values = values[cut : values.size - cut] if values.size > 2 * cut else values
        f_hat = float(values.mean()) if values.size else math.nan
    roi_cost = float(cost[chosen].mean()) if chosen.any() else math.nan
    if combine == "mean":
        f_mean, c_mean = shift_by_correlation(z, probe.b, calibration, gain_range=gain_range)
        inside_mean = z.min() - reach + tiny < float(f_mean) < z.max() + reach - tiny
        f_hat = float(f_mean) if inside_mean else math.nan
        roi_cost = float(c_mean)
    shape = maps.shape[1:]
    return {
        "images": len(maps),
        "z_um": _jsonable(z),
        "scores": _jsonable(probe.b),
        "z_focus_um": _jsonable(f_hat),
        "cost": _jsonable(roi_cost),
        "map": _jsonable(f.reshape(shape)),
        "cost_map": _jsonable(cost.reshape(shape)),
        "roi": chosen.reshape(shape).tolist(),
    }


def _tolerance(
    scope: Microscope, calibration: BlurCalibration, given: float | None
) -> tuple[float, bool]:
    """How close to focus a verified position must be (µm), and whether that is known:
    ``given``, else DOF/2 of the scope's optics, else of the calibrated objective's; else
    FWHM/8 of the calibration to climb with, but not known (nothing can then be verified
    to within a depth of field nobody gave)."""
    if given is not None:
        if isinstance(given, bool) or not (
            isinstance(given, (int, float)) and math.isfinite(given) and given > 0
        ):
            raise ConfigError(f"tolerance_um must be > 0 µm (or None for DOF/2), got {given!r}")
        return float(given), True
    optics = getattr(scope, "optics", None)
    if optics is None and calibration.optics:
        from focuskit.optics import Optics

        try:
            optics = Optics.from_dict(calibration.optics)
        except FocuskitError:
            optics = None
    if optics is not None:
        return float(optics.depth_of_field_um) / 2, True
    return calibration.fwhm_um / 8, False


def _blur_level(scope: Microscope, calibration: BlurCalibration) -> float | None:
    """The highest blur score a verified focus may read: the calibration at half the
    defocus of the sharpness measure's first side peak, ``z = SIDE_PEAK_WAVES/2 ÷ dW/dz``
    (None without optics: no side-peak check)."""
    from focuskit.fewshot._data import waves_per_um

    optics = getattr(scope, "optics", None)
    if optics is None:
        return None
    rate = waves_per_um(optics.objective.na, optics.wavelength_um, optics.objective.immersion_index)
    return float(calibration.curve(SIDE_PEAK_WAVES / 2 / rate))


def _bracket(
    probe: _BlurProbe,
    f_hat: float,
    tol: float,
    lo: float,
    hi: float,
    max_images: int,
    records: list[dict[str, Any]],
    refit: Any,
    blur_level: float | None = None,
) -> dict[str, Any]:
    """Step 7: verify the estimate by bracketing the sharpest position between two images.

    Image at ``c`` = f̂, then at ``c ± d`` (``d`` = ``tol``, first on the side the blur
    scores' re-estimate points to). A side sharper than ``c`` (the probe's
    ``verify_measure``) moves
    ``c`` there and images one step farther (climbing toward focus, as the CNN may be
    off by more than ``d``); when both sides are less sharp than ``c``, the peak of a
    unimodal sharpness curve lies in ``(c − d, c + d)``: verified, ``|error| < d``. Then
    the vertex of the parabola through the three log sharpnesses is imaged, when the
    budget allows, and kept when it is at least as sharp as ``c``.

    A sharpness measure verifies, not the blur CNN: the CNN's reading differs between
    samples by as much as the depth of field near focus, the relative sharpness of one
    sample's images does not. But a sharpness curve also peaks far from focus, where the
    OTF's zero crossings sweep through its band (:data:`SIDE_PEAK_WAVES`); there the blur
    score is far from its in-focus value. So a bracketed peak whose blur score exceeds
    ``blur_level`` (the calibration at half the side peak's defocus) is refused.
    """
    taken: dict[float, float] = {}

    def shot(z: float) -> float | None:
        z = min(max(z, lo), hi)
        near = np.flatnonzero(np.abs(probe.z - z) <= 1e-6 * max(1.0, tol))
        if near.size:
            taken[float(probe.z[near[-1]])] = probe.sharpness[int(near[-1])]
            return probe.sharpness[int(near[-1])]
        if len(probe.trace) >= max_images:
            return None
        probe(z)
        taken[float(probe.z[-1])] = probe.sharpness[-1]
        return probe.sharpness[-1]

    def out(verified: bool, reason: str, **extra: Any) -> dict[str, Any]:
        best = max(taken, key=taken.get) if taken else None  # type: ignore[arg-type]
        check = {
            "verified": verified,
            "reason": reason,
            "measure": probe.verify_measure,
            "step_um": tol,
            "images": [[z, v] for z, v in sorted(taken.items())],
            "best_um": best,
            **extra,
        }
        records[-1]["verification"] = check
        return check

    c = min(max(f_hat, lo), hi)
    s_c = shot(c)
    if s_c is None:
        return out(False, "no image left to verify the estimate")
    c = float(probe.z[np.argmin(np.abs(probe.z - c))])  # where the stage really went
    while True:
        records.append(refit())
        again = records[-1]["z_focus_um"]
        order = (1.0, -1.0) if again is None or again >= c else (-1.0, 1.0)
        sides: dict[float, float] = {}
        moved = False
        for sign in order:
            z_side = min(max(c + sign * tol, lo), hi)
            if abs(z_side - c) < tol / 2:
                return out(False, f"the sharpest image z = {c:+.2f} µm is at the window's edge")
            s_side = shot(z_side)
            if s_side is None:
                return out(False, f"the budget ran out while bracketing z = {c:+.2f} µm")
            z_side = float(probe.z[np.argmin(np.abs(probe.z - z_side))])
            if s_side > s_c:
                c, s_c, moved = z_side, s_side, True  # climb toward the sharper side
                break
            if not s_side < s_c:
                return out(
                    False,
                    f"the {probe.verify_measure} sharpness is the same at z = {c:+.2f} and "
                    f"{z_side:+.2f} µm: the images show no focus",
                )
            sides[sign] = z_side
        if moved:
            continue
        b_c = float(probe.b[int(np.argmin(np.abs(probe.z - c)))])
        if blur_level is not None and b_c > blur_level:
            return out(
                False,
                f"the sharpness peak bracketed at z = {c:+.2f} µm reads a blur score "
                f"{b_c:.3g}, above {blur_level:.3g} (the calibration halfway to the measure's "
                "first side peak): a side peak of the sharpness curve, not focus",
            )
        z3 = np.array([sides[-1.0], c, sides[1.0]])
        s3 = np.log(np.maximum([taken[sides[-1.0]], s_c, taken[sides[1.0]]], 1e-300))
        final = c
        vertex = parabola_vertex(z3, s3)
        if vertex is not None and abs(vertex - c) > tol / 8 and z3[0] < vertex < z3[2]:
            s_v = shot(float(vertex))
            if s_v is not None and s_v >= s_c:
                final = float(probe.z[np.argmin(np.abs(probe.z - vertex))])
        return out(True, "", final_um=final, bracket_um=[float(z3[0]), float(z3[2])], center_um=c)


def _failure_reason(
    check: dict[str, Any] | None, max_images: int, f_hat: float, z_final: float, z1: float
) -> str:
    """Why no position was verified, and where the stage went instead."""
    if check is None and not math.isfinite(f_hat):
        return f"no patch gave a finite focus estimate; returned to the start z = {z1:+.2f} µm"
    if check is None:
        return (
            f"the budget of {max_images} images leaves none to verify the estimate "
            f"(give max_images ≥ {DEFAULT_MAX_IMAGES}); moved to the unverified estimate "
            f"z = {z_final:+.2f} µm"
        )
    return (
        f"not verified ({check['reason']}); moved to z = {z_final:+.2f} µm, the sharpest "
        "image near the estimate — raise max_images, start closer to focus or fall back to "
        "a classic search"
    )


def deepfocus_search(
    scope: Microscope,
    *,
    score_map: BlurMapper,
    calibration: BlurCalibration | str | os.PathLike[str],
    max_images: int = DEFAULT_MAX_IMAGES,
    range_um: float | None = None,
    roi: Roi = None,
    tolerance_um: float | None = None,
    min_gain: float = 0.05,
    spread_fwhm: float = 0.5,
    gain_range: tuple[float, float] | None = (0.5, 2.0),
    combine: str = "mean",
) -> SearchResult:
    """Few-shot autofocus with a blur scorer and its calibration (DeepFocus §2.2).

    Steps 1–7 of the module docstring: three images at ``z1`` and ``z1 ± spread_fwhm·F``,
    golden-section steps until the scores are convex, per-patch correlation with the
    calibration, refinement images while the budget allows, then a move to ``f̂``.

    Parameters
    ----------
    scope : Microscope
        The microscope to focus; the search starts at its current z (µm).
    score_map : BlurMapper
        image → 2-D array, one blur score per patch (lower = sharper), e.g.
        ``BlurScorer.score_map``.
    calibration : BlurCalibration or path or "physical"
        A :class:`BlurCalibration` of this objective (or its JSON path), or
        ``"physical"``: :meth:`BlurCalibration.from_optics` of the scope's optics (the
        wavefront the CNN was trained to read; no calibration stack).
    max_images : int
        Image budget (≥ 3; default 8): three for step 1, more for steps 3–5 while the
        scores are not convex (one kept back), then the bracket of step 7 (three when the
        estimate is within ``d`` of focus, one more per step climbed, one at the
        vertex). With 3 nothing is left to verify: the result is the paper's unverified
        estimate, ``success=False``.
    range_um : float, optional
        Keep every image and the final move within ``z1 ± range_um/2`` (µm; default: the
        whole stage).
    roi : (int, int, int, int) or ndarray, optional
        ``(y0, y1, x0, x1)`` in pixels (the patches whose centre lies inside), a boolean
        mask of the map's shape, or None: the best-matching three quarters of the patches,
        trimmed mean.
    tolerance_um : float, optional
        The bracket's half width ``d``: a verified position is within it of the
        sharpness peak (µm; default DOF/2 of the scope's optics, else of the calibrated
        objective's, else FWHM/8 of the calibration).
    min_gain : float
        Convexity: R²_quadratic − R²_linear must exceed this (and the curvature be > 0).
    spread_fwhm : float
        Step 1's images at ``z1 ± spread_fwhm·FWHM``. The paper says 2; with our score,
        whose curve saturates about one FWHM from focus, 2·FWHM puts both outer images on
        the plateau (median error 8–10 µm with 3 images on deepfocus-10x, against about 1 µm at
        0.5; ``bench/fewshot.py`` measures both). ``PAPER_SETTINGS`` restores the paper's.
    gain_range : (float, float) or None
        ``(lo, hi)`` (default (0.5, 2)): also fit a per-patch gain on the curve's rise above
        its minimum (``shift_by_correlation``), which absorbs how much faster or slower
        this sample's score climbs than the calibration sample's. None: the paper's plain
        shift.
    combine : {"mean", "patches"}
        ``"mean"`` (default): match the ROI-mean score of each image; ``"patches"`` (the
        paper): match every patch, average the per-patch focus over the ROI. The
        per-patch map is recorded either way.

    Returns
    -------
    result : SearchResult
        ``method="deepfocus"``, ``measure="blur-cnn"``:
        ``trace`` holds ``(z_i, b_i)`` (b the ROI-mean blur; lower = sharper);
        ``score_start = −b_1``; ``score_final = −b`` measured at the final position (NaN
        when nothing was imaged there; larger = better, as for the classic searches); one
        record per estimate in ``predictions`` (the per-patch focus ``map``, its
        ``cost_map``, the ``roi`` used, the images' ``z_um`` and ``scores``,
        ``z_focus_um`` = f̂; the last record's ``verification`` holds ``verified``, the
        ``reason`` when not, the ``measure`` and ``step_um`` ``d``, the bracket's
        ``images`` ([z, sharpness] pairs), ``bracket_um``, ``center_um`` and ``final_um``).
        ``success``: the final position lies within ``d`` of the sharpness peak, shown by
        images on both sides (step 7); when not, the stage goes to the sharpest image near
        the estimate (or the estimate, or back to the start without one) and ``message``
        says why. The stage never leaves the window (targets are clipped, moves
        are made in steps the stage allows) and returns to the start if the camera, the
        stage or the scorer fails.

    Raises
    ------
    ConfigError
        On an invalid setting, a calibration that is not one (or has no finite FWHM), an
        empty search window, or a score map that is not a finite 2-D array of one shape.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 (steps 1–7) and Fig. 4.
    """
    if not callable(score_map):
        raise ConfigError(
            "score_map must be a callable image → 2-D blur map (e.g. BlurScorer.score_map)"
        )
    if isinstance(calibration, str) and calibration == "physical":
        if getattr(scope, "optics", None) is None:
            raise ConfigError(
                "calibration='physical' needs a scope that knows its optics; calibrate on a "
                "stack through focus instead (`focuskit fewshot calibrate`)"
            )
        calibration = BlurCalibration.from_optics(scope.optics, pixel_size_um=scope.pixel_size_um)
    elif isinstance(calibration, (str, os.PathLike)):
        calibration = BlurCalibration.load(calibration)
    if not isinstance(calibration, BlurCalibration):
        raise ConfigError(
            "calibration must be a BlurCalibration (or its JSON path), got "
            f"{type(calibration).__name__}"
        )
    if (
        isinstance(max_images, bool)
        or not isinstance(max_images, (int, np.integer))
        or max_images < 3
    ):
        raise ConfigError(
            "max_images must be an integer ≥ 3 (DeepFocus starts with three "
            f"images), got {max_images!r}"
        )
    if combine not in ("mean", "patches"):
        raise ConfigError(f"combine must be 'mean' or 'patches', got {combine!r}")
    if not (math.isfinite(spread_fwhm) and spread_fwhm > 0):
        raise ConfigError(
            f"spread_fwhm must be > 0 (the first images at z1 ± spread·FWHM), got {spread_fwhm!r}"
        )
    if not (math.isfinite(min_gain) and min_gain >= 0):
        raise ConfigError(f"min_gain must be ≥ 0, got {min_gain!r}")
    fwhm = calibration.fwhm_um
    if not (math.isfinite(fwhm) and fwhm > 0):
        raise ConfigError(
            f"the calibration's FWHM is {fwhm!r} µm — recalibrate with a stack through focus"
        )

    t_compute = time.perf_counter()
    elapsed0, exposures0 = scope.elapsed_s, scope.exposures
    z1 = float(scope.z_um)
    lo, hi = _window(scope, z1, range_um)
    tol, tol_known = _tolerance(scope, calibration, tolerance_um)
    probe = _BlurProbe(scope, score_map, roi)
    notes: list[str] = []
    records: list[dict[str, Any]] = []
    b1 = probe(z1)  # no move yet: a bad score map raises ConfigError with the stage untouched
    verified: dict[str, Any] | None = None
    with restore_on_failure(scope):
        for z in _first_points(z1, spread_fwhm * fwhm, lo, hi):
            probe(z)
        convex, r2q, r2l, _ = probe.convexity(min_gain)
        # Golden steps until convex, keeping three images to bracket the estimate (step 7).
        while not convex and len(probe.trace) < max_images - min(3, max_images - 3):
            probe(_next_point(*probe.curve(), lo, hi))
            convex, r2q, r2l, _ = probe.convexity(min_gain)
        if not convex:
            notes.append(
                f"the blur scores were not convex after {len(probe.trace)} images "
                f"(R² quadratic {r2q:.3f} vs linear {r2l:.3f})"
            )

        def refit() -> dict[str, Any]:
            return _estimate(probe, calibration, gain_range, combine)

        records.append(refit())
        first = records[-1]["z_focus_um"]
        if first is not None and len(probe.trace) < max_images:
            verified = _bracket(
                probe,
                float(first),
                tol,
                lo,
                hi,
                max_images,
                records,
                refit,
                _blur_level(scope, calibration),
            )
        last = records[-1]
        f_hat = math.nan if last["z_focus_um"] is None else float(last["z_focus_um"])
        if verified is not None and verified["verified"]:
            target = float(verified["final_um"])
        elif verified is not None and verified.get("best_um") is not None:
            target = float(verified["best_um"])  # the sharpest image near the estimate
        elif math.isfinite(f_hat):
            target = min(max(f_hat, lo), hi)
        else:
            target = z1
        if math.isfinite(f_hat) and not lo <= f_hat <= hi:
            notes.append(
                f"the estimated focus z = {f_hat:+.2f} µm lies outside the search window "
                f"[{lo:g}, {hi:g}] µm (searched up to its edge)"
            )
        if target != scope.z_um:
            probe.move(target)
    z_final = float(scope.z_um)
    if verified is not None and verified["verified"] and not tol_known:
        # Bracketed, but within FWHM/8 of a curve that may be far wider than the DOF.
        verified = dict(verified, verified=False)
        verified["reason"] = (
            f"bracketed within ±{tol:.2f} µm, but the depth of field is unknown (no optics): "
            "give tolerance_um (--tolerance) to verify"
        )
        records[-1]["verification"] = verified
    success = verified is not None and bool(verified["verified"])
    imaged = np.abs(probe.z - z_final) <= 1e-9 * max(1.0, abs(z_final))
    score_final = -float(probe.b[imaged][-1]) if imaged.any() else math.nan
    if success:
        assert verified is not None
        lo_b, hi_b = verified["bracket_um"]
        notes.insert(
            0,
            f"focus z = {z_final:+.2f} µm, verified: the images at {lo_b:+.2f} and "
            f"{hi_b:+.2f} µm are less sharp ({verified['measure']}) than the one between them "
            f"({len(probe.trace)} images; moved by {z_final - z1:+.2f} µm)",
        )
    else:
        notes.insert(0, "failed: " + _failure_reason(verified, max_images, f_hat, z_final, z1))
    return SearchResult(
        method="deepfocus",
        measure=MEASURE,
        z_start_um=z1,
        z_final_um=z_final,
        score_start=-b1,
        score_final=score_final,
        images=scope.exposures - exposures0,
        success=success,
        trace=list(probe.trace),
        message="; ".join(notes),
        elapsed_s=scope.elapsed_s - elapsed0,
        compute_s=time.perf_counter() - t_compute,
        predictions=records,
        verified=success,
        peak_in_range=None if verified is None else bool(verified["verified"]),
    )
