"""The refocusing system's figures: Deep-R's loss curves (Fig. S8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from focuskit.report import pyplot, save_figure


def loss_curve_plot(history: Any, dpm_history: Any | None, path: str | os.PathLike[str]) -> Path:
    """Fig. S8: Deep-R's loss curves, and the DPM decoder's RMSE if trained.

    The generator's loss terms (unweighted training means), the discriminator's loss and the
    validation BerHu / MS-SSIM against step; the DPM decoder's RMSE if trained.

    Parameters
    ----------
    history : RefocusHistory
        The GAN's history (:func:`fit_deepr`).
    dpm_history : DPMHistory or None
        The decoder's history (:func:`fit_dpm`), or None: no third panel.
    path : str or os.PathLike
        Image file to write.

    Returns
    -------
    path : Path
        The file written.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. S8 and eq. 1–4.
    """
    plt = pyplot()
    panels = 3 if dpm_history is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.6))
    s = history.steps
    ax = axes[0]
    ax.plot(s, history.adversarial, label="(1 − D(G(x)))²")
    ax.plot(s, history.ms_ssim_loss, label="1 − MS-SSIM")
    ax.plot(s, history.berhu, label="BerHu")
    ax.plot(s, history.discriminator_loss, label="L_D", ls="--")
    ax.set(
        xlabel="generator step", ylabel="training loss (unweighted)", yscale="log", title="training"
    )
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(s, history.val_berhu, color="C2", label="BerHu")
    ax.axvline(history.best_step, color="0.5", ls=":", label=f"best (step {history.best_step})")
    ax.set(xlabel="generator step", ylabel="validation BerHu", title="validation")
    twin = ax.twinx()
    twin.plot(s, history.val_ms_ssim, color="C1", label="MS-SSIM")
    twin.set_ylabel("validation MS-SSIM", color="C1")
    ax.legend(fontsize=8, loc="upper center")
    if dpm_history is not None:
        ax = axes[2]
        ax.plot(dpm_history.steps, [v**0.5 for v in dpm_history.train_mse_um2], label="training")
        ax.plot(dpm_history.steps, dpm_history.val_rmse_um, label="validation")
        ax.set(xlabel="decoder step", ylabel="defocus-map RMSE (µm)", title="DPM decoder")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
