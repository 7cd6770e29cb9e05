"""Focus: where a stack is in focus, and how to compare its planes.

- ground truth of a recorded stack: the focus curve of any focus measure, its peak refined
  below the z step, a confidence (:func:`find_focus`, :func:`focus_curve`), and a per-tile
  focus map for tilted samples (:func:`focus_map`);
- the focal surface of a defocus map: a plane fitted through it (:func:`fitted_tilt`);
- slide QC: per-tile values of a whole slide computed chunk-wise with Dask
  (:func:`tile_values`), a robust plane or low-order surface through them
  (:func:`fit_focal_surface`) and the tiles out of focus (:func:`slide_focus_map`);
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
from focuskit.focus._slide import (
    MeasureTileEstimator,
    SlideFocusMap,
    TileEstimator,
    slide_focus_map,
    tile_grid,
    tile_values,
)
from focuskit.focus._surface import FocalSurface, fit_focal_surface, fitted_tilt, surface_terms

__all__ = [
    "FocalSurface",
    "FocusMap",
    "FocusResult",
    "MeasureTileEstimator",
    "SlideFocusMap",
    "TileEstimator",
    "check_stack",
    "curve_fwhm_um",
    "curve_snr",
    "edof_image",
    "find_focus",
    "fit_focal_surface",
    "fitted_tilt",
    "focus_curve",
    "focus_map",
    "focus_plane_by_ssim",
    "parabola_vertex",
    "refine_peak",
    "refine_within_dof",
    "register_stack",
    "slide_focus_map",
    "surface_terms",
    "tile_grid",
    "tile_values",
]
