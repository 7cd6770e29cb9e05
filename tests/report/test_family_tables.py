"""Leave-one-family-out and the unseen-family table."""

from __future__ import annotations

import math

import pytest

from focuskit import ConfigError
from focuskit.report import FamilyTable, evaluate_families, leave_one_family_out


def test_each_fold_trains_without_its_family_and_is_evaluated_on_it() -> None:
    seen: list[tuple[str, list[str]]] = []

    def train(families: list[str]) -> list[str]:
        return list(families)

    def evaluate(model: list[str], family: str) -> dict[str, float]:
        seen.append((family, model))
        return {"rmse_um": float(len(family)), "in_range": 1.0 / len(family)}

    fams = ["nuclei", "filaments", "membranes"]
    table = leave_one_family_out(
        fams, train, evaluate, lower_is_better={"in_range": False}, units={"rmse_um": "µm"}
    )
    assert [f for f, _ in seen] == fams
    for held, trained_on in seen:
        assert held not in trained_on and sorted([*trained_on, held]) == sorted(fams)
    assert table.families == fams
    assert table.worst("rmse_um") == ("filaments", 9.0)
    assert table.worst("in_range")[0] == "filaments"  # higher is better: the smallest
    assert math.isclose(table.mean("rmse_um"), (6 + 9 + 9) / 3)
    line = table.summary("rmse_um", baseline=3.0, label="the classic search")
    assert line.startswith("worst family: filaments — rmse_um 9 µm")
    assert "3.00× the classic search" in line
    text = table.format()
    assert text.splitlines()[0] == "Leave one family out"
    assert "rmse_um (µm)" in text and len(text.splitlines()) == 3 + len(fams)
    assert table.to_dict()["rows"][0] == {"family": "nuclei", "rmse_um": 6.0, "in_range": 1 / 6}


def test_unseen_families_stay_out_of_training_unless_asked() -> None:
    with pytest.raises(ConfigError, match="unseen split"):
        leave_one_family_out(["nuclei", "rods"], lambda f: f, lambda m, f: {"x": 0.0})
    table = leave_one_family_out(
        ["nuclei", "rods"], lambda f: f, lambda m, f: {"x": 1.0}, allow_unseen=True
    )
    assert table.families == ["nuclei", "rods"]


@pytest.mark.parametrize("fams", [[], ["nuclei"], ["nuclei", "nuclei"]])
def test_too_few_or_repeated_families_are_refused(fams: list[str]) -> None:
    with pytest.raises(ConfigError):
        leave_one_family_out(fams, lambda f: f, lambda m, f: {"x": 0.0})


def test_evaluate_families_and_nan_counts_as_worst() -> None:
    calls: list[tuple[int, int, str]] = []
    table = evaluate_families(
        ["rods", "debris"],
        lambda f: {"err": math.nan if f == "debris" else 1.0},
        progress=lambda d, t, f: calls.append((d, t, f)),
    )
    assert calls == [(1, 2, "rods"), (2, 2, "debris")]
    assert table.worst("err")[0] == "debris"
    assert table.mean("err") == 1.0
    assert "—" in table.format()
    with pytest.raises(ConfigError, match="no metric"):
        table.worst("rmse")
    with pytest.raises(ConfigError):
        FamilyTable("empty").worst("x")
