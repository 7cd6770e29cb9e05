"""A trained blur-score CNN as a tool: image → blur-score map (one W per 128² patch).

``BlurScorer.load("builtin:blur-cnn" | folder)`` reads a model folder (config.json +
weights.safetensors). ``score_map`` tiles the image with 128² patches on a regular grid
(stride 128 by default; the grid is spread evenly so it spans the whole image),
standardizes each patch and runs the CNN in batches on one or two threads. Scores are
the defocus wavefront ``W`` in waves: lower is sharper.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from focuskit import __version__
from focuskit._errors import ConfigError
from focuskit.optics import Optics
from focuskit.train._blur_data import CUTOFF_RANGE, PATCH, standardize
from focuskit.train._loop import torch_threads
from focuskit.train._model_folder import load_model_folder, save_model_folder

KIND = "blur-cnn"


def patch_origins(length: int, stride: int, patch: int = PATCH) -> np.ndarray:
    """Top-left corners along one axis: ``ceil((L − patch)/stride) + 1`` patches spread evenly
    from 0 to ``L − patch`` (so the last patch ends at the border)."""
    if length < patch:
        raise ConfigError(f"the image is {length} pixels along one side; the blur score needs ≥ {patch}")
    n = math.ceil((length - patch) / stride) + 1
    return np.round(np.linspace(0, length - patch, n)).astype(int)


class BlurScorer:
    """The DeepFocus blur score (Shajkofci & Liebling §2.2) from a trained :class:`BlurCNN`."""

    def __init__(self, net: Any, *, cutoff_range: tuple[float, float] = CUTOFF_RANGE,
                 info: dict[str, Any] | None = None, num_threads: int = 2) -> None:
        self.net = net
        self.cutoff_range = (float(cutoff_range[0]), float(cutoff_range[1]))
        self.info = dict(info or {})
        self.num_threads = num_threads
        self.source = str(self.info.get("source", ""))

    # --------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        config = {
            "kind": KIND,
            "focuskit_version": __version__,
            "architecture": self.net.config.to_dict(),
            "patch": PATCH,
            "score": "defocus wavefront at the pupil edge W = z·(n − √(n² − NA²))/λ, in waves (lower is sharper)",
            "cutoff_range": list(self.cutoff_range),
            **{k: v for k, v in self.info.items() if k not in ("source",)},
        }
        tensors = {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        return save_model_folder(path, config, tensors, overwrite=overwrite)

    @classmethod
    def load(cls, spec: str | os.PathLike[str], *, num_threads: int = 2) -> BlurScorer:
        import torch

        from focuskit.models import BlurCNN, BlurCNNConfig

        path, config, tensors = load_model_folder(spec)
        if config.get("kind") != KIND:
            raise ConfigError(f"{path}: a {config.get('kind')!r} model, not a blur-score CNN — "
                              f"give a folder saved by `focuskit blur train` or builtin:blur-cnn")
        try:
            net = BlurCNN(BlurCNNConfig.from_dict(config["architecture"]))
            net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: weights do not match config.json ({exc})") from None
        net.eval()
        net = net.to(memory_format=torch.channels_last)
        info = {k: v for k, v in config.items() if k not in ("kind", "architecture", "patch", "score", "cutoff_range")}
        info["source"] = str(spec)
        return cls(net, cutoff_range=tuple(config.get("cutoff_range", CUTOFF_RANGE)), info=info,
                   num_threads=num_threads)

    # ------------------------------------------------------------------------- checks
    def check_optics(self, optics: Optics | None = None, pixel_size_um: float | None = None) -> list[str]:
        """Notes (not errors) when the objective is outside what the CNN was trained on:
        the cutoff ``NA·p/λ`` should lie in ``cutoff_range``. The calibration stack sets
        the axial scale, so any objective works; outside the range the score is less
        sample-invariant."""
        if optics is None:
            return ["no optics given: the score is used as is (the calibration stack sets its scale)"]
        p = pixel_size_um if pixel_size_um is not None else optics.pixel_size_um
        c = optics.na * p / optics.wavelength_um
        lo, hi = self.cutoff_range
        if not lo <= c <= hi:
            return [f"NA·pixel/λ = {c:.3f} is outside the trained range [{lo:g}, {hi:g}]: "
                    "expect a less sample-invariant score (bin the image, or fine-tune with `focuskit blur train`)"]
        return []

    # ---------------------------------------------------------------------- inference
    def patches(self, image: np.ndarray, stride: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardized patches (ny·nx, 128, 128) and their row/column origins."""
        img = np.asarray(image)
        if img.ndim != 2:
            raise ConfigError(f"blur score needs one 2-D image, got shape {img.shape}; "
                              "pick a plane or convert RGB to grey")
        if not np.issubdtype(img.dtype, np.number) or np.iscomplexobj(img):
            raise ConfigError(f"blur score needs real-valued pixels, got dtype {img.dtype}")
        stride = PATCH if stride is None else int(stride)
        if stride < 1:
            raise ConfigError(f"stride must be ≥ 1 pixel, got {stride}")
        ys, xs = patch_origins(img.shape[0], stride), patch_origins(img.shape[1], stride)
        img = img.astype(np.float32, copy=False)
        if not np.isfinite(img).all():
            raise ConfigError("the image contains NaN or inf; replace them before scoring")
        view = np.lib.stride_tricks.sliding_window_view(img, (PATCH, PATCH))
        tiles = view[ys[:, None], xs[None, :]].reshape(-1, PATCH, PATCH)
        return standardize(tiles), ys, xs

    def score_patches(self, patches: np.ndarray, batch: int = 128) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))
        with torch_threads(self.num_threads), torch.inference_mode():
            out = [self.net(x[i:i + batch].unsqueeze(1).contiguous(memory_format=torch.channels_last))
                   for i in range(0, len(x), batch)]
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def score_map(self, image: np.ndarray, stride: int | None = None) -> np.ndarray:
        """Blur score per patch, shape (n_rows, n_cols); W in waves, lower = sharper."""
        tiles, ys, xs = self.patches(image, stride)
        return self.score_patches(tiles).reshape(len(ys), len(xs))

    def score(self, image: np.ndarray, stride: int | None = None,
              roi: tuple[int, int, int, int] | None = None) -> float:
        """Mean blur score over the region of interest ``(y0, y1, x0, x1)`` in pixels
        (default: the whole image; the ROI must hold at least one 128² patch)."""
        if roi is not None:
            y0, y1, x0, x1 = (int(v) for v in roi)
            if not (0 <= y0 < y1 and 0 <= x0 < x1):
                raise ConfigError(f"roi {roi} must be (y0, y1, x0, x1) with y0 < y1 and x0 < x1, in pixels")
            image = np.asarray(image)[y0:y1, x0:x1]
        return float(self.score_map(image, stride).mean())

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.score_map(image)

    def __repr__(self) -> str:
        return f"BlurScorer({self.source or 'untrained'}, {self.net.parameter_count():,} parameters)"
