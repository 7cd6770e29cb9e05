"""Training the FCFNN (Pinkard et al., Note S3): Adam on mini-batches, validation RMSE
every ``eval_every`` steps, early stopping with the best model kept, checkpoint + resume.

Beyond the paper: a σ head trained by the Gaussian negative log-likelihood
``log σ + ½·(z − ẑ)²/σ²`` on the *detached* error, after a warm-up. The mean keeps its
MSE loss throughout (a joint NLL let σ silence hard examples and destabilized the mean:
validation RMSE jumped from 2.3 to 26 µm in our first run). Gradients are clipped to
norm 5; the learning rate follows a cosine decay to 1 % of its start. A sign head (also
detached) learns P(z > 0) by binary cross-entropy on soft labels ``sigmoid(z / 0.5 µm)``
(a plane within a fraction of a µm of focus has no meaningful sign).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from focuskit._errors import ConfigError
from focuskit.nn import (
    Distributed,
    History,
    Progress,
    Schedule,
    distributed,
    restore_layers,
    run_training,
    torch_threads,
)
from focuskit.singleshot._data import DefocusExamples

# Width of the sign head's soft labels sigmoid(z / SIGN_SOFTNESS_UM): within a fraction of
# a µm of focus the sign of z means nothing.
SIGN_SOFTNESS_UM = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Network and training settings of :func:`fit_fcfnn` (Note S3 [1]_, and beyond).

    Attributes
    ----------
    width : int
        Units per hidden layer. Default 100.
    depth : int
        Hidden layers. Default 10.
    input_dropout : float
        Dropout rate on the input, in [0, 1). Default 0.1.
    predict_sigma : bool
        Train a σ head by the Gaussian NLL after the warm-up. Default True.
    predict_sign : bool
        Train a sign head, P(z > 0), by binary cross-entropy. Default True.
    magnitude : bool
        The main head learns ``|z|`` (MSE on ``|ẑ| − |z|``) and the sign head gives the
        sign (:class:`FCFNNConfig`). Default False. Where one LED cannot see the sign (weak
        phase samples unlike the training data) a signed regression learns the mean of
        ±z (≈ 0) instead of ``|z|``; on samples like its training data the signed model
        did better in the closed loop (README, issue 18).
    z_scale_um : float
        Outputs are in units of this (µm). Default 30.
    learning_rate : float
        Adam's start rate (cosine decay to 1 % of it). Default 1e-3.
    batch_size : int
        Examples per step (≥ 1). Default 64.
    max_steps : int
        Training steps (≥ 1). Default 4000.
    eval_every : int
        Steps between validations (≥ 1). Default 100.
    patience : int
        Evaluations without improvement before stopping. Default 10.
    mse_warmup : float
        Fraction of ``max_steps`` trained on MSE before the NLL, in [0, 1]. Default 0.3.
    seed : int
        Seed of initialization, batches and dropout. Default 0.
    num_threads : int
        Torch intra-op threads while training. Default 1.

    Raises
    ------
    ConfigError
        A setting outside its range.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """

    width: int = 100
    depth: int = 10
    input_dropout: float = 0.1
    predict_sigma: bool = True
    predict_sign: bool = True
    magnitude: bool = False
    z_scale_um: float = 30.0
    learning_rate: float = 1e-3
    batch_size: int = 64
    max_steps: int = 4000
    eval_every: int = 100
    patience: int = 10  # evaluations without improvement before stopping
    mse_warmup: float = 0.3  # fraction of max_steps trained on MSE before the NLL
    seed: int = 0
    # Small fully connected nets gain nothing from more threads, and on a busy machine
    # torch's intra-op threads spin-wait: 2 threads ran 100× slower than 1 here.
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.eval_every < 1:
            raise ConfigError("batch_size, max_steps and eval_every must be ≥ 1")
        if not 0 <= self.input_dropout < 1:
            raise ConfigError(f"input_dropout must be in [0, 1), got {self.input_dropout}")
        if self.magnitude and not self.predict_sign:
            raise ConfigError("magnitude needs predict_sign (the sign head gives z its sign)")
        if not 0 <= self.mse_warmup <= 1:
            raise ConfigError(f"mse_warmup must be in [0, 1], got {self.mse_warmup}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (recorded in a model's metadata).

        Returns
        -------
        data : dict
            One entry per field.
        """
        return asdict(self)


@dataclass
class TrainHistory(History):
    """Loss curve of one FCFNN training: mean training loss and
    validation RMSE (µm) per evaluation.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss since the previous evaluation (MSE in units of
        ``z_scale_um``, plus the NLL after the warm-up).
    val_rmse_um : list of float
        Validation RMSE (µm) at each evaluation.
    best_val_rmse_um : float
        The best validation RMSE (µm) among the evaluations the network was chosen from.
    steps, best_step, stopped_early, seconds
        As in :class:`focuskit.nn.History`.
    """

    TRAIN: ClassVar[dict[str, str]] = {"loss": "train_loss"}
    VALIDATION: ClassVar[dict[str, str]] = {"val_rmse_um": "val_rmse_um"}
    BEST: ClassVar[str] = "best_val_rmse_um"

    train_loss: list[float] = field(default_factory=list)
    val_rmse_um: list[float] = field(default_factory=list)
    best_val_rmse_um: float = math.inf


def _resume_settings(
    config: TrainConfig, init: Any | None = None, n_features: int | None = None
) -> dict[str, Any]:
    """What a resumed training must share with its checkpoint: the network's shape."""
    arch = init.config if init is not None else config
    settings: dict[str, Any] = {
        "width": arch.width,
        "depth": arch.depth,
        "predict_sigma": arch.predict_sigma,
        "predict_sign": arch.predict_sign,
        "magnitude": arch.magnitude,
    }
    if n_features is not None:
        settings["n_features"] = int(n_features)
    return settings


def fit_fcfnn(
    train: DefocusExamples,
    validation: DefocusExamples,
    config: TrainConfig = TrainConfig(),
    *,
    init: Any | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> tuple[Any, TrainHistory]:
    """Train an FCFNN (or fine-tune ``init``) and return the best network by validation RMSE.

    Loss: the mean's MSE throughout; after ``mse_warmup`` of the steps, plus the σ head's
    Gaussian negative log-likelihood ``log σ + ½·(z − ẑ)²/σ²`` on the detached error (the
    best network is chosen from then on). Adam, gradients clipped to norm 5, cosine
    learning rate, validation every ``eval_every`` steps, early stopping after
    ``patience`` evaluations without improvement (Pinkard et al., Note S3).

    Parameters
    ----------
    train, validation : DefocusExamples
        Examples of different fields of view.
    config : TrainConfig, optional
        Network and training settings.
    init : FCFNN, optional
        An FCFNN to fine-tune; its standardization statistics are kept (so the model's
        input convention does not move), else they come from ``train``.
    checkpoint_dir : str or path-like, optional
        Checkpoint at every evaluation.
    resume : bool, optional
        Continue from the checkpoint in ``checkpoint_dir``.
    progress : callable, optional
        ``progress(step, max_steps, {"val_rmse_um": …})`` after every evaluation.

    Returns
    -------
    net : FCFNN
        The network at its best validation RMSE, in eval mode (``init`` itself when given).
    history : TrainHistory
        The loss curves.

    Raises
    ------
    ConfigError
        An empty training or validation set, features that do not fit ``init``, or
        ``resume`` without a checkpoint.
    ModelFileError
        ``resume`` from a damaged checkpoint, or one of another architecture.

    Notes
    -----
    Under ``torchrun`` each process takes ``batch_size / N`` examples of the global batch
    and DDP averages the gradients (:func:`focuskit.nn.distributed`); each process's
    dropout mask is its slice of the one a single process draws, so the loss curve is the
    single process's up to rounding. A ``batch_size`` not divisible by N is refused.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """
    if len(train) == 0 or len(validation) == 0:
        raise ConfigError("training and validation sets must both hold examples")
    with distributed() as dist, torch_threads(dist.threads(config.num_threads)):
        dist.check_batch(config.batch_size)
        return _fit(train, validation, config, init, checkpoint_dir, resume, progress, dist)


def _fit(
    train: DefocusExamples,
    validation: DefocusExamples,
    config: TrainConfig,
    init: Any | None,
    checkpoint_dir: str | os.PathLike[str] | None,
    resume: bool,
    progress: Progress | None,
    dist: Distributed,
) -> tuple[Any, TrainHistory]:
    import torch

    from focuskit.singleshot._network import FCFNN, FCFNNConfig

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x_train = torch.from_numpy(np.ascontiguousarray(train.features, dtype=np.float32))
    y_train = torch.from_numpy(train.z_um.astype(np.float32))
    x_val = torch.from_numpy(np.ascontiguousarray(validation.features, dtype=np.float32))
    y_val = validation.z_um.astype(np.float64)

    if init is None:
        net = FCFNN(
            FCFNNConfig(
                n_features=x_train.shape[1],
                width=config.width,
                depth=config.depth,
                input_dropout=config.input_dropout,
                predict_sigma=config.predict_sigma,
                predict_sign=config.predict_sign,
                magnitude=config.magnitude,
                z_scale_um=config.z_scale_um,
            )
        )
        mean = x_train.double().mean(0)
        std = x_train.double().std(0)
        net.set_standardization(mean.float(), std.float())
    else:
        net = init
        if net.config.n_features != x_train.shape[1]:
            raise ConfigError(
                f"fine-tuning needs the model's {net.config.n_features} features, "
                f"got {x_train.shape[1]}"
            )
    device = dist.device
    net.to(device)
    x_train, y_train, x_val = x_train.to(device), y_train.to(device), x_val.to(device)
    model = dist.wrap(net)  # DDP under torchrun; checkpoints keep using `net`
    part = dist.shard(config.batch_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    scale = net.config.z_scale_um
    warmup_steps = (
        int(config.mse_warmup * config.max_steps) if net.config.predict_sigma else config.max_steps
    )

    def step(k: int, rng: np.random.Generator) -> dict[str, float]:
        # Every process draws the global batch (generators in step) and keeps its part.
        idx = torch.from_numpy(rng.integers(0, len(x_train), config.batch_size)[part]).to(device)
        z_hat, log_sigma, sign_logit = model(x_train[idx])
        if net.config.magnitude:  # |ẑ| is the magnitude head; the sign head is trained below
            err = (z_hat.abs() - y_train[idx].abs()) / scale
        else:
            err = (z_hat - y_train[idx]) / scale
        loss = (err**2).mean()
        if sign_logit is not None:
            soft = torch.sigmoid(y_train[idx] / SIGN_SOFTNESS_UM)
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(sign_logit, soft)
        if k >= warmup_steps and log_sigma is not None:
            log_s = log_sigma - math.log(scale)
            loss = loss + (log_s + 0.5 * err.detach() ** 2 * torch.exp(-2 * log_s)).mean()
        optimizer.zero_grad(set_to_none=True)
        idle_sigma = dist.enabled and k < warmup_steps and log_sigma is not None
        # DDP waits for a gradient of every parameter: the idle σ head gets zeros, dropped
        # again below so that Adam leaves it untouched, as on one process.
        (loss + 0.0 * log_sigma.sum() if idle_sigma else loss).backward()
        if idle_sigma:
            for p in net.sigma_head.parameters():
                p.grad = None
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        net.eval()
        with torch.no_grad():
            z = (
                torch.cat([net(x_val[i : i + 4096])[0] for i in range(0, len(x_val), 4096)])
                .double()
                .cpu()
                .numpy()
            )
        net.train()
        if net.config.magnitude:
            # Model selection on |z|: where one LED cannot tell the sign, the signed RMSE is
            # dominated by coin flips and would stop training at random.
            return {"val_rmse_um": float(np.sqrt(np.mean((np.abs(z) - np.abs(y_val)) ** 2)))}
        return {"val_rmse_um": float(np.sqrt(np.mean((z - y_val) ** 2)))}

    history = TrainHistory()
    run_training(
        nets={"model": net},
        optimizers={"model": optimizer},
        step=step,
        validate=validate,
        metric="val_rmse_um",
        keep="model",
        history=history,
        rng=rng,
        seed=config.seed,
        schedule=Schedule(
            config.max_steps,
            config.eval_every,
            {"model": config.learning_rate},
            patience=config.patience,
            # σ is trained only after the warm-up: the best model is chosen from then on.
            select_after=warmup_steps if net.config.predict_sigma else 0,
        ),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        settings=_resume_settings(config, init, x_train.shape[1]),
    )
    return restore_layers(net).cpu(), history
