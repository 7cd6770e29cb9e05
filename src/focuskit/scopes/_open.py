"""Open a scope from a CLI spec: ``sim:PRESET``, ``stack:PATH`` or ``real:NAME``."""

from __future__ import annotations

from typing import Any

from focuskit._errors import ConfigError
from focuskit.optics import PRESETS
from focuskit.scopes._real import REAL_STACKS, real_stack
from focuskit.scopes._simulated import SimulatedScope
from focuskit.scopes._stack import StackScope

SCOPE_FORMS = (
    "sim:PRESET (a simulated microscope; PRESET one of " + ", ".join(PRESETS) + ")",
    "stack:PATH (replay a focal-stack file)",
    "real:NAME (replay a real stack; NAME one of " + ", ".join(REAL_STACKS) + ")",
)


def open_scope(spec: str, **kwargs: Any) -> SimulatedScope | StackScope:
    """Make the scope a spec names; ``kwargs`` go to its constructor.

    ``sim:PRESET`` → :class:`SimulatedScope`; ``stack:PATH`` → :class:`StackScope` (read
    options such as ``pixel_size_um``, ``z_step_um``, ``rgb`` included); ``real:NAME`` →
    a :class:`StackScope` over :func:`real_stack` (``data_dir`` goes to ``real_stack``).

    Parameters
    ----------
    spec : str
        ``sim:PRESET``, ``stack:PATH`` or ``real:NAME`` (see :data:`SCOPE_FORMS`).
    **kwargs
        Constructor options (z and pixel sizes in µm); for ``real:``, ``data_dir`` and
        ``pixel_size_um`` go to :func:`real_stack`.

    Returns
    -------
    scope : SimulatedScope or StackScope
        The opened scope.

    Raises
    ------
    ConfigError
        If the spec is not one of the three forms, or an option is invalid.
    StackFileError
        If a stack file or the real-data folder cannot be read.
    """
    kind, sep, arg = str(spec).partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if not sep or not arg or kind not in ("sim", "stack", "real"):
        raise ConfigError(f"unknown scope {spec!r}; use one of: " + "; ".join(SCOPE_FORMS))
    if kind == "sim":
        return SimulatedScope(arg, **kwargs)
    if kind == "stack":
        return StackScope(arg, **kwargs)
    real_kwargs = {k: kwargs.pop(k) for k in ("data_dir", "pixel_size_um") if k in kwargs}
    return StackScope(real_stack(arg, **real_kwargs), **kwargs)
