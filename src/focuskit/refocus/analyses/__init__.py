"""Luo et al.'s analyses of Deep-R, on simulated held-out fields (Fig. 2b, 4b, 5, 7, 8,
S1c, S4, S5; ``focuskit evaluate refocus-quality | training-range | bead-fwhm |
tilted-sample | nonuniform-defocus | dpm-uniform``) and on the real light-sheet stack
before and after fine-tuning. ``PLOTS[name]`` draws each figure."""

from focuskit.refocus.analyses._luo import (
    PLOTS as _SIMULATED_PLOTS,
)
from focuskit.refocus.analyses._luo import (
    analyze_bead_fwhm,
    analyze_dpm_uniform,
    analyze_nonuniform_defocus,
    analyze_refocus_quality,
    analyze_tilted_sample,
    analyze_training_range,
    default_shapes,
    image_from_json,
)
from focuskit.refocus.analyses._real import analyze_real_refocus, plot_real_refocus

# The figure of each analysis, by its name (focuskit.report.save_analysis draws it).
PLOTS = {**_SIMULATED_PLOTS, "real-refocus": plot_real_refocus}

__all__ = [
    "PLOTS",
    "analyze_bead_fwhm",
    "analyze_dpm_uniform",
    "analyze_nonuniform_defocus",
    "analyze_real_refocus",
    "analyze_refocus_quality",
    "analyze_tilted_sample",
    "analyze_training_range",
    "default_shapes",
    "image_from_json",
    "plot_real_refocus",
]
