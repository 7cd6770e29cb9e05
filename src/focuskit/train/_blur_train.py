"""Training the blur-score CNN: Adam on random 8-fold flipped/rotated mini-batches,
smooth-L1 loss on ``W`` (waves), validation MAE every ``eval_every`` steps on held-out
fields, the best model kept, cosine learning rate, checkpoint + resume, seeded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.train._loop import cosine_learning_rate, torch_threads
from focuskit.train._blur_data import BlurPatches
from focuskit.train._fcfnn_train import _load_checkpoint, _save_checkpoint, _state_to_numpy


@dataclass(frozen=True)
class BlurTrainConfig:
    channels: tuple[int, ...] = (16, 24, 48, 64)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_steps: int = 6000
    eval_every: int = 250
    patience: int = 8  # evaluations without improvement before stopping
    seed: int = 0
    # Conv layers are big enough for two threads to pay (unlike the FCFNN's tiny matmuls).
    num_threads: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.eval_every < 1:
            raise ConfigError("batch_size, max_steps and eval_every must be ≥ 1")
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise ConfigError(f"channels needs ≥ 2 positive widths (stem + stages), got {self.channels}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}


@dataclass
class BlurTrainHistory:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_mae_waves: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val_mae_waves: float = math.inf
    stopped_early: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def augment_d4(batch: Any, k: int) -> Any:
    """One of the 8 symmetries of the square (k = 0…7): rotate by k·90°, flip for k ≥ 4."""
    import torch

    out = torch.rot90(batch, k % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


def fit_blur_cnn(
    train: BlurPatches,
    validation: BlurPatches,
    config: BlurTrainConfig = BlurTrainConfig(),
    *,
    init: Any | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, BlurTrainHistory]:
    """Train a :class:`~focuskit.models.BlurCNN` (or fine-tune ``init``); returns the best
    model by validation MAE and the history. ``progress(step, max_steps, val_mae)``."""
    import torch

    if len(train) == 0 or len(validation) == 0:
        raise ConfigError("training and validation sets must both hold patches")
    with torch_threads(config.num_threads):
        return _fit(train, validation, config, init, checkpoint_dir, resume, progress)


def _fit(train: BlurPatches, validation: BlurPatches, config: BlurTrainConfig, init: Any | None,
         checkpoint_dir: str | os.PathLike[str] | None, resume: bool,
         progress: Callable[[int, int, float], None] | None) -> tuple[Any, BlurTrainHistory]:
    import torch

    from focuskit.models import BlurCNN, BlurCNNConfig

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = init if init is not None else BlurCNN(BlurCNNConfig(channels=tuple(config.channels)))
    net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    x_train = torch.from_numpy(train.images)  # float16, cast per batch (half the memory)
    y_train = torch.from_numpy(train.waves.astype(np.float32))
    x_val = torch.from_numpy(validation.images)
    y_val = validation.waves.astype(np.float64)

    def learning_rate(k: int) -> float:
        return cosine_learning_rate(config.learning_rate, k, config.max_steps)

    history = BlurTrainHistory()
    best = _state_to_numpy(net.state_dict())
    step = 0
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume:
        if ckpt is None or not (ckpt / "checkpoint.json").is_file():
            raise ConfigError(f"nothing to resume: no checkpoint in {ckpt}")
        step, history, best = _load_checkpoint(ckpt, net, optimizer, rng, BlurTrainHistory)

    def batch(x: torch.Tensor) -> torch.Tensor:
        return x.float().unsqueeze(1).contiguous(memory_format=torch.channels_last)

    def evaluate() -> float:
        net.eval()
        with torch.no_grad():
            w = torch.cat([net(batch(x_val[i:i + 256])) for i in range(0, len(x_val), 256)]).double().numpy()
        net.train()
        return float(np.mean(np.abs(w - y_val)))

    t0 = time.perf_counter()
    net.train()
    bad_evals = 0
    running = 0.0
    while step < config.max_steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step)
        idx = torch.from_numpy(rng.integers(0, len(x_train), config.batch_size))
        x = augment_d4(x_train[idx], int(rng.integers(8)))
        loss = torch.nn.functional.smooth_l1_loss(net(batch(x)), y_train[idx], beta=0.25)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        step += 1
        running += loss.item()
        if step % config.eval_every == 0 or step == config.max_steps:
            mae = evaluate()
            history.steps.append(step)
            history.train_loss.append(running / (step - (history.steps[-2] if len(history.steps) > 1 else 0)))
            history.val_mae_waves.append(mae)
            running = 0.0
            if mae < history.best_val_mae_waves:
                history.best_val_mae_waves, history.best_step = mae, step
                best = _state_to_numpy(net.state_dict())
                bad_evals = 0
            else:
                bad_evals += 1
            if progress is not None:
                progress(step, config.max_steps, mae)
            if ckpt is not None:
                _save_checkpoint(ckpt, net, optimizer, step, history, best, rng)
            if bad_evals >= config.patience:
                history.stopped_early = True
                break
    net.load_state_dict({k: torch.from_numpy(v) for k, v in best.items()})
    net.eval()
    history.seconds += time.perf_counter() - t0
    return net, history


def split_patches_by_field(patches: BlurPatches, validation_fraction: float = 0.15, *,
                           seed: int = 0) -> tuple[BlurPatches, BlurPatches]:
    """Train/validation split by imaged object, so no object is seen on both sides."""
    fields = np.unique(patches.field)
    if len(fields) < 2:
        raise ConfigError("need patches from ≥ 2 fields to split into training and validation")
    rng = np.random.default_rng(seed)
    n_val = min(len(fields) - 1, max(1, round(validation_fraction * len(fields))))
    val_fields = rng.choice(fields, n_val, replace=False)
    is_val = np.isin(patches.field, val_fields)
    return patches.subset(~is_val), patches.subset(is_val)
