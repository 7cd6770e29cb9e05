"""A time-lapse acquisition kept in focus: a useq ``MDASequence`` with an autofocus event
before every time point at every position, run by :class:`FocuskitEngine` on any core;
on a :class:`SimulatedCore` each frame's focus error is known too."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.mmcore._deps import require_pymmcore_plus


@dataclass
class TimelapseResult:
    """What a focused time-lapse did, frame by frame (lengths in µm, times in s).

    Attributes
    ----------
    method : str
        The autofocus method.
    timepoints : int
        Time points acquired.
    frames : list of dict
        One per acquired frame: ``t``, ``p``, ``x_um``, ``y_um``, ``z_um`` (where the stage
        was), ``af_images``, ``af_succeeded``, ``af_message``, ``correction_um``,
        ``af_elapsed_s`` (the autofocus's stage and camera time), and on a simulated core
        ``true_focus_um`` and ``error_um`` (``z − focus``).
    autofocus : list of dict
        The engine's record of every autofocus event (:attr:`FocuskitEngine.history`).
    clock_s : list of float
        On a simulated core, the simulated stage and camera time of each time point
        (exposures, moves, latency); empty otherwise.
    dof_um : float or None
        Depth of field of the optics, when known.
    """

    method: str
    timepoints: int
    frames: list[dict[str, Any]] = field(default_factory=list)
    autofocus: list[dict[str, Any]] = field(default_factory=list)
    clock_s: list[float] = field(default_factory=list)
    dof_um: float | None = None

    def summary(self) -> dict[str, Any]:
        """Images per autofocus, |error| (µm) and failures over the whole run.

        Returns
        -------
        summary : dict
            ``method``, ``frames``, ``images_median``, ``images_max``, ``error_median_um``,
            ``error_max_um`` (None without a known truth), ``within_quarter_dof`` (frames with
            |error| ≤ DOF/4, or None), ``failures`` (autofocus events that did not succeed),
            ``clock_s_per_timepoint`` (median, or None), ``overhead_ms_median``.
        """
        images = [r["n_images"] for r in self.autofocus]
        errors = [abs(f["error_um"]) for f in self.frames if f.get("error_um") is not None]
        overhead = [r["overhead_ms"] for r in self.autofocus]
        within = None
        if errors and self.dof_um:
            within = sum(e <= self.dof_um / 4 for e in errors)
        return {
            "method": self.method,
            "frames": len(self.frames),
            "images_median": float(np.median(images)) if images else None,
            "images_max": int(max(images)) if images else None,
            "error_median_um": float(np.median(errors)) if errors else None,
            "error_max_um": float(max(errors)) if errors else None,
            "within_quarter_dof": within,
            "failures": sum(not r["succeeded"] for r in self.autofocus),
            "clock_s_per_timepoint": float(np.median(self.clock_s)) if self.clock_s else None,
            "overhead_ms_median": float(np.median(overhead)) if overhead else None,
        }


def timelapse_sequence(
    timepoints: int, positions: Sequence[Sequence[float]] | None = None, interval_s: float = 0.0
) -> Any:
    """The useq acquisition: ``timepoints`` × positions, autofocus whenever ``t`` or ``p`` changes.

    Parameters
    ----------
    timepoints : int
        Number of time points (≥ 1).
    positions : sequence of (x, y, z), optional
        Stage positions in µm (default: one, wherever the stage is).
    interval_s : float, optional
        Time between time points, in s (0: as fast as possible).

    Returns
    -------
    sequence : useq.MDASequence
        With ``autofocus_plan=AxesBasedAF(axes=("t", "p"))``.

    Raises
    ------
    ConfigError
        If ``timepoints`` is not an integer ≥ 1, the interval is negative, or a position is
        not (x, y, z).
    """
    require_pymmcore_plus()
    import useq

    if isinstance(timepoints, bool) or not isinstance(timepoints, int) or timepoints < 1:
        raise ConfigError(f"timepoints must be an integer ≥ 1, got {timepoints!r}")
    if not (math.isfinite(interval_s) and interval_s >= 0):
        raise ConfigError(f"interval_s must be ≥ 0 s, got {interval_s!r}")
    stage_positions = []
    for position in positions or ():
        try:
            x, y, z = (float(v) for v in position)
        except (TypeError, ValueError):
            raise ConfigError(f"a position must be (x, y, z) in µm, got {position!r}") from None
        stage_positions.append(useq.Position(x=x, y=y, z=z))
    return useq.MDASequence(
        time_plan={"interval": interval_s, "loops": timepoints},
        stage_positions=stage_positions,
        axis_order="tpcz",
        autofocus_plan=useq.AxesBasedAF(axes=("t", "p")),
    )


def run_timelapse(
    core: Any,
    method: str = "brent",
    *,
    timepoints: int = 10,
    positions: Sequence[Sequence[float]] | None = None,
    interval_s: float = 0.0,
    on_failure: str = "continue",
    engine: Any = None,
    on_frame: Callable[[dict[str, Any]], None] | None = None,
    **settings: Any,
) -> TimelapseResult:
    """Run a focused time-lapse on ``core`` and report every frame.

    Parameters
    ----------
    core : CMMCorePlus
        The core (a :class:`SimulatedCore` also reports each frame's focus error).
    method : str, optional
        The autofocus method (default ``"brent"``).
    timepoints : int, optional
        Number of time points (default 10).
    positions : sequence of (x, y, z), optional
        Stage positions in µm (default: one, where the stage is).
    interval_s : float, optional
        Time between time points, in s (real time; 0 default).
    on_failure : {"continue", "abort"}, optional
        The engine's failure policy.
    engine : FocuskitEngine, optional
        A ready engine (then ``method``, ``on_failure`` and ``settings`` are its own).
    on_frame : callable, optional
        Called with each frame's record as it arrives (progress).
    **settings
        What :class:`Autofocuser` takes (``model``, ``calibration``, ``config``,
        ``range_um``, ``tolerance_um`` …).

    Returns
    -------
    result : TimelapseResult
        Every frame and every autofocus.

    Raises
    ------
    ConfigError
        Bad settings, or a core without camera, focus stage, limits or pixel size.
    AutofocusFailedError
        With ``on_failure="abort"``, when an autofocus fails.
    """
    from focuskit.mmcore._engine import FocuskitEngine

    if engine is None:
        engine = FocuskitEngine(core, method, on_failure=on_failure, **settings)
    if positions is None:
        positions = (
            [(*core.getXYPosition(), core.getPosition())]
            if core.getXYStageDevice()
            else [(0.0, 0.0, core.getPosition())]
        )
    sequence = timelapse_sequence(timepoints, positions, interval_s)
    simulation = getattr(core, "simulation", None)
    optics = getattr(getattr(simulation, "preset", None), "optics", None)
    out = TimelapseResult(
        method=engine.autofocuser.method,
        timepoints=timepoints,
        dof_um=None if optics is None else float(optics.depth_of_field_um),
    )
    starts: dict[int, float] = {}

    def event_started(event: Any) -> None:
        t = event.index.get("t")
        if simulation is not None and t is not None and t not in starts:
            starts[t] = simulation.clock_s

    def frame_ready(image: Any, event: Any, meta: Any) -> None:
        p = event.index.get("p")
        record = (meta.get("extra") or {}).get("focuskit_autofocus") or {}
        position = meta.get("position") or {}
        z = position.get("z")
        x, y = position.get("x"), position.get("y")
        frame: dict[str, Any] = {
            "t": event.index.get("t"),
            "p": p,
            "x_um": x,
            "y_um": y,
            "z_um": z,
            "af_images": record.get("n_images"),
            "af_succeeded": record.get("succeeded"),
            "af_message": record.get("message"),
            "correction_um": record.get("correction_um"),
            "af_elapsed_s": record.get("elapsed_s"),
        }
        if simulation is not None:
            last = simulation.exposures[-1]
            frame["z_um"] = last.z_um
            frame["true_focus_um"] = last.focus_um
            frame["error_um"] = last.defocus_um
        out.frames.append(frame)
        if on_frame is not None:
            on_frame(frame)

    previous = core.mda.set_engine(engine)
    core.mda.events.eventStarted.connect(event_started)
    core.mda.events.frameReady.connect(frame_ready)
    try:
        core.mda.run(sequence)
    finally:
        core.mda.events.frameReady.disconnect(frame_ready)
        core.mda.events.eventStarted.disconnect(event_started)
        if previous is not None:
            core.mda.set_engine(previous)
    out.autofocus = list(engine.history)
    if simulation is not None and starts:
        ordered = [starts[t] for t in sorted(starts)] + [simulation.clock_s]
        out.clock_s = [float(b - a) for a, b in itertools.pairwise(ordered)]
    return out
