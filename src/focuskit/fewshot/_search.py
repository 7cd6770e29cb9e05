"""DeepFocus: few-shot autofocus by matching blur scores to a calibrated curve
(Shajkofci & Liebling, DeepFocus, §2.2).

The paper's design (``design="paper"``, and the fallback):

1. ``F`` = FWHM of the calibrated blur curve; image at ``z1`` (the start) and at the ends
   of ``[z1 − 2F, z1 + 2F]`` (clipped to the stage limits and the search range).
2. Convexity check of ``(z_i, b_i)`` (quadratic vs linear fit, ``focuskit.focus.convexity``).
3–5. Not convex and images left: one golden-section step of the bracket around the lowest
   score (into its larger side; past its end when the lowest score is at an end), image
   there, back to 2.
6. Per patch: ``f(x, y) = argmin_f Σ_i (b[x, y, z_i] − b_calib(z_i − f))²`` over all images
   (``shift_by_correlation``); the mean over the region of interest is the focus ``f̂``.

The pair design (``design="pair"``, the default with the physical calibration where the
optics are known; beyond the paper): the blur CNN places focus to a few µm from two
images, ``z1`` and ``z1 + s`` (``s`` the distance from focus the first score reads,
within DOF … spread·F); it reads
different samples differently near focus, so more blur images do not make it finer.
Two images at ``f̂ ± d`` (``d`` = DOF/2) then place it finely: near focus the default
measure's band power is ``S(z) ≈ A·T(z − f)``, ``T`` the band's mean ``|OTF_z|²`` from
the optics (:func:`midband_defocus_curve`) and ``A`` the sample's own spectrum, which
cancels in the ratio ``S₊/S₋`` (the camera noise's share, :func:`midband_noise_floor`,
taken off first). Where ``T``'s flat stretches give the ratio several roots, the one that
fits the blur scores best. Four images in all. With the physical calibration each
image's blur score weights its patches by the structure they hold above the noise
(:func:`content_weights`): background patches of a sparse sample read noise.

7. (Beyond the paper: no silent success) image at ``c = f̂`` and at ``c ± d`` (``d`` =
   the tolerance, DOF/2; an image already taken between ``d/2`` and ``d`` from ``c`` serves
   for its side): a side sharper than ``c`` (by the classic measure
   ``focuskit.measures.default_measure`` picks for the scope's optics) becomes ``c`` and
   the search climbs one more step; both sides less sharp bracket the peak within
   ``(c − d, c + d)``: verified. The vertex of the parabola through the three is imaged
   when images are left and kept when sharper.
   ``success`` means a verified position; otherwise the stage goes to the sharpest image
   near the estimate — or to the sharpest image taken, when the images near the estimate
   are less sharp than it (it never ends less sharp than an image it saw) — and the
   result says why it could not be verified.

The blur scorer is injected (a :class:`BlurMapper`: image → 2-D array, lower = sharper,
e.g. ``BlurScorer.score_map``); :meth:`BlurScorer.autofocus` passes its own.
"""

from __future__ import annotations

import functools
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
    "design": "paper",
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

    Keeps every image's map and z; ``b_i`` is the mean of map i over the ROI (``weighted``:
    each patch weighted by the structure it holds above the camera noise,
    :func:`content_weights`), and ``trace`` holds ``(z_i, b_i)``. A patch of background (a
    sparse sample) reads the CNN's noise value, 7–8 waves at any defocus; averaged in with
    equal weight, four such patches of nine held sparse beads at 3.1–3.4 waves from 0 to
    30 µm. Weighted only with the physical calibration, where each patch reads its own
    defocus; a stack calibration's curve is the plain mean of its patches.
    """

    def __init__(
        self, scope: Microscope, score_map: BlurMapper, roi: Roi, weighted: bool = True
    ) -> None:
        # No super().__init__: there is no registered focus measure to look up.
        self.scope = scope
        self.measure = MEASURE
        self.kwargs: dict[str, float] = {}
        self._z: list[float] = []
        self.weights: list[np.ndarray] = []
        self.weighted = weighted
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
        self.last_pixels: np.ndarray | None = None

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
        self.maps.append(m)
        pixels = np.asarray(image, dtype=np.float32)
        w = content_weights(pixels, m.shape) if self.weighted else np.ones(m.shape)
        if self.roi_mask is not None:
            w = w * self.roi_mask if (w * self.roi_mask).any() else self.roi_mask * 1.0
        self.weights.append(w / w.sum() if w.any() else np.full(m.shape, 1.0 / m.size))
        self.sharpness.append(float(score(pixels, self.verify_measure, **self.verify_kwargs)))
        self.last_pixels = pixels  # the pair design reads the noise floor of its two
        # Where the stage really is: a focus drive with finite resolution rounds targets.
        self._z.append(float(self.scope.z_um))
        return float(self.b[-1])

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
        return np.array(self._z)

    @property
    def b(self) -> np.ndarray:
        if not self.maps:
            return np.zeros(0)
        return np.einsum("ijk,ijk->i", np.stack(self.maps), np.stack(self.weights))

    @property
    def trace(self) -> list[tuple[float, float]]:
        """Every ``(z_i, b_i)`` imaged, in order."""
        return list(zip(self._z, self.b.tolist(), strict=True))

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


def content_weights(image: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """How much structure each patch of an image holds above the camera noise.

    The image is cut into ``grid`` equal blocks (the blur map's patches, tiling it
    evenly). Per block: ``w = √max(var(y) − σ², 0)``, the signal's standard deviation,
    with ``σ²`` the robust variance of the 2×2 difference ``(y₀₀ − y₀₁ − y₁₀ + y₁₁)/2``
    on disjoint 2×2 cells, ``(MAD/0.6745)²``, which keeps the noise and cancels smooth
    signal (the median keeps bright spots and edges out of it). A block of background
    weighs about 0, the CNN's reading of noise with it; a dense sample's blocks weigh
    alike, so its mean stays the plain mean.

    Parameters
    ----------
    image : (Y, X) ndarray
        A camera image.
    grid : (int, int)
        Blocks along y and x (the blur map's shape).

    Returns
    -------
    weights : ndarray
        ``grid``-shaped, ≥ 0 (image units).
    """
    n, m = int(grid[0]), int(grid[1])
    y = np.asarray(image, dtype=np.float32)
    hb, wb = y.shape[0] // n, y.shape[1] // m
    if hb < 2 or wb < 2:
        return np.ones((n, m))
    blocks = y[: hb * n, : wb * m].reshape(n, hb, m, wb).swapaxes(1, 2)
    var = blocks.var(axis=(2, 3), dtype=np.float64)
    c = blocks[..., : hb // 2 * 2, : wb // 2 * 2]
    d = (c[..., 0::2, 0::2] - c[..., 0::2, 1::2] - c[..., 1::2, 0::2] + c[..., 1::2, 1::2]) / 2
    noise = (np.median(np.abs(d).reshape(n, m, -1), axis=-1) / 0.6745) ** 2
    return np.sqrt(np.maximum(var - noise, 0.0))


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


def _second_point(z1: float, spread: float, lo: float, hi: float, reach: float = math.nan) -> float:
    """The pair design's second image: toward the one side where focus can lie ``reach``
    from ``z1`` (the defocus the first blur score reads) inside the window ``[lo, hi]``;
    where both or neither can, ``z1 + spread``, or ``z1 − spread`` when the window cuts
    the step above to less than half (then the side with more room)."""
    up, down = min(hi, z1 + spread), max(lo, z1 - spread)
    if math.isfinite(reach) and (z1 + reach <= hi) != (z1 - reach >= lo):
        return up if z1 + reach <= hi else down
    return up if up - z1 >= 0.5 * spread or up - z1 >= z1 - down else down


_MIDBAND_GRID = 128  # pixels of the grid the measure's defocus curve is computed on
_PAIR_MEASURE = "spectral-midband"  # the measure whose defocus curve the pair design reads


@functools.lru_cache(maxsize=16)
def _midband_curve(
    na: float, wavelength_um: float, immersion: float, pixel_size_um: float, dof_um: float
) -> tuple[np.ndarray, np.ndarray]:
    from focuskit.fewshot._data import defocus_otf, waves_per_um

    rate = waves_per_um(na, wavelength_um, immersion)
    z = np.linspace(0.0, 3 * dof_um, 97)
    cutoff = na * pixel_size_um / wavelength_um  # pupil radius, cycles/pixel
    # The measure itself reads the point images: its band, weights and cut-off, no copy.
    psfs = np.stack(
        [
            np.fft.fftshift(
                np.fft.irfft2(defocus_otf(_MIDBAND_GRID, cutoff, rate * q), s=(_MIDBAND_GRID,) * 2)
            )
            for q in z
        ]
    )
    t = np.asarray(
        score(
            np.maximum(psfs, 0.0),
            _PAIR_MEASURE,
            pixel_size_um=pixel_size_um,
            na=na,
            wavelength_um=wavelength_um,
        )
    )
    return z, np.log(t / t[0])


def midband_defocus_curve(optics: Any, pixel_size_um: float) -> tuple[np.ndarray, np.ndarray]:
    """The default measure's sharpness against defocus for a white object, from the optics.

    ``T(z)``: ``spectral-midband`` of the point image at defocus z, i.e. the band mean of
    ``|OTF_z(f)|²`` over its annulus (0.25–0.75 of the incoherent cut-off
    ``min(2NA/λ, 1/2p)``), ``OTF_z`` the incoherent OTF of the pupil with edge defocus
    ``W = |z|·(n − √(n² − NA²))/λ`` waves (:func:`defocus_otf`), on ``|z|`` from 0 to
    3 DOF. The measure reads the point images itself, so the curve follows its band.
    A sample's band power is ``S(z) ≈ A·T(z − f)`` near focus
    (``A`` its own spectrum's weight), so the ratio of two images' ``S`` locates ``f``
    whatever the sample; far from focus the camera noise floor takes over.

    Parameters
    ----------
    optics : Optics
        The microscope's optics.
    pixel_size_um : float
        Pixel size at the sample (µm).

    Returns
    -------
    z_um : ndarray
        |z| (µm), ascending from 0.
    log_t : ndarray
        ``ln T(z) − ln T(0)``, decreasing near 0.
    """
    return _midband_curve(
        float(optics.objective.na),
        float(optics.wavelength_um),
        float(optics.objective.immersion_index),
        float(pixel_size_um),
        float(optics.depth_of_field_um),
    )


def midband_noise_floor(image: np.ndarray) -> float:
    """What white camera noise adds to an image's ``spectral-midband`` sharpness.

    The measure is the band mean of ``|F|²/(N·μ²)``; white noise of mean variance ``σ²``
    adds ``σ²/μ²`` at every frequency. ``σ² = a·μ + b``, the camera's noise level
    function (:func:`focuskit.restore.noise_level`) fitted on the central 512² (the
    camera's, not the sample's: a crop serves) and taken at the image's mean ``μ``.
    Subtracted, the sharpness follows the optics' curve ``T`` twice as far from focus
    (tissue sections at 20 µm: ``ln`` ratio −6.5 against ``T``'s −6.6; −4.0 with the noise
    left in).

    Parameters
    ----------
    image : (Y, X) ndarray
        A camera image.

    Returns
    -------
    floor : float
        ``σ²/μ²`` (dimensionless, the measure's units); 0 for an image of mean ≤ 0.
    """
    from focuskit.restore import noise_level

    y = np.asarray(image, dtype=np.float64)
    mu = float(y.mean())
    if not mu > 0:
        return 0.0
    cy, cx = max(0, (y.shape[0] - 512) // 2), max(0, (y.shape[1] - 512) // 2)
    a, b = noise_level(y[cy : cy + 512, cx : cx + 512])
    return float(max(a * mu + b, 0.0) / mu**2)


def _pair_focus(
    z_lo: float,
    s_lo: float,
    z_hi: float,
    s_hi: float,
    curve: tuple[np.ndarray, np.ndarray],
    cost: Any = None,
) -> tuple[float, list[float]]:
    """Focus ``f`` from two images' band powers: the roots of ``ln T(z_hi − f) −
    ln T(z_lo − f) = ln(S_hi/S_lo)`` within the curve's reach of the pair.

    ``T`` is flat at focus and again where the OTF's first zero crosses the band
    (about 1.3 DOF), so one ratio can have several roots (mitochondria imaged 4 and 12 µm
    from focus read as well as 0.5 and 8.5 µm); ``cost(f)`` (the blur scores' misfit
    with the focus at f) picks one. Without a cost, the root nearest the pair's middle.
    No root: the end of ``[z_lo − g/2, z_hi + g/2]`` (``g = z_hi − z_lo``) the ratio
    points to.

    Returns
    -------
    f : float
        The focus (µm).
    roots : list of float
        Every root found (µm).
    """
    from scipy.optimize import brentq

    zc, log_t = curve
    target = math.log(max(s_hi, 1e-300) / max(s_lo, 1e-300))

    def g(f: Any) -> Any:
        return (
            np.interp(np.abs(z_hi - f), zc, log_t) - np.interp(np.abs(z_lo - f), zc, log_t) - target
        )

    grid = np.arange(z_lo - zc[-1], z_hi + zc[-1] + 1e-9, zc[1] - zc[0])
    v = g(grid)
    roots = [float(x) for x in grid[v == 0]]
    for j in np.flatnonzero(v[:-1] * v[1:] < 0):
        roots.append(float(brentq(g, grid[j], grid[j + 1], xtol=1e-3)))
    if not roots:
        gap = z_hi - z_lo
        return (z_lo - gap / 2 if target < 0 else z_hi + gap / 2), []
    roots.sort()
    middle = (z_lo + z_hi) / 2
    if cost is None:
        return min(roots, key=lambda r: abs(r - middle)), roots
    return min(roots, key=lambda r: (float(cost(r)), abs(r - middle))), roots


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
        b = probe.b
        if calibration.source.get("physical"):
            # The physical curve is held flat beyond its cap: a score above it says "at
            # least that far", not how much farther (the CNN climbs on at a pace that
            # depends on the sample there), so it is matched as the cap.
            b = np.minimum(b, float(np.max(calibration.score)))
        f_mean, c_mean = shift_by_correlation(z, b, calibration, gain_range=gain_range)
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


def _signal(sharpness: float, floor: float) -> float:
    """The sample's share of a sharpness, the noise floor taken off; an image at the
    floor keeps 1/20 of its sharpness (the ratio then says "far", by at most ln 20)."""
    return max(sharpness - floor, sharpness / 20)


def _refine_by_pair(
    probe: _BlurProbe,
    calibration: BlurCalibration,
    f_hat: float,
    d: float,
    lo: float,
    hi: float,
    max_images: int,
) -> dict[str, Any] | None:
    """Images at ``f̂ ± d`` and the focus their sharpness ratio gives (the pair design).

    ``f`` solves ``ln T(z₊ − f) − ln T(z₋ − f) = ln(S₊/S₋)``, ``T`` the default measure's
    curve from the optics (:func:`midband_defocus_curve`), ``S`` the two images' measured
    band power less the camera noise's share (:func:`midband_noise_floor`): the sample's
    own spectrum cancels in the ratio. Of several roots, the one whose focus fits the blur
    scores of every image taken best, on a log scale (the CNN's error grows with the
    score): ``Σ ln²((b_i − b₀ + ε)/(b_calib(z_i − f) − b₀ + ε))``, ``b₀`` the curve's
    minimum and ``ε`` its rise over ``d/4`` (smaller differences are the CNN's noise near
    focus). None (nothing imaged) when the budget has no two images left or the window
    leaves no pair ``d`` apart.
    """
    optics = probe.scope.optics
    z_lo, z_hi = max(lo, f_hat - d), min(hi, f_hat + d)
    if z_hi - z_lo < d or len(probe.trace) + 2 > max_images:
        return None
    floors = []
    for target in (z_lo, z_hi):
        probe(target)
        floors.append(midband_noise_floor(probe.last_pixels))
    z_lo, z_hi = (float(z) for z in probe.z[-2:])
    s_lo, s_hi = (_signal(s, f) for s, f in zip(probe.sharpness[-2:], floors, strict=True))
    if not z_hi > z_lo:  # a stage that rounds both targets to one position
        return None
    curve = midband_defocus_curve(optics, float(probe.scope.pixel_size_um))
    z, b = probe.z, probe.b

    b0 = max(float(calibration.curve(d / 4) - calibration.curve(0.0)), 1e-3)
    base = float(calibration.curve(0.0))

    def cost(f: float) -> float:
        model = calibration.curve(z - f) - base
        return float(np.sum(np.log((np.maximum(b - base, 0.0) + b0) / (model + b0)) ** 2))

    f, roots = _pair_focus(z_lo, s_lo, z_hi, s_hi, curve, cost)
    return {
        "coarse_um": f_hat,
        "roots_um": roots,
        "images_um": [z_lo, z_hi],
        "sharpness": probe.sharpness[-2:],
        "noise_floor": floors,
        "measure": probe.verify_measure,
        "z_focus_um": min(max(f, lo), hi),
    }


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
            # An image already taken on this side, between d/2 and d from c, brackets as
            # well as a new one at c ± d (the peak then lies between it and c's other side).
            offset = sign * (probe.z - c)
            near = np.flatnonzero((offset >= tol / 2 - 1e-9) & (offset <= tol + 1e-9))
            if near.size:
                z_side = float(probe.z[near[np.argmax(offset[near])]])
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
    check: dict[str, Any] | None,
    max_images: int,
    f_hat: float,
    z_final: float,
    z1: float,
    away: str = "",
) -> str:
    """Why no position was verified, and where the stage went instead (``away``: why it
    went to the sharpest image taken rather than near the estimate)."""
    if check is None and not math.isfinite(f_hat):
        return f"no patch gave a finite focus estimate; returned to the start z = {z1:+.2f} µm"
    if away:
        why = "no image left to verify it" if check is None else check["reason"]
        return (
            f"not verified ({why}), and {away}: moved to z = {z_final:+.2f} µm, the sharpest "
            "image taken — raise max_images or fall back to a classic search"
        )
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
    design: str = "pair",
) -> SearchResult:
    """Few-shot autofocus with a blur scorer and its calibration (DeepFocus §2.2).

    The module docstring's designs: two blur images and a sharpness pair at ``f̂ ± d``
    (default where the optics are known), or the paper's three images at ``z1`` and
    ``z1 ± spread_fwhm·F`` with golden-section steps until the scores are convex; the
    calibration match; then the bracket that verifies the estimate (step 7) while the
    budget allows, and a move to the verified or best position.

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
        Image budget (≥ 3; default 8). The pair design: four for the estimate, then the
        bracket of step 7 (the image at ``c`` and usually one new side, one more per step
        climbed, one at the vertex). The paper's: three for step 1, more for steps 3–5
        while the scores are not convex (one kept back), then the bracket. With 3 (or 4
        in the pair design) nothing is left to verify: the estimate is returned
        unverified, ``success=False``.
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
    design : {"pair", "paper"}
        ``"pair"`` (default): two blur images, then two sharpness images at ``f̂ ± d``
        whose ratio places focus (module docstring); used with the physical calibration
        where the scope's optics are known and ``max_images`` ≥ 4, else (and when two
        blur scores place no focus) the paper's. Through a stack calibration the pair
        design did worse than the paper's on held-out replays (texture stack, 8 images:
        median 1.3 against 0.7 µm): the curve is one sample's, flat beyond about FWHM/2.
        ``"paper"``: three blur images and golden steps (§2.2). The estimate's
        record holds the pair (``pair``: the coarse f̂, the two z and their sharpness).

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
        the estimate (or the estimate, or back to the start without one) — or to the
        sharpest image taken, when images near the estimate are less sharp than it — and
        ``message`` says why. The stage never leaves the window (targets are clipped, moves
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
    if design not in ("pair", "paper"):
        raise ConfigError(f"design must be 'pair' or 'paper', got {design!r}")
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
    # Each patch reads its own defocus on the physical curve, so any weighting of them
    # reads it too; a stack's curve is the plain mean of its patches, and so is b then.
    probe = _BlurProbe(scope, score_map, roi, weighted=bool(calibration.source.get("physical")))
    notes: list[str] = []
    records: list[dict[str, Any]] = []
    b1 = probe(z1)  # no move yet: a bad score map raises ConfigError with the stage untouched
    verified: dict[str, Any] | None = None
    with restore_on_failure(scope):

        def refit() -> dict[str, Any]:
            return _estimate(probe, calibration, gain_range, combine)

        coarse = None
        # The physical curve reads every sample on one scale out to its cap; a stack's is
        # that stack's sample's, and two images read through it place focus too coarsely.
        use_pair = (
            design == "pair"
            and max_images >= 4
            and bool(calibration.source.get("physical"))
            and getattr(scope, "optics", None) is not None
            and probe.verify_measure == _PAIR_MEASURE
        )
        if use_pair:
            # Two blur images place focus coarsely (a plain shift: two points fix no gain),
            # two sharpness images at f̂ ± d place it finely.
            # The second image as far as the first one reads from focus (within DOF …
            # spread·F): it lands near focus or about twice as far, both where the blur
            # score still rises steadily.
            dof = 2 * tol if tol_known else fwhm / 4
            reach = float(calibration.abs_defocus_um(b1))
            step = min(max(reach, dof), spread_fwhm * fwhm) if math.isfinite(reach) else dof
            probe(_second_point(z1, max(step, dof), lo, hi, reach))
            record = _estimate(probe, calibration, None, combine)
            coarse = record["z_focus_um"]
            if coarse is not None:
                records.append(record)
                pair = _refine_by_pair(probe, calibration, float(coarse), tol, lo, hi, max_images)
                if pair is not None:
                    record["pair"] = pair
                    record["z_focus_um"] = pair["z_focus_um"]
            else:
                notes.append(
                    "the first two blur scores place no focus (both on the calibration's "
                    "plateau): continued with the paper's three-image design"
                )
        if coarse is None:  # the paper's design (§2.2 steps 1–5)
            for z in _first_points(z1, spread_fwhm * fwhm, lo, hi):
                if not np.any(np.abs(probe.z - z) <= 1e-9 * max(1.0, abs(z))):
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
        away = ""
        if not (verified is not None and verified["verified"]) and probe.sharpness:
            # Unverified, but imaged near the estimate (within d): when an image elsewhere
            # is sharper than all of those, the estimate is wrong — end at the sharpest
            # image taken, never less sharp than one already seen. With no image near the
            # estimate (3 images), the estimate stands: far images say nothing against it.
            sharp = np.asarray(probe.sharpness)
            best = int(np.argmax(sharp))
            close = np.abs(probe.z - target) <= tol + 1e-9
            if close.any() and sharp[best] > sharp[close].max():
                away = (
                    f"the images near the estimate z = {target:+.2f} µm are less sharp "
                    f"({probe.verify_measure}) than one taken at z = {probe.z[best]:+.2f} µm"
                )
                target = float(probe.z[best])
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
        notes.insert(
            0, "failed: " + _failure_reason(verified, max_images, f_hat, z_final, z1, away)
        )
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
