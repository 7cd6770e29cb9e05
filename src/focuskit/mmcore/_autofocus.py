"""Software autofocus on a Micro-Manager core: any focuskit method, one result type.

:class:`Autofocuser` holds a method with its settings and, for the learned methods, the
loaded model and calibration, so that a time-lapse pays for loading them once. Its
:meth:`Autofocuser.run` has the signature of the software-autofocus registry proposed
for pymmcore-plus, ``run(core, focus_device, settings, *, should_cancel) ->
AutofocusResult``; :func:`autofocus` is the one-off call.

Each run, like Micro-Manager's OughtaFocus, optionally switches to an autofocus channel
(a configuration preset) and keeps the shutter open for the whole search instead of
cycling it per image, and puts both back afterwards — whether the search succeeded,
failed or was cancelled.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focuskit._api import AUTOFOCUS_METHODS
from focuskit._api import autofocus as focus_scope
from focuskit._errors import ConfigError
from focuskit.io import FocalStack
from focuskit.mmcore._scope import AutofocusCancelledError, MMCoreScope
from focuskit.scopes import ScopeError, move_in_steps, restore_on_failure
from focuskit.search import SEARCHES, SearchResult

# What every focuskit autofocus reports as its kind in the registry's AutofocusResult:
# software (images from the camera) as opposed to a hardware autofocus device.
KIND = "software"
# Settings that shape the microscope rather than the search.
_SCOPE_KEYS = (
    "limits_um",
    "max_step_um",
    "optics",
    "pixel_size_um",
    "stage_resolution_um",
    "move_overhead_s",
    "stage_speed_um_s",
)
_RUN_KEYS = ("config", "fallback_config", "keep_shutter_open")


@dataclass
class AutofocusResult:
    """What one autofocus run on a Micro-Manager core did (lengths in µm).

    The first nine fields are those of the software-autofocus registry proposed for
    pymmcore-plus; the rest are focuskit's.

    Attributes
    ----------
    kind : str
        ``"software"``: focused from camera images (not by a hardware autofocus device).
    method : str
        The focuskit method (``brent``, ``gss``, ``scan``, ``singleshot``, ``deepfocus``).
    focus_device : str
        Label of the stage that was moved.
    z_before : float
        Stage position before the run, in µm.
    z_after : float
        Stage position after the run (where it was left), in µm.
    succeeded : bool
        The method says it focused; False when it did not, failed or was cancelled.
    message : str
        What happened, in one line.
    scores : list of (float, float)
        ``(z_um, score)`` of every image, in order (deepfocus: the blur score, lower is
        sharper; the others: larger is sharper).
    n_images : int
        Images taken.
    cancelled : bool
        The run was cancelled (the stage went back to ``z_before``).
    elapsed_s : float
        Stage and camera time of the run (exposures + moves), in s.
    compute_s : float
        Wall time of the method's own work — its search (images, moves, predictions) and its
        model's checks — in s; switching configurations and the shutter is not counted.
    notes : list of str
        What was assumed or forced (e.g. a model's optics check).
    search : SearchResult or None
        The search's own record (trace, predictions); None when it did not finish.
    """

    kind: str
    method: str
    focus_device: str
    z_before: float
    z_after: float
    succeeded: bool
    message: str
    scores: list[tuple[float, float]] = field(default_factory=list)
    n_images: int = 0
    cancelled: bool = False
    elapsed_s: float = 0.0
    compute_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    search: SearchResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types.

        Returns
        -------
        d : dict
            The registry fields (``scores`` as ``{"z_um", "score"}`` records), then
            ``cancelled``, ``elapsed_s``, ``compute_s`` and ``notes``.
        """
        return {
            "kind": self.kind,
            "method": self.method,
            "focus_device": self.focus_device,
            "z_before": self.z_before,
            "z_after": self.z_after,
            "succeeded": self.succeeded,
            "message": self.message,
            "scores": [{"z_um": z, "score": s} for z, s in self.scores],
            "n_images": self.n_images,
            "cancelled": self.cancelled,
            "elapsed_s": self.elapsed_s,
            "compute_s": self.compute_s,
            "notes": list(self.notes),
        }


def _accepted_settings(method: str) -> set[str]:
    """The search settings a method takes (besides the scope and what the facade binds)."""
    if method in SEARCHES:
        func, bound = SEARCHES[method], {"scope", "measure"}
        extra: set[str] = set()
    elif method == "singleshot":
        from focuskit.singleshot import singleshot_search

        func, bound = singleshot_search, {"scope", "predict", "measure"}
        extra = {"range_um", "force"}
    else:
        from focuskit.fewshot import deepfocus_search

        func, bound = deepfocus_search, {"scope", "score_map", "calibration"}
        extra = set()
    names = set(inspect.signature(func).parameters) - bound
    return names | extra


class Autofocuser:
    """A focuskit autofocus method, its settings and its loaded model, run on a core.

    Parameters
    ----------
    method : str, optional
        ``brent`` (default; Micro-Manager's OughtaFocus), ``gss``, ``scan``, ``singleshot``
        (a :class:`~focuskit.singleshot.DefocusModel`), ``deepfocus`` (a
        :class:`~focuskit.fewshot.BlurScorer` and the objective's calibration).
    measure : str, optional
        Focus measure of the classic searches (and of the single-shot trace and fallback);
        default ``"tenengrad"``.
    model : model object, str or path-like, optional
        ``singleshot``: default ``builtin:singleshot-20x-led``; ``deepfocus``: default the
        calibration's model, else ``builtin:fewshot-widefield``. Loaded once, here.
    calibration : BlurCalibration or path-like, optional
        ``deepfocus``: the objective's calibration (:func:`calibrate_deepfocus`, or
        ``focuskit fewshot calibrate``). Required for ``deepfocus``.
    config : (str, str), optional
        ``(group, preset)``: the configuration to focus in (e.g. an autofocus channel such
        as ``("Channel", "DPC")``), set before the search and put back after it.
    fallback_config : (str, str), optional
        ``singleshot``: run its classic fallback (``fallback``, default ``brent``, over
        ``fallback_range_um`` or the whole stage, tolerance DOF/4) in this configuration
        instead of the single-shot one. On a microscope whose single-shot illumination has
        no contrast peak at focus (one LED: phase cells are least visible in focus), a
        fallback there walks away from focus; under DPC or brightfield it finds it.
    keep_shutter_open : bool, optional
        With auto-shutter on, open the shutter once for the whole search and close it after
        (default True), as OughtaFocus does, instead of once per image.
    limits_um, max_step_um, optics, pixel_size_um, stage_resolution_um : optional
        The microscope (:class:`MMCoreScope`): stage limits and largest step (µm), optics
        (or a preset name), pixel size (µm), stage resolution (µm).
    **search_settings
        The method's own settings: ``range_um``, ``tolerance_um``, ``max_images``
        (classic); ``max_iterations``, ``tolerance_um``, ``fallback``, ``range_um``,
        ``force`` … (singleshot); ``max_images``, ``range_um``, ``roi`` … (deepfocus).

    Raises
    ------
    ConfigError
        An unknown method or setting, a missing calibration, or a model that cannot be
        loaded.
    """

    def __init__(
        self,
        method: str = "brent",
        *,
        measure: str = "tenengrad",
        model: Any = None,
        calibration: Any = None,
        config: tuple[str, str] | None = None,
        fallback_config: tuple[str, str] | None = None,
        keep_shutter_open: bool = True,
        **settings: Any,
    ) -> None:
        if method not in AUTOFOCUS_METHODS:
            raise ConfigError(
                f"unknown autofocus method {method!r}; use one of {', '.join(AUTOFOCUS_METHODS)}"
            )
        self.method = method
        self.measure = measure
        self.scope_settings = {k: settings.pop(k) for k in _SCOPE_KEYS if k in settings}
        accepted = _accepted_settings(method)
        unknown = sorted(set(settings) - accepted)
        if unknown:
            raise ConfigError(
                f"method {method!r} does not take {', '.join(unknown)}; it takes "
                f"{', '.join(sorted(accepted | set(_SCOPE_KEYS) | set(_RUN_KEYS)))}"
            )
        self.search_settings = settings
        self.config = _check_config(config)
        self.fallback_config = _check_config(fallback_config)
        if self.fallback_config is not None:
            if method != "singleshot":
                raise ConfigError("fallback_config applies to method 'singleshot' only")
            fallback = settings.get("fallback", "brent")
            if fallback is None or str(fallback).lower() == "none":
                raise ConfigError("fallback_config needs a fallback search (fallback='brent' …)")
            if fallback not in SEARCHES:
                raise ConfigError(
                    f"fallback must be one of {', '.join(SEARCHES)} or None, got {fallback!r}"
                )
        self.keep_shutter_open = bool(keep_shutter_open)
        self.model: Any = None
        self.calibration: Any = None
        if method == "singleshot":
            from focuskit.singleshot import DEFAULT_MODEL, DefocusModel

            self.model = (
                model
                if isinstance(model, DefocusModel)
                else DefocusModel.load(model or DEFAULT_MODEL)
            )
        elif method == "deepfocus":
            from focuskit.fewshot import DEFAULT_MODEL as BLUR_MODEL
            from focuskit.fewshot import BlurCalibration, BlurScorer

            if calibration is None:
                raise ConfigError(
                    "method 'deepfocus' needs calibration= (a BlurCalibration or its JSON path); "
                    "make one on this microscope with focuskit.mmcore.calibrate_deepfocus(core) "
                    "or `focuskit fewshot calibrate STACK -o CALIB.json`"
                )
            if isinstance(calibration, (str, os.PathLike)):
                calibration = BlurCalibration.load(calibration)
            if not isinstance(calibration, BlurCalibration):
                raise ConfigError(
                    "calibration must be a BlurCalibration or its JSON path, got "
                    f"{type(calibration).__name__}"
                )
            self.calibration = calibration
            self.model = (
                model
                if isinstance(model, BlurScorer)
                else BlurScorer.load(model or calibration.model or BLUR_MODEL)
            )
        elif model is not None or calibration is not None:
            raise ConfigError(
                f"model= and calibration= apply to singleshot / deepfocus, not {method}"
            )

    def __repr__(self) -> str:
        return f"Autofocuser({self.method!r}, {self.search_settings})"

    # The registry's entry point -------------------------------------------------------------
    def run(
        self,
        core: Any,
        focus_device: str | None = None,
        settings: dict[str, Any] | None = None,
        *,
        should_cancel: Callable[[], bool] | None = None,
    ) -> AutofocusResult:
        """Focus ``core`` once; the stage is left at ``z_after``.

        Parameters
        ----------
        core : CMMCorePlus
            The Micro-Manager core (camera, focus stage, pixel size).
        focus_device : str, optional
            The stage to move (default: the core's focus device).
        settings : dict, optional
            Per-run overrides of the search and scope settings given at construction.
        should_cancel : callable, optional
            Asked before every image; True stops the run and returns the stage to where it
            started.

        Returns
        -------
        result : AutofocusResult
            ``succeeded`` False (with the reason in ``message``) when the method did not
            focus, the camera or stage failed (the stage is returned to ``z_before``) or the
            run was cancelled.

        Raises
        ------
        ConfigError
            Before anything moves: the core lacks a camera, focus stage, limits or pixel
            size, a setting is unknown, or the configuration preset does not exist.
        """
        scope_settings, search_settings = self._split(settings)
        scope = MMCoreScope(core, focus_device, should_cancel=should_cancel, **scope_settings)
        return self.run_on(scope, search_settings=search_settings)

    __call__ = run

    def _split(self, settings: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        scope_settings = dict(self.scope_settings)
        search_settings = dict(self.search_settings)
        for key, value in (settings or {}).items():
            if key in _SCOPE_KEYS:
                scope_settings[key] = value
            elif key in _accepted_settings(self.method):
                search_settings[key] = value
            else:
                raise ConfigError(
                    f"setting {key!r} cannot change per run (method, model, calibration, config "
                    "are fixed when the Autofocuser is made) or is unknown"
                )
        return scope_settings, search_settings

    def run_on(
        self, scope: MMCoreScope, *, search_settings: dict[str, Any] | None = None
    ) -> AutofocusResult:
        """Focus through a prepared :class:`MMCoreScope` (what :meth:`run` and the engine do).

        Parameters
        ----------
        scope : MMCoreScope
            The core as a focuskit scope; its ``should_cancel`` is honoured.
        search_settings : dict, optional
            The search's settings (default: those given at construction).

        Returns
        -------
        result : AutofocusResult
            As :meth:`run`.

        Raises
        ------
        ConfigError
            A bad setting or configuration preset (before anything moves).
        """
        settings = dict(self.search_settings if search_settings is None else search_settings)
        core, label = scope.core, scope.focus_device
        z_before = float(scope.z_um)
        exposures0, elapsed0 = scope.exposures, scope.elapsed_s

        def result(**fields: Any) -> AutofocusResult:
            return AutofocusResult(
                kind=KIND,
                method=self.method,
                focus_device=label,
                z_before=z_before,
                n_images=scope.exposures - exposures0,
                elapsed_s=scope.elapsed_s - elapsed0,
                **fields,
            )

        if scope.should_cancel is not None and scope.should_cancel():
            return result(
                z_after=z_before, succeeded=False, cancelled=True, message="cancelled before start"
            )
        spent = [0.0]  # wall time inside the method itself (what the engine's overhead excludes)
        fallback = None
        if self.fallback_config is not None:
            fallback = settings.pop("fallback", "brent")
            settings["fallback"] = None  # ours runs instead, in the fallback configuration
            fallback_range = settings.pop("fallback_range_um", None)
            if fallback_range is None:
                fallback_range = settings.pop("range_um", None)
            settings.pop("range_um", None)
        try:
            with _focus_state(core, self.config, self.keep_shutter_open), _timed(spent):
                search = focus_scope(
                    scope,
                    self.method,
                    "blur-cnn" if self.method == "deepfocus" else self.measure,
                    model=self.model,
                    calibration=self.calibration,
                    **settings,
                )
            if fallback is not None and _unusable(search):
                search = self._fall_back(scope, search, fallback, fallback_range, spent)
        except ScopeError as exc:
            cancelled = isinstance(exc, AutofocusCancelledError) or isinstance(
                exc.__cause__, AutofocusCancelledError
            )
            z_after = _position(scope)
            return result(
                z_after=z_after,
                succeeded=False,
                cancelled=cancelled,
                message=("cancelled: " if cancelled else "failed: ") + str(exc),
                compute_s=spent[0],
            )
        z_after = _position(scope)
        message = search.message or (
            f"{self.method}: z {z_before:+.3f} → {z_after:+.3f} µm in {search.images} images"
        )
        return result(
            z_after=z_after,
            succeeded=bool(search.success),
            message=message,
            scores=[(float(z), float(s)) for z, s in search.trace],
            compute_s=spent[0],
            notes=list(search.notes),
            search=search,
        )

    def _fall_back(
        self,
        scope: MMCoreScope,
        first: SearchResult,
        method: str,
        range_um: float | None,
        spent: list[float],
    ) -> SearchResult:
        """The classic fallback in the fallback configuration, from where single shot left."""
        assert self.fallback_config is not None
        lo, hi = scope.z_limits_um
        z0 = float(scope.z_um)
        if range_um is None:  # the whole stage, as single shot's own fallback
            range_um = 2 * max(z0 - lo, hi - z0) or 1.0
        optics = scope.optics
        tolerance = optics.depth_of_field_um / 4 if optics is not None else 0.5
        with _focus_state(scope.core, self.fallback_config, self.keep_shutter_open), _timed(spent):
            classic = SEARCHES[method](
                scope, self.measure, range_um=range_um, tolerance_um=tolerance
            )
        group, preset = self.fallback_config
        reason = first.message.removeprefix("failed: ").split("; no fallback")[0]
        message = f"{reason}; fell back to {method} in {group} {preset}"
        if classic.message:
            message += f": {classic.message}"
        return SearchResult(
            method=first.method,
            measure=first.measure,
            z_start_um=first.z_start_um,
            z_final_um=classic.z_final_um,
            score_start=first.score_start,
            score_final=classic.score_final,
            images=first.images + classic.images,
            success=classic.success,
            trace=first.trace + classic.trace,
            message=message,
            elapsed_s=first.elapsed_s + classic.elapsed_s,
            compute_s=first.compute_s + classic.compute_s,
            predictions=first.predictions,
            notes=first.notes,
        )


@contextmanager
def _timed(spent: list[float]) -> Iterator[None]:
    """Add the wall time of the block to ``spent[0]`` (also when it raises)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        spent[0] += time.perf_counter() - t0


def _unusable(search: SearchResult) -> bool:
    """Single shot stopped because a prediction could not be used (its fallback's cue)."""
    return not search.success and any(not p.get("in_range", True) for p in search.predictions)


def _position(scope: MMCoreScope) -> float:
    try:
        return float(scope.core.getPosition(scope.focus_device))
    except Exception:
        return math.nan


def _check_config(config: Any) -> tuple[str, str] | None:
    if config is None:
        return None
    try:
        group, preset = config
    except (TypeError, ValueError):
        raise ConfigError(
            f"config must be (group, preset), e.g. ('Channel', 'DPC'), got {config!r}"
        ) from None
    return str(group), str(preset)


@contextmanager
def _focus_state(core: Any, config: tuple[str, str] | None, keep_open: bool) -> Iterator[None]:
    """Switch to the autofocus configuration and keep the shutter open; put both back after."""
    undo: list[Callable[[], None]] = []
    try:
        if config is not None:
            group, preset = config
            if not core.isGroupDefined(group) or not core.isConfigDefined(group, preset):
                raise ConfigError(
                    f"configuration {group!r} / {preset!r} is not defined in the core; "
                    f"defined groups: {', '.join(core.getAvailableConfigGroups()) or 'none'}"
                )
            previous = str(core.getCurrentConfig(group))
            if previous != preset:
                core.setConfig(group, preset)
                core.waitForConfig(group, preset)
                if previous:
                    undo.append(lambda: core.setConfig(group, previous))
        shutter = core.getShutterDevice()
        if keep_open and shutter and core.getAutoShutter():
            core.setAutoShutter(False)
            undo.append(lambda: core.setAutoShutter(True))
            core.setShutterOpen(True)
            undo.append(lambda: core.setShutterOpen(False))
        yield
    finally:
        for step in reversed(undo):
            step()


def autofocus(
    core: Any,
    method: str = "brent",
    *,
    focus_device: str | None = None,
    should_cancel: Callable[[], bool] | None = None,
    **settings: Any,
) -> AutofocusResult:
    """Focus a Micro-Manager core once with any focuskit method.

    Parameters
    ----------
    core : CMMCorePlus
        The Micro-Manager core: its camera, a focus stage with limits (its own, or
        ``limits_um=``) and a pixel size.
    method : str, optional
        ``brent`` (default), ``gss``, ``scan``, ``singleshot`` or ``deepfocus``.
    focus_device : str, optional
        The stage to move (default: the core's focus device).
    should_cancel : callable, optional
        Asked before every image; True stops the run and returns the stage to the start.
    **settings
        What :class:`Autofocuser` takes: ``measure``, ``model``, ``calibration``,
        ``config``, ``limits_um``, ``max_step_um``, ``optics`` and the method's own
        settings (``range_um``, ``tolerance_um``, ``max_images`` …; lengths in µm).

    Returns
    -------
    result : AutofocusResult
        ``kind, method, focus_device, z_before, z_after, succeeded, message, scores,
        n_images`` (µm). The stage is left at ``z_after``.

    Raises
    ------
    ConfigError
        Before anything moves: an unknown method or setting, a missing calibration, or a
        core without camera, focus stage, stage limits or pixel size.
    MMCoreUnavailableError
        Never here (the core is already made), but by the other entry points when
        pymmcore-plus is missing.
    """
    return Autofocuser(method, **settings).run(core, focus_device, should_cancel=should_cancel)


def calibrate_deepfocus(
    core: Any,
    *,
    model: Any = None,
    range_um: float = 200.0,
    planes: int = 41,
    focus_device: str | None = None,
    **scope_settings: Any,
) -> Any:
    """Calibrate DeepFocus on this microscope: a stack through focus, then ``b_calib(z)``.

    Images ``planes`` positions evenly over ``z ± range_um/2`` around the current position
    (within the stage limits), scores each with the blur CNN and fits the calibration
    curve (:func:`focuskit.fewshot.calibrate`). Put a flat textured sample in focus first:
    the stack must pass through focus. The stage returns to where it was.

    Parameters
    ----------
    core : CMMCorePlus
        The Micro-Manager core.
    model : BlurScorer, str or path-like, optional
        The blur CNN (default ``builtin:fewshot-widefield``).
    range_um : float, optional
        Height of the stack, in µm (default 200).
    planes : int, optional
        Number of images (≥ 5; default 41).
    focus_device : str, optional
        The stage to move (default: the core's focus device).
    **scope_settings
        ``limits_um``, ``max_step_um``, ``optics``, ``pixel_size_um`` (:class:`MMCoreScope`).

    Returns
    -------
    calibration : BlurCalibration
        Centred on the blur minimum, with the optics and pixel size recorded; ``.save(path)``
        keeps it for ``autofocus(core, "deepfocus", calibration=path)``.

    Raises
    ------
    ConfigError
        Bad range or planes, a core that cannot be a scope, or a curve the calibration
        refuses (e.g. its minimum at an end of the stack: not through focus).
    ScopeError
        If the camera or stage fails (the stage is returned to where it was).
    """
    from focuskit.fewshot import DEFAULT_MODEL, BlurScorer, calibrate

    if not (math.isfinite(range_um) and range_um > 0):
        raise ConfigError(f"range_um must be > 0 µm, got {range_um!r}")
    if isinstance(planes, bool) or not isinstance(planes, int) or planes < 5:
        raise ConfigError(f"planes must be an integer ≥ 5, got {planes!r}")
    scorer = model if isinstance(model, BlurScorer) else BlurScorer.load(model or DEFAULT_MODEL)
    scope = MMCoreScope(core, focus_device, **scope_settings)
    z0 = scope.z_um
    lo, hi = scope.z_limits_um
    targets = np.unique(np.clip(z0 + np.linspace(-range_um / 2, range_um / 2, planes), lo, hi))
    if len(targets) < 5:
        raise ConfigError(
            f"the stage limits [{lo:g}, {hi:g}] µm leave fewer than 5 planes around z = {z0:g} µm"
        )
    images, zs = [], []
    with restore_on_failure(scope):
        for z in targets:
            move_in_steps(scope, float(z))
            images.append(np.asarray(scope.snap(), dtype=np.float32))
            zs.append(scope.z_um)
        move_in_steps(scope, z0)
    order = np.argsort(zs)
    stack = FocalStack(
        np.stack([images[i] for i in order]),
        np.asarray(zs, dtype=np.float64)[order],
        scope.pixel_size_um,
        optics=scope.optics,
    )
    return calibrate(
        stack,
        scorer.score_map,
        model=str(getattr(scorer, "source", "") or ""),
        source={"micro-manager": {"focus_device": scope.focus_device, "z_center_um": z0}},
    )
