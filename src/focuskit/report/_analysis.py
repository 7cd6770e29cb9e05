"""Paper analyses as reports: each ``analyze_*`` returns a JSON-able result — ``analysis``
(its name), ``figure`` (what it reproduces), ``note`` (how it was scaled down), ``config``,
``columns`` and ``rows`` (the table) — which is printed as markdown, saved as
``<name>.json`` and drawn as ``<name>.png`` by the plot function its system gives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from focuskit.io import atomic_output
from focuskit.report._plots import save_figure

# plot(result, png_path): draws one analysis' figure.
AnalysisPlot = Callable[[dict[str, Any], Path], Any]


def analysis_table(result: dict[str, Any]) -> str:
    """The result's table in markdown (3 decimals; integers and words as they are).

    Floats of magnitude ≥ 100 are printed without decimals, booleans as yes / no.

    Parameters
    ----------
    result : dict
        An analysis result with ``columns`` (list of str) and ``rows`` (list of dict).

    Returns
    -------
    table : str
        A markdown table, one line per row after the header and its rule.
    """
    cols = result["columns"]

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in result["rows"]]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


def save_analysis(
    result: dict[str, Any], outdir: str | os.PathLike[str], plot: AnalysisPlot
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.png`` (drawn by ``plot``) into ``outdir``.

    Each file is written atomically; ``<name>`` is the result's ``analysis``.

    Parameters
    ----------
    result : dict
        A JSON-able analysis result (``analysis``, ``figure``, ``note``, ``config``,
        ``columns``, ``rows`` …).
    outdir : str or path-like
        The output folder (created if missing).
    plot : callable
        ``plot(result, png_path)``: draws the figure (e.g.
        ``focuskit.singleshot.analyses.PLOTS[name]``).

    Returns
    -------
    json_path : Path
        ``<outdir>/<name>.json``.
    png_path : Path
        ``<outdir>/<name>.png``.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    name = result["analysis"]
    png = out / f"{name}.png"
    plot(result, png)
    path = out / f"{name}.json"
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return path, png


def finish_figure(fig: Any, result: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Put the result's ``note`` (how the analysis was scaled down) under the figure, save it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The drawn figure (closed after saving).
    result : dict
        The analysis result, whose ``note`` is printed under the figure.
    path : str or path-like
        The PNG to write.

    Returns
    -------
    path : Path
        The written PNG.
    """
    fig.text(0.5, -0.01, result["note"], ha="center", va="top", fontsize=7, wrap=True, color="0.3")
    return save_figure(fig, path)
