"""What reading OME-Zarr needs beyond zarr itself: NGFF metadata checked field by field, a
check that every chunk is on disk, and quiet failures.

Zarr reads a missing chunk as the fill value, so a half-copied or half-deleted dataset
would read as zeros; every chunk (every shard of a sharded array) must be present. When one
chunk fails to decode, zarr's other chunk reads are still running on its event loop; they
are let finish before the error is raised, or they end, at exit, in pages of asyncio text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import StackFileError
from focuskit._quiet import describe, library_messages

__all__ = [
    "NgffImage",
    "check_chunks",
    "checked_dask_array",
    "missing_chunk",
    "ngff_image",
    "read_pixels",
    "refuse_incomplete",
    "settle_zarr_tasks",
]

#: Group attribute of an OME-Zarr that a chunk-wise run is still writing (or was killed
#: writing): its job, its chunk count and the NGFF metadata to set once the last chunk is in.
INCOMPLETE_KEY = "focuskit_incomplete"
#: Folder inside such an OME-Zarr holding one empty marker file per completed chunk.
PROGRESS_DIR = "focuskit-progress"

_FIX_NGFF = "fix the NGFF metadata (.zattrs / zarr.json) or export the image again"
_FIX_CORRUPT = "the file is corrupt or truncated; copy or export it again"
# Seconds to wait for zarr's leftover chunk reads after a failed read.
_SETTLE_S = 30.0
# The settle() tasks running on zarr's event loop (touched only from that loop's thread).
_SETTLING: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


@dataclass
class NgffImage:
    """The parts of NGFF 0.4 ``multiscales[0]`` that a reader uses, checked.

    ``axis_types`` / ``axis_units`` are None when the metadata has no ``axes``;
    ``transforms`` are the first dataset's coordinate transformations, then the
    multiscale's, each a ``(type, values, field)`` triple (``scale`` or ``translation``;
    ``field`` names it in messages).
    """

    dataset_path: str
    axis_types: list[str] | None
    axis_units: list[str | None] | None
    transforms: list[tuple[str, list[float], str]]


def _kind(value: Any) -> str:
    """'a list', 'an int', 'null': what a JSON value is, for messages."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _bad(path: Path, where: str, problem: str) -> StackFileError:
    return StackFileError(path, f"NGFF metadata: {where} {problem}", _FIX_NGFF)


def _numbers(path: Path, where: str, values: Any) -> list[float]:
    if not isinstance(values, list):
        raise _bad(path, where, f"is {_kind(values)}, not a list of numbers")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(path, f"{where}[{i}]", f"is {v!r:.40}, not a number")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise _bad(path, f"{where}[{i}]", f"is {v!r:.40}, not a finite number")
        out.append(f)
    return out


def _transforms(path: Path, where: str, value: Any) -> list[tuple[str, list[float], str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(path, where, f"is {_kind(value)}, not a list of transformations")
    out = []
    for i, t in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(t, dict):
            raise _bad(path, at, f"is {_kind(t)}, not an object with a 'type'")
        kind = t.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise _bad(
                path, f"{at}.type", f"is {kind!r:.40}, not 'scale', 'translation' or 'identity'"
            )
        if kind not in t:
            raise _bad(path, at, f"has no {kind!r} list (a 'path' to binary values is unsupported)")
        out.append((kind, _numbers(path, f"{at}.{kind}", t[kind]), f"{at}.{kind}"))
    return out


def _axes(path: Path, value: Any) -> tuple[list[str] | None, list[str | None] | None]:
    if value is None:
        return None, None
    if not isinstance(value, list):
        raise _bad(path, "multiscales[0].axes", f"is {_kind(value)}, not a list")
    types: list[str] = []
    units: list[str | None] = []
    for i, a in enumerate(value):
        at = f"multiscales[0].axes[{i}]"
        if isinstance(a, str):  # NGFF 0.3: axis names only
            name, kind, unit = a, None, None
        elif isinstance(a, dict):
            name, kind, unit = a.get("name"), a.get("type"), a.get("unit")
            for key, v in (("name", name), ("type", kind), ("unit", unit)):
                if v is not None and not isinstance(v, str):
                    raise _bad(path, f"{at}.{key}", f"is {_kind(v)}, not a string")
        else:
            raise _bad(path, at, f"is {_kind(a)}, not an object with 'name' and 'type'")
        types.append(kind or ("space" if name in ("z", "y", "x") else "other"))
        units.append(unit)
    return types, units


def ngff_image(path: Path, attrs: Mapping[str, Any]) -> NgffImage:
    """Check a Zarr group's NGFF attributes and return what a reader needs from them.

    Parameters
    ----------
    path : pathlib.Path
        The dataset, for error messages.
    attrs : mapping
        The group's attributes (NGFF 0.4, or 0.5 under ``"ome"``).

    Returns
    -------
    image : NgffImage
        The first dataset's path, the axes and the coordinate transformations.

    Raises
    ------
    StackFileError
        If there is no ``multiscales`` list, or a field has the wrong type or a number is
        not finite; the message names the field.
    """
    ome = attrs.get("ome", attrs)
    if not isinstance(ome, Mapping):
        raise _bad(path, "'ome'", f"is {_kind(ome)}, not an object")
    multiscales = ome.get("multiscales")
    if not multiscales:
        raise StackFileError(
            path,
            "Zarr group has no NGFF 'multiscales' metadata",
            "point at an OME-Zarr image or its array",
        )
    if not isinstance(multiscales, list):
        raise _bad(path, "multiscales", f"is {_kind(multiscales)}, not a list")
    ms = multiscales[0]
    if not isinstance(ms, dict):
        raise _bad(path, "multiscales[0]", f"is {_kind(ms)}, not an object")
    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise _bad(path, "multiscales[0].datasets", "is not a non-empty list of datasets")
    ds = datasets[0]
    if not isinstance(ds, dict):
        raise _bad(path, "multiscales[0].datasets[0]", f"is {_kind(ds)}, not an object")
    ds_path = ds.get("path")
    if not isinstance(ds_path, str) or not ds_path.strip("/"):
        raise _bad(path, "multiscales[0].datasets[0].path", f"is {ds_path!r:.40}, not a name")
    types, units = _axes(path, ms.get("axes"))
    transforms = _transforms(
        path,
        "multiscales[0].datasets[0].coordinateTransformations",
        ds.get("coordinateTransformations"),
    ) + _transforms(
        path, "multiscales[0].coordinateTransformations", ms.get("coordinateTransformations")
    )
    return NgffImage(ds_path, types, units, transforms)


def refuse_incomplete(path: Path, attrs: Mapping[str, Any]) -> None:
    """Refuse an OME-Zarr that a chunk-wise run has not finished writing.

    A chunk-wise output is written in place, chunk by chunk, so that a killed run can be
    resumed; until its last chunk is in, its group carries ``focuskit_incomplete`` (and no
    NGFF ``multiscales``, so other NGFF readers do not show it as an image either).

    Parameters
    ----------
    path : pathlib.Path
        The dataset, for the message.
    attrs : mapping
        The group's attributes.

    Raises
    ------
    StackFileError
        If the output is incomplete; the message says how many chunks are in.
    """
    record = attrs.get(INCOMPLETE_KEY)
    if record is None:
        return
    total = record.get("chunks") if isinstance(record, dict) else None
    folder = path / PROGRESS_DIR
    done = len(list(folder.iterdir())) if folder.is_dir() else 0
    of = f"{done} of {total}" if isinstance(total, int) else f"{done}"
    raise StackFileError(
        path,
        f"is an incomplete chunk-wise output ({of} chunks written; the run was stopped)",
        "rerun the command that writes it with --resume",
    )


def missing_chunk(array: Any) -> tuple[str, int] | None:
    """The first chunk (or shard) of a zarr array on a local disk that is not there.

    The chunk files are listed once (nothing is read); a key is expected for every chunk of
    the grid, or for every shard of a sharded array.

    Parameters
    ----------
    array : zarr.Array
        An array opened from a local folder (other stores are not checked).

    Returns
    -------
    missing : tuple of (str, int) or None
        The first missing chunk's key (relative to the store root) and the number of
        chunks expected, or None when every chunk is present.
    """
    import zarr

    store = array.store
    if not isinstance(store, zarr.storage.LocalStore):
        return None
    root = Path(store.root)
    prefix = array.path.strip("/")
    folder = root / prefix if prefix else root
    blocks = getattr(array, "shards", None) or array.chunks
    grid = [math.ceil(s / c) if c else 0 for s, c in zip(array.shape, blocks, strict=True)]
    total = math.prod(grid)
    if total == 0:
        return None
    present: set[str] = set()
    for here, _, files in os.walk(folder, followlinks=True):
        rel = Path(here).relative_to(folder).as_posix()
        present.update(f if rel == "." else f"{rel}/{f}" for f in files)
    for coords in itertools.product(*(range(g) for g in grid)):
        key = array.metadata.encode_chunk_key(coords)
        if key not in present:
            return (f"{prefix}/{key}" if prefix else key), total
    return None


def check_chunks(path: Path, array: Any) -> None:
    """Refuse a zarr array with a chunk missing from disk (it would read as the fill value).

    Parameters
    ----------
    path : pathlib.Path
        The dataset, for the message.
    array : zarr.Array
        The array to check.

    Raises
    ------
    StackFileError
        Naming the first missing chunk.
    """
    missing = missing_chunk(array)
    if missing is not None:
        key, total = missing
        unit = "shard" if getattr(array, "shards", None) else "chunk"
        raise StackFileError(
            path,
            f"{unit} {key} is missing (of {total}); zarr would read it as the fill value "
            f"{_plain(array.fill_value)}, not as the image",
            "copy the dataset again completely; if its writer left out empty chunks on "
            "purpose, write it again with every chunk stored (zarr write_empty_chunks=True)",
        )


def _plain(value: Any) -> str:
    try:
        return repr(np.asarray(value).item())[:20]
    except Exception:  # an exotic fill value (structured dtypes); the key is what matters
        return "(see .zarray)"


def settle_zarr_tasks() -> None:
    """Let the chunk reads zarr still runs after a failed read finish (at most 30 s).

    ``zarr`` gathers chunk reads on its own event loop and raises on the first failure;
    the others keep running, and if the program ends first each prints pages of
    "Task was destroyed but it is pending!" on stderr.
    """
    try:
        from zarr.core import sync as zarr_sync

        loop = zarr_sync.loop[0]
    except (ImportError, AttributeError, IndexError, TypeError):
        return
    if loop is None or loop.is_closed() or not loop.is_running():
        return

    async def settle() -> None:
        me = asyncio.current_task()
        _SETTLING.add(me)  # other threads' settle() calls must not wait for each other
        try:
            while True:
                pending = [t for t in asyncio.all_tasks() if t not in _SETTLING and not t.done()]
                if not pending:
                    return
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            _SETTLING.discard(me)

    future = asyncio.run_coroutine_threadsafe(settle(), loop)
    # Past the timeout the reads are left to zarr: the read's own error matters more.
    with contextlib.suppress(Exception):
        future.result(_SETTLE_S)


def read_pixels(path: Path, array: Any, index: Any, *, in_thread: bool = False) -> np.ndarray:
    """``array[index]`` as NumPy, a chunk that cannot be decoded refused in one line.

    Parameters
    ----------
    path : pathlib.Path
        The dataset, for the message.
    array : zarr.Array
        The array.
    index : tuple or Ellipsis
        What to read.
    in_thread : bool, optional
        Called from a worker thread (Dask): collect library logs but leave the process-wide
        warning filters alone (``warnings.catch_warnings`` is not thread-safe).

    Returns
    -------
    data : ndarray
        The pixels.

    Raises
    ------
    StackFileError
        If zarr cannot read or decode a chunk.
    """
    try:
        with library_messages(warnings_too=not in_thread):
            return np.asarray(array[index])
    except Exception as exc:
        settle_zarr_tasks()
        raise StackFileError(
            path, f"cannot read its pixels ({describe(exc)})", _FIX_CORRUPT
        ) from None


class _CheckedArray:
    """A zarr array as dask sees it, whose failed chunk reads raise ``StackFileError``."""

    def __init__(self, path: Path, array: Any) -> None:
        self.path = path
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        try:
            return read_pixels(self.path, self.array, index, in_thread=True)
        except StackFileError as exc:
            key = _chunk_key(self.array, index)
            if key is None:
                raise
            # Dask reads one zarr chunk per call: name it, so the user knows what to copy.
            raise StackFileError(self.path, f"chunk {key}: {exc.problem}", exc.fix) from None


def _chunk_key(array: Any, index: Any) -> str | None:
    """The store key of the chunk where ``index`` (a tuple of slices) starts, or None."""
    if not isinstance(index, tuple) or len(index) != array.ndim:
        return None
    if not all(isinstance(i, slice) for i in index):
        return None
    try:
        coords = tuple((i.start or 0) // c for i, c in zip(index, array.chunks, strict=True))
        key = array.metadata.encode_chunk_key(coords)
    except Exception:  # another zarr version's metadata: the message stays as it was
        return None
    prefix = array.path.strip("/")
    return f"{prefix}/{key}" if prefix else key


def checked_dask_array(path: Path, array: Any) -> Any:
    """A lazy Dask array over a zarr array's chunks; reading a bad chunk raises
    ``StackFileError`` (one line) when the chunk is computed.

    Parameters
    ----------
    path : pathlib.Path
        The dataset, for messages.
    array : zarr.Array
        The array.

    Returns
    -------
    data : dask.array.Array
        The lazy array, chunked as the zarr array.
    """
    import dask.array as da

    return da.from_array(
        _CheckedArray(path, array), chunks=array.chunks, asarray=False, fancy=False, name=False
    )


class _TiffChunks:
    """A TIFF's first series as Dask sees it: regions read through tifffile's Zarr store
    (only the tiles or strips a region touches), the file reopened once in each process."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any) -> None:
        self.path = path
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._array: Any = None
        self._store: Any = None
        self._lock = threading.Lock()

    def __del__(self) -> None:
        # tifffile's Zarr store holds the file open; close it with the last reference.
        store, self._store = getattr(self, "_store", None), None
        if store is not None:
            with contextlib.suppress(Exception):  # closing at collection must never raise
                store.close()

    def __getstate__(self) -> dict[str, Any]:
        # The open file stays behind: a worker process opens its own.
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["shape"], state["dtype"])  # type: ignore[misc]

    def open(self) -> Any:
        """The level-0 Zarr array of series 0 (opened on first use)."""
        with self._lock:
            if self._array is None:
                import tifffile
                import zarr

                with library_messages(warnings_too=False):
                    self._store = tifffile.imread(self.path, aszarr=True, series=0, level=0)
                    self._array = zarr.open(self._store, mode="r")
        return self._array

    def __getitem__(self, index: Any) -> np.ndarray:
        try:
            with library_messages(warnings_too=False):
                return np.asarray(self.open()[index])
        except Exception as exc:
            where = _region(index)
            raise StackFileError(
                self.path, f"cannot read its pixels{where} ({describe(exc)})", _FIX_CORRUPT
            ) from None


def _region(index: Any) -> str:
    """' at [0:1, 2048:4096, 0:2048]' for a tuple of slices, else ''."""
    if not isinstance(index, tuple) or not all(isinstance(i, slice) for i in index):
        return ""
    return " at [" + ", ".join(f"{i.start or 0}:{i.stop}" for i in index) + "]"


def tiff_dask_array(path: Path, shape: tuple[int, ...], dtype: Any) -> Any:
    """A lazy Dask array over a TIFF's first series, never read whole.

    Tiled (or stripped) TIFF and OME-TIFF are read through tifffile's Zarr store, region by
    region; Dask chunks are whole TIFF tiles, about 1024 pixels a side.

    Parameters
    ----------
    path : pathlib.Path
        The TIFF file.
    shape : tuple of int
        The series' shape (as tifffile reports it).
    dtype : dtype
        Its pixel type.

    Returns
    -------
    data : dask.array.Array
        The lazy array; a region that cannot be decoded raises ``StackFileError`` naming
        it when it is computed.
    """
    import dask.array as da

    source = _TiffChunks(path, shape, dtype)
    tiles = tuple(source.open().chunks)
    n = len(shape)
    chunks = tuple(
        (c * max(1, 1024 // c) if i >= n - 2 else 1) if c else s
        for i, (c, s) in enumerate(zip(tiles, shape, strict=True))
    )
    return da.from_array(source, chunks=chunks, asarray=False, fancy=False, name=False)
