"""Focus: ground-truth focus of a stack, focus curves, per-tile focus maps."""

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

__all__ = ["FocusMap", "FocusResult", "curve_snr", "find_focus", "focus_curve", "focus_map", "parabola_vertex", "refine_peak"]
