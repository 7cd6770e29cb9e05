"""``DefocusModel``: the object users call — one image in, defocus z (µm), σ and an
in-range flag out. Wraps a trained FCFNN with its Fourier region, optics, training
statistics and out-of-distribution reference, and lives in a model folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.nn import (
    OPTICS_SECTION,
    Flag,
    Number,
    Numbers,
    Section,
    Text,
    TrainedModel,
    build_entry,
    torch_threads,
)
from focuskit.optics import Optics
from focuskit.scopes import Microscope
from focuskit.search import SearchResult
from focuskit.singleshot._data import DefocusExamples
from focuskit.singleshot._features import FourierRegion, fourier_features, split_tiles
from focuskit.singleshot._search import singleshot_search

KIND = "fcfnn-defocus"
OOD_COMPONENTS = 16
OOD_QUANTILE = 99.5

_WHOLE = Number(lo=1, whole=True)
_POSITIVE = Number(lo=0, lo_open=True)
# What a single-shot model folder's config.json holds (checked before anything is built).
SCHEMA = Section(
    required={
        "architecture": Section(
            required={"n_features": Number(lo=1, hi=2**24, whole=True)},
            optional={
                "width": Number(lo=1, hi=2**16, whole=True),
                "depth": Number(lo=0, hi=1000, whole=True),
                "input_dropout": Number(lo=0, hi=1, hi_open=True),
                "predict_sigma": Flag(),
                "predict_sign": Flag(),
                "magnitude": Flag(),
                "z_scale_um": _POSITIVE,
            },
        ),
        "features": Section(
            required={
                "tile": Number(lo=32, hi=4096, whole=True),
                "pixel_size_um": _POSITIVE,
                "na": _POSITIVE,
                "wavelength_um": _POSITIVE,
                "sx": Number(),
            },
            optional={
                "sy": Number(),
                "bin": Number(lo=1, hi=1024, whole=True),
                "margin": Number(lo=0, hi=1.5, lo_open=True),
                "transform": Text(),
                "cells": Text(),
            },
        ),
        "optics": OPTICS_SECTION,
        "z_range_um": Numbers(length=2, increasing=True),
        "ood": Section(
            required={"distance_limit": Number(lo=0), "residual_limit": Number(lo=0)},
            optional={"components": _WHOLE, "quantile": Number(lo=0, hi=100)},
        ),
    },
    optional={
        "sigma_scale": _POSITIVE,
        "parameters": Number(lo=0, whole=True),
        "training_bytes_per_example": Number(lo=0, whole=True),
    },
)


@dataclass
class DefocusPrediction:
    """Defocus of one image: ``z_um`` (OPTICS.md sign; move the focus drive by −z).

    Attributes
    ----------
    z_um : float
        Predicted defocus (µm): the median over the image's tiles.
    sigma_um : float
        Its uncertainty (µm); without a σ head, the tiles' spread alone.
    in_range : bool
        False when ``z_um`` lies outside the trusted range or a tile looks unlike the
        training data.
    tiles_z_um : list of float
        The prediction of each tile (µm).
    notes : list of str
        What was assumed, forced or found unusual.
    p_positive : float
        The probability that z > 0 (mean over tiles): the sign head's, or for a signed
        model without one Φ(z/σ) of its Gaussian predictive; NaN when neither exists.
        Near 0.5: the image does not tell +z from −z (docs/singleshot-sign.md).
    """

    z_um: float
    sigma_um: float
    in_range: bool
    tiles_z_um: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    p_positive: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """The prediction as a JSON-able dict.

        Returns
        -------
        data : dict
            One entry per attribute.
        """
        return {
            "z_um": self.z_um,
            "sigma_um": self.sigma_um,
            "in_range": self.in_range,
            "tiles_z_um": self.tiles_z_um,
            "notes": self.notes,
            "p_positive": self.p_positive if math.isfinite(self.p_positive) else None,
        }


@dataclass
class OODReference:
    """Where training features lie: a PCA subspace of the standardized features.

    A tile is unfamiliar when its Mahalanobis distance inside the subspace, or the share
    of its (standardized) energy outside it, exceeds the training set's 99.5th percentile.

    Attributes
    ----------
    mean : (F,) float32 array
        Mean of the standardized training features.
    components : (k, F) float32 array
        The leading principal directions (k ≤ 16).
    scales : (k,) float32 array
        The standard deviation along each direction.
    distance_limit : float
        Largest familiar RMS Mahalanobis distance in the subspace.
    residual_limit : float
        Largest familiar share of energy outside the subspace (0–1).
    """

    mean: np.ndarray  # (F,)
    components: np.ndarray  # (k, F)
    scales: np.ndarray  # (k,)
    distance_limit: float
    residual_limit: float

    @classmethod
    def fit(
        cls, standardized: np.ndarray, seed: int = 0, limits_from: np.ndarray | None = None
    ) -> OODReference:
        """Fit the reference: PCA of ``standardized``, limits at the 99.5th percentile.

        The limits are percentiles over ``limits_from`` (default: the same examples).
        Fields the PCA never saw sit further out than the ones it was fitted on, so limits
        taken on validation fields do not flag new fields of the familiar kind.

        Parameters
        ----------
        standardized : (N, F) array
            Standardized training features (up to 3000 of them, drawn at random, are used).
        seed : int, optional
            Seed of that draw. Default 0.
        limits_from : (M, F) array, optional
            Standardized features the limits are taken on (e.g. validation fields).

        Returns
        -------
        reference : OODReference
            The fitted reference.
        """
        rng = np.random.default_rng(seed)
        x = standardized[rng.permutation(len(standardized))[:3000]].astype(np.float64)
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(OOD_COMPONENTS, len(s))
        ref = cls(
            mean.astype(np.float32),
            vt[:k].astype(np.float32),
            (s[:k] / math.sqrt(max(len(x) - 1, 1))).astype(np.float32),
            math.inf,
            math.inf,
        )
        d, r = ref.scores(standardized if limits_from is None else limits_from)
        ref.distance_limit = float(np.percentile(d, OOD_QUANTILE))
        ref.residual_limit = float(np.percentile(r, OOD_QUANTILE))
        return ref

    def scores(self, standardized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How far each feature vector lies from the training features.

        Parameters
        ----------
        standardized : (N, F) array
            Standardized feature vectors.

        Returns
        -------
        distance : (N,) array
            RMS Mahalanobis distance inside the subspace.
        residual : (N,) array
            Share of each vector's (centred) energy outside the subspace, 0–1.
        """
        centred = standardized - self.mean
        # einsum, not a BLAS matmul: OpenBLAS's threads spin on a busy 2-core PC (436 ms
        # instead of well under 1 ms for these few rows).
        proj = np.einsum("nf,kf->nk", centred, self.components)
        distance = np.sqrt(np.mean((proj / self.scales) ** 2, axis=1))
        residual = 1 - np.sum(proj**2, axis=1) / np.maximum(np.sum(centred**2, axis=1), 1e-12)
        return distance, residual

    def familiar(self, standardized: np.ndarray) -> np.ndarray:
        """Whether each feature vector is within both limits.

        Parameters
        ----------
        standardized : (N, F) array
            Standardized feature vectors.

        Returns
        -------
        familiar : (N,) bool array
            True when distance and residual are both at most their limits.
        """
        d, r = self.scores(standardized)
        return (d <= self.distance_limit) & (r <= self.residual_limit)


class DefocusModel(TrainedModel):
    """A trained single-shot defocus predictor (Pinkard et al.'s FCFNN and beyond).

    ``predict(image)`` gives the defocus ``z`` (µm, OPTICS.md sign: move the focus drive by
    ``−z``), its uncertainty σ and whether the image is one the model knows (``in_range``);
    ``autofocus(scope)`` focuses a microscope with it.

    Parameters
    ----------
    net : FCFNN
    region : FourierRegion
        Which Fourier cells of which tile size are the features.
    optics : Optics
        The microscope (and LED) the model was trained for.
    ood : OODReference
        Where the training features lie (for ``in_range``).
    z_range_um : (float, float)
        The defocus range predictions are trusted in.
    sigma_scale : float
        Recalibration factor of the σ head on held-out fields.
    metadata : dict, optional
        How it was trained (saved in config.json).

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Methods and Note S3.
    """

    kind = KIND
    title = "single-shot defocus model"
    cli = "singleshot"
    schema = SCHEMA

    def __init__(
        self,
        net: Any,
        region: FourierRegion,
        optics: Optics,
        *,
        ood: OODReference,
        z_range_um: tuple[float, float],
        sigma_scale: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.net = net
        self.sigma_scale = float(sigma_scale)
        self.region = region
        self.optics = optics
        self.ood = ood
        self.z_range_um = (float(z_range_um[0]), float(z_range_um[1]))
        self.metadata = dict(metadata or {})
        self.source = ""

    # Building ---------------------------------------------------------------------------
    @classmethod
    def from_training(
        cls,
        net: Any,
        region: FourierRegion,
        optics: Optics,
        train: DefocusExamples,
        validation: DefocusExamples | None = None,
        trusted_range_um: tuple[float, float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> DefocusModel:
        """Wrap a trained net as a model, with its out-of-distribution reference.

        With ``validation`` (fields the net did not train on), σ is recalibrated by one
        factor ``s² = mean((z − ẑ)²/σ²)`` (variance recalibration, Levi et al. 2019 [2]_):
        the NLL head fits the training fields' errors, which are smaller than those on new
        fields.

        ``trusted_range_um`` (default: the training labels' range) is where predictions
        count as in range. Training on a wider range than is trusted lets the network say
        "beyond" instead of folding far images into the range it knows.

        Parameters
        ----------
        net : FCFNN
            The trained network (:func:`fit_fcfnn`).
        region : FourierRegion
            Its features.
        optics : Optics
            The microscope (and LED) it was trained for.
        train : DefocusExamples
            Its training examples (the out-of-distribution PCA is fitted on them).
        validation : DefocusExamples, optional
            Held-out fields: σ is recalibrated and the out-of-distribution limits taken on
            them.
        trusted_range_um : (float, float), optional
            Where predictions count as in range (µm).
        metadata : dict, optional
            How it was trained (saved in config.json).

        Returns
        -------
        model : DefocusModel
            The model, unsaved.

        References
        ----------
        .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
           learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
           Note S3.
        .. [2] Levi, D., Gispan, L., Giladi, N. & Fetaya, E. Evaluating and calibrating
           uncertainty prediction in regression tasks. arXiv:1905.11659 (2019).
        """
        standardized = cls._standardize(net, train.features)
        held_out = None if validation is None else cls._standardize(net, validation.features)
        z_range = trusted_range_um or (float(train.z_um.min()), float(train.z_um.max()))
        model = cls(
            net,
            region,
            optics,
            ood=OODReference.fit(standardized, limits_from=held_out),
            z_range_um=z_range,
            metadata=metadata,
        )
        if validation is not None and net.config.predict_sigma:
            z, sigma, _ = model.predict_features(validation.features)
            truth = validation.z_um
            if net.config.magnitude:  # σ is the magnitude's; the sign has its own P(z > 0)
                z, truth = np.abs(z), np.abs(truth)
            model.sigma_scale = float(np.sqrt(np.mean(((z - truth) / sigma) ** 2)))
        return model

    @staticmethod
    def _standardize(net: Any, features: np.ndarray) -> np.ndarray:
        mean = net.feature_mean.detach().cpu().numpy()
        std = net.feature_std.detach().cpu().numpy()
        return ((features - mean) / std).astype(np.float32)

    # Files ------------------------------------------------------------------------------
    def networks(self) -> dict[str, Any]:
        return {"net": self.net}

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "ood.mean": self.ood.mean,
            "ood.components": self.ood.components,
            "ood.scales": self.ood.scales,
        }

    def config(self) -> dict[str, Any]:
        return {
            "architecture": self.net.config.to_dict(),
            "features": self.region.to_dict(),
            "optics": self.optics.to_dict(),
            "z_range_um": list(self.z_range_um),
            "sigma_scale": self.sigma_scale,
            "ood": {
                "distance_limit": self.ood.distance_limit,
                "residual_limit": self.ood.residual_limit,
                "components": len(self.ood.scales),
                "quantile": OOD_QUANTILE,
            },
            "parameters": self.net.parameter_count(),
            "training_bytes_per_example": self.net.training_bytes_per_example(),
        }

    @classmethod
    def from_folder(
        cls, path: Path, config: dict[str, Any], tensors: dict[str, dict[str, np.ndarray]]
    ) -> DefocusModel:
        from focuskit.singleshot._network import FCFNN, FCFNNConfig

        arch = build_entry(config, "architecture", FCFNNConfig.from_dict)
        region = build_entry(config, "features", FourierRegion.from_dict)
        if region.n_features != arch.n_features:
            raise ConfigError(
                f'"architecture" has {arch.n_features} features but "features" (the Fourier '
                f"region) gives {region.n_features}"
            )
        optics = build_entry(config, "optics", Optics.from_dict)
        net = cls.load_network(lambda: FCFNN(arch), tensors, "net", path)
        net.eval()
        # k principal directions of n features; k is read off the scales (checked below).
        n = arch.n_features
        scales = tensors.get("ood", {}).get("scales")
        k = scales.shape[0] if scales is not None and scales.ndim == 1 and scales.size else 1
        ood_arrays = cls.check_tensors(
            tensors,
            "ood",
            {"mean": ((n,), "f"), "components": ((k, n), "f"), "scales": ((k,), "f")},
            path,
        )
        ood = OODReference(
            ood_arrays["mean"],
            ood_arrays["components"],
            ood_arrays["scales"],
            float(config["ood"]["distance_limit"]),
            float(config["ood"]["residual_limit"]),
        )
        skip = {
            "kind",
            "focuskit_version",
            "architecture",
            "features",
            "optics",
            "z_range_um",
            "sigma_scale",
            "ood",
            "parameters",
            "training_bytes_per_example",
        }
        return cls(
            net,
            region,
            optics,
            ood=ood,
            z_range_um=tuple(config["z_range_um"]),  # type: ignore[arg-type]
            sigma_scale=float(config.get("sigma_scale", 1.0)),
            metadata={k: v for k, v in config.items() if k not in skip},
        )

    @property
    def pixel_size_um(self) -> float:
        return self.region.pixel_size_um

    # Prediction -------------------------------------------------------------------------
    def predict_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, σ, familiar) per feature vector.

        Parameters
        ----------
        features : (N, F) array
            Raw feature vectors (:func:`fourier_features` of this model's region).

        Returns
        -------
        z : (N,) float64 array
            Predicted defocus (µm, OPTICS.md sign).
        sigma : (N,) float64 array
            Its recalibrated uncertainty (µm); NaN without a σ head.
        familiar : (N,) bool array
            Whether each vector lies within the out-of-distribution limits.
        """
        z, sigma, familiar, _ = self._predict_all(features)
        return z, sigma, familiar

    def sign_probability(self, features: np.ndarray) -> np.ndarray:
        """P(z > 0) per feature vector: the sign head's, else Φ(z/σ) (NaN without either).

        Parameters
        ----------
        features : (N, F) array
            Raw feature vectors (:func:`fourier_features` of this model's region).

        Returns
        -------
        p_positive : (N,) float64 array
            The probability that the defocus is positive (focal plane above focus).
        """
        return self._predict_all(features)[3]

    def _predict_all(
        self, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        # One thread: the net is ~2 MFLOP a tile, and torch's spinning worker threads
        # made it 200× slower on a busy 2-core machine (96 ms instead of 0.45 ms).
        with torch_threads(1), torch.no_grad():
            z, log_sigma, sign_logit = self.net(x)
        sigma = (
            self.sigma_scale * torch.exp(log_sigma).numpy()
            if log_sigma is not None
            else np.full(len(x), np.nan)
        )
        if sign_logit is not None:
            p_positive = torch.sigmoid(sign_logit).double().numpy()
        elif log_sigma is not None and not self.net.config.magnitude:
            # No sign head: the Gaussian predictive N(z, σ²) of a signed model says
            # P(z > 0) = Φ(z/σ) — what the model believes, calibrated only where σ is.
            zs = z.double().numpy() / np.maximum(sigma.astype(np.float64), 1e-12)
            p_positive = 0.5 * (1.0 + np.vectorize(math.erf)(zs / math.sqrt(2.0)))
        else:
            p_positive = np.full(len(x), np.nan)
        familiar = self.ood.familiar(
            self._standardize(self.net, np.asarray(features, dtype=np.float32))
        )
        return z.numpy().astype(np.float64), sigma.astype(np.float64), familiar, p_positive

    def predict(
        self,
        image: np.ndarray,
        *,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        force: bool = False,
    ) -> DefocusPrediction:
        """Defocus of one image: the median over its tiles (Note S3, item 3) [1]_.

        Parameters
        ----------
        image : (Y, X) array
            One image under the model's LED, at least one tile.
        optics : Optics, optional
        pixel_size_um : float, optional
            What the image's file or microscope says (pixel size in µm; checked:
            :meth:`check_optics`).
        force : bool, optional
            Predict even if they differ from the model's (noted). Default False.

        Returns
        -------
        DefocusPrediction
            ``z_um``: the tiles' median; ``sigma_um`` combines their median predicted σ
            with their spread (1.4826·MAD/√n); ``in_range`` is False when z lies outside
            the trusted range or any tile looks unlike the training data.

        Raises
        ------
        ConfigError
            Not one 2-D image, an image from another microscope (without ``force``), or
            one the features cannot use (smaller than a tile, NaN, constant).

        References
        ----------
        .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
           learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
           Note S3, item 3.
        """
        image = np.asarray(image)
        if image.ndim != 2:
            raise ConfigError(
                f"expected one 2-D image, got shape {image.shape}; predict planes one at a time"
            )
        notes = self.check_optics(optics, pixel_size_um, force=force)
        tiles = split_tiles(image, self.region.tile)
        outputs = self._predict_all(fourier_features(tiles, self.region))
        return self._combine(*outputs, notes)

    def predict_blocks(
        self,
        plane: Any,
        *,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        force: bool = False,
        block_tiles: int = 2,
    ) -> DefocusPrediction:
        """:meth:`predict` of a plane too large to hold: the same tiles, read region by region.

        The tile grid is the whole plane's (:func:`split_tiles`: centred, whole tiles); it
        is cut into groups of ``block_tiles`` × ``block_tiles`` tiles, and each group's
        region is read, cut into its tiles and predicted as one Dask task, on the
        scheduler that is active (``focuskit.io.compute_context``). The result equals
        :meth:`predict` of the whole plane (the same tiles, the same median); memory holds
        a few regions.

        Parameters
        ----------
        plane : array_like
            One 2-D plane that slices lazily (a ``dask.array.Array``, a zarr array, …).
        optics : Optics, optional
            The optics the file or microscope states (checked as in :meth:`predict`).
        pixel_size_um : float, optional
            The pixel size it states (µm; checked).
        force : bool, optional
            Predict even if they differ from the model's (noted).
        block_tiles : int, optional
            Tiles per region along each axis (≥ 1; default 2).

        Returns
        -------
        prediction : DefocusPrediction
            As :meth:`predict`.

        Raises
        ------
        ConfigError
            As :meth:`predict`; also ``block_tiles`` < 1.

        References
        ----------
        .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
           learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
           Note S3, item 3.
        """
        import dask

        shape = tuple(int(n) for n in np.shape(plane))
        if len(shape) != 2:
            raise ConfigError(
                f"expected one 2-D image, got shape {shape}; predict planes one at a time"
            )
        if isinstance(block_tiles, bool) or not isinstance(block_tiles, int) or block_tiles < 1:
            raise ConfigError(f"block_tiles must be a whole number ≥ 1, got {block_tiles!r}")
        notes = self.check_optics(optics, pixel_size_um, force=force)  # before any read
        tile = self.region.tile
        (ny, nx), (ty, tx) = shape, (shape[0] // tile, shape[1] // tile)
        if ty == 0 or tx == 0:
            raise ConfigError(
                f"image {ny}×{nx} is smaller than one {tile}² tile; use a larger image"
            )
        y0, x0 = (ny - ty * tile) // 2, (nx - tx * tile) // 2  # split_tiles' centred grid

        def group(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            region = np.asarray(
                plane[y0 + r0 * tile : y0 + r1 * tile, x0 + c0 * tile : x0 + c1 * tile]
            )
            tiles = split_tiles(region, tile)  # the region is whole tiles: no margin
            z, sigma, familiar, p = self._predict_all(fourier_features(tiles, self.region))
            return np.stack([z, sigma, familiar.astype(np.float64), p], axis=-1).reshape(
                r1 - r0, c1 - c0, 4
            )

        rows = [(r, min(r + block_tiles, ty)) for r in range(0, ty, block_tiles)]
        cols = [(c, min(c + block_tiles, tx)) for c in range(0, tx, block_tiles)]
        tasks = [[dask.delayed(group)(*r, *c) for c in cols] for r in rows]
        (blocks,) = dask.compute(tasks)
        grid = np.concatenate([np.concatenate(row, axis=1) for row in blocks], axis=0)
        out = grid.reshape(ty * tx, 4)  # split_tiles' row-major order
        return self._combine(out[:, 0], out[:, 1], out[:, 2] > 0.5, out[:, 3], notes)

    def _combine(
        self,
        z: np.ndarray,
        sigma: np.ndarray,
        familiar: np.ndarray,
        p_tiles: np.ndarray,
        notes: list[str],
    ) -> DefocusPrediction:
        """One image's prediction from its tiles': the median z, σ from the tiles' median σ
        and their spread, in range only when the median is and every tile is familiar."""
        z_med = float(np.median(z))
        spread = (
            1.4826 * float(np.median(np.abs(z - z_med))) / math.sqrt(len(z)) if len(z) > 1 else 0.0
        )
        sigma_tot = (
            float(math.hypot(float(np.median(sigma)), spread))
            if np.all(np.isfinite(sigma))
            else spread
        )
        lo, hi = self.z_range_um
        in_z = lo <= z_med <= hi
        if not in_z:
            notes.append(
                f"predicted z {z_med:+.1f} µm is outside the trained range "
                f"[{lo:+.1f}, {hi:+.1f}] µm"
            )
        if not familiar.all():
            notes.append(
                f"{int((~familiar).sum())}/{len(familiar)} tiles look unlike the training data"
            )
        return DefocusPrediction(
            z_um=z_med,
            sigma_um=sigma_tot,
            in_range=bool(in_z and familiar.all()),
            tiles_z_um=[float(v) for v in z],
            notes=notes,
            p_positive=float(np.mean(p_tiles)),
        )

    def autofocus(self, scope: Microscope, *, force: bool = False, **settings: Any) -> SearchResult:
        """Single-shot autofocus on ``scope`` with this model (:func:`singleshot_search`).

        Snap → predict → move by −z → verify; a classic search when a prediction is not in
        range. The scope's optics are checked before the stage moves.

        Parameters
        ----------
        scope : Microscope
            The microscope to focus (its optics and pixel size are checked).
        force : bool, optional
            Use the model even if the scope's optics differ (noted in the result).
        **settings
            Passed to :func:`singleshot_search` (``max_iterations``, ``tolerance_um``,
            ``fallback``, ``fallback_range_um``, ``measure``, ``guard``, ``verify``,
            ``sign_check``).

        Returns
        -------
        result : SearchResult
            ``method="singleshot"``: the final z (µm), success, the trace and one record
            per prediction; the optics check's notes come first in ``notes``.

        Raises
        ------
        ConfigError
            The scope's optics differ from the model's (without ``force``), or bad settings.

        References
        ----------
        .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
           learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
           Note S3.
        """
        notes = self.check_optics(scope.optics, scope.pixel_size_um, force=force)
        px, optics = scope.pixel_size_um, scope.optics

        def predict(image: np.ndarray) -> DefocusPrediction:
            return self.predict(image, pixel_size_um=px, optics=optics, force=force)

        result = singleshot_search(scope, predict, **settings)
        result.notes = notes + result.notes
        return result
