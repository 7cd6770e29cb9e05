"""Reports: figures people would rather look at than read, and the tables, JSON and PNG of
the papers' analyses (matplotlib with the Agg backend; no torch).

Each system's analyses give their own plot functions (``focuskit.singleshot.analyses.PLOTS``
…); :func:`save_analysis` is told which one to use — nothing registers on import.
"""

from focuskit.report._analysis import AnalysisPlot, analysis_table, finish_figure, save_analysis
from focuskit.report._plots import (
    autofocus_trace_plot,
    focus_curve_plot,
    image_panels,
    pyplot,
    save_figure,
    stack_montage,
)

__all__ = [
    "AnalysisPlot",
    "analysis_table",
    "autofocus_trace_plot",
    "finish_figure",
    "focus_curve_plot",
    "image_panels",
    "pyplot",
    "save_analysis",
    "save_figure",
    "stack_montage",
]
