"""Train the bundled single-shot defocus model ``builtin:singleshot-20x-led``.

Simulated data with a fixed seed, so anyone can regenerate the model:

    python scripts/train_fcfnn.py                 # writes src/focuskit/builtin/singleshot-20x-led

Fields: 1024² images (one 1024² tile each, Pinkard et al. Note S3 item 3) drawn from
every transmitted-light training family (``focuskit samples``: phase cells, tissue,
natural images as phase, mixtures, stained and absorbing samples) plus the legacy
``cells`` generator — never the unseen families, which are kept for reporting. Half the
fields are the families as they come (exposure 200–3000 photons/pixel, focus offset
±5 µm); half are randomized (:class:`Randomization`: peak phase 0.2–6 rad, co-located
absorption 0–0.1, 200–20,000 photons, LED angle ±1°, NA and λ ±2 %). One LED at 24°
(sx 0.407), 61 planes from −45 to +45 µm (the model trusts ±30 µm, the preset's range,
and flags predictions beyond it). Labels: the simulator's sample plane (OPTICS.md's z).

The model (issue 18): log-standardized Fourier magnitudes on the overlap of the two pupil
discs (where one LED's image holds the defocus; content-invariant), a |z| head and a sign
head P(z > 0) — one LED cannot tell +z from −z for a weak phase object, and
the autofocus loop checks a doubtful sign with its verification image.
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
PHOTONS_RANDOMIZED = (200.0, 20000.0)


def main() -> None:
    from focuskit.optics import get_preset
    from focuskit.simulate import sample_families
    from focuskit.singleshot import DefocusExamples, Randomization, TrainConfig, simulate_examples
    from focuskit.singleshot import train as train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=96, help="half plain, half randomized")
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
    samples = ["cells", *sample_families("transmitted", split="train")]
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

    def simulate() -> DefocusExamples:
        half = args.fields // 2
        common = {
            "preset": preset,
            "size": 1024,
            "tile": 1024,
            "z_um": TRAIN_Z_UM,
            "sample": samples,
            "transform": "log",
            "cells": "overlap",
            "incoherent_every": 0,
            "workers": args.workers,
            "progress": report,
        }
        plain = simulate_examples(half, seed=args.seed, **common)
        randomized = simulate_examples(
            args.fields - half,
            seed=args.seed + 1,
            first_field=half,
            photons_range=PHOTONS_RANDOMIZED,
            randomization=Randomization(),
            **common,
        )
        return DefocusExamples.concatenate([plain, randomized])

    examples = DefocusExamples.load(args.cache) if cached else simulate()
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
        max_steps=args.steps,
        eval_every=200,
        patience=12,
        seed=args.seed,
        z_scale_um=45.0,
        magnitude=True,
        predict_sign=True,
    )
    model = train_model(
        args.output,
        examples=examples,
        preset=preset.name,
        config=config,
        seed=args.seed,
        tile=1024,
        transform="log",
        cells="overlap",
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
            "samples": samples,
            "randomized_fields": args.fields - args.fields // 2,
            "randomization": Randomization().to_dict(),
            "photons": [200, 3000],
            "photons_randomized": list(PHOTONS_RANDOMIZED),
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
