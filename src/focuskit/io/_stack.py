"""FocalStack: a (Z, Y, X) image stack with one z position per plane (µm) and its optics."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Optics

__all__ = ["FocalStack", "as_z_list", "is_dask_array", "is_real_numeric", "plain_json", "z_problem"]


def is_dask_array(data: object) -> bool:
    """True for a ``dask.array.Array`` (without importing dask when it is not loaded)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(data, da.Array)


def is_real_numeric(dtype: np.dtype[Any]) -> bool:
    """Integer or floating point: no bool, complex, object, string or structured dtypes."""
    return np.dtype(dtype).kind in "uif"


def plain_json(value: Any, where: str = "metadata") -> Any:
    """Return ``value`` as plain JSON types (dict/list/str/int/float/bool/None).

    NumPy scalars and arrays become Python numbers and lists, tuples become lists.
    Non-string keys, non-finite floats and other objects raise ``ConfigError``.

    Parameters
    ----------
    value : object
        The value to convert.
    where : str, optional
        Name of the value in error messages (default ``"metadata"``).

    Returns
    -------
    plain : dict, list, str, int, float, bool or None
        ``value`` in plain JSON types.

    Raises
    ------
    ConfigError
        For a non-string key, a non-finite float or a type JSON cannot store.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise ConfigError(f"{where} is {f}; JSON metadata must hold finite numbers (use null)")
        return f
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [plain_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where} has key {k!r}; JSON metadata keys must be strings")
            out[k] = plain_json(v, f"{where}.{k}")
        return out
    raise ConfigError(
        f"{where} is a {type(value).__name__}, which JSON cannot store; "
        "use numbers, strings, lists and dicts"
    )


def _z_array(z_um: Any) -> np.ndarray:
    try:
        z = np.array(z_um, dtype=np.float64)  # a copy: the stack owns its z
    except (TypeError, ValueError):
        raise ConfigError(f"z_um must be a 1-D list of numbers (µm), got {z_um!r:.80}") from None
    if z.ndim != 1:
        raise ConfigError(f"z_um must be 1-D (one z per plane), got shape {z.shape}")
    return z


def z_problem(z: np.ndarray) -> str | None:
    """Why ``z`` is not a valid list of plane positions, or None when it is."""
    if z.size == 0:
        return "z positions are empty"
    if not np.all(np.isfinite(z)):
        return "z positions contain NaN/Inf"
    if z.size > 1:
        dz = np.diff(z)
        if not (np.all(dz > 0) or np.all(dz < 0)):
            i = int(np.flatnonzero(np.sign(dz) != np.sign(dz[0]))[0]) if dz[0] != 0 else 0
            return (
                "z positions are not strictly monotonic "
                f"(z[{i}] = {z[i]:g}, z[{i + 1}] = {z[i + 1]:g})"
            )
    return None


@dataclass(eq=False)
class FocalStack:
    """A focal stack: planes ``data[k]`` imaged with the focal plane at ``z_um[k]`` (µm).

    ``data`` is (Z, Y, X) real numeric (NumPy, or a Dask array kept lazy); ``z_um`` holds
    one strictly monotonic position per plane; ``pixel_size_um`` is the pixel size at the
    sample; ``focus_z_um`` the true in-focus z when known (e.g. simulated); ``metadata``
    plain-JSON extras (sample, seed, drift, provenance ...). Invalid values raise
    ``focuskit.ConfigError``.

    Attributes
    ----------
    data : (Z, Y, X) ndarray or dask.array.Array
        The planes, real numeric (uint/int/float), not empty.
    z_um : (Z,) ndarray of float64
        Focal-plane position of each plane, in µm, strictly monotonic; read-only.
    pixel_size_um : float
        Pixel size at the sample, in µm (finite, > 0).
    optics : Optics or None, optional
        The microscope, when known.
    focus_z_um : float or None, optional
        True in-focus z, in µm, when known.
    metadata : dict, optional
        Plain-JSON extras.

    Raises
    ------
    ConfigError
        If any value is invalid.
    """

    data: Any
    z_um: np.ndarray
    pixel_size_um: float
    optics: Optics | None = None
    focus_z_um: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = self.data
        if not (isinstance(data, np.ndarray) or is_dask_array(data)):
            try:
                data = np.asarray(data)
            except Exception as exc:
                raise ConfigError(
                    f"stack data must be an array, got {type(self.data).__name__}: {exc}"
                ) from None
        if data.ndim != 3:
            raise ConfigError(f"stack data must be 3-D (Z, Y, X), got shape {tuple(data.shape)}")
        if min(data.shape) < 1:
            raise ConfigError(f"stack data must not be empty, got shape {tuple(data.shape)}")
        if not is_real_numeric(data.dtype):
            raise ConfigError(
                f"stack data must be real numeric (uint/int/float), got dtype {data.dtype}"
            )
        self.data = data

        z = _z_array(self.z_um)
        if z.size != data.shape[0]:
            raise ConfigError(
                f"z_um has {z.size} positions for {data.shape[0]} planes; give one per plane"
            )
        problem = z_problem(z)
        if problem:
            raise ConfigError(f"{problem}; give one strictly increasing or decreasing z per plane")
        z.flags.writeable = False
        self.z_um = z

        px = self.pixel_size_um
        if isinstance(px, bool) or not isinstance(px, (int, float, np.integer, np.floating)):
            raise ConfigError(f"pixel_size_um must be a number (µm), got {px!r}")
        if not (math.isfinite(px) and px > 0):
            raise ConfigError(f"pixel_size_um must be finite and > 0 (µm), got {px!r}")
        self.pixel_size_um = float(px)

        if self.optics is not None and not isinstance(self.optics, Optics):
            raise ConfigError(
                f"optics must be a focuskit.optics.Optics or None, got {type(self.optics).__name__}"
            )

        if self.focus_z_um is not None:
            f = self.focus_z_um
            if isinstance(f, bool) or not isinstance(f, (int, float, np.integer, np.floating)):
                raise ConfigError(f"focus_z_um must be a number (µm) or None, got {f!r}")
            if not math.isfinite(f):
                raise ConfigError(f"focus_z_um must be finite, got {f!r}")
            self.focus_z_um = float(f)

        if not isinstance(self.metadata, Mapping):
            raise ConfigError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        self.metadata = plain_json(self.metadata)

    @classmethod
    def from_simulation(cls, simulated: Any) -> FocalStack:
        """The stack of a :class:`focuskit.simulate.SimulatedStack`.

        Also anything with its ``data``, ``z_um``, ``pixel_size_um``, ``optics``, ``focus_z_um``
        and ``metadata``: the simulation's truth — focus, sample, seed, drift — travels in the
        stack.

        Parameters
        ----------
        simulated : SimulatedStack
            The rendered stack (z and pixel size in µm).

        Returns
        -------
        stack : FocalStack
            The same data, z positions, pixel size, optics, focus and metadata.

        Raises
        ------
        ConfigError
            If a value is invalid for a stack.
        """
        return cls(
            simulated.data,
            simulated.z_um,
            simulated.pixel_size_um,
            simulated.optics,
            simulated.focus_z_um,
            dict(simulated.metadata),
        )

    # Shape and planes -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(Z, Y, X) in planes and pixels."""
        z, y, x = (int(n) for n in self.data.shape)
        return z, y, x

    @property
    def dtype(self) -> np.dtype[Any]:
        """NumPy dtype of the data."""
        return np.dtype(self.data.dtype)

    @property
    def is_lazy(self) -> bool:
        """True when ``data`` is a Dask array."""
        return is_dask_array(self.data)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The planes as a NumPy (Z, Y, X) array.

        Lets array functions (focus measures, …) take a stack directly (a lazy stack is
        computed).

        Parameters
        ----------
        dtype : dtype, optional
            Data type of the result; default the stack's.
        copy : bool, optional
            Return a copy when True.

        Returns
        -------
        data : (Z, Y, X) ndarray
            The planes.
        """
        data = np.asarray(self.data, dtype=dtype)
        return data.copy() if copy else data

    def plane(self, i: int) -> np.ndarray:
        """Plane ``i`` as a NumPy (Y, X) array (computed when the data is lazy).

        Parameters
        ----------
        i : int
            Plane index; negative indices count from the end.

        Returns
        -------
        plane : (Y, X) ndarray
            The plane.

        Raises
        ------
        IndexError
            If ``i`` is out of range.
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"plane {i} out of range for a stack of {n} planes")
        return np.asarray(self.data[i])

    def nearest_plane(self, z: float) -> int:
        """Index of the plane whose z is closest to ``z`` (µm); the first one on a tie.

        Parameters
        ----------
        z : float
            Focal-plane position, in µm.

        Returns
        -------
        index : int
            Index of the nearest plane.

        Raises
        ------
        ConfigError
            If ``z`` is not finite.
        """
        if not math.isfinite(z):
            raise ConfigError(f"z must be finite, got {z!r}")
        return int(np.argmin(np.abs(self.z_um - z)))

    @property
    def z_step_um(self) -> float | None:
        """Median |Δz| between neighbouring planes (µm); None for a single plane."""
        if len(self.z_um) < 2:
            return None
        return float(np.median(np.abs(np.diff(self.z_um))))

    # Metadata ---------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The JSON of ``focuskit info --json`` (plain Python types only).

        Returns
        -------
        info : dict
            ``shape``, ``dtype``, ``z_um`` (µm), ``z_step_um`` (µm), ``pixel_size_um`` (µm),
            ``optics``, ``focus_z_um`` (µm) and ``metadata``.
        """
        return {
            "shape": list(self.shape),
            "dtype": str(self.dtype),
            "z_um": [float(z) for z in self.z_um],
            "z_step_um": self.z_step_um,
            "pixel_size_um": self.pixel_size_um,
            "optics": None if self.optics is None else self.optics.to_dict(),
            "focus_z_um": self.focus_z_um,
            "metadata": plain_json(self.metadata),
        }

    def __repr__(self) -> str:
        z = self.z_um
        kind = "dask" if self.is_lazy else "numpy"
        optics = (
            "None"
            if self.optics is None
            else f"{self.optics.na} NA {type(self.optics.illumination).__name__}"
        )
        return (
            f"FocalStack(shape={self.shape}, dtype={self.dtype}, data={kind}, "
            f"z_um={z[0]:g}…{z[-1]:g} ({len(z)} planes), pixel_size_um={self.pixel_size_um:g}, "
            f"optics={optics}, focus_z_um={self.focus_z_um})"
        )


def as_z_list(z: Sequence[float] | np.ndarray) -> list[float]:
    """z positions as a plain list of floats (for JSON)."""
    return [float(v) for v in np.asarray(z, dtype=np.float64).reshape(-1)]
