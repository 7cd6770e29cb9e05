"""Train the bundled single-shot defocus model ``builtin:singleshot-20x-led``.

Simulated data with a fixed seed, so anyone can regenerate the model:

    python scripts/train_fcfnn.py                 # writes src/focuskit/builtin/singleshot-20x-led

Fields: 1024² images (one 1024² tile each, Pinkard et al. Note S3 item 3) of phase cells
at random density (0.1–0.6 of the area), exposure (200–3000 photons/pixel) and focus
offset (±5 µm), under one LED at 24° (sx 0.407), 61 planes from −45 to +45 µm (the model
trusts ±30 µm, the preset's range, and flags predictions beyond it). Labels:
the simulator's sample plane (OPTICS.md's z); every 10th field also gets a DPC companion
stack to measure how far the paper's ground-truth proxy sits from it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# Trained ±45 µm, trusted ±30 µm (the preset's range): beyond it the network says so
# rather than folding a far image into the range it knows.
TRAIN_Z_UM = np.arange(-45.0, 45.1, 1.5)


def main() -> None:
    from focuskit.optics import get_preset
    from focuskit.singleshot import DefocusExamples, TrainConfig, simulate_examples
    from focuskit.singleshot import train as train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=140)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="reuse/keep the simulated examples in this .npz (delete it to regenerate)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "src/focuskit/builtin/singleshot-20x-led",
    )
    args = parser.parse_args()

    preset = get_preset("fcfnn-20x-led")
    t0 = time.perf_counter()
    last = [0.0]

    def report(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 20 or done == total:
            last[0] = time.perf_counter()
            print(
                f"  simulated {done}/{total} fields ({time.perf_counter() - t0:.0f} s)", flush=True
            )

    def progress(step: int, total: int, values: dict[str, float]) -> None:
        print(f"  step {step}/{total}: validation RMSE {values['val_rmse_um']:.3f} µm", flush=True)

    # The cache holds the simulated examples: with it, the recipe's data step is a load.
    timing = args.cache.with_suffix(".json") if args.cache is not None else None
    cached = (
        args.cache is not None and args.cache.is_file() and timing is not None and timing.is_file()
    )
    examples = (
        DefocusExamples.load(args.cache)
        if cached
        else simulate_examples(
            args.fields,
            preset=preset,
            size=1024,
            tile=1024,
            seed=args.seed,
            z_um=TRAIN_Z_UM,
            workers=args.workers,
            progress=report,
        )
    )
    t_data = (
        float(json.loads(timing.read_text())["data_seconds"])
        if cached
        else time.perf_counter() - t0
    )
    if args.cache is not None and timing is not None and not cached:
        examples.save(args.cache)
        timing.write_text(json.dumps({"data_seconds": t_data}))
    print(
        f"data: {len(examples)} examples, {examples.features.shape[1]} features, {t_data:.0f} s; "
        f"{json.dumps(examples.summary())}",
        flush=True,
    )

    config = TrainConfig(
        max_steps=args.steps, eval_every=200, patience=12, seed=args.seed, z_scale_um=45.0
    )
    model = train_model(
        args.output,
        examples=examples,
        preset=preset.name,
        config=config,
        seed=args.seed,
        tile=1024,
        trusted_range_um=(preset.z_min_um, preset.z_max_um),
        calibrate_on_validation=True,
        overwrite=True,
        metadata={
            "data_seconds": t_data,
            "command": "python scripts/train_fcfnn.py "
            + " ".join(
                f"--{k} {v}"
                for k, v in (("fields", args.fields), ("steps", args.steps), ("seed", args.seed))
            ),
        },
        data_info={
            "sample": "cells",
            "density": [0.1, 0.6],
            "photons": [200, 3000],
            "focus_offset_um": [-5, 5],
        },
        progress=progress,
    )
    training = model.metadata["training"]
    history = training["history"]
    size_mb = sum(p.stat().st_size for p in args.output.iterdir()) / 2**20
    print(
        f"best validation RMSE {history['best_val_rmse_um']:.3f} µm at step "
        f"{history['best_step']}; data {t_data:.0f} s + training "
        f"{training['train_seconds']:.0f} s; wrote {args.output} ({size_mb:.1f} MB)"
    )


if __name__ == "__main__":
    main()
