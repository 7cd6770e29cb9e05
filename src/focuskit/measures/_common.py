"""Shared machinery: input checks, work precision, bounded-memory iteration over planes."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from focuskit._errors import ConfigError

Score = float | np.ndarray

# Working copies of at most this many bytes per chunk of planes (a 2048² plane in
# float64 is 32 MiB, so large stacks go one or two planes at a time; temporaries in a
# measure are a few times this). Changed with ``chunk_budget``.
_CHUNK_BYTES = 32 * 2**20


@contextmanager
def chunk_budget(nbytes: int) -> Iterator[None]:
    """Score stacks in chunks of planes of at most ``nbytes`` working memory.

    Applies inside the ``with`` block (default 32 MiB; one plane at a time at least).
    Results do not depend on it.

    Parameters
    ----------
    nbytes : int
        Working memory per chunk of planes, in bytes, ≥ 1.

    Returns
    -------
    context : contextlib.AbstractContextManager
        A context manager; the previous budget is restored on exit.

    Raises
    ------
    ConfigError
        If ``nbytes`` is below 1.
    """
    global _CHUNK_BYTES
    if int(nbytes) < 1:
        raise ConfigError(f"chunk budget must be ≥ 1 byte, got {nbytes}")
    previous, _CHUNK_BYTES = _CHUNK_BYTES, int(nbytes)
    try:
        yield
    finally:
        _CHUNK_BYTES = previous


def as_stack(image: Any, name: str) -> tuple[Any, bool]:
    """(array-like of shape (Z, Y, X), was_2d). Lazy arrays (memmap, zarr, dask) stay lazy."""
    if not (hasattr(image, "shape") and hasattr(image, "dtype") and hasattr(image, "__getitem__")):
        image = np.asarray(image)
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "biuf":
        raise ConfigError(
            f"{name}: the image must hold real numbers (bool, integer or float), got dtype "
            f"{dtype} — convert it (e.g. take the magnitude of a complex field) before scoring"
        )
    ndim = len(image.shape)
    if ndim == 2:
        return (image[None] if isinstance(image, np.ndarray) else np.asarray(image)[None]), True
    if ndim == 3:
        return image, False
    raise ConfigError(
        f"{name}: expected a 2-D image (Y, X) or a 3-D stack (Z, Y, X), got shape "
        f"{tuple(image.shape)} — convert colour images to one channel first"
    )


def _work_dtype(dtype: np.dtype, allow_float32: bool) -> type:
    """float32 where it is exact enough (float32/float16 input, ≤16-bit integers), else float64."""
    if allow_float32 and (
        dtype in (np.float32, np.float16) or (dtype.kind in "biu" and dtype.itemsize <= 2)
    ):
        return np.float32
    return np.float64


def _check_size(name: str, shape: tuple[int, ...], min_yx: tuple[int, int]) -> None:
    ny, nx = shape[-2], shape[-1]
    if ny < min_yx[0] or nx < min_yx[1]:
        raise ConfigError(
            f"{name}: the image is {ny}×{nx} pixels; this measure needs at least "
            f"{min_yx[0]}×{min_yx[1]} (Y×X)"
        )


def iter_chunks(
    image: Any,
    name: str,
    *,
    min_yx: tuple[int, int] = (1, 1),
    allow_float32: bool = False,
    work_itemsize: int | None = None,
):
    """Yield ``(start, chunk)`` with ``chunk`` a (n, Y, X) float array, finite-checked.

    The chunk may be a view of the caller's array (when no conversion is needed):
    measures must never write into it. Chunks hold about ``_CHUNK_BYTES`` at
    ``work_itemsize`` bytes per pixel (default: the chunk's own precision; measures
    that convert to float64 themselves pass 8).
    """
    stack, _ = as_stack(image, name)
    shape = tuple(int(s) for s in stack.shape)
    _check_size(name, shape, min_yx)
    in_dtype = np.dtype(stack.dtype)
    work = _work_dtype(in_dtype, allow_float32)
    nz, ny, nx = shape
    itemsize = work_itemsize or np.dtype(work).itemsize
    per_chunk = max(1, _CHUNK_BYTES // max(1, ny * nx * itemsize))
    for start in range(0, nz, per_chunk):
        chunk = np.asarray(stack[start : start + per_chunk], dtype=work)
        if in_dtype.kind == "f":
            finite = np.isfinite(chunk).all(axis=(-2, -1))
            if not finite.all():
                plane = start + int(np.argmin(finite))
                raise ConfigError(
                    f"{name}: the image has NaN or Inf values (plane {plane}) — "
                    "replace or crop them away before scoring"
                )
        yield start, chunk


def reduce_planes(
    image: Any,
    name: str,
    per_chunk: Callable[[np.ndarray, int], np.ndarray],
    *,
    min_yx: tuple[int, int] = (1, 1),
    allow_float32: bool = False,
    work_itemsize: int | None = None,
) -> Score:
    """Apply ``per_chunk(chunk, start)`` ((n, Y, X) → (n,)) over the planes.

    Returns a float for 2-D input and a float64 array of shape (Z,) for a stack;
    ``start`` is the index of the chunk's first plane (for error messages).
    """
    stack, single = as_stack(image, name)
    out = np.empty(int(stack.shape[0]), dtype=np.float64)
    for start, chunk in iter_chunks(
        stack, name, min_yx=min_yx, allow_float32=allow_float32, work_itemsize=work_itemsize
    ):
        out[start : start + chunk.shape[0]] = per_chunk(chunk, start)
    return float(out[0]) if single else out


def sum_yx(a: np.ndarray) -> np.ndarray:
    """Sum over the last two axes, accumulated in float64."""
    return a.sum(axis=(-2, -1), dtype=np.float64)


def sumsq_yx(a: np.ndarray) -> np.ndarray:
    """Σ a² over the last two axes (float64 accumulation); squares the temporary ``a`` in place."""
    np.square(a, out=a)
    return sum_yx(a)


def centered(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-plane mean ``mu`` (n,) and the float64 deviations ``d = x − mu`` (n, Y, X).

    The mean is taken around the first pixel (``mu = x₀ + mean(x − x₀)``): a constant
    plane gives ``d = 0`` exactly (so its score is exactly the documented constant-image
    value), and a large offset loses no precision.
    """
    d = np.subtract(x, x[:, :1, :1], dtype=np.float64)
    m = plane_mean(d)
    d -= m[:, None, None]
    return x[:, 0, 0].astype(np.float64) + m, d


def plane_mean(x: np.ndarray) -> np.ndarray:
    return sum_yx(x) / (x.shape[-2] * x.shape[-1])


def positive_mean(name: str, mu: np.ndarray, d: np.ndarray, start: int = 0) -> np.ndarray:
    """Mask of all-zero planes; ConfigError where a plane's mean is ≤ 0 otherwise.

    Measures normalized by the mean intensity need an intensity image (mean > 0).
    An all-zero plane is allowed: it has no detail and scores the no-detail value.
    ``mu`` and ``d`` come from :func:`centered`.
    """
    zero = mu == 0
    if np.any(zero):
        zero &= ~np.any(d != 0, axis=(-2, -1))
    bad = (mu <= 0) & ~zero
    if np.any(bad):
        plane = start + int(np.argmax(bad))
        raise ConfigError(
            f"{name}: the mean intensity of plane {plane} is {mu[bad][0]:.4g} ≤ 0; this measure "
            "normalizes by the mean and needs an intensity image (mean > 0) — do not subtract the "
            "background below zero, or choose a measure that is not normalized by the mean"
        )
    return zero


def _real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def check_nonnegative(name: str, what: str, value: Any) -> float:
    if not _real(value) or value < 0:
        raise ConfigError(f"{name}: {what} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def check_positive(name: str, what: str, value: Any) -> float:
    if not _real(value) or value <= 0:
        raise ConfigError(f"{name}: {what} must be a finite number > 0, got {value!r}")
    return float(value)


def check_int(name: str, what: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}: {what} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def check_band(name: str, band: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        msg = f"{name}: band must be a pair (lo, hi) of fractions, got {band!r}"
        raise ConfigError(msg) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= 1.0):
        raise ConfigError(f"{name}: band must satisfy 0 ≤ lo < hi ≤ 1, got {band!r}")
    return lo, hi
