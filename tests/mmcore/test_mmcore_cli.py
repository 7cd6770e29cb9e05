"""`focuskit autofocus --scope mmcore…` and `focuskit timelapse` on Micro-Manager's core."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import one_line_error, run_cli

pytest.importorskip("pymmcore_plus")

from focuskit.optics import get_preset

FLUOR = get_preset("deepr-20x-fluor").optics

# Python devices a Micro-Manager configuration file loads by module and class name (`#py`
# lines): focuskit's simulated camera and focus drive, sharing one simulation.
DEVICES = """
from focuskit.mmcore import MicroscopeSimulation, SimCamera, SimFocusStage

SIM = MicroscopeSimulation("deepr-20x-fluor", size=64, focus_z_um=4.0, seed=2)


class Camera(SimCamera):
    def __init__(self):
        super().__init__(SIM)


class Focus(SimFocusStage):
    def __init__(self):
        super().__init__(SIM)
"""
CONFIG = """
# focuskit test microscope: Python devices only, so no Micro-Manager installation is needed
#py pyDevice,Camera,{module},Camera
#py pyDevice,Z,{module},Focus
Property,Core,Initialize,1
ConfigPixelSize,deepr-20x-fluor,Core,TimeoutMs,5000
PixelSize_um,deepr-20x-fluor,0.325
#py Property,Core,Camera,Camera
#py Property,Core,Focus,Z
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    module = f"focuskit_test_devices_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{module}.py").write_text(DEVICES)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "microscope.cfg"
    path.write_text(textwrap.dedent(CONFIG.format(module=module)))
    return path


def test_autofocus_on_a_micromanager_configuration_file(config_file: Path) -> None:
    code, out, err = run_cli(
        "autofocus", "--scope", f"mmcore:{config_file}", "--method", "gss", "--tolerance", "0.3",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["success"] and abs(result["z_final_um"] - 4.0) < FLUOR.depth_of_field_um / 4
    registry = result["autofocus_result"]
    assert registry["kind"] == "software" and registry["focus_device"] == "Z"
    assert registry["z_after"] == result["z_final_um"] and registry["n_images"] == result["images"]


def test_autofocus_on_the_simulated_core_reports_the_error(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "autofocus", "--scope", "mmcore-sim:deepr-20x-fluor", "--method", "brent",
        "--seed", "3", "--range", "20", "--tolerance", "0.3", "--json",
        "--plot", tmp_path / "trace.png",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert abs(result["error_um"]) < FLUOR.depth_of_field_um / 4
    assert result["error_um"] == pytest.approx(result["z_final_um"] - result["true_focus_um"])
    assert (tmp_path / "trace.png").stat().st_size > 0


def test_timelapse_prints_every_time_point_and_plots(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "timelapse", "--scope", "mmcore-sim:deepr-20x-fluor", "--method", "gss",
        "--timepoints", "3", "--drift", "1.5", "--positions", "2", "--size", "64", "--json",
        "--plot", tmp_path / "tl.png",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    frames = report["frames"]
    assert [(f["t"], f["p"]) for f in frames] == [(t, p) for t in range(3) for p in range(2)]
    assert report["summary"]["failures"] == 0
    assert all(abs(f["error_um"]) <= FLUOR.depth_of_field_um / 4 for f in frames), frames
    drift = [f["true_focus_um"] for f in frames if f["p"] == 0]
    assert drift[1] - drift[0] == pytest.approx(1.5)
    assert (tmp_path / "tl.png").stat().st_size > 0
    code, out, err = run_cli(
        "timelapse", "--scope", "mmcore-sim:deepr-20x-fluor", "--method", "gss",
        "--timepoints", "2", "--size", "64",
    )  # fmt: skip
    assert code == 0, err
    assert "t=  1" in out and "frames within DOF/4" in out


def test_micromanager_options_and_scopes_are_checked(config_file: Path) -> None:
    code, _, err = run_cli("timelapse", "--scope", "sim:deepr-20x-fluor")
    one_line_error(code, err, "mmcore-sim:PRESET")
    code, _, err = run_cli("timelapse", "--scope", f"mmcore:{config_file}", "--drift", "2")
    one_line_error(code, err, "--drift")
    code, _, err = run_cli("autofocus", "--scope", "sim:deepr-20x-fluor", "--limits", "-5", "5")
    one_line_error(code, err, "--limits", "mmcore")
    code, _, err = run_cli(
        "autofocus", "--scope", "mmcore-sim:deepr-20x-fluor", "--af-config", "DPC"
    )
    one_line_error(code, err, "GROUP:PRESET")
    code, _, err = run_cli("autofocus", "--scope", "mmcore-sim:nope")
    one_line_error(code, err, "unknown preset")
    code, _, err = run_cli(
        "autofocus", "--scope", "mmcore-sim:deepfocus-10x", "--method", "deepfocus"
    )
    one_line_error(code, err, "--calibration", "--calibrate-range")
    code, _, err = run_cli("autofocus", "--scope", f"mmcore:{config_file}", "--start", "99")
    one_line_error(code, err, "outside the stage limits")


def test_a_configuration_of_cpp_devices_without_micromanager_says_what_is_missing(
    tmp_path: Path,
) -> None:
    import pymmcore_plus

    from focuskit.mmcore import quiet_discovery

    with quiet_discovery():
        if pymmcore_plus.find_micromanager():
            pytest.skip("a Micro-Manager installation is present")
    cfg = tmp_path / "demo.cfg"
    cfg.write_text("Device,Camera,DemoCamera,DCam\nProperty,Core,Initialize,1\n")
    code, _, err = run_cli("autofocus", "--scope", f"mmcore:{cfg}")
    one_line_error(code, err, "demo.cfg", "DemoCamera", "mmcore install")
    code, _, err = run_cli("autofocus", "--scope", f"mmcore:{tmp_path / 'none.cfg'}")
    one_line_error(code, err, "no such Micro-Manager configuration file")
