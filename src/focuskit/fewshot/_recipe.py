"""The few-shot training recipe: simulated patches under random objectives (and your own
focal stacks with known focus) → validation hold-out by object → blur-CNN training → a
:class:`BlurScorer`. What ``focuskit fewshot train`` and ``scripts/train_blur_cnn.py`` run."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.fewshot._data import (
    BlurDataConfig,
    BlurPatches,
    blur_patches_from_stack,
    simulate_blur_patches,
)
from focuskit.fewshot._model import BlurScorer
from focuskit.fewshot._train import (
    BlurTrainConfig,
    _resume_settings,
    fit_blur_cnn,
    split_patches_by_field,
)
from focuskit.io import FocalStack, read_stack
from focuskit.nn import (
    Progress,
    check_model_output,
    check_training_state,
    current_distributed,
    run_distributed,
    split_one_field,
)
from focuskit.simulate import sample_key

DEFAULT_MODEL = "builtin:fewshot-widefield"
# Field ids of patches from user stacks: far above any simulated object's.
_STACK_FIELDS = 10_000_000


@run_distributed
def train(
    output: str | os.PathLike[str] | None = None,
    *,
    fields: int = 200,
    samples: Sequence[str] | None = None,
    stacks: Sequence[FocalStack | str | os.PathLike[str]] = (),
    focus_z_um: Sequence[float] | None = None,
    init: str | os.PathLike[str] | BlurScorer | None = None,
    patches: BlurPatches | None = None,
    data_config: BlurDataConfig | None = None,
    config: BlurTrainConfig | None = None,
    steps: int = 2000,
    batch_size: int | None = None,
    validation: float = 0.15,
    seed: int = 0,
    workers: int = 2,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    data_progress: Callable[[int, int], None] | None = None,
    progress: Progress | None = None,
) -> BlurScorer:
    """Train a blur-score CNN on simulated patches, or fine-tune one on your own stacks.

    Simulated patches under random objectives (and your own focal stacks with known focus)
    → validation hold-out by object → blur-CNN training (:func:`fit_blur_cnn`) → a
    :class:`BlurScorer`, saved to ``output`` when given.

    Parameters
    ----------
    output : str or os.PathLike, optional
        Model folder to write (refused before any work if it exists without ``overwrite``).
    fields : int
        Simulated objects (each: 6 defocus values × 4 patches of 128²), under random
        objectives with cutoff ``NA·p/λ`` in 0.2–0.5; simulated unless you fine-tune
        (``init``) on ``stacks`` only.
    samples : sequence of str, optional
        What the simulated objects show, used in turn: sample families
        (``focuskit samples``) and/or the built-in contents (:data:`CONTENTS`, the
        default).
    stacks : sequence of FocalStack or path
        Your focal stacks (or their paths) with optics metadata and a known focus: the
        target of each patch is ``W = |z − focus|·(n − √(n² − NA²))/λ``.
    focus_z_um : sequence of float, optional
        The in-focus z of each stack (µm; default: the stack's ``focus_z_um``).
    init : str, os.PathLike or BlurScorer, optional
        A model (or ``builtin:NAME`` / folder) to fine-tune.
    patches : BlurPatches, optional
        Simulated patches made earlier (e.g. cached): used instead of simulating.
    data_config : BlurDataConfig, optional
        What to simulate (default: ``fields`` objects with ``seed``).
    config : BlurTrainConfig, optional
        Training settings (default: ``steps`` steps, validation every ``min(250, steps/10)``).
    steps : int
        Training steps when ``config`` is not given.
    batch_size : int, optional
        Patches per step, without ``config`` (default 64); under ``torchrun`` the global
        batch, split evenly over the processes.
    validation : float
        Fraction of objects held out; a single fine-tuning stack holds out every fifth
        patch position instead.
    seed : int
        Seed of the simulation, the split and the training.
    workers : int
        Processes simulating patches.
    checkpoint_dir : str or os.PathLike, optional
        Folder for training checkpoints.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir``.
    overwrite : bool
        Replace an existing ``output`` folder.
    metadata : dict, optional
        Extra provenance recorded in config.json under ``training``.
    data_progress, progress : callable, optional
        ``data_progress(done, total)`` while simulating; ``progress(step, max_steps,
        {"val_mae_waves": …})`` while training.

    Returns
    -------
    scorer : BlurScorer
        The trained model, its training record in ``metadata["training"]``.

    Raises
    ------
    ConfigError
        When ``output`` exists without ``overwrite``, ``focus_z_um`` does not give one z per
        stack, a stack lacks optics or a known focus, or ``resume`` has no checkpoint.
    ModelFileError
        ``resume`` from a damaged checkpoint or one of other settings (refused before the
        data are made).

    Notes
    -----
    Under ``torchrun`` (README "Training on several processes / nodes") every process
    simulates all the patches (the same seed, so the same patches), trains on its share of
    each global batch, and rank 0 alone writes the model folder and checkpoints.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10].
    """
    check_model_output(output, overwrite)
    if samples is not None and (data_config is not None or patches is not None):
        raise ConfigError("give samples, or a data_config / patches that already say what to show")
    if focus_z_um is not None and len(focus_z_um) != len(stacks):
        raise ConfigError("give one --focus-z per --stack (or none)")
    base = BlurScorer.load(init) if isinstance(init, (str, os.PathLike)) else init
    config = config or BlurTrainConfig(
        max_steps=steps,
        seed=seed,
        eval_every=max(10, min(250, steps // 10)),
        **({} if batch_size is None else {"batch_size": batch_size}),
    )
    config = replace(config, seed=seed)
    dist = current_distributed()  # under torchrun: every process makes the same patches
    dist.check_batch(config.batch_size)
    if resume:  # a damaged or mismatched checkpoint is refused before minutes of data
        check_training_state(
            checkpoint_dir, _resume_settings(config, base.net if base is not None else None)
        )
    t0 = time.perf_counter()
    parts: list[BlurPatches] = []
    for k, given in enumerate(stacks):
        stack = given if isinstance(given, FocalStack) else read_stack(given)
        where = getattr(given, "name", None) or f"stack {k + 1}"
        if stack.optics is None:
            raise ConfigError(
                f"{where}: optics unknown — training labels need NA and λ; write the stack with "
                "focuskit or use a preset's metadata"
            )
        focus = focus_z_um[k] if focus_z_um is not None else stack.focus_z_um
        if focus is None:
            raise ConfigError(f"{where}: in-focus z unknown — pass --focus-z")
        parts.append(
            blur_patches_from_stack(
                np.asarray(stack.data),
                np.asarray(stack.z_um),
                float(focus),
                na=stack.optics.na,
                wavelength_um=stack.optics.wavelength_um,
                pixel_size_um=stack.pixel_size_um,
                immersion_index=stack.optics.objective.immersion_index,
                field_id=_STACK_FIELDS + k,
            )
        )
    if patches is not None:
        parts.append(patches)
    elif not parts or init is None:
        contents = {} if not samples else {"contents": tuple(sample_key(x) for x in samples)}
        data_config = data_config or BlurDataConfig(n_fields=fields, seed=seed, **contents)
        parts.append(simulate_blur_patches(data_config, workers=workers, progress=data_progress))
    data = BlurPatches.concatenate(parts)
    if len(np.unique(data.field)) == 1:
        data.field = split_one_field(data.field)
    train_set, val_set = split_patches_by_field(data, validation, seed=seed)
    t1 = time.perf_counter()
    net, history = fit_blur_cnn(
        train_set,
        val_set,
        config,
        init=base.net if base is not None else None,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
    )
    cutoff = (data_config or BlurDataConfig()).cutoff_range if base is None else base.cutoff_range
    scorer = BlurScorer(
        net,
        cutoff_range=cutoff,
        metadata={
            "training": {
                "train_config": config.to_dict(),
                "patches": {"train": len(train_set), "validation": len(val_set)},
                "validation_mae_waves": history.best_val_mae_waves,
                "best_step": history.best_step,
                "init": None
                if init is None
                else (base.source if base is not None and base.source else str(init)),
                "stacks": [
                    str(getattr(s, "name", s)) if not isinstance(s, FocalStack) else "FocalStack"
                    for s in stacks
                ],
                "data_seconds": round(t1 - t0, 1),
                "train_seconds": round(time.perf_counter() - t1, 1),
                "seconds": round(time.perf_counter() - t0, 1),
                "history": history.to_dict(),
                **(metadata or {}),
            }
        },
    )
    if output is not None and dist.is_main:
        scorer.save(output, overwrite=overwrite)
    dist.barrier()  # the folder is complete before any process goes on
    return scorer
