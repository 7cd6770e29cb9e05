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
from focuskit.measures import get_measure, score
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
        Focus score at the end.
    images : int
        Exposures taken.
    success : bool
        The search ended at least as sharp as it began and did not fail.
    trace : list of (float, float), optional
        Every ``(z_um, score)`` imaged, in order (z in µm).
    message : str, optional
        Why the search stopped early or stayed, empty otherwise.
    elapsed_s : float, optional
        Simulated microscope time, in s.
    compute_s : float, optional
        Wall-clock time of the computation, in s.
    predictions : list of dict, optional
        Model-guided searches (single-shot, few-shot): one record per prediction made.
    notes : list of str, optional
        What was assumed or forced before the search ran (e.g. a model's optics check).
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

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types (for reports and ``--json``).

        Returns
        -------
        d : dict
            ``method``, ``measure``, ``z_start_um`` and ``z_final_um`` (µm), ``score_start``,
            ``score_final``, ``images``, ``success``, ``message``, ``elapsed_s`` (s), ``trace``
            as ``{"z_um", "score"}`` records, plus ``predictions`` and ``notes`` when present.
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
    measure : str
        Registry name of the focus measure; its optics come from the scope.

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

    def __init__(self, scope: Microscope, measure: str) -> None:
        self.scope = scope
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


def _run(
    method: str,
    scope: Microscope,
    measure: str,
    range_um: float,
    body: Callable[[Probe, float, float], str],
    max_images: int,
) -> SearchResult:
    t_compute = time.perf_counter()
    elapsed0, exposures0 = scope.elapsed_s, scope.exposures
    z0 = float(scope.z_um)
    a, b = _interval(scope, z0, range_um)
    probe = Probe(scope, measure)
    probe.max_images = int(max_images)
    with restore_on_failure(scope):
        s0 = probe(z0)
        try:
            message = body(probe, a, b)
        except BudgetSpent:
            message = f"stopped at the budget of {max_images} images without converging"
        z_best, s_best = probe.best()
        if z_best != scope.z_um:
            probe.move(z_best)  # no new image: the best one is already known
    success = s_best >= s0 and not message.startswith(("failed", "stopped"))
    if s_best == s0 and z_best == z0 and not message:
        message = "no sharper position found in range; stayed at the start"
    return SearchResult(
        method=method,
        measure=measure,
        z_start_um=z0,
        z_final_um=float(scope.z_um),
        score_start=s0,
        score_final=s_best,
        images=scope.exposures - exposures0,
        success=success,
        trace=probe.trace,
        message=message,
        elapsed_s=scope.elapsed_s - elapsed0,
        compute_s=time.perf_counter() - t_compute,
    )


def brent_search(
    scope: Microscope,
    measure: str = "tenengrad",
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
        Registry name of the focus measure (default ``"tenengrad"``).
    range_um : float, optional
        Width of the search interval around the start, in µm (default 20), clipped to the
        stage limits.
    tolerance_um : float, optional
        Absolute tolerance in z, in µm (default 0.5).
    max_images : int, optional
        Budget of images (default 40).

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

    def body(probe: Probe, a: float, b: float) -> str:
        result = scipy.optimize.minimize_scalar(
            lambda z: -probe(float(z)),
            bounds=(a, b),
            method="bounded",
            options={"xatol": tolerance_um, "maxiter": max(1, max_images - 1)},
        )
        return "" if result.success else f"stopped after {max_images} images without converging"

    check_search_options(tolerance_um=tolerance_um, max_images=max_images)
    return _run("brent", scope, measure, range_um, body, max_images)


def golden_section_search(
    scope: Microscope,
    measure: str = "tenengrad",
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
        Registry name of the focus measure (default ``"tenengrad"``).
    range_um : float, optional
        Width of the search interval around the start, in µm (default 20).
    tolerance_um : float, optional
        Final bracket width, in µm (default 0.5).
    max_images : int, optional
        Budget of images (default 40).

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

    def body(probe: Probe, a: float, b: float) -> str:
        return _golden(probe, a, b, tolerance_um, max_images)

    check_search_options(tolerance_um=tolerance_um, max_images=max_images)
    return _run("gss", scope, measure, range_um, body, max_images)


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
    measure: str = "tenengrad",
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
        Registry name of the focus measure (default ``"tenengrad"``).
    range_um : float, optional
        Width of the search interval around the start, in µm (default 20).
    step_um : float, optional
        Coarse step, in µm (default: 11 points over the interval; at least 3 points).
    tolerance_um : float, optional
        Final bracket width of the fine search, in µm (default 0.5).
    max_images : int, optional
        Budget of images (default 40).

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

    def body(probe: Probe, a: float, b: float) -> str:
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
    return _run("scan", scope, measure, range_um, body, max_images)


# The classic searches: each needs only a scope and a focus measure.
SEARCHES: dict[str, Callable[..., SearchResult]] = {
    "brent": brent_search,
    "gss": golden_section_search,
    "scan": scan_search,
}


def autofocus(
    scope: Microscope, method: str = "brent", measure: str = "tenengrad", **kwargs: Any
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
        Registry name of the focus measure (default ``"tenengrad"``).
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
