"""Pictures people would rather look at than read (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from focuskit.io import atomic_output


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no screen needed).

    Returns
    -------
    plt : module
        ``matplotlib.pyplot``, with the backend switched to Agg.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save a figure as PNG atomically and close it.

    A temporary sibling is renamed into place: no partial PNG is ever left.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (closed even if saving fails).
    path : str or path-like
        The PNG to write (replaced if it exists).
    dpi : int, optional
        Resolution. Default 110.

    Returns
    -------
    path : Path
        The written PNG.
    """
    target = Path(path)
    try:
        with atomic_output(target, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        pyplot().close(fig)
    return target


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

    Parameters
    ----------
    data : (Z, Y, X) array
        The focal stack.
    z_um : (Z,) array
        The z of each plane (µm).
    path : str or path-like
        The PNG to write.
    title : str, optional
        Figure title.
    focus_z_um : float, optional
        The in-focus z (µm): the nearest plane is always shown, framed in orange.
    max_planes : int, optional
        Most planes shown. Default 12.
    pixel_size_um : float, optional
        Pixel size (µm); the field's width is added to the title.

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
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
    for ax, k, plane in zip(axes.ravel(), idx, planes, strict=False):
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
    return save_figure(fig, path)


def focus_curve_plot(
    z_um: np.ndarray,
    curves: dict[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    focus_z_um: float | None = None,
    title: str = "",
) -> Path:
    """Focus curves (each normalized to its own min–max) against z; true focus dashed.

    Parameters
    ----------
    z_um : (Z,) array
        The z of each plane (µm).
    curves : dict of str to (Z,) array
        Score per plane of each focus measure, by name (the legend).
    path : str or path-like
        The PNG to write.
    focus_z_um : float, optional
        The true focus (µm), drawn as a dashed line.
    title : str, optional
        Plot title (default "focus curves").

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    z = np.asarray(z_um, dtype=float)
    for name, curve in curves.items():
        c = np.asarray(curve, dtype=float)
        span = np.ptp(c)
        ax.plot(z, (c - c.min()) / span if span > 0 else c * 0, marker=".", label=name)
    if focus_z_um is not None:
        ax.axvline(focus_z_um, color="k", linestyle="--", linewidth=1, label="focus")
    ax.set_xlabel("z (µm)")
    ax.set_ylabel("score (normalized)")
    ax.set_title(title or "focus curves")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def autofocus_trace_plot(
    trace: list[tuple[float, float]],
    path: str | os.PathLike[str],
    *,
    z_final_um: float,
    true_focus_um: float | None = None,
    title: str = "",
) -> Path:
    """Where a search imaged, in order: z and score per image.

    Parameters
    ----------
    trace : list of (float, float)
        ``(z_um, score)`` of each image, in the order taken.
    path : str or path-like
        The PNG to write.
    z_final_um : float
        Where the search finished (µm).
    true_focus_um : float, optional
        The true focus (µm), drawn dashed.
    title : str, optional
        Figure title (default "autofocus trace").

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
    fig, (ax_z, ax_s) = plt.subplots(1, 2, figsize=(9, 3.4))
    k = np.arange(1, len(trace) + 1)
    z = np.array([t[0] for t in trace])
    s = np.array([t[1] for t in trace])
    ax_z.plot(k, z, marker="o")
    ax_z.axhline(z_final_um, color="tab:green", label="final")
    if true_focus_um is not None:
        ax_z.axhline(true_focus_um, color="k", linestyle="--", label="true focus")
    ax_z.set_xlabel("image #")
    ax_z.set_ylabel("z (µm)")
    ax_z.legend(fontsize=8)
    ax_s.scatter(z, s, c=k, cmap="viridis")
    ax_s.set_xlabel("z (µm)")
    ax_s.set_ylabel("score")
    for ax in (ax_z, ax_s):
        ax.grid(alpha=0.3)
    fig.suptitle(title or "autofocus trace")
    fig.tight_layout()
    return save_figure(fig, path)


def image_panels(
    panels: list[tuple[str, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    shared_contrast: bool = False,
) -> Path:
    """Images side by side with titles (e.g. truth, input, Deep-R, RL).

    Each is shown on its own 0.5–99.8 % percentile grey scale unless ``shared_contrast``.

    Parameters
    ----------
    panels : list of (str, (Y, X) array)
        Title and image of each panel, left to right.
    path : str or path-like
        The PNG to write.
    shared_contrast : bool, optional
        One grey scale (the percentiles of all images together). Default False.

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.6))
    axes = np.atleast_1d(axes)
    lo_all, hi_all = np.percentile(np.concatenate([np.ravel(p[1]) for p in panels]), [0.5, 99.8])
    for ax, (title, image) in zip(axes, panels, strict=True):
        img = np.asarray(image, dtype=np.float32)
        lo, hi = (lo_all, hi_all) if shared_contrast else np.percentile(img, [0.5, 99.8])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def family_montage(
    views: Any,
    path: str | os.PathLike[str],
    *,
    per_row: int = 4,
    title: str = "Sample families at z = −DOF, 0, +DOF",
) -> Path:
    """Every sample family in focus and one depth of field either side, in one PNG.

    Each family gets three panels sharing its own 0.5–99.5 % grey range (so the loss of
    contrast with defocus shows); the label names the family, its preset and the DOF.

    Parameters
    ----------
    views : sequence of FamilyView
        Objects with ``family``, ``preset``, ``z_um`` (3,) and ``images`` (3, Y, X), as
        from :func:`focuskit.simulate.family_views`.
    path : str or path-like
        The PNG to write.
    per_row : int, optional
        Families per row (default 4).
    title : str, optional
        Figure title.

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
    views = list(views)
    rows = max(1, int(np.ceil(len(views) / per_row)))
    cols = 3 * per_row
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.5 * rows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, view in enumerate(views):
        r, c0 = divmod(i, per_row)
        images = np.asarray(view.images, np.float32)
        lo, hi = np.percentile(images, [0.5, 99.5])
        for k in range(3):
            ax = axes[r, 3 * c0 + k]
            ax.imshow(images[k], cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-12))
            ax.text(
                0.03,
                0.04,
                f"{view.z_um[k]:+.1f} µm",
                color="yellow",
                fontsize=6,
                transform=ax.transAxes,
            )
        axes[r, 3 * c0 + 1].set_title(f"{view.family} ({view.preset})", fontsize=7, pad=2)
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.94, wspace=0.04, hspace=0.22)
    return save_figure(fig, path, dpi=90)
