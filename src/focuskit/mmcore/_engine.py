"""``FocuskitEngine``: pymmcore-plus's MDA engine with focuskit answering autofocus events.

An acquisition with ``autofocus_plan=useq.AxesBasedAF(axes=("t", "p"))`` yields a
``HardwareAutofocus`` event before the events it guards. pymmcore-plus's own engine answers
it with ``core.fullFocus()`` (a hardware autofocus device, or nothing when there is none);
this engine answers it with a focuskit method on the camera and focus stage, keeps the
result as a z correction for that stage position, and applies the correction to the
position's following events and later time points. Every z the acquisition asks for is
checked against the stage limits before it is sent, and moved to in allowed steps.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from focuskit._errors import ConfigError, FocuskitError
from focuskit.mmcore._autofocus import Autofocuser, AutofocusResult
from focuskit.mmcore._deps import require_pymmcore_plus
from focuskit.mmcore._scope import MMCoreScope
from focuskit.scopes import move_in_steps

require_pymmcore_plus()

from pymmcore_plus.mda import MDAEngine  # noqa: E402 - after the one-line install hint
from useq import HardwareAutofocus, MDAEvent  # noqa: E402

logger = logging.getLogger("focuskit.mmcore")
ON_FAILURE = ("continue", "abort")
# Where a frame's metadata carries the autofocus that placed it (FrameMetaV1["extra"]).
METADATA_KEY = "focuskit_autofocus"


class AutofocusFailedError(FocuskitError, RuntimeError):
    """An autofocus event failed and the engine's policy is ``on_failure="abort"``."""


class FocuskitEngine(MDAEngine):
    """An MDA engine whose autofocus events run a focuskit method.

    Answers each ``HardwareAutofocus`` event with :class:`~focuskit.mmcore.Autofocuser`
    (whether or not the core has an autofocus device; ``core.fullFocus()`` is never
    called). A success sets the z correction of that stage position, ``z_after − z_pos``
    of the autofocus event, which is added to the z of the position's following events
    and carried to later time points (the next autofocus starts from it). The result goes
    into the autofocus event's ``metadata`` and into every later frame's metadata at that
    position (``meta["extra"]["focuskit_autofocus"]``), and into :attr:`history`.

    A failure (the method did not focus, the camera or stage failed, or the run was
    cancelled) keeps the previous correction and, with ``on_failure="continue"``
    (default), logs a warning and goes on; with ``"abort"`` it raises
    :class:`AutofocusFailedError` and the acquisition stops. The model and calibration of
    ``singleshot`` / ``deepfocus`` are loaded once, when the engine is made.

    Every z an event asks for (plus its position's correction) is checked against the
    stage limits before anything moves (:class:`~focuskit.scopes.StageLimitError` stops
    the acquisition otherwise) and reached in steps of at most ``max_step_um``.

    Parameters
    ----------
    mmc : CMMCorePlus
        The core; its focus device is the one focused and corrected.
    method : str, optional
        ``brent`` (default), ``gss``, ``scan``, ``singleshot`` or ``deepfocus``.
    on_failure : {"continue", "abort"}, optional
        What a failed autofocus does to the acquisition.
    autofocuser : Autofocuser, optional
        A ready one (then ``method`` and ``settings`` must not be given).
    engine_options : dict, optional
        Passed to ``pymmcore_plus.mda.MDAEngine`` (``use_hardware_sequencing`` …).
    **settings
        What :class:`~focuskit.mmcore.Autofocuser` takes (``model``, ``calibration``,
        ``config``, ``limits_um``, ``max_step_um``, ``range_um`` …).

    Attributes
    ----------
    autofocuser : Autofocuser
        The method, its settings and its loaded model.
    history : list of dict
        One record per autofocus event, in order: ``index`` (the event's), ``position``
        (``p``), the :meth:`AutofocusResult.to_dict` fields, ``correction_um``,
        ``engine_s`` and ``overhead_ms``.
    corrections : dict
        The z correction (µm) per position index.

    Raises
    ------
    ConfigError
        A bad ``on_failure``, method or setting, or a model that cannot be loaded.
    """

    def __init__(
        self,
        mmc: Any,
        method: str | None = None,
        *,
        on_failure: str = "continue",
        autofocuser: Autofocuser | None = None,
        engine_options: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        if on_failure not in ON_FAILURE:
            raise ConfigError(
                f"on_failure must be one of {', '.join(ON_FAILURE)}, got {on_failure!r}"
            )
        if autofocuser is not None and (method is not None or settings):
            raise ConfigError("give either autofocuser= or method= and its settings, not both")
        super().__init__(mmc, **(engine_options or {}))
        self.autofocuser = autofocuser or Autofocuser(method or "brent", **settings)
        self.on_failure = on_failure
        self.history: list[dict[str, Any]] = []
        self.corrections: dict[int | None, float] = {}
        self._last: dict[int | None, dict[str, Any]] = {}
        self._scope: MMCoreScope | None = None

    # Sequence -------------------------------------------------------------------------------
    def setup_sequence(self, sequence: Any) -> Any:
        """Prepare the hardware for an acquisition and the focus stage for this engine.

        Parameters
        ----------
        sequence : useq.MDASequence
            The acquisition.

        Returns
        -------
        summary : dict
            pymmcore-plus's summary metadata.

        Raises
        ------
        ConfigError
            If the core lacks a camera, focus stage, stage limits or pixel size.
        """
        summary = super().setup_sequence(sequence)
        self.history.clear()
        self.corrections.clear()
        self._last.clear()
        core = self.mmcore
        self._scope = MMCoreScope(
            core,
            None,
            should_cancel=lambda: bool(core.mda.status.cancel_requested),
            **self.autofocuser.scope_settings,
        )
        return summary

    @property
    def scope(self) -> MMCoreScope:
        """The core as a focuskit scope (made by ``setup_sequence``)."""
        if self._scope is None:
            raise ConfigError("the engine has no scope yet: it is made when an acquisition starts")
        return self._scope

    # z of every event: checked, stepped, corrected -------------------------------------------
    def _target(self, event: MDAEvent) -> float | None:
        if event.z_pos is None:
            return None
        return float(event.z_pos) + self.corrections.get(event.index.get("p"), 0.0)

    def setup_single_event(self, event: MDAEvent) -> None:
        """Set up one event; its z (plus the position's correction) is checked and stepped to.

        Parameters
        ----------
        event : useq.MDAEvent
            The event.

        Raises
        ------
        StageLimitError
            If the corrected z is outside the stage limits (nothing moves).
        """
        target = self._target(event)
        if target is None or not self.mmcore.getFocusDevice():
            super().setup_single_event(event)
            return
        move_in_steps(self.scope, target)
        super().setup_single_event(event.model_copy(update={"z_pos": None}))

    def setup_sequenced_event(self, event: Any) -> None:
        """Set up a hardware-sequenced event after checking every z it asks for.

        Parameters
        ----------
        event : SequencedEvent
            The merged event.

        Raises
        ------
        StageLimitError
            If a z of the sequence (plus the correction) is outside the stage limits.
        """
        correction = self.corrections.get(event.index.get("p"), 0.0)
        for z in [*(event.z_sequence or ()), *(() if event.z_pos is None else (event.z_pos,))]:
            self.scope.check_within_limits(float(z) + correction)
        self._z_correction = dict(self.corrections)  # pymmcore-plus applies it to z_pos
        super().setup_sequenced_event(event)
        self.scope.refresh()  # the stage moved without this scope

    # Autofocus events ------------------------------------------------------------------------
    def exec_event(self, event: MDAEvent) -> Any:
        """Run an autofocus event with focuskit; any other event as pymmcore-plus does.

        Parameters
        ----------
        event : useq.MDAEvent
            The event.

        Yields
        ------
        payload : ImagePayload
            The images of an acquisition event (none for an autofocus event).

        Raises
        ------
        AutofocusFailedError
            An autofocus failed and ``on_failure="abort"``.
        """
        if isinstance(event.action, HardwareAutofocus):
            self._autofocus(event)
            return
        yield from super().exec_event(event)

    def _autofocus(self, event: MDAEvent) -> None:
        t0 = time.perf_counter()
        scope = self.scope
        scope.refresh()
        p = event.index.get("p")
        result: AutofocusResult = self.autofocuser.run_on(scope)
        previous = self.corrections.get(p, 0.0)
        if result.succeeded and math.isfinite(result.z_after):
            if event.z_pos is not None:
                correction = result.z_after - float(event.z_pos)
            else:
                correction = previous + (result.z_after - result.z_before)
            self.corrections[p] = correction
        else:
            correction = previous
        record = {
            "index": {str(getattr(k, "value", k)): int(v) for k, v in event.index.items()},
            "position": p,
            **result.to_dict(),
            "correction_um": correction,
        }
        record.pop("scores")  # long; the result's own record keeps them
        engine_s = time.perf_counter() - t0
        record["engine_s"] = engine_s
        record["overhead_ms"] = 1000.0 * max(engine_s - result.compute_s, 0.0)
        event.metadata[METADATA_KEY] = record
        self.history.append(record)
        self._last[p] = record
        if not result.succeeded:
            where = ", ".join(f"{k}={v}" for k, v in record["index"].items())
            text = f"focuskit autofocus ({result.method}) at {where} failed: {result.message}"
            if self.on_failure == "abort" and not result.cancelled:
                raise AutofocusFailedError(f"{text}; the acquisition stops (on_failure='abort')")
            logger.warning("%s; keeping the correction %+.3f µm", text, correction)

    def get_frame_metadata(self, event: MDAEvent, *args: Any, **kwargs: Any) -> Any:
        """pymmcore-plus's frame metadata, plus the autofocus that placed this frame.

        Parameters
        ----------
        event : useq.MDAEvent
            The event that took the frame.
        *args, **kwargs
            As ``MDAEngine.get_frame_metadata``.

        Returns
        -------
        meta : dict
            ``FrameMetaV1``; ``meta["extra"]["focuskit_autofocus"]`` holds the last
            autofocus record of this position (absent before the first).
        """
        meta = super().get_frame_metadata(event, *args, **kwargs)
        record = self._last.get(event.index.get("p"))
        if record is not None:
            meta.setdefault("extra", {})[METADATA_KEY] = record
        return meta
