"""Training Deep-R (Luo et al., Methods "Network structure, training and validation").

Generator loss (eq. 1): ``L_G = λ·(1 − D(G(x)))² + ν·(1 − MS-SSIM(y, G(x))) + ξ·BerHu(y, G(x))``;
discriminator loss (eq. 2): ``L_D = D(G(x))² + (1 − D(y))²``. Adam for both, ``d_every``
generator updates per discriminator update (the paper: 6 : 3), validation BerHu every
``eval_every`` steps on fixed held-out pairs, the best generator kept, cosine learning rate,
checkpoint + resume, seeded.

Weights: with ``weights="balanced"`` the generator first trains on the structural terms
alone for ``warmup_steps`` (the adversarial game starts from a sensible generator), then
λ, ν, ξ are set once from the running means of the raw terms so that the three contribute
equally — the paper sets them "such that three sub-types of losses contributed
approximately equally". Explicit ``(λ, ν, ξ)`` are used as given.

The DPM decoder (Fig. 7a) trains on the frozen generator's encoder features with an L2
loss on the per-pixel defocus, on uniformly defocused pairs only.

Pairs are random ``crop``² windows of (input plane, in-focus plane) tiles, the same window
in both, flipped/rotated (8 symmetries) for training only, each image standardized to zero
mean and unit SD.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from focuskit._errors import ConfigError
from focuskit.measures import standardize
from focuskit.nn import (
    Distributed,
    History,
    Progress,
    Schedule,
    augment_d4,
    distributed,
    restore_layers,
    run_training,
    torch_threads,
)
from focuskit.refocus._config import LEVELS
from focuskit.refocus._data import RefocusTiles

SIZE_MULTIPLE = 2**LEVELS  # crops and tiles the U-Net accepts


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class RefocusTrainConfig:
    """Settings of the Deep-R GAN training (:func:`fit_deepr`).

    Attributes
    ----------
    generator_channels : tuple of int
        U-Net widths (6: stem + 5 levels).
    discriminator_channels : tuple of int
        Discriminator widths.
    z_range_um : float
        Train on input planes with |z| ≤ this (µm, > 0).
    crop : int
        Training window side (pixels, a multiple of :data:`SIZE_MULTIPLE`).
    batch_size : int
        Pairs per generator update.
    max_steps : int
        Generator updates.
    generator_lr : float
        Adam learning rate of the generator (the paper's 5e-4).
    discriminator_lr : float
        Adam learning rate of the discriminator (the paper's 1e-6 is for its far larger
        discriminator).
    d_every : int
        Generator updates per discriminator update (the paper 6 : 3).
    weights : (float, float, float) or "balanced"
        ``(λ adversarial, ν MS-SSIM, ξ BerHu)`` of eq. 1, or ``"balanced"``: set after the
        warm-up so that the three terms contribute equally.
    warmup_steps : int
        Steps on the structural terms only before balancing the weights.
    berhu_c_fraction : float
        BerHu threshold as a fraction of each target's SD (eq. 4).
    eval_every : int
        Steps between validations.
    validation_pairs : int
        Fixed held-out pairs scored at each validation.
    seed : int
        Seed.
    num_threads : int
        torch threads.

    Raises
    ------
    ConfigError
        On a crop that is not a multiple of :data:`SIZE_MULTIPLE`, a count < 1, a
        non-positive ``z_range_um``, invalid weights, or a warm-up not below ``max_steps``.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation", eq. 1–4.
    """

    generator_channels: tuple[int, ...] = (16, 32, 64, 96, 128, 192)
    discriminator_channels: tuple[int, ...] = (16, 32, 48, 64, 96)
    z_range_um: float = 5.0  # train on input planes with |z| ≤ this
    crop: int = 256  # training window (a multiple of SIZE_MULTIPLE)
    batch_size: int = 4
    max_steps: int = 4000  # generator updates
    generator_lr: float = 5e-4  # the paper's
    discriminator_lr: float = 2e-5  # the paper's 1e-6 is for its far larger discriminator
    d_every: int = 2  # generator updates per discriminator update (paper 6 : 3)
    weights: tuple[float, float, float] | str = "balanced"  # (λ adversarial, ν MS-SSIM, ξ BerHu)
    warmup_steps: int = 500  # structural terms only, then the weights are balanced
    berhu_c_fraction: float = 0.1
    eval_every: int = 100
    validation_pairs: int = 48
    seed: int = 0
    num_threads: int = 2

    def __post_init__(self) -> None:
        if self.crop % SIZE_MULTIPLE or self.crop < SIZE_MULTIPLE:
            raise ConfigError(
                f"crop must be a multiple of {SIZE_MULTIPLE} pixels (the U-Net's 2**{LEVELS}), "
                f"got {self.crop}"
            )
        if (
            min(
                self.batch_size,
                self.max_steps,
                self.eval_every,
                self.d_every,
                self.validation_pairs,
            )
            < 1
        ):
            raise ConfigError(
                "batch_size, max_steps, eval_every, d_every and validation_pairs must be ≥ 1"
            )
        if self.z_range_um <= 0:
            raise ConfigError(f"z_range_um must be > 0 µm, got {self.z_range_um}")
        if isinstance(self.weights, str):
            if self.weights != "balanced":
                raise ConfigError(f"weights must be 'balanced' or (λ, ν, ξ), got {self.weights!r}")
        elif len(self.weights) != 3 or min(self.weights) < 0:
            raise ConfigError(
                f"weights must be three non-negative numbers (λ, ν, ξ), got {self.weights}"
            )
        if self.warmup_steps < 0 or (
            self.warmup_steps >= self.max_steps and self.weights == "balanced"
        ):
            raise ConfigError(
                f"warmup_steps ({self.warmup_steps}) must be ≥ 0 and below max_steps "
                f"({self.max_steps}) when the weights are balanced"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (tuples as lists).

        Returns
        -------
        d : dict
        """
        d = asdict(self)
        d["generator_channels"] = list(self.generator_channels)
        d["discriminator_channels"] = list(self.discriminator_channels)
        d["weights"] = self.weights if isinstance(self.weights, str) else list(self.weights)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefocusTrainConfig:
        """The settings from :meth:`to_dict`'s form.

        Parameters
        ----------
        data : dict
            Field names and values.

        Returns
        -------
        config : RefocusTrainConfig
        """
        d = dict(data)
        for key in ("generator_channels", "discriminator_channels"):
            if key in d:
                d[key] = tuple(int(c) for c in d[key])
        if isinstance(d.get("weights"), list):
            d["weights"] = tuple(float(w) for w in d["weights"])
        return cls(**d)


@dataclass
class RefocusHistory(History):
    """Loss curves (Fig. S8): training means over each evaluation interval, validation at its end.

    Attributes
    ----------
    steps : list of int
        Generator step of each evaluation.
    generator_loss : list of float
        Weighted generator loss, eq. 1.
    discriminator_loss : list of float
        Discriminator loss, eq. 2.
    adversarial : list of float
        ``(1 − D(G(x)))²``, unweighted.
    ms_ssim_loss : list of float
        ``1 − MS-SSIM``, unweighted.
    berhu : list of float
        BerHu, unweighted.
    val_berhu : list of float
        Validation BerHu.
    val_ms_ssim : list of float
        Validation MS-SSIM.
    weights : list of float
        ``(λ, ν, ξ)`` in use at the end.
    best_val_berhu : float
        Best validation BerHu; the generator returned is the one that reached it.
    best_step : int
        Step of the best validation.
    stopped_early : bool
        Whether training stopped early.
    seconds : float
        Training time (s).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. S8.
    """

    TRAIN: ClassVar[dict[str, str]] = {
        "g": "generator_loss",
        "d": "discriminator_loss",
        "adv": "adversarial",
        "msssim": "ms_ssim_loss",
        "berhu": "berhu",
    }
    VALIDATION: ClassVar[dict[str, str]] = {"val_berhu": "val_berhu", "val_ms_ssim": "val_ms_ssim"}
    BEST: ClassVar[str] = "best_val_berhu"

    generator_loss: list[float] = field(default_factory=list)
    discriminator_loss: list[float] = field(default_factory=list)
    adversarial: list[float] = field(default_factory=list)  # (1 − D(G(x)))², unweighted
    ms_ssim_loss: list[float] = field(default_factory=list)  # 1 − MS-SSIM, unweighted
    berhu: list[float] = field(default_factory=list)  # unweighted
    val_berhu: list[float] = field(default_factory=list)
    val_ms_ssim: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # (λ, ν, ξ) in use at the end
    best_val_berhu: float = math.inf


@dataclass(frozen=True)
class DPMTrainConfig:
    """Settings of the defocus-map decoder training (:func:`fit_dpm`).

    ``signed=False`` trains on |z|: with a PSF symmetric in ±z (an aberration-free
    objective, as simulated here) the image does not hold the sign, and an L2 fit to the
    signed z collapses to 0. Real objectives with spherical aberration can be ``signed``.

    Attributes
    ----------
    z_range_um : float
        Train on input planes with |z| ≤ this (µm).
    signed : bool
        Target the signed defocus z (else |z|).
    crop : int
        Training window side (pixels, a multiple of :data:`SIZE_MULTIPLE`).
    batch_size : int
        Pairs per update.
    max_steps : int
        Decoder updates.
    learning_rate : float
        Adam learning rate (the paper's 1e-4 with its 100 k steps; ours trains far fewer).
    eval_every : int
        Steps between validations.
    validation_pairs : int
        Fixed held-out pairs scored at each validation.
    seed : int
        Seed.
    num_threads : int
        torch threads.

    Raises
    ------
    ConfigError
        On a crop that is not a multiple of :data:`SIZE_MULTIPLE` or a count < 1.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 7a.
    """

    z_range_um: float = 5.0
    signed: bool = False
    crop: int = 256
    batch_size: int = 4
    max_steps: int = 1500
    learning_rate: float = 1e-3  # the paper's 1e-4 with its 100 k steps; ours trains far fewer
    eval_every: int = 100
    validation_pairs: int = 48
    seed: int = 0
    num_threads: int = 2

    def __post_init__(self) -> None:
        if self.crop % SIZE_MULTIPLE or self.crop < SIZE_MULTIPLE:
            raise ConfigError(
                f"crop must be a multiple of {SIZE_MULTIPLE} pixels (the U-Net's 2**{LEVELS}), "
                f"got {self.crop}"
            )
        if min(self.batch_size, self.max_steps, self.eval_every, self.validation_pairs) < 1:
            raise ConfigError("batch_size, max_steps, eval_every and validation_pairs must be ≥ 1")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict.

        Returns
        -------
        d : dict
        """
        return asdict(self)


@dataclass
class DPMHistory(History):
    """Defocus-map decoder training: mean training MSE (µm²) and validation RMSE (µm).

    Attributes
    ----------
    steps : list of int
        Step of each evaluation.
    train_mse_um2 : list of float
        Mean training MSE over each evaluation interval (µm²).
    val_rmse_um : list of float
        Validation RMSE of the per-pixel defocus (µm).
    best_val_rmse_um : float
        Best validation RMSE (µm); the decoder returned is the one that reached it.
    best_step : int
        Step of the best validation.
    stopped_early : bool
        Whether training stopped early.
    seconds : float
        Training time (s).
    """

    TRAIN: ClassVar[dict[str, str]] = {"mse": "train_mse_um2"}
    VALIDATION: ClassVar[dict[str, str]] = {"val_rmse_um": "val_rmse_um"}
    BEST: ClassVar[str] = "best_val_rmse_um"

    train_mse_um2: list[float] = field(default_factory=list)
    val_rmse_um: list[float] = field(default_factory=list)
    best_val_rmse_um: float = math.inf


# ------------------------------------------------------------------------------ pairs
class PairSampler:
    """Random (input, in-focus) windows from :class:`RefocusTiles`, standardized, as numpy.

    ``pairs`` are (tile, plane) with ``|defocus| ≤ z_range_um``; a window is a random
    ``crop``² square at the same place in both images. ``fixed`` draws a reproducible set
    spread evenly over the pairs with centred windows (validation).

    Parameters
    ----------
    tiles : RefocusTiles
        The tiles to draw from.
    z_range_um : float
        Largest |defocus| of an input plane (µm).
    crop : int
        Window side (pixels, ≤ the tile side).

    Raises
    ------
    ConfigError
        When there are no tiles, the tiles are smaller than ``crop``, or no plane lies
        within ``z_range_um`` of focus.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation".
    """

    def __init__(self, tiles: RefocusTiles, z_range_um: float, crop: int) -> None:
        if len(tiles) == 0:
            raise ConfigError("no tiles to train on")
        if tiles.tile < crop:
            raise ConfigError(
                f"tiles are {tiles.tile} px but the training crop is {crop} px — "
                f"use a smaller --crop (multiple of {SIZE_MULTIPLE}) or larger tiles"
            )
        self.tiles, self.crop = tiles, crop
        self.pairs = tiles.pairs(z_range_um)
        if len(self.pairs) == 0:
            raise ConfigError(
                f"no planes within ±{z_range_um:g} µm of focus — check the stack's z range"
            )

    def _window(self, index: np.ndarray, y0: int, x0: int) -> tuple[np.ndarray, np.ndarray, float]:
        t, k = int(index[0]), int(index[1])
        planes = self.tiles.planes[t]
        c = self.crop
        x = planes[k, y0 : y0 + c, x0 : x0 + c]
        y = planes[int(self.tiles.focus_index[t]), y0 : y0 + c, x0 : x0 + c]
        return x, y, float(self.tiles.defocus_um[t][k])

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` random pairs: random (tile, plane), random window position.

        Parameters
        ----------
        rng : numpy.random.Generator
            The random source.
        n : int
            Number of pairs.

        Returns
        -------
        x : ndarray
            (n, crop, crop) standardized inputs.
        y : ndarray
            (n, crop, crop) standardized in-focus targets.
        defocus_um : ndarray
            (n,) float32 defocus of each input (µm).
        """
        picks = self.pairs[rng.integers(0, len(self.pairs), n)]
        span = self.tiles.tile - self.crop + 1
        out = [self._window(p, int(rng.integers(span)), int(rng.integers(span))) for p in picks]
        return self._stack(out)

    def fixed(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A reproducible set of up to ``n`` pairs spread evenly over the pairs, centred windows.

        Parameters
        ----------
        n : int
            Number of pairs at most.

        Returns
        -------
        x : ndarray
            (m, crop, crop) standardized inputs, m ≤ n.
        y : ndarray
            (m, crop, crop) standardized in-focus targets.
        defocus_um : ndarray
            (m,) float32 defocus of each input (µm).
        """
        idx = np.unique(
            np.linspace(0, len(self.pairs) - 1, min(n, len(self.pairs))).round().astype(int)
        )
        y0 = (self.tiles.tile - self.crop) // 2
        return self._stack([self._window(self.pairs[i], y0, y0) for i in idx])

    @staticmethod
    def _stack(
        items: list[tuple[np.ndarray, np.ndarray, float]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = standardize(np.stack([i[0] for i in items]))
        y = standardize(np.stack([i[1] for i in items]))
        return x, y, np.array([i[2] for i in items], dtype=np.float32)


def _tensor(a: np.ndarray, device: Any = None) -> Any:
    import torch

    return (
        torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        .unsqueeze(1)
        .to(device)
        .contiguous(memory_format=torch.channels_last)
    )


# ---------------------------------------------------------------------------- Deep-R
def fit_deepr(
    train: RefocusTiles,
    validation: RefocusTiles,
    config: RefocusTrainConfig = RefocusTrainConfig(),
    *,
    init: Any | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> tuple[Any, Any, RefocusHistory]:
    """Train the Deep-R GAN (or fine-tune generator ``init``).

    Returns (best generator by validation BerHu, discriminator, history).
    ``progress(step, max_steps, last_values)``. Generator loss eq. 1, discriminator loss
    eq. 2, MS-SSIM eq. 3 and BerHu eq. 4 (see the module docstring).

    Parameters
    ----------
    train : RefocusTiles
        Training tiles.
    validation : RefocusTiles
        Held-out tiles (other fields).
    config : RefocusTrainConfig
        Settings.
    init : DeepRGenerator, optional
        A generator to fine-tune.
    checkpoint_dir : str or os.PathLike, optional
        Folder for a checkpoint at every evaluation.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir``.
    progress : callable, optional
        ``progress(step, max_steps, last_values)`` after every evaluation.

    Returns
    -------
    generator : DeepRGenerator
        The generator with the best validation BerHu.
    discriminator : DeepRDiscriminator
        The discriminator at the end.
    history : RefocusHistory
        The loss curves (Fig. S8).

    Raises
    ------
    ConfigError
        When there are no tiles or no pairs within the range, or the crop exceeds the tiles.
    ModelFileError
        ``resume`` from a damaged checkpoint, or one of other widths.

    Notes
    -----
    Under ``torchrun`` each process takes ``batch_size / N`` pairs of the global batch;
    generator and discriminator are both DDP-wrapped, the terms that balance the loss
    weights are averaged over the processes every warm-up step, so the weights — and the
    loss curves — are the single process's up to rounding (:func:`focuskit.nn.distributed`).
    A ``batch_size`` not divisible by N is refused.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation", eq. 1–4.
    """
    with distributed() as dist, torch_threads(dist.threads(config.num_threads)):
        dist.check_batch(config.batch_size)
        return _fit_deepr(train, validation, config, init, checkpoint_dir, resume, progress, dist)


def _resume_settings(config: RefocusTrainConfig, init: Any | None = None) -> dict[str, Any]:
    """What a resumed training must share with its checkpoint: the networks' widths."""
    generator = init.config.channels if init is not None else config.generator_channels
    return {
        "generator_channels": list(generator),
        "discriminator_channels": list(config.discriminator_channels),
    }


def _fit_deepr(
    train: RefocusTiles,
    validation: RefocusTiles,
    config: RefocusTrainConfig,
    init: Any | None,
    checkpoint_dir: str | os.PathLike[str] | None,
    resume: bool,
    progress: Progress | None,
    dist: Distributed,
) -> tuple[Any, Any, RefocusHistory]:
    import torch

    from focuskit.refocus._losses import berhu, ms_ssim
    from focuskit.refocus._network import (
        DeepRConfig,
        DeepRDiscriminator,
        DeepRGenerator,
        DiscriminatorConfig,
    )

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sampler = PairSampler(train, config.z_range_um, config.crop)
    x_val, y_val, _ = PairSampler(validation, config.z_range_um, config.crop).fixed(
        config.validation_pairs
    )
    gen = (
        init
        if init is not None
        else DeepRGenerator(DeepRConfig(channels=tuple(config.generator_channels)))
    )
    disc = DeepRDiscriminator(DiscriminatorConfig(channels=tuple(config.discriminator_channels)))
    device = dist.device
    gen, disc = (
        gen.to(device=device, memory_format=torch.channels_last),
        disc.to(device=device, memory_format=torch.channels_last),
    )
    # DDP under torchrun (checkpoints keep the plain networks). The generator's adversarial
    # term runs the plain discriminator: the gradient it leaves there is discarded before
    # the discriminator's own update, so it need not be averaged over the processes.
    gen_ddp, disc_ddp = dist.wrap(gen), dist.wrap(disc)
    part = dist.shard(config.batch_size)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.generator_lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.discriminator_lr, betas=(0.9, 0.999))
    # (λ, ν, ξ): None until the warm-up has balanced them ("balanced"), else as given.
    weights: list[float] | None = (
        None if config.weights == "balanced" else [float(w) for w in config.weights]
    )
    # Running means of the raw terms over the second half of the warm-up.
    warm: dict[str, float] = {"adv": 0.0, "msssim": 0.0, "berhu": 0.0, "n": 0}

    def step(k: int, rng: np.random.Generator) -> dict[str, float]:
        nonlocal weights
        done = k + 1
        # Every process draws the global batch (generators in step) and keeps its part.
        xb, yb, _ = sampler.draw(rng, config.batch_size)
        turn = int(rng.integers(8))
        x = augment_d4(_tensor(xb[part], device), turn).contiguous(
            memory_format=torch.channels_last
        )
        y = augment_d4(_tensor(yb[part], device), turn).contiguous(
            memory_format=torch.channels_last
        )
        out = gen_ddp(x)
        l_ssim = (1 - ms_ssim(out, y)).mean()
        l_berhu = berhu(out, y, c_fraction=config.berhu_c_fraction).mean()
        if weights is not None:
            l_adv = (1 - disc(out)).square().mean()
            loss_g = weights[0] * l_adv + weights[1] * l_ssim + weights[2] * l_berhu
        else:  # warm-up: structural terms with equal unit weights
            with torch.no_grad():
                l_adv = (1 - disc(out)).square().mean()
            loss_g = l_ssim + l_berhu
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 5.0)
        opt_g.step()
        terms = {
            "g": loss_g.item(),
            "adv": l_adv.item(),
            "msssim": l_ssim.item(),
            "berhu": l_berhu.item(),
        }
        if done % config.d_every == 0:  # eq. 2, on this batch's output (no second generator pass)
            loss_d = disc_ddp(out.detach()).square().mean() + (1 - disc_ddp(y)).square().mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            terms["d"] = loss_d.item()
        if weights is None:
            terms = dist.mean(terms)  # the weights are balanced on the global batch's terms
            if done > config.warmup_steps // 2:
                for t in ("adv", "msssim", "berhu"):
                    warm[t] += terms[t]
                warm["n"] += 1
            if done >= config.warmup_steps:
                n = max(warm["n"], 1)
                weights = [1.0 / max(warm[t] / n, 1e-6) / 3 for t in ("adv", "msssim", "berhu")]
        return terms

    def validate() -> dict[str, float]:
        gen.eval()
        b, s = [], []
        with torch.no_grad():
            for i in range(0, len(x_val), 8):
                xv, yv = _tensor(x_val[i : i + 8], device), _tensor(y_val[i : i + 8], device)
                out = gen(xv)
                b.append(berhu(out, yv, c_fraction=config.berhu_c_fraction))
                s.append(ms_ssim(out, yv))
        gen.train()
        return {"val_berhu": float(torch.cat(b).mean()), "val_ms_ssim": float(torch.cat(s).mean())}

    def state() -> dict[str, Any]:
        return {"weights": weights, "config": config.to_dict(), "warm": warm}

    def restore(meta: dict[str, Any]) -> None:
        nonlocal weights, warm
        # Explicit weights given now win over the checkpoint's (e.g. to change λ mid-run).
        weights = (
            meta["weights"] if config.weights == "balanced" else [float(w) for w in config.weights]
        )
        if meta.get("warm"):  # the warm-up means so far, so balancing sees the whole warm-up
            warm = meta["warm"]

    def record_weights() -> None:
        history.weights = list(weights) if weights is not None else []

    history = RefocusHistory()
    run_training(
        nets={"generator": gen, "discriminator": disc},
        optimizers={"generator": opt_g, "discriminator": opt_d},
        step=step,
        validate=validate,
        metric="val_berhu",
        keep="generator",
        history=history,
        rng=rng,
        seed=config.seed,
        schedule=Schedule(config.max_steps, config.eval_every, {"generator": config.generator_lr}),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        state=state,
        restore=restore,
        on_evaluate=record_weights,
        settings=_resume_settings(config, init),
    )
    return restore_layers(gen).cpu(), restore_layers(disc).cpu(), history


# ------------------------------------------------------------------------- DPM decoder
def fit_dpm(
    generator: Any,
    train: RefocusTiles,
    validation: RefocusTiles,
    config: DPMTrainConfig = DPMTrainConfig(),
    *,
    progress: Progress | None = None,
) -> tuple[Any, DPMHistory]:
    """Train the defocus-map decoder of Fig. 7a on the frozen generator's encoder features.

    Target = the pair's uniform defocus (µm; its magnitude unless ``config.signed``) at every
    pixel, L2 loss. Returns the best decoder by validation RMSE and the history.

    Parameters
    ----------
    generator : DeepRGenerator
        The trained generator; its encoder is frozen.
    train : RefocusTiles
        Training tiles.
    validation : RefocusTiles
        Held-out tiles.
    config : DPMTrainConfig
        Settings.
    progress : callable, optional
        ``progress(step, max_steps, last_values)`` after every evaluation.

    Returns
    -------
    decoder : DPMDecoder
        The decoder with the best validation RMSE.
    history : DPMHistory
        Its loss curves (MSE in µm², RMSE in µm).

    Raises
    ------
    ConfigError
        When there are no tiles or no pairs within the range, or the crop exceeds the tiles.
    ModelFileError
        ``resume`` from a damaged checkpoint, or one of other widths.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 7a and Methods.

    Notes
    -----
    Under ``torchrun`` the decoder is DDP-wrapped and each process takes ``batch_size / N``
    pairs of the global batch (:func:`focuskit.nn.distributed`); a ``batch_size`` not
    divisible by N is refused.
    """
    with distributed() as dist, torch_threads(dist.threads(config.num_threads)):
        dist.check_batch(config.batch_size, "the defocus-map decoder's batch size")
        return _fit_dpm(generator, train, validation, config, progress, dist)


def _fit_dpm(
    generator: Any,
    train: RefocusTiles,
    validation: RefocusTiles,
    config: DPMTrainConfig,
    progress: Progress | None,
    dist: Distributed,
) -> tuple[Any, DPMHistory]:
    import torch

    from focuskit.refocus._network import DPMDecoder

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sampler = PairSampler(train, config.z_range_um, config.crop)
    x_val, _, z_val = PairSampler(validation, config.z_range_um, config.crop).fixed(
        config.validation_pairs
    )
    if not config.signed:
        z_val = np.abs(z_val)
    device = dist.device
    encoder = generator.encoder.eval().to(device)
    decoder = DPMDecoder(generator.config.channels).to(
        device=device, memory_format=torch.channels_last
    )
    model = dist.wrap(decoder)  # DDP under torchrun; checkpoints keep using `decoder`
    part = dist.shard(config.batch_size)
    opt = torch.optim.Adam(decoder.parameters(), lr=config.learning_rate)

    def features(x: Any) -> list[Any]:
        with torch.no_grad():
            return encoder(x)

    def step(k: int, rng: np.random.Generator) -> dict[str, float]:
        # Every process draws the global batch (generators in step) and keeps its part.
        xb, _, zb = sampler.draw(rng, config.batch_size)
        xb, zb = xb[part], zb[part]
        if not config.signed:
            zb = np.abs(zb)
        x = augment_d4(_tensor(xb, device), int(rng.integers(8))).contiguous(
            memory_format=torch.channels_last
        )
        pred = model(features(x))
        loss = (pred - torch.from_numpy(zb).to(device).reshape(-1, 1, 1, 1)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"mse": loss.item()}

    def validate() -> dict[str, float]:
        decoder.eval()
        se = []
        with torch.no_grad():
            for i in range(0, len(x_val), 8):
                pred = decoder(features(_tensor(x_val[i : i + 8], device)))
                target = torch.from_numpy(z_val[i : i + 8]).to(device).reshape(-1, 1, 1, 1)
                se.append((pred - target).square().flatten(1).mean(1))
        decoder.train()
        return {"val_rmse_um": float(torch.cat(se).mean().sqrt())}

    history = DPMHistory()
    run_training(
        nets={"dpm": decoder},
        optimizers={"dpm": opt},
        step=step,
        validate=validate,
        metric="val_rmse_um",
        keep="dpm",
        history=history,
        rng=rng,
        seed=config.seed,
        schedule=Schedule(config.max_steps, config.eval_every, {"dpm": config.learning_rate}),
        progress=progress,
    )
    generator.cpu()
    return restore_layers(decoder).cpu(), history
