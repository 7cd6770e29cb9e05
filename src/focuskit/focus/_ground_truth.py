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
from focuskit.measures import Saturation, default_measure, get_measure, score

Refinement = Literal["parabola", "gaussian", "none"]


@dataclass
class FocusResult:
    """Where a stack is in focus, and how sure we are.

    Attributes
    ----------
    z_focus_um : float
        Best-focus z, in µm: the sharpest plane's z, refined below the z step where that is
        trustworthy (:attr:`refined`).
    plane : int
        Index of the sharpest plane.
    measure : str
        Registry name of the focus measure.
    confidence : float
        ``snr / (snr + 10) · min(1, DOF / gap)``, in [0, 1]: ``gap`` the larger distance from
        the sharpest plane to its neighbours (a stack sampled coarser than the DOF cannot
        place focus between its planes).
    snr : float
        Peak prominence over the curve's noise (:func:`curve_snr`).
    z_um : (Z,) ndarray
        z of each plane, in µm.
    curve : (Z,) ndarray
        Focus score of each plane (larger = sharper).
    refinement : str
        The refinement asked for: ``"parabola"``, ``"gaussian"`` or ``"none"``.
    notes : list of str, optional
        Warnings about the result (peak at the end of the stack, coherent LED stack,
        refinement skipped).
    refined : bool, optional
        True when ``z_focus_um`` is the refined vertex, False when it is the plane's z.
    refinement_skipped : str, optional
        Why the refinement was skipped (empty when refined or not asked for).
    dof_um : float or None, optional
        Depth of field used to judge the neighbours, in µm (None: unknown).
    dof_source : str, optional
        Where ``dof_um`` came from: ``"given"``, ``"optics"``, ``"curve FWHM"`` or
        ``"unknown"``.
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
    refined: bool = False
    refinement_skipped: str = ""
    dof_um: float | None = None
    dof_source: str = "unknown"

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
            ``refined``, ``dof_um`` (µm or None), ``dof_source``, ``has_signal``,
            ``refinement_skipped`` when the refinement was skipped, and ``notes`` when there
            are any.
        """
        d: dict[str, Any] = {
            "z_focus_um": self.z_focus_um,
            "plane": self.plane,
            "measure": self.measure,
            "confidence": self.confidence,
            "snr": self.snr,
            "refinement": self.refinement,
            "refined": self.refined,
            "dof_um": self.dof_um,
            "dof_source": self.dof_source,
            "has_signal": self.has_signal,
        }
        if self.refinement_skipped:
            d["refinement_skipped"] = self.refinement_skipped
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


def focus_curve(
    stack: FocalStack, measure: str | None = None, *, saturation: Saturation = None
) -> np.ndarray:
    """Score of every plane (larger = sharper, the registry's orientation).

    Parameters
    ----------
    stack : FocalStack
        The stack; its optics are passed to measures that need them.
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the stack's optics).
    saturation : float, 'auto' or None, optional
        Saturated pixels excluded from the measure (see :func:`focuskit.measures.score`;
        default None: no masking).

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
    measure = default_measure(stack.optics) if measure is None else measure
    kwargs = _optics_kwargs(stack, measure)
    return np.asarray(score(data, measure, saturation=saturation, **kwargs), dtype=np.float64)


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


def curve_fwhm_um(z_um: np.ndarray, curve: np.ndarray, index: int) -> float | None:
    """Width of the focus curve's peak at half maximum, as the planes show it, in µm, or None.

    The half level is halfway between the peak and the curve's minimum. The width is the
    z span of the contiguous run of planes around the peak that stand above it: a lower
    bound of the FWHM, never an interpolation across a coarse gap (a straight line from
    a plane near focus to one 10 µm away would make the peak look 10 µm wide, and let the
    refinement trust that far plane). None when only the peak itself stands above half
    (the sampling cannot tell the width) or the curve is flat.

    Parameters
    ----------
    z_um : (Z,) array_like
        z of each plane, in µm, increasing.
    curve : (Z,) array_like
        Focus score of each plane.
    index : int
        Index of the peak.

    Returns
    -------
    width : float or None
        ``z_last − z_first`` of the planes above half maximum around the peak, in µm.
    """
    z = np.asarray(z_um, dtype=np.float64)
    s = np.asarray(curve, dtype=np.float64)
    half = 0.5 * (s[index] + s.min())
    if not s[index] > half:
        return None
    lo = hi = index
    while lo - 1 >= 0 and s[lo - 1] > half:
        lo -= 1
    while hi + 1 < len(s) and s[hi + 1] > half:
        hi += 1
    width = float(z[hi] - z[lo])
    return width if width > 0 else None


def refine_within_dof(
    z_um: np.ndarray,
    curve: np.ndarray,
    index: int,
    dof_um: float | None,
    method: Refinement = "parabola",
) -> tuple[float, str]:
    """Sub-step peak, or the plane's z and why the refinement was not trusted.

    The parabola (or, ``gaussian``, the parabola on log s) through the peak and its two
    neighbours is trusted only when both neighbours lie within one depth of field of the
    peak: farther planes sit on the curve's tails, where its shape is not a parabola, and
    pull the vertex towards themselves (planes at −10, −0.5, +0.2, +10 µm of a 40× stack
    with a 1 µm DOF: the vertex moved by µm). The vertex must also fall between the
    neighbours and the fit open downwards; otherwise the plane is kept.

    Parameters
    ----------
    z_um : (Z,) array_like
        z of each plane, in µm, increasing.
    curve : (Z,) array_like
        Focus score of each plane.
    index : int
        Index of the sharpest plane.
    dof_um : float or None
        Depth of field, in µm (None: unknown, the refinement is skipped).
    method : {'parabola', 'gaussian', 'none'}, optional
        Refinement (default 'parabola').

    Returns
    -------
    z_focus : float
        Refined peak, or ``z_um[index]``.
    skipped : str
        Why the refinement was skipped; empty when it was applied or ``method`` is 'none'.

    Raises
    ------
    ConfigError
        If ``method`` is not one of the three names.
    """
    if method not in ("parabola", "gaussian", "none"):
        raise ConfigError(f"refinement must be 'parabola', 'gaussian' or 'none', got {method!r}")
    z = np.asarray(z_um, dtype=np.float64)
    plane = float(z[index])
    if method == "none":
        return plane, ""
    if index <= 0 or index >= len(z) - 1:
        return plane, "the sharpest plane is at the end of the stack (one neighbour only)"
    if dof_um is None:
        return plane, (
            "no depth of field known (no optics, and no plane beside the sharpest stands above "
            "half the peak): cannot tell whether the neighbouring planes are close enough to fit"
        )
    gap = max(z[index] - z[index - 1], z[index + 1] - z[index])
    if gap > dof_um:
        return plane, (
            f"a neighbouring plane is {gap:.3g} µm from the sharpest one, beyond one depth of "
            f"field ({dof_um:.3g} µm): a fit through it would be pulled by the curve's tail"
        )
    vertex = refine_peak(z, curve, index, method)
    if vertex == plane and not _opens_down(z, curve, index, method):
        return plane, "the three planes around the peak do not form a peak (flat or convex)"
    if not z[index - 1] < vertex < z[index + 1]:
        return plane, "the fitted vertex fell outside the sharpest plane's neighbours"
    return vertex, ""


def _opens_down(z: np.ndarray, curve: np.ndarray, index: int, method: Refinement) -> bool:
    s3 = np.asarray(curve, dtype=np.float64)[index - 1 : index + 2]
    if method == "gaussian" and np.all(s3 > 0):
        s3 = np.log(s3)
    return parabola_vertex(z[index - 1 : index + 2], s3) is not None


def find_focus(
    stack: FocalStack,
    measure: str | None = None,
    *,
    refine: Refinement = "parabola",
    saturation: Saturation = None,
    dof_um: float | None = None,
) -> FocusResult:
    """Best-focus z of a stack: the curve's maximum, refined below the z step where trustworthy.

    The sharpest plane is refined by :func:`refine_within_dof`: only when both its
    neighbours lie within one depth of field (``dof_um``; else the stack's optics,
    OPTICS.md ``DOF = λ·n/NA² + n·e/(M·NA)``; else the curve's own width at half maximum,
    :func:`curve_fwhm_um`). Otherwise the plane's z is returned and
    ``refinement_skipped`` (and a note) says why.

    ``confidence = snr / (snr + 10) · min(1, DOF / gap)`` in [0, 1): 0.5 means the peak
    stands 10 noise σ above the curve's median on a stack sampled within the DOF; ``gap``
    is the larger distance from the sharpest plane to a neighbour, so a stack sampled
    coarser than its DOF, which cannot say where between its planes focus lies, scores
    lower. A stack of phase objects under one coherent LED has its *least* contrast in
    focus (Pinkard et al. use a companion incoherent stack for ground truth); such stacks
    get a note.

    Parameters
    ----------
    stack : FocalStack
        The stack.
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the stack's optics).
    refine : {'parabola', 'gaussian', 'none'}, optional
        Sub-step refinement of the peak (default 'parabola'; see :func:`refine_peak`).
    saturation : float, 'auto' or None, optional
        Saturated pixels excluded from the measure (see :func:`focuskit.measures.score`).
    dof_um : float, optional
        Depth of field, in µm, overriding the optics' and the curve's.

    Returns
    -------
    result : FocusResult
        Best-focus z (µm), plane, confidence, SNR, the curve, whether it was refined and
        notes; ``has_signal`` is False (confidence 0, a note) when every plane scores the
        same.

    Raises
    ------
    ConfigError
        If the measure is unknown, needs optics the stack lacks, gives non-finite scores,
        or ``dof_um`` is not a finite number > 0.

    References
    ----------
    .. [1] H. Pinkard, Z. Phillips, A. Babakhani, D. A. Fletcher and L. Waller, "Deep learning
           for single-shot autofocus microscopy", Optica 6, 794 (2019), Fig. 1a.
    """
    if dof_um is not None and not (
        isinstance(dof_um, (int, float)) and math.isfinite(dof_um) and dof_um > 0
    ):
        raise ConfigError(f"dof_um must be a finite number > 0 µm, got {dof_um!r}")
    measure = default_measure(stack.optics) if measure is None else measure
    curve = focus_curve(stack, measure, saturation=saturation)
    if not np.all(np.isfinite(curve)):
        raise ConfigError(f"measure {measure!r} gave non-finite scores on this stack")
    z = np.asarray(stack.z_um, dtype=np.float64)
    order = np.argsort(z)  # the refinement needs increasing z; the result keeps the stack's index
    zs, cs = z[order], curve[order]
    k = int(np.argmax(cs))
    index = int(order[k])
    if dof_um is not None:
        dof, dof_source = float(dof_um), "given"
    elif stack.optics is not None:
        dof, dof_source = float(stack.optics.depth_of_field_um), "optics"
    else:
        fwhm = curve_fwhm_um(zs, cs, k)
        dof, dof_source = (fwhm, "curve FWHM") if fwhm else (None, "unknown")
    z_focus, skipped = refine_within_dof(zs, cs, k, dof, refine)
    snr = curve_snr(curve, index)
    notes = []
    if k in (0, len(z) - 1) and len(z) > 1:
        notes.append("the sharpest plane is at the end of the stack: true focus may lie outside it")
    if skipped and k not in (0, len(z) - 1):
        notes.append(f"refinement skipped: {skipped}; z_focus_um is the sharpest plane's z")
    if stack.optics is not None and stack.optics.illumination.kind in ("led", "led_pattern"):
        notes.append(
            "coherent LED stack: phase objects show least contrast in focus; use a DPC, "
            "brightfield or fluorescence stack for ground truth (Pinkard et al. Fig. 1a)"
        )
    gaps = [abs(zs[j] - zs[k]) for j in (k - 1, k + 1) if 0 <= j < len(zs)]
    spacing = min(1.0, dof / max(gaps)) if (dof is not None and gaps and max(gaps) > 0) else 1.0
    base = float(snr / (snr + 10.0)) if math.isfinite(snr) else 1.0
    result = FocusResult(
        z_focus_um=z_focus,
        plane=index,
        measure=measure,
        confidence=base * spacing,
        snr=float(snr),
        z_um=z,
        curve=curve,
        refinement=refine,
        notes=notes,
        refined=refine != "none" and not skipped,
        refinement_skipped=skipped,
        dof_um=dof,
        dof_source=dof_source,
    )
    if not result.has_signal:
        result.confidence, result.snr = 0.0, 0.0
        result.refined, result.refinement_skipped = False, "no focus signal"
        result.z_focus_um = float(z[index])
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
    measure: str | None = None,
    *,
    refine: Refinement = "parabola",
    region_px: int = 1024,
) -> FocusMap:
    """Per-tile :func:`find_focus` over non-overlapping ``tile``² tiles.

    A lazy stack (``dask.array``: OME-Zarr, a large tiled TIFF) is read region by region
    (all planes of about ``region_px``² pixels per Dask task), never whole.

    Parameters
    ----------
    stack : FocalStack
        The stack.
    tile : int, optional
        Tile side, in pixels, between 8 and the image size (default 128).
    measure : str, optional
        Registry name of the focus measure (default
        :func:`~focuskit.measures.default_measure` of the stack's optics).
    refine : {'parabola', 'gaussian', 'none'}, optional
        Sub-step refinement of each tile's peak (default 'parabola').
    region_px : int, optional
        A lazy stack is read in regions of about this many pixels a side (whole tiles).

    Returns
    -------
    focus_map : FocusMap
        Best-focus z (µm) and confidence per tile, with the tile centres (µm).

    Raises
    ------
    ConfigError
        If ``tile`` is out of range, or :func:`find_focus` fails on a tile.
    """
    import dask
    import dask.array as da

    data = stack.data
    _, ny, nx = (int(n) for n in data.shape)
    if tile < 8 or tile > min(ny, nx):
        raise ConfigError(f"tile must be between 8 and the image size {min(ny, nx)}, got {tile}")
    ty, tx = ny // tile, nx // tile

    def group(i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """(z, confidence) of tiles [i0, i1) × [j0, j1), read as one region."""
        region = np.asarray(data[:, i0 * tile : i1 * tile, j0 * tile : j1 * tile])
        out = np.empty((i1 - i0, j1 - j0, 2))
        for i in range(i1 - i0):
            for j in range(j1 - j0):
                sub = FocalStack(
                    data=region[:, i * tile : (i + 1) * tile, j * tile : (j + 1) * tile],
                    z_um=stack.z_um,
                    pixel_size_um=stack.pixel_size_um,
                    optics=stack.optics,
                )
                r = find_focus(sub, measure, refine=refine)
                out[i, j] = r.z_focus_um, r.confidence
        return out

    if isinstance(data, da.Array):
        # A stack too large to hold: regions of about 1024² (all planes) as Dask tasks, on
        # the active scheduler (focuskit.io.compute_context); memory holds a few regions.
        k = max(1, region_px // tile)
        tasks = [
            [dask.delayed(group)(i, min(i + k, ty), j, min(j + k, tx)) for j in range(0, tx, k)]
            for i in range(0, ty, k)
        ]
        (blocks,) = dask.compute(tasks)
        both = np.concatenate([np.concatenate(row, axis=1) for row in blocks], axis=0)
    else:
        both = group(0, ty, 0, tx)
    zmap, conf = both[..., 0], both[..., 1]
    dx = stack.pixel_size_um
    cy = ((np.arange(ty) + 0.5) * tile - ny / 2) * dx
    cx = ((np.arange(tx) + 0.5) * tile - nx / 2) * dx
    return FocusMap(zmap, conf, tile, (cy, cx))
