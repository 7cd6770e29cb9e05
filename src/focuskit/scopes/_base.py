"""The Microscope protocol and the base class that keeps the stage safe and counts.

Every scope exposes the focus drive (``z_um``, ``move_to``), the camera (``snap``) and
counters an autofocus benchmark reports: exposures, moves, travel and simulated wall
time. ``BaseScope`` implements the limits, the counters and the timing model once, so
a concrete scope only says how an image at z is formed (``_image_at``).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Optics
from focuskit.scopes._errors import StageLimitError

# Default timing model (seconds): a typical sCMOS exposure, the command latency of a
# motorized focus drive, and its travel speed.
DEFAULT_EXPOSURE_TIME_S = 0.05
DEFAULT_MOVE_OVERHEAD_S = 0.02
DEFAULT_STAGE_SPEED_UM_S = 1000.0

# Slack for float round-off when comparing a target with the limits / max step (µm).
_TOL_UM = 1e-9


@runtime_checkable
class Microscope(Protocol):
    """What autofocus needs from a microscope: a focus drive, a camera and counters.

    ``z_um`` is the focus-drive position (µm). ``move_to`` raises
    :class:`StageLimitError` before anything moves when the target is not finite, is
    outside ``z_limits_um`` or is farther than ``max_step_um`` (None: no step limit).
    ``snap`` returns one 2-D image at the current z and counts one exposure.
    ``elapsed_s`` is simulated wall time:
    ``exposures·exposure_time_s + moves·move_overhead_s + travel_um/stage_speed_um_s``.

    Attributes
    ----------
    z_um : float
        Current focus-drive position, in µm.
    z_limits_um : tuple of float
        (min, max) z the drive may go to, in µm.
    max_step_um : float or None
        Largest single move, in µm; None for no limit.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    optics : Optics or None
        The microscope's optics, when known.
    exposures : int
        Images taken since the last reset.
    moves : int
        Accepted moves since the last reset.
    travel_um : float
        Focus-drive travel Σ|Δz| since the last reset, in µm.
    elapsed_s : float
        Simulated wall time since the last reset, in s.
    """

    @property
    def z_um(self) -> float: ...

    @property
    def z_limits_um(self) -> tuple[float, float]: ...

    @property
    def max_step_um(self) -> float | None: ...

    @property
    def pixel_size_um(self) -> float: ...

    @property
    def optics(self) -> Optics | None: ...

    @property
    def exposures(self) -> int: ...

    @property
    def moves(self) -> int: ...

    @property
    def travel_um(self) -> float: ...

    @property
    def elapsed_s(self) -> float: ...

    def move_to(self, z_um: float) -> None: ...

    def snap(self) -> np.ndarray: ...

    def reset_counters(self) -> None: ...


def _finite(name: str, value: object, *, positive: bool = False, allow_zero: bool = True) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (positive and (v < 0 or (v == 0 and not allow_zero))):
        need = "finite"
        if positive:
            need = "finite and >= 0" if allow_zero else "finite and > 0"
        raise ConfigError(f"{name} must be {need}, got {value!r}")
    return v


class BaseScope:
    """Stage limits, step limit, counters and the timing model of every scope.

    Subclasses implement ``_image_at(z_um) -> ndarray`` and call ``super().__init__``.
    Counters: ``exposures`` (snaps), ``moves`` (accepted ``move_to`` calls, a zero-length
    move included: the command still costs its overhead), ``travel_um`` (Σ|Δz|);
    ``elapsed_s`` follows from them. ``reset_counters`` zeroes them; ``clock_s`` (the
    simulated time since the scope was made) keeps running across resets.

    Parameters
    ----------
    z_limits_um : tuple of float
        (min, max) stage travel, in µm.
    start_z_um : float
        Stage position at start, in µm, within the limits.
    pixel_size_um : float
        Pixel size at the sample, in µm (> 0).
    optics : Optics, optional
        The microscope's optics, when known.
    max_step_um : float, optional
        Largest single move, in µm (> 0); None (default) for no limit.
    exposure_time_s : float, optional
        Time per exposure, in s (default 0.05).
    move_overhead_s : float, optional
        Command latency per move, in s (default 0.02).
    stage_speed_um_s : float, optional
        Travel speed of the focus drive, in µm/s (default 1000).
    stage_resolution_um : float, optional
        Step of the focus drive, in µm; targets snap to it (None: continuous).

    Raises
    ------
    ConfigError
        If a value is not finite, out of range, or the start lies outside the limits.
    """

    def __init__(
        self,
        *,
        z_limits_um: tuple[float, float],
        start_z_um: float,
        pixel_size_um: float,
        optics: Optics | None = None,
        max_step_um: float | None = None,
        exposure_time_s: float = DEFAULT_EXPOSURE_TIME_S,
        move_overhead_s: float = DEFAULT_MOVE_OVERHEAD_S,
        stage_speed_um_s: float = DEFAULT_STAGE_SPEED_UM_S,
        stage_resolution_um: float | None = None,
    ) -> None:
        try:
            lo, hi = z_limits_um
        except (TypeError, ValueError):
            raise ConfigError(
                f"z_limits_um must be (min, max) in µm, got {z_limits_um!r}"
            ) from None
        lo, hi = _finite("z_limits_um[0]", lo), _finite("z_limits_um[1]", hi)
        if hi < lo:
            raise ConfigError(f"z_limits_um ({lo}, {hi}) has max < min; give (min, max)")
        self._limits = (lo, hi)
        if max_step_um is not None:
            max_step_um = _finite("max_step_um", max_step_um, positive=True, allow_zero=False)
        self._max_step = max_step_um
        self._pixel_size = _finite("pixel_size_um", pixel_size_um, positive=True, allow_zero=False)
        if optics is not None and not isinstance(optics, Optics):
            raise ConfigError(
                f"optics must be a focuskit.optics.Optics or None, got {type(optics).__name__}"
            )
        self._optics = optics
        self.exposure_time_s = _finite("exposure_time_s", exposure_time_s, positive=True)
        self.move_overhead_s = _finite("move_overhead_s", move_overhead_s, positive=True)
        self.stage_speed_um_s = _finite(
            "stage_speed_um_s", stage_speed_um_s, positive=True, allow_zero=False
        )
        if stage_resolution_um is not None:
            stage_resolution_um = _finite(
                "stage_resolution_um", stage_resolution_um, positive=True, allow_zero=False
            )
        # A real focus drive has a finite step (often 0.05–0.1 µm); targets snap to it.
        self.stage_resolution_um = stage_resolution_um
        z0 = _finite("start_z_um", start_z_um)
        if not lo - _TOL_UM <= z0 <= hi + _TOL_UM:
            raise ConfigError(f"start_z_um {z0} µm is outside the z limits [{lo}, {hi}] µm")
        self._z = min(max(z0, lo), hi)
        self._exposures = 0
        self._moves = 0
        self._travel = 0.0
        self._clock_before_reset_s = 0.0
        self._total_exposures = 0  # never reset: seeds fresh camera noise per exposure

    # Stage ------------------------------------------------------------------------------
    @property
    def z_um(self) -> float:
        """Current focus-drive position (µm)."""
        return self._z

    @property
    def z_limits_um(self) -> tuple[float, float]:
        """Lowest and highest z the focus drive may go to (µm)."""
        return self._limits

    @property
    def max_step_um(self) -> float | None:
        """Largest single move allowed (µm); None for no limit."""
        return self._max_step

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample (µm)."""
        return self._pixel_size

    @property
    def optics(self) -> Optics | None:
        """The microscope's optics, when known."""
        return self._optics

    def check_move(self, z_um: float) -> float:
        """The target as a float if ``move_to(z_um)`` would be accepted; else StageLimitError.

        Parameters
        ----------
        z_um : float
            Target focus-drive position, in µm.

        Returns
        -------
        z : float
            The position the drive would go to, in µm (snapped to ``stage_resolution_um`` and
            clipped to the limits).

        Raises
        ------
        StageLimitError
            If the target is not a finite number, lies outside the limits, or is farther than
            ``max_step_um``.
        """
        try:
            z = float(z_um)
        except (TypeError, ValueError):
            raise StageLimitError(
                f"focus target must be a number (µm), got {z_um!r}; "
                f"the stage stays at z={self._z:g} µm",
                target_z_um=z_um,
                z_um=self._z,
            ) from None
        lo, hi = self._limits
        if not math.isfinite(z):
            raise StageLimitError(
                f"focus target {z} is not finite; the stage stays at z={self._z:g} µm",
                target_z_um=z,
                z_um=self._z,
            )
        if not lo - _TOL_UM <= z <= hi + _TOL_UM:
            raise StageLimitError(
                f"focus target z={z:g} µm is outside the stage limits [{lo:g}, {hi:g}] µm; "
                f"the stage stays at z={self._z:g} µm",
                target_z_um=z,
                z_um=self._z,
            )
        step = abs(z - self._z)
        if self._max_step is not None and step > self._max_step + _TOL_UM:
            raise StageLimitError(
                f"move of {step:g} µm to z={z:g} µm exceeds the largest step allowed "
                f"({self._max_step:g} µm); move in smaller steps "
                f"(the stage stays at z={self._z:g} µm)",
                target_z_um=z,
                z_um=self._z,
            )
        if self.stage_resolution_um is not None:
            q = self.stage_resolution_um
            z = round(z / q) * q
            if z < lo - _TOL_UM:
                z += q
            elif z > hi + _TOL_UM:
                z -= q
            if self._max_step is not None and abs(z - self._z) > self._max_step + _TOL_UM:
                # Rounding pushed the move past the step limit: round toward the stage instead.
                z -= math.copysign(q, z - self._z)
        return min(max(z, lo), hi)

    def move_to(self, z_um: float) -> None:
        """Move the focus drive to ``z_um`` (µm); refused moves raise StageLimitError.

        Counts one move and its travel.

        Parameters
        ----------
        z_um : float
            Target focus-drive position, in µm.

        Raises
        ------
        StageLimitError
            If the move is refused (see :meth:`check_move`); the stage stays where it was.
        """
        z = self.check_move(z_um)
        self._travel += abs(z - self._z)
        self._moves += 1
        self._z = z

    # Camera -----------------------------------------------------------------------------
    def snap(self) -> np.ndarray:
        """One 2-D image at the current z (counts one exposure).

        Returns
        -------
        image : (Y, X) ndarray
            The camera image.
        """
        image = self._image_at(self._z)
        self._exposures += 1
        self._total_exposures += 1
        return image

    def _image_at(self, z_um: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # Counters ---------------------------------------------------------------------------
    @property
    def exposures(self) -> int:
        """Images taken since the last reset."""
        return self._exposures

    @property
    def moves(self) -> int:
        """Accepted moves since the last reset."""
        return self._moves

    @property
    def travel_um(self) -> float:
        """Total focus-drive travel Σ|Δz| since the last reset (µm)."""
        return self._travel

    @property
    def elapsed_s(self) -> float:
        """Simulated wall time since the last reset (s).

        ``exposures·exposure_time_s + moves·move_overhead_s + travel_um/stage_speed_um_s``.
        """
        return (
            self._exposures * self.exposure_time_s
            + self._moves * self.move_overhead_s
            + self._travel / self.stage_speed_um_s
        )

    @property
    def clock_s(self) -> float:
        """Simulated time since the scope was made (s); not zeroed by ``reset_counters``."""
        return self._clock_before_reset_s + self.elapsed_s

    def reset_counters(self) -> None:
        """Zero exposures, moves, travel and elapsed time (``clock_s`` keeps running)."""
        self._clock_before_reset_s += self.elapsed_s
        self._exposures = 0
        self._moves = 0
        self._travel = 0.0

    def counters(self) -> dict[str, float]:
        """The counters as a JSON-able dict (for benchmark reports).

        Returns
        -------
        counters : dict
            ``exposures``, ``moves``, ``travel_um`` (µm) and ``elapsed_s`` (s).
        """
        return {
            "exposures": self._exposures,
            "moves": self._moves,
            "travel_um": self._travel,
            "elapsed_s": self.elapsed_s,
        }

    def __repr__(self) -> str:
        lo, hi = self._limits
        return (
            f"{type(self).__name__}(z_um={self._z:g}, z_limits_um=({lo:g}, {hi:g}), "
            f"max_step_um={self._max_step}, exposures={self._exposures}, moves={self._moves})"
        )
