"""Train the bundled DeepFocus blur-score CNN ``builtin:fewshot-widefield``.

Simulated data with a fixed seed, so anyone can regenerate the model:

    # writes src/focuskit/builtin/fewshot-widefield
    python scripts/train_blur_cnn.py --cache /tmp/blur.npz

On 2 CPU cores: about 10 minutes to simulate 57 600 patches and 21 minutes to train
(16 000 steps of 64); validation MAE 0.96 waves over 0–12 waves and all objectives
(0.17 below half a wave, 0.52 at 1–2 waves).

Patches: ``--fields`` objects (fluorescent tissue, beads, cells, stained tissue,
scikit-image pictures, power-law textures; the images in HELD_OUT_IMAGES are never
used) × 6 random defocus values × 4 tiles of 128², each under a random objective
(cutoff NA·p/λ 0.2–0.5), small random aberrations, 30–3000 photons/pixel with a random
background. 15 % of the objects are held out for validation.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from focuskit.fewshot import (
        CONTENTS,
        BlurDataConfig,
        BlurPatches,
        BlurTrainConfig,
        simulate_blur_patches,
    )
    from focuskit.fewshot import train as train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=2400)
    parser.add_argument("--steps", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--families",
        choices=("none", "train"),
        default="none",
        help="also draw objects from the training split of the fluorescence and absorption "
        "sample families (`focuskit samples`); the unseen split is never used",
    )
    parser.add_argument(
        "--saturation-fraction",
        type=float,
        default=0.0,
        help="share of fields whose camera saturates at focus (sparse bright beads)",
    )
    parser.add_argument("--init", default=None, help="fine-tune this model (e.g. builtin:…)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="reuse/keep the simulated patches in this .npz (delete it to regenerate)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint folder (resumes if present)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "src/focuskit/builtin/fewshot-widefield",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    contents: tuple[str, ...] = CONTENTS
    if args.families == "train":
        from focuskit.simulate import sample_families

        contents += tuple(
            sample_families("fluorescence", split="train")
            + sample_families("absorption", split="train")
        )
    data_config = BlurDataConfig(
        n_fields=args.fields,
        seed=args.seed,
        contents=contents,
        saturation_fraction=args.saturation_fraction,
    )
    timing = args.cache.with_suffix(".json") if args.cache is not None else None
    if args.cache is not None and args.cache.is_file() and timing is not None and timing.is_file():
        patches = BlurPatches.load(args.cache)
        t_data = float(json.loads(timing.read_text())["data_seconds"])
        print(
            f"loaded {len(patches)} cached patches from {args.cache} (simulated in {t_data:.0f} s)"
        )
    else:
        last = [0.0]

        def report(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 30 or done == total:
                last[0] = time.perf_counter()
                print(
                    f"  simulated {done}/{total} fields ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )

        patches = simulate_blur_patches(data_config, workers=args.workers, progress=report)
        t_data = time.perf_counter() - t0
        if args.cache is not None and timing is not None:
            patches.save(args.cache)
            timing.write_text(json.dumps({"data_seconds": t_data}))

    config = BlurTrainConfig(max_steps=args.steps, seed=args.seed, num_threads=args.threads)
    if args.learning_rate is not None:
        config = dataclasses.replace(config, learning_rate=args.learning_rate)
    t1 = time.perf_counter()

    def progress(step: int, total: int, values: dict[str, float]) -> None:
        print(
            f"  step {step}/{total}: validation MAE {values['val_mae_waves']:.3f} waves "
            f"({time.perf_counter() - t1:.0f} s)",
            flush=True,
        )

    resume = args.checkpoint is not None and (args.checkpoint / "checkpoint.json").is_file()
    scorer = train_model(
        patches=patches,
        data_config=data_config,
        config=config,
        init=args.init,
        seed=args.seed,
        checkpoint_dir=args.checkpoint,
        resume=resume,
        progress=progress,
    )
    t_train = time.perf_counter() - t1

    # Where the error lies: by content and by defocus, on the held-out objects.
    from focuskit.fewshot import split_patches_by_field
    from focuskit.fewshot._data import content_names

    names = content_names()  # the content index of a patch: legacy kinds, then families

    _, val = split_patches_by_field(patches, 0.15, seed=args.seed)
    err = scorer.score_patches(val.images.astype(np.float32)) - val.waves
    by_content = {
        names[k]: round(float(np.mean(np.abs(err[val.content == k]))), 4)
        for k in np.unique(val.content)
    }
    edges = [0, 0.5, 1, 2, 4, 8, 12]
    by_waves = {
        f"{a}-{b}": round(float(np.mean(np.abs(err[(val.waves >= a) & (val.waves < b)]))), 4)
        for a, b in itertools.pairwise(edges)
        if np.any((val.waves >= a) & (val.waves < b))
    }
    trained = scorer.metadata["training"]
    scorer.metadata = {
        "training": {
            "script": "scripts/train_blur_cnn.py",
            "command": (
                f"python scripts/train_blur_cnn.py --fields {args.fields} --steps "
                f"{args.steps} --seed {args.seed} --families {args.families} "
                f"--saturation-fraction {args.saturation_fraction}"
                + (f" --init {args.init}" if args.init else "")
                + (f" --learning-rate {args.learning_rate}" if args.learning_rate else "")
            ),
            "data": data_config.__dict__
            | {
                "cutoff_range": list(data_config.cutoff_range),
                "pixel_range_um": list(data_config.pixel_range_um),
                "photons_range": list(data_config.photons_range),
                "contents": list(data_config.contents),
                "images": list(data_config.images),
            },
            "train_config": config.to_dict(),
            "patches": trained["patches"],
            "parameters": scorer.net.parameter_count(),
            "data_seconds": round(t_data, 1),
            "train_seconds": round(t_train, 1),
            "best_step": trained["best_step"],
            "validation_mae_waves": round(trained["validation_mae_waves"], 4),
            "validation_mae_by_content": by_content,
            "validation_mae_by_waves": by_waves,
        }
    }
    scorer.save(args.output, overwrite=True)
    print(json.dumps(scorer.metadata["training"] | {"data": "…"}, indent=1))
    print(f"wrote {args.output} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
