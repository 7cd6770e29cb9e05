"""Train the bundled single-shot defocus model ``builtin:singleshot-20x-led``.

Simulated data with a fixed seed, so anyone can regenerate the model:

    python scripts/train_fcfnn.py                 # writes src/focuskit/builtin/singleshot-20x-led
    python scripts/train_fcfnn.py --recipe families -o models/fcfnn-families   # issue 18's

``--recipe paper`` (default; the shipped model): 1024² images (one 1024² tile each,
Pinkard et al. Note S3 item 3) of phase cells at random density (0.1–0.6 of the area),
exposure (200–3000 photons/pixel) and focus offset (±5 µm), under one LED at 24°
(sx 0.407), 61 planes from −45 to +45 µm (the model trusts ±30 µm, the preset's range,
and flags predictions beyond it). Labels: the simulator's sample plane (OPTICS.md's z);
every 10th field also gets a DPC companion stack to measure how far the paper's
ground-truth proxy sits from it. Features: Fourier magnitudes on the two pupil discs,
divided by their mean; a signed z head and a σ head.

``--recipe families`` (issue 18; measured in bench/singleshot.py, not shipped — see the
README): every transmitted-light training family plus the legacy cells, half the fields
randomized (:class:`Randomization`: peak phase 0.2–6 rad, co-located absorption 0–0.1,
200–20,000 photons, LED angle ±1°, NA and λ ±2 %); log-standardized magnitudes on the
overlap of the two discs; a |z| head and a sign head P(z > 0) (one LED cannot tell +z
from −z for a weak phase object, docs/singleshot-sign.md). 96 fields: 16.5 min of data
and 2.3 min of training on one shared core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

# Trained ±45 µm, trusted ±30 µm (the preset's range): beyond it the network says so
# rather than folding a far image into the range it knows.
TRAIN_Z_UM = np.arange(-45.0, 45.1, 1.5)
PHOTONS_RANDOMIZED = (200.0, 20000.0)
DEFAULT_FIELDS = {"paper": 140, "families": 96}


def main() -> None:
    from focuskit.optics import get_preset
    from focuskit.simulate import sample_families
    from focuskit.singleshot import DefocusExamples, Randomization, TrainConfig, simulate_examples
    from focuskit.singleshot import train as train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=("paper", "families"), default="paper")
    parser.add_argument(
        "--fields",
        type=int,
        default=None,
        help="default 140 (paper), 96 (families: half randomized)",
    )
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
    families = args.recipe == "families"
    fields = args.fields if args.fields is not None else DEFAULT_FIELDS[args.recipe]

    preset = get_preset("fcfnn-20x-led")
    samples = ["cells", *sample_families("transmitted", split="train")] if families else ["cells"]
    features = {"transform": "log", "cells": "overlap"} if families else {}
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

    def simulate() -> DefocusExamples:
        common: dict[str, Any] = {
            "preset": preset,
            "size": 1024,
            "tile": 1024,
            "z_um": TRAIN_Z_UM,
            "workers": args.workers,
            "progress": report,
        }
        if not families:
            return simulate_examples(fields, seed=args.seed, **common)
        common.update(sample=samples, incoherent_every=0, **features)
        half = fields // 2
        plain = simulate_examples(half, seed=args.seed, **common)
        randomized = simulate_examples(
            fields - half,
            seed=args.seed + 1,
            first_field=half,
            photons_range=PHOTONS_RANDOMIZED,
            randomization=Randomization(),
            **common,
        )
        return DefocusExamples.concatenate([plain, randomized])

    # The cache holds the simulated examples: with it, the recipe's data step is a load.
    timing = args.cache.with_suffix(".json") if args.cache is not None else None
    cached = (
        args.cache is not None and args.cache.is_file() and timing is not None and timing.is_file()
    )
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
        magnitude=families,
        predict_sign=families,
    )
    data_info: dict[str, Any] = {
        "samples": samples,
        "density": [0.1, 0.6],
        "photons": [200, 3000],
        "focus_offset_um": [-5, 5],
    }
    if families:
        data_info.update(
            randomized_fields=fields - fields // 2,
            randomization=Randomization().to_dict(),
            photons_randomized=list(PHOTONS_RANDOMIZED),
        )
    model = train_model(
        args.output,
        examples=examples,
        preset=preset.name,
        config=config,
        seed=args.seed,
        tile=1024,
        transform=features.get("transform", "mean"),
        cells=features.get("cells", "discs"),
        trusted_range_um=(preset.z_min_um, preset.z_max_um),
        calibrate_on_validation=True,
        overwrite=True,
        metadata={
            "data_seconds": t_data,
            "command": "python scripts/train_fcfnn.py "
            + " ".join(
                f"--{k} {v}"
                for k, v in (
                    ("recipe", args.recipe),
                    ("fields", fields),
                    ("steps", args.steps),
                    ("seed", args.seed),
                )
            ),
        },
        data_info=data_info,
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
