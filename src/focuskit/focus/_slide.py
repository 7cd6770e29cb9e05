"""Slide QC: per-tile focus values of a whole slide, computed chunk-wise with Dask, a focal
surface through them, and the tiles out of focus.

The estimator is any per-tile callable (a focus measure, a blur CNN, a single-shot defocus
model): this module knows nothing about models, so every system can feed it. The slide is
never read whole: each tile is one Dask task that reads its pixels, reduces them to a few
numbers and lets them go, so memory does not grow with the slide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from focuskit._errors import ConfigError
from focuskit.focus._surface import FocalSurface, fit_focal_surface

__all__ = [
    "MeasureTileEstimator",
    "SlideFocusMap",
    "TileEstimator",
    "slide_focus_map",
    "tile_grid",
    "tile_values",
]

EstimateKind = Literal["score", "signed-z", "abs-z"]


class TileEstimator(Protocol):
    """What slide QC asks of a per-tile estimator.

    ``estimator(tile) -> (value, z_um)``: ``value`` the raw output (a focus score, a blur
    score, or the defocus itself), ``z_um`` the defocus it means in µm (NaN when the
    estimator gives none, e.g. a focus measure); both NaN for a tile without signal.
    ``kind`` says what ``z_um`` is: ``"signed-z"`` (single-shot), ``"abs-z"`` (a calibrated
    blur score: |z| only) or ``"score"`` (no z). ``lower_is_sharper`` orients ``value``.
    It must be picklable to run on a process-based or distributed scheduler.
    """

    kind: EstimateKind
    lower_is_sharper: bool

    def __call__(self, tile: np.ndarray, /) -> tuple[float, float]: ...


def tile_grid(shape: tuple[int, ...], tile: int) -> tuple[int, int]:
    """Whole ``tile``² tiles along y and x of an image of ``shape`` (..., Y, X).

    The right and bottom remainders (< ``tile`` pixels) are left out: a partial tile would
    give an estimator less than it was made for.

    Parameters
    ----------
    shape : tuple of int
        The image shape; the last two are (Y, X).
    tile : int
        Tile side, in pixels (≥ 16).

    Returns
    -------
    rows, cols : int
        Tiles along y and x (≥ 1).

    Raises
    ------
    ConfigError
        If ``tile`` is below 16 or larger than the image.
    """
    ny, nx = int(shape[-2]), int(shape[-1])
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 16:
        raise ConfigError(f"--tile must be a whole number of pixels ≥ 16, got {tile!r}")
    if tile > min(ny, nx):
        raise ConfigError(
            f"--tile {tile} is larger than the image ({ny} × {nx} pixels) — use a smaller tile"
        )
    return ny // tile, nx // tile


def _block_values(block: np.ndarray, fn: Callable[[np.ndarray], Any], n_out: int) -> np.ndarray:
    values = np.asarray(fn(np.asarray(block)), dtype=np.float64).reshape(-1)
    if values.size != n_out:
        raise ConfigError(f"a tile estimator returned {values.size} values, expected {n_out}")
    return values.reshape(1, 1, n_out)


def tile_values(
    image: Any,
    tile: int,
    fn: Callable[[np.ndarray], Any],
    *,
    n_out: int = 1,
    compute: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Apply ``fn`` to every whole ``tile``² tile of a 2-D image, one Dask task per tile.

    The image is rechunked to the tile grid (a reader's chunks need not match it) and
    reduced with ``map_blocks``: each task holds one tile, so peak memory is a few tiles
    per worker whatever the slide size. Runs on the active Dask scheduler (see
    ``focuskit.io.compute_context``).

    Parameters
    ----------
    image : (Y, X) ndarray or dask.array.Array
        The slide (NumPy is wrapped, not copied).
    tile : int
        Tile side, in pixels.
    fn : callable
        ``fn(tile_pixels) -> n_out numbers``; picklable for process or distributed workers.
    n_out : int, optional
        How many numbers ``fn`` returns per tile (default 1).
    compute : bool, optional
        Return the computed NumPy array (default) or the lazy Dask array.
    progress : callable, optional
        Called as ``progress(tiles_done, tiles)`` as tiles finish on a local scheduler
        (a distributed scheduler reports on its own dashboard instead).

    Returns
    -------
    values : (rows, cols, n_out) ndarray of float64 (or dask.array.Array)
        ``fn`` of the tile at row ``r``, column ``c`` (pixels ``r·tile … (r+1)·tile``).

    Raises
    ------
    ConfigError
        If the image is not 2-D or ``tile`` does not fit it.
    """
    import dask.array as da

    if image.ndim != 2:
        raise ConfigError(
            f"slide QC needs one 2-D image, got shape {tuple(image.shape)} — pick a plane"
        )
    rows, cols = tile_grid(image.shape, tile)
    arr = image if isinstance(image, da.Array) else da.from_array(image, chunks=(tile, tile))
    arr = arr[: rows * tile, : cols * tile].rechunk((tile, tile))
    out = arr.map_blocks(
        _block_values,
        fn,
        n_out,
        dtype=np.float64,
        chunks=((1,) * rows, (1,) * cols, (n_out,)),
        new_axis=2,
        meta=np.empty((0, 0, 0), dtype=np.float64),
    )
    if not compute:
        return out
    if progress is None:
        return np.asarray(out.compute())
    from dask.callbacks import Callback

    total, done = rows * cols, [0]

    def finished(key: Any, *_: Any) -> None:
        if isinstance(key, tuple) and key[0] == out.name:
            done[0] += 1
            progress(done[0], total)

    progress(0, total)
    with Callback(posttask=finished):
        return np.asarray(out.compute())


@dataclass
class SlideFocusMap:
    """Per-tile focus of a slide, its focal surface and the tiles out of focus.

    Attributes
    ----------
    tile : int
        Tile side, in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    kind : {'score', 'signed-z', 'abs-z'}
        What the estimator gives (see :class:`TileEstimator`).
    value : (rows, cols) ndarray
        The estimator's raw value per tile (NaN: no signal).
    z_um : (rows, cols) ndarray
        Defocus per tile in µm (|z| for ``abs-z``; NaN for ``score``).
    surface : FocalSurface
        Fitted through ``z_um`` when the estimator gives z, else through ``value``.
    residual : (rows, cols) ndarray
        Fitted quantity minus the surface at each tile centre.
    flags : (rows, cols) ndarray of str
        ``""`` (in focus), ``"defocus"`` (|z| above ``max_defocus_um``), ``"off-surface"``
        (more than ``outlier_sigma`` robust σ from the surface, on the blurry side for a
        score), ``"no-signal"`` (the estimator gave NaN).
    max_defocus_um : float or None
        The |z| threshold (µm), when one applies.
    outlier_sigma : float
        The off-surface threshold, in robust σ of the residuals.
    """

    tile: int
    pixel_size_um: float
    kind: EstimateKind
    value: np.ndarray
    z_um: np.ndarray
    surface: FocalSurface
    residual: np.ndarray
    flags: np.ndarray
    max_defocus_um: float | None
    outlier_sigma: float
    lower_is_sharper: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the tile grid."""
        r, c = self.value.shape
        return int(r), int(c)

    @property
    def centres_um(self) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) tile centres from the top-left corner, in µm, each (rows, cols)."""
        rows, cols = self.shape
        step = self.tile * self.pixel_size_um
        y = (np.arange(rows) + 0.5) * step
        x = (np.arange(cols) + 0.5) * step
        yy, xx = np.meshgrid(y, x, indexing="ij")
        return yy, xx

    @property
    def flagged(self) -> np.ndarray:
        """(rows, cols) bool: tiles out of focus (``defocus`` or ``off-surface``)."""
        return np.isin(self.flags, ("defocus", "off-surface"))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per tile, row-major: ``row``, ``col``, ``y_um``, ``x_um`` (centre),
        ``value``, ``z_um``, ``surface``, ``residual``, ``flag`` (the CSV's columns)."""
        yy, xx = self.centres_um
        fitted = self.surface(yy, xx)
        out = []
        for r in range(self.shape[0]):
            for c in range(self.shape[1]):
                out.append(
                    {
                        "row": r,
                        "col": c,
                        "y_um": float(yy[r, c]),
                        "x_um": float(xx[r, c]),
                        "value": float(self.value[r, c]),
                        "z_um": float(self.z_um[r, c]),
                        "surface": float(fitted[r, c]),
                        "residual": float(self.residual[r, c]),
                        "flag": str(self.flags[r, c]),
                    }
                )
        return out

    def summary(self) -> dict[str, Any]:
        """Plain JSON: grid, surface (with ``tilt_deg`` when fitted to z), flag counts."""
        n = self.value.size
        flagged = int(self.flagged.sum())
        surface = self.surface.to_dict()
        surface["fitted_to"] = "z_um" if self.kind != "score" else "value"
        if self.kind != "score":
            surface["tilt_deg"] = self.surface.tilt_deg
        return {
            "tile": self.tile,
            "pixel_size_um": self.pixel_size_um,
            "rows": self.shape[0],
            "cols": self.shape[1],
            "kind": self.kind,
            "surface": surface,
            "max_defocus_um": self.max_defocus_um,
            "outlier_sigma": self.outlier_sigma,
            "flagged": flagged,
            "flagged_fraction": flagged / n if n else 0.0,
            "by_flag": {
                f: int((self.flags == f).sum()) for f in ("defocus", "off-surface", "no-signal")
            },
            "notes": list(self.notes),
        }


def slide_focus_map(
    image: Any,
    tile: int,
    estimator: TileEstimator,
    *,
    pixel_size_um: float,
    order: int = 1,
    max_defocus_um: float | None = None,
    outlier_sigma: float = 3.0,
    progress: Callable[[int, int], None] | None = None,
) -> SlideFocusMap:
    """Per-tile focus of a slide, a robust focal surface through it, and the flagged tiles.

    Each whole ``tile``² tile gets ``estimator(tile) -> (value, z_um)`` as one Dask task
    (:func:`tile_values`). The surface (:func:`fit_focal_surface`, plane or low order) is
    fitted through ``z_um`` when the estimator gives a defocus, else through ``value``. A
    tile is flagged ``defocus`` when ``|z| > max_defocus_um`` (typically DOF/2: half the
    depth of field either side of focus still looks sharp), and ``off-surface`` when its
    residual exceeds ``outlier_sigma`` robust σ (1.4826·MAD) — on the blurry side only
    for a score, either side for z (a fold, a bubble, debris lifted off the slide).

    Parameters
    ----------
    image : (Y, X) ndarray or dask.array.Array
        The slide.
    tile : int
        Tile side, in pixels.
    estimator : TileEstimator
        The per-tile callable.
    pixel_size_um : float
        Pixel size at the sample, in µm (> 0).
    order : int, optional
        Surface order: 1 plane (default), 2 or 3.
    max_defocus_um : float, optional
        |z| above which a tile is out of focus (µm); ignored for a score.
    outlier_sigma : float, optional
        Off-surface threshold in robust σ (default 3; > 0).
    progress : callable, optional
        ``progress(tiles_done, tiles)`` (see :func:`tile_values`).

    Returns
    -------
    focus_map : SlideFocusMap
        Values, z, surface, residuals and flags per tile.

    Raises
    ------
    ConfigError
        If an argument is out of range, or fewer tiles have a value than the surface needs.
    """
    if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ConfigError(f"pixel size must be > 0 µm, got {pixel_size_um!r}")
    if not (math.isfinite(outlier_sigma) and outlier_sigma > 0):
        raise ConfigError(f"--outlier-sigma must be > 0, got {outlier_sigma!r}")
    if max_defocus_um is not None and not (math.isfinite(max_defocus_um) and max_defocus_um > 0):
        raise ConfigError(f"--max-defocus must be > 0 µm, got {max_defocus_um!r}")
    kind = estimator.kind
    if kind not in ("score", "signed-z", "abs-z"):
        raise ConfigError(f"estimator kind must be score, signed-z or abs-z, got {kind!r}")
    values = tile_values(image, tile, estimator, n_out=2, progress=progress)
    value, z = values[..., 0], values[..., 1]
    if kind == "score":
        z = np.full_like(value, np.nan)
    fitted = z if kind != "score" else value
    rows, cols = value.shape
    step = tile * pixel_size_um
    yy, xx = np.meshgrid(
        (np.arange(rows) + 0.5) * step, (np.arange(cols) + 0.5) * step, indexing="ij"
    )
    notes: list[str] = []
    surface = fit_focal_surface(fitted, yy, xx, order=order)
    residual = fitted - surface(yy, xx)
    flags = np.full(value.shape, "", dtype=object)
    # A noise-free surface has σ ≈ 0: rounding must not count as off the surface.
    scale = float(np.nanmax(np.abs(fitted))) if np.isfinite(fitted).any() else 0.0
    limit = outlier_sigma * max(surface.sigma, 1e-6 * scale)
    if kind == "score":
        blurry = residual > limit if estimator.lower_is_sharper else residual < -limit
    else:
        blurry = np.abs(residual) > limit
    flags[blurry & np.isfinite(residual)] = "off-surface"
    if kind != "score" and max_defocus_um is not None:
        flags[np.abs(z) > max_defocus_um] = "defocus"
    if kind == "abs-z":
        notes.append(
            "a blur score gives |z| only: the surface is fitted to |z| and is a plane only "
            "where the slide stays on one side of focus"
        )
    flags[~np.isfinite(fitted)] = "no-signal"
    return SlideFocusMap(
        tile=int(tile),
        pixel_size_um=float(pixel_size_um),
        kind=kind,
        value=value,
        z_um=z,
        surface=surface,
        residual=residual,
        flags=flags.astype(str),
        max_defocus_um=max_defocus_um if kind != "score" else None,
        outlier_sigma=float(outlier_sigma),
        lower_is_sharper=bool(estimator.lower_is_sharper),
        notes=notes,
    )


@dataclass(frozen=True)
class MeasureTileEstimator:
    """A classic focus measure per tile (model-free; larger = sharper): ``(score, NaN)``.

    A constant tile (blank glass, a saturated patch) has no signal: ``(NaN, NaN)``.

    Parameters
    ----------
    measure : str
        Registry name (see ``focuskit.measures.MEASURES``).
    optics_kwargs : dict, optional
        ``pixel_size_um``, ``na``, ``wavelength_um`` for measures that need them.
    """

    measure: str = "tenengrad"
    optics_kwargs: tuple[tuple[str, float], ...] = ()
    kind: EstimateKind = "score"
    lower_is_sharper: bool = False

    def __call__(self, tile: np.ndarray) -> tuple[float, float]:
        from focuskit.measures import score

        pixels = np.asarray(tile, dtype=np.float32)
        if float(pixels.max()) == float(pixels.min()):
            return math.nan, math.nan
        return float(score(pixels, self.measure, **dict(self.optics_kwargs))), math.nan
