"""Overlapping tiles of an image and their raised-cosine blending weights: the one tiling
every tiled computation (learned models, physics refocusing, maps) shares."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along one axis: every ``tile − overlap`` pixels, the last flush
    with the end.

    Parameters
    ----------
    length : int
        The image's length along the axis (pixels).
    tile : int
        The tile length (pixels).
    overlap : int
        Pixels shared by neighbouring tiles.

    Returns
    -------
    starts : list of int
        The first pixel of each tile (``[0]`` when the image is at most one tile long).
    """
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def blend_ramp(tile: int, overlap: int) -> np.ndarray:
    """Raised-cosine weights along one tile side.

    1 inside, ramping over ``overlap`` pixels to a small floor at the edge (so an image's
    own borders still count). The 2-D blending window of overlapping tiles is the outer
    product of two ramps.

    Parameters
    ----------
    tile : int
        The tile length (pixels).
    overlap : int
        Length of the ramp at each end (pixels); 0 gives all ones.

    Returns
    -------
    ramp : (tile,) float64 array
        The weights, in [1e-3, 1].
    """
    ramp = np.ones(tile, dtype=np.float64)
    if overlap > 0:
        t = (np.arange(overlap) + 0.5) / overlap
        ramp[:overlap] = 0.5 - 0.5 * np.cos(np.pi * t)
        ramp[-overlap:] = ramp[:overlap][::-1]
    return np.maximum(ramp, 1e-3)


__all__ = ["blend_ramp", "tile_starts"]
