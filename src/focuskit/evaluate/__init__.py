"""Evaluate: the papers' analyses and figures, benchmarks and reports."""

from focuskit.evaluate._plots import save_figure_atomic, stack_montage

__all__ = ["save_figure_atomic", "stack_montage"]
