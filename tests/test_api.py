"""The facade (`import focuskit`) and the one model API the three systems share."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import focuskit
from focuskit import (
    AUTOFOCUS_METHODS,
    BlurScorer,
    ConfigError,
    DefocusModel,
    FocalStack,
    Refocuser,
    load_model,
)
from focuskit.optics import get_preset
from focuskit.scopes import StackScope

BUILTINS = {
    "builtin:singleshot-20x-led": DefocusModel,
    "builtin:fewshot-widefield": BlurScorer,
    "builtin:refocus-40x-fluor": Refocuser,
}
OLD_NAMES = {
    "builtin:fcfnn-20x-led": DefocusModel,
    "builtin:blur-cnn": BlurScorer,
    "builtin:deepr-40x-fluor": Refocuser,
}


@pytest.fixture(scope="module")
def models() -> dict[str, object]:
    return {spec: load_model(spec) for spec in BUILTINS}


def test_load_model_returns_each_systems_object_by_kind(models: dict[str, object]) -> None:
    for spec, cls in BUILTINS.items():
        assert type(models[spec]) is cls and models[spec].source == spec
    for spec, cls in OLD_NAMES.items():
        assert type(load_model(spec)) is cls


def test_a_model_class_refuses_another_systems_folder() -> None:
    with pytest.raises(ConfigError, match="not a single-shot defocus model"):
        DefocusModel.load("builtin:refocus-40x-fluor")
    with pytest.raises(ConfigError, match="not a blur-score CNN"):
        BlurScorer.load("builtin:singleshot-20x-led")


def test_unknown_kinds_and_missing_folders_are_refused(tmp_path: Path) -> None:
    from focuskit.nn import write_model_folder

    write_model_folder(tmp_path / "odd", {"kind": "mystery"}, {"net.w": np.zeros(1, np.float32)})
    with pytest.raises(ConfigError, match="unknown model kind 'mystery'"):
        load_model(tmp_path / "odd")
    with pytest.raises(ConfigError, match="model folder not found"):
        load_model(tmp_path / "nowhere")


def test_every_model_saves_loads_and_describes_itself_the_same_way(
    models: dict[str, object], tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    for _spec, model in models.items():
        info = model.info()
        assert {"model", "kind", "parameters", "architecture", "optics"} <= set(info)
        assert info["kind"] == type(model).kind and sum(info["parameters"].values()) > 0
        folder = model.save(tmp_path / type(model).__name__)
        with pytest.raises(ConfigError, match="already exists"):
            model.save(folder)
        again = load_model(folder)
        assert type(again) is type(model) and again.metadata == model.metadata
        roles = set(model.networks())
        # One weight-name convention: every tensor is <network role>.<parameter>
        # (or an extra array).
        prefixes = {key.split(".")[0] for key in load_file(str(folder / "weights.safetensors"))}
        assert roles <= prefixes and prefixes - roles <= {"ood"}


def test_one_optics_tolerance_for_every_model(models: dict[str, object]) -> None:
    defocus, refocuser = models["builtin:singleshot-20x-led"], models["builtin:refocus-40x-fluor"]
    for model in (defocus, refocuser):
        optics = model.optics
        assert model.check_optics(optics) == []
        close = replace(optics, wavelength_um=optics.wavelength_um * 1.015)
        assert model.check_optics(close) == []  # within 2 %
        far = replace(optics, wavelength_um=optics.wavelength_um * 1.03)
        with pytest.raises(ConfigError, match="λ"):
            model.check_optics(far)
        assert any(n.startswith("forced") for n in model.check_optics(far, force=True))
        with pytest.raises(ConfigError, match="pixel size"):
            model.check_optics(pixel_size_um=optics.pixel_size_um * 1.05)
        with pytest.raises(ConfigError, match="--pixel-size"):
            model.check_optics()
    # The blur score is objective-agnostic (the calibration sets the scale): notes only.
    scorer = models["builtin:fewshot-widefield"]
    assert scorer.check_optics(get_preset("deepfocus-10x").optics) == []
    assert scorer.check_optics(get_preset("fcfnn-20x-led").optics, pixel_size_um=0.05) != []


def test_simulate_stack_returns_a_focal_stack_with_its_truth() -> None:
    stack = focuskit.simulate_stack(
        "deepr-20x-fluor", size=64, z_um=[-2.0, 0.0, 2.0], focus_z_um=0.5, seed=4
    )
    assert isinstance(stack, FocalStack) and stack.shape == (3, 64, 64)
    assert stack.focus_z_um == 0.5 and stack.metadata["seed"] == 4 and "sample" in stack.metadata
    assert focuskit.find_focus(stack, "tenengrad").plane == 1
    assert np.asarray(focuskit.score(stack, "tenengrad")).shape == (3,)


def test_autofocus_runs_every_method_by_name() -> None:
    assert AUTOFOCUS_METHODS == ("brent", "gss", "scan", "singleshot", "deepfocus")
    stack = focuskit.simulate_stack(
        "deepr-20x-fluor", size=64, z_um=np.arange(-6.0, 6.1, 0.5), seed=2
    )
    result = focuskit.autofocus(
        StackScope(stack, start_z_um=4.0), "gss", "tenengrad", range_um=12.0, tolerance_um=0.5
    )
    assert result.method == "gss" and abs(result.z_final_um - stack.focus_z_um) <= 1.0
    with pytest.raises(ConfigError, match="deepfocus"):
        focuskit.autofocus(StackScope(stack), "nope")
    with pytest.raises(ConfigError, match="needs predict"):
        focuskit.autofocus(StackScope(stack), "singleshot")
    with pytest.raises(ConfigError, match="needs calibration"):
        focuskit.autofocus(StackScope(stack), "deepfocus", model="builtin:fewshot-widefield")


def test_singleshot_autofocus_refuses_another_microscope_before_moving(
    models: dict[str, object],
) -> None:
    stack = focuskit.simulate_stack("deepr-20x-fluor", size=64, z_um=[-1.0, 0.0, 1.0], seed=2)
    scope = StackScope(stack, start_z_um=1.0)
    with pytest.raises(ConfigError, match="does not match the model"):
        models["builtin:singleshot-20x-led"].autofocus(scope)
    assert scope.z_um == 1.0 and scope.exposures == 0


def test_subpackages_load_on_first_use_and_builtins_are_listed() -> None:
    import subprocess
    import sys

    code = (
        "import sys, focuskit; focuskit.singleshot.TrainConfig; focuskit.refocus.SIZE_MULTIPLE; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from focuskit._api import builtin_models_info

    rows = {r["name"]: r for r in builtin_models_info()}
    assert set(rows) >= set(BUILTINS)
    for spec, cls in BUILTINS.items():
        assert rows[spec]["class"] == cls.__name__ and rows[spec]["parameters"] > 0
    assert rows["builtin:singleshot-20x-led"]["old_name"] == "builtin:fcfnn-20x-led"
