"""Training patches for the DeepFocus blur score (Shajkofci & Liebling §2.2, ref. [10]).

The score is the defocus of the local PSF, read from one 128×128 patch: the defocus
wavefront at the pupil edge ``W = z·(n − √(n² − NA²))/λ`` (waves; ≈ z·NA²/(2nλ), the
Zernike defocus term written peak-to-edge). ``W`` is what the image shows whatever the
objective: a patch only sees the pupil through the cutoff ``c = NA·p/λ`` (cycles per
pixel of size ``p``), so the generator draws ``c`` at random and the same network
serves any objective whose ``c`` is in the trained range; the calibration stack gives
the axial scale of each one.

One field = one in-focus object (microscopy samples from the simulator, natural and
microscopy images from scikit-image, power-law random textures), imaged incoherently
through pupils of random defocus with small random astigmatism, coma and spherical
aberration, on a 2× finer grid binned to the camera pixel (as a camera integrates),
then exposed with Poisson and read noise on a random background. Each patch is
standardized (zero mean, unit SD), so the score cannot use brightness or contrast — only
the shape of the blur.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from focuskit._errors import ConfigError
from focuskit.measures import standardize
from focuskit.simulate import FAMILIES, get_family, make_sample, picture, stain_density

PATCH = 128
# Cutoff NA·p/λ (cycles per camera pixel) drawn for training: 10×/0.3 at 0.65 µm and
# 0.52 µm is 0.375; 40×/0.95 at 0.1625 µm, 0.58 µm is 0.27; 20×/0.75 at 0.325 µm is 0.5.
CUTOFF_RANGE = (0.2, 0.5)
MAX_WAVES = 12.0
# Largest geometric blur radius kept inside a patch margin: r = 2W/c pixels ≤ 64.
_MAX_BLUR_PX = 64.0
CONTENTS = ("fluorescent-tissue", "beads", "cells", "tissue", "texture", "noise")
# scikit-image images used for training; coins, cell, retina, hubble_deep_field, clock and
# page are kept out so the invariance analysis can use unseen content.
TRAIN_IMAGES = (
    "camera",
    "moon",
    "text",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
)
HELD_OUT_IMAGES = ("coins", "cell", "retina", "hubble_deep_field", "clock", "page")


def waves_per_um(na: float, wavelength_um: float, immersion_index: float = 1.0) -> float:
    """Edge defocus wavefront per µm of focus offset.

    ``dW/dz = (n − √(n² − NA²))/λ`` (waves of edge defocus per µm of focus offset).

    Parameters
    ----------
    na : float
        Numerical aperture of the objective (≤ ``immersion_index``).
    wavelength_um : float
        Wavelength (µm).
    immersion_index : float
        Refractive index ``n`` of the immersion medium (1.0: air).

    Returns
    -------
    rate : float
        ``dW/dz`` (waves/µm).

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10] (the defocus coefficient of the local PSF as blur score).
    """
    n = immersion_index
    return (n - math.sqrt(n * n - na * na)) / wavelength_um


def max_waves(cutoff: float) -> float:
    """Largest trained W at cutoff ``c``: ``min(12, 32·c)`` keeps the
    blur radius ``2W/c`` ≤ 64 px."""
    return min(MAX_WAVES, _MAX_BLUR_PX * cutoff / 2)


@dataclass
class BlurPatches:
    """Standardized patches and their defocus ``W`` (waves).

    Made by :func:`simulate_blur_patches` and :func:`blur_patches_from_stack`; the training
    and validation sets of :func:`fit_blur_cnn`.

    Attributes
    ----------
    images : ndarray
        (N, 128, 128) float16 patches, each zero mean / unit SD.
    waves : ndarray
        (N,) float32 edge defocus ``W`` of each patch (waves).
    cutoff : ndarray
        (N,) float32 cutoff ``NA·p/λ`` (cycles per camera pixel).
    field : ndarray
        (N,) int32, one id per imaged object (hold-outs split by it).
    content : ndarray
        (N,) int8 index into :func:`content_names` (−1: from a user stack).
    meta : dict
        Provenance (``source``, simulation ``config``).
    """

    images: np.ndarray  # (N, 128, 128) float16, each zero mean / unit SD
    waves: np.ndarray  # (N,) float32
    cutoff: np.ndarray  # (N,) float32, NA·p/λ
    field: np.ndarray  # (N,) int32, one id per imaged object
    content: np.ndarray  # (N,) int8, index into content_names() (−1: from a user stack)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.waves.shape[0])

    def subset(self, mask: np.ndarray) -> BlurPatches:
        """The patches selected by ``mask``.

        Parameters
        ----------
        mask : ndarray
            Boolean mask (N,) or integer indices.

        Returns
        -------
        patches : BlurPatches
            The selected patches, with a copy of ``meta``.
        """
        return BlurPatches(
            self.images[mask],
            self.waves[mask],
            self.cutoff[mask],
            self.field[mask],
            self.content[mask],
            dict(self.meta),
        )

    @staticmethod
    def concatenate(parts: Sequence[BlurPatches]) -> BlurPatches:
        """All patches of ``parts``, in order (``meta`` from the first part).

        Parameters
        ----------
        parts : sequence of BlurPatches
            At least one set.

        Returns
        -------
        patches : BlurPatches

        Raises
        ------
        ConfigError
            When ``parts`` is empty.
        """
        if not parts:
            raise ConfigError("no patches to concatenate")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        return BlurPatches(
            cat("images"),
            cat("waves"),
            cat("cutoff"),
            cat("field"),
            cat("content"),
            dict(parts[0].meta),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the patches as one ``.npz``, atomically (a temporary sibling, then rename).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write.
        """
        import json

        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.npz")
        np.savez(
            tmp,
            images=self.images,
            waves=self.waves,
            cutoff=self.cutoff,
            field=self.field,
            content=self.content,
            meta=np.array(json.dumps(self.meta)),
        )
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BlurPatches:
        """Read patches written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` written by :meth:`save`.

        Returns
        -------
        patches : BlurPatches

        Raises
        ------
        ConfigError
            When the file is missing, unreadable or not a blur-patch cache.
        """
        import json

        try:
            with np.load(path) as z:
                return cls(
                    z["images"],
                    z["waves"],
                    z["cutoff"],
                    z["field"],
                    z["content"],
                    json.loads(str(z["meta"])),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"{path}: not a blur-patch cache ({exc}) — delete it to regenerate"
            ) from None


# ----------------------------------------------------------------------------- content


def _texture(rng: np.random.Generator, n: int, names: Sequence[str]) -> np.ndarray:
    """A random crop of an image, zoomed 0.5–2×, flipped/rotated, sometimes inverted, tiled to n."""
    img = picture(str(rng.choice(list(names))))
    img = ndimage.zoom(img, float(np.exp(rng.uniform(math.log(0.5), math.log(2.0)))), order=1)
    img = np.rot90(img, int(rng.integers(4)))
    if rng.random() < 0.5:
        img = img[:, ::-1]
    pad = ((0, max(0, n - img.shape[0])), (0, max(0, n - img.shape[1])))
    img = np.pad(img, pad, mode="symmetric")  # small images: mirrored, no seams
    y0, x0 = int(rng.integers(img.shape[0] - n + 1)), int(rng.integers(img.shape[1] - n + 1))
    out = img[y0 : y0 + n, x0 : x0 + n]
    out = (out - out.min()) / max(float(np.ptp(out)), 1e-9)
    if rng.random() < 0.3:
        out = 1.0 - out
    return out ** rng.uniform(0.5, 2.0)


def _power_law_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random field with spectrum ∝ 1/f^β (β 1–3), made blobby or edgy by a random map."""
    fy = sfft.fftfreq(n)[:, None]
    fx = sfft.rfftfreq(n)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    beta = rng.uniform(1.0, 3.0)
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (beta / 2)
    spec[0, 0] = 0
    g = sfft.irfft2(spec, s=(n, n))
    g = (g - g.mean()) / g.std()
    kind = rng.integers(3)
    if kind == 0:
        return np.exp(rng.uniform(0.3, 1.5) * g)
    if kind == 1:
        return (g > rng.uniform(-1, 1)).astype(np.float64) + 0.05
    return np.abs(g)


def _content(
    kind: str, rng: np.random.Generator, n: int, pixel_um: float, images: Sequence[str]
) -> np.ndarray:
    """An in-focus, non-negative intensity object (n × n at ``pixel_um``)."""
    seed = int(rng.integers(2**31))
    if kind in ("fluorescent-tissue", "beads"):
        opts: dict[str, Any] = {}
        if kind == "beads":
            opts = {
                "density_per_100um2": float(np.exp(rng.uniform(math.log(0.3), math.log(20)))),
                "diameter_um": float(rng.uniform(0.1, 1.0)),
            }
        try:
            values = make_sample(kind, (n, n), pixel_um, seed=seed, **opts).values
        except TypeError:
            values = make_sample(kind, (n, n), pixel_um, seed=seed).values
        return np.asarray(values, dtype=np.float64)
    if kind == "cells":  # phase as stain density: cell bodies, nuclei, granules
        return stain_density((n, n), pixel_um, seed=seed)
    if kind == "tissue":  # stained tissue in transmitted light: bright background, dark stain
        t = make_sample("tissue", (n, n), pixel_um, seed=seed).values
        return np.abs(t).astype(np.float64) ** 2
    if kind == "texture":
        return _texture(rng, n, images)
    if kind == "noise":
        return _power_law_noise(rng, n)
    if kind in FAMILIES:
        return family_intensity(kind, n, pixel_um, seed)
    raise ConfigError(f"unknown content {kind!r}; use one of {', '.join(content_names())}")


def content_names() -> tuple[str, ...]:
    """Every content a blur-score training field may show: :data:`CONTENTS`, then the
    sample families (``focuskit samples``), in a fixed order (their index is recorded).

    Returns
    -------
    names : tuple of str
        Content names.
    """
    return CONTENTS + tuple(FAMILIES)


def family_intensity(name: str, n: int, pixel_um: float, seed: int) -> np.ndarray:
    """A sample family as an in-focus, non-negative intensity object for the blur score.

    Fluorescence families: the emitter map. Families that absorb: the transmitted
    intensity ``|t|²``. Pure phase families: the phase used as a stain density
    ``φ − min φ + 0.02`` (as the ``cells`` content), since a widefield image of a pure
    phase object in focus has no contrast.

    Parameters
    ----------
    name : str
        Family name.
    n : int
        Side of the object, in pixels.
    pixel_um : float
        Its pixel size, in µm.
    seed : int
        Seed of the scene.

    Returns
    -------
    obj : (n, n) ndarray of float64
        The object, ≥ 0.
    """
    fam = get_family(name)
    values = fam((n, n), pixel_um, seed).values
    if fam.kind == "fluorescence":
        return np.asarray(values, np.float64)
    if fam.pure_phase:
        phase = np.angle(values).astype(np.float64)
        return phase - float(phase.min()) + 0.02
    return np.abs(values).astype(np.float64) ** 2


# ------------------------------------------------------------------------------ optics


def _zernike_extra(rho: np.ndarray, theta: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Astigmatism (2), coma (2) and primary spherical, unnormalized, in waves."""
    a0, a45, cx, cy, sph = coeffs
    r2 = rho * rho
    return (
        a0 * r2 * np.cos(2 * theta)
        + a45 * r2 * np.sin(2 * theta)
        + (cx * np.cos(theta) + cy * np.sin(theta)) * (3 * r2 - 2) * rho
        + sph * (6 * r2 * r2 - 6 * r2 + 1)
    )


def defocus_otf(n: int, cutoff: float, waves: float, extra: np.ndarray | None = None) -> np.ndarray:
    """OTF of a defocused, slightly aberrated pupil on an n×n pixel grid.

    rfft2 of the normalized incoherent PSF on an n×n grid for a pupil of radius ``cutoff``
    (cycles/pixel) with phase ``2π·(W·ρ² + extra)``; ``OTF(0) = 1``.

    Parameters
    ----------
    n : int
        Grid side (pixels).
    cutoff : float
        Pupil radius ``NA·p/λ`` (cycles per pixel).
    waves : float
        Edge defocus ``W`` (waves).
    extra : ndarray, optional
        Five unnormalized Zernike coefficients (waves): astigmatism 0° and 45°, coma x and y,
        primary spherical.

    Returns
    -------
    otf : ndarray
        (n, n // 2 + 1) complex OTF (``rfft2`` layout), 1 at zero frequency.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10] (the defocus coefficient of the local PSF as blur score).
    """
    fy = sfft.fftfreq(n)[:, None]
    fx = sfft.fftfreq(n)[None, :]
    rho = np.hypot(fy, fx) / cutoff
    inside = rho <= 1.0
    phase = waves * rho * rho
    if extra is not None:
        phase = phase + _zernike_extra(rho, np.arctan2(fy, fx), extra)
    pupil = np.where(inside, np.exp(2j * np.pi * phase), 0)
    psf = np.abs(sfft.ifft2(pupil, workers=1)) ** 2
    otf = sfft.rfft2(psf, workers=1)
    return otf / otf[0, 0].real


def _bin2(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


@dataclass(frozen=True)
class BlurDataConfig:
    """What one call of :func:`simulate_blur_patches` draws.

    Each field is one in-focus object imaged under a random objective (cutoff and pixel
    size drawn per field) at ``waves_per_field`` defocus values, 4 patches of 128² each.

    Attributes
    ----------
    n_fields : int
        Objects (fields of view) to simulate, ≥ 1.
    waves_per_field : int
        Defocus values per field, ≥ 1 (drawn with more near focus).
    field_size : int
        Camera pixels per side, ≥ 256; the central 256² gives 4 patches of 128².
    cutoff_range : (float, float)
        Range of the cutoff ``NA·p/λ`` (cycles per camera pixel), within [0.05, 1].
    pixel_range_um : (float, float)
        Range of the camera pixel size setting the object's scale (µm).
    photons_range : (float, float)
        Range of mean photo-electrons per pixel, drawn log-uniformly.
    read_noise_e : float
        Camera read noise (e⁻ RMS).
    aberration_rms_waves : float
        SD of each extra Zernike coefficient (astigmatism, coma, spherical; waves).
    saturation_fraction : float
        Share of fields (0–1) imaged on a camera that saturates: the full well is set
        to 1/k of the in-focus peak (k drawn log-uniformly in 1.5–20), so the object's
        brightest parts clip at focus and less so out of focus, as sparse bright beads
        do on a real camera. The score must not read the flat clipped tops as blur.
    contents : tuple of str
        Object kinds, used in turn: :data:`CONTENTS` or sample families
        (``focuskit samples``; see :func:`family_intensity`).
    images : tuple of str
        scikit-image pictures for the ``texture`` content (default :data:`TRAIN_IMAGES`).
    seed : int
        Seed: the same config gives the same patches.

    Raises
    ------
    ConfigError
        On a count < 1, a field smaller than 256 pixels, a cutoff range outside [0.05, 1]
        or an unknown content.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10] (the defocus coefficient of the local PSF as blur score).
    """

    n_fields: int = 1000
    waves_per_field: int = 6
    field_size: int = 384  # camera pixels; the central 256² gives 4 patches of 128²
    cutoff_range: tuple[float, float] = CUTOFF_RANGE
    pixel_range_um: tuple[float, float] = (0.2, 0.8)
    photons_range: tuple[float, float] = (30.0, 3000.0)
    read_noise_e: float = 1.5
    aberration_rms_waves: float = 0.05
    saturation_fraction: float = 0.0
    contents: tuple[str, ...] = CONTENTS
    images: tuple[str, ...] = TRAIN_IMAGES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_fields < 1 or self.waves_per_field < 1:
            raise ConfigError("n_fields and waves_per_field must be ≥ 1")
        if self.field_size < 2 * PATCH:
            raise ConfigError(f"field_size must be ≥ {2 * PATCH} pixels, got {self.field_size}")
        lo, hi = self.cutoff_range
        if not 0.05 <= lo <= hi <= 1.0:
            raise ConfigError(
                f"cutoff_range must satisfy 0.05 ≤ lo ≤ hi ≤ 1, got {self.cutoff_range}"
            )
        if not 0.0 <= self.saturation_fraction <= 1.0:
            raise ConfigError(
                f"saturation_fraction must lie in [0, 1], got {self.saturation_fraction!r}"
            )
        bad = set(self.contents) - set(content_names())
        if bad:
            raise ConfigError(
                f"unknown contents {sorted(bad)}; use any of {', '.join(content_names())}"
            )


def _focus_peak(obj: np.ndarray, lo_crop: int) -> float:
    """The brightest camera pixel of the object in focus over the cropped patches."""
    binned = _bin2(np.maximum(obj, 0))
    return float(binned[lo_crop : lo_crop + 2 * PATCH, lo_crop : lo_crop + 2 * PATCH].max())


def _one_field(args: tuple[BlurDataConfig, int]) -> BlurPatches:
    config, index = args
    rng = np.random.default_rng([config.seed, index])
    kind = str(config.contents[index % len(config.contents)])
    cutoff = float(rng.uniform(*config.cutoff_range))
    pixel_um = float(rng.uniform(*config.pixel_range_um))
    n_cam = config.field_size
    n = 2 * n_cam  # render on half pixels, bin 2×2
    obj = _content(kind, rng, n, pixel_um / 2, config.images)
    obj_spec = sfft.rfft2(obj, workers=1)
    w_max = max_waves(cutoff)
    # Density ∝ W^(−1/2): more patches near focus, where a small change of W matters most.
    waves = w_max * rng.random(config.waves_per_field) ** 2
    lo_crop = (n_cam - 2 * PATCH) // 2
    # Drawn only when saturation is asked for: the default config keeps its former patches.
    saturates = config.saturation_fraction > 0 and rng.random() < config.saturation_fraction
    overexposure = float(np.exp(rng.uniform(np.log(1.5), np.log(20.0)))) if saturates else 1.0
    images, targets = [], []
    for w in waves:
        extra = rng.normal(scale=config.aberration_rms_waves, size=5)
        otf = defocus_otf(n, cutoff / 2, float(w), extra)
        img = _bin2(np.maximum(sfft.irfft2(obj_spec * otf, s=(n, n), workers=1), 0))
        img = img[lo_crop : lo_crop + 2 * PATCH, lo_crop : lo_crop + 2 * PATCH]
        photons = float(np.exp(rng.uniform(*np.log(config.photons_range))))
        background = rng.uniform(0.0, 0.5) * float(img.mean())
        img = img + background
        gain = photons / max(float(img.mean()), 1e-12)
        electrons = rng.poisson(img * gain)
        electrons = electrons + rng.normal(scale=config.read_noise_e, size=img.shape)
        if saturates:
            # Blur keeps the mean, so the in-focus peak is that of the object at this gain.
            full_well = gain * (float(_focus_peak(obj, lo_crop)) + background) / overexposure
            electrons = np.minimum(electrons, full_well)
        for ty in range(2):
            for tx in range(2):
                images.append(
                    electrons[ty * PATCH : (ty + 1) * PATCH, tx * PATCH : (tx + 1) * PATCH]
                )
                targets.append(w)
    k = len(targets)
    return BlurPatches(
        standardize(np.stack(images)).astype(np.float16),
        np.asarray(targets, np.float32),
        np.full(k, cutoff, np.float32),
        np.full(k, index, np.int32),
        np.full(k, content_names().index(kind), np.int8),
    )


def simulate_blur_patches(
    config: BlurDataConfig, *, workers: int = 1, progress: Callable[[int, int], None] | None = None
) -> BlurPatches:
    """Simulated training patches for the blur-score CNN.

    Patches of ``config.n_fields`` objects × ``waves_per_field`` defocus values × 4 tiles;
    reproducible per ``config.seed`` whatever ``workers`` is.

    Parameters
    ----------
    config : BlurDataConfig
        What to draw.
    workers : int
        Processes rendering fields (1: in this process).
    progress : callable, optional
        ``progress(done, total)`` after each field.

    Returns
    -------
    patches : BlurPatches
        ``n_fields · waves_per_field · 4`` standardized patches with their ``W`` (waves);
        ``meta`` holds ``source="simulated"`` and the config.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10] (the defocus coefficient of the local PSF as blur score).
    """
    jobs = [(config, i) for i in range(config.n_fields)]
    parts: list[BlurPatches] = []

    def collect(results: Iterator[BlurPatches]) -> None:
        for part in results:
            parts.append(part)
            if progress is not None:
                progress(len(parts), len(jobs))

    if workers <= 1:
        collect(map(_one_field, jobs))
    else:
        with ProcessPoolExecutor(workers) as pool:
            collect(pool.map(_one_field, jobs, chunksize=4))
    out = BlurPatches.concatenate(parts)
    out.meta = {
        "source": "simulated",
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.__dict__.items()},
    }
    return out


def blur_patches_from_stack(
    stack: np.ndarray,
    z_um: np.ndarray,
    focus_z_um: float,
    *,
    na: float,
    wavelength_um: float,
    pixel_size_um: float,
    immersion_index: float = 1.0,
    stride: int = PATCH,
    field_id: int = 0,
) -> BlurPatches:
    """Training patches of a measured focal stack with known focus.

    Patches of a measured focal stack with known focus: target ``W = |z − focus|·dW/dz``
    (fine-tuning on your own microscope).

    Parameters
    ----------
    stack : ndarray
        (Z, Y, X) focal stack, planes at least 128² pixels, finite.
    z_um : ndarray
        (Z,) stage z of each plane (µm).
    focus_z_um : float
        The in-focus z (µm).
    na : float
        Numerical aperture of the objective.
    wavelength_um : float
        Wavelength (µm).
    pixel_size_um : float
        Camera pixel size (µm); sets the recorded cutoff ``NA·p/λ``.
    immersion_index : float
        Refractive index of the immersion medium.
    stride : int
        Step between patch origins (pixels; default 128, no overlap).
    field_id : int
        Field id given to every patch (for the validation split).

    Returns
    -------
    patches : BlurPatches
        Standardized patches, ``content`` −1, ``meta["source"] = "stack"``.

    Raises
    ------
    ConfigError
        When the stack is not 3-D, its planes are smaller than 128², it holds NaN/inf, or
        there is not one z per plane.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2 and its ref. [10] (the defocus coefficient of the local PSF as blur score).
    """
    data = np.asarray(stack, dtype=np.float32)
    if data.ndim != 3 or min(data.shape[1:]) < PATCH:
        raise ConfigError(
            f"need a (Z, Y, X) stack with planes ≥ {PATCH}² pixels, got shape {data.shape}"
        )
    if not np.isfinite(data).all():
        raise ConfigError("the stack contains NaN or inf; replace them before training")
    z = np.asarray(z_um, dtype=np.float64)
    if z.shape != (data.shape[0],):
        raise ConfigError(f"need one z per plane: {data.shape[0]} planes, {z.size} z values")
    rate = waves_per_um(na, wavelength_um, immersion_index)
    ys = range(0, data.shape[1] - PATCH + 1, stride)
    xs = range(0, data.shape[2] - PATCH + 1, stride)
    tiles = np.stack([data[:, y : y + PATCH, x : x + PATCH] for y in ys for x in xs], axis=1)
    tiles = tiles.reshape(-1, PATCH, PATCH)
    waves = np.repeat(np.abs(z - focus_z_um) * rate, len(ys) * len(xs)).astype(np.float32)
    k = len(waves)
    cutoff = na * pixel_size_um / wavelength_um
    return BlurPatches(
        standardize(tiles).astype(np.float16),
        waves,
        np.full(k, cutoff, np.float32),
        np.full(k, field_id, np.int32),
        np.full(k, -1, np.int8),
        {"source": "stack"},
    )
