"""Reports: figures people would rather look at than read, and the tables, JSON and PNG of
the papers' analyses (matplotlib with the Agg backend; no torch).

Each system's analyses give their own plot functions (``focuskit.singleshot.analyses.PLOTS``
…); :func:`save_analysis` is told which one to use — nothing registers on import.
"""

from focuskit.report._analysis import AnalysisPlot, analysis_table, finish_figure, save_analysis
from focuskit.report._families import FamilyTable, evaluate_families, leave_one_family_out
from focuskit.report._plots import (
    autofocus_trace_plot,
    family_montage,
    focus_curve_plot,
    image_panels,
    pyplot,
    save_figure,
    stack_montage,
)
from focuskit.report._slide import slide_focus_map_plot

__all__ = [
    "AnalysisPlot",
    "FamilyTable",
    "analysis_table",
    "autofocus_trace_plot",
    "evaluate_families",
    "family_montage",
    "finish_figure",
    "focus_curve_plot",
    "image_panels",
    "leave_one_family_out",
    "pyplot",
    "save_analysis",
    "save_figure",
    "slide_focus_map_plot",
    "stack_montage",
]
