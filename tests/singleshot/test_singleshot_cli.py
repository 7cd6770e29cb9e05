"""Single-shot autofocus (`singleshot_search`) and `focuskit defocus predict/train/info`.

A tiny model is trained once per session (seconds); the built-in model is used only by
a test that skips when it is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import one_line_error, run_cli

from focuskit import ConfigError, FocuskitError, autofocus
from focuskit.io import FocalStack, write_stack
from focuskit.scopes import FaultyScope, ScopeError, SimulatedScope
from focuskit.search import SEARCHES
from focuskit.singleshot import singleshot_search

TILE = 256


_run = run_cli
_one_line_error = one_line_error


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny FCFNN on 8 simulated 256² fields (a few seconds); good enough to exercise
    the plumbing, not to focus well."""
    from focuskit.optics import get_preset
    from focuskit.singleshot import (
        DefocusModel,
        TrainConfig,
        fit_fcfnn,
        region_for,
        simulate_examples,
        split_by_field,
    )

    optics = get_preset("fcfnn-20x-led").optics
    examples = simulate_examples(
        8, size=TILE, tile=TILE, z_um=np.arange(-20, 21, 2.0), seed=31, incoherent_every=0
    )
    train, val = split_by_field(examples, 0.25, seed=0)
    net, history = fit_fcfnn(
        train, val, TrainConfig(width=32, depth=3, max_steps=300, eval_every=50)
    )
    model = DefocusModel.from_training(
        net,
        region_for(optics, TILE),
        optics,
        train,
        metadata={"preset": "fcfnn-20x-led", "training": {"history": history.to_dict()}},
    )
    return model.save(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Image files in every flavour the predictor meets."""
    d = tmp_path_factory.mktemp("images")
    scope = SimulatedScope("fcfnn-20x-led", size=TILE, focus_z_um=0.0, start_z_um=6.0, seed=5)
    image = scope.snap()
    px = scope.pixel_size_um
    files = {
        "full": d / "full.ome.tif",
        "stack": d / "stack.ome.zarr",
        "plain": d / "plain.tif",
        "pixel_only": d / "pixel_only.ome.tif",
        "wrong_pixel": d / "wrong_pixel.ome.tif",
        "constant": d / "constant.ome.tif",
        "small": d / "small.ome.tif",
        "nan": d / "nan.npy",
    }
    write_stack(FocalStack(image[None], [6.0], px, scope.optics, 0.0), files["full"])
    planes = []
    for z in (-10.0, 0.0, 10.0):
        scope.move_to(z)
        planes.append(scope.snap())
    write_stack(
        FocalStack(np.stack(planes), [-10.0, 0.0, 10.0], px, scope.optics, 0.0), files["stack"]
    )
    tifffile.imwrite(files["plain"], image)

    def ome(path: Path, data: np.ndarray, pixel: float) -> None:
        tifffile.imwrite(
            path,
            data,
            ome=True,
            metadata={"axes": "YX", "PhysicalSizeX": pixel, "PhysicalSizeY": pixel},
        )

    ome(files["pixel_only"], image, px)
    ome(files["wrong_pixel"], image, 2 * px)
    ome(files["constant"], np.full((TILE, TILE), 700, np.uint16), px)
    ome(files["small"], image[:100, :100], px)
    bad = image.astype(np.float32)
    bad[3, 3] = np.nan
    np.save(files["nan"], bad[None])
    return files


# --- defocus predict ---------------------------------------------------------------------


def test_predict_json_schema_per_image_and_per_plane(
    tiny_model: Path, images: dict[str, Path]
) -> None:
    code, out, err = _run(
        "defocus", "predict", images["full"], images["stack"], "--model", tiny_model, "--json"
    )
    assert code == 0, err
    entries = json.loads(out)
    assert len(entries) == 1 + 3
    for e in entries:
        assert {"file", "z_um", "sigma_um", "in_range"} <= set(e)
        assert set(e) <= {"file", "plane", "stage_z_um", "z_um", "sigma_um", "in_range", "notes"}
        assert isinstance(e["z_um"], float) and np.isfinite(e["z_um"])
        assert isinstance(e["sigma_um"], float) and e["sigma_um"] > 0
        assert isinstance(e["in_range"], bool)
    assert entries[0]["file"] == str(images["full"]) and "plane" not in entries[0]
    assert [e["plane"] for e in entries[1:]] == [0, 1, 2]
    assert [e["stage_z_um"] for e in entries[1:]] == [-10.0, 0.0, 10.0]
    # The table output works too.
    code, out, err = _run("defocus", "predict", images["full"], "--model", tiny_model)
    assert code == 0, err
    assert "full.ome.tif" in out and "move focus by" in out


def test_a_slide_predicted_region_by_region_gives_the_in_memory_prediction(
    tiny_model: Path,
) -> None:
    """The same centred tile grid, the same median: a plane read in regions of 2 × 2 tiles
    (odd margins, Dask chunks that cut tiles) gives predict()'s result."""
    import dask.array as da

    from focuskit.singleshot import DefocusModel

    model = DefocusModel.load(tiny_model)
    scope = SimulatedScope(
        "fcfnn-20x-led", size=5 * TILE + 37, focus_z_um=0.0, start_z_um=-8.0, seed=9
    )
    plane = scope.snap()[: 3 * TILE + 101]  # 3 × 5 tiles with uneven margins
    whole = model.predict(plane, pixel_size_um=scope.pixel_size_um, optics=scope.optics)
    lazy = da.from_array(plane, chunks=(300, 411))
    blocks = model.predict_blocks(lazy, pixel_size_um=scope.pixel_size_um, optics=scope.optics)
    assert len(blocks.tiles_z_um) == 15
    np.testing.assert_allclose(blocks.tiles_z_um, whole.tiles_z_um, rtol=1e-5, atol=1e-5)
    assert blocks.z_um == pytest.approx(whole.z_um, rel=1e-5, abs=1e-5)
    assert blocks.sigma_um == pytest.approx(whole.sigma_um, rel=1e-5, abs=1e-5)
    assert blocks.in_range == whole.in_range and blocks.notes == whole.notes
    # A region that does not fit one tile is refused as predict() refuses it.
    with pytest.raises(ConfigError, match="smaller than one"):
        model.predict_blocks(lazy[:100], pixel_size_um=scope.pixel_size_um)


def test_predict_with_workers_reads_an_ome_zarr_slide_region_by_region(
    tiny_model: Path, images: dict[str, Path]
) -> None:
    code, whole, err = _run("defocus", "predict", images["stack"], "--model", tiny_model, "--json")
    assert code == 0, err
    code, out, err = _run(
        "defocus",
        "predict",
        images["stack"],
        "--model",
        tiny_model,
        "--workers",
        "2",
        "--json",
    )
    assert code == 0, err
    for a, b in zip(json.loads(out), json.loads(whole), strict=True):
        assert a["z_um"] == pytest.approx(b["z_um"], rel=1e-5, abs=1e-5)
        assert a["sigma_um"] == pytest.approx(b["sigma_um"], rel=1e-5, abs=1e-5)
        assert a["in_range"] == b["in_range"] and a["stage_z_um"] == b["stage_z_um"]
    code, _, err = _run(
        "defocus",
        "predict",
        images["stack"],
        "--model",
        tiny_model,
        "--scheduler",
        "tcp://127.0.0.1:9",
    )
    _one_line_error(code, err, "cannot reach the Dask scheduler")


def test_predict_refuses_another_pixel_size_unless_forced(
    tiny_model: Path, images: dict[str, Path]
) -> None:
    code, _, err = _run(
        "defocus", "predict", images["wrong_pixel"], "--model", tiny_model, "--json"
    )
    _one_line_error(code, err, "wrong_pixel.ome.tif", "pixel size 0.65", "0.325", "--force")
    code, out, err = _run(
        "defocus", "predict", images["wrong_pixel"], "--model", tiny_model, "--json", "--force"
    )
    assert code == 0, err
    (entry,) = json.loads(out)
    assert any(n.startswith("forced:") for n in entry["notes"])


def test_plain_tiff_without_pixel_size_needs_the_flag(
    tiny_model: Path, images: dict[str, Path]
) -> None:
    code, _, err = _run("defocus", "predict", images["plain"], "--model", tiny_model, "--json")
    _one_line_error(code, err, "plain.tif", "pixel size", "--pixel-size")
    code, out, err = _run(
        "defocus",
        "predict",
        images["plain"],
        "--model",
        tiny_model,
        "--pixel-size",
        "0.325",
        "--json",
    )
    assert code == 0, err
    assert "assumed the model's" in " ".join(json.loads(out)[0]["notes"])


def test_ome_tiff_with_only_a_pixel_size_is_accepted_with_a_note(
    tiny_model: Path, images: dict[str, Path]
) -> None:
    code, out, err = _run(
        "defocus", "predict", images["pixel_only"], "--model", tiny_model, "--json"
    )
    assert code == 0, err
    (entry,) = json.loads(out)
    assert any("no optics metadata: assumed the model's" in n for n in entry["notes"])
    # Same pixels as the fully described file: the same prediction.
    code, out, _ = _run("defocus", "predict", images["full"], "--model", tiny_model, "--json")
    assert json.loads(out)[0]["z_um"] == pytest.approx(entry["z_um"])


@pytest.mark.parametrize(
    "name,extra,needles",
    [
        ("nan", ["--pixel-size", "0.325"], ["nan.npy", "NaN"]),
        ("constant", [], ["constant.ome.tif", "constant"]),
        ("small", [], ["small.ome.tif", "smaller than one 256² tile"]),
    ],
)
def test_unusable_images_are_refused_in_one_line(
    tiny_model: Path, images: dict[str, Path], name: str, extra: list[str], needles: list[str]
) -> None:
    code, _, err = _run("defocus", "predict", images[name], "--model", tiny_model, *extra)
    _one_line_error(code, err, *needles)


def test_predict_names_a_missing_model(images: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = _run("defocus", "predict", images["full"], "--model", tmp_path / "nope")
    _one_line_error(code, err, "model folder not found")


# --- defocus train / info ----------------------------------------------------------------

_FAST = [
    "--tile",
    "256",
    "--z-range",
    "-20",
    "20",
    "--z-step",
    "4",
    "--steps",
    "60",
    "--eval-every",
    "20",
    "--width",
    "16",
    "--depth",
    "2",
]


def test_train_simulate_writes_a_loadable_model(tmp_path: Path) -> None:
    from focuskit.singleshot import DefocusModel

    out = tmp_path / "m"
    code, stdout, err = _run("defocus", "train", "--simulate", "3", *_FAST, "-o", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["output"] == str(out) and summary["tile"] == 256
    assert summary["examples"]["train"] > 0 and summary["examples"]["validation"] > 0
    assert np.isfinite(summary["best_val_rmse_um"])
    assert {p.name for p in out.iterdir()} == {"config.json", "weights.safetensors"}
    model = DefocusModel.load(out)
    assert model.region.tile == 256 and model.net.config.width == 16
    code, stdout, err = _run("defocus", "info", out, "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["architecture"]["depth"] == 2 and info["parameters"] == model.net.parameter_count()
    assert (
        info["training_bytes_per_example"] > 0 and info["optics"]["illumination"]["kind"] == "led"
    )
    assert info["training"]["best_val_rmse_um"] == pytest.approx(summary["best_val_rmse_um"])
    code, stdout, err = _run("defocus", "info", out)
    assert code == 0 and "FCFNN" in stdout


def test_train_refuses_an_existing_output_before_training(tmp_path: Path) -> None:
    from focuskit.singleshot import train

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated before checking the output")

    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists"):
        train(out, simulate=3, data_progress=boom)
    code, _, err = _run("defocus", "train", "--simulate", "3", *_FAST, "-o", out)
    _one_line_error(code, err, "already exists", "--overwrite")
    assert (out / "keep.txt").read_text() == "mine"
    code, _, err = _run("defocus", "train", "-o", tmp_path / "x", *_FAST)
    _one_line_error(code, err, "--data", "--simulate")


def test_finetune_keeps_the_models_features(tiny_model: Path, tmp_path: Path) -> None:
    from focuskit.singleshot import DefocusModel

    out = tmp_path / "ft"
    code, stdout, err = _run(
        "defocus",
        "train",
        "--simulate",
        "2",
        "--z-range",
        "-20",
        "20",
        "--z-step",
        "5",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--finetune",
        tiny_model,
        "-o",
        out,
        "--json",
    )
    assert code == 0, err
    assert json.loads(stdout)["finetuned_from"] == str(tiny_model)
    base, tuned = DefocusModel.load(tiny_model), DefocusModel.load(out)
    assert tuned.region == base.region and tuned.net.config == base.net.config
    code, _, err = _run(
        "defocus",
        "train",
        "--simulate",
        "2",
        "--tile",
        "512",
        "--finetune",
        tiny_model,
        "-o",
        tmp_path / "no",
    )
    _one_line_error(code, err, "--tile 512", "256")


def _field(path: Path, seed: int, *, focus: float | None, illumination: object = None) -> None:
    from focuskit.simulate import simulate_stack

    sim = simulate_stack(
        "fcfnn-20x-led",
        size=256,
        z_um=[-8.0, -4.0, 0.0, 4.0, 8.0],
        focus_z_um=0.5,
        photons=1000,
        seed=seed,
        illumination=illumination,
    )
    write_stack(FocalStack(sim.data, sim.z_um, sim.pixel_size_um, sim.optics, focus), path)


def test_train_from_a_folder_of_stacks(tmp_path: Path) -> None:
    from focuskit.optics import DPC

    data = tmp_path / "data"
    data.mkdir()
    _field(data / "a.ome.tif", 1, focus=0.5)
    _field(data / "b.npy", 2, focus=0.5)
    _field(data / "c.ome.tif", 3, focus=None)  # ground truth from its DPC companion
    _field(
        data / "c.incoherent.ome.tif",
        3,
        focus=None,
        illumination=DPC(0.35, 0.48, source_step_na=0.08),
    )
    code, stdout, err = _run(
        "defocus",
        "train",
        "--data",
        data,
        "--tile",
        "256",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--width",
        "16",
        "--depth",
        "2",
        "--validation",
        "0.3",
        "-o",
        tmp_path / "m",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["examples"]["train"] + summary["examples"]["validation"] == 3 * 5
    # A stack with neither a companion nor a known focus is named, with the fix.
    _field(data / "d.ome.tif", 4, focus=None)
    code, _, err = _run(
        "defocus", "train", "--data", data, "--tile", "256", "--steps", "10", "-o", tmp_path / "m2"
    )
    _one_line_error(code, err, "d.ome.tif", "no ground-truth focus", "d.incoherent.ome.tif")


# --- singleshot_search -------------------------------------------------------------------


@dataclass
class Stub:
    """A predictor stub: the scope's true defocus (an oracle) plus an offset, or a fixed
    answer; counts calls."""

    scope: SimulatedScope | None = None
    z: float | None = None
    in_range: bool = True
    sigma: float = 0.3
    calls: list[float] = field(default_factory=list)

    def __call__(self, image: np.ndarray) -> object:
        assert image.ndim == 2
        z = self.z if self.z is not None else self.scope.defocus_um()  # type: ignore[union-attr]
        self.calls.append(z)
        return type("P", (), {"z_um": z, "sigma_um": self.sigma, "in_range": self.in_range})()


def _scope(**kwargs: object) -> SimulatedScope:
    options: dict[str, object] = {"size": 64, "focus_z_um": -3.0, "start_z_um": 12.0, "seed": 2}
    options.update(kwargs)
    return SimulatedScope("fcfnn-20x-led", **options)  # type: ignore[arg-type]


def test_an_oracle_focuses_in_one_move_and_one_verification() -> None:
    scope = _scope()
    result = singleshot_search(scope, Stub(scope))
    assert result.success and result.method == "singleshot"
    assert result.images == 2 == len(result.trace) == len(result.predictions)
    assert result.z_final_um == pytest.approx(-3.0)
    assert result.predictions[0]["z_pred_um"] == pytest.approx(
        15.0
    )  # z > 0: focal plane above → move down
    assert "in focus after 1 move" in result.message


def test_the_tiny_model_focuses_a_256_scope_in_few_images(tiny_model: Path) -> None:
    from focuskit.singleshot import DefocusModel

    model = DefocusModel.load(tiny_model)
    scope = _scope(size=TILE, focus_z_um=2.0, start_z_um=-6.0, seed=9)

    def predict(image: np.ndarray) -> object:
        p = model.predict(image, pixel_size_um=scope.pixel_size_um, optics=scope.optics)
        p.in_range = (
            True  # a tiny model finds every new field unfamiliar; test the loop, not the model
        )
        return p

    lo, hi = scope.z_limits_um
    result = singleshot_search(scope, predict, max_iterations=3, tolerance_um=1.0)
    assert 1 <= result.images <= 4
    assert all(lo <= z <= hi for z, _ in result.trace)
    assert lo <= result.z_final_um <= hi
    # The guard: never finish where the model's verification says it is
    # farther from focus than the start.
    start = abs(result.predictions[0]["z_pred_um"])
    final = [p for p in result.predictions if p["z_um"] == result.z_final_um][-1]
    assert abs(final["z_pred_um"]) <= start


def test_moves_are_clipped_to_the_limits_and_made_in_allowed_steps() -> None:
    scope = _scope(z_limits_um=(-5.0, 20.0), max_step_um=4.0)
    stub = Stub(z=-100.0)  # "move up by 100 µm"
    result = singleshot_search(scope, stub, max_iterations=3)
    assert result.z_final_um <= 20.0 and all(-5.0 <= z <= 20.0 for z, _ in result.trace)
    assert scope.moves >= 2  # 12 → 20 µm in steps of ≤ 4 µm
    assert "clipped to the stage limit" in result.message
    assert not result.success


def test_out_of_range_falls_back_to_brent() -> None:
    scope = _scope(size=48)
    result = singleshot_search(scope, Stub(z=1.0, in_range=False), fallback_range_um=20.0)
    assert "fell back to brent" in result.message and "not usable" in result.message
    assert result.predictions[0]["in_range"] is False
    assert result.images > 2 and result.images == len(result.trace)
    z0 = 12.0
    assert all(z0 - 10 - 1e-9 <= z <= z0 + 10 + 1e-9 for z, _ in result.trace)
    # No fallback: stop at the start, unsuccessful.
    scope = _scope(size=48)
    result = singleshot_search(scope, Stub(z=1.0, in_range=False), fallback=None)
    assert not result.success and result.z_final_um == 12.0 and result.images == 1
    # A prediction that is not a number is not usable either.
    scope = _scope(size=48)
    result = singleshot_search(scope, Stub(z=float("nan")), fallback=None)
    assert not result.success and "not finite" in result.message


def test_a_move_the_verification_calls_worse_is_undone() -> None:
    class Worse:
        def __init__(self) -> None:
            self.n = 0

        def __call__(self, image: np.ndarray) -> object:
            self.n += 1
            return type("P", (), {"z_um": 5.0 * self.n, "sigma_um": 0.2, "in_range": True})()

    scope = _scope(size=48)
    result = singleshot_search(scope, Worse(), max_iterations=2)
    assert result.z_final_um == 12.0 and not result.success
    assert "returned to the start" in result.message
    assert result.images == 3


class SignBlind:
    """One LED on a weak phase object: the right |z|, always reported positive, and no
    idea of the sign (P(z > 0) = 0.5)."""

    def __init__(self, scope: SimulatedScope) -> None:
        self.scope = scope

    def __call__(self, image: np.ndarray) -> object:
        z = abs(self.scope.defocus_um())
        return type("P", (), {"z_um": z, "sigma_um": 0.2, "in_range": True, "p_positive": 0.5})()


def test_a_wrong_sign_is_resolved_by_the_verification_image() -> None:
    # Defocus −8 µm, predicted +8: the first move goes the wrong way (to defocus −16); the
    # verification's larger |z| sends the stage the other way, to focus.
    scope = _scope(size=48, focus_z_um=-3.0, start_z_um=-11.0)
    result = singleshot_search(scope, SignBlind(scope), max_iterations=3)
    assert result.success and result.z_final_um == pytest.approx(-3.0)
    assert result.images == 3 and "the sign was wrong" in result.message
    assert result.predictions[0]["p_positive"] == 0.5
    # The old rule (always −z) walks away and gives up at the start.
    scope = _scope(size=48, focus_z_um=-3.0, start_z_um=-11.0)
    old = singleshot_search(scope, SignBlind(scope), max_iterations=3, sign_check=False)
    assert not old.success and old.z_final_um == pytest.approx(-11.0)
    # A right first guess needs no reversal.
    scope = _scope(size=48, focus_z_um=-3.0, start_z_um=5.0)
    result = singleshot_search(scope, SignBlind(scope))
    assert result.success and result.images == 2 and "sign" not in result.message


def test_the_sign_probability_chooses_the_first_direction() -> None:
    scope = _scope(size=48, focus_z_um=-3.0, start_z_um=-11.0)

    def sure_of_minus(image: np.ndarray) -> object:
        z = abs(scope.defocus_um())  # wrong sign on z, but P(z > 0) says "negative"
        return type("P", (), {"z_um": z, "sigma_um": 0.2, "in_range": True, "p_positive": 0.1})()

    result = singleshot_search(scope, sure_of_minus)
    assert result.success and result.images == 2 and result.z_final_um == pytest.approx(-3.0)


def test_pure_single_shot_and_the_measure_guard() -> None:
    scope = _scope(size=48)
    result = singleshot_search(scope, Stub(scope), verify=False)
    assert result.images == 1 and result.z_final_um == pytest.approx(-3.0)
    assert np.isnan(result.score_final) and "without a verification image" in result.message
    # guard="measure": the classic rule. Phase cells under one LED have the least contrast
    # in focus, so it undoes even a perfect move there — which is why it is not the default.
    scope = _scope(size=48)
    result = singleshot_search(scope, Stub(scope), guard="measure")
    assert result.z_final_um == 12.0 and not result.success
    assert "scored lower" in result.message


def test_the_camera_failing_returns_the_stage() -> None:
    inner = _scope(size=48)
    scope = FaultyScope(inner, fail_after_snaps=1)
    with pytest.raises(ScopeError, match="returned to z=12"):
        singleshot_search(scope, Stub(z=8.0), max_iterations=3)
    assert inner.z_um == 12.0
    # A failing predictor too.
    inner = _scope(size=48)

    def broken(image: np.ndarray) -> object:
        if inner.exposures > 1:
            raise ConfigError("model exploded")
        return type("P", (), {"z_um": 8.0, "sigma_um": 0.2, "in_range": True})()

    with pytest.raises(ScopeError, match="model exploded"):
        singleshot_search(inner, broken)
    assert inner.z_um == 12.0


def test_autofocus_dispatches_singleshot_and_keeps_the_classic_methods() -> None:
    scope = _scope(size=48)
    result = autofocus(scope, "singleshot", predict=Stub(scope), range_um=20.0)
    assert result.method == "singleshot" and result.success
    assert "singleshot" not in SEARCHES and set(SEARCHES) == {"brent", "gss", "scan"}
    with pytest.raises(ConfigError, match="needs predict"):
        autofocus(_scope(size=48), "singleshot")
    with pytest.raises(FocuskitError, match="singleshot"):
        autofocus(_scope(size=48), "nope")
    with pytest.raises(ConfigError, match="max_iterations"):
        singleshot_search(_scope(size=48), Stub(z=0.0), max_iterations=0)
    assert autofocus(_scope(size=48), "brent", "tenengrad", range_um=10.0).method == "brent"


def test_search_does_not_import_torch() -> None:
    code = (
        "import sys, focuskit.search; assert 'torch' not in sys.modules and "
        "'focuskit.singleshot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_autofocus_singleshot(tiny_model: Path) -> None:
    code, stdout, err = _run(
        "autofocus",
        "--scope",
        "sim:fcfnn-20x-led",
        "--method",
        "singleshot",
        "--model",
        tiny_model,
        "--start",
        "5",
        "--range",
        "20",
        "--seed",
        "3",
        "--json",
    )
    assert code in (0, 1), err
    out = json.loads(stdout)
    assert out["method"] == "singleshot" and out["images"] == len(out["trace"]) >= 1
    assert {"z_final_um", "images", "success", "trace", "predictions", "true_focus_um"} <= set(out)
    assert {"z_pred_um", "sigma_um", "in_range"} <= set(out["predictions"][0])
    # Another microscope's scope is refused before anything moves.
    code, _, err = _run(
        "autofocus",
        "--scope",
        "sim:deepr-20x-fluor",
        "--method",
        "singleshot",
        "--model",
        tiny_model,
    )
    _one_line_error(code, err, "does not match the model")


# --- the built-in model ------------------------------------------------------------------


def _builtin() -> bool:
    from focuskit.nn import builtin_models

    return "singleshot-20x-led" in builtin_models()


@pytest.mark.skipif(
    not _builtin(), reason="builtin:singleshot-20x-led not trained (python scripts/train_fcfnn.py)"
)
def test_builtin_model_predicts_and_focuses_a_held_out_field() -> None:
    from focuskit.singleshot import DefocusModel

    model = DefocusModel.load("builtin:singleshot-20x-led")
    scope = SimulatedScope(
        "fcfnn-20x-led", size=model.region.tile, focus_z_um=-3.0, start_z_um=12.0, seed=90210
    )
    p = model.predict(scope.snap(), pixel_size_um=scope.pixel_size_um, optics=scope.optics)
    assert p.z_um == pytest.approx(15.0, abs=3.0)
    result = singleshot_search(
        scope, lambda im: model.predict(im, pixel_size_um=scope.pixel_size_um, optics=scope.optics)
    )
    assert abs(result.z_final_um - scope.true_focus_um()) <= scope.optics.depth_of_field_um
    assert result.images <= 4
