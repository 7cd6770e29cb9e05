"""Benchmark: rendering speed and memory of focal stacks.

Renders 61-plane 1024² stacks — coherent LED (fcfnn-20x-led) and fluorescence
(deepr-40x-fluor) — and reports the time per plane against one complex64 1024² FFT
measured in the same run. Image formation on the 1024² grid costs about 2 FFTs a plane;
the target is ≤ 4× one FFT. The full ``simulate_stack`` (sample generation, the blur
margin around the field, camera noise) is reported too. Each case runs in a fresh
process so its peak resident memory is its own.

    python bench/simulate.py [--size 1024] [--planes 61]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import numpy as np


def _best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fft_time(size: int) -> float:
    import scipy.fft

    a = (np.random.default_rng(0).normal(size=(size, size)) + 0j).astype(np.complex64)
    scipy.fft.fft2(a, workers=-1)  # plan / warm up
    return _best_of(lambda: scipy.fft.ifft2(a, workers=-1), 20)


def _case(name: str, size: int, planes: int, queue: mp.Queue) -> None:
    from focuskit.optics import get_preset, image_stack
    from focuskit.simulate import make_sample, simulate_stack

    preset = get_preset("fcfnn-20x-led" if name.startswith("led") else "deepr-40x-fluor")
    optics = preset.optics
    z = np.linspace(preset.z_min_um, preset.z_max_um, planes)
    sample_name = "cells" if optics.illumination.kind == "led" else "fluorescent-tissue"
    if name.endswith("core"):
        sample = make_sample(
            sample_name,
            (size, size),
            optics.pixel_size_um,
            seed=0,
            wavelength_um=optics.wavelength_um,
        )
        image_stack(sample.values[:64, :64], optics, z[:2])  # warm-up
        shape = image_stack(sample.values, optics, z[:1]).shape[1:]
        # Best of 3, as the FFT baseline is a best-of: both measure the machine, not its noise.
        elapsed = _best_of(lambda: image_stack(sample.values, optics, z), 3)
        shape = (planes, *shape)
    else:
        t0 = time.perf_counter()
        sim = simulate_stack(preset, sample=sample_name, size=size, z_um=z, photons=1000, seed=0)
        elapsed = time.perf_counter() - t0
        shape = sim.data.shape
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "case": name,
            "seconds": elapsed,
            "planes": shape[0],
            "shape": list(shape),
            "peak_mb": peak_mb,
        }
    )


def run_case(name: str, size: int, planes: int) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(name, size, planes, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--planes", type=int, default=61)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    t_fft = fft_time(args.size)
    labels = {
        "led-core": "coherent LED, image formation",
        "fluor-core": "fluorescence, image formation",
        "led-full": "coherent LED, simulate_stack (+margin, sample, noise)",
        "fluor-full": "fluorescence, simulate_stack (+margin, sample, noise)",
    }
    rows = [run_case(name, args.size, args.planes) for name in labels]
    for r in rows:
        r["ms_per_plane"] = 1000 * r["seconds"] / r["planes"]
        r["x_fft"] = r["ms_per_plane"] / (1000 * t_fft)

    if args.json:
        print(json.dumps({"fft_ms": 1000 * t_fft, "rows": rows}, indent=2))
        return
    print(f"one complex64 {args.size}² FFT: {1000 * t_fft:.1f} ms (scipy.fft, all cores)\n")
    header = (
        f"| {'case':<55} | {'planes':>6} | {'ms/plane':>8} | {'× FFT':>6} | {'peak RSS (MB)':>13} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {labels[r['case']]:<55} | {r['planes']:>6} | {r['ms_per_plane']:>8.1f} | "
            f"{r['x_fft']:>6.2f} | {r['peak_mb']:>13.0f} |"
        )
    core = {r["case"]: r["x_fft"] for r in rows}
    print(
        f"\nsummary: image formation per plane / one {args.size}² FFT = {core['led-core']:.2f}× "
        f"(coherent LED), {core['fluor-core']:.2f}× (fluorescence); target ≤ 4×"
    )


if __name__ == "__main__":
    main()
