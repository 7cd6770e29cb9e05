"""Data plumbing every trainer shares: the validation hold-out, augmentation, tiling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from focuskit._errors import ConfigError


def split_fields(
    field: np.ndarray, validation_fraction: float = 0.15, *, seed: int = 0
) -> np.ndarray:
    """Choose which examples are held out for validation, by whole fields of view.

    Never planes or tiles of a field on both sides (no leakage). ``round(fraction ·
    n_fields)`` fields, at least one and at most all but one, drawn with
    ``default_rng(seed)``.

    Parameters
    ----------
    field : (N,) int array
        The field of view of each example.
    validation_fraction : float, optional
        The fraction of fields held out, in (0, 1). Default 0.15.
    seed : int, optional
        Seed of the draw. Default 0.

    Returns
    -------
    is_validation : (N,) bool array
        True for validation examples.

    Raises
    ------
    ConfigError
        ``validation_fraction`` outside (0, 1), or fewer than two fields of view.
    """
    if not 0 < validation_fraction < 1:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    field = np.asarray(field)
    fields = np.unique(field)
    if fields.size < 2:
        raise ConfigError(
            "need at least two fields of view to split training from validation "
            "(one is held out) — add stacks or simulate more fields"
        )
    n_val = min(fields.size - 1, max(1, round(float(validation_fraction * fields.size))))
    val_fields = np.random.default_rng(seed).choice(fields, size=n_val, replace=False)
    return np.isin(field, val_fields)


def split_one_field(field: np.ndarray, every: int = 5, position: int = 4) -> np.ndarray:
    """Split a single field of view into two, so :func:`split_fields` can hold one out.

    New field ids set every ``every``-th example (by position, from ``position``) apart as a
    second field, so :func:`split_fields` holds those out. Neighbouring tiles of one stack
    are not independent, but the held-out ones were still never trained on.

    Parameters
    ----------
    field : (N,) int array
        The field id of each example (all the same).
    every : int, optional
        Period of the examples set apart. Default 5.
    position : int, optional
        Index of the first example set apart (at most ``N − 1``). Default 4.

    Returns
    -------
    field : (N,) int array
        The new field ids: ``field + 1`` for the examples set apart, ``field`` otherwise.

    Raises
    ------
    ConfigError
        Fewer than two examples.
    """
    field = np.asarray(field)
    n = field.size
    if n < 2:
        raise ConfigError("one stack gave a single example — use smaller tiles or add stacks")
    position = min(position, n - 1)
    return np.where(np.arange(n) % every == position, field + 1, field)


def augment_d4(batch: Any, k: int) -> Any:
    """Apply one of the 8 symmetries of the square (k = 0…7) to a torch batch (…, Y, X).

    Rotate by k·90°, then flip along x for k ≥ 4.

    Parameters
    ----------
    batch : torch.Tensor, shape (..., Y, X)
        Images, the last two axes y and x.
    k : int
        Which symmetry, 0…7 (0: the identity).

    Returns
    -------
    out : torch.Tensor
        The transformed batch (Y and X swapped by odd rotations).
    """
    import torch

    out = torch.rot90(batch, k % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


# ----------------------------------------------------------------------------- tiling
def patch_origins(length: int, stride: int, patch: int | None = None) -> np.ndarray:
    """Top-left corners of patches along one axis.

    ``ceil((L − patch)/stride) + 1`` patches spread evenly from 0 to ``L − patch`` (the
    last patch ends at the border); ``patch`` defaults to ``stride`` (patches that just
    touch).

    Parameters
    ----------
    length : int
        ``L``, the image's length along the axis (pixels).
    stride : int
        The largest distance between neighbouring corners (pixels).
    patch : int, optional
        The patch length (pixels). Default: ``stride``.

    Returns
    -------
    origins : (n,) int array
        The corners, from 0 to ``L − patch``.

    Raises
    ------
    ConfigError
        The image is shorter than one patch.
    """
    patch = stride if patch is None else patch
    if length < patch:
        raise ConfigError(f"the image is {length} pixels along one side; this needs ≥ {patch}")
    n = math.ceil((length - patch) / stride) + 1
    return np.round(np.linspace(0, length - patch, n)).astype(int)
