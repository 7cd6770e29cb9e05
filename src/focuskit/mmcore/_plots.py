"""The figure of a focused time-lapse: where the stage was against where focus was, the
error against DOF/4, and the images each autofocus took."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from focuskit.mmcore._timelapse import TimelapseResult
from focuskit.report import pyplot, save_figure


def timelapse_plot(
    result: TimelapseResult, path: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """Plot a time-lapse: stage z and true focus per time point, |error|, images per autofocus.

    Parameters
    ----------
    result : TimelapseResult
        What :func:`~focuskit.mmcore.run_timelapse` returned.
    path : str or path-like
        The PNG to write (atomically).
    title : str, optional
        Figure title (default: the method).

    Returns
    -------
    path : Path
        The written PNG.
    """
    plt = pyplot()
    fig, (ax_z, ax_e, ax_n) = plt.subplots(1, 3, figsize=(12, 3.4))
    positions = sorted({f["p"] for f in result.frames}, key=lambda p: -1 if p is None else p)
    for i, p in enumerate(positions):
        frames = [f for f in result.frames if f["p"] == p]
        t = np.array([f["t"] for f in frames], dtype=float)
        color = f"C{i % 10}"
        label = "stage" if p is None else f"p{p}: stage"
        ax_z.plot(t, [f["z_um"] for f in frames], "o", color=color, label=label)
        if frames and frames[0].get("true_focus_um") is not None:
            ax_z.plot(t, [f["true_focus_um"] for f in frames], "--", color=color, label="focus")
            ax_e.plot(t, [abs(f["error_um"]) for f in frames], "o-", color=color)
        ax_n.plot(t, [f["af_images"] or 0 for f in frames], "s-", color=color)
    if result.dof_um:
        ax_e.axhline(result.dof_um / 4, color="k", linestyle=":", label="DOF/4")
        ax_e.legend(fontsize=8)
    ax_z.set_ylabel("z (µm)")
    ax_e.set_ylabel("|z − focus| (µm)")
    ax_n.set_ylabel("images per autofocus")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_z, ax_e, ax_n):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("time point")
        ax.grid(alpha=0.3)
    ax_z.legend(fontsize=7)
    fig.suptitle(title or f"time-lapse kept in focus by {result.method}")
    fig.tight_layout()
    return save_figure(fig, path)
