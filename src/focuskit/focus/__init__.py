"""Focus: where a stack is in focus, and how to compare its planes.

- ground truth of a recorded stack: the focus curve of any focus measure, its peak refined
  below the z step, a confidence (:func:`find_focus`, :func:`focus_curve`), and a per-tile
  focus map for tilted samples (:func:`focus_map`);
- the focal surface of a defocus map: a plane fitted through it (:func:`fitted_tilt`);
- registration of a drifting stack, its extended-depth-of-field image and the plane most
  like it (:func:`register_stack`, :func:`edof_image`, :func:`focus_plane_by_ssim`; Luo et
  al. 2021, Methods "Data pre-processing").

numpy / scipy / scikit-image only (no torch).
"""

from focuskit.focus._ground_truth import (
    FocusMap,
    FocusResult,
    curve_fwhm_um,
    curve_snr,
    find_focus,
    focus_curve,
    focus_map,
    parabola_vertex,
    refine_peak,
    refine_within_dof,
)
from focuskit.focus._registration import (
    check_stack,
    edof_image,
    focus_plane_by_ssim,
    register_stack,
)
from focuskit.focus._surface import fitted_tilt

__all__ = [
    "FocusMap",
    "FocusResult",
    "check_stack",
    "curve_fwhm_um",
    "curve_snr",
    "edof_image",
    "find_focus",
    "fitted_tilt",
    "focus_curve",
    "focus_map",
    "focus_plane_by_ssim",
    "parabola_vertex",
    "refine_peak",
    "refine_within_dof",
    "register_stack",
]
