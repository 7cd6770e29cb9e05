"""Issue 17, item 10 (and the rest of a resume's contract): a checkpoint that cannot be
resumed — truncated, not safetensors, a damaged JSON, another architecture or other
settings — is refused in one line naming the file and the fix, *before* the training data
are made; a checkpoint that can be resumed continues exactly where it stopped.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from focuskit import ConfigError, ModelFileError
from focuskit.nn import History, Schedule, read_weights, run_training


@dataclass
class _LineHistory(History):
    TRAIN: ClassVar[dict[str, str]] = {"loss": "train_loss"}
    VALIDATION: ClassVar[dict[str, str]] = {"val_mse": "val_mse"}
    BEST: ClassVar[str] = "best_val_mse"

    train_loss: list[float] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)
    best_val_mse: float = math.inf


class _Stop(Exception):
    pass


def _fit_line(
    checkpoint: Path | None,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    width: int = 1,
    lr: float = 0.05,
    patience: int | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[Any, _LineHistory]:
    """y = 3x − 1 fitted by SGD with input dropout (so torch's generator matters)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(1, width))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x - 1

    def step(k: int, rng: np.random.Generator) -> dict[str, float]:
        idx = torch.from_numpy(rng.integers(0, 64, 8))
        loss = (net(x[idx]) - y[idx]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        net.eval()
        with torch.no_grad():
            value = float((net(x) - y).square().mean())
        net.train()
        return {"val_mse": value}

    def progress(done: int, total: int, values: dict[str, float]) -> None:
        if done == stop_at:
            raise _Stop

    history = _LineHistory()
    run_training(
        nets={"net": net},
        optimizers={"net": opt},
        step=step,
        validate=validate,
        metric="val_mse",
        keep="net",
        history=history,
        schedule=Schedule(60, 10, {"net": lr}, patience=patience),
        rng=np.random.default_rng(0),
        seed=0,
        checkpoint_dir=checkpoint,
        resume=resume,
        progress=progress,
        settings=settings,
    )
    return net, history


def _interrupted(folder: Path, stop_at: int = 40, **kwargs: Any) -> Path:
    """A run stopped at ``stop_at``: its last checkpoint is the evaluation before."""
    with pytest.raises(_Stop):
        _fit_line(folder, stop_at=stop_at, **kwargs)
    return folder


def _same(a: tuple[Any, _LineHistory], b: tuple[Any, _LineHistory]) -> None:
    (net_a, hist_a), (net_b, hist_b) = a, b
    assert hist_a.steps == hist_b.steps and hist_a.train_loss == hist_b.train_loss
    assert hist_a.val_mse == hist_b.val_mse and hist_a.best_step == hist_b.best_step
    for (name, va), vb in zip(net_a.state_dict().items(), net_b.state_dict().values(), strict=True):
        assert np.array_equal(va.numpy(), vb.numpy()), name


# ------------------------------------------------------------------ damaged checkpoints
DAMAGE = {
    "truncated": (lambda b: b[: len(b) // 2], "not a complete safetensors file"),
    "cut in the header": (lambda b: b[:20], "not a complete safetensors file"),
    "empty": (lambda b: b"", "is empty"),
    "garbage": (lambda b: b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}" * 3, "not a complete"),
    "a pickle": (lambda b: pickle.dumps({"net.1.weight": [1.0]}), "never loads pickles"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_file_is_refused_in_one_line(damage: str, tmp_path: Path) -> None:
    folder = _interrupted(tmp_path / "ckpt")
    spoil, needle = DAMAGE[damage]
    file = folder / "checkpoint.safetensors"
    file.write_bytes(spoil(file.read_bytes()))
    with pytest.raises(ModelFileError) as caught:
        _fit_line(folder, resume=True)
    assert caught.value.path == str(file) and needle in str(caught.value)
    assert "\n" not in str(caught.value) and "without --resume" in str(caught.value)


def test_a_damaged_json_copy_does_not_stop_a_resume(tmp_path: Path) -> None:
    # The JSON state lives in the safetensors header too: checkpoint.json is a readable copy.
    full = _fit_line(tmp_path / "full")
    folder = _interrupted(tmp_path / "ckpt")
    meta = folder / "checkpoint.json"
    meta.write_text(meta.read_text()[: len(meta.read_text()) // 2])
    _same(_fit_line(folder, resume=True), full)


def test_a_checkpoint_torn_by_a_kill_between_its_two_files_resumes_exactly(
    tmp_path: Path,
) -> None:
    # Killed after the tensors were renamed into place but before the JSON copy was:
    # the JSON says step 20, the tensors (and the state in their header) step 30.
    full = _fit_line(tmp_path / "full")
    older = (_interrupted(tmp_path / "old", stop_at=30) / "checkpoint.json").read_text()
    folder = _interrupted(tmp_path / "ckpt", stop_at=40)
    (folder / "checkpoint.json").write_text(older)
    assert json.loads(older)["step"] == 20
    _same(_fit_line(folder, resume=True), full)


def _without_header_state(folder: Path) -> None:
    """Rewrite the checkpoint as focuskit wrote it before 0.3: the state only in the JSON."""
    from safetensors.numpy import save_file

    file = folder / "checkpoint.safetensors"
    tensors = read_weights(file)
    del tensors["torch_rng.cpu"]
    save_file(tensors, str(file))


def test_a_checkpoint_of_an_older_focuskit_still_resumes(tmp_path: Path) -> None:
    folder = _interrupted(tmp_path / "ckpt")
    _without_header_state(folder)
    _, history = _fit_line(folder, resume=True)
    assert history.steps == [10, 20, 30, 40, 50, 60]


@pytest.mark.parametrize(
    ("spoil", "needle"),
    [
        (lambda t: t[: len(t) // 2], "is not valid JSON"),
        (lambda t: "[]", "must be an object, got a list"),
        (lambda t: json.dumps({**json.loads(t), "step": "30"}), '"step" must be a whole number'),
        (lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != "rng"}), '"rng"'),
        (
            lambda t: json.dumps({**json.loads(t), "history": {"val_mse": "low"}}),
            '"history.val_mse" is "low"',
        ),
        (
            lambda t: json.dumps({**json.loads(t), "adam_steps": {}}),
            'no Adam step counts for "net"',
        ),
        (
            lambda t: json.dumps({**json.loads(t), "rng": {"bit_generator": "PCG64", "state": {}}}),
            "cannot restore",
        ),
    ],
)
def test_a_damaged_json_state_is_refused_in_one_line(
    spoil: Any, needle: str, tmp_path: Path
) -> None:
    folder = _interrupted(tmp_path / "ckpt")
    _without_header_state(folder)  # then checkpoint.json is the state
    meta = folder / "checkpoint.json"
    meta.write_text(spoil(meta.read_text()))
    with pytest.raises(ModelFileError) as caught:
        _fit_line(folder, resume=True)
    assert needle in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_another_architecture_names_the_tensor(tmp_path: Path) -> None:
    folder = _interrupted(tmp_path / "ckpt")
    with pytest.raises(ModelFileError, match=r'"net\.1\.weight" has shape \(1, 1\)'):
        _fit_line(folder, resume=True, width=2)


def test_other_settings_are_refused_naming_the_setting(tmp_path: Path) -> None:
    folder = _interrupted(tmp_path / "ckpt", settings={"width": 1, "channels": (4, 8)})
    with pytest.raises(ModelFileError, match=r"trained with channels \[4, 8\], this run asks for"):
        _fit_line(folder, resume=True, settings={"width": 1, "channels": (4, 16)})
    _, history = _fit_line(folder, resume=True, settings={"width": 1, "channels": [4, 8]})
    assert history.steps[-1] == 60


def test_no_checkpoint_is_nothing_to_resume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        _fit_line(tmp_path / "none", resume=True)


def test_early_stopping_counts_the_evaluations_before_the_interruption(tmp_path: Path) -> None:
    # lr 0: only the first evaluation "improves"; patience 3 stops after step 40. The count
    # of evaluations without improvement (1 at the step-20 checkpoint) must survive a resume.
    _, full = _fit_line(None, lr=0.0, patience=3)
    assert full.stopped_early and full.steps == [10, 20, 30, 40]
    folder = _interrupted(tmp_path / "ckpt", stop_at=30, lr=0.0, patience=3)
    _, resumed = _fit_line(folder, resume=True, lr=0.0, patience=3)
    assert resumed.steps == full.steps and resumed.stopped_early


# --------------------------------------------------------- refused before the data are made
def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("training data were made before the checkpoint was checked")


def _fcfnn_checkpoint(folder: Path) -> Path:
    from focuskit.singleshot import TrainConfig, fit_fcfnn, simulate_examples, split_by_field

    ex = simulate_examples(
        4, size=128, tile=128, z_um=np.arange(-10.0, 10.1, 5.0), seed=3, incoherent_every=0
    )
    config = TrainConfig(width=16, depth=2, max_steps=20, eval_every=10, z_scale_um=10.0)
    fit_fcfnn(*split_by_field(ex, 0.25, seed=0), config, checkpoint_dir=folder)
    return folder


def test_singleshot_train_resume_refuses_another_width_before_simulating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import focuskit.singleshot._recipe as recipe

    ckpt = _fcfnn_checkpoint(tmp_path / "ckpt")
    monkeypatch.setattr(recipe, "simulate_examples", _never)
    args = ("singleshot", "train", "--simulate", 4, "--tile", 128, "--depth", 2)
    out = ("--checkpoint-dir", ckpt, "--resume", "-o", tmp_path / "model")
    code, _, err = run_cli(*args, "--width", 32, *out)
    one_line_error(code, err, "trained with width 16, this run asks for 32", "--resume")

    file = ckpt / "checkpoint.safetensors"
    file.write_bytes(file.read_bytes()[:-100])
    code, _, err = run_cli(*args, "--width", 16, *out)
    one_line_error(code, err, "checkpoint.safetensors", "not a complete safetensors file")
    assert not (tmp_path / "model").exists()


def test_fewshot_and_refocus_train_check_the_checkpoint_before_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import focuskit.fewshot._recipe as few_recipe
    import focuskit.refocus._recipe as refocus_recipe
    from focuskit import fewshot, refocus

    monkeypatch.setattr(few_recipe, "simulate_blur_patches", _never)
    monkeypatch.setattr(refocus_recipe, "simulate_refocus_tiles", _never)
    few = _interrupted(tmp_path / "few", settings={"channels": [16, 24, 48, 64]})
    with pytest.raises(ModelFileError, match="trained with channels"):
        fewshot.train(
            checkpoint_dir=few, resume=True, config=fewshot.BlurTrainConfig(channels=(8, 16))
        )
    (few / "checkpoint.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"checkpoint\.safetensors: is empty"):
        fewshot.train(checkpoint_dir=few, resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        fewshot.train(checkpoint_dir=None, resume=True)

    widths = [16, 32, 64, 96, 128, 192]
    deep = _interrupted(
        tmp_path / "deepr",
        settings={"generator_channels": widths, "discriminator_channels": [16, 32, 48, 64, 96]},
    )
    with pytest.raises(ModelFileError, match=r"trained with generator_channels \[16, 32"):
        refocus.train(checkpoint_dir=deep, resume=True, generator_channels=(8, 8, 8, 8, 8, 8))
