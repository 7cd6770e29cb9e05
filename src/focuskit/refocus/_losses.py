"""Deep-R's structural losses (Luo et al., eq. 3–4): BerHu and multi-scale SSIM, in torch."""

from __future__ import annotations

from typing import Any


def berhu(pred: Any, target: Any, c: Any = None, *, c_fraction: float = 0.1) -> Any:
    """Reversed Huber loss (eq. 4), averaged over pixels, per image (N,):
    ``|d|`` where ``|d| ≤ c``, ``(d² + c²)/(2c)`` where ``|d| > c``, ``d = pred − target``.
    ``c`` defaults to ``c_fraction`` × the SD of each target image (the paper: ~10 %)."""
    import torch

    d = (pred - target).abs().flatten(1)
    if c is None:
        c = c_fraction * target.flatten(1).std(dim=1, keepdim=True)
    c = torch.as_tensor(c, dtype=d.dtype, device=d.device).reshape(-1, 1).clamp_min(1e-12)
    return torch.where(d <= c, d, (d * d + c * c) / (2 * c)).mean(dim=1)


def ms_ssim_window(size: int, largest: int = 11) -> int:
    """The Gaussian window for MS-SSIM on ``size``-pixel images: 11 (Wang et al.) when the
    coarsest of the five scales still holds it (``size > 16·(win − 1)``, i.e. ≥ 161 px),
    else the largest odd window that fits; 0 when not even a 3-pixel window fits (< 33 px)."""
    win = largest
    while win >= 3 and size <= 16 * (win - 1):
        win -= 2
    return win if win >= 3 else 0


def ms_ssim(pred: Any, target: Any, *, win_size: int | None = None) -> Any:
    """MS-SSIM (eq. 3; Wang, Simoncelli & Bovik 2003; pytorch-msssim with Wang et al.'s five
    scales and weights) per image (N,), on both images mapped to [0, 1] by the target's own
    minimum and maximum (the paper compares images on one scale). Images under 161 pixels
    get a smaller window (:func:`ms_ssim_window`); under 33 pixels, single-scale SSIM."""
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
