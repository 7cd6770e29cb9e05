"""Optics: configs, presets, pupil, PSF and image formation (numpy only; no torch).

Conventions (OPTICS.md): lengths in µm; ``z`` is the focal plane relative to the
sample's in-focus plane; the defocus transfer function is
``exp(+i·2π·z·(sqrt((n/λ)² − f²) − n/λ))`` with NumPy's FFT convention.
"""

from focuskit.optics._config import (
    DPC,
    LED,
    Brightfield,
    Camera,
    Fluorescence,
    Illumination,
    LEDPattern,
    Objective,
    Optics,
    depth_of_field_um,
    illumination_from_dict,
)
from focuskit.optics._presets import PRESETS, Preset, get_preset, z_range

__all__ = [
    "DPC",
    "LED",
    "PRESETS",
    "Brightfield",
    "Camera",
    "Fluorescence",
    "Illumination",
    "LEDPattern",
    "Objective",
    "Optics",
    "Preset",
    "depth_of_field_um",
    "get_preset",
    "illumination_from_dict",
    "z_range",
]
