"""Deep-R networks (Luo et al., Methods "Network structure", Fig. S9 and Fig. 7a).

* :class:`DeepRGenerator` — a U-Net: a full-resolution stem, five downsampling blocks
  (2×2 average pooling → two 3×3 convolutions with a residual connection) and five
  upsampling blocks (bilinear ×2 → concatenate the skip → two 3×3 convolutions), then a
  1×1 convolution. With ``global_residual`` it predicts the correction added to the
  (standardized) input. Input height and width must be multiples of 32.
* :class:`DeepRDiscriminator` — a convolutional classifier: strided 3×3 convolutions,
  global average pooling, two fully connected layers and a sigmoid (``D ∈ (0, 1)``, as the
  least-squares losses of eq. 1–2 expect).
* :class:`DPMDecoder` — the defocus-map decoder of Fig. 7a: the generator's up-sampling
  structure run on the frozen generator's encoder features, one output channel = defocus
  in µm per pixel.

Widths are configurable; the defaults are the CPU-trainable variant (see the README for
parameter counts and the latency per 512² tile). Inputs are standardized images
(zero mean, unit SD), shape (N, 1, H, W).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from focuskit.refocus._config import LEVELS, DeepRConfig, DiscriminatorConfig


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class _ResidualConv(nn.Module):
    """``act(conv(act(conv(x)))) + skip(x)``; ``skip`` is a 1×1 convolution when widths differ."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            _act(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            _act(),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class _Encoder(nn.Module):
    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, padding=1), _act(), _ResidualConv(channels[0], channels[0])
        )
        self.down = nn.ModuleList(_ResidualConv(a, b) for a, b in itertools.pairwise(channels))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at every level, full resolution first (length 6)."""
        feats = [self.stem(x)]
        for block in self.down:
            feats.append(block(F.avg_pool2d(feats[-1], 2)))
        return feats


class _Decoder(nn.Module):
    """Five upsampling blocks from the deepest feature back to full resolution,
    then 1×1 → 1 channel."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels[i + 1] + channels[i], channels[i], 3, padding=1),
                _act(),
                nn.Conv2d(channels[i], channels[i], 3, padding=1),
                _act(),
            )
            for i in reversed(range(LEVELS))
        )
        self.out = nn.Conv2d(channels[0], 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for block, skip in zip(self.up, reversed(feats[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.out(x)


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected (N, 1, H, W) images, got shape {tuple(x.shape)}")
    multiple = 2**LEVELS
    if x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(
            f"height and width must be multiples of {multiple}, got {tuple(x.shape[-2:])}"
        )


class DeepRGenerator(nn.Module):
    """Standardized defocused image (N, 1, H, W) → standardized in-focus estimate (N, 1, H, W).

    H and W must be multiples of 32 (5 poolings).

    Parameters
    ----------
    config : DeepRConfig, optional
        Architecture (default :class:`DeepRConfig`).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation" and Fig. S9.
    """

    def __init__(self, config: DeepRConfig | None = None) -> None:
        super().__init__()
        self.config = config or DeepRConfig()
        self.encoder = _Encoder(self.config.channels)
        self.decoder = _Decoder(self.config.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        out = self.decoder(self.encoder(x))
        return x + out if self.config.global_residual else out

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class DPMDecoder(nn.Module):
    """Defocus-map decoder (Fig. 7a) on the generator's frozen encoder.

    The generator's up-sampling path on its frozen encoder's features → per-pixel defocus
    (µm). The encoder is held, not owned: it is not saved with the decoder's weights and
    never receives gradients.

    Parameters
    ----------
    channels : tuple of int
        The generator's widths (:attr:`DeepRConfig.channels`).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 7a.
    """

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.decoder = _Decoder(tuple(channels))

    def forward(self, encoder_features: list[torch.Tensor]) -> torch.Tensor:
        return self.decoder(encoder_features)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class DeepRDiscriminator(nn.Module):
    """Image (N, 1, H, W) → probability that it is a real in-focus image, (N,).

    Parameters
    ----------
    config : DiscriminatorConfig, optional
        Architecture (default :class:`DiscriminatorConfig`).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation", eq. 1–2 and Fig. S9.
    """

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DiscriminatorConfig()
        layers: list[nn.Module] = []
        c_in = 1
        for c in self.config.channels:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1),
                _act(),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
                _act(),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c_in, c_in), _act(), nn.Linear(c_in, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))
        return torch.sigmoid(self.head(pooled)).squeeze(1)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
