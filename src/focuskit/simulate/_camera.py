"""Camera noise model (OPTICS.md, "Camera")."""

from __future__ import annotations

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
    """
    if not (np.isfinite(photons) and photons > 0):
        raise ConfigError(f"photons (mean photo-electrons per pixel) must be > 0, got {photons}")
    intensity = np.asarray(intensity, dtype=np.float32)
    mean = float(intensity.mean(dtype=np.float64))
    if not mean > 0:
        raise ConfigError("cannot expose an image whose mean intensity is 0")
    rng = np.random.default_rng(seed)
    expected = intensity * np.float32(photons / mean)
    electrons = rng.poisson(expected).astype(np.float32)
    if camera.read_noise_e > 0:
        electrons += rng.normal(0.0, camera.read_noise_e, size=electrons.shape).astype(np.float32)
    adu = np.rint(electrons * np.float32(camera.gain_adu_per_e) + np.float32(camera.offset_adu))
    np.clip(adu, 0, camera.max_adu, out=adu)
    return adu.astype(np.uint8 if camera.bit_depth <= 8 else np.uint16)
