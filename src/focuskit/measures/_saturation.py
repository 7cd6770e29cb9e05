"""Saturation: score only the pixels a clipped camera did not corrupt.

A saturated pixel reads the camera's maximum whatever the light was, so any difference
it enters (a gradient, a Laplacian, a lag product) is wrong: the plateau of a saturated
bead has zero gradient inside and an artificial step at its rim. A measure that supports
masking computes its per-pixel terms as usual and averages them only over *valid*
positions: those whose kernel footprint — the ``(2r+1)²`` pixels around the position,
``r`` the measure's :attr:`~focuskit.measures.FocusMeasure.mask_radius` — holds no pixel
at or above the saturation level. This module holds the one mask every measure shares
and the masked forms of the local measures; the registry's ``score(..., saturation=)``
applies them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.ndimage

from focuskit._errors import ConfigError
from focuskit.measures._spatial import _laplacian, _sobel_xy

#: ``"auto"``: an integer image saturates at its dtype's maximum (255 for uint8, 65 535 for
#: uint16), a float image is not masked; a number: pixels at or above it are saturated;
#: None: no masking.
Saturation = float | Literal["auto"] | None

# Masked measure: (chunk (n, Y, X) float64, valid (n, Y−2r, X−2r) bool) -> (n,) scores.
MaskedFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def saturation_level(dtype: Any, saturation: Any) -> float | None:
    """The intensity at or above which a pixel counts as saturated, or None (no masking).

    Parameters
    ----------
    dtype : numpy dtype-like
        dtype of the image (``"auto"`` uses its maximum when it is an integer type).
    saturation : float, 'auto' or None
        See :data:`Saturation`.

    Returns
    -------
    level : float or None
        The saturation level in the image's intensity units, or None.

    Raises
    ------
    ConfigError
        If ``saturation`` is not 'auto', None or a finite number.
    """
    if saturation is None:
        return None
    if isinstance(saturation, str):
        if saturation != "auto":
            raise ConfigError(
                f"saturation must be 'auto', None or a number (intensity units), got {saturation!r}"
            )
        dt = np.dtype(dtype)
        return float(np.iinfo(dt).max) if dt.kind in "iu" else None
    if (
        isinstance(saturation, bool)
        or not isinstance(saturation, numbers.Real)
        or not math.isfinite(saturation)
    ):
        raise ConfigError(
            f"saturation must be 'auto', None or a finite number (intensity units), "
            f"got {saturation!r}"
        )
    return float(saturation)


def valid_positions(x: np.ndarray, level: float, radius: int) -> np.ndarray:
    """Positions whose ``(2r+1)²`` footprint holds no saturated pixel.

    Parameters
    ----------
    x : (n, Y, X) ndarray
        Planes.
    level : float
        Pixels ``≥ level`` are saturated.
    radius : int
        ``r``, the half-width of the measure's kernel, in pixels (0: the pixel itself).

    Returns
    -------
    valid : (n, Y−2r, X−2r) ndarray of bool
        True where the measure's term may be used.
    """
    saturated = x >= level
    if radius > 0:
        size = (1, 2 * radius + 1, 2 * radius + 1)
        saturated = scipy.ndimage.maximum_filter(saturated, size=size, mode="constant")
        saturated = saturated[:, radius:-radius, radius:-radius]
    return ~saturated


def _mean(terms: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-plane mean of ``terms`` over ``valid`` (0 where nothing is valid)."""
    n = valid.sum(axis=(-2, -1))
    total = np.where(valid, terms, 0.0).sum(axis=(-2, -1), dtype=np.float64)
    return np.where(n > 0, total / np.maximum(n, 1), 0.0)


def _variance(terms: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-plane population variance of ``terms`` over ``valid`` (0 where nothing is valid)."""
    m = _mean(terms, valid)
    return _mean((terms - m[:, None, None]) ** 2, valid)


def _centered(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``x`` minus the mean of its valid interior pixels (r = 1), per plane."""
    return x - _mean(x[:, 1:-1, 1:-1], valid)[:, None, None]


def masked_tenengrad(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``Gx² + Gy²`` (Sobel / 8, see :func:`tenengrad`) over valid positions (r = 1)."""
    sx, sy = _sobel_xy(x)
    return _mean(sx * sx + sy * sy, valid)


def masked_brenner(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``(I(x+1) − I(x−1))²`` over valid positions (r = 1): Brenner and HPF."""
    d = x[:, 1:-1, 2:] - x[:, 1:-1, :-2]
    return _mean(d * d, valid)


def masked_laplacian_variance(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian over valid positions (r = 1)."""
    return _variance(_laplacian(x), valid)


def masked_sml(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean modified Laplacian (step 1) over valid positions (r = 1)."""
    c2 = 2 * x[:, 1:-1, 1:-1]
    ml = np.abs(c2 - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]) + np.abs(
        c2 - x[:, :-2, 1:-1] - x[:, 2:, 1:-1]
    )
    return _mean(ml, valid)


def masked_vollath4(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``d(x−1)·d(x) − d(x−1)·d(x+1)`` over valid positions (r = 1), ``d = I − μ``."""
    d = _centered(x, valid)
    left, mid, right = d[:, 1:-1, :-2], d[:, 1:-1, 1:-1], d[:, 1:-1, 2:]
    return _mean(left * (mid - right), valid)


def masked_vollath5(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``d(x)·d(x+1)`` over valid positions (r = 1), ``d = I − μ``."""
    d = _centered(x, valid)
    return _mean(d[:, 1:-1, 1:-1] * d[:, 1:-1, 2:], valid)


def masked_std(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Standard deviation of the unsaturated pixels (r = 0)."""
    return np.sqrt(_variance(x, valid))


def masked_nvar(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Variance / mean of the unsaturated pixels (r = 0); 0 where the mean is ≤ 0."""
    m = _mean(x, valid)
    return np.where(m > 0, _variance(x, valid) / np.where(m > 0, m, 1.0), 0.0)
