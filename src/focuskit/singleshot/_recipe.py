"""The single-shot training recipe: data (your focal stacks or simulated fields) →
validation hold-out by field → FCFNN training → a :class:`DefocusModel` (Pinkard et al.,
Note S3). What ``focuskit singleshot train`` and ``scripts/train_fcfnn.py`` run."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.nn import (
    Progress,
    check_model_output,
    check_training_state,
    current_distributed,
    run_distributed,
)
from focuskit.optics import OPTICS_TOLERANCE, get_preset
from focuskit.singleshot._data import (
    DefocusExamples,
    Randomization,
    examples_from_folder,
    region_for,
    simulate_examples,
    split_by_field,
)
from focuskit.singleshot._model import DefocusModel
from focuskit.singleshot._train import TrainConfig, _resume_settings, fit_fcfnn

DEFAULT_MODEL = "builtin:singleshot-20x-led"
DEFAULT_TILE = 1024


@run_distributed
def train(
    output: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    simulate: int | None = None,
    samples: Sequence[str] | None = None,
    examples: DefocusExamples | None = None,
    finetune: str | os.PathLike[str] | DefocusModel | None = None,
    preset: str = "fcfnn-20x-led",
    config: TrainConfig | None = None,
    tile: int | None = None,
    transform: str = "mean",
    cells: str = "discs",
    randomization: Randomization | None = None,
    validation: float = 0.15,
    z_um: Sequence[float] | None = None,
    trusted_range_um: tuple[float, float] | None = None,
    calibrate_on_validation: bool = False,
    pixel_size_um: float | None = None,
    workers: int = 1,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    data_info: dict[str, Any] | None = None,
    data_progress: Callable[[int, int], None] | None = None,
    progress: Progress | None = None,
) -> DefocusModel:
    """Train a single-shot defocus model (or fine-tune one), and save it when asked.

    The data are your focal stacks or simulated fields; the model is saved when
    ``output`` is given [1]_.

    Parameters
    ----------
    output : str or path-like, optional
        Model folder to write (refused before any work if it exists without ``overwrite``).
    data : str or path-like, optional
        A folder of coherent LED focal stacks, each with ground truth: a companion
        ``<stem>.incoherent.<ext>`` (DPC / brightfield) stack, or ``focus_z_um`` in its
        metadata (:func:`examples_from_folder`).
    simulate : int, optional
        Instead: this many simulated fields of ``preset`` (phase cells at random density,
        exposure and focus offset; :func:`simulate_examples`).
    samples : sequence of str, optional
        With ``simulate``: the sample generators or transmitted-light families
        (``focuskit samples``) the fields are drawn from (default phase ``cells``).
    examples : DefocusExamples, optional
        Instead: examples made earlier (e.g. cached), with the features of ``preset``'s
        optics at ``tile``.
    finetune : DefocusModel, str or path-like, optional
        A model (or ``builtin:NAME`` / folder) to start from; its features, optics and
        input standardization are kept.
    preset : str, optional
        The microscope of simulated fields, and of stacks saved without optics.
    config : TrainConfig, optional
        Network and training settings (``seed`` is replaced by ``seed``).
    tile : int, optional
        Tile size of a new model in pixels (default 1024, the paper's; a fine-tuned
        model's own).
    transform : {"mean", "log"}, optional
        The features' normalization of a new model (:class:`FourierRegion`; a fine-tuned
        model keeps its own). Default "mean", the paper's; "log" is content-invariant
        (better |z| on samples unlike the training data, worse on like ones: README).
    cells : {"discs", "overlap"}, optional
        The Fourier cells of a new model's features (:class:`FourierRegion`). Default
        "discs", the paper's; "overlap": only where one LED's image holds the defocus.
    randomization : Randomization, optional
        With ``simulate``: also vary phase strength, absorption and the microscope per
        field (:class:`Randomization`).
    validation : float, optional
        Fraction of fields of view held out for validation (never tiles of a field on both
        sides).
    z_um : sequence of float, optional
        Simulated planes in µm (default: the preset's z range and step).
    trusted_range_um : (float, float), optional
        Where predictions count as in range, in µm (default: the training labels' range).
    calibrate_on_validation : bool, optional
        Recalibrate σ and take the out-of-distribution limits on the validation fields
        (:meth:`DefocusModel.from_training`), as the bundled model is.
    pixel_size_um : float, optional
        For stacks whose files lack it (µm).
    workers : int, optional
        Processes rendering simulated fields.
    seed : int, optional
        Seed of the simulation, the split and the training.
    checkpoint_dir : str or path-like, optional
        Checkpoint at every validation.
    resume : bool, optional
        Continue from the checkpoint in ``checkpoint_dir``.
    overwrite : bool, optional
        Replace an existing ``output`` folder.
    metadata : dict, optional
        Extra provenance recorded in the model's config.json under ``training`` (e.g. the
        command).
    data_info : dict, optional
        Extra description of the data recorded under ``data``.
    data_progress, progress : callable, optional
        ``data_progress(done, total)`` while fields are read or simulated;
        ``progress(step, max_steps, {"val_rmse_um": …})`` while training.

    Returns
    -------
    model : DefocusModel
        Its ``metadata`` records the training (config, history, timing, fine-tuned from)
        and the data (fields, examples, notes on assumed optics).

    Raises
    ------
    ConfigError
        Not exactly one data source, an output folder that cannot be written, too few
        fields, a fraction outside (0, 1), ``resume`` without a checkpoint folder, or data
        that do not fit the fine-tuned model.
    ModelFileError
        ``resume`` from a damaged checkpoint or one of other settings (refused before the
        data are made).

    Notes
    -----
    Under ``torchrun`` (README "Training on several processes / nodes") every process
    simulates or reads all the data (the same seed, so the same examples), trains on its
    share of each global batch, and rank 0 alone writes the model folder and checkpoints.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """
    if sum(x is not None for x in (data, simulate, examples)) != 1:
        raise ConfigError("give exactly one of --data DIR or --simulate N (or examples)")
    check_model_output(output, overwrite, [data])
    if simulate is not None and simulate < 2:
        raise ConfigError(
            f"--simulate needs at least 2 fields (one is held out for validation), got {simulate}"
        )
    if not 0 < validation < 1:
        raise ConfigError(f"--validation must be a fraction in (0, 1), got {validation}")
    if resume and checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir (where the checkpoint is)")
    if samples is not None and simulate is None:
        raise ConfigError("--sample chooses what --simulate renders; it needs --simulate N")
    config = TrainConfig(**{**(config or TrainConfig()).to_dict(), "seed": seed})
    dist = current_distributed()  # under torchrun: every process makes the same data
    dist.check_batch(config.batch_size, "--batch-size")
    base = DefocusModel.load(finetune) if isinstance(finetune, (str, os.PathLike)) else finetune
    if base is not None:
        if tile is not None and tile != base.region.tile:
            raise ConfigError(
                f"--tile {tile} ≠ the fine-tuned model's tile {base.region.tile}; leave --tile out"
            )
        tile = base.region.tile
    tile = DEFAULT_TILE if tile is None else tile
    p = get_preset(preset)
    if resume:  # a damaged or mismatched checkpoint is refused before minutes of data
        n_features = (
            base.net.config.n_features
            if base is not None
            else region_for(p.optics, tile, transform=transform, cells=cells).n_features
            if data is None
            else None  # the stacks' optics decide (checked when the checkpoint is loaded)
        )
        check_training_state(
            checkpoint_dir, _resume_settings(config, base.net if base else None, n_features)
        )

    t0 = time.perf_counter()
    notes: list[str] = []
    if simulate is not None:
        ill = None
        if base is not None:
            ill = base.optics.illumination
            if not (
                math.isclose(
                    base.optics.pixel_size_um, p.optics.pixel_size_um, rel_tol=OPTICS_TOLERANCE
                )
                and math.isclose(base.optics.na, p.optics.na, rel_tol=OPTICS_TOLERANCE)
            ):
                raise ConfigError(
                    f"the fine-tuned model's optics are not preset {p.name}'s — pass its --preset"
                )
        examples = simulate_examples(
            simulate,
            preset=p,
            size=tile,
            tile=tile,
            z_um=z_um,
            illumination=ill,
            sample=list(samples) if samples else "cells",
            randomization=randomization,
            transform=base.region.transform if base is not None else transform,
            cells=base.region.cells if base is not None else cells,
            seed=seed,
            workers=workers,
            progress=data_progress,
        )
        optics = (
            base.optics
            if base is not None
            else (p.optics if ill is None else p.optics.with_illumination(ill))
        )
        region = (
            base.region
            if base is not None
            else region_for(optics, tile, transform=transform, cells=cells)
        )
        zs = np.asarray(z_um if z_um is not None else p.z_positions(), dtype=float)
        source: dict[str, Any] = {
            "simulated_fields": simulate,
            "samples": list(samples) if samples else ["cells"],
            "preset": p.name,
            "seed": seed,
            "z_um": [float(zs.min()), float(zs.max())],
            "planes": int(zs.size),
        }
    elif examples is not None:
        optics = base.optics if base is not None else p.optics
        region = (
            base.region
            if base is not None
            else region_for(optics, tile, transform=transform, cells=cells)
        )
        centre = 0.0 if region.transform == "log" else 1.0
        if len(examples) and not np.allclose(examples.features.mean(axis=1), centre, atol=1e-2):
            raise ConfigError(
                f'the examples\' features are not "{region.transform}"-normalized (mean '
                f"{centre:g} per vector) — make them with transform={region.transform!r}"
            )
        if examples.features.shape[1] != region.n_features:
            raise ConfigError(
                f"the examples have {examples.features.shape[1]} features; {p.name} at {tile}² "
                f"tiles has {region.n_features} — give the preset and tile they were made with"
            )
        source = {"examples": len(examples)}
    else:
        assert data is not None
        examples, region, optics, notes = examples_from_folder(
            data,
            tile=tile,
            optics=base.optics if base is not None else p.optics,
            region=base.region if base is not None else None,
            check=(lambda px, o: base.check_optics(o, px)) if base is not None else None,
            pixel_size_um=pixel_size_um,
            progress=data_progress,
            transform=transform,
            cells=cells,
        )
        source = {"folder": str(data), "stacks": [f.get("file") for f in examples.fields]}
    t_data = time.perf_counter() - t0
    train_set, val_set = split_by_field(examples, validation, seed=seed)

    t1 = time.perf_counter()
    net, history = fit_fcfnn(
        train_set,
        val_set,
        config,
        init=base.net if base is not None else None,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
    )
    t_train = time.perf_counter() - t1
    training: dict[str, Any] = {
        "config": config.to_dict(),
        "history": history.to_dict(),
        "data_seconds": t_data,
        "train_seconds": t_train,
    }
    if base is not None:
        training["finetuned_from"] = base.source or str(finetune)
    preset_name = (
        p.name if data is None else base.metadata.get("preset") if base is not None else None
    )
    model = DefocusModel.from_training(
        net,
        region,
        optics,
        train_set,
        validation=val_set if calibrate_on_validation else None,
        trusted_range_um=trusted_range_um,
        metadata={
            "preset": preset_name,
            "training": {**training, **(metadata or {})},
            "data": {
                **source,
                "train": train_set.summary(),
                "validation": val_set.summary(),
                **(data_info or {}),
                **({"notes": notes} if notes else {}),
            },
        },
    )
    if output is not None and dist.is_main:
        model.save(output, overwrite=overwrite)
    dist.barrier()  # the folder is complete before any process goes on
    return model
