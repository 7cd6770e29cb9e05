"""The refocusing training recipe: registered focal stacks (yours or simulated) → tiles
with their in-focus plane → hold-out by field → Deep-R GAN training → the defocus-map
decoder → a :class:`Refocuser`. What ``focuskit refocus train`` and
``scripts/train_deepr.py`` run (Luo et al. 2021, Methods)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.io import FocalStack, read_stack
from focuskit.nn import (
    Progress,
    check_model_output,
    check_training_state,
    current_distributed,
    run_distributed,
    split_one_field,
)
from focuskit.optics import get_preset
from focuskit.refocus._data import (
    RefocusTiles,
    simulate_refocus_tiles,
    split_tiles_by_field,
    tiles_from_stack,
)
from focuskit.refocus._model import Refocuser
from focuskit.refocus._plots import loss_curve_plot
from focuskit.refocus._train import (
    DPMTrainConfig,
    RefocusTrainConfig,
    _resume_settings,
    fit_deepr,
    fit_dpm,
)

DEFAULT_MODEL = "builtin:refocus-40x-fluor"
DEFAULT_SIMULATED_FIELDS = 24


@run_distributed
def train(
    output: str | os.PathLike[str] | None = None,
    *,
    stacks: Sequence[FocalStack | str | os.PathLike[str]] = (),
    simulate: int | None = None,
    samples: Sequence[str] | None = None,
    tiles: RefocusTiles | None = None,
    preset: str = "deepr-40x-fluor",
    init: str | os.PathLike[str] | Refocuser | None = None,
    config: RefocusTrainConfig | None = None,
    steps: int = 2000,
    dpm_steps: int = 500,
    dpm_signed: bool = False,
    z_range_um: float = 5.0,
    tile: int = 512,
    field_size: int = 512,
    generator_channels: Sequence[int] | None = None,
    crop: int = 256,
    validation: float = 0.15,
    seed: int = 0,
    workers: int = 2,
    threads: int = 2,
    batch_size: int = 4,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    data_progress: Callable[[str, int, int], None] | None = None,
    progress: Callable[[str], Progress] | None = None,
) -> Refocuser:
    """Train a Deep-R model (GAN, eq. 1–4) and its defocus-map decoder.

    On your focal stacks or simulated ones: registered stacks → tiles with their in-focus
    plane → hold-out by field → GAN training (:func:`fit_deepr`) → the defocus-map decoder
    (:func:`fit_dpm`) → a :class:`Refocuser`, saved (with ``loss_curves.png``, Fig. S8) when
    ``output`` is given.

    Parameters
    ----------
    output : str or os.PathLike, optional
        Model folder to write (refused before any work if it exists without ``overwrite``).
    stacks : sequence of FocalStack or path
        Your focal stacks (or their paths): each is registered, its EDOF image computed
        and each tile's in-focus plane chosen by SSIM to it (:func:`tiles_from_stack`).
    simulate : int, optional
        Simulated fields of ``preset`` (default 24 when there are no stacks or tiles).
    samples : sequence of str, optional
        What the simulated fields show, in turn: sample families of the preset's modality
        (``focuskit samples``) and/or the built-in kinds (the default).
    tiles : RefocusTiles, optional
        Training tiles made earlier (e.g. cached), used as they are.
    preset : str
        Microscope preset of the simulated fields (and of the model's optics).
    init : str, os.PathLike or Refocuser, optional
        A model (or ``builtin:NAME`` / folder) to fine-tune; its architecture is kept.
    config : RefocusTrainConfig, optional
        GAN settings (default: ``steps`` generator updates, warm-up ``min(500, steps/4)``,
        ``crop``, ``z_range_um``, validation every ``min(100, steps/20)``).
    steps : int
        Generator updates when ``config`` is not given.
    dpm_steps : int
        Defocus-map decoder updates (0: no decoder).
    dpm_signed : bool
        Train the defocus map on signed z (only if your PSF differs at ±z); default |z|.
    z_range_um : float
        Train on planes within ±this of focus (µm).
    tile, field_size : int
        Tiles cut from each field; simulated field size (pixels).
    generator_channels : sequence of int, optional
        The U-Net's widths (6: stem + 5 levels) of a new model.
    crop : int
        Training window side (pixels, a multiple of 32).
    validation : float
        Fraction of fields held out; a single field holds out every fifth tile instead.
    seed : int
        Seed of the simulation, the split and the training.
    workers, threads : int
        Processes rendering simulated fields; torch threads for training.
    batch_size : int
        Pairs per step of the GAN (without ``config``) and of the decoder; under
        ``torchrun`` the global batch, split evenly over the processes.
    checkpoint_dir : str or os.PathLike, optional
        Folder for training checkpoints.
    resume : bool
        Continue from the checkpoints in ``checkpoint_dir``.
    overwrite : bool
        Replace an existing ``output`` folder.
    metadata : dict, optional
        Extra provenance recorded in config.json under ``training``.
    data_progress, progress : callable, optional
        ``data_progress(what, done, total)`` while stacks are registered or fields
        simulated; ``progress(phase)`` gives the step callback of each training phase
        ("Deep-R GAN", "defocus-map decoder").

    Returns
    -------
    model : Refocuser
        The trained model, its training record in ``metadata["training"]``.

    Raises
    ------
    ConfigError
        When ``output`` exists without ``overwrite``, ``dpm_steps`` < 0, or the data or
        settings are invalid.
    ModelFileError
        ``resume`` from a damaged checkpoint or one of other settings (refused before the
        data are made).

    Notes
    -----
    Under ``torchrun`` (README "Training on several processes / nodes") every process
    simulates or registers all the tiles (the same seed, so the same tiles), trains the GAN
    and the decoder on its share of each global batch, and rank 0 alone writes the model
    folder and checkpoints.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing" and "Network structure, training and validation".
    """
    check_model_output(output, overwrite)
    if dpm_steps < 0:
        raise ConfigError(f"--dpm-steps must be ≥ 0, got {dpm_steps}")
    extra: dict[str, Any] = {}
    if generator_channels is not None:
        extra["generator_channels"] = tuple(int(c) for c in generator_channels)
    config = config or RefocusTrainConfig(
        max_steps=steps,
        warmup_steps=min(500, steps // 4),
        z_range_um=z_range_um,
        crop=crop,
        seed=seed,
        eval_every=max(10, min(100, steps // 20)),
        num_threads=threads,
        batch_size=batch_size,
        **extra,
    )
    base = Refocuser.load(init) if isinstance(init, (str, os.PathLike)) else init
    if base is not None:  # fine-tuning keeps the model's architecture
        config = RefocusTrainConfig.from_dict(
            {**config.to_dict(), "generator_channels": list(base.generator.config.channels)}
        )
    dist = current_distributed()  # under torchrun: every process makes the same tiles
    dist.check_batch(config.batch_size)
    if dpm_steps:
        dist.check_batch(batch_size, "the defocus-map decoder's batch size")
    if resume:  # a damaged or mismatched checkpoint is refused before minutes of data
        check_training_state(checkpoint_dir, _resume_settings(config))
    say = data_progress or (lambda what, done, total: None)
    t0 = time.perf_counter()
    parts: list[RefocusTiles] = []
    optics = base.optics if base is not None else None
    for k, given in enumerate(stacks):
        stack = given if isinstance(given, FocalStack) else read_stack(given)
        name = getattr(given, "name", f"stack {k + 1}")
        say(f"registering {name}", 0, 1)
        parts.append(tiles_from_stack(stack, tile=tile, z_range_um=z_range_um, field=k))
        say(f"registering {name}", 1, 1)
        optics = stack.optics or optics
    if tiles is not None:
        parts.append(tiles)
        optics = optics or get_preset(preset).optics
    if simulate or not parts:
        n = simulate or DEFAULT_SIMULATED_FIELDS
        parts.append(
            simulate_refocus_tiles(
                preset,
                n,
                samples=samples,
                z_range_um=z_range_um,
                tile=tile,
                size=max(tile, field_size),
                seed=seed,
                workers=workers,
                progress=lambda done, total: say("simulating fields", done, total),
            )
        )
        optics = optics or get_preset(preset).optics
    data = RefocusTiles.concat(parts)
    if len(np.unique(data.field)) < 2:
        # One field of view: hold out every fifth tile (by position) so validation is unseen.
        data.field = split_one_field(data.field)
    train_set, val_set = split_tiles_by_field(data, validation, seed=seed)
    t_data = time.perf_counter() - t0
    phase = progress or (lambda name: None)
    generator, _, history = fit_deepr(
        train_set,
        val_set,
        config,
        init=base.generator if base is not None else None,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=phase("Deep-R GAN"),
    )
    dpm_history = None
    decoder = None
    if dpm_steps:
        dconf = DPMTrainConfig(
            max_steps=dpm_steps,
            z_range_um=z_range_um,
            crop=config.crop,
            seed=seed,
            num_threads=config.num_threads,
            batch_size=batch_size,
            signed=dpm_signed,
            eval_every=max(10, min(100, dpm_steps // 10)),
        )
        decoder, dpm_history = fit_dpm(
            generator, train_set, val_set, dconf, progress=phase("defocus-map decoder")
        )
    model = Refocuser(
        generator,
        decoder,
        optics=optics,
        pixel_size_um=data.pixel_size_um,
        z_range_um=z_range_um,
        dpm_signed=dpm_signed,
        metadata={
            "training": {
                "stacks": [
                    str(getattr(s, "name", s)) if not isinstance(s, FocalStack) else "FocalStack"
                    for s in stacks
                ],
                "simulated_fields": simulate,
                "preset": preset,
                "init": None
                if init is None
                else (base.source if base is not None and base.source else str(init)),
                "tiles": {"train": len(train_set), "validation": len(val_set)},
                "train_config": config.to_dict(),
                "best_step": history.best_step,
                "validation_berhu": history.best_val_berhu,
                "loss_weights": history.weights,
                "dpm_validation_rmse_um": dpm_history.best_val_rmse_um if dpm_history else None,
                "seconds": round(time.perf_counter() - t0, 1),
                "data_seconds": round(t_data, 1),
                "gan_seconds": round(history.seconds, 1),
                "history": history.to_dict(),
                "dpm_history": dpm_history.to_dict() if dpm_history is not None else None,
                **(metadata or {}),
            }
        },
    )
    if output is not None and dist.is_main:
        model.save(output, overwrite=overwrite)
        loss_curve_plot(history, dpm_history, os.path.join(os.fspath(output), "loss_curves.png"))
    dist.barrier()  # the folder is complete before any process goes on
    return model
