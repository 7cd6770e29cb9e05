"""Keeping the stage safe when something fails, and a scope that fails on purpose."""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any, Literal

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Optics
from focuskit.scopes._base import Microscope
from focuskit.scopes._errors import ScopeError


def move_in_steps(scope: Microscope, z_um: float) -> int:
    """Move ``scope`` to ``z_um`` in as few moves as its ``max_step_um`` allows.

    Returns the number of moves made (0 when already there). Each step is checked by the
    scope, so a target outside the limits raises ``StageLimitError`` before any move. A
    drive that rounds targets to its ``stage_resolution_um`` may land up to that much past
    an intermediate target, so steps are planned that much shorter and from where the
    stage really is.

    Parameters
    ----------
    scope : Microscope
        The scope to move.
    z_um : float
        Target focus-drive position, in µm.

    Returns
    -------
    moves : int
        Number of moves made.

    Raises
    ------
    StageLimitError
        If the target is not finite or lies outside the limits (before any move).
    """
    target = float(z_um)
    if target == scope.z_um:
        return 0
    max_step = scope.max_step_um
    lo, hi = scope.z_limits_um
    if not (math.isfinite(target) and lo <= target <= hi):
        scope.move_to(target)  # raises StageLimitError with the scope's own message
    moves = 0
    if max_step is not None:
        resolution = getattr(scope, "stage_resolution_um", None) or 0.0
        step = max_step - resolution if resolution < max_step / 2 else max_step / 2
        while abs(target - scope.z_um) > max_step:
            remaining = target - scope.z_um
            n = math.ceil(abs(remaining) / step - 1e-12)
            scope.move_to(scope.z_um + remaining / n)
            moves += 1
    scope.move_to(target)
    return moves + 1


class restore_on_failure:
    """Context manager: if the body raises, return the stage to where it was at entry.

    The stage goes back in moves the scope allows (each ≤ ``max_step_um``), then a
    :class:`ScopeError` is raised from the original error, its message saying where the
    stage was returned to (the original is ``__cause__``). KeyboardInterrupt and other
    non-``Exception`` errors also return the stage and then propagate unchanged. If the
    stage cannot be returned, the ScopeError says so and where the stage is.
    ``with restore_on_failure(scope) as s:`` gives the scope back.

    Parameters
    ----------
    scope : Microscope
        The scope whose stage to protect.

    Attributes
    ----------
    scope : Microscope
        The protected scope.
    start_z_um : float or None
        Stage position at entry, in µm (None before entry).

    Raises
    ------
    ScopeError
        On exit, when the body raised an ``Exception`` (whether or not the stage could be
        returned).
    """

    def __init__(self, scope: Microscope) -> None:
        self.scope = scope
        self.start_z_um: float | None = None

    def __enter__(self) -> Microscope:
        self.start_z_um = float(self.scope.z_um)
        return self.scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None:
            return False
        start = self.start_z_um
        assert start is not None
        try:
            move_in_steps(self.scope, start)
        except Exception as failure:
            where = _position(self.scope)
            raise ScopeError(
                f"{type(exc).__name__}: {exc} — and the stage could NOT be returned to "
                f"z={start:g} µm ({type(failure).__name__}: {failure}); it is at z={where}"
            ) from exc
        if not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit: stage restored, propagate as is
        raise ScopeError(
            f"{type(exc).__name__}: {exc} — the stage was returned to z={start:g} µm"
        ) from exc


def _position(scope: Microscope) -> str:
    try:
        return f"{scope.z_um:g} µm"
    except Exception:
        return "unknown"


class FaultyScope:
    """Wraps a scope so that its camera or stage fails after N operations (for tests).

    ``fail_after_snaps=N``: the first N snaps work, the next raises :class:`ScopeError`
    ("camera failed"); likewise ``fail_after_moves`` ("stage failed"). A failure happens
    before the wrapped scope acts, so a failed move leaves the stage where it was. With
    ``transient=True`` only that one operation fails and later ones work again;
    otherwise the part stays broken. Everything else is delegated to the wrapped scope.

    Parameters
    ----------
    scope : Microscope
        The scope to wrap.
    fail_after_snaps : int, optional
        Number of snaps that work before the camera fails, ≥ 0 (None: never fails).
    fail_after_moves : int, optional
        Number of moves that work before the stage fails, ≥ 0 (None: never fails).
    transient : bool, optional
        Only the one operation fails (default False: the part stays broken).

    Raises
    ------
    ConfigError
        If a count is not an integer ≥ 0 or None.
    """

    def __init__(
        self,
        scope: Microscope,
        fail_after_snaps: int | None = None,
        fail_after_moves: int | None = None,
        *,
        transient: bool = False,
    ) -> None:
        limits = {"fail_after_snaps": fail_after_snaps, "fail_after_moves": fail_after_moves}
        for name, n in limits.items():
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
                raise ConfigError(f"{name} must be an integer >= 0 or None, got {n!r}")
        self.scope = scope
        self.fail_after_snaps = fail_after_snaps
        self.fail_after_moves = fail_after_moves
        self.transient = transient
        self.snap_attempts = 0
        self.move_attempts = 0

    def _fails(self, attempts: int, limit: int | None) -> bool:
        if limit is None:
            return False
        return attempts == limit + 1 if self.transient else attempts > limit

    def move_to(self, z_um: float) -> None:
        """Move the wrapped scope's stage, unless the stage is set to fail now.

        Parameters
        ----------
        z_um : float
            Target focus-drive position, in µm.

        Raises
        ------
        ScopeError
            When this move is set to fail (the stage stays where it was).
        StageLimitError
            If the wrapped scope refuses the move.
        """
        self.move_attempts += 1
        if self._fails(self.move_attempts, self.fail_after_moves):
            raise ScopeError(
                f"stage failed on move {self.move_attempts} (to z={z_um} µm); "
                f"it stays at z={self.scope.z_um:g} µm"
            )
        self.scope.move_to(z_um)

    def snap(self) -> np.ndarray:
        """Snap an image with the wrapped scope, unless the camera is set to fail now.

        Returns
        -------
        image : (Y, X) ndarray
            The wrapped scope's image.

        Raises
        ------
        ScopeError
            When this exposure is set to fail.
        """
        self.snap_attempts += 1
        if self._fails(self.snap_attempts, self.fail_after_snaps):
            raise ScopeError(
                f"camera failed on exposure {self.snap_attempts} (at z={self.scope.z_um:g} µm)"
            )
        return self.scope.snap()

    # Delegated Microscope members -------------------------------------------------------
    @property
    def z_um(self) -> float:
        return self.scope.z_um

    @property
    def z_limits_um(self) -> tuple[float, float]:
        return self.scope.z_limits_um

    @property
    def max_step_um(self) -> float | None:
        return self.scope.max_step_um

    @property
    def pixel_size_um(self) -> float:
        return self.scope.pixel_size_um

    @property
    def optics(self) -> Optics | None:
        return self.scope.optics

    @property
    def exposures(self) -> int:
        return self.scope.exposures

    @property
    def moves(self) -> int:
        return self.scope.moves

    @property
    def travel_um(self) -> float:
        return self.scope.travel_um

    @property
    def elapsed_s(self) -> float:
        return self.scope.elapsed_s

    def reset_counters(self) -> None:
        self.scope.reset_counters()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found on FaultyScope (e.g. true_focus_um).
        if name == "scope":
            raise AttributeError(name)
        return getattr(self.scope, name)

    def __repr__(self) -> str:
        return (
            f"FaultyScope({self.scope!r}, fail_after_snaps={self.fail_after_snaps}, "
            f"fail_after_moves={self.fail_after_moves}, transient={self.transient})"
        )
