"""Evaluate: the papers' analyses and figures, benchmarks and reports."""

from focuskit.evaluate._plots import (
    autofocus_trace_plot,
    focus_curve_plot,
    save_figure_atomic,
    stack_montage,
)

__all__ = ["autofocus_trace_plot", "focus_curve_plot", "save_figure_atomic", "stack_montage"]
