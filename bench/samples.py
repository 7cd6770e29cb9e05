"""Benchmark: rendering time of every sample family (the "Sample families" budget).

Each family renders a 1024² field at 0.325 µm (a 20× objective: a 333 µm field) for
several seeds, so its random parameters span their ranges; the table gives the median
and the worst time per family, its modality, split and measured content statistics.
The baseline, timed in the same run, is the legacy ``cells`` generator (the simulator's
own cell sample before the families existed) on the same field.

    python bench/samples.py [--size 1024] [--seeds 5] [--json out.json]

Summary: the slowest family's worst time against the 0.5 s budget, and against the legacy
generator.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

BUDGET_S = 0.5
PIXEL_UM = 0.325


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    from focuskit.simulate import FAMILIES, family_statistics, make_sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    shape = (args.size, args.size)

    # Warm up imports, FFT plans and the picture cache.
    for fam in FAMILIES.values():
        fam((64, 64), PIXEL_UM, 0)
    make_sample("cells", (64, 64), PIXEL_UM, seed=0)

    legacy = [
        _timed(lambda s=s: make_sample("cells", shape, PIXEL_UM, seed=s)) for s in range(args.seeds)
    ]
    rows = []
    for name, fam in FAMILIES.items():
        times = [_timed(lambda s=s, f=fam: f(shape, PIXEL_UM, s)) for s in range(args.seeds)]
        stats = family_statistics(name, draws=3, size=256)
        rows.append(
            {
                "family": name,
                "modality": "+".join(fam.modality),
                "split": fam.split,
                "median_s": float(np.median(times)),
                "worst_s": float(np.max(times)),
                "coverage": stats["coverage"][1],
                "contrast": stats.get("phase_span_rad", stats.get("peak_to_mean", [0, 0]))[1],
            }
        )

    print(f"Sample families: {args.size}² at {PIXEL_UM} µm, {args.seeds} seeds each (2 cores)")
    head = (
        f"{'family':22s} {'modality':20s} {'split':6s} {'median s':>8s} {'worst s':>8s} "
        f"{'coverage':>8s} {'φ span / peak:mean':>18s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['family']:22s} {r['modality']:20s} {r['split']:6s} {r['median_s']:8.3f} "
            f"{r['worst_s']:8.3f} {r['coverage']:8.3f} {r['contrast']:18.3g}"
        )
    base = float(np.median(legacy))
    print(f"{'baseline: legacy cells':50s} {base:8.3f} {max(legacy):8.3f}")
    slowest = max(rows, key=lambda r: r["worst_s"])
    over = [r["family"] for r in rows if r["worst_s"] > BUDGET_S]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "legacy_cells_s": legacy, "budget_s": BUDGET_S}, f, indent=2)
    print(
        f"summary: {len(rows)} families; slowest {slowest['family']} worst "
        f"{slowest['worst_s']:.3f} s = {slowest['worst_s'] / BUDGET_S:.2f}× the {BUDGET_S} s "
        f"budget, {slowest['worst_s'] / base:.2f}× the legacy cells generator ({base:.3f} s); "
        f"over budget: {', '.join(over) if over else 'none'}"
    )


if __name__ == "__main__":
    main()
