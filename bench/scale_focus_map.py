"""Benchmark: the slide QC focus map, chunk-wise over OME-Zarr, at 1 and 2 workers.

A synthetic slide (random texture blurred by a Gaussian whose width grows as a plane
across the slide: a tilted sample) is built chunk by chunk as OME-Zarr (never whole in
memory). Each run is a fresh subprocess that maps the slide with
``focuskit.focus.slide_focus_map`` on ``focuskit.io.compute_context(workers, None)`` and
reports tiles/s and its peak memory (``ru_maxrss``). The baseline is the in-memory path on
a crop: the crop loaded as NumPy and every tile scored in a plain loop.

    python bench/scale_focus_map.py [--size 8192] [--tile 512] [--method measure|blur] [--quick]

Summary: tiles/s at 2 workers against 1 and against the in-memory baseline, and peak
memory against the slide's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

_BUILD = textwrap.dedent(
    """
    import sys
    import dask.array as da
    import numpy as np
    from scipy.ndimage import gaussian_filter
    from focuskit.io import FocalStack, write_stack

    size, chunk, path = int(sys.argv[1]), 1024, sys.argv[2]

    def block(block_id=None):
        # Blur σ from 0.5 px (top-left) to 3 px (bottom-right): a tilted slide.
        (k, i, j) = block_id
        rng = np.random.default_rng(i * 1000 + j)
        texture = rng.normal(1000, 250, (chunk + 16, chunk + 16))
        sigma = 0.5 + 2.5 * ((i + 0.5) + (j + 0.5)) * chunk / (2 * size)
        out = gaussian_filter(texture, sigma)[8:-8, 8:-8]
        return np.clip(out, 0, 65535).astype(np.uint16)[None]

    n = size // chunk
    slide = da.map_blocks(
        block, dtype=np.uint16, chunks=((1,), (chunk,) * n, (chunk,) * n)
    )
    write_stack(FocalStack(slide, [0.0], 0.325), path, chunks=(1, chunk, chunk))
    """
)

_RUN = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from focuskit.focus import MeasureTileEstimator, slide_focus_map
    from focuskit.io import compute_context, read_images

    path, workers, method = sys.argv[1], sys.argv[3], sys.argv[4]
    tile, crop = int(sys.argv[2]), int(sys.argv[5])
    if method == "blur":
        from focuskit.cli._slide import BlurTileEstimator, _model
        from focuskit.fewshot import DEFAULT_MODEL
        _model("blur", DEFAULT_MODEL)
        estimator = BlurTileEstimator(DEFAULT_MODEL)
    else:
        estimator = MeasureTileEstimator("tenengrad")
    found = read_images(path, lazy=True)
    image = found.planes[0]
    # Warm up (imports, first calls) outside the timing, in every path alike.
    estimator(np.asarray(image[:tile, :tile]))
    if workers == "memory":  # the baseline: a crop in NumPy, one tile after another
        pixels = np.asarray(image[:crop, :crop])
        n = crop // tile
        t0 = time.perf_counter()
        for r in range(n):
            for c in range(n):
                estimator(pixels[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile])
        tiles = n * n
    else:
        t0 = time.perf_counter()
        with compute_context(int(workers), None):
            fmap = slide_focus_map(image, tile, estimator, pixel_size_um=found.pixel_size_um)
        tiles = fmap.value.size
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"tiles": tiles, "seconds": seconds, "peak_mib": peak}
    if workers != "memory":
        out["slope_x"] = fmap.surface.coefficients["x"]
    print(json.dumps(out))
    """
)


def _python(code: str, *args: object) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-2000:]}")
    return done.stdout


def focus_map_rows(slide: Path, tile: int, crop: int, method: str) -> list[dict]:
    """The focus map of ``slide`` in memory on a crop, then on 1 and 2 Dask workers, each in a
    fresh process (tiles, seconds, peak MiB)."""
    rows = []
    for workers in ("memory", "1", "2"):
        result = json.loads(_python(_RUN, slide, tile, workers, method, crop).splitlines()[-1])
        label = f"in memory, {crop}² crop" if workers == "memory" else f"dask, {workers} worker"
        rows.append({"path": label, "workers": workers, **result})
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'path':<26} {'tiles':>6} {'s':>7} {'tiles/s':>8} {'peak MiB':>9}")
    for r in rows:
        print(
            f"{r['path']:<26} {r['tiles']:>6} {r['seconds']:>7.2f} "
            f"{r['tiles'] / r['seconds']:>8.1f} {r['peak_mib']:>9.0f}"
        )


def summary_line(rows: list[dict], size: int, crop: int, slide_mib: float) -> str:
    rate = {r["workers"]: r["tiles"] / r["seconds"] for r in rows}
    return (
        f"summary: focus map of a {size}² slide at 2 workers {rate['2']:.1f} tiles/s = "
        f"{rate['2'] / rate['1']:.2f}× 1 worker and {rate['2'] / rate['memory']:.2f}× the "
        f"in-memory baseline on a {crop}² crop; peak {rows[2]['peak_mib']:.0f} MiB for a "
        f"{slide_mib:.0f} MiB slide"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="Slide side (pixels)")
    parser.add_argument("--tile", type=int, default=512, help="Tile side (pixels)")
    parser.add_argument("--crop", type=int, default=2048, help="In-memory baseline crop side")
    parser.add_argument("--method", choices=["measure", "blur"], default="measure")
    parser.add_argument("--quick", action="store_true", help="A 4096² slide")
    parser.add_argument("--json", type=Path, help="Also write the rows here")
    args = parser.parse_args()
    size = 4096 if args.quick else args.size
    with tempfile.TemporaryDirectory(prefix="focuskit-bench-") as tmp:
        slide = Path(tmp) / "slide.ome.zarr"
        t0 = time.perf_counter()
        _python(_BUILD, size, slide)
        build_s = time.perf_counter() - t0
        slide_mib = size * size * 2 / 2**20
        print(
            f"slide {size}² uint16 ({slide_mib:.0f} MiB) built chunk-wise as OME-Zarr in "
            f"{build_s:.1f} s; method {args.method}, tile {args.tile}²; "
            f"{os.cpu_count()} CPUs"
        )
        rows = focus_map_rows(slide, args.tile, args.crop, args.method)
    print_rows(rows)
    print(summary_line(rows, size, args.crop, slide_mib))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
