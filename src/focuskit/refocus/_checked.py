"""Refocusing that does no harm: Deep-R where the measurement supports it, physics elsewhere.

Deep-R (Luo et al. 2021) has no check of its output: a GAN can invent texture, ring around
beads or move edges and still look sharp. Here every refocused tile is re-blurred to the
defocus estimated from the measured image and compared with it (the noise-normalized
residual χ², :func:`focuskit.restore.reblur_consistency`). ``method="auto"`` keeps the
learned output on the tiles it explains at least as well as the physics output does, and
takes the physics output
(:func:`focuskit.restore.physics_refocus`: Richardson–Lucy with a TV prior and the PSF at
the estimated or known defocus) on the others, and says which tiles fell back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Optics

Method = Literal["auto", "deepr", "physics"]
METHODS = ("auto", "deepr", "physics")


@dataclass
class CheckedRefocus:
    """A refocused image and the evidence for it, tile by tile.

    Attributes
    ----------
    image : ndarray
        The in-focus estimate: float32, ≥ 0, the input's intensity scale.
    method : str
        ``auto``, ``deepr`` or ``physics``.
    source : ndarray of str
        Per tile, where the output came from: ``deepr``, ``physics`` or ``input`` (a
        physics tile in focus or out of the PSF family's reach, passed unchanged).
    chi2 : ndarray
        Per tile, the re-blur χ² of the written output against the measurement.
    chi2_deepr : ndarray or None
        Per tile, the χ² of the learned output (None for ``physics``).
    z_um : ndarray
        Per tile, the |z| (µm) estimated from the image, or the known one.
    tiles : list of tuple of int
        (y0, x0) of every tile, row by row.
    tile_shape : tuple of int
        (tile_y, tile_x).
    seconds : dict
        Time of each part: ``deepr``, ``physics`` (estimate + deconvolution), ``check``.
    notes : list of str
        What a user should know (tiles that fell back, clipped values).
    """

    image: np.ndarray
    method: str
    source: np.ndarray
    chi2: np.ndarray
    chi2_deepr: np.ndarray | None
    z_um: np.ndarray
    tiles: list[tuple[int, int]]
    tile_shape: tuple[int, int]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fell_back(self) -> list[tuple[int, int]]:
        """(row, column) of the tiles where ``auto`` did not keep the learned output."""
        if self.method != "auto":
            return []
        rows, cols = np.nonzero(self.source != "deepr")
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: per-tile grids (rows of columns) and counts."""
        counts = {s: int(np.sum(self.source == s)) for s in ("deepr", "physics", "input")}
        return {
            "method": self.method,
            "tile": list(self.tile_shape),
            "tiles": len(self.tiles),
            "tile_sources": counts,
            "fell_back": [list(t) for t in self.fell_back],
            "chi2": np.round(self.chi2, 3).tolist(),
            "chi2_deepr": None
            if self.chi2_deepr is None
            else np.round(self.chi2_deepr, 3).tolist(),
            "z_um": np.round(self.z_um, 3).tolist(),
            "source": self.source.tolist(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": list(self.notes),
        }

    def consistency_map(self) -> np.ndarray:
        """The per-tile χ² painted over the image (float32, the image's shape): what
        ``--consistency map.ome.tif`` writes; tiles overlap, the later one wins."""
        out = np.zeros(self.image.shape, np.float32)
        th, tw = self.tile_shape
        for (y0, x0), v in zip(self.tiles, self.chi2.ravel(), strict=True):
            out[y0 : y0 + th, x0 : x0 + tw] = v
        return out


def psf_family_for(
    optics: Optics | None = None,
    *,
    psf_stack: Any | None = None,
    z_max_um: float | None = None,
) -> Any:
    """The PSF family of the physics path: a measured bead stack if given, else the optics.

    Parameters
    ----------
    optics : Optics, optional
        Fluorescence optics.
    psf_stack : FocalStack, optional
        A measured bead stack with z (:meth:`focuskit.restore.PsfFamily.from_stack`).
    z_max_um : float, optional
        Largest candidate |z| for the optics (default 8 DOF).

    Returns
    -------
    family : PsfFamily
        The candidate PSFs.

    Raises
    ------
    ConfigError
        Neither is given, or the optics are not fluorescence.
    """
    from focuskit.restore import PsfFamily

    if psf_stack is not None:
        return PsfFamily.from_stack(psf_stack)
    if optics is None:
        raise ConfigError(
            "the physics path needs the microscope: a model with optics, a file with optics "
            "metadata, --preset NAME or --psf BEADS.ome.tif"
        )
    return PsfFamily(optics, z_max_um=z_max_um)


def refocus_checked(
    image: Any,
    *,
    method: Method = "auto",
    refocuser: Any | None = None,
    family: Any | None = None,
    z_um: float | None = None,
    tile: int = 512,
    overlap: int | None = None,
) -> CheckedRefocus:
    """Refocus one image with Deep-R, physics, or both checked against the measurement.

    - ``deepr``: the learned output (clipped at 0), with its per-tile re-blur χ².
    - ``physics``: :func:`focuskit.restore.physics_refocus` (defocus estimated per tile, or
      ``z_um``).
    - ``auto``: per tile, the learned output where its ``χ² ≤ χ²_physics`` (re-blurred, it
      explains the measurement at least as well as the physics output does), the physics
      output elsewhere (a tile in focus passes as measured, so a learned tile must then
      reproduce the measurement); tiles are blended with the
      raised-cosine window. A learned output that invents or removes structure leaves it
      in the residual and is not kept.

    ``χ² = mean((y − R·x̂)²)/N``, ``R = H_z/H₀`` the relative OTF to the tile's |z|, ``N``
    the tile's noise variance (:func:`focuskit.restore.reblur_consistency`).

    Parameters
    ----------
    image : (Y, X) array_like
        One fluorescence image (counts or intensities).
    method : {'auto', 'deepr', 'physics'}, optional
        Default ``auto``.
    refocuser : Refocuser, optional
        The learned model (needed by ``auto`` and ``deepr``).
    family : PsfFamily, optional
        The microscope's PSFs (default from the refocuser's optics).
    z_um : float, optional
        The defocus if known (µm); default: estimated per tile.
    tile, overlap : int, optional
        Tile side and overlap (pixels); the unit of estimation, checking and fallback.

    Returns
    -------
    result : CheckedRefocus
        The image, per-tile sources, χ², |z| and timings.

    Raises
    ------
    ConfigError
        On an unknown method, a missing model or PSF family, or an invalid image.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021), Methods.
    """
    from focuskit.restore import blend, physics_refocus, reblur_consistency

    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "physics" and refocuser is None:
        raise ConfigError(f"--method {method} needs a learned model (--model)")
    if family is None:
        family = psf_family_for(getattr(refocuser, "optics", None))
    img = np.asarray(image, dtype=np.float64)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    physics = physics_refocus(img, family, z_um=z_um, tile=tile, overlap=overlap)
    seconds["physics"] = time.perf_counter() - t0
    th, tw = physics.geometry[:2]
    grid_shape = physics.z_um.shape
    learned = chi2_deepr = None
    if method != "physics":
        t0 = time.perf_counter()
        learned = np.maximum(refocuser.refocus(img, tile=_model_tile(refocuser, tile)), 0.0)
        seconds["deepr"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        chi2_deepr = reblur_consistency(img, learned, physics, family)
        seconds["check"] = time.perf_counter() - t0
    notes: list[str] = []
    physics_source = np.where(physics.restored, "physics", "input")

    def check(candidate: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        chi2 = reblur_consistency(img, candidate, physics, family)
        seconds["check"] = seconds.get("check", 0.0) + time.perf_counter() - t0
        return chi2

    if method == "physics":
        out, source, chi2 = physics.image, physics_source, check(physics.image)
    elif method == "deepr":
        assert learned is not None and chi2_deepr is not None
        out, source, chi2 = learned.astype(np.float32), np.full(grid_shape, "deepr"), chi2_deepr
    else:
        assert learned is not None and chi2_deepr is not None
        physics_chi2 = check(physics.image)
        keep = chi2_deepr <= physics_chi2
        source = np.where(keep, "deepr", physics_source)
        pieces = [
            (learned if k else physics.image)[y0 : y0 + th, x0 : x0 + tw]
            for (y0, x0), k in zip(physics.tiles, keep.ravel(), strict=True)
        ]
        out = np.maximum(blend(img.shape, physics.geometry, physics.tiles, pieces), 0.0)
        out = out.astype(np.float32)
        # One source throughout: the blend is that output, and so is its χ².
        chi2 = chi2_deepr if keep.all() else physics_chi2 if not keep.any() else check(out)
        if not keep.all():
            notes.append(
                f"{int((~keep).sum())} of {keep.size} tile(s) fell back to physics: the "
                "learned output, re-blurred, explains the measurement worse than the "
                "physics output"
            )
    return CheckedRefocus(
        image=out,
        method=method,
        source=source,
        chi2=chi2,
        chi2_deepr=chi2_deepr,
        z_um=physics.z_um,
        tiles=physics.tiles,
        tile_shape=(th, tw),
        seconds=seconds,
        notes=notes,
    )


def _model_tile(refocuser: Any, tile: int) -> int:
    """The learned model's tile: ``tile`` rounded down to its size multiple."""
    m = int(getattr(refocuser, "size_multiple", 1))
    return max(m, (int(tile) // m) * m)


__all__ = ["METHODS", "CheckedRefocus", "psf_family_for", "refocus_checked"]
