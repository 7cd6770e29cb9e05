"""The DeepFocus blur-score CNN: one 128×128 patch → the defocus of its local PSF.

Shajkofci & Liebling use a CNN that regresses Zernike coefficients of the local PSF
(their ref. [10]) and keep the defocus one as the blur score. Ours is a compact
ResNet-like regressor of the edge defocus wavefront ``W`` (waves, ≥ 0), small enough to
train on two CPU cores: a strided 5×5 stem, then stages of (strided 3×3 conv → residual
block) that halve the resolution and widen the channels, global average pooling (the
whole patch votes, so the 128-pixel window sees blur far larger than a 3×3 gradient
does — the paper's explanation for its range), and a linear head with softplus
(``W ≥ 0``). Inputs are standardized patches (zero mean, unit SD).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class BlurCNNConfig:
    """Architecture of the blur-score CNN.

    Attributes
    ----------
    channels : tuple of int
        Widths of the stem, then one stage per further entry.
    waves_scale : float
        Outputs are in units of this (waves), for well-scaled training.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10].
    """

    channels: tuple[int, ...] = (16, 24, 48, 64)  # stem, then one stage per further entry
    waves_scale: float = 4.0  # outputs are in units of this, for well-scaled training

    def to_dict(self) -> dict[str, Any]:
        """The architecture as a JSON-able dict.

        Returns
        -------
        d : dict
        """
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlurCNNConfig:
        """The architecture from :meth:`to_dict`'s form.

        Parameters
        ----------
        data : dict
            ``channels`` and ``waves_scale``.

        Returns
        -------
        config : BlurCNNConfig
        """
        return cls(
            channels=tuple(int(c) for c in data["channels"]), waves_scale=float(data["waves_scale"])
        )


def _conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    """``x + BN(conv(ReLU(BN(conv(x)))))`` then ReLU (He et al.'s basic block)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
        )
        self.out = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.body(x))


class BlurCNN(nn.Module):
    """(N, 1, 128, 128) standardized patches → (N,) defocus W in waves.

    Parameters
    ----------
    config : BlurCNNConfig, optional
        Architecture (default :class:`BlurCNNConfig`).

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10].
    """

    def __init__(self, config: BlurCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or BlurCNNConfig()
        ch = self.config.channels
        layers: list[nn.Module] = [_conv_bn(1, ch[0], 5, 2)]
        for c_in, c_out in itertools.pairwise(ch):
            layers += [_conv_bn(c_in, c_out, 3, 2), _Residual(c_out)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch[-1], 1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        pooled = self.features(patches).mean(dim=(2, 3))
        return nn.functional.softplus(self.head(pooled)).squeeze(1) * self.config.waves_scale

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
