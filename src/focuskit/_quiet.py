"""Keep file libraries quiet: what tifffile, Pillow, imageio or zarr log or warn while
focuskit reads a file is collected, not printed, so that a bad file ends in one error line.

The readers decide what the collected messages mean (tifffile logs, rather than raises, on a
broken page chain); nothing a library says reaches stderr on its own.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LibraryMessages", "describe", "image_problem", "library_messages"]

# The loggers of the libraries focuskit reads files with; their child loggers
# (``PIL.PngImagePlugin``, ``zarr.core.array``, ...) propagate into these.
_LIBRARY_LOGGERS = (
    "tifffile",
    "imagecodecs",
    "PIL",
    "imageio",
    "skimage",
    "zarr",
    "numcodecs",
)
# Longest library message kept in an error line.
_MAX_CHARS = 300


@dataclass
class LibraryMessages:
    """What libraries logged (``errors``: level ERROR and above; ``others``) or warned."""

    errors: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Collector(logging.Handler):
    """One handler on every library logger while any read is running, feeding each active
    ``library_messages`` block (the records may come from a library's own threads)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.active: list[LibraryMessages] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = describe(record.getMessage())
        except Exception:  # a library's malformed log call must not break the read
            text = str(record.msg)
        for messages in list(self.active):
            (messages.errors if record.levelno >= logging.ERROR else messages.others).append(text)


_lock = threading.Lock()
_collector = _Collector()
_saved_propagate: dict[str, bool] = {}


def _attach(messages: LibraryMessages) -> None:
    with _lock:
        if not _collector.active:
            for name in _LIBRARY_LOGGERS:
                logger = logging.getLogger(name)
                _saved_propagate[name] = logger.propagate
                logger.propagate = False  # not to the root logger, nor to logging.lastResort
                logger.addHandler(_collector)
        _collector.active.append(messages)


def _detach(messages: LibraryMessages) -> None:
    with _lock:
        _collector.active.remove(messages)
        if not _collector.active:
            for name in _LIBRARY_LOGGERS:
                logger = logging.getLogger(name)
                logger.removeHandler(_collector)
                logger.propagate = _saved_propagate.pop(name, True)


@contextmanager
def library_messages(*, warnings_too: bool = True) -> Iterator[LibraryMessages]:
    """Collect what file libraries log or warn inside the block instead of printing it.

    Parameters
    ----------
    warnings_too : bool, optional
        Also record warnings (default True). Off in worker threads: ``warnings`` keeps one
        process-wide filter list, which ``warnings.catch_warnings`` is not safe to swap
        from several threads.

    Returns
    -------
    messages : LibraryMessages
        Filled while the block runs: log messages at ERROR and above, other log messages,
        and warnings, each as one line.
    """
    messages = LibraryMessages()
    _attach(messages)
    try:
        if not warnings_too:
            yield messages
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.warnings.extend(describe(str(w.message)) for w in caught)
    finally:
        _detach(messages)


def describe(problem: object) -> str:
    """A library's exception or message as one short line (type name kept for exceptions).

    Parameters
    ----------
    problem : BaseException or str
        What the library raised or said.

    Returns
    -------
    text : str
        Its text with line breaks and runs of blanks collapsed, at most 300 characters.
    """
    if isinstance(problem, BaseException):
        text = str(problem)
        name = type(problem).__name__
        text = f"{name}: {text}" if text else name
    else:
        text = str(problem)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def image_problem(path: Path, exc: BaseException) -> str:
    """What is wrong with an image file a library failed to read, as one line.

    When Pillow does not know the file as an image at all, say so: imageio's own message
    then lists plugins to install, which would not help.

    Parameters
    ----------
    path : pathlib.Path
        The image file.
    exc : BaseException
        What the reading library raised.

    Returns
    -------
    text : str
        The problem, one line.
    """
    try:
        from PIL import Image, UnidentifiedImageError

        with library_messages(), Image.open(path):
            pass
    except UnidentifiedImageError:
        return f"not a {path.suffix.lstrip('.').upper()} or other image file Pillow knows"
    except Exception:  # Pillow knows the format; the original error says more
        pass
    return describe(exc)
