"""Plane z positions from a text or CSV file (``--z-file``)."""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

import numpy as np

from focuskit._errors import StackFileError

__all__ = ["read_z_file"]

# Column names taken as the z position, best first; otherwise a single column whose
# name has a word "z" or "defocus" (e.g. "z_offset_um", "defocus_um", "PositionZ").
_PREFERRED = ("z_um", "z", "z_position_um", "position_z_um", "positionz", "z_µm")
_UNITS = {"um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "mm": 1e3}
_FIX = "give one z (µm) per line, or a CSV with a 'z_um' column"


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-zµ]+", name.lower()) if w]


def _is_z_column(name: str) -> bool:
    words = _words(name)
    return (
        name.strip().lower() in _PREFERRED
        or "z" in words
        or "defocus" in words
        or "positionz" in words
    )


def _unit_scale(name: str) -> float:
    for w in reversed(_words(name)):
        if w in _UNITS:
            return _UNITS[w]
    return 1.0


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v


def read_z_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Read plane z positions (µm) from ``path``, one per plane, in file order.

    Accepts a plain list (one number per line; blank lines and ``#`` comments skipped)
    or a CSV/TSV with a header row, taking the column named ``z_um`` / ``z`` or else the
    only column whose name has the word ``z`` or ``defocus`` (``defocus_um``,
    ``z_offset_um``). A ``nm`` or ``mm`` unit in the column name is converted to µm.
    Returns a float64 array; it does not check monotonicity (``read_stack`` does).

    Parameters
    ----------
    path : str or os.PathLike
        The text or CSV/TSV file.

    Returns
    -------
    z_um : (Z,) ndarray of float64
        The z positions, in µm, in file order.

    Raises
    ------
    StackFileError
        If the file is missing, unreadable or empty, no single z column can be found, or a
        value is not a finite number.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise StackFileError(p, "z file not found", "check the path given to --z-file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StackFileError(p, f"cannot read z file ({exc})", _FIX) from None

    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise StackFileError(p, "z file is empty", _FIX)

    # Plain list: every line is one number.
    values = [_number(ln.strip()) for ln in lines]
    if all(v is not None for v in values):
        return _checked(p, np.array(values, dtype=np.float64))

    # CSV with a header.
    delimiter = next((d for d in ",\t;" if d in lines[0]), " ")
    rows = list(
        csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, skipinitialspace=True)
    )
    header = [h.strip() for h in rows[0]]
    if any(_number(h) is not None for h in header if h):
        raise StackFileError(p, f"line 1 {lines[0]!r:.60} is not one number nor a header", _FIX)
    exact = [i for i, h in enumerate(header) if h.lower() in _PREFERRED]
    candidates = exact or [i for i, h in enumerate(header) if _is_z_column(h)]
    if len(candidates) != 1:
        found = ", ".join(repr(header[i]) for i in candidates) if candidates else "none"
        raise StackFileError(
            p,
            f"cannot tell which column holds z (columns {header}; z-like: {found})",
            "name the z column 'z_um' or give one z (µm) per line",
        )
    col = candidates[0]
    scale = _unit_scale(header[col])
    out: list[float] = []
    for n, row in enumerate(rows[1:], start=2):
        cell = row[col].strip() if col < len(row) else ""
        v = _number(cell)
        if v is None:
            raise StackFileError(
                p, f"row {n}, column {header[col]!r}: {cell!r} is not a number", _FIX
            )
        out.append(v * scale)
    if not out:
        raise StackFileError(p, f"column {header[col]!r} has no values", _FIX)
    return _checked(p, np.array(out, dtype=np.float64))


def _checked(p: Path, z: np.ndarray) -> np.ndarray:
    bad = [i for i, v in enumerate(z) if not math.isfinite(v)]
    if bad:
        raise StackFileError(p, f"z value {bad[0] + 1} is {z[bad[0]]} (not finite)", _FIX)
    return z
