"""Deep-R's structural losses (Luo et al., eq. 3–4): BerHu and multi-scale SSIM, in torch."""

from __future__ import annotations

from typing import Any


def berhu(pred: Any, target: Any, c: Any = None, *, c_fraction: float = 0.1) -> Any:
    """Reversed Huber (BerHu) loss (eq. 4), averaged over pixels, per image (N,).

    ``|d|`` where ``|d| ≤ c``, ``(d² + c²)/(2c)`` where ``|d| > c``, ``d = pred − target``.
    ``c`` defaults to ``c_fraction`` × the SD of each target image (the paper: ~10 %).

    Parameters
    ----------
    pred : torch.Tensor
        (N, 1, H, W) network output.
    target : torch.Tensor
        (N, 1, H, W) in-focus truth, same scale.
    c : float or torch.Tensor, optional
        Threshold, one value or one per image (intensity units); default from ``c_fraction``.
    c_fraction : float
        ``c`` as a fraction of each target's SD.

    Returns
    -------
    loss : torch.Tensor
        (N,) mean BerHu per image.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           eq. 4 and Methods "Network structure, training and validation".
    """
    import torch

    d = (pred - target).abs().flatten(1)
    if c is None:
        c = c_fraction * target.flatten(1).std(dim=1, keepdim=True)
    c = torch.as_tensor(c, dtype=d.dtype, device=d.device).reshape(-1, 1).clamp_min(1e-12)
    return torch.where(d <= c, d, (d * d + c * c) / (2 * c)).mean(dim=1)


def ms_ssim_window(size: int, largest: int = 11) -> int:
    """The Gaussian window for MS-SSIM on ``size``-pixel images.

    11 (Wang et al.) when the coarsest of the five scales still holds it
    (``size > 16·(win − 1)``, i.e. ≥ 161 px), else the largest odd window that fits; 0 when
    not even a 3-pixel window fits (< 33 px).

    Parameters
    ----------
    size : int
        The image's smaller side (pixels).
    largest : int
        The window to start from (odd, pixels).

    Returns
    -------
    win : int
        Odd window side (pixels), or 0.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           eq. 3.
    """
    win = largest
    while win >= 3 and size <= 16 * (win - 1):
        win -= 2
    return win if win >= 3 else 0


def ms_ssim(pred: Any, target: Any, *, win_size: int | None = None) -> Any:
    """Multi-scale SSIM (eq. 3) per image (N,), on one intensity scale.

    MS-SSIM (eq. 3; Wang, Simoncelli & Bovik 2003; pytorch-msssim with Wang et al.'s five
    scales and weights) per image (N,), on both images mapped to [0, 1] by the target's own
    minimum and maximum (the paper compares images on one scale). Images under 161 pixels
    get a smaller window (:func:`ms_ssim_window`); under 33 pixels, single-scale SSIM.

    Parameters
    ----------
    pred : torch.Tensor
        (N, 1, H, W) network output.
    target : torch.Tensor
        (N, 1, H, W) in-focus truth.
    win_size : int, optional
        Gaussian window (odd, pixels; default :func:`ms_ssim_window`; 0: single-scale SSIM
        with a 3-pixel window).

    Returns
    -------
    ms_ssim : torch.Tensor
        (N,) MS-SSIM per image, at most 1 (1: identical).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           eq. 3.
    .. [2] Wang, Z., Simoncelli, E. P. & Bovik, A. C. Multiscale structural similarity for
           image quality assessment. Proc. 37th Asilomar Conf. Signals, Systems and
           Computers, 1398–1402 (2003).
    """
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    flat = target.flatten(1)
    lo = flat.min(dim=1).values.reshape(-1, 1, 1, 1)
    span = (flat.max(dim=1).values.reshape(-1, 1, 1, 1) - lo).clamp_min(1e-12)
    x, y = (pred - lo) / span, (target - lo) / span
    win = ms_ssim_window(min(target.shape[-2:])) if win_size is None else win_size
    if win == 0:
        return _ssim(x, y, data_range=1.0, win_size=3, size_average=False)
    return _ms_ssim(x, y, data_range=1.0, win_size=win, size_average=False)
