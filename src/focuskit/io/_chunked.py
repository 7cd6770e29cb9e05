"""Chunk-wise work on images larger than memory: lazy reading, where the work runs, and a
resumable OME-Zarr writer.

A whole slide (100,000² px) or a long time-lapse does not fit in memory. Here it is read
lazily as a Dask array (OME-Zarr chunks, or a tiled TIFF through tifffile's Zarr store),
each output block is computed from its input block and a margin (``map_overlap``, by the
caller) and written into an OME-Zarr in place, once. After each block an empty marker file
is written in ``<output>/focuskit-progress/``; a killed run rerun with ``resume=True`` skips
the blocks whose marker is there, so it loses at most the blocks that were in flight. Until
the last block is in, the group carries ``focuskit_incomplete`` and no NGFF
``multiscales``: focuskit's readers refuse it ("rerun with --resume") and other NGFF viewers
do not show it as an image.

Where the blocks run is :func:`compute_context`: local threads (the default; Torch and
NumPy release the GIL), local processes, or any ``dask.distributed`` scheduler.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError, FocuskitError, StackFileError
from focuskit._quiet import library_messages
from focuskit.io._atomic import atomic_output, signals_held
from focuskit.io._formats import (
    Images,
    _format_of,
    _strip_suffix,
    create_zarr_level,
    ngff_multiscales,
    read_images,
    stack_json,
)
from focuskit.io._outputs import check_outputs
from focuskit.io._stack import FocalStack
from focuskit.io._zarr import INCOMPLETE_KEY, PROGRESS_DIR

__all__ = [
    "ChunkedWrite",
    "Compute",
    "block_chunks",
    "compute_context",
    "open_lazy",
    "write_chunked",
]

Progress = Callable[[int, int], None]
# Blocks given to the local scheduler at a time, per worker (see Compute.run).
_BATCH_PER_WORKER = 3
_ACTIVE: list[Compute] = []


# --- where it runs ------------------------------------------------------------------------


@dataclass
class Compute:
    """Where chunk-wise work runs: what :func:`compute_context` yields.

    Attributes
    ----------
    workers : int
        Parallel tasks (local threads or processes; a cluster's total threads).
    client : distributed.Client or None
        The client of a ``dask.distributed`` scheduler, or None for local work.
    processes : bool
        Local work runs in processes rather than threads.
    """

    workers: int
    client: Any = None
    processes: bool = False

    @property
    def threads_per_task(self) -> int:
        """Threads one task may use (Torch intra-op): the cores shared by the local workers,
        1 on a cluster (whose workers each have their own slots).

        Returns
        -------
        int
            At least 1.
        """
        if self.client is not None:
            return 1
        return max(1, (os.cpu_count() or 1) // self.workers)

    def run(self, tasks: Sequence[Any], progress: Progress | None = None) -> None:
        """Compute ``tasks`` (Dask delayed objects), calling ``progress(done, total)`` as
        each finishes; the first task error is raised (the other tasks are cancelled).

        Completed tasks are counted from what the scheduler reports (futures on a
        ``distributed`` cluster, task callbacks locally), so the count is right on a cluster
        too, unlike Dask's local-only ``ProgressBar``.

        Parameters
        ----------
        tasks : sequence of dask.delayed.Delayed
            The work; their results are discarded.
        progress : callable, optional
            ``progress(done, total)``.
        """
        total = len(tasks)
        report = progress or (lambda done, total: None)
        report(0, total)
        if not tasks:
            return
        if self.client is not None:
            from distributed import as_completed

            futures = self.client.compute(list(tasks))
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    future.result()  # raises the task's error here
                    report(done, total)
            finally:
                self.client.cancel([f for f in futures if not f.done()])
            return
        import dask
        from dask.callbacks import Callback

        keys = {t.key for t in tasks}
        lock = threading.Lock()
        count = [0]

        def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if key in keys:
                with lock:
                    count[0] += 1
                    report(count[0], total)

        # In batches: given every block at once, Dask's local scheduler reads input chunks
        # well ahead of the blocks that need them (a row of blocks and more), and memory grew
        # with the slide's width. A batch bounds it; the margins of a batch's edge blocks are
        # read again by the next batch (cheap next to the work on a block).
        step = _BATCH_PER_WORKER * self.workers
        with Callback(posttask=posttask):
            for start in range(0, total, step):
                dask.compute(
                    *tasks[start : start + step],
                    scheduler="processes" if self.processes else "threads",
                    num_workers=self.workers,
                )


@contextmanager
def compute_context(
    workers: int | None = None, scheduler: str | None = None, *, processes: bool = False
) -> Iterator[Compute]:
    """Where chunk-wise work runs inside the block: ``--workers N`` / ``--scheduler ADDRESS``.

    Inside the block plain ``dask`` ``.compute()`` calls run there too (the Dask config and,
    for a scheduler, the default client are set), and :func:`write_chunked` uses it.

    Parameters
    ----------
    workers : int, optional
        Local parallel tasks (default: the CPU count). With ``scheduler``, ignored.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``, or the
        ``scheduler_address`` of a ``LocalCluster``); its workers must see the same files.
    processes : bool, optional
        Local work in processes instead of threads (for Python code that holds the GIL;
        Torch and NumPy release it, so threads are the default).

    Returns
    -------
    context : contextlib.AbstractContextManager of Compute
        ``with compute_context(2, None) as compute: ...``.

    Raises
    ------
    ConfigError
        If ``workers`` is below 1, or the scheduler cannot be reached.
    """
    import dask

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - a dependency
            raise ConfigError(
                "--scheduler needs dask.distributed — pip install distributed"
            ) from None
        try:
            with library_messages():
                client = Client(scheduler, timeout="10s", set_as_default=True)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); "
                "check the address and that the scheduler runs"
            ) from None
        try:
            threads = sum(client.nthreads().values()) or 1
            compute = Compute(threads, client)
            _ACTIVE.append(compute)
            try:
                yield compute
            finally:
                _ACTIVE.remove(compute)
        finally:
            client.close()
        return
    n = workers if workers is not None else (os.cpu_count() or 1)
    compute = Compute(n, None, processes)
    _return_freed_blocks()
    with dask.config.set(scheduler="processes" if processes else "threads", num_workers=n):
        _ACTIVE.append(compute)
        try:
            yield compute
        finally:
            _ACTIVE.remove(compute)


def _return_freed_blocks() -> None:
    """Let glibc hand freed block-sized arrays back to the system (Linux; else nothing).

    glibc raises its mmap threshold each time a large array is freed, so later blocks come
    from the heap (per thread arena), where freed memory is kept: the resident memory of a
    chunk-wise run then grew with the number of blocks — with the slide's size (measured:
    280 → 490 MB from a 4096² to a 12,288² slide with a plain block function; 225 → 290 MB
    with the threshold fixed at 1 MiB, as here).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: fixed, so no longer raised
    except (OSError, AttributeError):  # musl or another libc: left as it is
        pass


def _current() -> Compute:
    return _ACTIVE[-1] if _ACTIVE else Compute(os.cpu_count() or 1)


# --- reading ------------------------------------------------------------------------------


def open_lazy(
    path: str | os.PathLike[str],
    *,
    pixel_size_um: float | None = None,
    rgb: Any = "error",
    need_pixel_size: bool = True,
) -> Images:
    """An image or stack as a lazy (N, Y, X) Dask array and what its file says.

    OME-Zarr is read chunk by chunk (every chunk must be on disk: a missing one is refused
    by name before any work); TIFF / OME-TIFF through tifffile's Zarr store, tile by tile,
    never whole; NPY is loaded.

    Parameters
    ----------
    path : str or os.PathLike
        An OME-Zarr, TIFF or NPY file.
    pixel_size_um : float, optional
        Pixel size at the sample (µm), overriding the file's.
    rgb : {'error', 'gray'} or int, optional
        What to do with a colour axis (as :func:`focuskit.io.read_images`).
    need_pixel_size : bool, optional
        Refuse a file without a pixel size (default True).

    Returns
    -------
    images : Images
        ``planes`` a ``dask.array.Array``; pixel size, z, optics and metadata as the file
        says.

    Raises
    ------
    StackFileError
        As :func:`focuskit.io.read_images`.
    """
    import dask.array as da

    images = read_images(
        Path(path), pixel_size_um=pixel_size_um, rgb=rgb, need_pixel_size=need_pixel_size, lazy=True
    )
    if not isinstance(images.planes, da.Array):  # NPY or a plain image: not slide formats
        images.planes = da.from_array(images.planes, chunks=(1, 1024, 1024))
    return images


def block_chunks(length: int, block: int, minimum: int = 0) -> tuple[int, ...]:
    """Dask chunk lengths along one axis: ``block`` each, a remainder shorter than
    ``minimum`` joined to the block before it.

    ``map_overlap`` needs every block at least as long as its margin (it would rechunk
    otherwise, and the blocks would no longer match the output's chunks).

    Parameters
    ----------
    length : int
        The axis length.
    block : int
        The block length.
    minimum : int, optional
        The shortest block allowed (the overlap margin).

    Returns
    -------
    chunks : tuple of int
        Lengths summing to ``length``.
    """
    if length <= block:
        return (length,)
    sizes = [block] * (length // block)
    rest = length - block * len(sizes)
    if rest and rest < minimum:
        sizes[-1] += rest
    elif rest:
        sizes.append(rest)
    return tuple(sizes)


# --- writing ------------------------------------------------------------------------------


@dataclass
class ChunkedWrite:
    """What :func:`write_chunked` did.

    Attributes
    ----------
    path : pathlib.Path
        The OME-Zarr written.
    chunks : int
        Output blocks in all.
    skipped : int
        Blocks already complete from an earlier run (``resume``).
    written : int
        Blocks computed and written by this run.
    seconds : float
        Wall time of the computation.
    """

    path: Path
    chunks: int
    skipped: int
    written: int
    seconds: float


def _marker(index: tuple[int, ...]) -> str:
    return ".".join(str(i) for i in index)


def _store_block(data: np.ndarray, path: str, region: tuple[slice, ...], marker: str) -> None:
    """Write one block into the output in place, then its completion marker (a task)."""
    import zarr

    with library_messages(warnings_too=False):
        # Opened per block (a small JSON read): an output replaced by --overwrite in the same
        # process must not be written through a stale handle. Every chunk is stored, even an
        # all-zero one: readers refuse missing chunks.
        # (open_array ignores a config argument: with_config is what takes.)
        array = zarr.open_array(str(Path(path) / "0"), mode="r+").with_config(
            {"write_empty_chunks": True}
        )
        array[region] = data
    # The marker only after the chunk files are complete: a kill in between redoes the block.
    marker_path = Path(path) / PROGRESS_DIR / marker
    fd = os.open(marker_path, os.O_CREAT | os.O_WRONLY, 0o666)
    os.close(fd)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False, default=str))


def _open_resume(target: Path, job: dict[str, Any], shape: tuple[int, ...], dtype: Any) -> Any:
    """The group of an incomplete output of the same job, or a one-line refusal."""
    import zarr

    try:
        with library_messages():
            root = zarr.open_group(str(target), mode="r+")
            array = root["0"]
    except Exception:
        raise StackFileError(
            target,
            "is not a chunk-wise focuskit output that can be resumed",
            "choose another -o, or pass --overwrite instead of --resume",
        ) from None
    record = root.attrs.get(INCOMPLETE_KEY)
    if record is None:
        raise StackFileError(
            target,
            "is complete already; there is nothing to resume",
            "pass --overwrite (not --resume) to write it again",
        )
    before = record.get("job") if isinstance(record, dict) else None
    if before != _plain(job):
        diff = sorted(
            k
            for k in set(_plain(job)) | set(before or {})
            if (before or {}).get(k) != _plain(job).get(k)
        )
        raise StackFileError(
            target,
            f"was started with other settings ({', '.join(diff) or 'unknown'} differ)",
            "resume with the same input and options, or pass --overwrite to start again",
        )
    if tuple(array.shape) != tuple(shape) or np.dtype(array.dtype) != np.dtype(dtype):
        raise StackFileError(
            target,
            f"holds a {array.dtype} array of shape {tuple(array.shape)}, "
            f"not {np.dtype(dtype)} {tuple(shape)}",
            "pass --overwrite to start again",
        )
    (target / PROGRESS_DIR).mkdir(exist_ok=True)
    return root


def write_chunked(
    result: Any,
    target: str | os.PathLike[str],
    *,
    pixel_size_um: float,
    z_um: Sequence[float] | None = None,
    optics: Any = None,
    metadata: dict[str, Any] | None = None,
    job: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    protect: Sequence[str | os.PathLike[str]] = (),
    compression: str | None = "zlib",
    progress: Progress | None = None,
) -> ChunkedWrite:
    """Compute a lazy (Z, Y, X) result block by block into an OME-Zarr, resumably.

    Each Dask block of ``result`` is computed where :func:`compute_context` says and
    written into ``target`` in place, then marked done. The output's Zarr chunks are the
    blocks (the last one may hold a short remainder), so every chunk is written once. NGFF
    0.4 ``multiscales`` (pixel size, z) and the focuskit block are set when the last block
    is in; until then the output is marked incomplete and readers refuse it.

    Parameters
    ----------
    result : dask.array.Array
        (Z, Y, X), chunked ``(1, …, …)`` as it should be written.
    target : str or os.PathLike
        The ``.ome.zarr`` / ``.zarr`` folder.
    pixel_size_um : float
        Pixel size at the sample (µm).
    z_um : sequence of float, optional
        z of each plane (µm; default 0, 1, 2 …).
    optics : Optics, optional
        The microscope, stored with the image.
    metadata : dict, optional
        Stored in the focuskit block (provenance).
    job : dict, optional
        What identifies this computation (input, model, options): a resumed run must match.
    resume : bool, optional
        Continue an incomplete ``target`` of the same job, skipping its finished blocks.
    overwrite : bool, optional
        Replace an existing ``target`` (never one of ``protect``).
    protect : sequence of path, optional
        The command's inputs, never written.
    compression : {'zlib', None}, optional
        Chunk compression.
    progress : callable, optional
        ``progress(done, total)`` over the blocks of this run.

    Returns
    -------
    report : ChunkedWrite
        Blocks in all, skipped and written, and the time taken.

    Raises
    ------
    StackFileError
        If ``target`` exists (without ``resume`` or ``overwrite``), is an input, is not
        an incomplete output of the same job (``resume``), or a block cannot be read; the
        blocks written so far are kept for ``resume``.
    """
    import dask
    import zarr

    target = Path(target)
    if _format_of(target) != "zarr":
        raise StackFileError(
            target, "chunk-wise output must be OME-Zarr", "give -o a .ome.zarr path"
        )
    if result.ndim != 3:
        raise ConfigError(f"write_chunked needs a (Z, Y, X) result, got {result.ndim}-D")
    shape = tuple(int(s) for s in result.shape)
    z = list(z_um) if z_um is not None else [float(k) for k in range(shape[0])]
    job = dict(job or {})
    stack = FocalStack(result, z, pixel_size_um, optics, None, dict(metadata or {}))
    final_attrs = {
        "multiscales": ngff_multiscales(_strip_suffix(target.name), z, pixel_size_um),
        "focuskit": stack_json(stack),
    }
    grid = result.chunks
    n_blocks = math.prod(len(c) for c in grid)
    starts = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in grid]
    chunk_shape = (1, int(grid[1][0]), int(grid[2][0]))

    exists = target.exists() or target.is_symlink()
    if resume and exists:
        check_outputs({"-o": target}, overwrite=True, inputs=protect)
        root = _open_resume(target, job, shape, result.dtype)
    else:
        check_outputs({"-o": target}, overwrite=overwrite, inputs=protect)
        if exists:
            shutil.rmtree(target)
        # The empty output (array, incomplete record, progress folder) appears whole.
        with atomic_output(target, overwrite=False, directory=True) as tmp, signals_held():
            root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            create_zarr_level(root, shape, result.dtype, chunk_shape, compression)
            root.attrs.put(
                {INCOMPLETE_KEY: {"job": _plain(job), "chunks": n_blocks, "attrs": final_attrs}}
            )
            (tmp / PROGRESS_DIR).mkdir()
        root = zarr.open_group(str(target), mode="r+")
    folder = target / PROGRESS_DIR
    done = {p.name for p in folder.iterdir()}
    blocks = result.to_delayed()
    tasks = []
    for index in np.ndindex(*blocks.shape):
        name = _marker(index)
        if name in done:
            continue
        region = tuple(slice(int(s[i]), int(s[i + 1])) for s, i in zip(starts, index, strict=True))
        tasks.append(
            dask.delayed(_store_block, pure=False)(blocks[index], str(target), region, name)
        )
    skipped = n_blocks - len(tasks)
    t0 = time.perf_counter()
    try:
        _current().run(tasks, progress)
    except FocuskitError as exc:
        # The chunks written stay, marked done: say so, and how to finish.
        kept = (
            f"then rerun with --resume ({len(list(folder.iterdir()))} of {n_blocks} chunks "
            f"of {target.name} are kept)"
        )
        if isinstance(exc, StackFileError):
            raise StackFileError(exc.path, exc.problem, f"{exc.fix}; {kept}") from None
        raise ConfigError(f"{exc}; {kept}") from None
    seconds = time.perf_counter() - t0
    missing = n_blocks - len(list(folder.iterdir()))
    if missing:  # pragma: no cover - every task ran without error
        raise StackFileError(
            target, f"{missing} of {n_blocks} chunks were not written", "rerun with --resume"
        )
    with signals_held():
        # One write of the attributes: complete (NGFF metadata) and no longer incomplete.
        root.attrs.put(final_attrs)
        shutil.rmtree(folder, ignore_errors=True)
    return ChunkedWrite(target, n_blocks, skipped, len(tasks), seconds)
