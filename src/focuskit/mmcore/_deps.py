"""The optional dependency: pymmcore-plus (``pip install "focuskit[mm]"``), imported only when
a Micro-Manager core is used, and quiet about a missing Micro-Manager installation when
none is needed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from focuskit._errors import FocuskitError

INSTALL_HINT = 'pip install "focuskit[mm]"'
# focuskit.mmcore uses UniMMCore's Python devices as they are in pymmcore-plus 0.18.
MIN_VERSION = (0, 18)


class MMCoreUnavailableError(FocuskitError, ImportError):
    """pymmcore-plus (or useq-schema) is missing or too old for ``focuskit.mmcore``."""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def require_pymmcore_plus() -> Any:
    """The ``pymmcore_plus`` module, or one line saying how to install it.

    Returns
    -------
    module : module
        ``pymmcore_plus`` (version ≥ 0.18).

    Raises
    ------
    MMCoreUnavailableError
        If pymmcore-plus or useq-schema is not installed, or pymmcore-plus is older than 0.18.
    """
    try:
        import pymmcore_plus
        import useq  # noqa: F401 - the acquisitions' schema; pymmcore-plus needs it too
    except ImportError as exc:
        missing = {"pymmcore_plus": "pymmcore-plus", "useq": "useq-schema"}.get(
            str(exc.name), str(exc.name)
        )
        raise MMCoreUnavailableError(
            f"Micro-Manager support needs pymmcore-plus and useq-schema ({missing} is not "
            f"installed): {INSTALL_HINT}"
        ) from None
    version = getattr(pymmcore_plus, "__version__", "0")
    if _version_tuple(version) < MIN_VERSION:
        raise MMCoreUnavailableError(
            f"focuskit.mmcore needs pymmcore-plus ≥ {'.'.join(map(str, MIN_VERSION))}, "
            f"found {version}: {INSTALL_HINT} --upgrade"
        )
    return pymmcore_plus


@contextmanager
def quiet_discovery() -> Iterator[None]:
    """Silence pymmcore-plus's search for a Micro-Manager installation while a core is made.

    A new core looks for Micro-Manager's C++ device adapters and logs an ERROR when it finds
    none. A core of Python devices (focuskit's simulated microscope) needs none, so the
    message is noise there; for a configuration file that names C++ devices,
    :func:`~focuskit.mmcore.load_config` says what is missing instead.

    Yields
    ------
    None
        While inside, pymmcore-plus's logger lets only CRITICAL messages through.
    """
    logger = logging.getLogger("pymmcore-plus")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
