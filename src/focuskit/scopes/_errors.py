"""Errors a microscope raises: the stage refused a move, or the hardware failed."""

from __future__ import annotations

from focuskit._errors import FocuskitError


class StageLimitError(FocuskitError, ValueError):
    """A focus-drive move was refused before anything moved.

    Raised when the target is not a finite number, lies outside the stage's z limits,
    or is farther than the largest single step allowed. The stage stays where it was.

    Parameters
    ----------
    message : str
        What was refused and why.
    target_z_um : object, optional
        The refused target (µm, or whatever was given).
    z_um : float, optional
        Where the stage stays, in µm.

    Attributes
    ----------
    target_z_um : object
        The refused target.
    z_um : float or None
        Where the stage stays, in µm.
    """

    def __init__(
        self, message: str, *, target_z_um: object = None, z_um: float | None = None
    ) -> None:
        self.target_z_um = target_z_um
        self.z_um = z_um
        super().__init__(message)


class ScopeError(FocuskitError, RuntimeError):
    """The camera or the stage failed (or an operation on the scope was aborted)."""
