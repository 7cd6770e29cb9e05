"""What a model folder holds, checked before anything is built from it: one typed check of
``config.json`` for every model kind, and one of the arrays in ``weights.safetensors``.

Each model class declares its ``config.json`` entries as a :class:`Section` of typed
entries (:class:`Number`, :class:`Flag`, :class:`Text`, :class:`Numbers`, nested
sections, :class:`Nullable`); :func:`check_config` names the first entry that is missing,
unknown or of the wrong type. :func:`check_arrays` does the same for tensors: a missing or
unexpected name, a shape or data type the architecture does not have, NaN or infinity.
A damaged or hand-edited folder is then refused in one line naming the file, the entry
and the fix, never with a ``KeyError`` or a page of torch text.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ModelFileError


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _named(name: str) -> str:
    return f'"{name}"' if name else "the file"


def _key(key: str) -> str:
    """A key as it may be shown in one line: JSON escapes, no quotes (they are added)."""
    return json.dumps(key, ensure_ascii=False)[1:-1]


class Spec:
    """What one JSON value must be (the base of the typed entries)."""

    def describe(self) -> str:
        """What the value must be, for messages ("a number > 0", "an object" …).

        Returns
        -------
        text : str
            A short description.
        """
        raise NotImplementedError

    def problem(self, value: Any, name: str) -> str | None:
        """What is wrong with ``value`` as the entry ``name``, or None when it is fine.

        Parameters
        ----------
        value : object
            The parsed JSON value.
        name : str
            Its dotted name in the file (``ood.distance_limit``), for the message.

        Returns
        -------
        problem : str or None
            One sentence naming the entry, what it must be and what it is.
        """
        raise NotImplementedError

    def _wrong(self, value: Any, name: str) -> str:
        return f"{_named(name)} must be {self.describe()}, got {_show(value)}"


@dataclass(frozen=True)
class Number(Spec):
    """A finite JSON number, optionally whole and within bounds.

    Attributes
    ----------
    lo, hi : float or None
        Bounds (None: unbounded).
    lo_open, hi_open : bool
        Whether the bound itself is excluded.
    whole : bool
        Only whole numbers (JSON integers).
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    whole: bool = False

    def describe(self) -> str:
        bounds = self.bounds()
        return ("a whole number" if self.whole else "a number") + (f" {bounds}" if bounds else "")

    def bounds(self) -> str:
        """The bounds in words (``> 0``, ``in [0, 1)``), empty when unbounded.

        Returns
        -------
        text : str
            The bounds, for messages.
        """
        if self.lo is not None and self.hi is not None:
            if self.lo == self.hi:
                return f"= {self.lo:g}"
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"in {left}{self.lo:g}, {self.hi:g}{right}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '≥'} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '≤'} {self.hi:g}"
        return ""

    def problem(self, value: Any, name: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self._wrong(value, name)
        if self.whole and not isinstance(value, int):
            return self._wrong(value, name)
        if not math.isfinite(value):
            return self._wrong(value, name)
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return self._wrong(value, name)
        if self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)):
            return self._wrong(value, name)
        return None


@dataclass(frozen=True)
class Flag(Spec):
    """A JSON ``true`` or ``false``."""

    def describe(self) -> str:
        return "true or false"

    def problem(self, value: Any, name: str) -> str | None:
        return None if isinstance(value, bool) else self._wrong(value, name)


@dataclass(frozen=True)
class Text(Spec):
    """A JSON string."""

    def describe(self) -> str:
        return "text"

    def problem(self, value: Any, name: str) -> str | None:
        return None if isinstance(value, str) else self._wrong(value, name)


@dataclass(frozen=True)
class Numbers(Spec):
    """A JSON list of numbers.

    Attributes
    ----------
    item : Number
        What each number must be.
    length : int or None
        The exact length (None: any length from ``min_length`` to ``max_length``).
    min_length : int
        The shortest list allowed.
    max_length : int
        The longest list allowed.
    increasing : bool
        Each number larger than the one before (e.g. a range ``[lo, hi]``).
    """

    item: Number = field(default_factory=Number)
    length: int | None = None
    min_length: int = 1
    max_length: int = 1024
    increasing: bool = False

    def describe(self) -> str:
        count = (
            f"{self.length}" if self.length is not None else f"{self.min_length}–{self.max_length}"
        )
        order = " increasing" if self.increasing else ""
        noun = "whole numbers" if self.item.whole else "numbers"
        bounds = self.item.bounds()
        return f"a list of {count}{order} {noun}" + (f" {bounds}" if bounds else "")

    def problem(self, value: Any, name: str) -> str | None:
        if not isinstance(value, list):
            return self._wrong(value, name)
        if self.length is not None and len(value) != self.length:
            return self._wrong(value, name)
        if not self.min_length <= len(value) <= self.max_length:
            return self._wrong(value, name)
        for i, item in enumerate(value):
            if self.item.problem(item, f"{name}[{i}]") is not None:
                return self._wrong(value, name)
        if self.increasing and any(b <= a for a, b in itertools.pairwise(value)):
            return self._wrong(value, name)
        return None


@dataclass(frozen=True)
class Nullable(Spec):
    """``null`` or what ``spec`` says.

    Attributes
    ----------
    spec : Spec
        What a value other than null must be.
    """

    spec: Spec

    def describe(self) -> str:
        return f"{self.spec.describe()} or null"

    def problem(self, value: Any, name: str) -> str | None:
        if value is None:
            return None
        inner = self.spec.problem(value, name)
        if inner is None or (isinstance(self.spec, Section) and isinstance(value, dict)):
            return inner  # inside an object, the entry at fault is named
        return self._wrong(value, name)


@dataclass(frozen=True)
class Section(Spec):
    """A JSON object with named entries.

    Attributes
    ----------
    required : mapping of str to Spec
        Entries that must be present, and what each must be.
    optional : mapping of str to Spec
        Entries that may be absent (or present as their spec says).
    others : bool
        Whether entries not named above are allowed (free-form provenance) or refused.
    """

    required: Mapping[str, Spec] = field(default_factory=dict)
    optional: Mapping[str, Spec] = field(default_factory=dict)
    others: bool = False

    def describe(self) -> str:
        return "an object"

    def problem(self, value: Any, name: str) -> str | None:
        if not isinstance(value, dict):
            return f"{_named(name)} must be an object, got {_kind(value)}"
        prefix = f"{name}." if name else ""
        for key, spec in self.required.items():
            if key not in value:
                where = f'"{name}" has' if name else "has"
                return f'{where} no "{key}" entry'
            found = spec.problem(value[key], prefix + key)
            if found is not None:
                return found
        for key, spec in self.optional.items():
            if key in value:
                found = spec.problem(value[key], prefix + key)
                if found is not None:
                    return found
        if not self.others:
            for key in value:
                if key not in self.required and key not in self.optional:
                    where = f'"{name}" has' if name else "has"
                    return f'{where} an unknown entry "{_key(key)}"'
        return None

    def merged(self, other: Section) -> Section:
        """This section with ``other``'s entries added (``other`` wins on a clash).

        Parameters
        ----------
        other : Section
            More entries.

        Returns
        -------
        section : Section
            The union; unknown entries are allowed if either allows them.
        """
        return Section(
            {**self.required, **other.required},
            {**self.optional, **other.optional},
            self.others or other.others,
        )


# Free-form provenance (how a model was trained, on what): any JSON object.
ANY_OBJECT = Section(others=True)
_POSITIVE = Number(lo=0, lo_open=True)
# An Optics.to_dict() entry; Optics.from_dict checks the values inside each part.
OPTICS_SECTION = Section(
    required={"objective": ANY_OBJECT, "wavelength_um": _POSITIVE},
    optional={"camera": ANY_OBJECT, "illumination": ANY_OBJECT, "pixel_size_um": _POSITIVE},
)


def check_config(config: Any, schema: Section, file: str | Path, fix: str) -> None:
    """Refuse a ``config.json`` that does not hold what ``schema`` says, in one line.

    Parameters
    ----------
    config : object
        The parsed JSON.
    schema : Section
        Its entries and their types.
    file : str or Path
        The file, named in the message.
    fix : str
        What the user can do about it, ending the message.

    Raises
    ------
    ModelFileError
        Naming the first entry that is missing, unknown or of the wrong type.
    """
    problem = schema.problem(config, "")
    if problem is not None:
        raise ModelFileError(file, problem, fix)


def check_arrays(
    arrays: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[tuple[int, ...], str]],
    file: str | Path,
    fix: str,
    *,
    prefix: str = "",
    wanted_by: str = "the architecture in config.json",
) -> None:
    """Refuse tensors whose names, shapes or data types are not the expected ones.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The tensors found (by name, without ``prefix``).
    expected : mapping of str to (shape, kind)
        The tensors the architecture has: each shape, and its numpy dtype kind (``"f"``
        floating point, ``"i"`` integer, ``"b"`` boolean).
    file : str or Path
        The file they come from, named in the message.
    fix : str
        What the user can do about it, ending the message.
    prefix : str, optional
        The group they belong to (``"net."``), for the message.
    wanted_by : str, optional
        What the expected layout comes from, for the message.

    Raises
    ------
    ModelFileError
        A tensor missing or unexpected, of another shape or data type, or holding NaN or
        infinity.
    """
    for key in expected:
        if key not in arrays:
            raise ModelFileError(file, f'has no tensor "{prefix}{key}"', fix)
    for key in arrays:
        if key not in expected:
            raise ModelFileError(file, f'has an unexpected tensor "{prefix}{key}"', fix)
    for key, (shape, kind) in expected.items():
        value = arrays[key]
        # torch loads a scalar (BatchNorm's num_batches_tracked) saved as shape (1,).
        if tuple(value.shape) != tuple(shape) and not (shape == () and value.shape == (1,)):
            raise ModelFileError(
                file,
                f'tensor "{prefix}{key}" has shape {tuple(value.shape)}, '
                f"{wanted_by} needs {tuple(shape)}",
                fix,
            )
        found = value.dtype.kind
        if found != kind and not (kind == "i" and found == "u"):
            raise ModelFileError(
                file, f'tensor "{prefix}{key}" holds {value.dtype}, not {_KINDS[kind]}', fix
            )
        if found == "f" and not np.isfinite(value).all():
            raise ModelFileError(file, f'tensor "{prefix}{key}" holds NaN or infinity', fix)


_KINDS = {"f": "floating-point numbers", "i": "integers", "u": "integers", "b": "booleans"}
