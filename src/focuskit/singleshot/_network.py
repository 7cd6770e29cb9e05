"""FCFNN: the fully connected Fourier neural network (Pinkard et al., Note S3).

Input: a Fourier feature vector (:func:`focuskit.singleshot.fourier_features`). The network
standardizes it with training-set statistics held as buffers (so a saved model carries
its own normalization), applies dropout to the input only, then ``depth`` fully
connected ReLU layers of ``width`` units, then a scalar output: the defocus ``z``
(µm, OPTICS.md sign). With ``predict_sigma`` a small second head reads the body's
features *detached* and gives log σ for a Gaussian negative log-likelihood (calibrated
uncertainty, beyond the paper): learning σ can then never reshape what the mean uses —
sharing the body made the mean's validation RMSE jump tenfold when the NLL switched on.
With ``predict_sign`` a third small head, also on the detached features, gives the logit
of P(z > 0): one LED often cannot tell +z from −z (docs/singleshot-sign.md), and the
autofocus loop needs to know when the sign is a guess. With ``magnitude`` the main head
learns ``|z|`` and the sign head (then on the shared, not detached, features) gives z its
sign: a sign-blind image then still gets its right ``|z|`` instead of the mean of ±z (≈ 0)
that a signed regression learns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class FCFNNConfig:
    """The architecture of an :class:`FCFNN` (saved in a model's config.json).

    Attributes
    ----------
    n_features : int
        Length of the input feature vector (``FourierRegion.n_features``).
    width : int
        Units per hidden layer. Default 100, the paper's.
    depth : int
        Hidden fully connected ReLU layers. Default 10, the paper's.
    input_dropout : float
        Dropout rate on the input only. Default 0.1.
    predict_sigma : bool
        Add the detached σ head (Gaussian NLL; beyond the paper). Default True.
    predict_sign : bool
        Add the detached sign head: the logit of P(z > 0) (beyond the paper). Default
        False, as in model folders saved before it existed.
    magnitude : bool
        The main head learns ``|z|``; ``z = ±|z|`` by the sign head's more likely sign
        (needs ``predict_sign``). Default False.
    z_scale_um : float
        Outputs are in units of this (µm), for well-scaled training. Default 30.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """

    n_features: int
    width: int = 100
    depth: int = 10
    input_dropout: float = 0.1
    predict_sigma: bool = True
    predict_sign: bool = False
    magnitude: bool = False
    z_scale_um: float = 30.0  # outputs are in units of this, for well-scaled training

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-able dict.

        Returns
        -------
        data : dict
            One entry per field.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FCFNNConfig:
        """Rebuild a configuration from :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            The fields, by name.

        Returns
        -------
        config : FCFNNConfig
            An instance of this class.
        """
        return cls(**data)


class FCFNN(nn.Module):
    """The fully connected Fourier neural network: feature vector → defocus z (µm) [1]_.

    Standardizes its input with the buffers ``feature_mean`` and ``feature_std``, applies
    input dropout, ``depth`` ReLU layers of ``width`` units, and a scalar head (the
    defocus, µm); with ``predict_sigma`` a second head on the detached features gives
    log σ.

    Parameters
    ----------
    config : FCFNNConfig
        The architecture.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """

    def __init__(self, config: FCFNNConfig) -> None:
        super().__init__()
        if config.magnitude and not config.predict_sign:
            raise ValueError("magnitude needs predict_sign (the sign head gives z its sign)")
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_std", torch.ones(config.n_features))
        self.input_dropout = nn.Dropout(config.input_dropout)
        layers: list[nn.Module] = []
        width_in = config.n_features
        for _ in range(config.depth):
            layers += [nn.Linear(width_in, config.width), nn.ReLU()]
            width_in = config.width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, 1)
        self.sigma_head = (
            nn.Sequential(nn.Linear(width_in, 32), nn.ReLU(), nn.Linear(32, 1))
            if config.predict_sigma
            else None
        )
        self.sign_head = (
            nn.Sequential(nn.Linear(width_in, 32), nn.ReLU(), nn.Linear(32, 1))
            if config.predict_sign
            else None
        )

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-feature statistics of the training set (std floored to avoid division by 0).

        Parameters
        ----------
        mean : (F,) torch.Tensor
            Mean of each raw feature over the training set.
        std : (F,) torch.Tensor
            Its standard deviation (floored at 1e-6 × the largest).
        """
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(torch.clamp(std, min=1e-6 * float(std.max())))

    def forward(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(z in µm, log σ in µm or None, sign logit or None) for raw feature vectors.

        Parameters
        ----------
        features : (N, F) torch.Tensor
            Raw (unstandardized) feature vectors.

        Returns
        -------
        z : (N,) torch.Tensor
            Predicted defocus (µm, OPTICS.md sign).
        log_sigma : (N,) torch.Tensor or None
            log of the predicted σ (σ in µm); None without a σ head.
        sign_logit : (N,) torch.Tensor or None
            logit of P(z > 0); None without a sign head.
        """
        x = (features - self.feature_mean) / self.feature_std
        hidden = self.body(self.input_dropout(x))
        z = self.head(hidden)[:, 0] * self.config.z_scale_um
        log_sigma = (
            None
            if self.sigma_head is None
            else self.sigma_head(hidden.detach())[:, 0] + math.log(self.config.z_scale_um)
        )
        sign_logit = None
        if self.sign_head is not None:
            shared = hidden if self.config.magnitude else hidden.detach()
            sign_logit = self.sign_head(shared)[:, 0]
        if self.config.magnitude:
            assert sign_logit is not None
            z = torch.where(sign_logit >= 0, 1.0, -1.0) * z.abs()
        return z, log_sigma, sign_logit

    def parameter_count(self) -> int:
        """The number of trainable parameters.

        Returns
        -------
        count : int
            Parameters with ``requires_grad``.
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def training_bytes_per_example(self) -> int:
        """Activations kept for backprop per example (float32): input + every layer output.

        Comparable to Pinkard et al. Table S1 (which counts activation memory per example)
        [1]_.

        Returns
        -------
        nbytes : int
            Bytes per training example.

        References
        ----------
        .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
           learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
           Table S1.
        """
        c = self.config
        heads = 1 + int(c.predict_sigma) + int(c.predict_sign)
        return 4 * (c.n_features * 2 + c.depth * c.width * 2 + heads)
