"""Ground-truth focus of a recorded stack: the focus curve, its peak refined below the
z step, a confidence, and a coarse per-tile focus map for tilted samples.

Pinkard et al. take the maximum of the high-frequency power of an incoherent stack as
ground truth; Deep-R picks the plane most similar to an EDOF image. Here any registered
focus measure can define the curve (``focuskit.measures``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from focuskit._errors import ConfigError
from focuskit.io import FocalStack
from focuskit.measures import get_measure, score

Refinement = Literal["parabola", "gaussian", "none"]


@dataclass
class FocusResult:
    """Where a stack is in focus, and how sure we are.

    Attributes
    ----------
    z_focus_um : float
        Best-focus z, in µm, refined below the z step.
    plane : int
        Index of the sharpest plane.
    measure : str
        Registry name of the focus measure.
    confidence : float
        ``snr / (snr + 10)``, in [0, 1].
    snr : float
        Peak prominence over the curve's noise (:func:`curve_snr`).
    z_um : (Z,) ndarray
        z of each plane, in µm.
    curve : (Z,) ndarray
        Focus score of each plane (larger = sharper).
    refinement : str
        ``"parabola"``, ``"gaussian"`` or ``"none"``.
    notes : list of str, optional
        Warnings about the result (peak at the end of the stack, coherent LED stack).
    """

    z_focus_um: float
    plane: int
    measure: str
    confidence: float
    snr: float
    z_um: np.ndarray
    curve: np.ndarray
    refinement: str
    notes: list[str] = field(default_factory=list)

    @property
    def has_signal(self) -> bool:
        """False when every plane scores the same (a constant or empty stack): there is no
        focus to find, whatever ``z_focus_um`` says."""
        c = np.asarray(self.curve, dtype=np.float64)
        if c.size < 2:
            return False
        scale = max(float(np.max(np.abs(c))), 1e-300)
        return float(np.ptp(c)) > 1e-9 * scale

    def to_dict(self, *, with_curve: bool = False) -> dict[str, Any]:
        """The result as plain JSON types.

        Parameters
        ----------
        with_curve : bool, optional
            Also include ``z_um`` (µm) and ``score`` per plane (default False).

        Returns
        -------
        d : dict
            ``z_focus_um`` (µm), ``plane``, ``measure``, ``confidence``, ``snr``, ``refinement``,
            ``has_signal``, and ``notes`` when there are any.
        """
        d: dict[str, Any] = {
            "z_focus_um": self.z_focus_um,
            "plane": self.plane,
            "measure": self.measure,
            "confidence": self.confidence,
            "snr": self.snr,
            "refinement": self.refinement,
            "has_signal": self.has_signal,
        }
        if self.notes:
            d["notes"] = list(self.notes)
        if with_curve:
            d["z_um"] = [float(v) for v in self.z_um]
            d["score"] = [float(v) for v in self.curve]
        return d


def _optics_kwargs(stack: FocalStack, measure: str) -> dict[str, float]:
    if not get_measure(measure).needs_optics:
        return {}
    if stack.optics is None:
        raise ConfigError(
            f"measure {measure!r} needs the optics (NA, wavelength); the stack has none — "
            "choose another --measure or read a stack with optics metadata"
        )
    return {
        "pixel_size_um": stack.pixel_size_um,
        "na": stack.optics.na,
        "wavelength_um": stack.optics.wavelength_um,
    }


def focus_curve(stack: FocalStack, measure: str = "tenengrad") -> np.ndarray:
    """Score of every plane (larger = sharper, the registry's orientation).

    Parameters
    ----------
    stack : FocalStack
        The stack; its optics are passed to measures that need them.
    measure : str, optional
        Registry name of the focus measure (default ``"tenengrad"``).

    Returns
    -------
    curve : (Z,) ndarray of float64
        Focus score of each plane.

    Raises
    ------
    ConfigError
        If the measure is unknown, needs optics the stack lacks, or rejects the data.
    """
    data = np.asarray(stack.data)
    return np.asarray(score(data, measure, **_optics_kwargs(stack, measure)), dtype=np.float64)


def parabola_vertex(z3: np.ndarray, s3: np.ndarray) -> float | None:
    """Vertex of the parabola through three (z, s) points, or None.

    None when the points do not bracket a maximum (two z equal, collinear, or the
    parabola opens upwards).

    Written out (Lagrange form) rather than with ``np.polyfit``, which warns on the
    nearly coincident points a finite-resolution stage can produce.

    Parameters
    ----------
    z3 : (3,) array_like
        Positions of the three points (e.g. in µm).
    s3 : (3,) array_like
        Values at those positions.

    Returns
    -------
    vertex : float or None
        Position of the maximum, in the units of ``z3``, or None.
    """
    z0, z1, z2 = (float(v) for v in z3)
    s0, s1, s2 = (float(v) for v in s3)
    d01, d12, d02 = z1 - z0, z2 - z1, z2 - z0
    if min(abs(d01), abs(d12), abs(d02)) < 1e-9 * max(1.0, abs(z0), abs(z2)):
        return None
    # Second divided difference: half the curvature of the parabola.
    a = ((s2 - s1) / d12 - (s1 - s0) / d01) / d02
    scale = max(abs(s0), abs(s1), abs(s2), 1e-300)
    if not -a * d02**2 > 1e-9 * scale:  # opens upwards, or flat to round-off (collinear)
        return None
    b = (s1 - s0) / d01 - a * (z0 + z1)
    return -b / (2 * a)


def refine_peak(
    z_um: np.ndarray, curve: np.ndarray, index: int, method: Refinement = "parabola"
) -> float:
    """Sub-step peak position from the three samples around ``index``.

    ``parabola``: vertex of the parabola through (z_{i−1}, s_{i−1}), (z_i, s_i), (z_{i+1}, s_{i+1}),
    valid for non-uniform z. ``gaussian``: the same on log(s), exact for a Gaussian peak
    on a zero baseline (three-point Gaussian interpolation; needs s > 0, else falls back
    to the parabola). At either end of the stack, or if the fit does not open
    downwards, the grid point is returned unchanged. The vertex is clipped to the
    bracket [z_{i−1}, z_{i+1}].

    Parameters
    ----------
    z_um : (Z,) array_like
        z of each sample, in µm.
    curve : (Z,) array_like
        Focus score of each sample.
    index : int
        Index of the grid maximum.
    method : {'parabola', 'gaussian', 'none'}, optional
        Refinement (default 'parabola'; 'none' returns ``z_um[index]``).

    Returns
    -------
    z_peak : float
        Refined peak position, in µm.

    Raises
    ------
    ConfigError
        If ``method`` is not one of the three names.
    """
    z = np.asarray(z_um, dtype=np.float64)
    s = np.asarray(curve, dtype=np.float64)
    if method == "none" or index <= 0 or index >= len(z) - 1:
        return float(z[index])
    zs, ss = z[index - 1 : index + 2], s[index - 1 : index + 2]
    if method == "gaussian":
        if np.all(ss > 0):
            ss = np.log(ss)
    elif method != "parabola":
        raise ConfigError(f"refinement must be 'parabola', 'gaussian' or 'none', got {method!r}")
    vertex = parabola_vertex(zs, ss)
    if vertex is None:
        return float(z[index])
    return float(np.clip(vertex, min(zs[0], zs[2]), max(zs[0], zs[2])))


def curve_snr(curve: np.ndarray, index: int) -> float:
    """Peak prominence over the curve's noise.

    Prominence = peak − median of the curve; noise = robust σ of the curve's second
    differences (MAD / 0.6745 / √6, as white noise on s gives Var(Δ²s) = 6σ²), which a
    smooth focus curve barely has.

    Parameters
    ----------
    curve : (Z,) array_like
        Focus score of each plane.
    index : int
        Index of the peak.

    Returns
    -------
    snr : float
        Prominence / noise, ≥ 0; ``inf`` for a prominent peak on fewer than 5 planes.
    """
    s = np.asarray(curve, dtype=np.float64)
    prominence = float(s[index] - np.median(s))
    if s.size < 5:
        return math.inf if prominence > 0 else 0.0
    d2 = np.diff(s, 2)
    sigma = float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / math.sqrt(6))
    scale = max(abs(float(s[index])), 1e-300)
    sigma = max(sigma, 1e-9 * scale)
    return max(prominence, 0.0) / sigma


def find_focus(
    stack: FocalStack,
    measure: str = "tenengrad",
    *,
    refine: Refinement = "parabola",
) -> FocusResult:
    """Best-focus z of a stack: the curve's maximum, refined below the z step.

    ``confidence = snr / (snr + 10)`` in [0, 1): 0.5 means the peak stands 10 noise σ above
    the curve's median. A stack of phase objects under one coherent LED has its *least*
    contrast in focus (Pinkard et al. use a companion incoherent stack for ground
    truth); such stacks get a note.

    Parameters
    ----------
    stack : FocalStack
        The stack.
    measure : str, optional
        Registry name of the focus measure (default ``"tenengrad"``).
    refine : {'parabola', 'gaussian', 'none'}, optional
        Sub-step refinement of the peak (default 'parabola'; see :func:`refine_peak`).

    Returns
    -------
    result : FocusResult
        Best-focus z (µm), plane, confidence, SNR, the curve and notes; ``has_signal`` is
        False (confidence 0, a note) when every plane scores the same.

    Raises
    ------
    ConfigError
        If the measure is unknown, needs optics the stack lacks, or gives non-finite scores.

    References
    ----------
    .. [1] H. Pinkard, Z. Phillips, A. Babakhani, D. A. Fletcher and L. Waller, "Deep learning
           for single-shot autofocus microscopy", Optica 6, 794 (2019), Fig. 1a.
    """
    curve = focus_curve(stack, measure)
    if not np.all(np.isfinite(curve)):
        raise ConfigError(f"measure {measure!r} gave non-finite scores on this stack")
    z = np.asarray(stack.z_um, dtype=np.float64)
    index = int(np.argmax(curve))
    z_focus = refine_peak(z, curve, index, refine)
    snr = curve_snr(curve, index)
    notes = []
    if index in (0, len(z) - 1) and len(z) > 1:
        notes.append("the sharpest plane is at the end of the stack: true focus may lie outside it")
    if stack.optics is not None and stack.optics.illumination.kind in ("led", "led_pattern"):
        notes.append(
            "coherent LED stack: phase objects show least contrast in focus; use a DPC, "
            "brightfield or fluorescence stack for ground truth (Pinkard et al. Fig. 1a)"
        )
    result = FocusResult(
        z_focus_um=z_focus,
        plane=index,
        measure=measure,
        confidence=float(snr / (snr + 10.0)) if math.isfinite(snr) else 1.0,
        snr=float(snr),
        z_um=z,
        curve=curve,
        refinement=refine,
        notes=notes,
    )
    if not result.has_signal:
        result.confidence, result.snr = 0.0, 0.0
        result.notes = [
            f"no focus signal: every plane scores the same with {measure!r} "
            "(a constant or empty stack?)"
        ]
    return result


@dataclass
class FocusMap:
    """Best-focus z per tile (a coarse defocus map of a tilted or curved sample).

    Attributes
    ----------
    z_focus_um : (tiles_y, tiles_x) ndarray
        Best-focus z of each tile, in µm.
    confidence : (tiles_y, tiles_x) ndarray
        Confidence of each tile, in [0, 1] (see :class:`FocusResult`).
    tile : int
        Tile side, in pixels.
    centres_yx_um : tuple of ndarray
        (y, x) tile centres relative to the image centre, in µm.
    """

    z_focus_um: np.ndarray  # (tiles_y, tiles_x)
    confidence: np.ndarray  # (tiles_y, tiles_x)
    tile: int
    centres_yx_um: tuple[np.ndarray, np.ndarray]

    def plane_fit(self) -> tuple[float, float, float]:
        """Least-squares plane z = a + b·y + c·x (µm) through confident tiles: (a, b, c).

        Tiles with confidence > 0.3 are used (all tiles when fewer than 3 are).

        Returns
        -------
        a : float
            z at the image centre, in µm.
        b : float
            Slope along y (µm of z per µm).
        c : float
            Slope along x (µm of z per µm).
        """
        yy, xx = np.meshgrid(*self.centres_yx_um, indexing="ij")
        ok = self.confidence > 0.3
        if ok.sum() < 3:
            ok = np.ones_like(ok)
        design = np.column_stack([np.ones(ok.sum()), yy[ok], xx[ok]])
        coef, *_ = np.linalg.lstsq(design, self.z_focus_um[ok], rcond=None)
        return float(coef[0]), float(coef[1]), float(coef[2])


def focus_map(
    stack: FocalStack,
    tile: int = 128,
    measure: str = "tenengrad",
    *,
    refine: Refinement = "parabola",
) -> FocusMap:
    """Per-tile :func:`find_focus` over non-overlapping ``tile``² tiles.

    Parameters
    ----------
    stack : FocalStack
        The stack.
    tile : int, optional
        Tile side, in pixels, between 8 and the image size (default 128).
    measure : str, optional
        Registry name of the focus measure (default ``"tenengrad"``).
    refine : {'parabola', 'gaussian', 'none'}, optional
        Sub-step refinement of each tile's peak (default 'parabola').

    Returns
    -------
    focus_map : FocusMap
        Best-focus z (µm) and confidence per tile, with the tile centres (µm).

    Raises
    ------
    ConfigError
        If ``tile`` is out of range, or :func:`find_focus` fails on a tile.
    """
    data = np.asarray(stack.data)
    _, ny, nx = data.shape
    if tile < 8 or tile > min(ny, nx):
        raise ConfigError(f"tile must be between 8 and the image size {min(ny, nx)}, got {tile}")
    ty, tx = ny // tile, nx // tile
    zmap = np.empty((ty, tx))
    conf = np.empty((ty, tx))
    for i in range(ty):
        for j in range(tx):
            sub = FocalStack(
                data=data[:, i * tile : (i + 1) * tile, j * tile : (j + 1) * tile],
                z_um=stack.z_um,
                pixel_size_um=stack.pixel_size_um,
                optics=stack.optics,
            )
            r = find_focus(sub, measure, refine=refine)
            zmap[i, j], conf[i, j] = r.z_focus_um, r.confidence
    dx = stack.pixel_size_um
    cy = ((np.arange(ty) + 0.5) * tile - ny / 2) * dx
    cx = ((np.arange(tx) + 0.5) * tile - nx / 2) * dx
    return FocusMap(zmap, conf, tile, (cy, cx))
