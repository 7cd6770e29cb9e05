"""Standardization: zero mean, unit SD — how every learned model here sees an image, and
how Deep-R compares images (Luo et al., Methods "Image quality analysis")."""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np


@overload
def standardize(
    image: Any,
    *,
    axes: tuple[int, ...] | None = ...,
    dtype: Any = ...,
    floor: float = ...,
    return_stats: Literal[False] = ...,
) -> np.ndarray: ...
@overload
def standardize(
    image: Any,
    *,
    axes: tuple[int, ...] | None = ...,
    dtype: Any = ...,
    floor: float = ...,
    return_stats: Literal[True],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def standardize(
    image: Any,
    *,
    axes: tuple[int, ...] | None = (-2, -1),
    dtype: Any = np.float32,
    floor: float = 1e-6,
    return_stats: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x − mean) / max(SD, floor·max(|mean|, 1))`` over ``axes``.

    Zero mean, unit SD: how every learned model here sees an image, and how Deep-R compares
    images (Luo et al., Methods "Image quality analysis").

    Parameters
    ----------
    image : array
        An image (Y, X) or a batch (..., Y, X).
    axes : tuple of int or None
        The axes each mean and SD is taken over (default: each image of a batch; None:
        the whole array).
    dtype : dtype
        Computation and output type (float32 for network inputs, float64 for metrics).
    floor : float
        Relative floor of the SD, so a flat image gives finite values (zeros).
    return_stats : bool
        Also return the mean and the (floored) SD, shaped to broadcast against ``image``,
        to map a network's standardized output back: ``out · sd + mean``.

    Returns
    -------
    standardized : array of ``dtype``, or ``(standardized, mean, sd)``
        The standardized image(s), the shape of ``image``; with ``return_stats``, also the
        mean and floored SD with the reduced axes kept (size 1).

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods.
    """
    x = np.asarray(image, dtype=dtype)
    mean = x.mean(axis=axes, keepdims=True)
    sd = np.maximum(x.std(axis=axes, keepdims=True), floor * np.maximum(np.abs(mean), 1.0))
    out = (x - mean) / sd
    return (out, mean, sd) if return_stats else out
