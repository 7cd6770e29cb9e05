"""Training the blur-score CNN: Adam on random 8-fold flipped/rotated mini-batches,
smooth-L1 loss on ``W`` (waves), validation MAE every ``eval_every`` steps on held-out
fields, the best model kept, cosine learning rate, checkpoint + resume, seeded.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from focuskit._errors import ConfigError
from focuskit.fewshot._data import BlurPatches
from focuskit.nn import (
    Distributed,
    History,
    Progress,
    Schedule,
    augment_d4,
    distributed,
    restore_layers,
    run_training,
    split_fields,
    torch_threads,
)


@dataclass(frozen=True)
class BlurTrainConfig:
    """Architecture and training settings of :func:`fit_blur_cnn`.

    Attributes
    ----------
    channels : tuple of int
        Widths of the stem and of each further stage (≥ 2 entries, all ≥ 1).
    learning_rate : float
        AdamW peak learning rate (cosine schedule).
    weight_decay : float
        AdamW weight decay.
    batch_size : int
        Patches per step.
    max_steps : int
        Optimizer steps at most.
    eval_every : int
        Steps between validations (and checkpoints).
    patience : int
        Evaluations without improvement before stopping early.
    seed : int
        Seed of the network's initialization and the batches.
    num_threads : int
        torch threads for training.

    Raises
    ------
    ConfigError
        When a count is < 1 or ``channels`` has fewer than 2 positive widths.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10].
    """

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
            raise ConfigError(
                f"channels needs ≥ 2 positive widths (stem + stages), got {self.channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (``channels`` as a list).

        Returns
        -------
        d : dict
        """
        return {**asdict(self), "channels": list(self.channels)}


@dataclass
class BlurTrainHistory(History):
    """Loss curve of one blur-CNN training: mean training loss and validation MAE (waves).

    Attributes
    ----------
    steps : list of int
        Step of each evaluation.
    train_loss : list of float
        Mean smooth-L1 training loss over each evaluation interval.
    val_mae_waves : list of float
        Validation mean absolute error of ``W`` (waves).
    best_val_mae_waves : float
        Best validation MAE (waves); the network returned is the one that reached it.
    best_step : int
        Step of the best validation.
    stopped_early : bool
        Whether training stopped on ``patience``.
    seconds : float
        Training time (s).
    """

    TRAIN: ClassVar[dict[str, str]] = {"loss": "train_loss"}
    VALIDATION: ClassVar[dict[str, str]] = {"val_mae_waves": "val_mae_waves"}
    BEST: ClassVar[str] = "best_val_mae_waves"

    train_loss: list[float] = field(default_factory=list)
    val_mae_waves: list[float] = field(default_factory=list)
    best_val_mae_waves: float = math.inf


def _resume_settings(config: BlurTrainConfig, init: Any | None = None) -> dict[str, Any]:
    """What a resumed training must share with its checkpoint: the network's widths."""
    return {"channels": list(init.config.channels if init is not None else config.channels)}


def fit_blur_cnn(
    train: BlurPatches,
    validation: BlurPatches,
    config: BlurTrainConfig = BlurTrainConfig(),
    *,
    init: Any | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> tuple[Any, BlurTrainHistory]:
    """Train a :class:`~focuskit.fewshot.BlurCNN` (or fine-tune ``init``).

    AdamW on mini-batches of ``batch_size`` patches, each batch turned by one of the 8
    symmetries of the square; smooth-L1 loss (β = 0.25 waves) on the edge defocus ``W``;
    validation MAE every ``eval_every`` steps on held-out objects, the best network kept,
    early stopping, cosine learning rate, checkpoint + resume; seeded.

    Parameters
    ----------
    train, validation : BlurPatches
        Patches of different objects.
    config : BlurTrainConfig
        Architecture and training settings.
    init : BlurCNN, optional
        A BlurCNN to fine-tune.
    checkpoint_dir : str or os.PathLike, optional
        Folder for a checkpoint at every evaluation.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir``.
    progress : callable, optional
        ``progress(step, max_steps, {"val_mae_waves": …})`` after every evaluation.

    Returns
    -------
    net : BlurCNN
        The network with the best validation MAE.
    history : BlurTrainHistory
        Its loss curves.

    Raises
    ------
    ConfigError
        When the training or validation set is empty.
    ModelFileError
        ``resume`` from a damaged checkpoint, or one of other widths.

    Notes
    -----
    Under ``torchrun`` each process takes ``batch_size / N`` patches of the global batch
    (the same symmetry for all), BatchNorm normalizes over the global batch and DDP averages
    the gradients (:func:`focuskit.nn.distributed`): the loss curve is the single
    process's up to rounding. A ``batch_size`` not divisible by N is refused.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10].
    """
    if len(train) == 0 or len(validation) == 0:
        raise ConfigError("training and validation sets must both hold patches")
    with distributed() as dist, torch_threads(dist.threads(config.num_threads)):
        dist.check_batch(config.batch_size)
        return _fit(train, validation, config, init, checkpoint_dir, resume, progress, dist)


def _fit(
    train: BlurPatches,
    validation: BlurPatches,
    config: BlurTrainConfig,
    init: Any | None,
    checkpoint_dir: str | os.PathLike[str] | None,
    resume: bool,
    progress: Progress | None,
    dist: Distributed,
) -> tuple[Any, BlurTrainHistory]:
    import torch

    from focuskit.fewshot._network import BlurCNN, BlurCNNConfig

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = init if init is not None else BlurCNN(BlurCNNConfig(channels=tuple(config.channels)))
    device = dist.device
    net = net.to(device=device, memory_format=torch.channels_last)
    model = dist.wrap(net)  # DDP under torchrun; checkpoints keep using `net`
    part = dist.shard(config.batch_size)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    x_train = torch.from_numpy(train.images)  # float16, cast per batch (half the memory)
    y_train = torch.from_numpy(train.waves.astype(np.float32))
    x_val = torch.from_numpy(validation.images)
    y_val = validation.waves.astype(np.float64)

    def batch(x: torch.Tensor) -> torch.Tensor:
        return x.to(device).float().unsqueeze(1).contiguous(memory_format=torch.channels_last)

    def step(k: int, rng: np.random.Generator) -> dict[str, float]:
        # Every process draws the global batch (generators in step) and keeps its part.
        idx = torch.from_numpy(rng.integers(0, len(x_train), config.batch_size)[part])
        x = augment_d4(x_train[idx], int(rng.integers(8)))
        loss = torch.nn.functional.smooth_l1_loss(
            model(batch(x)), y_train[idx].to(device), beta=0.25
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        net.eval()
        with torch.no_grad():
            w = (
                torch.cat([net(batch(x_val[i : i + 256])) for i in range(0, len(x_val), 256)])
                .double()
                .cpu()
                .numpy()
            )
        net.train()
        return {"val_mae_waves": float(np.mean(np.abs(w - y_val)))}

    history = BlurTrainHistory()
    run_training(
        nets={"model": net},
        optimizers={"model": optimizer},
        step=step,
        validate=validate,
        metric="val_mae_waves",
        keep="model",
        history=history,
        rng=rng,
        seed=config.seed,
        schedule=Schedule(
            config.max_steps,
            config.eval_every,
            {"model": config.learning_rate},
            patience=config.patience,
        ),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        settings=_resume_settings(config, init),
    )
    return restore_layers(net).cpu(), history


def split_patches_by_field(
    patches: BlurPatches, validation_fraction: float = 0.15, *, seed: int = 0
) -> tuple[BlurPatches, BlurPatches]:
    """Train/validation split by imaged object, so no object is seen on both sides.

    See :func:`focuskit.nn.split_fields`.

    Parameters
    ----------
    patches : BlurPatches
        The patches, with their ``field`` ids.
    validation_fraction : float
        Fraction of objects held out.
    seed : int
        Seed of the split.

    Returns
    -------
    train : BlurPatches
        Patches of the training objects.
    validation : BlurPatches
        Patches of the held-out objects.
    """
    is_val = split_fields(patches.field, validation_fraction, seed=seed)
    return patches.subset(~is_val), patches.subset(is_val)
