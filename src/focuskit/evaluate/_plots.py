"""Pictures people would rather look at than read (matplotlib, Agg backend)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure_atomic(fig, path: str | os.PathLike[str], dpi: int = 110) -> Path:  # type: ignore[no-untyped-def]
    """Save a figure through a temporary sibling and rename, so no partial PNG is left."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def stack_montage(
    data: np.ndarray,
    z_um: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    focus_z_um: float | None = None,
    max_planes: int = 12,
    pixel_size_um: float | None = None,
) -> Path:
    """A grid of evenly chosen planes, each labelled with its z; the in-focus plane framed.

    Each panel uses the 0.5–99.5 % percentiles of the whole shown set, so contrast
    changes between planes stay visible.
    """
    plt = _pyplot()
    z = np.asarray(z_um, dtype=float)
    idx = np.unique(np.linspace(0, len(z) - 1, min(max_planes, len(z))).round().astype(int))
    if focus_z_um is not None:
        nearest = int(np.argmin(np.abs(z - focus_z_um)))
        if nearest not in idx:
            idx[np.argmin(np.abs(idx - nearest))] = nearest
    planes = np.asarray(data[idx], dtype=np.float32)
    lo, hi = np.percentile(planes, [0.5, 99.5])
    cols = min(6, len(idx))
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, k, plane in zip(axes.ravel(), idx, planes):
        ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(f"z = {z[k]:+.1f} µm", fontsize=9)
        if focus_z_um is not None and k == int(np.argmin(np.abs(z - focus_z_um))):
            for side in ax.spines.values():
                side.set_visible(True)
                side.set_color("tab:orange")
                side.set_linewidth(3)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
    if pixel_size_um:
        width_um = data.shape[-1] * pixel_size_um
        title = f"{title}  ({width_um:.0f} µm field)" if title else f"{width_um:.0f} µm field"
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    try:
        return save_figure_atomic(fig, path)
    finally:
        plt.close(fig)
