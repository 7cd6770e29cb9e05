"""Out-of-family evaluation: leave-one-family-out and the fixed unseen split.

A learned model is measured on sample *families* it never saw. :func:`leave_one_family_out`
trains once per family with that family held out and evaluates on it;
:func:`evaluate_families` measures a fixed model family by family (the unseen split of
:data:`focuskit.simulate.UNSEEN_FAMILIES`, used only for reporting). Both return a
:class:`FamilyTable`: rows are families, columns the system's metrics, and a summary line
names the worst family.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from focuskit._errors import ConfigError

Model = TypeVar("Model")


@dataclass
class FamilyTable:
    """Per-family metrics (one row per held-out or unseen family).

    Attributes
    ----------
    title : str
        What was measured (printed above the table).
    rows : list of (str, dict)
        ``(family, {metric: value})`` in evaluation order.
    lower_is_better : dict of str to bool
        Direction of each metric; metrics not listed are taken as lower-is-better.
    units : dict of str to str
        Unit per metric, shown in the header.
    """

    title: str
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    lower_is_better: dict[str, bool] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        """Metric names in first-seen order."""
        names: list[str] = []
        for _, row in self.rows:
            names.extend(k for k in row if k not in names)
        return names

    @property
    def families(self) -> list[str]:
        """Family names, one per row."""
        return [f for f, _ in self.rows]

    def worst(self, metric: str) -> tuple[str, float]:
        """The family with the worst value of ``metric`` (NaN counts as worst).

        Parameters
        ----------
        metric : str
            A metric of the table.

        Returns
        -------
        family, value : str, float
            The worst family and its value.

        Raises
        ------
        ConfigError
            If the table is empty or has no such metric.
        """
        if not self.rows or metric not in self.metrics:
            raise ConfigError(f"no metric {metric!r} in the table; it has: {self.metrics}")
        lower = self.lower_is_better.get(metric, True)

        def badness(row: tuple[str, dict[str, float]]) -> float:
            v = float(row[1].get(metric, math.nan))
            if math.isnan(v):
                return math.inf
            return v if lower else -v

        fam, row = max(self.rows, key=badness)
        return fam, float(row.get(metric, math.nan))

    def mean(self, metric: str) -> float:
        """Mean of ``metric`` over families (NaN values skipped).

        Parameters
        ----------
        metric : str
            A metric of the table.

        Returns
        -------
        mean : float
            The mean, NaN if no family has a value.
        """
        vals = [float(r[metric]) for _, r in self.rows if not math.isnan(r.get(metric, math.nan))]
        return sum(vals) / len(vals) if vals else math.nan

    def summary(self, metric: str, *, baseline: float | None = None, label: str = "") -> str:
        """One line: the worst family for ``metric``, the mean, and a ratio to a baseline.

        Parameters
        ----------
        metric : str
            The key metric.
        baseline : float, optional
            A baseline value measured in the same run; the worst value is given as a ratio.
        label : str, optional
            Name of the baseline.

        Returns
        -------
        line : str
            e.g. ``"worst family: rods — rmse_um 3.10 (mean 1.95 over 6); 0.8× the baseline"``.
        """
        fam, value = self.worst(metric)
        unit = f" {self.units[metric]}" if self.units.get(metric) else ""
        line = (
            f"worst family: {fam} — {metric} {value:.3g}{unit} "
            f"(mean {self.mean(metric):.3g}{unit} over {len(self.rows)} families)"
        )
        if baseline is not None and baseline and math.isfinite(baseline):
            line += f"; {value / baseline:.2f}× {label or 'the baseline'} ({baseline:.3g}{unit})"
        return line

    def format(self, digits: int = 3) -> str:
        """The table as aligned plain text (title, header, one row per family).

        Parameters
        ----------
        digits : int, optional
            Significant digits (default 3).

        Returns
        -------
        text : str
            The table.
        """
        metrics = self.metrics
        head = ["family"] + [f"{m} ({self.units[m]})" if self.units.get(m) else m for m in metrics]
        body = [
            [fam] + [_fmt(row.get(m, math.nan), digits) for m in metrics] for fam, row in self.rows
        ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        out = [self.title, line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in body]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: title, units, directions and rows.

        Returns
        -------
        data : dict
            ``{"title", "units", "lower_is_better", "rows": [{"family", **metrics}]}``.
        """
        return {
            "title": self.title,
            "units": dict(self.units),
            "lower_is_better": dict(self.lower_is_better),
            "rows": [{"family": f, **r} for f, r in self.rows],
        }


def _fmt(v: float, digits: int) -> str:
    v = float(v)
    if math.isnan(v):
        return "—"
    if v != 0 and (abs(v) >= 10**digits or abs(v) < 10 ** -(digits - 1)):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def _check_families(families: Iterable[str], what: str) -> list[str]:
    names = [str(f) for f in families]
    if not names:
        raise ConfigError(f"{what} needs at least one family")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: a family is listed twice ({names})")
    return names


def leave_one_family_out(
    families: Sequence[str],
    train_fn: Callable[[list[str]], Model],
    eval_fn: Callable[[Model, str], Mapping[str, float]],
    *,
    title: str = "Leave one family out",
    lower_is_better: Mapping[str, bool] | None = None,
    units: Mapping[str, str] | None = None,
    allow_unseen: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> FamilyTable:
    """Train without each family in turn and measure on it.

    For every family ``f``: ``model = train_fn(others)`` with ``others`` the remaining
    families (``f`` is never passed to ``train_fn`` in that fold), then
    ``eval_fn(model, f)`` gives the row.

    Parameters
    ----------
    families : sequence of str
        At least two distinct families.
    train_fn : callable
        ``train_fn(training_families) -> model``.
    eval_fn : callable
        ``eval_fn(model, held_out_family) -> {metric: value}``.
    title : str, optional
        Table title.
    lower_is_better : mapping of str to bool, optional
        Direction of each metric (default lower is better).
    units : mapping of str to str, optional
        Unit per metric.
    allow_unseen : bool, optional
        Allow families of :data:`focuskit.simulate.UNSEEN_FAMILIES` (default False: they
        are kept for reporting only and must never be trained on).
    progress : callable, optional
        Called as ``progress(done, total, family)`` after each fold.

    Returns
    -------
    table : FamilyTable
        One row per held-out family.

    Raises
    ------
    ConfigError
        If fewer than two families are given, one is repeated, or an unseen family is
        listed without ``allow_unseen``.
    """
    from focuskit.simulate import UNSEEN_FAMILIES

    names = _check_families(families, "leave_one_family_out")
    if len(names) < 2:
        raise ConfigError("leave_one_family_out needs at least two families (one to hold out)")
    unseen = [n for n in names if n in UNSEEN_FAMILIES]
    if unseen and not allow_unseen:
        raise ConfigError(
            f"families {unseen} are the fixed unseen split (report only); leave them out of "
            "leave_one_family_out or pass allow_unseen=True"
        )
    table = FamilyTable(title, [], dict(lower_is_better or {}), dict(units or {}))
    for i, held in enumerate(names):
        train = [n for n in names if n != held]
        model = train_fn(train)
        table.rows.append((held, {k: float(v) for k, v in eval_fn(model, held).items()}))
        if progress is not None:
            progress(i + 1, len(names), held)
    return table


def evaluate_families(
    families: Sequence[str],
    eval_fn: Callable[[str], Mapping[str, float]],
    *,
    title: str = "Unseen families",
    lower_is_better: Mapping[str, bool] | None = None,
    units: Mapping[str, str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> FamilyTable:
    """Measure a fixed model family by family (no training).

    Parameters
    ----------
    families : sequence of str
        Distinct families.
    eval_fn : callable
        ``eval_fn(family) -> {metric: value}``.
    title : str, optional
        Table title.
    lower_is_better : mapping of str to bool, optional
        Direction of each metric.
    units : mapping of str to str, optional
        Unit per metric.
    progress : callable, optional
        Called as ``progress(done, total, family)``.

    Returns
    -------
    table : FamilyTable
        One row per family.

    Raises
    ------
    ConfigError
        If no family is given or one is repeated.
    """
    names = _check_families(families, "evaluate_families")
    table = FamilyTable(title, [], dict(lower_is_better or {}), dict(units or {}))
    for i, fam in enumerate(names):
        table.rows.append((fam, {k: float(v) for k, v in eval_fn(fam).items()}))
        if progress is not None:
            progress(i + 1, len(names), fam)
    return table
