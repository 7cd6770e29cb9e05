"""Classic online autofocus: move the stage, snap, score, repeat.

- ``brent``: bounded Brent minimization of −score (``scipy.optimize.minimize_scalar``,
  method "bounded"), what Micro-Manager's OughtaFocus does with Apache Commons'
  BrentOptimizer over ``[z0 − range/2, z0 + range/2]`` (Deep-R Table S2).
- ``gss``: golden-section search over the same interval.
- ``scan``: a coarse scan, a fine golden-section search around the best point, then one
  image at the vertex of a parabola through the best three points.

Every search scores the start first and finishes at the best position it imaged, so it
never ends blurrier than it began (Micro-Manager issue #1517). The stage never leaves
its limits; if the camera or stage fails, the stage goes back to the start.

A search reports ``success`` only when its end is verified (:func:`verify_final`): one
more image, counted against the budget (one image is kept for it), is taken at the final
position; its score is the result's ``score_final``, it must be the best seen within the
score noise, and the trace must fall by more than that noise on both sides of it — a
peak inside the searched range. A curve that only rises towards an end of the range
(focus outside it), a flat one (no focus signal), or a best image that does not repeat
gives ``success: false`` and a ``message`` that says which.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize

from focuskit._errors import ConfigError
from focuskit.focus import parabola_vertex
from focuskit.measures import default_measure, get_measure, score
from focuskit.scopes import Microscope, move_in_steps, restore_on_failure

GOLDEN = (math.sqrt(5) - 1) / 2  # 0.618…


@dataclass
class SearchResult:
    """What a search did: where it ended, how sharp, every (z, score) it imaged.

    Attributes
    ----------
    method : str
        Search name (``brent``, ``gss``, ``scan``, or a model-guided one).
    measure : str
        Registry name of the focus measure.
    z_start_um : float
        Stage position at the start, in µm.
    z_final_um : float
        Stage position at the end, in µm.
    score_start : float
        Focus score at the start.
    score_final : float
        Focus score at the end (classic searches: of the verification image taken there).
    images : int
        Exposures taken.
    success : bool
        The search converged and its end was verified: an image at the final position is
        the best seen (within noise) and the scores fall on both sides of it inside the
        searched range (see :func:`verify_final`). Model-guided searches set their own.
    trace : list of (float, float), optional
        Every ``(z_um, score)`` imaged, in order (z in µm).
    message : str, optional
        Why the search failed, stopped early or stayed; empty otherwise.
    elapsed_s : float, optional
        Simulated microscope time, in s.
    compute_s : float, optional
        Wall-clock time of the computation, in s.
    predictions : list of dict, optional
        Model-guided searches (single-shot, few-shot): one record per prediction made.
    notes : list of str, optional
        What was assumed or forced before the search ran (e.g. a model's optics check).
    verified : bool or None, optional
        The final position was imaged again and is the best seen within noise (None: not
        checked by this search).
    peak_in_range : bool or None, optional
        The scores fall by more than the noise on both sides of the final position (None:
        not checked).
    """

    method: str
    measure: str
    z_start_um: float
    z_final_um: float
    score_start: float
    score_final: float
    images: int
    success: bool
    trace: list[tuple[float, float]] = field(default_factory=list)
    message: str = ""
    elapsed_s: float = 0.0
    compute_s: float = 0.0
    # Model-guided searches (single-shot, few-shot): one record per prediction made.
    predictions: list[dict[str, Any]] = field(default_factory=list)
    # What was assumed or forced before the search ran (e.g. a model's optics check).
    notes: list[str] = field(default_factory=list)
    verified: bool | None = None
    peak_in_range: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types (for reports and ``--json``).

        Returns
        -------
        d : dict
            ``method``, ``measure``, ``z_start_um`` and ``z_final_um`` (µm), ``score_start``,
            ``score_final``, ``images``, ``success``, ``message``, ``elapsed_s`` (s), ``trace``
            as ``{"z_um", "score"}`` records, plus ``verified``, ``peak_in_range``,
            ``predictions`` and ``notes`` when present.
        """
        out = {
            "method": self.method,
            "measure": self.measure,
            "z_start_um": self.z_start_um,
            "z_final_um": self.z_final_um,
            # NaN (nothing imaged there, e.g. an unverified model estimate) is JSON null.
            "score_start": self.score_start if math.isfinite(self.score_start) else None,
            "score_final": self.score_final if math.isfinite(self.score_final) else None,
            "images": self.images,
            "success": self.success,
            "message": self.message,
            "elapsed_s": self.elapsed_s,
            "trace": [{"z_um": z, "score": s} for z, s in self.trace],
        }
        if self.verified is not None:
            out["verified"] = self.verified
        if self.peak_in_range is not None:
            out["peak_in_range"] = self.peak_in_range
        if self.predictions:
            out["predictions"] = self.predictions
        if self.notes:
            out["notes"] = self.notes
        return out


class Probe:
    """Move, snap and score: what every search does to the microscope.

    Moves go in steps the stage allows, never outside its limits; each image is scored
    with a focus measure, and every ``(z, score)`` imaged is remembered in :attr:`trace`
    (z where the stage really is). ``probe(z)`` does all three.

    Parameters
    ----------
    scope : Microscope
        The microscope.
    measure : str or None
        Registry name of the focus measure (None: :func:`~focuskit.measures.default_measure`
        of the scope's optics); its optics come from the scope.

    Attributes
    ----------
    scope : Microscope
        The microscope.
    measure : str
        Registry name of the focus measure.
    kwargs : dict
        Optics passed to the measure (``pixel_size_um`` in µm, ``na``, ``wavelength_um`` in
        µm), empty when it needs none.
    trace : list of (float, float)
        Every ``(z_um, score)`` imaged, in order.

    Raises
    ------
    ConfigError
        If the measure is unknown, or needs optics the scope lacks.
    """

    def __init__(self, scope: Microscope, measure: str | None) -> None:
        self.scope = scope
        measure = default_measure(scope.optics) if measure is None else measure
        self.measure = measure
        spec = get_measure(measure)
        self.kwargs: dict[str, float] = {}
        if spec.needs_optics:
            if scope.optics is None:
                raise ConfigError(
                    f"measure {measure!r} needs optics; this scope has none — "
                    "choose another --measure"
                )
            self.kwargs = {
                "pixel_size_um": scope.pixel_size_um,
                "na": scope.optics.na,
                "wavelength_um": scope.optics.wavelength_um,
            }
        self.trace: list[tuple[float, float]] = []
        #: Hard image budget: a search never takes more (None: no limit).
        self.max_images: int | None = None

    def move(self, z: float) -> None:
        """Move the stage to ``z`` (µm) in steps the stage allows; no image is taken.

        Parameters
        ----------
        z : float
            Target focus-drive position, in µm.

        Raises
        ------
        ConfigError
            If ``z`` lies outside the stage limits (the searches clip first; this is the last
            line of defence).
        StageLimitError
            If the scope refuses a move.
        """
        lo, hi = self.scope.z_limits_um
        if not lo <= z <= hi:  # the searches clip first; this is the last line of defence
            raise ConfigError(
                f"search asked for z = {z:.3f} µm outside the stage limits [{lo}, {hi}]"
            )
        move_in_steps(self.scope, z)

    def __call__(self, z: float) -> float:
        """Move to ``z`` (µm), snap, score, and record ``(z, score)`` in :attr:`trace`.

        The recorded z is where the stage really is (a focus drive with finite resolution
        rounds targets).

        Parameters
        ----------
        z : float
            Target focus-drive position, in µm.

        Returns
        -------
        score : float
            Focus score of the image (larger = sharper).

        Raises
        ------
        ConfigError
            If ``z`` lies outside the stage limits.
        """
        if self.max_images is not None and len(self.trace) >= self.max_images:
            raise BudgetSpent
        self.move(z)
        value = float(score(self.scope.snap(), self.measure, **self.kwargs))
        # Where the stage really is: a focus drive with finite resolution rounds targets.
        self.trace.append((float(self.scope.z_um), value))
        return value

    def best(self) -> tuple[float, float]:
        """The sharpest ``(z, score)`` imaged so far.

        Returns
        -------
        z_um : float
            Its position, in µm.
        score : float
            Its score.
        """
        return max(self.trace, key=lambda t: t[1])


class BudgetSpent(Exception):
    """Raised inside a search when its image budget is used up (caught by the search)."""


def check_search_options(
    *,
    tolerance_um: float | None = None,
    max_images: int | None = None,
    step_um: float | None = None,
    min_images: int = 3,
) -> None:
    """Validate the options every search shares, at the edge (one line each).

    Parameters
    ----------
    tolerance_um : float, optional
        Must be a finite number > 0 (µm).
    max_images : int, optional
        Must be an integer ≥ ``min_images``.
    step_um : float, optional
        Must be a finite number > 0 (µm).
    min_images : int, optional
        The fewest images the method can work with (default 3).

    Raises
    ------
    ConfigError
        If an option is out of range.
    """

    def positive(name: str, v: Any) -> None:
        try:
            ok = math.isfinite(float(v)) and float(v) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{name} must be a finite number > 0 µm, got {v!r}")

    if tolerance_um is not None:
        positive("tolerance_um (--tolerance)", tolerance_um)
    if step_um is not None:
        positive("step_um (--step)", step_um)
    if max_images is not None and (
        isinstance(max_images, bool)
        or not isinstance(max_images, (int, np.integer))
        or max_images < min_images
    ):
        raise ConfigError(
            f"max_images (--max-images) must be an integer ≥ {min_images}, got {max_images!r}"
        )


def _interval(scope: Microscope, z0: float, range_um: float) -> tuple[float, float]:
    if not (math.isfinite(range_um) and range_um > 0):
        raise ConfigError(f"search range must be > 0 µm, got {range_um}")
    lo, hi = scope.z_limits_um
    a, b = max(lo, z0 - range_um / 2), min(hi, z0 + range_um / 2)
    if not b > a:
        raise ConfigError(
            f"the search interval around z = {z0} µm is empty within the stage limits [{lo}, {hi}]"
        )
    return a, b


@dataclass
class Verdict:
    """What :func:`verify_final` found about a search's end.

    Attributes
    ----------
    verified : bool
        The final image is the best seen, within ``noise``.
    peak_in_range : bool
        The scores fall by more than ``noise`` on both sides of the final position, and
        keep falling (within ``noise``) away from it: a single peak.
    noise : float
        Score tolerance: 3 × the difference between the two images of the final position.
    reason : str
        Why the end is not trusted; empty when it is.
    """

    verified: bool
    peak_in_range: bool
    noise: float
    reason: str


def verify_final(
    trace: list[tuple[float, float]], tolerance_um: float, *, repeat_of: int | None = None
) -> Verdict:
    """Is the last image of ``trace`` a verified, interior focus peak?

    The last ``(z, score)`` is the verification image at the final position; with the
    search's own image there (``repeat_of``) it measures the score noise,
    ``noise = 3 · |s_final − s_repeat|`` (a repeat differs by camera noise alone; images
    even slightly apart also differ by the curve's slope). Then

    - verified: ``s_final ≥ s − noise`` for every image farther than ``tolerance_um``
      from the final position (nearer ones are the same position to the search). A best
      image that was a fluke repeats lower, which widens ``noise`` by three times the
      drop: the peak test below then fails rather than this one;
    - peak in range: on each side of the final position some image scores below
      ``s_final − noise``. A curve still rising at an end of the range (focus outside
      it) has no such image beyond its best; a flat curve (no focus signal, or far from
      focus everywhere) has none on either side. And the trace is single-peaked: going
      away from the final position on either side, no image that reaches above half the
      peak's height over the trace's minimum scores more than a nearer one by more than
      ``noise`` — Brent and golden section assume one peak, and a trace that shows a
      second one may have converged on the wrong peak (a self-image of a periodic
      target, a bump of a saturated bead's curve). Lower rises are tail ripples (a PSF's
      rings, the frozen noise of a replayed stack), not competing peaks.

    Parameters
    ----------
    trace : list of (float, float)
        Every ``(z_um, score)`` imaged, in order; the last is the verification image.
    tolerance_um : float
        Distance below which two positions count as the same, in µm.
    repeat_of : int, optional
        Index in ``trace`` of the search's own image at the final position (default: the
        nearest earlier image).

    Returns
    -------
    verdict : Verdict
        ``verified``, ``peak_in_range``, the ``noise`` tolerance and a ``reason``.

    Raises
    ------
    ConfigError
        If ``trace`` holds fewer than two images.
    """
    if len(trace) < 2:
        raise ConfigError("verify_final needs the search's images and a verification image")
    z = np.array([t[0] for t in trace], dtype=np.float64)
    sc = np.array([t[1] for t in trace], dtype=np.float64)
    zf, sf = z[-1], sc[-1]
    if repeat_of is None:
        repeat_of = int(np.argmin(np.abs(z[:-1] - zf)))
    # Only the repeat measures noise alone: two images even 0.1 µm apart on a narrow peak
    # differ by its curvature, which would swamp the tolerance.
    noise = 3.0 * abs(sf - sc[repeat_of]) + 1e-12 * max(abs(sf), 1e-300)
    far = np.abs(z - zf) > tolerance_um
    beaten = far & (sc > sf + noise)
    verified = not bool(np.any(beaten))
    below = sc < sf - noise
    left = bool(np.any(below & (z < zf - tolerance_um)))
    right = bool(np.any(below & (z > zf + tolerance_um)))
    peak_in_range = left and right
    side_peak = _farther_and_higher(z, sc, zf, tolerance_um, noise)
    reasons = []
    if not verified:
        k = int(np.argmax(np.where(beaten, sc, -np.inf)))
        reasons.append(
            f"not verified: the image at the final z = {zf:.3f} µm scored {sf:.6g}, below the "
            f"{sc[k]:.6g} seen at z = {z[k]:.3f} µm (score noise ±{noise:.3g})"
        )
    if not peak_in_range:
        if not left and not right:
            reasons.append(
                "no focus peak in the searched range: the scores do not fall on either side of "
                f"the final position by more than the noise (±{noise:.3g}, from its repeat: "
                f"{sc[repeat_of]:.6g} then {sf:.6g}) — no focus signal, a best image that did "
                "not repeat, or focus far outside the range"
            )
        else:
            side = "below" if not left else "above"
            reasons.append(
                f"no focus peak inside the searched range: the scores still rise towards the "
                f"{'lower' if not left else 'upper'} end (nothing imaged {side} "
                f"z = {zf:.3f} µm scores lower) — focus may lie outside the range"
            )
    if side_peak is not None:
        zo, zn = side_peak
        reasons.append(
            f"the scores are not single-peaked: z = {zo:.3f} µm scores more than z = {zn:.3f} µm, "
            f"which lies nearer the final z = {zf:.3f} µm (beyond the noise ±{noise:.3g}) — "
            "the search may have found a side peak, and focus may lie elsewhere in the range"
        )
    return Verdict(verified, peak_in_range and side_peak is None, float(noise), "; ".join(reasons))


def _farther_and_higher(
    z: np.ndarray, s: np.ndarray, zf: float, tolerance_um: float, noise: float
) -> tuple[float, float] | None:
    """A pair (z_far, z_near) on one side of ``zf`` where the farther image scores more
    than the nearer by more than ``noise`` and reaches above half the peak's height over
    the trace's floor (a competing peak; lower rises are tail ripples, e.g. a PSF's rings),
    or None if both sides fall."""
    half = 0.5 * (float(s[-1]) + float(s.min()))
    for side in (-1.0, 1.0):
        dist = side * (z - zf)
        mask = dist > tolerance_um
        order = np.argsort(dist[mask], kind="stable")  # nearest to the peak first
        zs, ss = z[mask][order], s[mask][order]
        for k in range(1, len(ss)):
            j = int(np.argmin(ss[:k]))
            if ss[k] > ss[j] + noise and ss[k] > half:
                return float(zs[k]), float(zs[j])
    return None


def _run(
    method: str,
    scope: Microscope,
    measure: str | None,
    range_um: float,
    body: Callable[[Probe, float, float, int], str],
    max_images: int,
    tolerance_um: float,
) -> SearchResult:
    t_compute = time.perf_counter()
    elapsed0, exposures0 = scope.elapsed_s, scope.exposures
    z0 = float(scope.z_um)
    a, b = _interval(scope, z0, range_um)
    probe = Probe(scope, measure)
    # One image of the budget is kept for the verification at the final position.
    budget = int(max_images) - 1
    probe.max_images = budget
    with restore_on_failure(scope):
        s0 = probe(z0)
        try:
            message = body(probe, a, b, budget)
        except BudgetSpent:
            message = f"stopped at the budget of {max_images} images without converging"
        z_best, _ = probe.best()
        repeat_of = max(range(len(probe.trace)), key=lambda i: probe.trace[i][1])
        probe.max_images = int(max_images)
        s_final = probe(z_best)  # the verification image, counted
        verdict = verify_final(probe.trace, tolerance_um, repeat_of=repeat_of)
    failed = message.startswith(("failed", "stopped"))
    success = verdict.verified and verdict.peak_in_range and not failed
    if z_best == z0 and not message and not success:
        message = "no sharper position found in range; stayed at the start"
    if verdict.reason:
        message = f"{message}; {verdict.reason}" if message else verdict.reason
    return SearchResult(
        method=method,
        measure=probe.measure,
        z_start_um=z0,
        z_final_um=float(scope.z_um),
        score_start=s0,
        score_final=s_final,
        images=scope.exposures - exposures0,
        success=success,
        trace=probe.trace,
        message=message,
        elapsed_s=scope.elapsed_s - elapsed0,
        compute_s=time.perf_counter() - t_compute,
        verified=verdict.verified,
        peak_in_range=verdict.peak_in_range,
    )


def brent_search(
    scope: Microscope,
    measure: str | None = None,
    *,
    range_um: float = 20.0,
    tolerance_um: float = 0.5,
    max_images: int = 40,
) -> SearchResult:
    """Bounded Brent search (Micro-Manager OughtaFocus) of ``[z0 − range/2, z0 + range/2]``.

    Minimizes −score with ``scipy.optimize.minimize_scalar`` (method "bounded"), as
    OughtaFocus does with Apache Commons' BrentOptimizer (Deep-R Table S2). The start is
    scored first and the search ends at the best position imaged, so it never ends blurrier
    than it began. If the camera or stage fails, the stage goes back to the start.

    Parameters
    ----------
    scope : Microscope
        The microscope; ``z0`` is its current position.
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the scope's optics).
    range_um : float, optional
        Width of the search interval around the start, in µm (default 20), clipped to the
        stage limits.
    tolerance_um : float, optional
        Absolute tolerance in z, in µm (default 0.5).
    max_images : int, optional
        Budget of images, the verification image at the final position included (default 40).

    Returns
    -------
    result : SearchResult
        Where the search ended, its score and every (z, score) imaged.

    Raises
    ------
    ConfigError
        If the range, tolerance or step is not a finite number > 0, ``max_images`` is not
        an integer ≥ 3, the interval is empty within the stage limits, or the measure is
        unknown or needs optics the scope lacks.
    ScopeError
        If the camera or stage failed (the stage is returned to the start).

    References
    ----------
    .. [1] R. P. Brent, *Algorithms for Minimization without Derivatives*, Prentice-Hall
           (1973), ch. 5.
    .. [2] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Table S2.
    """

    def body(probe: Probe, a: float, b: float, budget: int) -> str:
        result = scipy.optimize.minimize_scalar(
            lambda z: -probe(float(z)),
            bounds=(a, b),
            method="bounded",
            options={"xatol": tolerance_um, "maxiter": max(1, budget - 1)},
        )
        return "" if result.success else f"stopped after {max_images} images without converging"

    check_search_options(tolerance_um=tolerance_um, max_images=max_images)
    return _run("brent", scope, measure, range_um, body, max_images, tolerance_um)


def golden_section_search(
    scope: Microscope,
    measure: str | None = None,
    *,
    range_um: float = 20.0,
    tolerance_um: float = 0.5,
    max_images: int = 40,
) -> SearchResult:
    """Golden-section search: shrink [a, b] by 0.618 per image until it is < tolerance.

    The interval is ``[z0 − range/2, z0 + range/2]`` within the stage limits. The start is
    scored first and the search ends at the best position imaged.

    Parameters
    ----------
    scope : Microscope
        The microscope; ``z0`` is its current position.
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the scope's optics).
    range_um : float, optional
        Width of the search interval around the start, in µm (default 20).
    tolerance_um : float, optional
        Final bracket width, in µm (default 0.5).
    max_images : int, optional
        Budget of images, the verification image at the final position included (default 40).

    Returns
    -------
    result : SearchResult
        Where the search ended, its score and every (z, score) imaged.

    Raises
    ------
    ConfigError
        If the range, tolerance or step is not a finite number > 0, ``max_images`` is not
        an integer ≥ 3, the interval is empty within the stage limits, or the measure is
        unknown or needs optics the scope lacks.
    ScopeError
        If the camera or stage failed (the stage is returned to the start).

    References
    ----------
    .. [1] J. Kiefer, "Sequential minimax search for a maximum", Proc. Amer. Math. Soc. 4,
           502 (1953).
    """

    def body(probe: Probe, a: float, b: float, budget: int) -> str:
        return _golden(probe, a, b, tolerance_um, budget)

    check_search_options(tolerance_um=tolerance_um, max_images=max_images)
    return _run("gss", scope, measure, range_um, body, max_images, tolerance_um)


def _golden(probe: Probe, a: float, b: float, tolerance_um: float, max_images: int) -> str:
    """Golden-section search of [a, b] until the bracket is below ``tolerance_um``."""
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = probe(c), probe(d)
    while b - a > tolerance_um:
        if len(probe.trace) >= max_images:
            return f"stopped after {max_images} images without converging"
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = probe(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = probe(d)
    return ""


def scan_search(
    scope: Microscope,
    measure: str | None = None,
    *,
    range_um: float = 20.0,
    step_um: float | None = None,
    tolerance_um: float = 0.5,
    max_images: int = 40,
) -> SearchResult:
    """Coarse scan, fine golden-section search, then one image at a parabola's vertex.

    Coarse scan of the interval (default 11 points), then a fine golden-section search
    within ±1 coarse step of the best point down to ``tolerance_um``, then one image at
    the vertex of the parabola through the best three points imaged.

    Parameters
    ----------
    scope : Microscope
        The microscope; ``z0`` is its current position.
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the scope's optics).
    range_um : float, optional
        Width of the search interval around the start, in µm (default 20).
    step_um : float, optional
        Coarse step, in µm (default: 11 points over the interval; at least 3 points).
    tolerance_um : float, optional
        Final bracket width of the fine search, in µm (default 0.5).
    max_images : int, optional
        Budget of images, the verification image at the final position included (default 40).

    Returns
    -------
    result : SearchResult
        Where the search ended, its score and every (z, score) imaged.

    Raises
    ------
    ConfigError
        If the range, tolerance or step is not a finite number > 0, ``max_images`` is not
        an integer ≥ 3, the interval is empty within the stage limits, or the measure is
        unknown or needs optics the scope lacks.
    ScopeError
        If the camera or stage failed (the stage is returned to the start).
    """

    def body(probe: Probe, a: float, b: float, max_images: int) -> str:
        n = 11 if step_um is None else max(3, round(float((b - a) / step_um)) + 1)
        note = ""
        # The coarse scan may use at most half the budget (the start image is the first).
        cap = max(3, (max_images - 1) // 2)
        if n > cap:
            note = (
                f"coarse step widened to {(b - a) / (cap - 1):.3g} µm to fit the budget of "
                f"{max_images} images; "
            )
            n = cap
        zs = np.linspace(a, b, n)
        scores = np.array([probe(float(z)) for z in zs])
        i = int(np.argmax(scores))
        coarse = float(zs[1] - zs[0])
        message = _golden(
            probe, max(a, zs[i] - coarse), min(b, zs[i] + coarse), tolerance_um, max_images
        )
        visited = sorted(probe.trace)
        zv = np.array([t[0] for t in visited])
        sv = np.array([t[1] for t in visited])
        j = int(np.argmax(sv))
        if 0 < j < len(zv) - 1 and len(probe.trace) < max_images:
            vertex = parabola_vertex(zv[j - 1 : j + 2], sv[j - 1 : j + 2])
            if vertex is not None:
                vertex = float(np.clip(vertex, zv[j - 1], zv[j + 1]))
                if min(abs(vertex - zv[j - 1 : j + 2])) > tolerance_um / 10:
                    probe(vertex)
        return note + message if message else note.rstrip("; ")

    check_search_options(tolerance_um=tolerance_um, max_images=max_images, step_um=step_um)
    return _run("scan", scope, measure, range_um, body, max_images, tolerance_um)


# The classic searches: each needs only a scope and a focus measure.
SEARCHES: dict[str, Callable[..., SearchResult]] = {
    "brent": brent_search,
    "gss": golden_section_search,
    "scan": scan_search,
}


def autofocus(
    scope: Microscope, method: str = "brent", measure: str | None = None, **kwargs: Any
) -> SearchResult:
    """Run a classic search by name (``brent``, ``gss``, ``scan``) on a scope.

    The model-guided searches (``singleshot``, ``deepfocus``) are run from their models,
    or by name with :func:`focuskit.autofocus`.

    Parameters
    ----------
    scope : Microscope
        The microscope.
    method : str, optional
        A key of :data:`SEARCHES` (default ``"brent"``).
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the scope's optics).
    **kwargs
        Options of the search (``range_um``, ``tolerance_um`` in µm, ``max_images``, …).

    Returns
    -------
    result : SearchResult
        What the search did.

    Raises
    ------
    ConfigError
        If the method is unknown, or the search rejects its options.
    """
    if method in SEARCHES:
        return SEARCHES[method](scope, measure, **kwargs)
    raise ConfigError(
        f"unknown classic autofocus method {method!r}; use one of {', '.join(SEARCHES)} "
        "(singleshot and deepfocus: focuskit.autofocus)"
    )


# The name AutofocusResult is kept for code written before focuskit 0.2.
AutofocusResult = SearchResult
