"""Issue 17, item 9: a damaged model folder is refused in one line naming the file, the
entry and the fix — never a SafetensorError, KeyError or a page of torch text — and
nothing in it is ever unpickled.

Each case copies a bundled model folder (weights linked, not copied, when only the
config changes), damages it as the bad-input probe did, and loads it through
``focuskit.load_model``, the class's ``load`` and the CLI's ``info``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import one_line_error, run_cli

import focuskit
from focuskit import ConfigError, ModelFileError
from focuskit.nn import BUILTIN_DIR, read_weights, write_model_folder

BUILTINS = {
    "singleshot": "singleshot-20x-led",
    "fewshot": "fewshot-widefield",
    "refocus": "refocus-40x-fluor",
}


def _classes() -> dict[str, Any]:
    return {
        "singleshot": focuskit.DefocusModel,
        "fewshot": focuskit.BlurScorer,
        "refocus": focuskit.Refocuser,
    }


def _copy(system: str, tmp: Path, *, weights: bool = True) -> Path:
    """A copy of the bundled folder; its weights linked when they stay untouched."""
    src, dst = BUILTIN_DIR / BUILTINS[system], tmp / system
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    if weights:
        shutil.copy(src / "weights.safetensors", dst / "weights.safetensors")
    else:
        os.symlink(src / "weights.safetensors", dst / "weights.safetensors")
    return dst


def _edit_config(folder: Path, change: Callable[[Any], Any]) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(change(config)))


def _refused(system: str, folder: Path, file: str, *needles: str) -> ModelFileError:
    """Every way in refuses the folder with the same one line naming ``file``."""
    with pytest.raises(ModelFileError) as caught:
        focuskit.load_model(folder)
    exc = caught.value
    assert exc.path == str(folder / file)
    assert "\n" not in str(exc) and " — " in str(exc), str(exc)
    for needle in needles:
        assert needle in str(exc), (needle, str(exc))
    with pytest.raises(ModelFileError) as again:
        _classes()[system].load(folder)
    assert str(again.value) == str(exc)
    code, _, err = run_cli(system, "info", folder)
    one_line_error(code, err, file, *needles)
    return exc


# ------------------------------------------------------------------------ weights file
class _Boom:
    """Unpickling this would create a file: proof that nothing is ever unpickled."""

    marker = ""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


def _pickle_weights(folder: Path) -> None:
    _Boom.marker = str(folder / "UNPICKLED")
    (folder / "weights.safetensors").write_bytes(pickle.dumps({"net.w": _Boom()}, protocol=4))


WEIGHT_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "pickle": (_pickle_weights, "never loads pickles"),
    "garbage": (
        lambda f: (f / "weights.safetensors").write_bytes(b"\x13\x00garbage" * 50),
        "not a complete safetensors file",
    ),
    "truncated": (
        lambda f: (f / "weights.safetensors").write_bytes(
            (f / "weights.safetensors").read_bytes()[:-1000]
        ),
        "not a complete safetensors file",
    ),
    "header-only": (
        lambda f: (f / "weights.safetensors").write_bytes(
            (f / "weights.safetensors").read_bytes()[:7]
        ),
        "not a complete safetensors file",
    ),
    "empty": (lambda f: (f / "weights.safetensors").write_bytes(b""), "is empty"),
}


@pytest.mark.parametrize("damage", list(WEIGHT_DAMAGE))
@pytest.mark.parametrize("system", list(BUILTINS))
def test_damaged_weights_are_refused_in_one_line(system: str, damage: str, tmp_path: Path) -> None:
    folder = _copy(system, tmp_path)
    spoil, needle = WEIGHT_DAMAGE[damage]
    spoil(folder)
    _refused(system, folder, "weights.safetensors", needle)
    assert not (folder / "UNPICKLED").exists()


def test_a_torch_save_zip_is_named_as_a_pickle(tmp_path: Path) -> None:
    import torch

    folder = _copy("fewshot", tmp_path)
    torch.save({"w": torch.zeros(2)}, folder / "weights.safetensors")
    _refused("fewshot", folder, "weights.safetensors", "a pickle", "focuskit never loads pickles")


# ------------------------------------------------------------------------- config.json
CONFIG_DAMAGE: dict[str, tuple[str, Callable[[Any], Any], tuple[str, ...]]] = {
    "a JSON list": ("singleshot", lambda c: [c], ("holds a list, not a JSON object",)),
    "no ood": (
        "singleshot",
        lambda c: {k: v for k, v in c.items() if k != "ood"},
        ('no "ood" entry',),
    ),
    "no features": (
        "singleshot",
        lambda c: {k: v for k, v in c.items() if k != "features"},
        ('no "features" entry',),
    ),
    "no optics": (
        "singleshot",
        lambda c: {k: v for k, v in c.items() if k != "optics"},
        ('no "optics" entry',),
    ),
    "no z range": (
        "singleshot",
        lambda c: {k: v for k, v in c.items() if k != "z_range_um"},
        ('no "z_range_um" entry',),
    ),
    "text for a limit": (
        "singleshot",
        lambda c: {**c, "ood": {**c["ood"], "distance_limit": "1.48"}},
        ('"ood.distance_limit" must be a number', '"1.48"'),
    ),
    "text for the z range": (
        "singleshot",
        lambda c: {**c, "z_range_um": ["-30", "30"]},
        ('"z_range_um" must be a list of 2 increasing numbers',),
    ),
    "text for a width": (
        "singleshot",
        lambda c: {**c, "architecture": {**c["architecture"], "width": "100"}},
        ('"architecture.width" must be a whole number in [1, 65536]', '"100"'),
    ),
    "an unknown architecture entry": (
        "singleshot",
        lambda c: {**c, "architecture": {**c["architecture"], "channels": [8]}},
        ('"architecture" has an unknown entry "channels"',),
    ),
    "a tile the network was not made for": (
        "singleshot",
        lambda c: {**c, "features": {**c["features"], "tile": 512}},
        ('"architecture" has 17649 features but "features"',),
    ),
    "an impossible objective": (
        "singleshot",
        lambda c: {
            **c,
            "optics": {**c["optics"], "objective": {**c["optics"]["objective"], "na": 3}},
        },
        ('"optics" is not valid', "immersion index"),
    ),
    "no architecture": (
        "fewshot",
        lambda c: {k: v for k, v in c.items() if k != "architecture"},
        ('no "architecture" entry',),
    ),
    "text for channels": (
        "fewshot",
        lambda c: {**c, "architecture": {**c["architecture"], "channels": "16,24,48,64"}},
        ('"architecture.channels" must be a list',),
    ),
    "a cutoff range upside down": (
        "fewshot",
        lambda c: {**c, "cutoff_range": [0.5, 0.2]},
        ('"cutoff_range" must be a list of 2 increasing numbers > 0',),
    ),
    "text for optics": (
        "refocus",
        lambda c: {**c, "optics": "40x"},
        ('"optics" must be an object or null, got "40x"',),
    ),
    "text for the pixel size": (
        "refocus",
        lambda c: {**c, "pixel_size_um": "0.1625"},
        ('"pixel_size_um" must be a number > 0 or null',),
    ),
    "five generator widths": (
        "refocus",
        lambda c: {**c, "architecture": {"channels": [16, 32, 64, 96, 128]}},
        ('"architecture.channels" must be a list of 6 whole numbers in [1, 4096]',),
    ),
    "provenance that is not an object": (
        "refocus",
        lambda c: {**c, "training": "by hand"},
        ('"training" must be an object',),
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_DAMAGE))
def test_a_damaged_config_names_the_entry(case: str, tmp_path: Path) -> None:
    system, change, needles = CONFIG_DAMAGE[case]
    folder = _copy(system, tmp_path, weights=False)
    _edit_config(folder, change)
    _refused(system, folder, "config.json", *needles)


@pytest.mark.parametrize("text", ['{"kind": "blur-cnn", ', "\udcff", "[" * 5000 + "]" * 5000])
def test_config_json_that_is_not_json_is_refused(text: str, tmp_path: Path) -> None:
    folder = _copy("fewshot", tmp_path, weights=False)
    (folder / "config.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelFileError, match=r"config\.json: is not"):
        focuskit.load_model(folder)


def test_a_folder_without_a_kind_or_of_an_unknown_kind_is_named(tmp_path: Path) -> None:
    folder = _copy("fewshot", tmp_path, weights=False)
    _edit_config(folder, lambda c: {k: v for k, v in c.items() if k != "kind"})
    with pytest.raises(ModelFileError, match=r'config.json: has no "kind" entry'):
        focuskit.load_model(folder)
    _edit_config(folder, lambda c: {**c, "kind": ["blur-cnn"]})
    with pytest.raises(ModelFileError, match=r"unknown model kind \['blur-cnn'\]"):
        focuskit.load_model(folder)
    with pytest.raises(ConfigError, match="not a blur-score CNN"):
        focuskit.BlurScorer.load(BUILTIN_DIR / BUILTINS["refocus"])


# ------------------------------------------------------- weights that do not fit the config
def test_another_channel_count_names_the_tensor_not_a_page_of_torch(tmp_path: Path) -> None:
    folder = _copy("fewshot", tmp_path, weights=False)
    _edit_config(
        folder, lambda c: {**c, "architecture": {**c["architecture"], "channels": [8, 24, 48, 64]}}
    )
    exc = _refused("fewshot", folder, "weights.safetensors", '"net.features.0.0.weight"')
    assert "(16, 1, 5, 5)" in str(exc) and "(8, 1, 5, 5)" in str(exc)


def test_weights_that_disagree_with_the_config_are_refused(tmp_path: Path) -> None:
    # Deep-R weights with a decoder, and a config saying there is none.
    folder = _copy("refocus", tmp_path, weights=False)
    _edit_config(folder, lambda c: {**c, "dpm": False})
    _refused("refocus", folder, "weights.safetensors", '"dpm.*" tensors')


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda t: t.pop("net.head.bias"), 'no tensor "net.head.bias"'),
        (
            lambda t: t.update({"net.extra": np.zeros(2, np.float32)}),
            'unexpected tensor "net.extra"',
        ),
        (lambda t: t.update({"net.head.bias": np.zeros((1, 1), np.float32)}), "has shape (1, 1)"),
        (lambda t: t.update({"net.head.bias": np.zeros(1, np.int32)}), "holds int32"),
        (lambda t: t.update({"net.head.bias": np.full(1, np.nan, np.float32)}), "NaN or infinity"),
        (lambda t: t.update({"ood.scales": t["ood.scales"][:3]}), '"ood.components" has shape'),
        (lambda t: t.pop("ood.mean"), 'no tensor "ood.mean"'),
    ],
)
def test_a_tensor_missing_extra_misshapen_or_not_finite_is_named(
    change: Callable[[dict[str, np.ndarray]], Any], needle: str, tmp_path: Path
) -> None:
    src = BUILTIN_DIR / BUILTINS["singleshot"]
    tensors = read_weights(src / "weights.safetensors")
    change(tensors)
    folder = write_model_folder(
        tmp_path / "singleshot", json.loads((src / "config.json").read_text()), tensors
    )
    _refused("singleshot", folder, "weights.safetensors", needle)


# ---------------------------------------------------------------------- what still loads
@pytest.mark.parametrize("system", list(BUILTINS))
def test_bundled_models_load_bit_identically(system: str) -> None:
    model = focuskit.load_model(f"builtin:{BUILTINS[system]}")
    saved = read_weights(BUILTIN_DIR / BUILTINS[system] / "weights.safetensors")
    loaded = {
        f"{role}.{k}": v.detach().numpy()
        for role, net in model.networks().items()
        for k, v in net.state_dict().items()
    }
    loaded.update(model.arrays())
    for name, value in saved.items():
        assert np.array_equal(np.asarray(loaded[name]).reshape(value.shape), value), name
    assert set(loaded) == set(saved)


def test_a_safetensors_header_that_starts_like_a_pickle_still_loads(tmp_path: Path) -> None:
    # A header of 0x280 bytes makes the file start 80 02, as a protocol-2 pickle does.
    from safetensors.numpy import save_file

    file = tmp_path / "weights.safetensors"
    for pad in range(700):
        save_file({"net.w": np.arange(3, dtype=np.float32)}, str(file), metadata={"p": "x" * pad})
        if file.read_bytes()[:2] == b"\x80\x02":
            break
    else:
        pytest.fail("no padding gave a header of 0x280 bytes")
    assert read_weights(file)["net.w"].tolist() == [0, 1, 2]
