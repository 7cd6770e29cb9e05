"""``DefocusModel``: the object users call — one image in, defocus z (µm), σ and an
in-range flag out. Wraps a trained FCFNN with its Fourier region, optics, training
statistics and out-of-distribution reference, and lives in a model folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focuskit import __version__
from focuskit._errors import ConfigError
from focuskit.measures import FourierRegion, fourier_features, split_tiles
from focuskit.optics import LED, Optics
from focuskit.train._defocus_data import DefocusExamples
from focuskit.train._loop import torch_threads
from focuskit.train._model_folder import load_model_folder, save_model_folder

KIND = "fcfnn-defocus"
OOD_COMPONENTS = 16
OOD_QUANTILE = 99.5


@dataclass
class DefocusPrediction:
    """Defocus of one image: ``z_um`` (OPTICS.md sign; move the focus drive by −z)."""

    z_um: float
    sigma_um: float
    in_range: bool
    tiles_z_um: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"z_um": self.z_um, "sigma_um": self.sigma_um, "in_range": self.in_range,
                "tiles_z_um": self.tiles_z_um, "notes": self.notes}


@dataclass
class OODReference:
    """Where training features lie: a PCA subspace of the standardized features.

    A tile is unfamiliar when its Mahalanobis distance inside the subspace, or the share
    of its (standardized) energy outside it, exceeds the training set's 99.5th percentile.
    """

    mean: np.ndarray  # (F,)
    components: np.ndarray  # (k, F)
    scales: np.ndarray  # (k,)
    distance_limit: float
    residual_limit: float

    @classmethod
    def fit(cls, standardized: np.ndarray, seed: int = 0, limits_from: np.ndarray | None = None) -> OODReference:
        """PCA of ``standardized``; the limits are percentiles over ``limits_from``
        (default: the same examples). Fields the PCA never saw sit further out than the
        ones it was fitted on, so limits taken on validation fields do not flag new
        fields of the familiar kind."""
        rng = np.random.default_rng(seed)
        x = standardized[rng.permutation(len(standardized))[:3000]].astype(np.float64)
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(OOD_COMPONENTS, len(s))
        ref = cls(mean.astype(np.float32), vt[:k].astype(np.float32),
                  (s[:k] / math.sqrt(max(len(x) - 1, 1))).astype(np.float32), math.inf, math.inf)
        d, r = ref.scores(standardized if limits_from is None else limits_from)
        ref.distance_limit = float(np.percentile(d, OOD_QUANTILE))
        ref.residual_limit = float(np.percentile(r, OOD_QUANTILE))
        return ref

    def scores(self, standardized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = standardized - self.mean
        # einsum, not a BLAS matmul: OpenBLAS's threads spin on a busy 2-core PC (436 ms
        # instead of well under 1 ms for these few rows).
        proj = np.einsum("nf,kf->nk", centred, self.components)
        distance = np.sqrt(np.mean((proj / self.scales) ** 2, axis=1))
        residual = 1 - np.sum(proj**2, axis=1) / np.maximum(np.sum(centred**2, axis=1), 1e-12)
        return distance, residual

    def familiar(self, standardized: np.ndarray) -> np.ndarray:
        d, r = self.scores(standardized)
        return (d <= self.distance_limit) & (r <= self.residual_limit)


class DefocusModel:
    """A trained single-shot defocus predictor (Pinkard et al.'s FCFNN and beyond)."""

    def __init__(self, net: Any, region: FourierRegion, optics: Optics, *, ood: OODReference,
                 z_range_um: tuple[float, float], sigma_scale: float = 1.0,
                 info: dict[str, Any] | None = None) -> None:
        self.net = net
        self.sigma_scale = float(sigma_scale)
        self.region = region
        self.optics = optics
        self.ood = ood
        self.z_range_um = (float(z_range_um[0]), float(z_range_um[1]))
        self.info = dict(info or {})

    # Building ---------------------------------------------------------------------------
    @classmethod
    def from_training(cls, net: Any, region: FourierRegion, optics: Optics, train: DefocusExamples,
                      validation: DefocusExamples | None = None,
                      trusted_range_um: tuple[float, float] | None = None,
                      info: dict[str, Any] | None = None) -> DefocusModel:
        """Wrap a trained net. With ``validation`` (fields the net did not train on), σ is
        recalibrated by one factor ``s² = mean((z − ẑ)²/σ²)`` (variance recalibration,
        Levi et al. 2019): the NLL head fits the training fields' errors, which are smaller
        than those on new fields.

        ``trusted_range_um`` (default: the training labels' range) is where predictions
        count as in range. Training on a wider range than is trusted lets the network say
        "beyond" instead of folding far images into the range it knows.
        """
        standardized = cls._standardize(net, train.features)
        held_out = None if validation is None else cls._standardize(net, validation.features)
        z_range = trusted_range_um or (float(train.z_um.min()), float(train.z_um.max()))
        model = cls(net, region, optics, ood=OODReference.fit(standardized, limits_from=held_out),
                    z_range_um=z_range, info=info)
        if validation is not None and net.config.predict_sigma:
            z, sigma, _ = model.predict_features(validation.features)
            model.sigma_scale = float(np.sqrt(np.mean(((z - validation.z_um) / sigma) ** 2)))
        return model

    @staticmethod
    def _standardize(net: Any, features: np.ndarray) -> np.ndarray:
        mean = net.feature_mean.detach().cpu().numpy()
        std = net.feature_std.detach().cpu().numpy()
        return ((features - mean) / std).astype(np.float32)

    # Files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        config = {
            "kind": KIND,
            "focuskit_version": __version__,
            "architecture": self.net.config.to_dict(),
            "features": self.region.to_dict(),
            "optics": self.optics.to_dict(),
            "z_range_um": list(self.z_range_um),
            "sigma_scale": self.sigma_scale,
            "ood": {"distance_limit": self.ood.distance_limit, "residual_limit": self.ood.residual_limit,
                    "components": int(len(self.ood.scales)), "quantile": OOD_QUANTILE},
            "parameters": self.net.parameter_count(),
            "training_bytes_per_example": self.net.training_bytes_per_example(),
            **self.info,
        }
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        tensors.update({"ood.mean": self.ood.mean, "ood.components": self.ood.components, "ood.scales": self.ood.scales})
        return save_model_folder(path, config, tensors, overwrite=overwrite)

    @classmethod
    def load(cls, spec: str | os.PathLike[str]) -> DefocusModel:
        import torch

        from focuskit.models import FCFNN, FCFNNConfig

        path, config, tensors = load_model_folder(spec)
        if config.get("kind") != KIND:
            raise ConfigError(f"{path}: not a single-shot defocus model (kind {config.get('kind')!r})")
        try:
            net = FCFNN(FCFNNConfig(**config["architecture"]))
            net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("net.")})
            ood_tensors = (tensors["ood.mean"], tensors["ood.components"], tensors["ood.scales"])
        except (TypeError, KeyError, RuntimeError):
            raise ConfigError(
                f"{path}: weights do not fit this focuskit's FCFNN (saved by focuskit "
                f"{config.get('focuskit_version', '?')}) — retrain it with this version"
            ) from None
        net.eval()
        ood = OODReference(*ood_tensors,
                           float(config["ood"]["distance_limit"]), float(config["ood"]["residual_limit"]))
        info = {k: v for k, v in config.items() if k in ("training", "preset", "data")}
        info["path"] = str(path)
        return cls(net, FourierRegion.from_dict(config["features"]), Optics.from_dict(config["optics"]),
                   ood=ood, z_range_um=tuple(config["z_range_um"]),  # type: ignore[arg-type]
                   sigma_scale=float(config.get("sigma_scale", 1.0)), info=info)

    # Prediction -------------------------------------------------------------------------
    def predict_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, σ, familiar) per feature vector."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        # One thread: the net is ~2 MFLOP a tile, and torch's spinning worker threads
        # made it 200× slower on a busy 2-core machine (96 ms instead of 0.45 ms).
        with torch_threads(1), torch.no_grad():
            z, log_sigma = self.net(x)
        sigma = self.sigma_scale * torch.exp(log_sigma).numpy() if log_sigma is not None else np.full(len(x), np.nan)
        familiar = self.ood.familiar(self._standardize(self.net, np.asarray(features, dtype=np.float32)))
        return z.numpy().astype(np.float64), sigma.astype(np.float64), familiar

    def check_metadata(self, pixel_size_um: float | None, optics: Optics | None, *, force: bool = False) -> list[str]:
        """Refuse an image from another microscope (unless ``force``); say what was assumed."""
        notes: list[str] = []
        problems: list[str] = []
        if pixel_size_um is None:
            if optics is None:
                raise ConfigError("the image has no pixel size — pass --pixel-size UM (the model expects "
                                  f"{self.region.pixel_size_um:g} µm)")
            pixel_size_um = optics.pixel_size_um
        if not math.isclose(pixel_size_um, self.region.pixel_size_um, rel_tol=0.01):
            problems.append(f"pixel size {pixel_size_um:g} µm ≠ the model's {self.region.pixel_size_um:g} µm")
        if optics is None:
            notes.append(f"no optics metadata: assumed the model's ({self.optics.objective.magnification:g}×/"
                         f"{self.optics.na:g}, λ {self.optics.wavelength_um:g} µm, LED sx {self.region.sx:g})")
        else:
            ill = optics.illumination
            if not math.isclose(optics.na, self.optics.na, rel_tol=0.01):
                problems.append(f"NA {optics.na:g} ≠ the model's {self.optics.na:g}")
            if not math.isclose(optics.wavelength_um, self.optics.wavelength_um, rel_tol=0.02):
                problems.append(f"λ {optics.wavelength_um:g} µm ≠ the model's {self.optics.wavelength_um:g} µm")
            if not isinstance(ill, LED) or abs(ill.sx - self.region.sx) > 0.01 or abs(ill.sy - self.region.sy) > 0.01:
                problems.append(f"illumination {ill.kind} ≠ the model's LED at ({self.region.sx:g}, {self.region.sy:g})")
        if problems:
            message = "image does not match the model: " + "; ".join(problems)
            if not force:
                raise ConfigError(message + " — use a model trained for this microscope, or --force")
            notes.append("forced: " + message)
        return notes

    def predict(self, image: np.ndarray, *, pixel_size_um: float | None = None, optics: Optics | None = None,
                force: bool = False) -> DefocusPrediction:
        """Defocus of one image: the median over its tiles (Note S3, item 3).

        σ combines the tiles' median predicted σ with their spread
        (1.4826·MAD/√n). ``in_range`` is False when z lies outside the trained range or
        any tile looks unlike the training data.
        """
        image = np.asarray(image)
        if image.ndim != 2:
            raise ConfigError(f"expected one 2-D image, got shape {image.shape}; predict planes one at a time")
        if pixel_size_um is None and optics is None:
            pixel_size_um = None
        notes = self.check_metadata(pixel_size_um, optics, force=force)
        tiles = split_tiles(image, self.region.tile)
        z, sigma, familiar = self.predict_features(fourier_features(tiles, self.region))
        z_med = float(np.median(z))
        spread = 1.4826 * float(np.median(np.abs(z - z_med))) / math.sqrt(len(z)) if len(z) > 1 else 0.0
        sigma_tot = float(math.hypot(float(np.median(sigma)), spread)) if np.all(np.isfinite(sigma)) else spread
        lo, hi = self.z_range_um
        in_z = lo <= z_med <= hi
        if not in_z:
            notes.append(f"predicted z {z_med:+.1f} µm is outside the trained range [{lo:+.1f}, {hi:+.1f}] µm")
        if not familiar.all():
            notes.append(f"{int((~familiar).sum())}/{len(familiar)} tiles look unlike the training data")
        return DefocusPrediction(z_um=z_med, sigma_um=sigma_tot, in_range=bool(in_z and familiar.all()),
                                 tiles_z_um=[float(v) for v in z], notes=notes)
