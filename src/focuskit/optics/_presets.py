"""The named reference configurations of OPTICS.md, so a model, a simulated stack and a
benchmark all mean the same microscope. Values come from the papers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics._config import (
    DPC,
    LED,
    Brightfield,
    Camera,
    Fluorescence,
    Illumination,
    Objective,
    Optics,
)


@dataclass(frozen=True)
class Preset:
    """A named microscope plus the stack geometry its paper uses.

    Attributes
    ----------
    name : str
        Preset name, e.g. ``"fcfnn-20x-led"``.
    optics : Optics
        The microscope.
    z_min_um, z_max_um : float
        Ends of the z range, in µm, both included.
    z_step_um : float
        z step, in µm.
    size : int
        Image side, in pixels.
    default_sample : str
        Name of the sample kind simulated by default.
    description : str
        One-line description.
    reference : str
        The paper (and section) the values come from.
    ground_truth_illumination : Illumination or None, optional
        Illumination of the companion stack that gives ground-truth focus (Pinkard Fig. 1a).
    extras : dict, optional
        Further paper-specific settings (tile size, training range in µm, …).
    """

    name: str
    optics: Optics
    z_min_um: float
    z_max_um: float
    z_step_um: float
    size: int
    default_sample: str
    description: str
    reference: str
    # Illumination of the companion stack that gives ground-truth focus (Pinkard Fig. 1a).
    ground_truth_illumination: Illumination | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def z_positions(self) -> np.ndarray:
        """The preset's z positions (µm), endpoints included.

        Returns
        -------
        z : ndarray
            ``z_range(z_min_um, z_max_um, z_step_um)``, in µm.
        """
        return z_range(self.z_min_um, self.z_max_um, self.z_step_um)


def z_range(z_min_um: float, z_max_um: float, z_step_um: float) -> np.ndarray:
    """Evenly spaced z positions from ``z_min`` to ``z_max`` inclusive, rounded to 1 nm.

    Parameters
    ----------
    z_min_um : float
        First position, in µm.
    z_max_um : float
        Last position, in µm (included when it lies on the grid).
    z_step_um : float
        Step, in µm, > 0.

    Returns
    -------
    z : ndarray of float64
        The positions, in µm.

    Raises
    ------
    ConfigError
        If the step is not > 0 or ``z_max_um < z_min_um``.
    """
    if not z_step_um > 0:
        raise ConfigError(f"z step must be > 0 µm, got {z_step_um}")
    if z_max_um < z_min_um:
        raise ConfigError(f"z range is empty: max {z_max_um} < min {z_min_um}; swap them")
    count = int(np.floor((z_max_um - z_min_um) / z_step_um + 1e-9)) + 1
    return np.round(z_min_um + z_step_um * np.arange(count), 6)


_CAMERA_6_5 = Camera(
    pixel_um=6.5, bit_depth=16, gain_adu_per_e=1.0, read_noise_e=1.5, offset_adu=100
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="fcfnn-20x-led",
            optics=Optics(
                Objective(na=0.5, magnification=20, immersion_index=1.0),
                wavelength_um=0.53,
                camera=_CAMERA_6_5,
                illumination=LED(sx=0.407, sy=0.0),
            ),
            z_min_um=-30,
            z_max_um=30,
            z_step_um=1,
            size=2048,
            default_sample="cells",
            description="single-shot defocus: one LED at 24° along x; 2048² images, 1024² tiles",
            reference="Pinkard et al. 2019, Fig. 1, Note S3",
            ground_truth_illumination=DPC(na_inner=0.35, na_outer=0.48, side="right"),
            extras={"tile": 1024},
        ),
        Preset(
            name="deepr-40x-fluor",
            optics=Optics(
                Objective(na=0.95, magnification=40, immersion_index=1.0),
                wavelength_um=0.584,
                camera=_CAMERA_6_5,
                illumination=Fluorescence(),
            ),
            z_min_um=-10,
            z_max_um=10,
            z_step_um=0.2,
            size=512,
            default_sample="beads",
            description="refocus: fluorescence 40×/0.95; train on ±5 µm; 512² tiles",
            reference="Luo et al. 2021 (Deep-R), Methods",
            extras={"train_range_um": 5.0, "tile": 512},
        ),
        Preset(
            name="deepr-20x-fluor",
            optics=Optics(
                Objective(na=0.75, magnification=20, immersion_index=1.0),
                wavelength_um=0.447,
                camera=_CAMERA_6_5,
                illumination=Fluorescence(),
            ),
            z_min_um=-10,
            z_max_um=10,
            z_step_um=0.5,
            size=512,
            default_sample="fluorescent-tissue",
            description="refocus: autofluorescent tissue 20×/0.75",
            reference="Luo et al. 2021 (Deep-R), Methods",
            extras={"tile": 512},
        ),
        Preset(
            name="deepr-20x-bf",
            optics=Optics(
                Objective(na=0.75, magnification=20, immersion_index=1.0),
                wavelength_um=0.55,
                camera=_CAMERA_6_5,
                illumination=Brightfield(na_condenser=0.55),
            ),
            z_min_um=-10,
            z_max_um=10,
            z_step_um=0.5,
            size=512,
            default_sample="tissue",
            description="refocus: brightfield of an absorbing (stained) section, condenser NA 0.55",
            reference="Luo et al. 2021 (Deep-R), Methods",
            extras={"tile": 512},
        ),
        Preset(
            name="deepfocus-10x",
            optics=Optics(
                Objective(na=0.3, magnification=10, immersion_index=1.0),
                wavelength_um=0.52,
                camera=_CAMERA_6_5,
                illumination=Fluorescence(),
            ),
            z_min_um=-60,
            z_max_um=60,
            z_step_um=2,
            size=512,
            default_sample="fluorescent-tissue",
            description=(
                "few-shot AF: 10×/0.3; synthetic calibration stacks span ±120 µm (132 planes)"
            ),
            reference="Shajkofci & Liebling 2020 (DeepFocus)",
            extras={"synthetic_range_um": 120.0, "synthetic_planes": 132},
        ),
    ]
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name; the error lists the valid names.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.

    Returns
    -------
    preset : Preset
        The named preset.

    Raises
    ------
    ConfigError
        If the name is unknown.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; use one of: {', '.join(PRESETS)}") from None
