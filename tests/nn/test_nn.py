"""focuskit.nn: the training loop every system uses, the validation hold-out, model folders."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.nn import (
    BUILTIN_ALIASES,
    History,
    Schedule,
    builtin_models,
    cosine_learning_rate,
    read_model_folder,
    resolve_model,
    run_training,
    split_fields,
    split_one_field,
    write_model_folder,
)


@dataclass
class _LineHistory(History):
    TRAIN: ClassVar[dict[str, str]] = {"loss": "train_loss"}
    VALIDATION: ClassVar[dict[str, str]] = {"val_mse": "val_mse"}
    BEST: ClassVar[str] = "best_val_mse"

    train_loss: list[float] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)
    best_val_mse: float = math.inf


def _fit_line(
    max_steps: int,
    *,
    eval_every: int = 10,
    patience: int | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    lr: float = 0.05,
):
    """A 1-parameter-pair linear model y = a·x + b fitted to y = 3x − 1 by SGD."""
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
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
        with torch.no_grad():
            return {"val_mse": float((net(x) - y).square().mean())}

    def progress(done: int, total: int, values: dict[str, float]) -> None:
        if stop_at is not None and done == stop_at:
            raise KeyboardInterrupt

    history = _LineHistory()
    run_training(
        nets={"net": net},
        optimizers={"net": opt},
        step=step,
        validate=validate,
        metric="val_mse",
        keep="net",
        history=history,
        schedule=Schedule(max_steps, eval_every, {"net": lr}, patience=patience),
        rng=rng,
        seed=0,
        checkpoint_dir=checkpoint,
        resume=resume,
        progress=progress,
    )
    return net, history


def test_the_loop_lowers_the_loss_and_keeps_the_best_state() -> None:
    net, history = _fit_line(200)
    assert history.steps == list(range(10, 201, 10))
    assert history.val_mse[-1] < 0.05 * history.val_mse[0]
    assert (
        history.best_val_mse == min(history.val_mse)
        and history.best_step == history.steps[int(np.argmin(history.val_mse))]
    )
    with __import__("torch").no_grad():
        final = float((net(__import__("torch").tensor([[0.5]])) - 0.5).abs())
    assert final < 0.2  # y(0.5) = 0.5
    assert not net.training  # left in eval mode


def test_training_means_cover_the_steps_since_the_last_evaluation() -> None:
    # 25 steps, evaluations at 10, 20 and 25: the last mean is over 5 steps, not divided by 10;
    # a term a step does not report (every other step here) is averaged over the steps that do.
    import torch

    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)

    @dataclass
    class Terms(History):
        TRAIN: ClassVar[dict[str, str]] = {"a": "a", "b": "b"}
        VALIDATION: ClassVar[dict[str, str]] = {"v": "v"}
        BEST: ClassVar[str] = "best_v"
        a: list[float] = field(default_factory=list)
        b: list[float] = field(default_factory=list)
        v: list[float] = field(default_factory=list)
        best_v: float = math.inf

    def step(k: int, rng: np.random.Generator) -> dict[str, float]:
        return {"a": float(k), **({"b": 2.0} if k % 2 else {})}

    history = Terms()
    run_training(
        nets={"net": net},
        optimizers={"net": opt},
        step=step,
        validate=lambda: {"v": 1.0},
        metric="v",
        keep="net",
        history=history,
        schedule=Schedule(25, 10, {"net": 0.0}),
        rng=np.random.default_rng(0),
        seed=0,
    )
    assert history.steps == [10, 20, 25]
    assert history.a == [4.5, 14.5, 22.0]  # means of k = 0…9, 10…19, 20…24
    assert history.b == [2.0, 2.0, 2.0]


def test_early_stopping_after_patience_evaluations_without_improvement() -> None:
    _, history = _fit_line(400, lr=0.0, patience=3)  # never improves after the first evaluation
    assert history.stopped_early and history.steps == [10, 20, 30, 40]


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    full_net, full = _fit_line(60, checkpoint=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # interrupted at step 40: the last checkpoint is step 30
        _fit_line(60, checkpoint=tmp_path / "part", stop_at=40)
    assert json.loads((tmp_path / "part" / "checkpoint.json").read_text())["step"] == 30
    net, resumed = _fit_line(60, checkpoint=tmp_path / "part", resume=True)
    assert resumed.steps == full.steps
    np.testing.assert_allclose(resumed.val_mse, full.val_mse, rtol=1e-6)
    np.testing.assert_allclose(
        net.weight.detach().numpy(), full_net.weight.detach().numpy(), rtol=1e-6
    )
    with pytest.raises(ConfigError, match="nothing to resume"):
        _fit_line(60, checkpoint=tmp_path / "none", resume=True)


def test_cosine_schedule_runs_from_the_base_rate_to_one_percent() -> None:
    assert cosine_learning_rate(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_learning_rate(0.1, 100, 100) == pytest.approx(0.001)
    assert cosine_learning_rate(0.1, 50, 100) == pytest.approx(0.1 * (0.01 + 0.99 * 0.5))


def test_split_holds_out_whole_fields() -> None:
    field_ids = np.repeat(np.arange(20), 7)
    held = split_fields(field_ids, 0.15, seed=3)
    assert set(field_ids[held]).isdisjoint(field_ids[~held])
    assert len(set(field_ids[held])) == 3
    assert np.array_equal(held, split_fields(field_ids, 0.15, seed=3))
    assert split_fields(np.array([0, 1]), 0.9).sum() == 1  # never every field
    with pytest.raises(ConfigError, match="two fields"):
        split_fields(np.zeros(5, int))
    with pytest.raises(ConfigError, match="validation_fraction"):
        split_fields(field_ids, 1.5)
    one = split_one_field(np.zeros(12, int))
    assert one.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]


def test_model_folders_are_written_whole_and_never_over_an_existing_one(tmp_path: Path) -> None:
    target = tmp_path / "model"
    write_model_folder(target, {"kind": "demo"}, {"net.w": np.arange(3, dtype=np.float32)})
    path, config, tensors = read_model_folder(target)
    assert path == target and config == {"kind": "demo"} and tensors["net.w"].tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="already exists"):
        write_model_folder(target, {"kind": "other"}, {})
    write_model_folder(
        target, {"kind": "other"}, {"net.w": np.zeros(1, np.float32)}, overwrite=True
    )
    assert read_model_folder(target)[1] == {"kind": "other"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left behind
    (target / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"missing config.json"):
        read_model_folder(target)


def test_builtins_resolve_by_new_and_old_name() -> None:
    names = builtin_models()
    assert {"singleshot-20x-led", "fewshot-widefield", "refocus-40x-fluor"} <= set(names)
    for old, new in BUILTIN_ALIASES.items():
        assert resolve_model(f"builtin:{old}") == resolve_model(f"builtin:{new}")
    with pytest.raises(ConfigError, match="available"):
        resolve_model("builtin:nope")
