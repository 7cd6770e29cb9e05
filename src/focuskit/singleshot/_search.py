"""Single-shot autofocus: one image, one predicted defocus, one move (Pinkard et al. 2019).

Snap at the current z → ``predict(image)`` gives the defocus ``z`` (OPTICS.md sign: the
focal plane relative to the in-focus plane) → move the focus drive by ``−z`` → snap a
verification image → predict again → stop when ``|z|`` is within the tolerance or after
``max_iterations`` moves. A prediction that is not ``in_range`` (outside the trained
range, or an image unlike the training data) hands over to a classic search.

The sign check: one coherent LED often cannot tell +z from −z (for a weak phase object
the Fourier magnitude of the image is the same at ±z; docs/singleshot-sign.md). A
predictor may say how sure it is (``p_positive``, P(z > 0)); the first move goes by
``|z|`` in the more likely direction. If the verification image then predicts a larger
``|z|`` than before the move — what a wrong sign gives (|z| → 2|z|) — the next move goes
the other way, to the previous position + z, instead of further out.

The predictor is injected (any :class:`DefocusPredictor`: image → an estimate with
``z_um``, ``sigma_um`` and ``in_range``); :meth:`DefocusModel.autofocus` binds its own
``predict`` with the microscope's optics and calls this.

Finishing no worse than the start is judged by the model's own verification images
(``guard="prediction"``, default): a focus measure cannot judge it on the microscope the
model was made for — phase cells under one coherent LED have their *least* contrast in
focus (every classic measure has its minimum there), so "sharper by the measure" would
walk away from focus. ``guard="measure"`` applies the classic rule instead (for
fluorescence / brightfield / DPC scopes, where contrast peaks in focus).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from focuskit._errors import ConfigError
from focuskit.measures import score
from focuskit.scopes import Microscope, restore_on_failure
from focuskit.search import SEARCHES, Probe, SearchResult, check_search_options


@runtime_checkable
class DefocusEstimate(Protocol):
    """What a single-shot predictor says about one image (e.g. :class:`DefocusPrediction`).

    Attributes
    ----------
    z_um : float
        Defocus (µm), OPTICS.md sign: move the focus drive by −z.
    sigma_um : float
        Its uncertainty (µm; NaN if unknown).
    in_range : bool
        Whether the prediction can be trusted (False hands over to the fallback).

    A predictor may also give ``p_positive``: its probability that z > 0 (NaN or absent:
    unknown; the sign of ``z_um`` is then the direction).
    """

    z_um: float  # defocus, OPTICS.md sign: move the focus drive by −z
    sigma_um: float
    in_range: bool


class DefocusPredictor(Protocol):
    """image → :class:`DefocusEstimate` (optionally with ``notes``).

    Any callable taking one (Y, X) image and returning an object with ``z_um`` (µm),
    ``sigma_um`` (µm) and ``in_range``, e.g. a bound :meth:`DefocusModel.predict`.
    """

    def __call__(self, image: np.ndarray, /) -> DefocusEstimate: ...


GUARDS = ("prediction", "measure", "none")
# Tolerance when neither the prediction's σ nor the scope's optics give one (µm).
_DEFAULT_TOLERANCE_UM = 0.5


@dataclass
class _Look:
    """One verification: where the stage was, the image's score, what the model said."""

    z_um: float
    score: float
    z_pred_um: float
    sigma_um: float
    usable: bool
    why: str
    p_positive: float = math.nan

    @property
    def direction(self) -> float:
        """+1 or −1: the more likely sign of z (``p_positive`` if known, else z's own)."""
        if math.isfinite(self.p_positive) and self.p_positive != 0.5:
            return 1.0 if self.p_positive > 0.5 else -1.0
        return 1.0 if self.z_pred_um >= 0 else -1.0

    def record(self, notes: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "z_um": self.z_um,
            "score": self.score,
            "z_pred_um": self.z_pred_um if math.isfinite(self.z_pred_um) else None,
            "sigma_um": self.sigma_um if math.isfinite(self.sigma_um) else None,
            "in_range": self.usable,
        }
        if math.isfinite(self.p_positive):
            out["p_positive"] = self.p_positive
        if notes:
            out["notes"] = notes
        return out


def _parse(prediction: Any) -> tuple[float, float, bool, float, list[str]]:
    try:
        z = float(prediction.z_um)
        sigma = float(getattr(prediction, "sigma_um", math.nan))
        in_range = bool(getattr(prediction, "in_range", True))
        p = getattr(prediction, "p_positive", None)
        p_positive = math.nan if p is None else float(p)
    except (AttributeError, TypeError, ValueError):
        raise ConfigError(
            "predict must return an object with z_um (µm), sigma_um and in_range "
            f"(e.g. DefocusModel.predict), got {type(prediction).__name__}"
        ) from None
    if not 0 <= p_positive <= 1:
        p_positive = math.nan  # not a probability: the sign of z decides
    notes = [str(n) for n in (getattr(prediction, "notes", None) or [])]
    return z, sigma, in_range, p_positive, notes


class _Singleshot:
    """The state of one single-shot run (so that the loop reads as the method does)."""

    def __init__(self, scope: Microscope, predict: DefocusPredictor, measure: str) -> None:
        self.scope = scope
        self.predict = predict
        self.probe = Probe(scope, measure)  # validates the measure; keeps the trace
        self.looks: list[_Look] = []
        self.records: list[dict[str, Any]] = []

    def look(self) -> _Look:
        """Snap here, score the image (for the trace), predict its defocus."""
        image = self.scope.snap()
        value = float(score(image, self.probe.measure, **self.probe.kwargs))
        z_here = float(self.scope.z_um)
        self.probe.trace.append((z_here, value))
        z, sigma, in_range, p_positive, notes = _parse(self.predict(image))
        why = ""
        if not math.isfinite(z):
            in_range, why = False, f"the prediction is not finite ({z})"
        elif not in_range:
            why = "; ".join(notes) or f"the prediction z = {z:+.2f} µm is not in the model's range"
        look = _Look(z_here, value, z, sigma, in_range, why, p_positive)
        self.looks.append(look)
        self.records.append(look.record(notes))
        return look

    def go(self, z: float) -> None:
        """Move to z in steps the stage allows (no move, and no cost, when already there)."""
        if z != self.scope.z_um:
            self.probe.move(z)


def singleshot_search(
    scope: Microscope,
    predict: DefocusPredictor,
    *,
    max_iterations: int = 3,
    tolerance_um: float | None = None,
    verify: bool = True,
    fallback: str | None = "brent",
    fallback_range_um: float | None = None,
    measure: str = "tenengrad",
    guard: str = "prediction",
    max_images: int | None = None,
    sign_check: bool = True,
) -> SearchResult:
    """Focus with a single-shot defocus predictor; a classic search is the fallback.

    Snap → predict → move the focus drive by −z → verify, as in Pinkard et al. [1]_.

    Parameters
    ----------
    scope : Microscope
        The microscope to focus (simulated, replayed or real).
    predict : DefocusPredictor
        image → object with ``z_um`` (defocus, OPTICS.md sign), ``sigma_um`` and
        ``in_range`` (and optionally ``notes``); e.g. ``lambda im: model.predict(im,
        pixel_size_um=scope.pixel_size_um, optics=scope.optics)``.
    max_iterations : int, optional
        Most moves (each followed by one verification image when ``verify``): at most
        ``max_iterations + 1`` images unless the fallback runs.
    tolerance_um : float, optional
        Stop when ``|z| ≤ tolerance``. Default: ``max(σ, DOF/4)`` of each prediction
        (DOF from ``scope.optics``; 0.5 µm when neither is known) — closer than the
        model's own uncertainty it cannot tell focus apart.
    verify : bool, optional
        False: the paper's pure single shot — one image, one move, no verification
        (``score_final`` is NaN: nothing was imaged at the end).
    fallback : {"brent", "gss", "scan"} or None, optional
        Classic search (``brent``, ``gss``, ``scan``) run when a prediction is not
        ``in_range``, from the start position, over ``fallback_range_um`` (default: the
        whole stage); None: stop at the start instead, unsuccessful.
    fallback_range_um : float, optional
        The range the fallback searches (µm, > 0), centred on the start. Default: the
        whole stage.
    measure : str, optional
        Focus measure scored on every image for the trace (and used by the fallback and
        ``guard="measure"``).
    guard : {"prediction", "measure", "none"}, optional
        How "not worse than the start" is judged with ``verify``:
        ``"prediction"`` — finish at the visited position whose verification predicts
        the smallest ``|z|`` (the start if the model says every move made it worse);
        ``"measure"`` — if the last image scores lower than the start's, go back to the
        start (the classic rule; right where contrast peaks in focus, wrong for phase
        cells under one LED); ``"none"`` — finish at the last position.
    max_images : int, optional
        Hard budget of images for the whole search, the fallback included (≥ 2 with
        ``verify``; None: ``max_iterations + 1`` plus the fallback's own budget). The
        fallback gets what is left, and does not run with fewer than 3.
    sign_check : bool, optional
        With ``verify``: when a move by ``|z|`` in the more likely direction leaves the
        verification predicting a *larger* ``|z|`` than before it, the sign was wrong (one
        LED often cannot tell ±z apart); move the other way instead, to the previous
        position + z (one more move). Default True. False: the old rule, always −z.

    Returns
    -------
    result : SearchResult
        ``method="singleshot"``, the (z, score) trace of every image, and one record per
        prediction in ``predictions``. The stage never leaves its limits (moves are clipped
        to them and made in allowed steps) and goes back to the start if the camera, the
        stage or the predictor fails.

    Raises
    ------
    ConfigError
        ``predict`` not callable, a prediction without ``z_um``, or a bad
        ``max_iterations``, ``tolerance_um``, ``fallback``, ``fallback_range_um``,
        ``guard`` or measure.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       the method as a whole (one image → defocus → one move).
    """
    if not callable(predict):
        raise ConfigError(
            "predict must be a callable image → prediction (e.g. DefocusModel.predict)"
        )
    if (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, (int, np.integer))
        or max_iterations < 1
    ):
        raise ConfigError(f"max_iterations must be an integer ≥ 1, got {max_iterations!r}")
    if tolerance_um is not None and not (math.isfinite(tolerance_um) and tolerance_um > 0):
        raise ConfigError(
            f"tolerance_um must be > 0 µm (or None for max(σ, DOF/4)), got {tolerance_um!r}"
        )
    if fallback is not None and str(fallback).lower() == "none":
        fallback = None
    if fallback is not None and fallback not in SEARCHES:
        raise ConfigError(
            f"fallback must be one of {', '.join(SEARCHES)} or None, got {fallback!r}"
        )
    if guard not in GUARDS:
        raise ConfigError(f"guard must be one of {', '.join(GUARDS)}, got {guard!r}")
    if fallback_range_um is not None and not (
        math.isfinite(fallback_range_um) and fallback_range_um > 0
    ):
        raise ConfigError(f"fallback_range_um must be > 0 µm, got {fallback_range_um!r}")
    if max_images is not None:
        check_search_options(max_images=max_images, min_images=2 if verify else 1)

    t_compute = time.perf_counter()
    elapsed0, exposures0 = scope.elapsed_s, scope.exposures
    z0 = float(scope.z_um)
    lo, hi = scope.z_limits_um
    quarter_dof = scope.optics.depth_of_field_um / 4 if scope.optics is not None else None
    run = _Singleshot(scope, predict, measure)
    notes: list[str] = []
    unusable: _Look | None = None
    chosen: _Look | None = None
    converged = False
    moves = 0
    before: _Look | None = None  # the look the last ordinary move started from

    def tolerance(look: _Look) -> float:
        if tolerance_um is not None:
            return float(tolerance_um)
        known = [
            v for v in (look.sigma_um, quarter_dof) if v is not None and math.isfinite(v) and v > 0
        ]
        return max(known) if known else _DEFAULT_TOLERANCE_UM

    with restore_on_failure(scope):
        last = run.look()
        while True:
            if not last.usable:
                unusable = last
                break
            if abs(last.z_pred_um) <= tolerance(last):
                converged = True
                break
            if moves >= max_iterations:
                break
            if max_images is not None and verify and len(run.looks) >= max_images:
                notes.append(f"stopped at the budget of {max_images} images")
                break
            here = float(scope.z_um)
            if sign_check and before is not None and abs(last.z_pred_um) > abs(before.z_pred_um):
                # Moving by |z| one way made |z| larger (a wrong sign gives |z| → 2|z|):
                # the focus lies the other way, at the previous position + |z|.
                wanted = before.z_um + before.direction * abs(before.z_pred_um)
                notes.append(
                    f"|z| grew from {abs(before.z_pred_um):.2f} to {abs(last.z_pred_um):.2f} µm "
                    f"after the move: the sign was wrong; moved the other way"
                )
                before = None  # no second reversal from the reversed move
            else:
                # The focus drive moves by −z (OPTICS.md): |z| in the more likely direction.
                wanted = here - last.direction * abs(last.z_pred_um)
                before = last
            target = min(max(wanted, lo), hi)
            if target != wanted:
                notes.append(
                    f"the move to z = {wanted:+.2f} µm was clipped to the stage "
                    f"limit {target:+.2f} µm"
                )
            if abs(target - here) < 1e-9:
                notes.append("the stage is at its limit; cannot move further")
                break
            run.go(target)
            moves += 1
            if not verify:
                break
            last = run.look()

        if unusable is not None:
            run.go(z0)  # the fallback starts where the user started (no image: it takes its own)
        elif verify:
            chosen, why_back = _choose(run.looks, guard, tolerance)
            run.go(chosen.z_um)
            if why_back:
                notes.append(why_back)

    start = run.looks[0]
    if unusable is not None:
        return _fall_back(
            scope,
            run,
            fallback,
            fallback_range_um,
            measure,
            unusable,
            start,
            z0,
            elapsed0,
            exposures0,
            t_compute,
            None if max_images is None else max_images - len(run.looks),
        )

    if not verify:
        z_final = float(scope.z_um)
        success = True
        score_final = math.nan
        message = (
            f"moved by {z_final - z0:+.2f} µm on one prediction (z = {start.z_pred_um:+.2f} µm), "
            "without a verification image"
        )
        if converged:
            message = f"already in focus (predicted z = {start.z_pred_um:+.2f} µm); no move"
    else:
        assert chosen is not None
        final = chosen
        z_final = float(scope.z_um)
        score_final = final.score
        success = abs(final.z_pred_um) <= tolerance(final) and final.usable
        if converged and moves == 0:
            message = (
                f"already in focus (predicted z = {start.z_pred_um:+.2f} µm, tolerance "
                f"{tolerance(start):.2f} µm)"
            )
        elif success:
            message = (
                f"in focus after {moves} move(s): predicted z {start.z_pred_um:+.2f} → "
                f"{final.z_pred_um:+.2f} µm (tolerance {tolerance(final):.2f} µm)"
            )
        else:
            message = (
                f"not within tolerance after {moves} move(s): predicted z {start.z_pred_um:+.2f} → "
                f"{final.z_pred_um:+.2f} µm (tolerance {tolerance(final):.2f} µm)"
            )
        if guard == "measure" and z_final == z0 and moves > 0:
            success = False
    if notes:
        message += "; " + "; ".join(notes)
    return SearchResult(
        method="singleshot",
        measure=measure,
        z_start_um=z0,
        z_final_um=float(scope.z_um),
        score_start=start.score,
        score_final=score_final,
        images=scope.exposures - exposures0,
        success=success,
        trace=run.probe.trace,
        message=message,
        elapsed_s=scope.elapsed_s - elapsed0,
        compute_s=time.perf_counter() - t_compute,
        predictions=run.records,
    )


def _choose(
    looks: list[_Look], guard: str, tolerance: Callable[[_Look], float]
) -> tuple[_Look, str]:
    """The position to finish at, and why it is not the last one (empty when it is)."""
    start, last = looks[0], looks[-1]
    if guard == "none" or len(looks) == 1:
        return last, ""
    if guard == "measure":
        if last.score < start.score:
            return start, (
                f"the last image scored lower ({last.score:.4g}) than the start "
                f"({start.score:.4g}) by the measure; returned to the start"
            )
        return last, ""
    usable = [lk for lk in looks if lk.usable]
    best = min(usable, key=lambda lk: abs(lk.z_pred_um))
    if best is last:
        return last, ""
    if best is start:
        return start, (
            "the verification images predict the start was closest to focus "
            f"(|z| {abs(start.z_pred_um):.2f} µm); returned to the start"
        )
    return best, f"finished at z = {best.z_um:+.2f} µm, where the model predicted the smallest |z|"


def _fall_back(
    scope: Microscope,
    run: _Singleshot,
    fallback: str | None,
    range_um: float | None,
    measure: str,
    unusable: _Look,
    start: _Look,
    z0: float,
    elapsed0: float,
    exposures0: int,
    t_compute: float,
    budget: int | None = None,
) -> SearchResult:
    """A prediction was not usable: run the classic search from the start (or stop there)."""
    reason = f"the prediction at stage z = {unusable.z_um:+.2f} µm is not usable ({unusable.why})"
    if fallback is not None and budget is not None and budget < 3:
        reason += f"; only {budget} image(s) of the budget left, too few for the fallback"
        fallback = None
    if fallback is None:
        return SearchResult(
            method="singleshot",
            measure=measure,
            z_start_um=z0,
            z_final_um=float(scope.z_um),
            score_start=start.score,
            score_final=start.score,
            images=scope.exposures - exposures0,
            success=False,
            trace=run.probe.trace,
            message=f"failed: {reason}; no fallback, stayed at the start",
            elapsed_s=scope.elapsed_s - elapsed0,
            compute_s=time.perf_counter() - t_compute,
            predictions=run.records,
        )
    lo, hi = scope.z_limits_um
    if range_um is None:  # the whole stage: [z0 − r/2, z0 + r/2] clipped to the limits is [lo, hi]
        range_um = 2 * max(z0 - lo, hi - z0) or 1.0
    limit = {} if budget is None else {"max_images": budget}
    classic = SEARCHES[fallback](scope, measure, range_um=range_um, **limit)
    message = f"{reason}; fell back to {fallback}"
    if classic.message:
        message += f": {classic.message}"
    return SearchResult(
        method="singleshot",
        measure=measure,
        z_start_um=z0,
        z_final_um=classic.z_final_um,
        score_start=start.score,
        score_final=classic.score_final,
        images=scope.exposures - exposures0,
        success=classic.success,
        trace=run.probe.trace + classic.trace,
        message=message,
        elapsed_s=scope.elapsed_s - elapsed0,
        compute_s=time.perf_counter() - t_compute,
        predictions=run.records,
    )
