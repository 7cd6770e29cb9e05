"""Camera noise model (OPTICS.md, "Camera")."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Camera


def apply_camera(
    intensity: np.ndarray,
    camera: Camera,
    photons: float,
    *,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Turn a noise-free intensity (stack or image) into camera counts.

    ``e⁻ = Poisson(I · photons / mean(I)) + Normal(0, read_noise)``;
    ``ADU = round(gain · e⁻ + offset)`` clipped to ``[0, 2^bits − 1]``; uint8 for ≤ 8 bits,
    uint16 above. The mean is taken over the whole array, so the intensity changes
    between planes of a stack (light lost outside the pupil, say) are kept.

    Parameters
    ----------
    intensity : ndarray
        Noise-free intensity, an image (Y, X) or a stack (Z, Y, X).
    camera : Camera
        Bit depth, gain (ADU per e⁻), read noise (e⁻ rms) and offset (ADU).
    photons : float
        Mean photo-electrons per pixel over the whole array, > 0.
    seed : int or numpy.random.Generator, optional
        Seed or generator of the noise; each plane draws from its own child generator, so
        the result does not depend on the number of threads.

    Returns
    -------
    counts : ndarray of uint8 or uint16
        Camera counts (ADU), the shape of ``intensity``.

    Raises
    ------
    ConfigError
        If ``photons`` is not a finite number > 0 or the mean intensity is 0.
    """
    if not (np.isfinite(photons) and photons > 0):
        raise ConfigError(f"photons (mean photo-electrons per pixel) must be > 0, got {photons}")
    intensity = np.asarray(intensity, dtype=np.float32)
    mean = float(intensity.mean(dtype=np.float64))
    if not mean > 0:
        raise ConfigError("cannot expose an image whose mean intensity is 0")
    scale = np.float32(photons / mean)
    out = np.empty(intensity.shape, dtype=np.uint8 if camera.bit_depth <= 8 else np.uint16)
    # Plane by plane (Poisson draws are int64: a whole 2048² × 61 stack at once would
    # need GB of temporaries), each plane with its own child generator so the result
    # is the same whatever the number of threads; numpy's samplers release the GIL.
    planes = intensity.reshape(-1, *intensity.shape[-2:]) if intensity.ndim > 1 else intensity[None]
    target = out.reshape(planes.shape)
    root = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    children = root.spawn(len(planes))

    def expose(i: int) -> None:
        rng = children[i]
        electrons = rng.poisson(planes[i] * scale).astype(np.float32)
        if camera.read_noise_e > 0:
            electrons += rng.standard_normal(planes[i].shape, dtype=np.float32) * np.float32(
                camera.read_noise_e
            )
        adu = np.rint(electrons * np.float32(camera.gain_adu_per_e) + np.float32(camera.offset_adu))
        target[i] = np.clip(adu, 0, camera.max_adu)

    workers = min(len(planes), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(expose, range(len(planes))))
    else:
        expose(0)
    return out


def expose(
    intensity: np.ndarray,
    camera: Camera,
    photons: float,
    *,
    unscattered: float | None = None,
    headroom: float | None = None,
    seed: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, float]:
    """Camera counts of a noise-free intensity at a chosen exposure (:func:`apply_camera`).

    Parameters
    ----------
    intensity : array
        Noise-free intensity, image or stack.
    camera : Camera
        The camera (bit depth, gain, read noise, offset).
    photons : float
        Mean photo-electrons per pixel; with ``unscattered``, the photo-electrons per pixel
        that an intensity of ``unscattered`` collects (a fixed exposure: a dim darkfield
        image stays dim, a pattern of n LEDs collects n× the light).
    unscattered : float, optional
        The intensity that ``photons`` refers to (1 for images in units of one LED's
        unscattered light).
    headroom : float, optional
        Lower the exposure so that the brightest pixel collects at most ``headroom`` × the
        full well ``(max_adu − offset)/gain`` (sparse bright beads: the mean is mostly
        background). Negative intensities (spline ringing) are clipped to 0 first.
    seed : int or Generator, optional
        Seed or generator of the noise, as in :func:`apply_camera`.

    Returns
    -------
    counts : array
        The camera's counts (uint8 / uint16), as :func:`apply_camera`.
    photons : float
        The mean photo-electrons per pixel used.

    Raises
    ------
    ConfigError
        If the resulting exposure is not > 0 (see :func:`apply_camera`).
    """
    level = float(photons)
    if headroom is not None:
        intensity = np.maximum(intensity, 0)
        mean = float(intensity.mean(dtype=np.float64))
        full_well = headroom * (camera.max_adu - camera.offset_adu) / camera.gain_adu_per_e
        level = min(level, full_well * mean / max(float(intensity.max()), 1e-30))
    if unscattered is not None:
        level = level * float(np.mean(intensity, dtype=np.float64)) / unscattered
    return apply_camera(intensity, camera, level, seed=seed), level
