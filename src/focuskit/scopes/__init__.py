"""Scopes: the Microscope protocol and microscopes to run autofocus on.

- :class:`SimulatedScope` renders a preset's microscope looking at a generated sample,
  on demand, with a hidden (optionally drifting) focus;
- :class:`StackScope` replays a recorded focal stack, simulated or real
  (:func:`real_stack` reads the project's real stacks with their documented metadata);
- :class:`BaseScope` is what they share (stage limits and steps, counters, timing): subclass
  it with ``_image_at(z_um)`` to put your own camera behind the protocol;
- :func:`restore_on_failure` returns the stage to its start when an autofocus run fails;
  :class:`FaultyScope` fails on purpose, for tests.

Every scope refuses unsafe moves (:class:`StageLimitError`, before moving) and counts
exposures, moves, travel and simulated wall time
``elapsed_s = exposures·exposure_time_s + moves·move_overhead_s + travel_um/stage_speed_um_s``
(defaults 0.05 s, 0.02 s, 1000 µm/s).
"""

from focuskit.scopes._base import (
    DEFAULT_EXPOSURE_TIME_S,
    DEFAULT_MOVE_OVERHEAD_S,
    DEFAULT_STAGE_SPEED_UM_S,
    BaseScope,
    Microscope,
)
from focuskit.scopes._errors import ScopeError, StageLimitError
from focuskit.scopes._open import SCOPE_FORMS, open_scope
from focuskit.scopes._real import REAL_STACKS, RealStackInfo, real_data_dir, real_stack
from focuskit.scopes._safety import FaultyScope, move_in_steps, restore_on_failure
from focuskit.scopes._simulated import SimulatedScope
from focuskit.scopes._stack import StackScope

__all__ = [
    "DEFAULT_EXPOSURE_TIME_S",
    "DEFAULT_MOVE_OVERHEAD_S",
    "DEFAULT_STAGE_SPEED_UM_S",
    "REAL_STACKS",
    "SCOPE_FORMS",
    "BaseScope",
    "FaultyScope",
    "Microscope",
    "RealStackInfo",
    "ScopeError",
    "SimulatedScope",
    "StackScope",
    "StageLimitError",
    "move_in_steps",
    "open_scope",
    "real_data_dir",
    "real_stack",
    "restore_on_failure",
]
