"""``MMCoreScope``: focuskit's :class:`~focuskit.scopes.Microscope` over a Micro-Manager core.

The camera is the core's camera (``snapImage``/``getImage``), the focus drive one of its
stage devices (``setPosition``/``getPosition``), the pixel size the core's pixel-size
calibration. Every move is checked before it is sent: a target outside the stage limits,
or farther than the largest step allowed, is refused with :class:`StageLimitError` and
nothing moves (the searches then move in allowed steps; if the camera or the stage fails
they return the stage to the start, as on every focuskit scope).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import OPTICS_TOLERANCE, PRESETS, Optics, get_preset
from focuskit.scopes import (
    DEFAULT_MOVE_OVERHEAD_S,
    DEFAULT_STAGE_SPEED_UM_S,
    BaseScope,
    ScopeError,
    StageLimitError,
)

# Micro-Manager's device type of a single-axis stage (MM::StageDevice).
_STAGE_DEVICE = 5


class AutofocusCancelledError(ScopeError):
    """An autofocus run was cancelled (``should_cancel()`` returned True) before an exposure."""


def _core_call(what: str, func: Callable[..., Any], *args: Any) -> Any:
    try:
        return func(*args)
    except Exception as exc:
        raise ConfigError(f"Micro-Manager core: {what} failed ({exc})") from exc


def device_limits_um(core: Any, focus_device: str) -> tuple[float, float] | None:
    """The travel limits a stage device reports, from its ``Position`` property, or None.

    Parameters
    ----------
    core : CMMCorePlus
        The Micro-Manager core.
    focus_device : str
        Label of the stage device.

    Returns
    -------
    limits : (float, float) or None
        ``(min, max)`` in µm, or None when the device reports no limits.
    """
    try:
        if core.hasProperty(focus_device, "Position") and core.hasPropertyLimits(
            focus_device, "Position"
        ):
            lo = float(core.getPropertyLowerLimit(focus_device, "Position"))
            hi = float(core.getPropertyUpperLimit(focus_device, "Position"))
            if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                return lo, hi
    except Exception:
        return None
    return None


def _choose_limits(
    focus_device: str, given: Any, from_device: tuple[float, float] | None
) -> tuple[float, float]:
    if given is None:
        if from_device is None:
            raise ConfigError(
                f"the focus stage {focus_device!r} reports no travel limits; give them, e.g. "
                "limits_um=(-100, 100) (µm) — focuskit never moves a stage without limits"
            )
        return from_device
    try:
        lo, hi = (float(v) for v in given)
    except (TypeError, ValueError):
        raise ConfigError(f"limits_um must be (min, max) in µm, got {given!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ConfigError(f"limits_um must be finite with max > min (µm), got {given!r}")
    if from_device is not None:
        dlo, dhi = from_device
        if lo < dlo or hi > dhi:
            raise ConfigError(
                f"limits_um ({lo:g}, {hi:g}) reach beyond the travel the stage {focus_device!r} "
                f"reports ({dlo:g}, {dhi:g}) µm; give limits inside it"
            )
    return lo, hi


def _resolve_optics(core: Any, optics: Optics | str | None, pixel_size_um: float) -> Optics | None:
    source = "optics="
    if isinstance(optics, str):
        source = f"preset {optics!r}"
        optics = get_preset(optics).optics
    elif optics is None:
        name = str(_core_call("getCurrentPixelSizeConfig", core.getCurrentPixelSizeConfig))
        if name not in PRESETS:
            return None
        optics = PRESETS[name].optics
        source = f"the pixel-size configuration {name!r} (a focuskit preset)"
    elif not isinstance(optics, Optics):
        raise ConfigError(
            f"optics must be a focuskit Optics, a preset name or None, got {type(optics).__name__}"
        )
    if not math.isclose(optics.pixel_size_um, pixel_size_um, rel_tol=OPTICS_TOLERANCE):
        raise ConfigError(
            f"the optics from {source} have {optics.pixel_size_um:g} µm pixels but the core's "
            f"pixel size is {pixel_size_um:g} µm; pass optics= for this objective (or "
            "optics=None)"
        )
    return optics


class MMCoreScope(BaseScope):
    """A Micro-Manager core as a focuskit :class:`~focuskit.scopes.Microscope`.

    Snaps with the core's camera, moves one of its stage devices, reads the pixel size from
    its pixel-size calibration. The stage limits come from ``limits_um`` or, when not given,
    from the device's ``Position`` property limits; a stage with neither is refused. Targets
    outside the limits or farther than ``max_step_um`` raise :class:`StageLimitError` before
    anything moves. The position is read back after every move (the trace records where
    the stage really is). ``elapsed_s`` counts the camera's exposure time per image and the
    timing model of :class:`~focuskit.scopes.BaseScope` per move.

    Parameters
    ----------
    core : CMMCorePlus
        A Micro-Manager core with a camera and a focus stage loaded (``UniMMCore`` too).
    focus_device : str, optional
        Label of the stage to focus with (default: the core's focus device).
    limits_um : (float, float), optional
        ``(min, max)`` stage positions allowed, in µm (default: the device's own).
    max_step_um : float, optional
        Largest single move, in µm (None: no limit; the searches move in allowed steps).
    optics : Optics or str, optional
        The microscope's optics or a preset name; default: the preset named like the core's
        current pixel-size configuration, if any (else unknown: methods that need optics
        say so).
    pixel_size_um : float, optional
        Pixel size at the sample, in µm (default: ``core.getPixelSizeUm()``).
    stage_resolution_um : float, optional
        Step of the focus drive, in µm; targets snap to it (None: continuous).
    move_overhead_s, stage_speed_um_s : float, optional
        Timing model of a move (s, µm/s) for ``elapsed_s``.
    should_cancel : callable, optional
        Called before every exposure; True raises :class:`AutofocusCancelledError`.

    Raises
    ------
    ConfigError
        No camera or focus stage, a focus device that is not a stage, no limits, the stage
        outside its limits, no pixel size, or optics that do not match the pixel size.
    """

    def __init__(
        self,
        core: Any,
        focus_device: str | None = None,
        limits_um: tuple[float, float] | None = None,
        max_step_um: float | None = None,
        *,
        optics: Optics | str | None = None,
        pixel_size_um: float | None = None,
        stage_resolution_um: float | None = None,
        move_overhead_s: float = DEFAULT_MOVE_OVERHEAD_S,
        stage_speed_um_s: float = DEFAULT_STAGE_SPEED_UM_S,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        for method in ("snapImage", "getImage", "getPosition", "setPosition", "getFocusDevice"):
            if not callable(getattr(core, method, None)):
                raise ConfigError(
                    f"core must be a Micro-Manager core (pymmcore_plus.CMMCorePlus), got "
                    f"{type(core).__name__}"
                )
        self.core = core
        label = str(focus_device or _core_call("getFocusDevice", core.getFocusDevice) or "")
        if not label:
            raise ConfigError(
                "the core has no focus device; pass focus_device='Z' (a stage label) or call "
                "core.setFocusDevice(...)"
            )
        loaded = tuple(_core_call("getLoadedDevices", core.getLoadedDevices))
        if label not in loaded:
            raise ConfigError(
                f"focus device {label!r} is not loaded in the core (loaded: {', '.join(loaded)})"
            )
        if int(_core_call("getDeviceType", core.getDeviceType, label)) != _STAGE_DEVICE:
            raise ConfigError(f"focus device {label!r} is not a single-axis (Z) stage")
        self.focus_device = label
        self.camera_device = str(_core_call("getCameraDevice", core.getCameraDevice) or "")
        if not self.camera_device:
            raise ConfigError("the core has no camera; load one and call core.setCameraDevice(...)")
        limits = _choose_limits(label, limits_um, device_limits_um(core, label))
        z0 = float(_core_call(f"reading the position of {label!r}", core.getPosition, label))
        if not limits[0] <= z0 <= limits[1]:
            raise ConfigError(
                f"the focus stage {label!r} is at z = {z0:g} µm, outside the limits "
                f"[{limits[0]:g}, {limits[1]:g}] µm; move it inside them first"
            )
        if pixel_size_um is None:
            pixel_size_um = float(_core_call("getPixelSizeUm", core.getPixelSizeUm))
            if not pixel_size_um > 0:
                raise ConfigError(
                    "the core has no pixel size (no active pixel-size configuration); define "
                    "one in Micro-Manager or pass pixel_size_um= (µm at the sample)"
                )
        resolved = _resolve_optics(core, optics, float(pixel_size_um))
        super().__init__(
            z_limits_um=limits,
            start_z_um=z0,
            pixel_size_um=float(pixel_size_um),
            optics=resolved,
            max_step_um=max_step_um,
            exposure_time_s=self._exposure_s(),
            move_overhead_s=move_overhead_s,
            stage_speed_um_s=stage_speed_um_s,
            stage_resolution_um=stage_resolution_um,
        )
        self.should_cancel = should_cancel

    def _exposure_s(self) -> float:
        exposure_ms = float(_core_call("getExposure", self.core.getExposure))
        return exposure_ms / 1000.0 if math.isfinite(exposure_ms) and exposure_ms >= 0 else 0.0

    def refresh(self) -> float:
        """Re-read the stage position and the exposure time from the core.

        Call it when something else may have moved the stage since the last move made
        through this scope (e.g. between acquisitions).

        Returns
        -------
        z_um : float
            The stage position, in µm.

        Raises
        ------
        ConfigError
            If the stage is now outside the limits (nothing is moved).
        ScopeError
            If the position cannot be read.
        """
        try:
            z = float(self.core.getPosition(self.focus_device))
        except Exception as exc:
            raise ScopeError(f"cannot read the position of {self.focus_device!r}: {exc}") from exc
        lo, hi = self.z_limits_um
        if not lo <= z <= hi:
            raise ConfigError(
                f"the focus stage {self.focus_device!r} is at z = {z:g} µm, outside the limits "
                f"[{lo:g}, {hi:g}] µm; move it inside them first"
            )
        self._z = z
        self.exposure_time_s = self._exposure_s()
        return z

    def check_within_limits(self, z_um: float) -> float:
        """``z_um`` as a float if it lies within the stage limits; else StageLimitError.

        Unlike :meth:`check_move`, the step from the current position is not checked (for
        moves the hardware makes on its own, such as a triggered z sequence).

        Parameters
        ----------
        z_um : float
            A stage position, in µm.

        Returns
        -------
        z : float
            The position, in µm.

        Raises
        ------
        StageLimitError
            If it is not finite or lies outside the limits.
        """
        z = float(z_um)
        lo, hi = self.z_limits_um
        if not (math.isfinite(z) and lo <= z <= hi):
            raise StageLimitError(
                f"focus target z = {z:g} µm is outside the stage limits [{lo:g}, {hi:g}] µm; "
                f"nothing was moved (the stage stays at z = {self._z:g} µm)",
                target_z_um=z,
                z_um=self._z,
            )
        return z

    def move_to(self, z_um: float) -> None:
        """Move the focus stage to ``z_um`` (µm) after checking the limits and the step.

        The core is told to move, waits for the device, and the position is read back.

        Parameters
        ----------
        z_um : float
            Target position, in µm.

        Raises
        ------
        StageLimitError
            If the target is not finite, outside the limits or farther than ``max_step_um``
            (nothing is sent to the stage).
        ScopeError
            If the stage fails (the message says where it is, if that can be read).
        """
        target = self.check_move(z_um)
        try:
            self.core.setPosition(self.focus_device, target)
            self.core.waitForDevice(self.focus_device)
            z = float(self.core.getPosition(self.focus_device))
        except Exception as exc:
            where = "unknown"
            with contextlib.suppress(Exception):
                where = f"{float(self.core.getPosition(self.focus_device)):g} µm"
            raise ScopeError(
                f"focus stage {self.focus_device!r} failed moving to z = {target:g} µm ({exc}); "
                f"it is at z = {where}"
            ) from exc
        self._travel += abs(z - self._z)
        self._moves += 1
        self._z = z

    def snap(self) -> np.ndarray:
        """One image from the core's camera at the current z (counts one exposure).

        Returns
        -------
        image : (Y, X) ndarray
            The camera image, as the core returns it (e.g. uint16).

        Raises
        ------
        AutofocusCancelledError
            If ``should_cancel()`` is true (no exposure is taken).
        ScopeError
            If the camera fails or returns something other than one 2-D image.
        """
        if self.should_cancel is not None and self.should_cancel():
            raise AutofocusCancelledError(
                f"cancelled after {self.exposures} image(s) (at z = {self._z:g} µm)"
            )
        try:
            self.core.snapImage()
            image = np.asarray(self.core.getImage())
        except Exception as exc:
            raise ScopeError(
                f"camera {self.camera_device!r} failed at z = {self._z:g} µm ({exc})"
            ) from exc
        if image.ndim != 2 or image.size == 0:
            raise ScopeError(
                f"camera {self.camera_device!r} returned an image of shape {image.shape}; "
                "focuskit needs one 2-D (grayscale) image per exposure"
            )
        self._exposures += 1
        self._total_exposures += 1
        return image

    def __repr__(self) -> str:
        lo, hi = self.z_limits_um
        return (
            f"MMCoreScope(focus_device={self.focus_device!r}, camera={self.camera_device!r}, "
            f"z_um={self._z:g}, z_limits_um=({lo:g}, {hi:g}), max_step_um={self.max_step_um}, "
            f"pixel_size_um={self.pixel_size_um:g}, exposures={self.exposures})"
        )
