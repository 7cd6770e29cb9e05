"""Atomic writes, and the rules every output of a command follows.

A file or folder is written to a hidden temporary sibling, then renamed onto its target:
a reader sees the old output or the new one, never half of either. Interrupts (SIGINT, and
SIGTERM like SIGINT) remove the temporary output; the renames themselves are never split by
one. A temporary output left by a killed process (SIGKILL, a crash) is cleaned, or named,
the next time that target is checked.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

from focuskit._errors import StackFileError

__all__ = [
    "atomic_output",
    "check_output_folder",
    "check_target",
    "record_writes",
    "signals_held",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Temporary siblings are named ``.<name>.<kind>-<host>-<pid>-<random>``: the host and the
# process say whether the writer is gone (its leftovers may be cleaned) or may still be
# writing (they are only reported). Versions before 0.3 wrote ``.<name>.<kind>-<random>``.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>tmp|old|probe)-(?:(?P<host>[0-9a-f]{4})-(?P<pid>\d+)-)?[0-9a-f]{8}$"
)
# Errors of the place written to, not of focuskit: one line naming the target and the fix.
_PLACE_FIXES = {
    errno.EACCES: "make the folder writable or choose another {label}",
    errno.EPERM: "make the folder writable (chattr -i if immutable) or choose another {label}",
    errno.EROFS: "choose another {label} on a writable file system",
    errno.ENOSPC: "free some space or choose another {label}",
    errno.EDQUOT: "free some space or choose another {label}",
    errno.ENAMETOOLONG: "choose a shorter {label}",
}
_FS_IOC_GETFLAGS = 0x80086601  # Linux: read ext2-style inode flags
_LOCKED_FLAGS = 0x10 | 0x20  # FS_IMMUTABLE_FL | FS_APPEND_FL: no rename onto, no unlink
_WRITE_LOGS: list[list[Path]] = []


class _Terminated(BaseException):
    """SIGTERM arrived during a write while its default action (terminate) was in effect."""


# --- signals ------------------------------------------------------------------------------


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Keep SIGINT/SIGTERM pending while handlers are swapped (POSIX; a no-op elsewhere)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on the first one that came.

    For steps that must not be cut in two: a rename sequence, or a call that leaves a writer
    running in another thread when interrupted (Zarr writes chunks from its own event loop).
    Outside the main thread signals cannot be handled, and the block runs as it is.

    Returns
    -------
    context : contextlib.AbstractContextManager of None
        ``with signals_held(): ...``; a signal held during the block is raised again, through
        the handler in effect before it, when the block ends.
    """
    if not _main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    saved: dict[int, Any] = {}
    try:
        with _signals_blocked():
            for sig in _SIGNALS:
                old = signal.getsignal(sig)
                if old is None or old == signal.SIG_IGN:
                    continue
                saved[sig] = old
                signal.signal(sig, hold)
        yield
    finally:
        with _signals_blocked():
            for sig, old in saved.items():
                signal.signal(sig, old)
        if pending:
            signal.raise_signal(pending[0])


@contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """Under SIGTERM's default action, turn it into an exception for the block, so the
    temporary output is removed, then terminate as SIGTERM would have."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield  # someone handles SIGTERM already (the CLI: like SIGINT)
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
        raise  # pragma: no cover - the process has ended
    finally:
        if signal.getsignal(signal.SIGTERM) is terminate:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- what was written ---------------------------------------------------------------------


@contextmanager
def record_writes() -> Iterator[list[Path]]:
    """Collect the outputs that atomic writes complete during the block.

    A command interrupted half-way can then say what it wrote rather than guess.

    Returns
    -------
    context : contextlib.AbstractContextManager of list of pathlib.Path
        ``with record_writes() as written``: ``written`` fills with each target as its
        rename completes.
    """
    log: list[Path] = []
    _WRITE_LOGS.append(log)
    try:
        yield log
    finally:
        _WRITE_LOGS.remove(log)


# --- permissions --------------------------------------------------------------------------


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: read it the only portable way, and put it back
    os.umask(mask)
    return mask


def _give_normal_mode(path: Path, directory: bool) -> None:
    """What a plain ``open`` or ``mkdir`` would have given, whatever the writer chose."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


# --- temporary siblings -------------------------------------------------------------------


def _temp_sibling(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def _writer_gone(host: str | None, pid: str | None) -> bool:
    """True when the process that made a temporary sibling has certainly ended."""
    if host != _HOST or pid is None or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def _settle_leftovers(target: Path) -> list[str]:
    """Clean what an interrupted earlier write of ``target`` left; name what may be live.

    A moved-aside old folder (``.old``) whose writer died between the two renames of a
    folder swap is put back when the target is missing: the old complete output returns.
    """
    parent = target.parent
    if not parent.is_dir():
        return []
    notes: list[str] = []
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(f".{target.name}.")]
    except OSError:
        return []
    for entry in sorted(entries):
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["name"] != target.name:
            continue
        if not _writer_gone(match["host"], match["pid"]):
            notes.append(
                f"{entry}: a temporary output of another, maybe running, write of {target.name}"
                " — delete it if no focuskit process is writing there"
            )
            continue
        if match["kind"] == "old" and not (target.exists() or target.is_symlink()):
            try:
                os.replace(entry, target)
            except OSError:
                notes.append(f"{entry}: the previous {target.name}, moved aside — rename it back")
            else:
                notes.append(f"{target}: put back the previous output (an overwrite was killed)")
            continue
        _remove(entry)
        if entry.exists():
            notes.append(f"{entry}: left by an interrupted write; could not remove it")
        else:
            notes.append(f"removed {entry.name}, left by an interrupted write of {target.name}")
    return notes


def _probe_folder(folder: Path, target: Path, label: str) -> None:
    """Create and delete a hidden file in ``folder``: the only sure test that it is writable
    (permission bits say nothing of read-only mounts, immutable folders or root)."""
    probe = _temp_sibling(folder / target.name, "probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        fix = _PLACE_FIXES.get(exc.errno or 0, "choose another {label}")
        raise StackFileError(
            target,
            f"cannot write in {str(folder) or '.'!r} ({exc.strerror or exc})",
            fix.format(label=label),
        ) from None
    os.close(fd)
    with suppress(OSError):
        os.unlink(probe)


def _locked(path: Path) -> bool:
    """An immutable or append-only file or folder: nothing may be renamed onto it."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (ImportError, OSError):
        return False
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
        return bool(int.from_bytes(buf[:4], "little") & _LOCKED_FLAGS)
    except OSError:
        return False
    finally:
        os.close(fd)


# --- the rules ----------------------------------------------------------------------------


def _inside(inner: Path, outer: Path) -> bool:
    return outer in inner.parents


def _same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_folder(folder: Path, *, label: str = "-o") -> None:
    """Refuse a folder that outputs will be written into (created if missing) when it cannot be.

    Parameters
    ----------
    folder : pathlib.Path
        The folder; when missing, its nearest existing ancestor must be a writable folder.
    label : str, optional
        The option that named it, for the message (default ``-o``).

    Raises
    ------
    StackFileError
        If ``folder`` (or the ancestor it would be created in) is a file or is not writable.
    """
    existing = folder
    while not (existing.exists() or existing.is_symlink()):
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise StackFileError(
            folder,
            f"{str(existing)!r} is a file, not a folder",
            f"choose another {label}",
        )
    _probe_folder(existing, folder, label)


def check_target(
    target: Path,
    *,
    overwrite: bool,
    protect: Iterable[str | os.PathLike[str]] = (),
    directory: bool | None = None,
    label: str = "-o",
    make_parents: bool = False,
) -> list[str]:
    """Refuse a write to ``target`` that would touch an input, replace a file unasked, or fail.

    Checked before any work, in this order: ``target`` is not one of ``protect`` (the
    command's inputs), is not inside one (a folder such as an OME-Zarr) and does not hold one,
    even with ``overwrite``; what an interrupted earlier write of ``target`` left is cleaned
    (or named, while its writer may still run); ``target`` does not exist unless
    ``overwrite``, is of the kind to be written, and is not immutable; its folder exists and
    a file can be created in it.

    Parameters
    ----------
    target : pathlib.Path
        The path to be written.
    overwrite : bool
        Allow replacing an existing ``target``.
    protect : iterable of str or os.PathLike, optional
        The command's inputs, never written to.
    directory : bool or None, optional
        ``target`` is written as a folder (True), a file (False), or either (None).
    label : str, optional
        The option that names ``target``, for the message (default ``-o``).
    make_parents : bool, optional
        The writer creates missing parent folders (default False: they must exist).

    Returns
    -------
    notes : list of str
        What was cleaned or found from interrupted earlier writes (often empty).

    Raises
    ------
    StackFileError
        If ``target`` is, is inside or holds a protected input; exists without
        ``overwrite``, as the wrong kind, or immutable; or its folder is missing or not
        writable.
    """
    target = Path(target)
    resolved = target.resolve()
    for p in protect:
        q = Path(p)
        if _same_path(target, q):
            raise StackFileError(
                target, "refusing to overwrite an input of this command", f"choose another {label}"
            )
        if _inside(resolved, q.resolve()):
            raise StackFileError(
                target,
                f"refusing to write inside {str(q)!r}, an input of this command",
                f"choose another {label}",
            )
        if _inside(q.resolve(), resolved):
            raise StackFileError(
                target,
                f"refusing to replace a folder that holds {str(q)!r}, an input of this command",
                f"choose another {label}",
            )
    notes = _settle_leftovers(target)
    exists = target.exists() or target.is_symlink()
    if exists and not overwrite:
        raise StackFileError(
            target, "already exists", f"pass --overwrite or choose another {label}"
        )
    if exists and directory is not None and target.is_dir() != directory:
        kind = "a folder" if target.is_dir() else "a file"
        raise StackFileError(
            target, f"exists and is {kind}", f"remove it or choose another {label}"
        )
    if exists and _locked(target):
        raise StackFileError(
            target,
            "cannot be replaced (it is immutable or append-only)",
            f"clear that with chattr, or choose another {label}",
        )
    parent = target.parent
    if make_parents:
        check_output_folder(parent, label=label)
    elif not parent.is_dir():
        raise StackFileError(
            target,
            f"output directory {str(parent) or '.'!r} does not exist",
            f"create it first or choose another {label}",
        )
    else:
        _probe_folder(parent, target, label)
    return notes


# --- writing ------------------------------------------------------------------------------


def _place_error(target: Path, exc: OSError) -> StackFileError | None:
    fix = _PLACE_FIXES.get(exc.errno or 0)
    if fix is None:
        return None
    return StackFileError(
        target, f"cannot write it ({exc.strerror or exc})", fix.format(label="output path")
    )


def _commit(
    targets: Sequence[Path], tmps: Sequence[Path], overwrite: bool, directory: bool
) -> None:
    """Rename each temporary output onto its target, in order, after checking them all."""
    for target, tmp in zip(targets, tmps, strict=True):
        if not tmp.exists():
            raise StackFileError(target, "the writer produced no output", "report this as a bug")
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise StackFileError(target, "exists", "pass --overwrite or choose another -o")
        if target.exists() and target.is_dir() != directory:
            kind = "a directory" if target.is_dir() else "a file"
            raise StackFileError(target, f"exists and is {kind}", "remove it or choose another -o")
        _give_normal_mode(tmp, directory)
        if not directory:
            with open(tmp, "rb") as f:  # the data reach the disk before the rename
                os.fsync(f.fileno())
    for target, tmp in zip(targets, tmps, strict=True):
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
            os.replace(tmp, target)
        for log in _WRITE_LOGS:
            log.append(target)


@contextmanager
def atomic_outputs(
    targets: Sequence[Path], *, overwrite: bool, directory: bool = False
) -> Iterator[list[Path]]:
    """Yield temporary siblings of several outputs that belong together; on success rename
    each onto its target, in the order given, with interrupts held across the renames.

    The NPY writer renames the array first and its sidecar last. On any exception every
    temporary output is removed and the targets are left as they were.

    Parameters
    ----------
    targets : sequence of pathlib.Path
        The final paths, in the order to rename them.
    overwrite : bool
        Allow replacing existing targets.
    directory : bool, optional
        The outputs are folders (e.g. OME-Zarr) rather than files (default False).

    Returns
    -------
    context : contextlib.AbstractContextManager of list of pathlib.Path
        ``with atomic_outputs([a, b], ...) as (tmp_a, tmp_b)``.

    Raises
    ------
    StackFileError
        If a writer produced nothing, a target exists without ``overwrite`` or is of the
        other kind, or the place cannot be written (permissions, read-only, disk full).
    """
    tmps = [_temp_sibling(Path(t), "tmp") for t in targets]
    with _sigterm_cleans_up():
        try:
            yield tmps
            with signals_held():
                _commit([Path(t) for t in targets], tmps, overwrite, directory)
        except BaseException as exc:
            with signals_held():
                for tmp in tmps:
                    _remove(tmp)
            if isinstance(exc, OSError):
                better = _place_error(Path(targets[0]), exc)
                if better is not None:
                    raise better from None
            raise


@contextmanager
def atomic_output(target: Path, *, overwrite: bool, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success rename it onto ``target``.

    On any exception (an interrupt included: SIGTERM acts as SIGINT during the write) the
    temporary output is removed and ``target`` is left as it was. A directory target
    (``directory=True``, e.g. OME-Zarr) that already exists is moved aside first, replaced by
    the new one, then deleted; interrupts wait until that swap is done. The output gets the
    permissions a plain ``open``/``mkdir`` gives under the user's umask.

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
        If the writer produced nothing, ``target`` exists and ``overwrite`` is False,
        ``target`` is a file where a directory is written (or the reverse), or the place
        cannot be written (permissions, read-only, disk full).
    """
    with atomic_outputs([target], overwrite=overwrite, directory=directory) as (tmp,):
        yield tmp
