"""A trained Deep-R model as a tool: one defocused image → in-focus image and defocus map.

``Refocuser.load("builtin:deepr-40x-fluor" | folder)`` reads a model folder (config.json +
weights.safetensors holding ``generator.*`` and, when trained, ``dpm.*``). Any image size
is processed through overlapping tiles blended with a raised-cosine window, so there are no
seams; the image is standardized once with its own mean and SD (as each training pair was),
and the output is mapped back with them: float32 in the input's intensity scale.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.measures import standardize
from focuskit.nn import (
    OPTICS_SECTION,
    Flag,
    Nullable,
    Number,
    Numbers,
    Section,
    Text,
    TrainedModel,
    blend_ramp,
    build_entry,
    tile_starts,
    torch_threads,
)
from focuskit.optics import Optics
from focuskit.refocus._config import LEVELS

KIND = "deepr"
_POSITIVE = Number(lo=0, lo_open=True)
# What a Deep-R model folder's config.json holds (checked before anything is built).
SCHEMA = Section(
    required={
        "architecture": Section(
            required={
                "channels": Numbers(item=Number(lo=1, hi=4096, whole=True), length=LEVELS + 1)
            },
            optional={"global_residual": Flag()},
        )
    },
    optional={
        "dpm": Flag(),
        "dpm_signed": Flag(),
        "optics": Nullable(OPTICS_SECTION),
        "pixel_size_um": Nullable(_POSITIVE),
        "z_range_um": _POSITIVE,
        "io": Text(),
    },
)


def _pad_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    pad = [(0, max(0, s - n)) for s, n in zip(shape, image.shape, strict=True)]
    return np.pad(image, pad, mode="symmetric") if any(p[1] for p in pad) else image


def check_image(image: Any) -> np.ndarray:
    """One finite real 2-D image as float32, or a one-line ConfigError naming the problem.

    The error message names the problem and the fix.

    Parameters
    ----------
    image : array_like
        A 2-D real image, at least 8×8 pixels, finite.

    Returns
    -------
    image : ndarray
        The image as float32 (not copied when it already is).

    Raises
    ------
    ConfigError
        When the image is not 2-D, not real, smaller than 8×8 or holds NaN/inf.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ConfigError(
            f"refocusing needs one 2-D image, got shape {img.shape}; "
            "pick a plane or convert RGB to grey"
        )
    if not np.issubdtype(img.dtype, np.number) or np.iscomplexobj(img):
        raise ConfigError(f"refocusing needs real-valued pixels, got dtype {img.dtype}")
    if min(img.shape) < 8:
        raise ConfigError(
            f"the image is {img.shape[0]}×{img.shape[1]} pixels; refocusing needs at least 8×8"
        )
    img = img.astype(np.float32, copy=False)
    if not np.isfinite(img).all():
        raise ConfigError(
            "the image contains NaN or inf; replace them "
            "(e.g. with the background) before refocusing"
        )
    return img


class Refocuser(TrainedModel):
    """Deep-R inference (Luo et al.): ``refocus(image)`` and ``defocus_map(image)``.

    Any image size is processed through overlapping tiles blended with a raised-cosine
    window; the image is standardized with its own mean and SD and the output mapped back.

    Parameters
    ----------
    generator : DeepRGenerator
        The trained U-Net generator.
    dpm : DPMDecoder, optional
        The defocus-map decoder (Fig. 7a) on the generator's encoder.
    optics : Optics, optional
        The microscope the model was trained for.
    pixel_size_um : float, optional
        Its pixel size (µm; default: the optics').
    z_range_um : float
        The defocus range it was trained on (±µm).
    metadata : dict, optional
        How it was trained (saved in config.json).
    num_threads : int or None
        torch threads for inference (None: leave torch's setting as it is).
    dpm_signed : bool
        The defocus map is signed z (else |z|: an aberration-free PSF is the same at ±z).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation", Fig. 2 and Fig. 7a.
    """

    kind = KIND
    title = "Deep-R refocusing model"
    cli = "refocus"
    schema = SCHEMA

    def __init__(
        self,
        generator: Any,
        dpm: Any | None = None,
        *,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        z_range_um: float = 5.0,
        metadata: dict[str, Any] | None = None,
        num_threads: int | None = 2,
        dpm_signed: bool = False,
    ) -> None:
        self.generator = generator
        self.dpm = dpm
        self.dpm_signed = bool(dpm_signed)  # False: the map is |z| (a symmetric PSF hides the sign)
        self.optics = optics
        self._pixel_size_um = (
            pixel_size_um
            if pixel_size_um is not None
            else (optics.pixel_size_um if optics is not None else None)
        )
        self.z_range_um = float(z_range_um)
        self.metadata = dict(metadata or {})
        self.num_threads = num_threads
        self.source = ""

    @property
    def pixel_size_um(self) -> float | None:
        """Pixel size the model was trained for (µm), or None when unknown.

        Returns
        -------
        float or None
            Pixel size (µm).
        """
        return self._pixel_size_um

    @property
    def size_multiple(self) -> int:
        """Tile sides must be multiples of this (the U-Net's 2 ** poolings).

        Returns
        -------
        int
            The multiple (pixels; 32 for the 5-level U-Net).
        """
        return int(self.generator.config.size_multiple)

    # --------------------------------------------------------------------------- files
    def networks(self) -> dict[str, Any]:
        return {"generator": self.generator, **({"dpm": self.dpm} if self.dpm is not None else {})}

    def config(self) -> dict[str, Any]:
        return {
            "architecture": self.generator.config.to_dict(),
            "dpm": self.dpm is not None,
            "dpm_signed": self.dpm_signed,
            "optics": self.optics.to_dict() if self.optics is not None else None,
            "pixel_size_um": self.pixel_size_um,
            "z_range_um": self.z_range_um,
            "io": (
                "each image standardized (zero mean, unit SD); "
                "output mapped back with the input's mean and SD"
            ),
        }

    @classmethod
    def from_folder(
        cls,
        path: Path,
        config: dict[str, Any],
        tensors: dict[str, dict[str, np.ndarray]],
        *,
        num_threads: int = 2,
    ) -> Refocuser:
        import torch

        from focuskit.refocus._network import DeepRConfig, DeepRGenerator, DPMDecoder

        arch = build_entry(config, "architecture", DeepRConfig.from_dict)
        optics = build_entry(config, "optics", Optics.from_dict) if config.get("optics") else None
        gen = cls.load_network(lambda: DeepRGenerator(arch), tensors, "generator", path)
        gen = gen.eval().to(memory_format=torch.channels_last)
        dpm = None
        if config.get("dpm"):
            dpm = cls.load_network(lambda: DPMDecoder(arch.channels), tensors, "dpm", path)
            dpm = dpm.eval().to(memory_format=torch.channels_last)
        skip = {
            "kind",
            "focuskit_version",
            "architecture",
            "dpm",
            "dpm_signed",
            "optics",
            "pixel_size_um",
            "z_range_um",
            "io",
        }
        return cls(
            gen,
            dpm,
            optics=optics,
            pixel_size_um=config.get("pixel_size_um"),
            z_range_um=float(config.get("z_range_um", 5.0)),
            num_threads=num_threads,
            metadata={k: v for k, v in config.items() if k not in skip},
            dpm_signed=bool(config.get("dpm_signed", False)),
        )

    # ---------------------------------------------------------------------- inference
    def tile_geometry(
        self, shape: tuple[int, int], tile: int, overlap: int | None, head: str = "generator"
    ) -> tuple[int, int, int, int]:
        """Tile sides and blending overlaps for an image of ``shape``: ``(th, tw, ov_y, ov_x)``.

        The same for the whole image and for any block of it, so that a chunk-wise run
        (:func:`focuskit.refocus.refocus_lazy`) tiles a slide exactly as :meth:`refocus` would.

        Parameters
        ----------
        shape : tuple of int
            The whole image's (Y, X).
        tile : int
            Tile side asked for (pixels), a multiple of :attr:`size_multiple`.
        overlap : int or None
            Overlap asked for (pixels; None: min(64, tile/4)).
        head : {'generator', 'dpm'}
            The output wanted (the DPM needs the decoder).

        Returns
        -------
        geometry : tuple of int
            Tile height and width, and the overlaps along y and x.

        Raises
        ------
        ConfigError
            On an invalid tile or overlap, or a DPM asked of a model without one.
        """
        multiple = self.size_multiple
        if tile % multiple or tile < multiple:
            raise ConfigError(f"tile must be a multiple of {multiple} pixels, got {tile}")
        overlap = min(64, tile // 4) if overlap is None else int(overlap)
        if not 0 <= overlap <= tile // 2:
            raise ConfigError(
                f"overlap must be between 0 and tile/2 = {tile // 2} pixels, got {overlap}"
            )
        if head == "dpm" and self.dpm is None:
            raise ConfigError(
                "this model has no defocus-map decoder — train one with "
                "`focuskit refocus train --dpm`"
            )
        h, w = shape
        # Tiles no larger than the (padded) image; sides padded to the U-Net's multiple.
        th = min(tile, math.ceil(h / multiple) * multiple)
        tw = min(tile, math.ceil(w / multiple) * multiple)
        H, W = max(h, th), max(w, tw)
        ov_y = min(overlap, th // 2 - 1) if th < H else 0
        ov_x = min(overlap, tw // 2 - 1) if tw < W else 0
        return th, tw, ov_y, ov_x

    def blend_tiles(
        self,
        work: np.ndarray,
        head: str,
        geometry: tuple[int, int, int, int],
        image_shape: tuple[int, int],
        origin: tuple[int, int] = (0, 0),
        region: tuple[tuple[int, int], tuple[int, int]] | None = None,
    ) -> np.ndarray:
        """The blended network output over ``region`` of a standardized image.

        Runs every tile of the whole image's grid (``tile_starts`` over ``image_shape``) that
        meets ``region``, in the grid's order, and blends them with the raised-cosine window:
        a block of a slide given with a margin of one tile gets the very sums the whole image
        would (no seams, no dependence on how the slide is cut into blocks).

        Parameters
        ----------
        work : (y, x) ndarray
            Standardized pixels (float32) of a window of the image, holding every tile that
            meets ``region``.
        head : {'generator', 'dpm'}
            The refocused image or the defocus map.
        geometry : tuple of int
            ``(th, tw, ov_y, ov_x)`` from :meth:`tile_geometry`.
        image_shape : tuple of int
            The whole (padded) image's (Y, X), which the tile grid covers.
        origin : tuple of int, optional
            Where ``work`` starts in the whole image (default (0, 0)).
        region : tuple of (int, int), optional
            ``((y0, y1), (x0, x1))`` wanted, in whole-image pixels (default: all of
            ``work``).

        Returns
        -------
        blended : ndarray
            float64 network output over ``region`` (standardized units for the generator).
        """
        import torch

        th, tw, ov_y, ov_x = geometry
        H, W = image_shape
        oy, ox = origin
        if region is None:
            region = ((oy, oy + work.shape[0]), (ox, ox + work.shape[1]))
        (ry0, ry1), (rx0, rx1) = region
        win = np.outer(blend_ramp(th, ov_y), blend_ramp(tw, ov_x))
        total = np.zeros((ry1 - ry0, rx1 - rx0), dtype=np.float64)
        weight = np.zeros_like(total)
        ys = [y for y in tile_starts(H, th, ov_y) if y < ry1 and y + th > ry0]
        xs = [x for x in tile_starts(W, tw, ov_x) if x < rx1 and x + tw > rx0]
        # num_threads None: leave torch's (process-wide) count alone — worker threads that
        # each set and restore it would undo one another's setting mid-run.
        threads = nullcontext() if self.num_threads is None else torch_threads(self.num_threads)
        with threads, torch.inference_mode():
            for y0 in ys:
                for x0 in xs:
                    piece = work[y0 - oy : y0 - oy + th, x0 - ox : x0 - ox + tw]
                    if piece.shape != (th, tw):
                        raise ConfigError(  # a caller's margin too small: a bug, said plainly
                            f"tile at ({y0}, {x0}) is not inside the block given at {origin}"
                        )
                    x = torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32))
                    x = x[None, None].contiguous(memory_format=torch.channels_last)
                    out = (
                        self.generator(x)
                        if head == "generator"
                        else self.dpm(self.generator.encoder(x))
                    )
                    # The part of this tile inside the region.
                    a0, a1 = max(y0, ry0), min(y0 + th, ry1)
                    b0, b1 = max(x0, rx0), min(x0 + tw, rx1)
                    w = win[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0]
                    o = out[0, 0].numpy()[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0]
                    total[a0 - ry0 : a1 - ry0, b0 - rx0 : b1 - rx0] += o * w
                    weight[a0 - ry0 : a1 - ry0, b0 - rx0 : b1 - rx0] += w
        return total / weight

    def _run(self, image: Any, head: str, tile: int, overlap: int | None) -> np.ndarray:
        img = check_image(image)
        geometry = self.tile_geometry(img.shape, tile, overlap, head)
        if float(np.ptp(img)) == 0.0:
            raise ConfigError(
                f"the image is constant ({float(img.flat[0]):g} everywhere): there is nothing "
                "to refocus — check the file or the channel"
            )
        h, w = img.shape
        # Standardized once with the image's own mean and SD, as each training pair was.
        standardized, mean, sd = standardize(img, axes=None, return_stats=True)
        th, tw = geometry[:2]
        work = _pad_to(standardized, (max(h, th), max(w, tw)))
        result = self.blend_tiles(work, head, geometry, work.shape)[:h, :w]
        if head == "generator":
            # Back to the input's scale, and physical: never below zero (or below the
            # input's own minimum, for a background-subtracted input that goes negative).
            result = np.maximum(result * sd + mean, min(0.0, float(img.min())))
        return result.astype(np.float32)

    def refocus(self, image: Any, *, tile: int = 512, overlap: int | None = None) -> np.ndarray:
        """The in-focus estimate of one defocused image, float32, same shape and intensity scale.

        Tiles of ``tile``² overlap by ``overlap`` pixels (default min(64, tile/4)) and are
        blended.

        Parameters
        ----------
        image : array_like
            One finite real 2-D image, at least 8×8 pixels.
        tile : int
            Tile side (pixels), a multiple of :attr:`size_multiple`.
        overlap : int, optional
            Overlap of neighbouring tiles (pixels, 0 … tile/2).

        Returns
        -------
        refocused : ndarray
            float32, the shape and intensity scale of ``image``; never below
            ``min(0, image.min())`` (fluorescence is non-negative).

        Raises
        ------
        ConfigError
            On an invalid image, tile or overlap.

        References
        ----------
        .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
               microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
               Fig. 2 and Fig. 5.
        """
        return self._run(image, "generator", tile, overlap)

    def defocus_map(self, image: Any, *, tile: int = 512, overlap: int | None = None) -> np.ndarray:
        """Per-pixel defocus (µm) from the DPM decoder (Fig. 7a), float32.

        Signed as OPTICS.md when ``dpm_signed``, else its magnitude |z| (an aberration-free PSF
        is the same at ±z).

        Parameters
        ----------
        image : array_like
            One finite real 2-D image, at least 8×8 pixels.
        tile : int
            Tile side (pixels), a multiple of :attr:`size_multiple`.
        overlap : int, optional
            Overlap of neighbouring tiles (pixels, 0 … tile/2; default min(64, tile/4)).

        Returns
        -------
        defocus : ndarray
            float32 defocus per pixel (µm), the shape of ``image``.

        Raises
        ------
        ConfigError
            When the model has no DPM decoder, or on an invalid image, tile or overlap.

        References
        ----------
        .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
               microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
               Fig. 7.
        """
        return self._run(image, "dpm", tile, overlap)

    def predict(
        self,
        image: Any,
        *,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        force: bool = False,
        tile: int = 512,
        overlap: int | None = None,
    ) -> np.ndarray:
        """The refocused image (:meth:`refocus`) after checking the image's optics.

        See :meth:`check_optics` — every model's ``predict``.

        Parameters
        ----------
        image : array_like
            One finite real 2-D image.
        optics : Optics, optional
            The microscope that took it, checked against the model's.
        pixel_size_um : float, optional
            Its pixel size (µm).
        force : bool
            Run even when the optics do not match the model's.
        tile : int
            Tile side (pixels), a multiple of :attr:`size_multiple`.
        overlap : int, optional
            Overlap of neighbouring tiles (pixels).

        Returns
        -------
        refocused : ndarray
            float32, the shape and intensity scale of ``image``; never below
            ``min(0, image.min())`` (fluorescence is non-negative).

        Raises
        ------
        ConfigError
            When the optics do not match (without ``force``) or the image is invalid.
        """
        self.check_optics(optics, pixel_size_um, force=force)
        return self.refocus(image, tile=tile, overlap=overlap)

    def parameter_counts(self) -> dict[str, int]:
        counts = super().parameter_counts()
        if "dpm" in counts:  # named as `refocus info` has always named it
            counts["dpm_decoder"] = counts.pop("dpm")
        return counts
