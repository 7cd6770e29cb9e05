"""Simulate: thin samples, focal-stack rendering, defocus maps, drift, camera noise.

Uses ``focuskit.optics`` only; returns plain arrays and :class:`SimulatedStack`
(``focuskit.io.FocalStack.from_simulation`` turns one into a stack to save).
"""

from focuskit.simulate._camera import apply_camera
from focuskit.simulate._render import (
    Drift,
    RenderPlan,
    SimulatedStack,
    blur_margin_um,
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
    tissue,
)
from focuskit.simulate._simulate import check_sample_matches, defocus_map, simulate_stack
from focuskit.simulate._zmap import cylinder_map, sphere_map, tilt_map

__all__ = [
    "SAMPLE_GENERATORS",
    "Drift",
    "RenderPlan",
    "Sample",
    "SimulatedStack",
    "apply_camera",
    "beads",
    "blur_margin_um",
    "check_sample_matches",
    "cells",
    "cylinder_map",
    "defocus_map",
    "fluorescent_tissue",
    "from_image",
    "load_sample_image",
    "make_sample",
    "oversampling",
    "padded_shape",
    "plan_render",
    "render_stack",
    "simulate_stack",
    "sphere_map",
    "tilt_map",
    "tissue",
]
