"""Simulate: thin samples and sample families, focal-stack rendering, defocus maps, drift,
camera noise.

Uses ``focuskit.optics`` only; returns plain arrays and :class:`SimulatedStack`
(``focuskit.io.FocalStack.from_simulation`` turns one into a stack to save; the
``focuskit.simulate_stack`` facade returns that directly).
"""

from focuskit.simulate import _zoo_fluorescence, _zoo_transmitted  # noqa: F401  (register)
from focuskit.simulate._camera import apply_camera, expose
from focuskit.simulate._families import (
    FAMILIES,
    MODALITIES,
    UNSEEN_FAMILIES,
    Conditions,
    Family,
    Param,
    check_sample_names,
    draw_conditions,
    family_statistics,
    get_family,
    sample_families,
    sample_key,
)
from focuskit.simulate._gallery import GALLERY_PRESETS, FamilyView, family_views
from focuskit.simulate._render import (
    Drift,
    RenderPlan,
    SimulatedStack,
    blur_margin_um,
    move_image,
    oversampling,
    padded_shape,
    plan_render,
    render_stack,
)
from focuskit.simulate._samples import (
    SAMPLE_GENERATORS,
    Sample,
    beads,
    cells,
    fluorescent_tissue,
    from_image,
    load_sample_image,
    make_sample,
    picture,
    stain_density,
    tissue,
)
from focuskit.simulate._simulate import check_sample_matches, defocus_map, simulate_stack
from focuskit.simulate._zmap import cylinder_map, sphere_map, tilt_map

__all__ = [
    "FAMILIES",
    "GALLERY_PRESETS",
    "MODALITIES",
    "SAMPLE_GENERATORS",
    "UNSEEN_FAMILIES",
    "Conditions",
    "Drift",
    "Family",
    "FamilyView",
    "Param",
    "RenderPlan",
    "Sample",
    "SimulatedStack",
    "apply_camera",
    "beads",
    "blur_margin_um",
    "cells",
    "check_sample_matches",
    "check_sample_names",
    "cylinder_map",
    "defocus_map",
    "draw_conditions",
    "expose",
    "family_statistics",
    "family_views",
    "fluorescent_tissue",
    "from_image",
    "get_family",
    "load_sample_image",
    "make_sample",
    "move_image",
    "oversampling",
    "padded_shape",
    "picture",
    "plan_render",
    "render_stack",
    "sample_families",
    "sample_key",
    "simulate_stack",
    "sphere_map",
    "stain_density",
    "tilt_map",
    "tissue",
]
