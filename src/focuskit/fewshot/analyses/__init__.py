"""Shajkofci & Liebling's analyses of DeepFocus, on simulated stacks and the real ones:
how sample-invariant and depth-informative a blur score is (Table 1, Fig. 3;
``focuskit evaluate blur-invariance``) and the autofocus error against the number of
images (Fig. 4; ``focuskit evaluate fewshot-af``). ``PLOTS[name]`` draws each figure."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from focuskit.fewshot.analyses._autofocus import (
    Trial,
    af_error_plot,
    af_error_vs_images,
    analyze_fewshot_af,
    calibrate_simulated,
    error_table_rows,
    images_for_error,
    plot_fewshot_af,
    simulated_trials,
    split_stack,
    stack_trials,
    trial_scope,
)
from focuskit.fewshot.analyses._invariance import (
    DEFAULT_CLASSIC,
    HELD_OUT_IMAGES,
    SAMPLE_KINDS,
    MeasureBlur,
    ModelBlur,
    analyze_score_invariance,
    classic_scorers,
    conditional_entropy,
    default_z_um,
    informative_range,
    invariance_sample,
    invariance_samples,
    invariance_statistics,
    normalize_curves,
    render_invariance_stack,
    score_invariance_plot,
)

# The figure of each analysis, by its name (focuskit.report.save_analysis draws it).
PLOTS: dict[str, Callable[[dict[str, Any], Path], Any]] = {
    "blur-invariance": score_invariance_plot,
    "fewshot-af": plot_fewshot_af,
}

__all__ = [
    "DEFAULT_CLASSIC",
    "HELD_OUT_IMAGES",
    "PLOTS",
    "SAMPLE_KINDS",
    "MeasureBlur",
    "ModelBlur",
    "Trial",
    "af_error_plot",
    "af_error_vs_images",
    "analyze_fewshot_af",
    "analyze_score_invariance",
    "calibrate_simulated",
    "classic_scorers",
    "conditional_entropy",
    "default_z_um",
    "error_table_rows",
    "images_for_error",
    "informative_range",
    "invariance_sample",
    "invariance_samples",
    "invariance_statistics",
    "normalize_curves",
    "plot_fewshot_af",
    "render_invariance_stack",
    "score_invariance_plot",
    "simulated_trials",
    "split_stack",
    "stack_trials",
    "trial_scope",
]
