"""The slide QC picture: per-tile focus, the flagged tiles and the fitted focal surface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from focuskit.report._plots import pyplot, save_figure


def slide_focus_map_plot(fmap: Any, path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Two panels: the per-tile estimate with flagged tiles crossed, and the fitted surface
    with its contours.

    Parameters
    ----------
    fmap : focuskit.focus.SlideFocusMap
        The map.
    path : str or path-like
        The PNG to write.
    title : str, optional
        Figure title.

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
    rows, cols = fmap.shape
    step = fmap.tile * fmap.pixel_size_um
    extent = (0.0, cols * step, rows * step, 0.0)  # µm, y down as on the slide
    shown = fmap.z_um if fmap.kind != "score" else fmap.value
    label = {"signed-z": "z (µm)", "abs-z": "|z| (µm)", "score": "focus value"}[fmap.kind]
    yy, xx = fmap.centres_um
    # The surface on a fine grid over the whole slide, not only at the tile centres.
    gy, gx = np.meshgrid(
        np.linspace(0, rows * step, 96), np.linspace(0, cols * step, 96), indexing="ij"
    )
    fitted = fmap.surface(gy, gx)
    values = np.concatenate([shown[np.isfinite(shown)], fitted.ravel()])
    lo, hi = float(values.min()), float(values.max())
    cmap = "viridis"
    if fmap.kind == "signed-z":  # white at focus, red above, blue below
        cmap, lim = "coolwarm", max(abs(lo), abs(hi), 1e-9)
        lo, hi = -lim, lim
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True, layout="constrained")
    im = axes[0].imshow(shown, extent=extent, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    if fmap.flagged.any():
        axes[0].scatter(
            xx[fmap.flagged], yy[fmap.flagged], marker="x", color="k", s=28, label="flagged"
        )
        axes[0].legend(loc="upper right", fontsize=7)
    empty = fmap.flags == "no-signal"
    if empty.any():
        axes[0].scatter(xx[empty], yy[empty], marker=".", color="0.5", s=10)
    axes[0].set_title(f"per tile: {int(fmap.flagged.sum())} of {shown.size} flagged", fontsize=9)
    axes[1].imshow(fitted, extent=extent, cmap=cmap, vmin=lo, vmax=hi)
    if np.ptp(fitted) > 0:
        cs = axes[1].contour(gx, gy, fitted, levels=8, colors="k", linewidths=0.6)
        axes[1].clabel(cs, fontsize=6, fmt="%.3g")
    s = fmap.surface
    axes[1].set_title(
        f"fitted surface (order {s.order}), residual RMS {s.rms:.3g}"
        + (f", tilt {s.tilt_deg:.3f}°" if fmap.kind != "score" else ""),
        fontsize=9,
    )
    for ax in axes:
        ax.set_xlabel("x (µm)")
    axes[0].set_ylabel("y (µm)")
    fig.colorbar(im, ax=axes, label=label, shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
