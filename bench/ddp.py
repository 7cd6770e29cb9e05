"""Benchmark: `singleshot train` on 1 process and under torchrun on N (gloo, CPU).

Runs ``focuskit singleshot train`` on simulated fields, once as one process and once as
``torchrun --standalone --nproc_per_node N``, with the same global batch, and reports the
training time per step (``history.seconds`` / steps: training and validations, not the
data phase), the whole command's wall time, and how far the two loss curves are apart.

    python bench/ddp.py [--procs 2] [--steps 300] [--batch-size 256] [--json out.json]

Each process gets ``OMP_NUM_THREADS=1``. On a machine with fewer free cores than
processes the N-process run cannot be faster: the point there is the identical curve.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(procs: int, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train once on ``procs`` processes; the timing and the history."""
    flags = [
        "singleshot", "train", "-o", str(out), "--simulate", str(args.fields), "--tile",
        str(args.tile), "--steps", str(args.steps), "--eval-every", str(args.eval_every),
        "--batch-size", str(args.batch_size), "--json",
    ]  # fmt: skip
    launcher = [sys.executable, "-m", "focuskit"]
    if procs > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        launcher += ["--nproc_per_node", str(procs), "-m", "focuskit"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([*launcher, *flags], check=True, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    config = json.loads((out / "config.json").read_text())
    history = config["training"]["history"]
    return {
        "processes": procs,
        "wall_s": round(wall, 1),
        "data_s": round(config["training"]["data_seconds"], 2),
        "train_s": round(history["seconds"], 2),
        "ms_per_step": round(1000 * history["seconds"] / history["steps"][-1], 2),
        "train_loss": history["train_loss"],
        "val_rmse_um": history["val_rmse_um"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--fields", type=int, default=6)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(1, Path(tmp) / "one", args)
        many = run(args.procs, Path(tmp) / "many", args)
    rel = max(
        abs(a - b) / max(abs(a), 1e-12)
        for key in ("train_loss", "val_rmse_um")
        for a, b in zip(one[key], many[key], strict=True)
    )
    for r in (one, many):
        print(
            f"{r['processes']} process(es): {r['ms_per_step']:.1f} ms/step "
            f"(training {r['train_s']:.1f} s, data {r['data_s']:.1f} s, command {r['wall_s']} s)"
        )
        print(f"  train loss {[round(v, 5) for v in r['train_loss']]}")
        print(f"  val RMSE   {[round(v, 4) for v in r['val_rmse_um']]} µm")
    print(f"largest relative difference of the curves: {rel:.1e}")
    if args.json:
        args.json.write_text(json.dumps({"runs": [one, many], "max_rel_diff": rel}, indent=2))


if __name__ == "__main__":
    main()
