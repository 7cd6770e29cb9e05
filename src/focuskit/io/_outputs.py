"""One rule for every file a command writes, checked before any work."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from focuskit._errors import StackFileError
from focuskit.io._atomic import check_target
from focuskit.io._formats import _format_of, _sidecar_paths

__all__ = ["check_outputs", "input_files", "output_files"]

PathLike = str | os.PathLike[str]


def output_files(path: PathLike) -> list[Path]:
    """Every file that writing ``path`` creates: the path and, for NPY, its sidecar.

    Parameters
    ----------
    path : str or os.PathLike
        An output path.

    Returns
    -------
    files : list of pathlib.Path
        ``path``, then ``<path>.json`` when ``path`` is an NPY stack.
    """
    target = Path(path)
    if _format_of(target) == "npy":
        return [target, _sidecar_paths(target)[0]]
    return [target]


def input_files(path: PathLike) -> list[Path]:
    """Every file that reading ``path`` may read: the path and the sidecars beside it.

    Parameters
    ----------
    path : str or os.PathLike
        An input path (a stack, an image, a z file, a model folder …).

    Returns
    -------
    files : list of pathlib.Path
        ``path``, then each existing sidecar (``<path>.json``, ``<stem>.json``).
    """
    source = Path(path)
    return [source, *(p for p in _sidecar_paths(source) if p != source and p.is_file())]


def _pairs(
    outputs: Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]],
) -> list[tuple[str, Path]]:
    items = outputs.items() if isinstance(outputs, Mapping) else outputs
    return [(label, Path(p)) for label, p in items if p is not None]


def _overlap(a: Path, b: Path) -> bool:
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or ra in rb.parents or rb in ra.parents


def check_outputs(
    outputs: Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]],
    *,
    overwrite: bool,
    inputs: Iterable[PathLike | None] = (),
    make_parents: bool = False,
) -> list[str]:
    """Refuse, before any work, a command whose outputs cannot all be written as asked.

    Every file a command writes follows one rule (:func:`focuskit.io.check_target`): no
    input is written, written into or replaced (every file read counts, sidecars included);
    an existing file is replaced only with ``overwrite``; its folder exists and is writable.
    Companion files count as outputs (an NPY stack's ``<file>.json``), and no two outputs
    may be the same path or one inside the other.

    Parameters
    ----------
    outputs : mapping or iterable of (str, path or None)
        Each output by the option that names it (``{"-o": out, "--plot": png}``); None
        entries are skipped.
    overwrite : bool
        Allow replacing existing outputs.
    inputs : iterable of str, os.PathLike or None, optional
        Every path the command reads (None entries are skipped).
    make_parents : bool, optional
        The command creates missing parent folders (default False: they must exist).

    Returns
    -------
    notes : list of str
        What was cleaned or found from interrupted earlier writes (often empty).

    Raises
    ------
    StackFileError
        If two outputs collide, or one breaks the rule above.
    """
    pairs = [(label, file) for label, path in _pairs(outputs) for file in output_files(path)]
    for i, (label_a, a) in enumerate(pairs):
        for label_b, b in pairs[i + 1 :]:
            if _overlap(a, b):
                both = label_a if label_a == label_b else f"{label_a} and {label_b}"
                raise StackFileError(
                    b,
                    f"{both} would both write {'here' if a.resolve() == b.resolve() else a}",
                    "give each output its own path",
                )
    protect = [file for p in inputs if p is not None for file in input_files(p)]
    notes: list[str] = []
    for label, path in pairs:
        notes += check_target(
            path,
            overwrite=overwrite,
            protect=protect,
            directory=True if _format_of(path) == "zarr" else (False if path.suffix else None),
            label=label,
            make_parents=make_parents,
        )
    return notes
