"""The few-shot system's figures: an objective's calibration curve, a blur-score map, one
DeepFocus run on its calibration curve."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.fewshot._calibration import BlurCalibration
from focuskit.report import pyplot, save_figure
from focuskit.search import SearchResult


def calibration_plot(
    calibration: BlurCalibration, path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """b_calib(z) (mean ± SD over patches) with its Moffat fit and FWHM (DeepFocus §2.2, Fig. 2).

    Parameters
    ----------
    calibration : BlurCalibration
        The calibration to draw (z in µm).
    path : str or os.PathLike
        Image file to write.
    title : str
        Figure title (default "DeepFocus calibration").

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and Fig. 2.
    """
    plt = pyplot()
    fit = calibration.moffat
    z = np.asarray(calibration.z_um)
    b = np.asarray(calibration.score)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if calibration.score_sd is not None:
        sd = np.asarray(calibration.score_sd)
        ax.fill_between(z, b - sd, b + sd, color="C0", alpha=0.2, label="± SD over patches")
    ax.plot(z, b, "o", ms=3, color="C0", label="b_calib(z)")
    if fit is not None:
        zz = np.linspace(z.min(), z.max(), 600)
        ax.plot(zz, fit(zz), color="C3", label=f"Moffat fit, FWHM {fit.fwhm_um:.1f} µm")
        ax.hlines(
            fit.top - fit.amplitude / 2,
            fit.z0_um - fit.fwhm_um / 2,
            fit.z0_um + fit.fwhm_um / 2,
            color="C3",
            ls=":",
        )
    else:
        ax.axvspan(
            -calibration.fwhm_um / 2,
            calibration.fwhm_um / 2,
            color="C3",
            alpha=0.1,
            label=f"FWHM {calibration.fwhm_um:.1f} µm (no Moffat fit)",
        )
    ax.set_xlabel("z − focus (µm)")
    ax.set_ylabel("blur score (waves)")
    ax.set_title(title or "DeepFocus calibration")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def score_map_plot(
    image: np.ndarray, score_map: np.ndarray, path: str | os.PathLike[str], *, title: str
) -> None:
    """An image beside its blur-score map (one value per patch, waves; lower is sharper).

    Parameters
    ----------
    image : ndarray
        The 2-D image.
    score_map : ndarray
        Its blur-score map (waves), e.g. ``BlurScorer.score_map(image)``.
    path : str or os.PathLike
        Image file to write.
    title : str
        Figure title.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    lo, hi = np.percentile(image, [0.5, 99.5])
    axes[0].imshow(image, cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title("image")
    shown = axes[1].imshow(score_map, cmap="magma", extent=(0, image.shape[1], image.shape[0], 0))
    axes[1].set_title(f"blur score per patch (mean {score_map.mean():.2f} waves)")
    fig.colorbar(shown, ax=axes[1], label="defocus W (waves)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    save_figure(fig, path)


def deepfocus_plot(
    result: SearchResult,
    calibration: BlurCalibration,
    path: Any,
    *,
    true_focus_um: float | None = None,
    title: str = "",
) -> None:
    """One DeepFocus run on its calibration curve, and its per-patch focus map.

    One DeepFocus run: the scored images on the calibration curve shifted to the focus
    found (left), and the per-patch focus map of the last estimate (right).

    Parameters
    ----------
    result : SearchResult
        A :func:`deepfocus_search` result (with ``predictions``).
    calibration : BlurCalibration
        The calibration it used.
    path : str or os.PathLike
        Image file to write.
    true_focus_um : float, optional
        The true focus, drawn as a line (stage z, µm).
    title : str
        Figure title (default from the number of images).

    Raises
    ------
    ConfigError
        When ``result`` holds no DeepFocus estimate.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, steps 1–7.
    """
    plt = pyplot()
    if not result.predictions:
        raise ConfigError("this autofocus result holds no DeepFocus estimate to plot")
    last = result.predictions[-1]
    f_hat = last["z_focus_um"]
    z = np.array([t[0] for t in result.trace])
    b = np.array([t[1] for t in result.trace])
    fig, (ax, ax_map) = plt.subplots(
        1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [1.3, 1]}
    )
    if f_hat is not None:
        zz = np.linspace(min(z.min(), f_hat) - 20, max(z.max(), f_hat) + 20, 600)
        ax.plot(zz, calibration.curve(zz - f_hat), color="0.6", label="b_calib(z − f̂)")
        ax.axvline(f_hat, color="C3", ls="--", label=f"focus found {f_hat:+.2f} µm")
    ax.plot(z, b, "o", color="C0", label="images (ROI mean)")
    for k, (zi, bi) in enumerate(zip(z, b, strict=True), start=1):
        ax.annotate(str(k), (zi, bi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if true_focus_um is not None:
        ax.axvline(true_focus_um, color="k", lw=0.8, label=f"true focus {true_focus_um:+.2f} µm")
    ax.set_xlabel("stage z (µm)")
    ax.set_ylabel("blur score (waves)")
    ax.legend(fontsize=8)
    fmap = np.array([[np.nan if v is None else v for v in row] for row in last["map"]], dtype=float)
    shown = ax_map.imshow(fmap, cmap="coolwarm")
    fig.colorbar(shown, ax=ax_map, label="focus z per patch (µm)")
    ax_map.set_title("per-patch focus (a tilt shows as a gradient)", fontsize=9)
    ax_map.set_xticks([])
    ax_map.set_yticks([])
    fig.suptitle(title or f"DeepFocus: {result.images} images")
    save_figure(fig, path)
