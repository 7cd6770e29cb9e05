"""The stage never exceeds its step limit or its range, whatever the stage resolution."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from focuskit.io import FocalStack
from focuskit.scopes import StackScope, StageLimitError

STACK = FocalStack(np.zeros((5, 8, 8), np.float32), np.linspace(-10.0, 10.0, 5), 0.1)


@settings(max_examples=300, deadline=None)
@given(
    resolution=st.floats(0.01, 2.0),
    max_step=st.floats(0.05, 5.0),
    moves=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=8),
)
def test_moves_respect_the_step_limit_after_snapping(
    resolution: float, max_step: float, moves: list[float]
) -> None:
    scope = StackScope(STACK, stage_resolution_um=resolution, max_step_um=max_step, start_z_um=0.0)
    z = scope.z_um
    for frac in moves:
        target = z + frac * max_step  # always within the step limit as asked
        try:
            scope.move_to(target)
        except StageLimitError:
            assert not -10.0 <= target <= 10.0  # only a target outside the range is refused
            continue
        new = scope.z_um
        assert abs(new - z) <= max_step + 1e-9
        assert -10.0 - 1e-9 <= new <= 10.0 + 1e-9
        z = new


def test_the_reported_case_resolution_0_6_max_step_1() -> None:
    scope = StackScope(STACK, stage_resolution_um=0.6, max_step_um=1.0, start_z_um=0.0)
    scope.move_to(0.95)  # rounds to 1.2 (> 1.0 away): now rounded toward the stage, 0.6
    assert abs(scope.z_um - 0.6) < 1e-9
