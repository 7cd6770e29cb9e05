"""Exit codes and honesty of the CLI: 1 ran and did not succeed, 2 refused, 3 internal
error (one line and a log, never a traceback); strict JSON; no focus in a flat stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from focuskit import ConfigError, FocalStack, write_stack
from focuskit.cli._common import json_safe


def test_a_constant_stack_has_no_focus_signal_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "flat.ome.tif"
    write_stack(FocalStack(np.full((5, 32, 32), 7, np.uint16), np.arange(5.0), 0.2), path)
    code, out, err = run_cli("find-focus", path)
    assert code == 1 and "no focus signal" in err and "Traceback" not in err
    code, out, _ = run_cli("find-focus", path, "--json")
    d = json.loads(out)
    assert code == 1 and d["has_signal"] is False and d["z_focus_um"] is None
    assert d["confidence"] == 0.0


def test_refocus_refuses_a_constant_image() -> None:
    from focuskit.refocus import Refocuser

    model = Refocuser.load("builtin:refocus-40x-fluor")
    with pytest.raises(ConfigError, match="constant"):
        model.refocus(np.zeros((64, 64), np.float32))


def test_nan_tolerance_is_refused_not_a_false_success() -> None:
    code, _, err = run_cli(
        "autofocus", "--scope", "sim:deepr-20x-fluor", "--method", "brent", "--tolerance", "nan"
    )
    one_line_error(code, err, "tolerance")


def test_scan_keeps_to_the_image_budget() -> None:
    from focuskit.scopes import open_scope
    from focuskit.search import scan_search

    scope = open_scope("sim:deepr-40x-fluor", size=64, photons=None)
    r = scan_search(scope, step_um=0.01, max_images=12)
    assert r.images <= 12 and "budget" in r.message
    for bad in ({"step_um": 0.0}, {"step_um": float("nan")}, {"tolerance_um": -1.0}):
        with pytest.raises(ConfigError):
            scan_search(scope, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_images"):
        scan_search(scope, max_images=2)


def test_a_failing_blur_scorer_is_one_line() -> None:
    from focuskit.fewshot import BlurCalibration, deepfocus_search
    from focuskit.scopes import open_scope

    scope = open_scope("sim:deepfocus-10x", size=64, photons=None)
    z = np.linspace(-40, 40, 21)
    calib = BlurCalibration.from_scores(z, 1 - np.exp(-((z / 20) ** 2)))

    def broken(image: np.ndarray) -> np.ndarray:
        raise ValueError("my scorer broke")

    with pytest.raises(ConfigError, match=r"blur scorer failed.*my scorer broke"):
        deepfocus_search(scope, score_map=broken, calibration=calib)


def test_an_internal_error_is_one_line_with_a_log(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import focuskit.optics

    monkeypatch.setenv("FOCUSKIT_LOG_DIR", str(tmp_path / "logs"))

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug\nsecond line")

    monkeypatch.setattr(focuskit.optics, "get_preset", boom)
    code, _, err = run_cli("simulate", "-o", tmp_path / "x.ome.tif")
    assert code == 3
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "internal error: RuntimeError: simulated bug" in " ".join(
        err.split()
    )
    logs = list((tmp_path / "logs").glob("focuskit-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text()
    assert not (tmp_path / "x.ome.tif").exists()


def test_json_has_no_nan() -> None:
    safe, where = json_safe({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(2)})
    assert safe == {"a": None, "b": [1.0, None], "c": 2.0}
    assert where == ["a", "b[1]"]
    json.dumps(safe, allow_nan=False)


def test_singleshot_budget_covers_its_fallback() -> None:
    from types import SimpleNamespace

    from focuskit.scopes import open_scope
    from focuskit.singleshot import singleshot_search

    def lost(image: np.ndarray) -> SimpleNamespace:
        return SimpleNamespace(z_um=90.0, sigma_um=1.0, in_range=False, notes=[])

    scope = open_scope("sim:deepr-40x-fluor", size=64, photons=None)
    r = singleshot_search(scope, lost, max_images=8)
    assert r.images <= 8 and "fell back" in r.message
    scope = open_scope("sim:deepr-40x-fluor", size=64, photons=None)
    r = singleshot_search(scope, lost, max_images=3)
    assert r.images <= 3 and not r.success and "too few for the fallback" in r.message
    with pytest.raises(ConfigError, match="max_images"):
        singleshot_search(scope, lost, max_images=1)
