"""focuskit on Micro-Manager's real core: pymmcore-plus's UniMMCore with focuskit's simulator
as Python devices (no mocks). One-off autofocus per method, an MDA time-lapse with drift and
several positions, the stage limits through the core, failures and cancellation."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pymmcore_plus")
import itertools

import useq
from pymmcore_plus import CMMCorePlus
from pymmcore_plus.experimental.unicore import (
    SimpleCameraDevice,
    StageDevice,
    UniMMCore,
)
from pymmcore_plus.mda import MDAEngine

from focuskit import ConfigError
from focuskit.mmcore import (
    Autofocuser,
    AutofocusFailedError,
    AutofocusResult,
    FocuskitEngine,
    MMCoreScope,
    SimulatedCore,
    autofocus,
    calibrate_deepfocus,
    quiet_discovery,
    run_timelapse,
    timelapse_sequence,
)
from focuskit.nn import builtin_models
from focuskit.optics import get_preset
from focuskit.scopes import StageLimitError

FLUOR = get_preset("deepr-20x-fluor").optics
REGISTRY_FIELDS = (
    "kind",
    "method",
    "focus_device",
    "z_before",
    "z_after",
    "succeeded",
    "message",
    "scores",
    "n_images",
)


def fluorescence_core(**options: Any) -> SimulatedCore:
    """A small fluorescence microscope in the core: 64² camera, focus at +3 µm."""
    kwargs: dict[str, Any] = {"size": 64, "focus_z_um": 3.0, "seed": 1}
    kwargs.update(options)
    return SimulatedCore("deepr-20x-fluor", **kwargs)


@pytest.fixture
def core() -> SimulatedCore:
    return fluorescence_core()


# The core itself ----------------------------------------------
def test_the_simulated_microscope_is_micromanagers_core_with_python_devices(
    core: SimulatedCore,
) -> None:
    assert isinstance(core, UniMMCore) and isinstance(core, CMMCorePlus)
    assert {"Camera", "Z", "XY", "Shutter"} <= set(core.getLoadedDevices())
    assert core.getFocusDevice() == "Z" and core.getCameraDevice() == "Camera"
    assert core.getPixelSizeUm() == pytest.approx(FLUOR.pixel_size_um)
    assert core.getCurrentPixelSizeConfig() == "deepr-20x-fluor"
    assert core.getPropertyLowerLimit("Z", "Position") == core.simulation.z_limits_um[0]
    scope = MMCoreScope(core)
    assert scope.optics is not None and scope.optics.na == FLUOR.na  # from the pixel config
    # The camera renders the simulator at the stage's defocus: sharper near focus.
    from focuskit.measures import tenengrad

    core.setPosition(3.0)
    core.snapImage()
    sharp = tenengrad(core.getImage().astype(float))
    core.setPosition(-3.0)
    core.snapImage()
    blurred = tenengrad(core.getImage().astype(float))
    assert sharp > 2 * blurred
    assert core.simulation.exposures[-1].defocus_um == pytest.approx(-6.0)


def test_making_a_simulated_core_logs_no_error_about_a_missing_installation() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("pymmcore-plus")
    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    try:
        fluorescence_core()
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records]


def test_without_pymmcore_plus_one_line_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['pymmcore_plus'] = None\n"
        "import focuskit.mmcore as m\n"
        "try:\n"
        "    m.SimulatedCore\n"
        "except m.MMCoreUnavailableError as e:\n"
        "    print(e)\n"
        "from focuskit.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['autofocus', '--scope', 'mmcore-sim:deepr-20x-fluor'])\n"
        "print(r.exit_code); print(r.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert out[0].endswith('pip install "focuskit[mm]"') and "pymmcore-plus" in out[0]
    assert out[1] == "2"
    assert out[2].startswith("error:") and "focuskit[mm]" in " ".join(out[2:])


# One-off autofocus -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["brent", "gss", "scan"])
def test_one_off_classic_autofocus_leaves_the_stage_in_focus(
    core: SimulatedCore, method: str
) -> None:
    result = autofocus(core, method, range_um=16.0, tolerance_um=0.3)
    assert isinstance(result, AutofocusResult)
    assert result.succeeded and not result.cancelled, result.message
    assert (result.kind, result.method, result.focus_device) == ("software", method, "Z")
    assert result.z_before == 0.0
    assert result.z_after == core.getPosition() == core.simulation.z_um
    assert abs(result.z_after - 3.0) < FLUOR.depth_of_field_um / 4
    assert result.n_images == len(result.scores) == len(core.simulation.exposures)
    assert [z for z, _ in result.scores] == [e.z_um for e in core.simulation.exposures]
    d = result.to_dict()
    assert list(d)[: len(REGISTRY_FIELDS)] == list(REGISTRY_FIELDS)


def test_run_has_the_registry_signature_and_takes_per_run_settings(core: SimulatedCore) -> None:
    params = inspect.signature(Autofocuser.run).parameters
    assert list(params)[1:4] == ["core", "focus_device", "settings"]
    assert params["should_cancel"].kind is inspect.Parameter.KEYWORD_ONLY
    af = Autofocuser("gss", tolerance_um=0.3)
    wide = af.run(core, "Z", {"range_um": 16.0}, should_cancel=None)
    core.setPosition(0.0)
    narrow = af.run(core, "Z", {"range_um": 2.0}, should_cancel=None)
    assert abs(wide.z_after - 3.0) < 0.3
    assert abs(narrow.z_after) <= 1.0 + 1e-9  # stayed within its ±1 µm window
    with pytest.raises(ConfigError, match="cannot change per run"):
        af.run(core, "Z", {"model": "builtin:x"})


@pytest.fixture(scope="module")
def led_core() -> SimulatedCore:
    """fcfnn-20x-led in the core: 1024² (one model tile), two fields of a tilted slide."""
    if "singleshot-20x-led" not in builtin_models():
        pytest.skip("builtin:singleshot-20x-led not trained")
    return SimulatedCore(
        "fcfnn-20x-led",
        focus_z_um=5.0,
        tilt_um_per_mm=(4.0, 0.0),
        z_limits_um=(-60.0, 60.0),
        seed=7,
    )


@pytest.fixture(scope="module")
def singleshot() -> Autofocuser:
    if "singleshot-20x-led" not in builtin_models():
        pytest.skip("builtin:singleshot-20x-led not trained")
    return Autofocuser("singleshot")


def test_one_off_singleshot_autofocus(led_core: SimulatedCore, singleshot: Autofocuser) -> None:
    sim = led_core.simulation
    led_core.setXYPosition(0.0, 0.0)
    sim.set_timepoint(0)
    led_core.setPosition(-4.0)
    result = singleshot.run(led_core)
    assert result.succeeded, result.message
    assert result.n_images <= 3
    assert (
        abs(result.z_after - sim.true_focus_um())
        <= get_preset("fcfnn-20x-led").optics.depth_of_field_um / 4
    )
    assert result.search is not None and result.search.predictions


@pytest.mark.skipif("fewshot-widefield" not in builtin_models(), reason="no built-in blur CNN")
def test_one_off_deepfocus_calibrated_on_the_microscope() -> None:
    core = SimulatedCore("deepfocus-10x", size=256, focus_z_um=-10.0, seed=5)
    sim = core.simulation
    # Calibrate on another field (another sample), put in focus as a user would.
    core.setXYPosition(-5000.0, 0.0)
    core.setPosition(sim.true_focus_um())
    calibration = calibrate_deepfocus(core, range_um=160.0, planes=21)
    assert core.getPosition() == pytest.approx(sim.true_focus_um())  # back where it was
    assert abs(calibration.focus_z_um - sim.true_focus_um()) < 4.0
    core.setXYPosition(0.0, 0.0)
    core.setPosition(15.0)
    result = autofocus(core, "deepfocus", calibration=calibration)
    assert result.succeeded, result.message  # verified: bracketed by two less sharp images
    assert result.n_images <= 8
    dof = get_preset("deepfocus-10x").optics.depth_of_field_um
    assert abs(result.z_after - sim.true_focus_um()) < dof / 2
    # Four images estimate focus but leave none to bracket it: not called a success.
    core.setPosition(15.0)
    short = autofocus(core, "deepfocus", calibration=calibration, max_images=4)
    assert not short.succeeded and "not verified" in short.message, short.message
    assert short.n_images == 4


# Safety ----------------------------------------------
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lo=st.floats(-18.0, -2.0),
    width=st.floats(4.0, 30.0),
    start=st.floats(0.0, 1.0),
    focus=st.floats(-30.0, 30.0),
    max_step=st.one_of(st.none(), st.floats(0.3, 6.0)),
    range_um=st.floats(1.0, 60.0),
    method=st.sampled_from(["brent", "gss", "scan"]),
)
def test_no_stage_command_ever_leaves_the_limits(
    core: SimulatedCore,
    lo: float,
    width: float,
    start: float,
    focus: float,
    max_step: float | None,
    range_um: float,
    method: str,
) -> None:
    sim = core.simulation
    hi = min(lo + width, sim.z_limits_um[1])
    z0 = lo + start * (hi - lo)
    core.setPosition(z0)
    sim.focus_z_um = focus
    first = len(sim.z_commands)
    result = autofocus(
        core, method, limits_um=(lo, hi), max_step_um=max_step, range_um=range_um, max_images=12
    )
    commands = sim.z_commands[first:]
    assert sim.commands_outside_limits == 0
    assert all(lo - 1e-9 <= z <= hi + 1e-9 for z, _ in commands)
    if max_step is not None:
        path = [z0, *(z for z, _ in commands)]
        assert max(abs(b - a) for a, b in itertools.pairwise(path)) <= max_step + 1e-9
    assert result.z_after == core.getPosition()


def test_a_move_outside_the_limits_is_refused_before_it_is_sent(core: SimulatedCore) -> None:
    scope = MMCoreScope(core, limits_um=(-5.0, 5.0), max_step_um=2.0)
    with pytest.raises(StageLimitError, match="outside the stage limits"):
        scope.move_to(6.0)
    with pytest.raises(StageLimitError, match="largest step"):
        scope.move_to(4.0)
    assert core.simulation.z_commands == []
    with pytest.raises(ConfigError, match="reach beyond the travel"):
        MMCoreScope(core, limits_um=(-100.0, 5.0))  # wider than the device's own travel


def test_bad_input_is_refused_before_anything_moves(core: SimulatedCore) -> None:
    with pytest.raises(ConfigError, match="unknown autofocus method"):
        autofocus(core, "oughtafocus")
    with pytest.raises(ConfigError, match="does not take"):
        autofocus(core, "brent", step_um=1.0)
    with pytest.raises(ConfigError, match="needs calibration"):
        autofocus(core, "deepfocus")
    with pytest.raises(ConfigError, match="not defined"):
        autofocus(core, "brent", config=("Illumination", "DPC"))
    core.setPosition(-10.0)
    with pytest.raises(ConfigError, match="outside the limits"):
        autofocus(core, "brent", limits_um=(-5.0, 5.0))
    assert [z for z, _ in core.simulation.z_commands] == [-10.0]  # only the test's own move


class _BareStage(StageDevice):
    """A stage that reports no travel limits."""

    z = 0.0

    def set_position_um(self, val: float) -> None:
        self.z = val

    def get_position_um(self) -> float:
        return self.z

    def home(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def set_origin(self) -> None:
        pass


class _FlatCamera(SimpleCameraDevice):
    def sensor_shape(self) -> tuple[int, int]:
        return (32, 32)

    def dtype(self) -> Any:
        return np.uint16

    def get_exposure(self) -> float:
        return 10.0

    def set_exposure(self, exposure: float) -> None:
        pass

    def snap(self, buffer: np.ndarray) -> dict[str, Any]:
        buffer[:] = 100
        return {}


def test_a_core_without_limits_or_pixel_size_or_stage_is_refused() -> None:
    with quiet_discovery():
        bare = UniMMCore()
    bare.loadPyDevice("Camera", _FlatCamera())
    bare.initializeAllDevices()
    bare.setCameraDevice("Camera")
    with pytest.raises(ConfigError, match="no focus device"):
        MMCoreScope(bare)
    bare.loadPyDevice("Z", _BareStage())
    bare.initializeDevice("Z")
    bare.setFocusDevice("Z")
    with pytest.raises(ConfigError, match="reports no travel limits"):
        MMCoreScope(bare)
    with pytest.raises(ConfigError, match="no pixel size"):
        MMCoreScope(bare, limits_um=(-10.0, 10.0))
    scope = MMCoreScope(bare, limits_um=(-10.0, 10.0), pixel_size_um=0.5)
    assert scope.optics is None and scope.snap().shape == (32, 32)


# Failures and cancellation ----------------------------------------------
def test_a_camera_failure_mid_search_returns_the_stage_to_the_start(core: SimulatedCore) -> None:
    core.setPosition(-2.0)
    core.simulation.fail_camera_after(4)
    result = autofocus(core, "brent", range_um=16.0)
    assert not result.succeeded and not result.cancelled
    assert "camera" in result.message and "returned to z=-2" in result.message
    assert result.z_after == core.getPosition() == -2.0
    assert result.n_images == 4 and result.search is None
    # The shutter and auto-shutter are put back too.
    assert core.getAutoShutter() and not core.simulation.shutter_open


def test_a_cancelled_run_stops_before_the_next_image_and_returns_the_stage(
    core: SimulatedCore,
) -> None:
    asked = []

    def should_cancel() -> bool:
        asked.append(1)
        return len(asked) > 4  # the check before the run, then three images

    result = autofocus(core, "gss", should_cancel=should_cancel, range_um=16.0)
    assert result.cancelled and not result.succeeded
    assert result.n_images == 3 == len(core.simulation.exposures)
    assert result.z_after == result.z_before == core.getPosition() == 0.0


# Shutter, configuration, no shutter ----------------------------------------------
def test_the_shutter_stays_open_for_the_whole_search_and_closes_after(core: SimulatedCore) -> None:
    result = autofocus(core, "gss", range_um=16.0)
    sim = core.simulation
    assert result.succeeded and all(e.lit for e in sim.exposures)
    assert sim.shutter_changes == 2  # opened once, closed once: not once per image
    assert core.getAutoShutter() and not sim.shutter_open
    per_image = autofocus(core, "gss", range_um=16.0, keep_shutter_open=False)
    assert sim.shutter_changes == 2 + 2 * per_image.n_images


def test_a_microscope_without_a_shutter(core: SimulatedCore) -> None:
    bare = fluorescence_core(shutter=False)
    assert not bare.getShutterDevice()
    result = autofocus(bare, "brent", range_um=16.0, tolerance_um=0.3)
    assert result.succeeded and abs(result.z_after - 3.0) < FLUOR.depth_of_field_um / 4


def test_focusing_in_another_configuration_puts_the_first_back() -> None:
    led = SimulatedCore("fcfnn-20x-led", size=64, focus_z_um=2.0, seed=3)
    assert led.getCurrentConfig("Illumination") == "LED"
    autofocus(led, "gss", config=("Illumination", "DPC"), range_um=10.0, max_images=6)
    assert {e.illumination for e in led.simulation.exposures} == {"DPC"}
    assert led.getCurrentConfig("Illumination") == "LED"


# The MDA engine ----------------------------------------------
def test_a_drifting_time_lapse_at_two_positions_stays_in_focus() -> None:
    # A tilted slide (focus 2 µm higher 500 µm along x) whose focus drifts 1 µm per time point.
    core = fluorescence_core(drift_um_per_timepoint=1.0, tilt_um_per_mm=(4.0, 0.0))
    sim = core.simulation
    dof = FLUOR.depth_of_field_um
    positions = [(0.0, 0.0, 0.0), (500.0, 0.0, 0.0)]
    engine = FocuskitEngine(core, "gss", range_um=16.0, tolerance_um=dof / 8)
    result = run_timelapse(core, engine=engine, timepoints=4, positions=positions)
    assert not core.getAutoFocusDevice()  # no hardware autofocus device at all
    assert len(result.frames) == 8 and len(result.autofocus) == 8
    for frame in result.frames:
        truth = sim.true_focus_um(frame["x_um"], frame["y_um"], frame["t"])
        assert frame["true_focus_um"] == pytest.approx(truth)
        assert abs(frame["error_um"]) <= dof / 4, frame
    for p in (0, 1):
        records = [r for r in result.autofocus if r["position"] == p]
        assert [r["index"]["t"] for r in records] == [0, 1, 2, 3]
        for before, after in itertools.pairwise(records):
            # The correction is carried: each autofocus starts where the last one ended.
            assert after["z_before"] == pytest.approx(before["z_after"])
    # The correction is z_after − the position's own z (0 here), per position.
    assert engine.corrections == {
        p: pytest.approx(result.autofocus[-2 + p]["z_after"]) for p in (0, 1)
    }
    assert sim.commands_outside_limits == 0


def test_singleshot_keeps_a_drifting_time_lapse_in_focus_with_two_images(
    led_core: SimulatedCore, singleshot: Autofocuser, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = led_core.simulation
    sim.drift_um_per_timepoint = 3.0
    led_core.setXYPosition(0.0, 0.0)
    led_core.setPosition(0.0)
    dof = get_preset("fcfnn-20x-led").optics.depth_of_field_um
    from focuskit.singleshot import DefocusModel

    loads: list[Any] = []
    monkeypatch.setattr(DefocusModel, "load", classmethod(lambda cls, *a, **k: loads.append(a)))
    engine = FocuskitEngine(led_core, autofocuser=singleshot)
    try:
        result = run_timelapse(led_core, engine=engine, timepoints=4, positions=[(0, 0, 0.0)])
    finally:
        sim.drift_um_per_timepoint = 0.0
    assert loads == []  # the model stays loaded across events: nothing loaded per event
    assert all(abs(f["error_um"]) <= dof / 4 for f in result.frames), result.frames
    # After the first time point the stage is 3 µm out: one shot, one verification image.
    assert [r["n_images"] for r in result.autofocus[1:]] == [2, 2, 2]
    assert all(r["succeeded"] for r in result.autofocus)


def test_frames_carry_the_autofocus_that_placed_them(core: SimulatedCore) -> None:
    frames: list[dict[str, Any]] = []
    core.mda.events.frameReady.connect(lambda img, event, meta: frames.append(meta))
    engine = FocuskitEngine(core, "gss", range_um=16.0, tolerance_um=0.3)
    core.mda.set_engine(engine)
    sequence = timelapse_sequence(2, [(0.0, 0.0, 0.0)])
    af_events = [e for e in sequence if isinstance(e.action, useq.HardwareAutofocus)]
    assert len(af_events) == 2
    core.mda.run(sequence)
    assert len(frames) == 2
    for t, meta in enumerate(frames):
        record = meta["extra"]["focuskit_autofocus"]
        assert record["index"]["t"] == t and record["method"] == "gss" and record["succeeded"]
        assert meta["position"]["z"] == pytest.approx(record["z_after"])
    assert [r["index"]["t"] for r in engine.history] == [0, 1]


def test_on_failure_continue_keeps_the_last_correction_and_abort_stops(
    core: SimulatedCore,
) -> None:
    sim = core.simulation
    engine = FocuskitEngine(core, "gss", range_um=16.0, tolerance_um=0.3)
    sequence = timelapse_sequence(3, [(0.0, 0.0, 0.0)])
    fail_at = {1}

    def maybe_fail(event: Any) -> None:
        if not isinstance(event.action, useq.HardwareAutofocus):
            sim.fail_camera_after(None)  # the acquisition's own images work
        elif event.index.get("t") in fail_at:
            sim.fail_camera_after(2)

    core.mda.events.eventStarted.connect(maybe_fail)
    core.mda.set_engine(engine)
    core.mda.run(sequence)
    ok, failed, ok_again = engine.history
    assert ok["succeeded"] and not failed["succeeded"] and ok_again["succeeded"]
    assert failed["correction_um"] == ok["correction_um"]  # the last good one, kept
    assert "camera" in failed["message"]
    core.mda.set_engine(FocuskitEngine(core, "gss", range_um=16.0, on_failure="abort"))
    with pytest.raises(AutofocusFailedError, match="acquisition stops"):
        core.mda.run(sequence)
    core.mda.events.eventStarted.disconnect(maybe_fail)


def test_an_event_z_outside_the_limits_stops_the_acquisition_before_moving(
    core: SimulatedCore,
) -> None:
    core.mda.set_engine(FocuskitEngine(core, "gss", range_um=4.0))
    sequence = useq.MDASequence(stage_positions=[(0.0, 0.0, 25.0)])  # travel is ±20 µm
    with pytest.raises(StageLimitError, match="outside the stage limits"):
        core.mda.run(sequence)
    assert core.simulation.commands_outside_limits == 0


def test_the_engine_adds_little_time_per_event(core: SimulatedCore) -> None:
    # Autofocus events: the engine's time beyond the search's own work.
    result = run_timelapse(core, "gss", timepoints=12, range_um=4.0, max_images=6)
    overhead = [r["overhead_ms"] for r in result.autofocus]
    assert np.median(overhead) <= 5.0, overhead
    # Acquisition events: FocuskitEngine against pymmcore-plus's own engine, same frames.
    sequence = useq.MDASequence(
        time_plan={"interval": 0, "loops": 30}, z_plan={"range": 2, "step": 1}
    )

    def per_event(engine: Any) -> float:
        core.mda.set_engine(engine)
        t0 = time.perf_counter()
        core.mda.run(sequence)
        return (time.perf_counter() - t0) / len(list(sequence))

    plain = min(per_event(MDAEngine(core)) for _ in range(2))
    ours = min(per_event(FocuskitEngine(core, "gss")) for _ in range(2))
    assert (ours - plain) * 1000 <= 5.0, (ours, plain)
