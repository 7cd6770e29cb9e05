"""Benchmark: whole slides, chunk by chunk (issue 16): Deep-R refocusing of an OME-Zarr slide.

A uint16 OME-Zarr slide is made chunk by chunk (itself through the chunk-wise writer) from
one simulated ``deepr-40x-fluor`` field defocused by 2 µm, mirrored from chunk to chunk so
that no chunk is a copy of its neighbour. Then, each configuration in a fresh process (its
peak resident memory, ``ru_maxrss``, is its own):

1. baseline: the in-memory path (``Refocuser.refocus``) on a crop, one torch thread;
   the chunk-wise path on the same crop (as its own slide) must give its pixels
   (max |Δ| / max |in-memory| ≤ 1e-3 over the interior, 32 px border cropped);
2. tiles/s of the chunk-wise path at 1 and 2 local workers (threads, one torch thread
   each) on the SIZE² slide. Tiles are the whole slide's 512² tile grid (stride 448); the
   tiles that straddle two blocks and are run twice count once, so their cost shows;
3. peak memory per process against slide size (the target: it does not grow).

Targets (issue 16): 12,288² with peak ≤ 1.5 GB per process; 2 workers ≥ 1.6× the tiles/s of
1 (on a 2-core machine, and only if nothing else runs on it); pixel identity ≤ 1e-3.

    python bench/scale.py [--size 8192] [--sizes 4096 8192 12288] [--crop 2048]
                          [--block 2048] [--model builtin:refocus-40x-fluor] [--quick]
                          [--memory-only] [--json out.json] [--keep DIR]

Summary: chunk-wise tiles/s at 2 workers / the in-memory baseline's, 2 workers / 1, peak
memory of the largest slide / the smallest, and the pixel difference on the crop.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TILE = 512
OVERLAP = 64
BORDER = 32
# The slide's source field: one simulated 1024² field, defocused, as uint16 counts.
FIELD = 1024


def _field(seed: int = 3) -> tuple[np.ndarray, float]:
    from focuskit.simulate import simulate_stack

    sim = simulate_stack(
        "deepr-40x-fluor",
        sample="fluorescent-tissue",
        size=FIELD,
        z_um=[2.0],
        photons=2000,
        seed=seed,
    )
    field = np.asarray(sim.data[0], dtype=np.float64)
    field = (field - field.min()) / (np.ptp(field) or 1.0) * 30000 + 500
    return field.astype(np.uint16), float(sim.pixel_size_um)


def _field_block(*, field: np.ndarray, block_info: Any = None) -> np.ndarray:
    """One chunk of the slide: the field, mirrored by the chunk's position."""
    (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    i, j = y0 // FIELD, x0 // FIELD
    f = field[:: -1 if i % 2 else 1, :: -1 if j % 2 else 1]
    return f[None, : y1 - y0, : x1 - x0].copy()


def make_slide(path: Path, size: int) -> None:
    """A size² uint16 OME-Zarr slide, written chunk by chunk (never whole in memory); one
    kept from an earlier run (``--keep``) is reused when it is complete."""
    import dask.array as da

    from focuskit._errors import StackFileError
    from focuskit.io import compute_context, open_lazy, write_chunked

    if path.exists():
        try:
            if open_lazy(path).planes.shape == (1, size, size):
                return
        except StackFileError:  # incomplete or damaged: made again
            pass
        shutil.rmtree(path)

    field, px = _field()
    lazy = da.map_blocks(
        _field_block,
        field=field,
        chunks=(
            (1,),
            *(((FIELD,) * (size // FIELD) + ((size % FIELD,) if size % FIELD else ())),) * 2,
        ),
        dtype=np.uint16,
        meta=np.empty((0, 0, 0), dtype=np.uint16),
    )
    with compute_context(2, None):
        write_chunked(lazy, path, pixel_size_um=px, metadata={"bench": "scale.py slide"})


def _grid_tiles(h: int, w: int) -> int:
    from focuskit.nn import tile_starts

    return len(tile_starts(h, TILE, OVERLAP)) * len(tile_starts(w, TILE, OVERLAP))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_memory(slide: str, crop: int, model: str, out: str, queue: mp.Queue) -> None:
    from focuskit.io import read_stack
    from focuskit.refocus import Refocuser

    r = Refocuser.load(model, num_threads=1)
    stack = read_stack(slide)
    image = np.asarray(stack.data[0, :crop, :crop])
    r.refocus(image[:TILE, :TILE], tile=TILE)  # warm-up
    t0 = time.perf_counter()
    result = r.refocus(image, tile=TILE, overlap=OVERLAP)
    seconds = time.perf_counter() - t0
    np.save(out, result)
    queue.put({"seconds": seconds, "tiles": _grid_tiles(crop, crop), "peak_mb": _peak_mb()})


def _chunked(slide: str, out: str, model: str, workers: int, block: int, queue: mp.Queue) -> None:
    from focuskit.io import compute_context, open_lazy, write_chunked
    from focuskit.refocus import refocus_lazy, worker_refocuser

    worker_refocuser(model, 1)  # loaded before the clock, as a worker keeps it
    t0 = time.perf_counter()
    images = open_lazy(slide)
    with compute_context(workers, None):
        result = refocus_lazy(
            images.planes, model, tile=TILE, overlap=OVERLAP, block=block, threads=1
        )
        done = write_chunked(result, out, pixel_size_um=images.pixel_size_um or 1.0)
    seconds = time.perf_counter() - t0
    h, w = images.planes.shape[1:]
    queue.put(
        {
            "seconds": seconds,
            "tiles": _grid_tiles(int(h), int(w)),
            "chunks": done.chunks,
            "peak_mb": _peak_mb(),
        }
    )


def _run_reporting(target: Any, args: tuple[Any, ...], queue: mp.Queue) -> None:
    try:
        target(*args, queue)
    except BaseException as exc:  # the parent waits on the queue: never leave it waiting
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def _fresh(target: Any, *args: Any) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in a fresh process; its result (its error raised)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_reporting, args=(target, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"{target.__name__}{args[:2]}: {result['error']}")
    return result


def _table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def memory_only(sizes: list[int], block: int, model: str, work: Path) -> None:
    """Section 3 alone (``--memory-only``): peak memory and tiles/s of each slide size."""
    rows = []
    peaks = {}
    for size in sorted(sizes):
        slide = work / f"slide-{size}.ome.zarr"
        make_slide(slide, size)
        target = work / f"out-{size}.ome.zarr"
        shutil.rmtree(target, ignore_errors=True)
        r = _fresh(_chunked, str(slide), str(target), model, 2, block)
        shutil.rmtree(target, ignore_errors=True)
        peaks[size] = r["peak_mb"]
        rows.append(
            [
                f"{size}²",
                f"{size * size / 1e6:.0f}",
                f"{r['seconds']:.1f}",
                f"{r['tiles'] / r['seconds']:.2f}",
                f"{r['peak_mb']:.0f}",
            ]
        )
        print(f"size {size}: {r['seconds']:.1f} s", flush=True)
    print("\n## Peak memory per process against slide size (2 workers)\n")
    _table(["slide", "Mpx", "s", "tiles/s", "peak MB"], rows)
    largest = max(peaks)
    print(
        f"\nsummary: peak memory per process of a {largest}² slide {peaks[largest]:.0f} MB "
        f"(≤ 1.5 GB {'met' if peaks[largest] <= 1536 else 'MISSED'})"
        + (
            f", {peaks[largest] / peaks[min(peaks)]:.2f}× the {min(peaks)}² slide's"
            if len(peaks) > 1
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="slide side for tiles/s")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 12288])
    parser.add_argument("--crop", type=int, default=2048, help="in-memory baseline crop side")
    parser.add_argument("--block", type=int, default=2048, help="chunk-wise block side")
    parser.add_argument("--model", default="builtin:refocus-40x-fluor")
    parser.add_argument(
        "--quick", action="store_true", help="4096² slide, sizes 2048/4096/6144, 1024² crop"
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="only peak memory of --sizes (2 workers)"
    )
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--keep", help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.sizes, args.crop = 4096, [2048, 4096, 6144], 1024
    work = Path(args.keep or tempfile.mkdtemp(prefix="focuskit-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"args": vars(args)}
    if args.memory_only:
        try:
            memory_only(args.sizes, args.block, args.model, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        return
    try:
        sizes = sorted({args.size, *args.sizes})
        slides = {}
        for size in sizes:
            t0 = time.perf_counter()
            slides[size] = work / f"slide-{size}.ome.zarr"
            make_slide(slides[size], size)
            print(f"slide {size}²: {time.perf_counter() - t0:.1f} s to make", flush=True)

        # 1. baseline and pixel identity on a crop
        crop = work / f"crop-{args.crop}.ome.zarr"
        make_slide(crop, args.crop)
        base = _fresh(_in_memory, str(crop), args.crop, args.model, str(work / "mem.npy"))
        chunked_crop = work / "crop-out.ome.zarr"
        shutil.rmtree(chunked_crop, ignore_errors=True)
        # Blocks of half the crop: the crop is cut in four, so seams would show.
        on_crop = _fresh(_chunked, str(crop), str(chunked_crop), args.model, 2, args.crop // 2)
        from focuskit.io import read_stack

        a = np.load(work / "mem.npy")[BORDER:-BORDER, BORDER:-BORDER]
        b = np.asarray(read_stack(chunked_crop).data[0])[BORDER:-BORDER, BORDER:-BORDER]
        rel = float(np.abs(a - b).max() / np.abs(a).max())
        out["baseline"] = {**base, "chunked": on_crop, "max_rel_diff": rel}
        base_tps = base["tiles"] / base["seconds"]
        print(f"\n## Baseline: in-memory refocus of a {args.crop}² crop (1 torch thread)\n")
        _table(
            ["path", "tiles", "s", "tiles/s", "peak MB", "max rel. diff vs in-memory"],
            [
                [
                    "in memory",
                    str(base["tiles"]),
                    f"{base['seconds']:.1f}",
                    f"{base_tps:.2f}",
                    f"{base['peak_mb']:.0f}",
                    "—",
                ],
                [
                    f"chunk-wise, 2 workers, blocks {args.crop // 2}",
                    str(on_crop["tiles"]),
                    f"{on_crop['seconds']:.1f}",
                    f"{on_crop['tiles'] / on_crop['seconds']:.2f}",
                    f"{on_crop['peak_mb']:.0f}",
                    f"{rel:.1e}",
                ],
            ],
        )

        # 2. workers
        runs = {}
        for workers in (1, 2):
            target = work / f"out-{args.size}-w{workers}.ome.zarr"
            shutil.rmtree(target, ignore_errors=True)
            runs[workers] = _fresh(
                _chunked, str(slides[args.size]), str(target), args.model, workers, args.block
            )
            shutil.rmtree(target, ignore_errors=True)
            print(f"workers {workers}: {runs[workers]['seconds']:.1f} s", flush=True)
        out["workers"] = runs
        print(f"\n## Chunk-wise refocus of a {args.size}² slide, blocks {args.block}²\n")
        _table(
            ["workers", "tiles", "blocks", "s", "tiles/s", "× in-memory", "peak MB"],
            [
                [
                    str(w),
                    str(r["tiles"]),
                    str(r["chunks"]),
                    f"{r['seconds']:.1f}",
                    f"{r['tiles'] / r['seconds']:.2f}",
                    f"{r['tiles'] / r['seconds'] / base_tps:.2f}",
                    f"{r['peak_mb']:.0f}",
                ]
                for w, r in runs.items()
            ],
        )

        # 3. memory against slide size (2 workers)
        mem = {}
        for size in sizes:
            if size == args.size:
                mem[size] = runs[2]
                continue
            target = work / f"out-{size}.ome.zarr"
            shutil.rmtree(target, ignore_errors=True)
            mem[size] = _fresh(_chunked, str(slides[size]), str(target), args.model, 2, args.block)
            shutil.rmtree(target, ignore_errors=True)
            print(f"size {size}: {mem[size]['seconds']:.1f} s", flush=True)
        out["memory"] = mem
        print("\n## Peak memory per process against slide size (2 workers)\n")
        _table(
            ["slide", "Mpx", "s", "tiles/s", "peak MB"],
            [
                [
                    f"{s}²",
                    f"{s * s / 1e6:.0f}",
                    f"{r['seconds']:.1f}",
                    f"{r['tiles'] / r['seconds']:.2f}",
                    f"{r['peak_mb']:.0f}",
                ]
                for s, r in mem.items()
            ],
        )

        # 4. focus map (issue 16 item 4) on the same slide, against its own in-memory baseline.
        from scale_focus_map import focus_map_rows, print_rows, summary_line

        print(f"\n## Focus map (classic measure, 512² tiles) of the {args.size}² slide\n")
        fmap = focus_map_rows(slides[args.size], 512, min(2048, args.size), "measure")
        print_rows(fmap)
        fmap_line = summary_line(
            fmap, args.size, min(2048, args.size), args.size * args.size * 2 / 2**20
        )
        print(fmap_line)
        out["focus_map"] = fmap

        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1, default=float))
        speedup = (runs[2]["tiles"] / runs[2]["seconds"]) / (runs[1]["tiles"] / runs[1]["seconds"])
        small, large = mem[sizes[0]], mem[sizes[-1]]
        print(
            f"\nsummary: chunk-wise refocus of {args.size}² at 2 workers "
            f"{runs[2]['tiles'] / runs[2]['seconds']:.2f} tiles/s = "
            f"{runs[2]['tiles'] / runs[2]['seconds'] / base_tps:.2f}× the in-memory crop's "
            f"{base_tps:.2f}; 2 workers / 1 = {speedup:.2f}× (target ≥ 1.6 "
            f"{'met' if speedup >= 1.6 else 'MISSED'}); peak memory {sizes[-1]}² / {sizes[0]}² = "
            f"{large['peak_mb'] / small['peak_mb']:.2f}× ({large['peak_mb']:.0f} MB vs "
            f"{small['peak_mb']:.0f} MB; ≤ 1.5 GB "
            f"{'met' if large['peak_mb'] <= 1536 else 'MISSED'}); pixels vs in-memory "
            f"{rel:.1e} (≤ 1e-3 {'met' if rel <= 1e-3 else 'MISSED'}); "
            + fmap_line.removeprefix("summary: ")
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
