"""Train the systems' networks on tiny synthetic data, on one process or under torchrun.

``python _ddp_worker.py OUT SYSTEM... [--steps N] [--batch B] [--checkpoint] [--resume]``:
for each system writes ``OUT/SYSTEM/history-<rank>.json`` (the history) and, on rank 0,
``OUT/SYSTEM/state.npz`` (the trained network's plain state); ``--checkpoint`` keeps
checkpoints in ``OUT/SYSTEM/checkpoint`` (not for ``dpm``, which has none). Used by
test_distributed.py, which runs it both ways (one torchrun start for all systems) and
compares. :func:`train` is the same in-process.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from focuskit.nn import state_to_numpy


def singleshot(args: argparse.Namespace) -> tuple[object, object]:
    from focuskit.singleshot import DefocusExamples, TrainConfig, fit_fcfnn

    rng = np.random.default_rng(5)
    features = rng.normal(size=(240, 24)).astype(np.float32)
    z = (features[:, :4] @ np.array([8.0, -5.0, 3.0, 2.0])).astype(np.float32)
    field = np.repeat(np.arange(12), 20)
    data = DefocusExamples(features, z, field)
    config = TrainConfig(
        width=16,
        depth=3,
        input_dropout=0.1,  # dropout on: its masks must match one process's too
        mse_warmup=0.5,  # the σ head joins half-way: the NLL term is in the curve
        batch_size=args.batch,
        max_steps=args.steps,
        eval_every=1,
        patience=1000,
        seed=3,
    )
    val = field >= 10
    net, history = fit_fcfnn(
        data.subset(~val),
        data.subset(val),
        config,
        checkpoint_dir=args.checkpoint,
        resume=args.resume,
    )
    return net, history


def fewshot(args: argparse.Namespace) -> tuple[object, object]:
    from focuskit.fewshot import BlurPatches, BlurTrainConfig, fit_blur_cnn

    rng = np.random.default_rng(6)
    n = 96
    waves = rng.uniform(0, 3, n).astype(np.float32)
    base = rng.normal(size=(n, 32, 32))
    # Blur grows with W: a box average over more neighbours (learnable, cheap).
    w = waves[:, None, None]
    images = base / (1 + w) + np.roll(base, 1, 1) * w / (1 + w)
    images = (images - images.mean((1, 2), keepdims=True)) / images.std((1, 2), keepdims=True)
    patches = BlurPatches(
        images.astype(np.float16),
        waves,
        np.full(n, 0.3, np.float32),
        np.repeat(np.arange(12), 8).astype(np.int32),
        np.zeros(n, np.int8),
    )
    val = patches.field >= 10
    config = BlurTrainConfig(
        channels=(4, 8),
        batch_size=args.batch,
        max_steps=args.steps,
        eval_every=1,
        patience=1000,
        seed=2,
        num_threads=1,
    )
    net, history = fit_blur_cnn(
        patches.subset(~val),
        patches.subset(val),
        config,
        checkpoint_dir=args.checkpoint,
        resume=args.resume,
    )
    return net, history


def _tiles() -> object:
    from focuskit.refocus import RefocusTiles

    rng = np.random.default_rng(7)
    planes, defocus = [], []
    for _ in range(6):
        sharp = rng.gamma(2.0, 1.0, (40, 40)).astype(np.float32)
        stack = [sharp]
        for _ in range(2):  # blurred copies: each a 3-neighbour average more
            prev = stack[-1]
            stack.append((prev + np.roll(prev, 1, 0) + np.roll(prev, 1, 1)) / 3)
        planes.append(np.stack([stack[2], stack[1], stack[0], stack[1], stack[2]]))
        defocus.append(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    return RefocusTiles(
        planes, defocus, np.full(6, 2), np.array([0, 0, 1, 1, 2, 2]), pixel_size_um=0.3
    )


def refocus(args: argparse.Namespace) -> tuple[object, object]:
    from focuskit.refocus import RefocusTrainConfig, fit_deepr

    tiles = _tiles()
    val = tiles.field == 2
    config = RefocusTrainConfig(
        generator_channels=(4, 4, 4, 4, 4, 4),
        discriminator_channels=(4, 4),
        z_range_um=3.0,
        crop=32,
        batch_size=args.batch,
        max_steps=args.steps,
        warmup_steps=2,  # balanced weights from step 2: the adversarial term is trained
        d_every=1,  # the discriminator (two DDP forwards per update) every step
        eval_every=1,
        validation_pairs=4,
        seed=1,
        num_threads=1,
    )
    gen, _, history = fit_deepr(
        tiles.subset(np.flatnonzero(~val)),
        tiles.subset(np.flatnonzero(val)),
        config,
        checkpoint_dir=args.checkpoint,
        resume=args.resume,
    )
    return gen, history


def dpm(args: argparse.Namespace) -> tuple[object, object]:
    import torch

    from focuskit.refocus import DeepRConfig, DeepRGenerator, DPMTrainConfig, fit_dpm

    tiles = _tiles()
    val = tiles.field == 2
    torch.manual_seed(0)
    gen = DeepRGenerator(DeepRConfig(channels=(4, 4, 4, 4, 4, 4)))
    config = DPMTrainConfig(
        z_range_um=3.0,
        crop=32,
        batch_size=args.batch,
        max_steps=args.steps,
        eval_every=1,
        validation_pairs=4,
        seed=1,
        num_threads=1,
    )
    decoder, history = fit_dpm(
        gen, tiles.subset(np.flatnonzero(~val)), tiles.subset(np.flatnonzero(val)), config
    )
    return decoder, history


SYSTEMS = {"singleshot": singleshot, "fewshot": fewshot, "refocus": refocus, "dpm": dpm}


def train(
    out: Path,
    system: str,
    *,
    steps: int = 5,
    batch: int = 8,
    checkpoint: bool = False,
    resume: bool = False,
) -> tuple[object, dict]:
    """Train ``system`` and write its history (and, on rank 0, its state) under ``out``.

    Returns
    -------
    net : torch.nn.Module
        The trained network.
    history : dict
        Its history.
    """
    folder = out / system
    args = argparse.Namespace(
        steps=steps,
        batch=batch,
        checkpoint=folder / "checkpoint" if checkpoint and system != "dpm" else None,
        resume=resume,
    )
    net, history = SYSTEMS[system](args)
    rank = int(os.environ.get("RANK", "0"))
    folder.mkdir(parents=True, exist_ok=True)
    record = history.to_dict()
    (folder / f"history-{rank}.json").write_text(json.dumps(record))
    if rank == 0:
        np.savez(folder / "state.npz", **state_to_numpy(net))
    return net, record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("systems", nargs="+", choices=sorted(SYSTEMS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--checkpoint", action="store_true")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    for system in args.systems:
        train(
            args.out,
            system,
            steps=args.steps,
            batch=args.batch,
            checkpoint=args.checkpoint,
            resume=args.resume,
        )


if __name__ == "__main__":
    main()
