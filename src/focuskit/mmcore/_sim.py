"""A simulated microscope inside Micro-Manager's real core: focuskit's simulator as Python
devices of pymmcore-plus's ``UniMMCore``.

:class:`SimulatedCore` is a ``UniMMCore`` (the C++ core, with Python devices) holding

- ``Camera`` — renders focuskit's simulator of a preset's microscope at the defocus
  ``z − focus`` of the stage (OPTICS.md sign), with camera noise; dark when the shutter is
  closed;
- ``Z`` — the focus drive, with travel limits (its ``Position`` property's limits); it
  refuses a command outside them and records every command;
- ``XY`` — the XY stage: each position looks at its own field of the sample;
- ``Shutter`` (optional) and, for a microscope with a second illumination (the LED
  array of ``fcfnn-20x-led`` also does DPC), ``Illumination`` with a configuration group
  of the same name.

The hidden truth lives in :class:`MicroscopeSimulation` (``core.simulation``): the focus
at stage position ``(x, y)`` and time point ``t`` is
``focus_z_um + (tilt_x·x + tilt_y·y)/1000 + drift_um_per_timepoint · t``; ``t`` follows
the time index of the acquisition that is running (or is set by hand). It also keeps a
simulated clock — exposure time per image, latency and travel per move — and a log of
every exposure and stage command, for benchmarks and tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.mmcore._deps import quiet_discovery, require_pymmcore_plus
from focuskit.optics import DPC, Illumination, Preset, get_preset
from focuskit.scopes import (
    DEFAULT_EXPOSURE_TIME_S,
    DEFAULT_MOVE_OVERHEAD_S,
    DEFAULT_STAGE_SPEED_UM_S,
    SimulatedScope,
)

require_pymmcore_plus()

from pymmcore_plus import FocusDirection  # noqa: E402 - after the install hint
from pymmcore_plus.experimental.unicore import (  # noqa: E402
    GenericDevice,
    ShutterDevice,
    SimpleCameraDevice,
    StageDevice,
    UniMMCore,
    XYStageDevice,
)

# Speed of the simulated XY stage (µm/s) for the simulated clock.
XY_SPEED_UM_S = 10_000.0
# Coarser Abbe sampling of the DPC source than the simulator's default: the images of a
# 1024² camera stay near one second each (classic_af.py samples it the same way).
_DPC_SOURCE_STEP_NA = 0.06


@dataclass
class Exposure:
    """One image the simulated camera took.

    Attributes
    ----------
    z_um, x_um, y_um : float
        Stage position, in µm.
    timepoint : int
        The time point.
    focus_um : float
        Where focus was, in µm.
    illumination : str
        The illumination's name.
    lit : bool
        The shutter was open (False: a dark image).
    clock_s : float
        Simulated time when it was taken, in s.
    """

    z_um: float
    x_um: float
    y_um: float
    timepoint: int
    focus_um: float
    illumination: str
    lit: bool
    clock_s: float

    @property
    def defocus_um(self) -> float:
        """``z − focus``, in µm (OPTICS.md sign)."""
        return self.z_um - self.focus_um


def _illuminations(preset: Preset) -> dict[str, Illumination]:
    own = preset.optics.illumination
    out: dict[str, Illumination] = {own.kind.upper(): own}
    extra = preset.ground_truth_illumination
    if isinstance(extra, DPC):
        extra = DPC(extra.na_inner, extra.na_outer, extra.side, source_step_na=_DPC_SOURCE_STEP_NA)
    if extra is not None:
        out[extra.kind.upper()] = extra
    return out


def _nonnegative_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name} must be an integer ≥ 0 or None, got {value!r}")
    return int(value)


class MicroscopeSimulation:
    """The hidden truth and the state behind a :class:`SimulatedCore`.

    Parameters
    ----------
    preset : str or Preset, optional
        The microscope (default ``"fcfnn-20x-led"``).
    size : int, optional
        Camera side in pixels (default: the preset's model tile, else its image size; 1024
        for ``fcfnn-20x-led``).
    sample : str, optional
        Sample generator (default: the preset's); ``sample_options`` go to it.
    sample_options : dict, optional
        Parameters of the sample generator.
    focus_z_um : float, optional
        Focus at stage position (0, 0) and time point 0, in µm; None draws it from
        ``[z_min/2, z_max/2]`` of the preset's range with ``seed``.
    drift_um_per_timepoint : float, optional
        How far focus moves from one time point to the next, in µm.
    tilt_um_per_mm : (float, float), optional
        Slope of the focal surface along x and y, in µm per mm of stage travel.
    z_limits_um : (float, float), optional
        Travel of the focus drive, in µm (default: twice the preset's z range).
    photons : float, optional
        Mean photo-electrons per pixel in focus at the starting exposure time (scales with
        the exposure time).
    seed : int, optional
        Seeds the focus draw, the sample of each field and the camera noise.
    exposure_ms : float, optional
        Starting exposure time, in ms (default 50).
    move_overhead_s, stage_speed_um_s : float, optional
        Latency and speed of the focus drive (s, µm/s) for the simulated clock.
    cache_mb : float, optional
        Cache of noise-free renders per field and illumination, in MiB.

    Attributes
    ----------
    z_um : float
        Focus-drive position, in µm.
    xy_um : (float, float)
        XY-stage position, in µm.
    timepoint : int
        The current time point.
    shutter_open : bool
        Whether light reaches the sample (True when there is no shutter).
    illumination : str
        The current illumination's name (a key of :attr:`illuminations`).
    clock_s : float
        Simulated time, in s.
    exposures : list of Exposure
        Every image taken.
    z_commands : list of (float, bool)
        Every focus-drive command: ``(target_um, accepted)``.
    shutter_changes : int
        How many times the shutter opened or closed.

    Raises
    ------
    ConfigError
        If a setting is invalid.
    """

    def __init__(
        self,
        preset: str | Preset = "fcfnn-20x-led",
        *,
        size: int | None = None,
        sample: str | None = None,
        sample_options: dict[str, Any] | None = None,
        focus_z_um: float | None = None,
        drift_um_per_timepoint: float = 0.0,
        tilt_um_per_mm: tuple[float, float] = (0.0, 0.0),
        z_limits_um: tuple[float, float] | None = None,
        photons: float = 1000.0,
        seed: int = 0,
        exposure_ms: float = 1000.0 * DEFAULT_EXPOSURE_TIME_S,
        move_overhead_s: float = DEFAULT_MOVE_OVERHEAD_S,
        stage_speed_um_s: float = DEFAULT_STAGE_SPEED_UM_S,
        cache_mb: float = 32.0,
    ) -> None:
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(self.preset, Preset):
            raise ConfigError(f"preset must be a preset name or a Preset, got {preset!r}")
        p = self.preset
        self.sample = sample
        self.sample_options = dict(sample_options or {})
        self.size = int(size if size is not None else p.extras.get("tile", p.size))
        if self.size < 16:
            raise ConfigError(f"size must be at least 16 pixels, got {size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be an integer ≥ 0, got {seed!r}")
        self.seed = int(seed)
        if not (isinstance(photons, (int, float)) and math.isfinite(photons) and photons > 0):
            raise ConfigError(f"photons must be > 0, got {photons!r}")
        self.photons = float(photons)
        if focus_z_um is None:
            rng = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(1)[0])
            focus_z_um = float(rng.uniform(p.z_min_um / 2, p.z_max_um / 2))
        for name, value in (
            ("focus_z_um", focus_z_um),
            ("drift_um_per_timepoint", drift_um_per_timepoint),
            ("exposure_ms", exposure_ms),
            ("move_overhead_s", move_overhead_s),
            ("stage_speed_um_s", stage_speed_um_s),
        ):
            if not math.isfinite(float(value)):
                raise ConfigError(f"{name} must be finite, got {value!r}")
        if not exposure_ms > 0 or move_overhead_s < 0 or not stage_speed_um_s > 0:
            raise ConfigError(
                "exposure_ms and stage_speed_um_s must be > 0 and move_overhead_s ≥ 0"
            )
        self.focus_z_um = float(focus_z_um)
        self.drift_um_per_timepoint = float(drift_um_per_timepoint)
        try:
            tx, ty = (float(v) for v in tilt_um_per_mm)
        except (TypeError, ValueError):
            raise ConfigError(
                f"tilt_um_per_mm must be (x, y) in µm per mm, got {tilt_um_per_mm!r}"
            ) from None
        self.tilt_um_per_mm = (tx, ty)
        if z_limits_um is None:
            z_limits_um = (2.0 * p.z_min_um, 2.0 * p.z_max_um)
        lo, hi = (float(v) for v in z_limits_um)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ConfigError(f"z_limits_um must be finite with max > min, got {z_limits_um!r}")
        self.z_limits_um = (lo, hi)
        self.z_um = min(max(0.0, lo), hi)
        self.xy_um = (0.0, 0.0)
        self.timepoint = 0
        self.shutter_open = True
        self.illuminations = _illuminations(p)
        self.illumination = next(iter(self.illuminations))
        self.exposure_ms = float(exposure_ms)
        self._reference_exposure_ms = float(exposure_ms)
        self.move_overhead_s = float(move_overhead_s)
        self.stage_speed_um_s = float(stage_speed_um_s)
        self.clock_s = 0.0
        self.exposures: list[Exposure] = []
        self.z_commands: list[tuple[float, bool]] = []
        self.shutter_changes = 0
        self._cache_mb = float(cache_mb)
        # Defocus the renderers keep margin for: the drive's travel twice over.
        self._max_defocus_um = 2.0 * (hi - lo)
        self._fields: dict[tuple[int, int, str], SimulatedScope] = {}
        self._camera_fails_after: int | None = None
        self._stage_fails_after: int | None = None

    # Truth ---------------------------------------------------------------------------------
    def true_focus_um(
        self, x_um: float | None = None, y_um: float | None = None, timepoint: int | None = None
    ) -> float:
        """Where focus is (stage z, µm) at an XY position and time point (default: now).

        For benchmarks and tests only: an autofocus method must not call it.

        Parameters
        ----------
        x_um, y_um : float, optional
            XY-stage position, in µm (default: the current one).
        timepoint : int, optional
            Time point (default: the current one).

        Returns
        -------
        z_um : float
            ``focus_z_um + (tilt_x·x + tilt_y·y)/1000 + drift_um_per_timepoint · t``.
        """
        x = self.xy_um[0] if x_um is None else float(x_um)
        y = self.xy_um[1] if y_um is None else float(y_um)
        t = self.timepoint if timepoint is None else int(timepoint)
        tx, ty = self.tilt_um_per_mm
        return self.focus_z_um + (tx * x + ty * y) / 1000.0 + self.drift_um_per_timepoint * t

    def defocus_um(self) -> float:
        """``z − focus`` now, in µm. Benchmarks and tests only.

        Returns
        -------
        defocus_um : float
            The current defocus, in µm.
        """
        return self.z_um - self.true_focus_um()

    @property
    def commands_outside_limits(self) -> int:
        """How many focus-drive commands asked for a position outside the travel limits."""
        return sum(1 for _, accepted in self.z_commands if not accepted)

    # Faults -------------------------------------------------------------------------------
    def fail_camera_after(self, exposures: int | None) -> None:
        """Make the camera fail after ``exposures`` more images (None: never).

        Parameters
        ----------
        exposures : int or None
            Images that still work (≥ 0), or None to repair it.

        Raises
        ------
        ConfigError
            If the count is not an integer ≥ 0 or None.
        """
        self._camera_fails_after = _nonnegative_int("exposures", exposures)

    def fail_stage_after(self, moves: int | None) -> None:
        """Make the focus drive fail after ``moves`` more commands (None: never).

        Parameters
        ----------
        moves : int or None
            Commands that still work (≥ 0), or None to repair it.

        Raises
        ------
        ConfigError
            If the count is not an integer ≥ 0 or None.
        """
        self._stage_fails_after = _nonnegative_int("moves", moves)

    # Hardware -----------------------------------------------------------------------------
    def set_timepoint(self, timepoint: int) -> None:
        """Set the time point (what drift the focus has; the acquisition does it itself).

        Parameters
        ----------
        timepoint : int
            The time point, ≥ 0.
        """
        self.timepoint = int(timepoint)

    def command_z(self, z_um: float) -> None:
        """Move the focus drive (the ``Z`` device calls this).

        Parameters
        ----------
        z_um : float
            Target position, in µm.

        Raises
        ------
        ValueError
            If the target is outside the travel limits (recorded; nothing moves).
        RuntimeError
            If the drive was set to fail.
        """
        z = float(z_um)
        lo, hi = self.z_limits_um
        accepted = math.isfinite(z) and lo <= z <= hi
        self.z_commands.append((z, accepted))
        if not accepted:
            raise ValueError(
                f"simulated focus drive: z = {z} µm is outside its travel [{lo:g}, {hi:g}] µm"
            )
        if self._stage_fails_after is not None:
            if self._stage_fails_after == 0:
                raise RuntimeError(f"simulated focus drive failed moving to z = {z:g} µm")
            self._stage_fails_after -= 1
        self.clock_s += self.move_overhead_s + abs(z - self.z_um) / self.stage_speed_um_s
        self.z_um = z

    def command_xy(self, x_um: float, y_um: float) -> None:
        """Move the XY stage (the ``XY`` device calls this).

        Parameters
        ----------
        x_um, y_um : float
            Target position, in µm.
        """
        x, y = float(x_um), float(y_um)
        distance = math.hypot(x - self.xy_um[0], y - self.xy_um[1])
        self.clock_s += self.move_overhead_s + distance / XY_SPEED_UM_S
        self.xy_um = (x, y)

    def set_shutter(self, open_: bool) -> None:
        """Open or close the shutter (the ``Shutter`` device calls this).

        Parameters
        ----------
        open_ : bool
            True to let light through.
        """
        if bool(open_) != self.shutter_open:
            self.shutter_changes += 1
        self.shutter_open = bool(open_)

    def _field(self) -> SimulatedScope:
        """The renderer of the field under the objective, in the current illumination."""
        x, y = self.xy_um
        key = (round(x * 1000), round(y * 1000), self.illumination)
        scope = self._fields.get(key)
        if scope is None:
            # Each field has its own sample, drawn from the seed and the position (in nm).
            entropy = [self.seed, key[0] + 2**40, key[1] + 2**40]
            field_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
            same_field = next(
                (s for k, s in self._fields.items() if k[:2] == key[:2]), None
            )  # the same sample under another illumination
            d = self._max_defocus_um
            scope = SimulatedScope(
                self.preset,
                sample=self.sample if same_field is None else same_field.sample,
                sample_options=self.sample_options if same_field is None else None,
                size=self.size,
                focus_z_um=0.0,
                z_limits_um=(-d, d),
                photons=self.photons,
                seed=field_seed,
                illumination=self.illuminations[self.illumination],
                cache_mb=self._cache_mb,
            )
            self._fields[key] = scope
        return scope

    def expose(self) -> np.ndarray:
        """One camera image of the current field at the current defocus (the camera calls it).

        Returns
        -------
        image : (size, size) ndarray of uint16
            Camera counts; a dark frame (offset and read noise) when the shutter is closed.

        Raises
        ------
        RuntimeError
            If the camera was set to fail, or focus is farther from the stage than the
            simulation renders.
        """
        if self._camera_fails_after is not None:
            if self._camera_fails_after == 0:
                raise RuntimeError(
                    f"simulated camera failed (exposure {len(self.exposures) + 1}, "
                    f"z = {self.z_um:g} µm)"
                )
            self._camera_fails_after -= 1
        focus = self.true_focus_um()
        defocus = self.z_um - focus
        x, y = self.xy_um
        self.exposures.append(
            Exposure(
                self.z_um,
                x,
                y,
                self.timepoint,
                focus,
                self.illumination,
                self.shutter_open,
                self.clock_s,
            )
        )
        self.clock_s += self.exposure_ms / 1000.0
        camera = self.preset.optics.camera
        if not self.shutter_open:
            rng = np.random.default_rng([self.seed, 0xDA2C, len(self.exposures)])
            dark = camera.offset_adu + camera.gain_adu_per_e * rng.normal(
                0.0, camera.read_noise_e, (self.size, self.size)
            )
            return np.clip(np.round(dark), 0, 2**camera.bit_depth - 1).astype(np.uint16)
        if abs(defocus) > self._max_defocus_um:
            raise RuntimeError(
                f"simulated camera: focus is {defocus:+.1f} µm from the stage, beyond the "
                f"±{self._max_defocus_um:g} µm the simulation renders (has it drifted away?)"
            )
        field = self._field()
        field.photons = self.photons * self.exposure_ms / self._reference_exposure_ms
        field.move_to(defocus)
        return np.asarray(field.snap(), dtype=np.uint16)


class SimCamera(SimpleCameraDevice):
    """The simulated camera: focuskit's simulator at the stage's defocus (uint16)."""

    def __init__(self, simulation: MicroscopeSimulation) -> None:
        super().__init__()
        self._sim = simulation

    def sensor_shape(self) -> tuple[int, int]:
        return (self._sim.size, self._sim.size)

    def dtype(self) -> Any:
        return np.uint16

    def get_exposure(self) -> float:
        return self._sim.exposure_ms

    def get_camera_name(self) -> str:
        return f"focuskit {self._sim.preset.name}"

    def set_exposure(self, exposure: float) -> None:
        if not (math.isfinite(exposure) and exposure > 0):
            raise ValueError(f"exposure must be > 0 ms, got {exposure}")
        self._sim.exposure_ms = float(exposure)

    def snap(self, buffer: np.ndarray) -> Mapping[str, Any]:
        buffer[:] = self._sim.expose()
        return {}


class SimFocusStage(StageDevice):
    """The simulated focus drive, with travel limits (``Position`` property limits)."""

    def __init__(self, simulation: MicroscopeSimulation) -> None:
        super().__init__()
        self._sim = simulation
        self.register_property(
            "Position",
            getter=lambda dev: dev.get_position_um(),
            setter=lambda dev, value: dev.set_position_um(value),
            limits=simulation.z_limits_um,
            property_type=float,
        )

    def set_position_um(self, val: float) -> None:
        self._sim.command_z(val)

    # A configuration file saved from this core records the focus direction; keep it.
    _direction = FocusDirection.Unknown

    def get_focus_direction(self) -> FocusDirection:
        return self._direction

    def set_focus_direction(self, sign: int) -> None:
        self._direction = FocusDirection(int(sign))

    def get_position_um(self) -> float:
        return self._sim.z_um

    def home(self) -> None:
        raise NotImplementedError("the simulated focus drive has no home switch")

    def stop(self) -> None:
        pass  # moves are instantaneous

    def set_origin(self) -> None:
        raise NotImplementedError("the simulated focus drive keeps absolute coordinates")


class SimXYStage(XYStageDevice):
    """The simulated XY stage: every position has its own field of the sample."""

    def __init__(self, simulation: MicroscopeSimulation) -> None:
        super().__init__()
        self._sim = simulation

    def set_position_um(self, x: float, y: float) -> None:
        self._sim.command_xy(x, y)

    def get_position_um(self) -> tuple[float, float]:
        return self._sim.xy_um

    def set_origin_x(self) -> None:
        raise NotImplementedError("the simulated XY stage keeps absolute coordinates")

    def set_origin_y(self) -> None:
        raise NotImplementedError("the simulated XY stage keeps absolute coordinates")

    def home(self) -> None:
        raise NotImplementedError("the simulated XY stage has no home switch")

    def stop(self) -> None:
        pass


class SimShutter(ShutterDevice):
    """The simulated shutter: closed, the camera sees a dark frame."""

    def __init__(self, simulation: MicroscopeSimulation) -> None:
        super().__init__()
        self._sim = simulation

    def get_open(self) -> bool:
        return self._sim.shutter_open

    def set_open(self, open: bool) -> None:
        self._sim.set_shutter(open)


class SimIllumination(GenericDevice):
    """The simulated light source: which illumination pattern is on (``Pattern``)."""

    def __init__(self, simulation: MicroscopeSimulation) -> None:
        super().__init__()
        self._sim = simulation
        self.register_property(
            "Pattern",
            getter=lambda dev: dev._sim.illumination,
            setter=lambda dev, value: dev._set(value),
            allowed_values=tuple(simulation.illuminations),
            property_type=str,
        )

    def _set(self, value: str) -> None:
        if value not in self._sim.illuminations:
            raise ValueError(f"unknown illumination {value!r}")
        self._sim.illumination = value


class SimulatedCore(UniMMCore):
    """Micro-Manager's core with a simulated microscope as Python devices.

    A real ``CMMCorePlus`` (through ``UniMMCore``): everything pymmcore-plus does — MDA
    acquisitions, configuration groups, events — runs on it. Devices: ``Camera``, ``Z``
    (focus, with limits), ``XY``, ``Shutter`` (unless ``shutter=False``) and, when the
    preset has a second illumination, ``Illumination`` with a configuration group
    ``"Illumination"`` (presets named after :attr:`MicroscopeSimulation.illuminations`).
    The pixel-size configuration is named after the preset (which gives
    :class:`~focuskit.mmcore.MMCoreScope` the optics). The simulation's time point
    follows the ``t`` index of each acquisition event.

    Parameters
    ----------
    preset : str or Preset, optional
        The microscope (default ``"fcfnn-20x-led"``).
    shutter : bool, optional
        Load a shutter device (default True).
    **options
        What :class:`MicroscopeSimulation` takes (``size``, ``focus_z_um``,
        ``drift_um_per_timepoint``, ``tilt_um_per_mm``, ``z_limits_um``, ``photons``,
        ``seed``, ``sample``, ``sample_options`` …; lengths in µm).

    Attributes
    ----------
    simulation : MicroscopeSimulation
        The hidden truth (focus, drift), the logs and the simulated clock.

    Raises
    ------
    ConfigError
        If an option is invalid.
    """

    def __init__(
        self, preset: str | Preset = "fcfnn-20x-led", *, shutter: bool = True, **options: Any
    ) -> None:
        simulation = MicroscopeSimulation(preset, **options)
        # Only Python devices: no Micro-Manager installation is needed, so its absence is
        # not worth the ERROR pymmcore-plus logs while it looks for one.
        with quiet_discovery():
            super().__init__()
        self.simulation = simulation
        self.loadPyDevice("Camera", SimCamera(simulation))
        self.loadPyDevice("Z", SimFocusStage(simulation))
        self.loadPyDevice("XY", SimXYStage(simulation))
        if shutter:
            self.loadPyDevice("Shutter", SimShutter(simulation))
        many = len(simulation.illuminations) > 1
        if many:
            self.loadPyDevice("Illumination", SimIllumination(simulation))
        self.initializeAllDevices()
        self.setCameraDevice("Camera")
        self.setFocusDevice("Z")
        self.setXYStageDevice("XY")
        if shutter:
            self.setShutterDevice("Shutter")
            simulation.shutter_open = False
            self.setAutoShutter(True)
        if many:
            for name in simulation.illuminations:
                self.defineConfig("Illumination", name, "Illumination", "Pattern", name)
            self.setConfig("Illumination", simulation.illumination)
        name = simulation.preset.name
        self.definePixelSizeConfig(name)
        self.setPixelSizeUm(name, simulation.preset.optics.pixel_size_um)
        self.setPixelSizeConfig(name)
        self.setExposure(simulation.exposure_ms)
        self.mda.events.eventStarted.connect(self._follow_time)

    def _follow_time(self, event: Any) -> None:
        t = event.index.get("t")
        if t is not None:
            self.simulation.set_timepoint(int(t))

    def snapImage(self) -> None:
        """Snap one image; with auto-shutter on, the shutter is open only during it.

        ``UniMMCore`` does not yet drive a Python shutter around ``snapImage``; a real core
        drives its shutter device so, and the simulated camera images darkness otherwise.
        """
        shutter = self.getShutterDevice()
        auto = bool(shutter) and self.getAutoShutter() and not self.getShutterOpen()
        if auto:
            self.setShutterOpen(True)
        try:
            super().snapImage()
        finally:
            if auto:
                self.setShutterOpen(False)

    def __repr__(self) -> str:
        sim = self.simulation
        return (
            f"SimulatedCore({sim.preset.name!r}, size={sim.size}, z_um={sim.z_um:g}, "
            f"z_limits_um={sim.z_limits_um}, timepoint={sim.timepoint})"
        )
