"""A trained Deep-R model as a tool: one defocused image → in-focus image and defocus map.

``Refocuser.load("builtin:deepr-40x-fluor" | folder)`` reads a model folder (config.json +
weights.safetensors holding ``generator.*`` and, when trained, ``dpm.*``). Any image size
is processed through overlapping tiles blended with a raised-cosine window, so there are no
seams; the image is standardized once with its own mean and SD (as each training pair was),
and the output is mapped back with them: float32 in the input's intensity scale.
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
from focuskit.train._loop import torch_threads
from focuskit.train._model_folder import load_model_folder, save_model_folder

KIND = "deepr"
MULTIPLE = 32  # 2**5: the U-Net's five poolings


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along one axis: every ``tile − overlap`` pixels, the last flush with the end."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def blend_ramp(tile: int, overlap: int) -> np.ndarray:
    """Raised-cosine weights along one tile side: 1 inside, ramping over ``overlap`` pixels to a
    small floor at the edge (so the image's own borders still count). The 2-D window is the
    outer product of two ramps."""
    ramp = np.ones(tile, dtype=np.float64)
    if overlap > 0:
        t = (np.arange(overlap) + 0.5) / overlap
        ramp[:overlap] = 0.5 - 0.5 * np.cos(np.pi * t)
        ramp[-overlap:] = ramp[:overlap][::-1]
    return np.maximum(ramp, 1e-3)


def _pad_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    pad = [(0, max(0, s - n)) for s, n in zip(shape, image.shape)]
    return np.pad(image, pad, mode="symmetric") if any(p[1] for p in pad) else image


def check_image(image: Any) -> np.ndarray:
    """One finite real 2-D image as float32, or a one-line ConfigError naming the problem and the fix."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise ConfigError(f"refocusing needs one 2-D image, got shape {img.shape}; pick a plane or convert RGB to grey")
    if not np.issubdtype(img.dtype, np.number) or np.iscomplexobj(img):
        raise ConfigError(f"refocusing needs real-valued pixels, got dtype {img.dtype}")
    if min(img.shape) < 8:
        raise ConfigError(f"the image is {img.shape[0]}×{img.shape[1]} pixels; refocusing needs at least 8×8")
    img = img.astype(np.float32, copy=False)
    if not np.isfinite(img).all():
        raise ConfigError("the image contains NaN or inf; replace them (e.g. with the background) before refocusing")
    return img


class Refocuser:
    """Deep-R (Luo et al.) inference: ``refocus(image)`` and ``defocus_map(image)``."""

    def __init__(self, generator: Any, dpm: Any | None = None, *, optics: Optics | None = None,
                 pixel_size_um: float | None = None, z_range_um: float = 5.0,
                 info: dict[str, Any] | None = None, num_threads: int = 2, dpm_signed: bool = False) -> None:
        self.generator = generator
        self.dpm = dpm
        self.dpm_signed = bool(dpm_signed)  # False: the map is |z| (a symmetric PSF hides the sign)
        self.optics = optics
        self.pixel_size_um = pixel_size_um if pixel_size_um is not None else (
            optics.pixel_size_um if optics is not None else None)
        self.z_range_um = float(z_range_um)
        self.info = dict(info or {})
        self.num_threads = num_threads
        self.source = str(self.info.pop("source", ""))

    # --------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        config = {
            "kind": KIND,
            "focuskit_version": __version__,
            "architecture": self.generator.config.to_dict(),
            "dpm": self.dpm is not None,
            "dpm_signed": self.dpm_signed,
            "optics": self.optics.to_dict() if self.optics is not None else None,
            "pixel_size_um": self.pixel_size_um,
            "z_range_um": self.z_range_um,
            "io": "each image standardized (zero mean, unit SD); output mapped back with the input's mean and SD",
            **self.info,
        }
        tensors = {f"generator.{k}": v.detach().cpu().numpy() for k, v in self.generator.state_dict().items()}
        if self.dpm is not None:
            tensors.update({f"dpm.{k}": v.detach().cpu().numpy() for k, v in self.dpm.state_dict().items()})
        return save_model_folder(path, config, tensors, overwrite=overwrite)

    @classmethod
    def load(cls, spec: str | os.PathLike[str], *, num_threads: int = 2) -> Refocuser:
        import torch

        from focuskit.models import DeepRConfig, DeepRGenerator, DPMDecoder

        path, config, tensors = load_model_folder(spec)
        if config.get("kind") != KIND:
            raise ConfigError(f"{path}: a {config.get('kind')!r} model, not a Deep-R refocusing model — "
                              "give a folder saved by `focuskit refocus train` or builtin:deepr-40x-fluor")
        try:
            gen = DeepRGenerator(DeepRConfig.from_dict(config["architecture"]))
            gen.load_state_dict({k[10:]: torch.from_numpy(v.copy()) for k, v in tensors.items()
                                 if k.startswith("generator.")})
            dpm = None
            if config.get("dpm"):
                dpm = DPMDecoder(gen.config.channels)
                dpm.load_state_dict({k[4:]: torch.from_numpy(v.copy()) for k, v in tensors.items()
                                     if k.startswith("dpm.")})
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: weights do not match config.json ({exc})") from None
        gen = gen.eval().to(memory_format=torch.channels_last)
        if dpm is not None:
            dpm = dpm.eval().to(memory_format=torch.channels_last)
        optics = Optics.from_dict(config["optics"]) if config.get("optics") else None
        skip = {"kind", "architecture", "dpm", "dpm_signed", "optics", "pixel_size_um", "z_range_um", "io"}
        info = {k: v for k, v in config.items() if k not in skip}
        info["source"] = str(spec)
        return cls(gen, dpm, optics=optics, pixel_size_um=config.get("pixel_size_um"),
                   z_range_um=float(config.get("z_range_um", 5.0)), info=info, num_threads=num_threads,
                   dpm_signed=bool(config.get("dpm_signed", False)))

    # ------------------------------------------------------------------------- checks
    def check_optics(self, pixel_size_um: float | None = None, optics: Optics | None = None, *,
                     force: bool = False) -> list[str]:
        """Refuse an image from another microscope (unless ``force``); return notes on what was assumed.

        A plain file with only a pixel size is accepted when that matches the model's."""
        notes: list[str] = []
        problems: list[str] = []
        model_px = self.pixel_size_um
        if pixel_size_um is None and optics is not None:
            pixel_size_um = optics.pixel_size_um
        if pixel_size_um is None:
            if model_px is None:
                return ["neither the image nor the model records a pixel size: nothing was checked"]
            raise ConfigError(f"the image has no pixel size — pass --pixel-size UM (the model expects {model_px:g} µm)")
        if model_px is not None and not math.isclose(pixel_size_um, model_px, rel_tol=0.02):
            problems.append(f"pixel size {pixel_size_um:g} µm ≠ the model's {model_px:g} µm")
        if self.optics is not None:
            m = self.optics
            if optics is None:
                notes.append(f"no optics metadata: assumed the model's ({m.objective.magnification:g}×/{m.na:g}, "
                             f"λ {m.wavelength_um:g} µm, {m.illumination.kind})")
            else:
                if not math.isclose(optics.na, m.na, rel_tol=0.02):
                    problems.append(f"NA {optics.na:g} ≠ the model's {m.na:g}")
                if not math.isclose(optics.wavelength_um, m.wavelength_um, rel_tol=0.05):
                    problems.append(f"λ {optics.wavelength_um:g} µm ≠ the model's {m.wavelength_um:g} µm")
                if optics.is_fluorescence != m.is_fluorescence:
                    problems.append(f"{optics.illumination.kind} illumination ≠ the model's {m.illumination.kind}")
        if problems:
            message = "image does not match the model: " + "; ".join(problems)
            if not force:
                raise ConfigError(message + " — use a model trained for this microscope "
                                  "(`focuskit refocus train`), or --force")
            notes.append("forced: " + message)
        return notes

    # ---------------------------------------------------------------------- inference
    def _run(self, image: Any, head: str, tile: int, overlap: int | None) -> np.ndarray:
        import torch

        img = check_image(image)
        if tile % MULTIPLE or tile < MULTIPLE:
            raise ConfigError(f"tile must be a multiple of {MULTIPLE} pixels, got {tile}")
        overlap = min(64, tile // 4) if overlap is None else int(overlap)
        if not 0 <= overlap <= tile // 2:
            raise ConfigError(f"overlap must be between 0 and tile/2 = {tile // 2} pixels, got {overlap}")
        if head == "dpm" and self.dpm is None:
            raise ConfigError("this model has no defocus-map decoder — train one with `focuskit refocus train --dpm`")
        h, w = img.shape
        mean = float(img.mean())
        sd = float(img.std())
        sd = sd if sd > 1e-6 * max(abs(mean), 1.0) else 1.0
        # Tiles no larger than the (padded) image; sides padded to the U-Net's multiple.
        th = min(tile, math.ceil(h / MULTIPLE) * MULTIPLE)
        tw = min(tile, math.ceil(w / MULTIPLE) * MULTIPLE)
        work = _pad_to((img - mean) / sd, (max(h, th), max(w, tw)))
        H, W = work.shape
        ov_y, ov_x = min(overlap, th // 2 - 1) if H > th else 0, min(overlap, tw // 2 - 1) if W > tw else 0
        win = np.outer(blend_ramp(th, ov_y), blend_ramp(tw, ov_x))
        total = np.zeros((H, W), dtype=np.float64)
        weight = np.zeros((H, W), dtype=np.float64)
        with torch_threads(self.num_threads), torch.inference_mode():
            for y0 in tile_starts(H, th, ov_y):
                for x0 in tile_starts(W, tw, ov_x):
                    x = torch.from_numpy(np.ascontiguousarray(work[y0:y0 + th, x0:x0 + tw], dtype=np.float32))
                    x = x[None, None].contiguous(memory_format=torch.channels_last)
                    out = self.generator(x) if head == "generator" else self.dpm(self.generator.encoder(x))
                    total[y0:y0 + th, x0:x0 + tw] += out[0, 0].numpy() * win
                    weight[y0:y0 + th, x0:x0 + tw] += win
        result = (total / weight)[:h, :w]
        if head == "generator":
            result = result * sd + mean
        return result.astype(np.float32)

    def refocus(self, image: Any, *, tile: int = 512, overlap: int | None = None) -> np.ndarray:
        """The in-focus estimate of one defocused image, float32, same shape and intensity scale.
        Tiles of ``tile``² overlap by ``overlap`` pixels (default min(64, tile/4)) and are blended."""
        return self._run(image, "generator", tile, overlap)

    def defocus_map(self, image: Any, *, tile: int = 512, overlap: int | None = None) -> np.ndarray:
        """Per-pixel defocus (µm) from the DPM decoder (Fig. 7a), float32: signed as OPTICS.md
        when ``dpm_signed``, else its magnitude |z| (an aberration-free PSF is the same at ±z)."""
        return self._run(image, "dpm", tile, overlap)

    def parameter_counts(self) -> dict[str, int]:
        counts = {"generator": self.generator.parameter_count()}
        if self.dpm is not None:
            counts["dpm_decoder"] = self.dpm.parameter_count()
        return counts

    def __repr__(self) -> str:
        return f"Refocuser({self.source or 'untrained'}, {self.generator.parameter_count():,} parameters)"


def fitted_tilt(defocus_map_um: np.ndarray, pixel_size_um: float, *, unsigned: bool = False
                ) -> tuple[float, float, float]:
    """Least-squares plane ``z = a·y + b·x + c`` through a defocus map; returns
    (tilt in degrees = atan(|∇z|), azimuth in degrees = atan2(a, b), RMS residual in µm).

    ``unsigned``: the map holds |z| (a V where a tilted sample crosses focus), so
    ``|a·y + b·x + c|`` is fitted instead, from several starts; the azimuth is then known
    modulo 180° and is reported in [0°, 180°)."""
    dz = np.asarray(defocus_map_um, dtype=np.float64)
    yy, xx = np.mgrid[0:dz.shape[0], 0:dz.shape[1]] * pixel_size_um
    a = np.column_stack([yy.ravel(), xx.ravel(), np.ones(dz.size)])
    coef, *_ = np.linalg.lstsq(a, dz.ravel(), rcond=None)
    if unsigned:
        from scipy.optimize import least_squares

        step = max(1, int(np.sqrt(dz.size / 20000)))  # ~20 k pixels are plenty for three numbers
        sub = a.reshape(*dz.shape, 3)[::step, ::step].reshape(-1, 3)
        target = dz[::step, ::step].ravel()
        span = float(np.ptp(sub[:, 0]) + np.ptp(sub[:, 1])) or 1.0
        slope = max(float(np.ptp(target)) / span, 1e-6)
        starts = [coef, coef * [2, 2, 1], coef * [1, 1, -1]]
        for phi in np.radians(np.arange(0, 180, 30)):  # a V along each direction, crossing the centre
            g = np.array([np.sin(phi), np.cos(phi)]) * 2 * slope
            starts.append(np.array([g[0], g[1], -g @ sub[:, :2].mean(axis=0)]))
        fits = [least_squares(lambda c: np.abs(sub @ c) - target, c0) for c0 in starts]
        coef = min(fits, key=lambda f: f.cost).x
        resid = dz.ravel() - np.abs(a @ coef)
        azimuth = math.degrees(math.atan2(coef[0], coef[1])) % 180.0
        return math.degrees(math.atan(math.hypot(coef[0], coef[1]))), azimuth, float(np.sqrt(np.mean(resid**2)))
    resid = dz.ravel() - a @ coef
    slope = math.hypot(coef[0], coef[1])
    return math.degrees(math.atan(slope)), math.degrees(math.atan2(coef[0], coef[1])), float(np.sqrt(np.mean(resid**2)))
