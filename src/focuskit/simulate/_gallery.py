"""Render every sample family through a matching microscope: a quick look at the zoo."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Preset, get_preset
from focuskit.simulate._families import get_family, sample_families
from focuskit.simulate._simulate import simulate_stack

#: The preset each modality is looked at with (first modality of a family decides).
GALLERY_PRESETS: dict[str, str] = {
    "fluorescence": "deepr-20x-fluor",
    "phase": "fcfnn-20x-led",
    "absorption": "deepr-20x-bf",
}


@dataclass(frozen=True)
class FamilyView:
    """One family rendered at ``z = −DOF, 0, +DOF`` (noise-free).

    Attributes
    ----------
    family : str
        Family name.
    preset : str
        Microscope it was rendered with.
    z_um : (3,) ndarray
        Focal positions, in µm (``0`` is in focus).
    images : (3, Y, X) ndarray of float32
        Noise-free intensities.
    """

    family: str
    preset: str
    z_um: np.ndarray
    images: np.ndarray


def family_views(
    names: Sequence[str] | None = None,
    *,
    size: int = 128,
    seed: int = 0,
    presets: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[FamilyView]:
    """Render each family in focus and one depth of field either side.

    Parameters
    ----------
    names : sequence of str, optional
        Families to render (default all, in registry order).
    size : int, optional
        Image side in pixels (default 128, at least 16).
    seed : int, optional
        Seed of every scene (default 0).
    presets : dict of str to str, optional
        Preset per modality, replacing :data:`GALLERY_PRESETS` entries.
    progress : callable, optional
        Called as ``progress(done, total)``.

    Returns
    -------
    views : list of FamilyView
        One per family, in order.

    Raises
    ------
    ConfigError
        If a family or preset is unknown or the size is too small.
    """
    chosen = list(names) if names is not None else sample_families()
    table = {**GALLERY_PRESETS, **(presets or {})}
    views = []
    for i, name in enumerate(chosen):
        fam = get_family(name)
        preset: Preset = get_preset(table[fam.modality[0]])
        dof = preset.optics.depth_of_field_um
        z = np.array([-dof, 0.0, dof])
        try:
            sim = simulate_stack(preset, sample=fam.name, size=size, z_um=z, seed=seed)
        except ConfigError as exc:
            raise ConfigError(f"family {fam.name!r} with preset {preset.name!r}: {exc}") from None
        views.append(FamilyView(fam.name, preset.name, z, np.asarray(sim.data, np.float32)))
        if progress is not None:
            progress(i + 1, len(chosen))
    return views
