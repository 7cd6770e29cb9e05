"""Train the bundled Deep-R refocusing model ``builtin:refocus-40x-fluor``
(generator + DPM decoder).

Simulated data with a fixed seed, so anyone can regenerate the model:

    # writes src/focuskit/builtin/refocus-40x-fluor
    python scripts/train_deepr.py --cache /tmp/deepr.npz

Data: ``--fields`` simulated 512² fields of the ``deepr-40x-fluor`` microscope (40×/0.95,
fluorescence), cycling through fluorescent beads, cells (stain density) and fluorescent
tissue, each a focal stack over ±6 µm at 0.2 µm with small stage drift and camera noise,
registered, its focus chosen by SSIM to the EDOF image (Luo et al., "Data pre-processing");
15 % of the fields are held out for validation. Training: ``--steps`` generator updates
on random 256² windows of pairs within ±5 µm (``RefocusTrainConfig``), then the DPM decoder
on the frozen encoder. The timing of the last run is recorded in the model's config.json
and printed at the end.

The shipped model: ``--steps 8000 --weights 0.3 1.5927 0.15356`` after 1000 steps with the
balanced weights (see the "note" in its config.json): 9 min to simulate, 77 min of GAN and
5 min of DPM training on 2 CPU cores; validation BerHu 2.68, MS-SSIM 0.846, DPM RMSE 0.79 µm.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    from focuskit.refocus import (
        RefocusTiles,
        RefocusTrainConfig,
        loss_curve_plot,
        simulate_refocus_tiles,
    )
    from focuskit.refocus import train as train_model

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="deepr-40x-fluor")
    parser.add_argument("--fields", type=int, default=60)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--dpm-steps", type=int, default=1500)
    parser.add_argument("--z-range", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument(
        "--weights",
        type=float,
        nargs=3,
        default=None,
        metavar=("LAMBDA", "NU", "XI"),
        help="loss weights (adversarial, MS-SSIM, BerHu); default: balanced after warm-up",
    )
    parser.add_argument(
        "--families",
        choices=("none", "train"),
        default="none",
        help="also image the fluorescence sample families' training split (`focuskit "
        "samples`), in turn with the beads, cells and tissue; the unseen split is never used",
    )
    parser.add_argument(
        "--init", default=None, help="start from this model (e.g. builtin:refocus-40x-fluor)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--note",
        default=None,
        help="recorded in the model's training info (e.g. how a run was resumed)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="reuse/keep the simulated tiles in this .npz (delete it to regenerate)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint folder (resumes if present)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="model folder (default src/focuskit/builtin/refocus-<microscope> of the preset)",
    )
    args = parser.parse_args()
    output = args.output or root / "src/focuskit/builtin" / args.preset.replace(
        "deepr-", "refocus-"
    )

    t0 = time.perf_counter()
    timing = args.cache.with_suffix(".json") if args.cache is not None else None
    if args.cache is not None and args.cache.is_file() and timing is not None and timing.is_file():
        tiles = RefocusTiles.load(args.cache)
        t_data = float(json.loads(timing.read_text())["data_seconds"])
        print(f"loaded {len(tiles)} cached tiles from {args.cache} (simulated in {t_data:.0f} s)")
    else:

        def report(done: int, total: int) -> None:
            print(
                f"  simulated {done}/{total} fields ({time.perf_counter() - t0:.0f} s)", flush=True
            )

        samples = None
        if args.families == "train":
            from focuskit.simulate import sample_families

            families = sample_families("fluorescence", split="train")
            samples = ["beads", "cells", "fluorescent-tissue", *families]
        tiles = simulate_refocus_tiles(
            args.preset,
            args.fields,
            samples=samples,
            z_range_um=args.z_range,
            seed=args.seed,
            workers=args.workers,
            progress=report,
        )
        t_data = time.perf_counter() - t0
        if args.cache is not None and timing is not None:
            tiles.save(args.cache)
            timing.write_text(json.dumps({"data_seconds": t_data}))

    config = RefocusTrainConfig(
        max_steps=args.steps,
        warmup_steps=min(500, args.steps // 4),
        z_range_um=args.z_range,
        seed=args.seed,
        weights="balanced" if args.weights is None else tuple(args.weights),
    )
    t1 = time.perf_counter()

    def phase(name: str):  # type: ignore[no-untyped-def]
        def progress(step: int, total: int, values: dict[str, float]) -> None:
            print(
                f"  {name} step {step}/{total}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in values.items())
                + f" ({time.perf_counter() - t1:.0f} s)",
                flush=True,
            )

        return progress

    model = train_model(
        tiles=tiles,
        preset=args.preset,
        config=config,
        dpm_steps=args.dpm_steps,
        z_range_um=args.z_range,
        seed=args.seed,
        init=args.init,
        checkpoint_dir=args.checkpoint,
        resume=args.checkpoint is not None and (args.checkpoint / "checkpoint.json").is_file(),
        progress=phase,
        metadata={
            "command": f"python scripts/train_deepr.py --preset {args.preset} "
            f"--fields {args.fields} "
            f"--steps {args.steps} --dpm-steps {args.dpm_steps} --z-range {args.z_range:g} "
            f"--seed {args.seed} --families {args.families}"
            + ("" if args.init is None else f" --init {args.init}")
            + (
                ""
                if args.weights is None
                else " --weights " + " ".join(f"{w:g}" for w in args.weights)
            ),
            "data": {k: v for k, v in tiles.info.items() if k != "fields"},
            "note": args.note,
        },
    )
    t = model.metadata["training"]
    history, dpm_history = t["history"], t["dpm_history"]
    t["validation_ms_ssim"] = history["val_ms_ssim"][history["steps"].index(history["best_step"])]
    t["seconds"] = {
        "data": round(t_data),
        "gan": round(history["seconds"]),
        "dpm": round(dpm_history["seconds"]),
    }
    model.metadata["preset"] = args.preset
    model.save(output, overwrite=True)
    from focuskit.refocus import DPMHistory, RefocusHistory

    # The bundled model's curves live in docs/; a model written elsewhere keeps its own.
    plot = (
        root / "docs" / f"{args.preset}-loss.png"
        if args.output is None
        else output / "loss_curves.png"
    )
    plot.parent.mkdir(exist_ok=True)
    loss_curve_plot(RefocusHistory.from_dict(history), DPMHistory.from_dict(dpm_history), plot)
    print(
        f"wrote {output} and {plot}: validation BerHu {t['validation_berhu']:.4f} (step "
        f"{t['best_step']}), DPM RMSE {t['dpm_validation_rmse_um']:.3f} µm; data {t_data:.0f} s, "
        f"GAN {history['seconds']:.0f} s (this run {time.perf_counter() - t1:.0f} s), total "
        f"{time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
