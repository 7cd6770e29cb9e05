"""Optics: configs, presets, pupil, PSF and image formation (numpy only; no torch).

Conventions (OPTICS.md): lengths in µm; ``z`` is the focal plane relative to the
sample's in-focus plane; the defocus transfer function is
``exp(+i·2π·z·(sqrt((n/λ)² − f²) − n/λ))`` with NumPy's FFT convention.
"""

from focuskit.optics._config import (
    DPC,
    LED,
    OPTICS_TOLERANCE,
    Brightfield,
    Camera,
    Fluorescence,
    Illumination,
    LEDPattern,
    Objective,
    Optics,
    depth_of_field_um,
    describe_illumination,
    illumination_from_dict,
)
from focuskit.optics._imaging import (
    ProgressCallback,
    SourcePoint,
    coherent_stack,
    fluorescence_stack,
    image_stack,
    source_points,
)
from focuskit.optics._presets import PRESETS, Preset, get_preset, z_range
from focuskit.optics._pupil import (
    coherent_transfer,
    defocus_kz,
    frequency_grid,
    fwhm_um,
    incoherent_psf,
    pupil,
    vectorial_psf,
)

__all__ = [
    "DPC",
    "LED",
    "OPTICS_TOLERANCE",
    "PRESETS",
    "Brightfield",
    "Camera",
    "Fluorescence",
    "Illumination",
    "LEDPattern",
    "Objective",
    "Optics",
    "Preset",
    "ProgressCallback",
    "SourcePoint",
    "coherent_stack",
    "coherent_transfer",
    "defocus_kz",
    "depth_of_field_um",
    "describe_illumination",
    "fluorescence_stack",
    "frequency_grid",
    "fwhm_um",
    "get_preset",
    "illumination_from_dict",
    "image_stack",
    "incoherent_psf",
    "pupil",
    "source_points",
    "vectorial_psf",
    "z_range",
]
