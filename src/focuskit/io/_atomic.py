"""Atomic writes: write a hidden temporary sibling, then rename it onto the target."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from focuskit._errors import StackFileError

__all__ = ["atomic_output", "check_target"]


def _same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_target(
    target: Path, *, overwrite: bool, protect: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Refuse a write to ``target`` that would clobber an input, an existing file or fail.

    ``protect`` lists the command's inputs: writing onto one of them (or onto a directory
    that holds one) is refused even with ``overwrite=True``.

    Parameters
    ----------
    target : pathlib.Path
        The path to be written.
    overwrite : bool
        Allow replacing an existing ``target``.
    protect : iterable of str or os.PathLike, optional
        The command's inputs, never overwritten.

    Raises
    ------
    StackFileError
        If ``target`` is (or holds) a protected input, its directory does not exist, or it
        exists and ``overwrite`` is False.
    """
    resolved = target.resolve()
    for p in protect:
        q = Path(p)
        if _same_path(target, q) or resolved in q.resolve().parents:
            raise StackFileError(
                target, "refusing to overwrite an input of this command", "choose another -o"
            )
    parent = target.parent
    if not parent.is_dir():
        raise StackFileError(
            target,
            f"output directory {str(parent) or '.'!r} does not exist",
            "create it first or choose another -o",
        )
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise StackFileError(target, "exists", "pass --overwrite or choose another -o")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def _temp_sibling(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.{tag}-{secrets.token_hex(4)}"


@contextmanager
def atomic_output(target: Path, *, overwrite: bool, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success rename it onto ``target``.

    On any exception the temporary output is removed and ``target`` is left as it was.
    A directory target (``directory=True``, e.g. OME-Zarr) that already exists is moved
    aside first, replaced by the new one, then deleted.

    Parameters
    ----------
    target : pathlib.Path
        The final path.
    overwrite : bool
        Allow replacing an existing ``target``.
    directory : bool, optional
        The output is a directory (e.g. OME-Zarr) rather than a file (default False).

    Returns
    -------
    context : contextlib.AbstractContextManager of pathlib.Path
        A context manager; ``with atomic_output(...) as tmp`` gives the hidden temporary
        sibling path to write.

    Raises
    ------
    StackFileError
        If the writer produced nothing, ``target`` exists and ``overwrite`` is False, or
        ``target`` is a file where a directory is written (or the reverse).
    """
    tmp = _temp_sibling(target, "tmp")
    try:
        yield tmp
        if not tmp.exists():
            raise StackFileError(target, "the writer produced no output", "report this as a bug")
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise StackFileError(target, "exists", "pass --overwrite or choose another -o")
        if target.exists() and target.is_dir() != directory:
            kind = "a directory" if target.is_dir() else "a file"
            raise StackFileError(target, f"exists and is {kind}", "remove it or choose another -o")
        if directory and target.exists():
            old = _temp_sibling(target, "old")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            if not directory:
                with open(tmp, "rb") as f:  # the data reach the disk before the rename
                    os.fsync(f.fileno())
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
