"""Errors users see: one line naming the problem and the fix."""

from __future__ import annotations


class FocuskitError(Exception):
    """Base class for errors that the CLI prints as one line and exits non-zero on."""


class ConfigError(FocuskitError, ValueError):
    """An optics, illumination or simulation parameter is invalid."""


class StackFileError(FocuskitError, ValueError):
    """A focal-stack file cannot be read or written as asked.

    The message names the file, the problem and the fix.
    """

    def __init__(self, path: object, problem: str, fix: str) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem} — {fix}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # Rebuilt from its three parts, so it survives a trip through a process pool
        # (the default pickling passes only the message and the constructor refuses it).
        return type(self), (self.path, self.problem, self.fix)


class ModelFileError(ConfigError):
    """A model folder or a training checkpoint cannot be used as it is.

    The message names the file (and the entry or tensor in it), the problem and the fix.
    """

    def __init__(self, path: object, problem: str, fix: str) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem} — {fix}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return type(self), (self.path, self.problem, self.fix)
