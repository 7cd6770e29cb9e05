"""Focus: ground-truth focus of a stack, focus curves, per-tile focus maps, and the
DeepFocus blur calibration (Moffat fit, shift by correlation, convexity check)."""

from focuskit.focus._calibration import (
    BlurCalibration,
    MoffatFit,
    convexity,
    fit_moffat,
    moffat_fwhm,
    moffat_profile,
    shift_by_correlation,
)
from focuskit.focus._ground_truth import (
    FocusMap,
    FocusResult,
    curve_snr,
    find_focus,
    focus_curve,
    focus_map,
    parabola_vertex,
    refine_peak,
)

__all__ = [
    "BlurCalibration",
    "FocusMap",
    "FocusResult",
    "MoffatFit",
    "convexity",
    "curve_snr",
    "find_focus",
    "fit_moffat",
    "focus_curve",
    "focus_map",
    "moffat_fwhm",
    "moffat_profile",
    "parabola_vertex",
    "refine_peak",
    "shift_by_correlation",
]
