"""Training pairs for Deep-R refocusing from focal stacks
(Luo et al. 2021, Methods "Data pre-processing").

A focal stack of one field of view is (1) registered plane to plane for rigid stage shifts
and rotations (the paper uses ImageJ's StackReg; :func:`focuskit.focus.register_stack`),
(2) summarized by an extended-depth-of-field image (ImageJ's "Extended Depth of Field";
:func:`focuskit.focus.edof_image`), (3) cut into non-overlapping 512² tiles;
per tile, (4) the ground-truth in-focus plane (z = 0) is the plane with the highest SSIM to
the EDOF image, and (5) the planes within ±range of it are the network inputs. A pair is
(tile i, plane k): input ``planes[i][k]``, target ``planes[i][focus_index[i]]``. Train and
validation are split 0.85 : 0.15 by field of view. No torch here.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.focus import check_stack, edof_image, focus_plane_by_ssim, register_stack
from focuskit.io import FocalStack, atomic_output, plain_json
from focuskit.nn import split_fields
from focuskit.optics import Optics, get_preset
from focuskit.simulate import (
    Drift,
    Sample,
    check_sample_matches,
    check_sample_names,
    expose,
    make_sample,
    plan_render,
    render_stack,
    stain_density,
)

__all__ = [
    "BRIGHTFIELD_SAMPLES",
    "FLUORESCENCE_SAMPLES",
    "RefocusTiles",
    "field_sample",
    "simulate_refocus_tiles",
    "split_tiles_by_field",
    "tile_origins",
    "tiles_from_stack",
]

_FORMAT = "focuskit-refocus-tiles/1"
# Sample kinds per modality: fluorescence images emitters, brightfield a transmittance.
FLUORESCENCE_SAMPLES = ("beads", "cells", "fluorescent-tissue")
BRIGHTFIELD_SAMPLES = ("beads", "cells", "tissue")
_Z_MARGIN_UM = 1.0  # extra planes beyond ±z_range so an off-centre focus keeps the full range


def tile_origins(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping ``tile × tile`` tiles that fit, row-major.

    The grid is centred, so leftover pixels (and registration's mirrored borders) are split
    evenly between the edges.

    Parameters
    ----------
    shape : (int, int)
        Image shape (pixels).
    tile : int
        Tile side (pixels, ≥ 1, at most the image's smaller side).

    Returns
    -------
    origins : list of (int, int)
        ``(y0, x0)`` of each tile (pixels).

    Raises
    ------
    ConfigError
        When ``tile`` < 1 or larger than the image.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing".
    """
    ny, nx = int(shape[0]), int(shape[1])
    t = int(tile)
    if t < 1:
        raise ConfigError(f"tile must be ≥ 1 pixel, got {tile}")
    if t > ny or t > nx:
        raise ConfigError(
            f"tile {t}² is larger than the {ny}×{nx} image; use a tile ≤ {min(ny, nx)}"
        )
    my, mx = ny // t, nx // t
    y0, x0 = (ny - my * t) // 2, (nx - mx * t) // 2
    return [(y0 + i * t, x0 + j * t) for i in range(my) for j in range(mx)]


# --------------------------------------------------------------------------- container


@dataclass(eq=False)
class RefocusTiles:
    """Registered tile stacks and their chosen in-focus planes: the training set.

    A pair is (tile i, plane k): input ``planes[i][k]``, target ``planes[i][focus_index[i]]``.

    Attributes
    ----------
    planes : list of ndarray
        Each (Z_i, T, T) float32: the registered raw intensities of one tile.
    defocus_um : list of ndarray
        Each (Z_i,): z of plane k minus z of the chosen focus plane (µm).
    focus_index : ndarray
        (n_tiles,) int: the in-focus plane of each tile.
    field : ndarray
        (n_tiles,) int: field-of-view id (tiles of one FOV share it).
    pixel_size_um : float
        Pixel size (µm).
    info : dict
        Provenance: optics, preset, samples, seed, sources, per-field records…

    Raises
    ------
    ConfigError
        When the lists differ in length, tiles are not (Z, T, T) with one T, a focus index
        is out of range, or the pixel size is not a positive number.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing".
    """

    planes: list[np.ndarray]  # each (Z_i, T, T) float32, registered raw intensities of one tile
    defocus_um: list[np.ndarray]  # each (Z_i,): z of plane k minus z of the chosen focus plane
    focus_index: np.ndarray  # (n_tiles,) int
    field: np.ndarray  # (n_tiles,) int: field-of-view id (tiles of one FOV share it)
    pixel_size_um: float
    info: dict[str, Any] = field(default_factory=dict)  # optics, preset, samples, seed, sources…

    def __post_init__(self) -> None:
        self.planes = [np.asarray(p, dtype=np.float32) for p in self.planes]
        self.defocus_um = [np.asarray(d, dtype=np.float64) for d in self.defocus_um]
        self.focus_index = np.asarray(self.focus_index, dtype=np.int64).reshape(-1)
        self.field = np.asarray(self.field, dtype=np.int64).reshape(-1)
        n = len(self.planes)
        if not len(self.defocus_um) == self.focus_index.size == self.field.size == n:
            raise ConfigError(
                "RefocusTiles needs one entry per tile in planes, defocus_um, focus_index and "
                f"field; got {n}, {len(self.defocus_um)}, "
                f"{self.focus_index.size}, {self.field.size}"
            )
        sizes = {p.shape[1:] for p in self.planes}
        if any(p.ndim != 3 or p.shape[1] != p.shape[2] for p in self.planes) or len(sizes) > 1:
            raise ConfigError(f"every tile must be (Z, T, T) with one T; got {sorted(sizes)}")
        for i, (p, d, f) in enumerate(
            zip(self.planes, self.defocus_um, self.focus_index, strict=True)
        ):
            if d.shape != (p.shape[0],) or not 0 <= f < p.shape[0]:
                raise ConfigError(
                    f"tile {i}: {p.shape[0]} planes, {d.size} defocus values, focus index {f}"
                )
        if not (math.isfinite(self.pixel_size_um) and self.pixel_size_um > 0):
            raise ConfigError(
                f"pixel_size_um must be finite and > 0 (µm), got {self.pixel_size_um}"
            )
        self.pixel_size_um = float(self.pixel_size_um)
        self.info = plain_json(dict(self.info), "info")

    def __len__(self) -> int:
        return len(self.planes)

    @property
    def tile(self) -> int:
        """Tile side T in pixels (0 when there are no tiles).

        Returns
        -------
        int
            T (pixels).
        """
        return int(self.planes[0].shape[-1]) if self.planes else 0

    def pairs(self, z_range_um: float) -> np.ndarray:
        """(P, 2) int array of (tile, plane) with |defocus| ≤ ``z_range_um``, focus plane included.

        Parameters
        ----------
        z_range_um : float
            Largest |defocus| of an input plane (µm, ≥ 0).

        Returns
        -------
        pairs : ndarray
            (P, 2) int64 rows ``(tile, plane)``.

        Raises
        ------
        ConfigError
            When ``z_range_um`` < 0.

        References
        ----------
        .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
               microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
               Methods "Data pre-processing".
        """
        if not z_range_um >= 0:
            raise ConfigError(f"z_range_um must be ≥ 0 µm, got {z_range_um}")
        rows = [
            np.stack([np.full(int(keep.sum()), i), np.flatnonzero(keep)], axis=1)
            for i, d in enumerate(self.defocus_um)
            for keep in [np.abs(d) <= z_range_um + 1e-6]
        ]
        return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), np.int64)

    def subset(self, tiles: Sequence[int] | np.ndarray) -> RefocusTiles:
        """The tiles at the given indices (a boolean mask works too).

        Parameters
        ----------
        tiles : sequence of int or ndarray
            Tile indices or a boolean mask over the tiles.

        Returns
        -------
        subset : RefocusTiles
            Those tiles, their per-field records in ``info["fields"]`` kept.
        """
        idx = np.arange(len(self))[np.asarray(tiles)] if len(self) else np.zeros(0, np.int64)
        info = dict(self.info)
        if isinstance(info.get("fields"), list):
            keep = set(self.field[idx].tolist())
            info["fields"] = [r for r in info["fields"] if r.get("field") in keep]
        return RefocusTiles(
            [self.planes[i] for i in idx],
            [self.defocus_um[i] for i in idx],
            self.focus_index[idx],
            self.field[idx],
            self.pixel_size_um,
            info,
        )

    @classmethod
    def concat(cls, parts: Sequence[RefocusTiles]) -> RefocusTiles:
        """All tiles of ``parts``; field ids renumbered 0, 1, … so no two parts share one.

        Parameters
        ----------
        parts : sequence of RefocusTiles
            Tile sets of one pixel size and one tile size.

        Returns
        -------
        tiles : RefocusTiles
            ``info`` holds the common optics (or None), the renumbered field records and each
            part's info.

        Raises
        ------
        ConfigError
            When ``parts`` is empty or the parts differ in pixel size or tile size.
        """
        if not parts:
            raise ConfigError("no tile sets to concatenate")
        px = parts[0].pixel_size_um
        if any(not math.isclose(p.pixel_size_um, px, rel_tol=1e-6) for p in parts):
            raise ConfigError(
                "cannot concatenate tiles of different pixel sizes; resample them first"
            )
        if len({p.tile for p in parts if len(p)}) > 1:
            raise ConfigError(
                "cannot concatenate tiles of different sizes; cut them with one tile size"
            )
        fields, records, offset = [], [], 0
        for p in parts:
            ids, new = np.unique(p.field, return_inverse=True)
            fields.append(new.reshape(-1) + offset)
            remap = {int(old): offset + j for j, old in enumerate(ids)}
            for r in p.info.get("fields", []) if isinstance(p.info.get("fields"), list) else []:
                if r.get("field") in remap:
                    records.append({**r, "field": remap[r["field"]]})
            offset += len(ids)
        optics = [p.info.get("optics") for p in parts]
        info: dict[str, Any] = {
            "optics": optics[0] if all(o == optics[0] for o in optics) else None,
            "fields": records,
            "parts": [{k: v for k, v in p.info.items() if k != "fields"} for p in parts],
        }
        return cls(
            [a for p in parts for a in p.planes],
            [d for p in parts for d in p.defocus_um],
            np.concatenate([p.focus_index for p in parts]),
            np.concatenate(fields),
            px,
            info,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tiles as one ``.npz``, atomically.

        One ``.npz`` (no pickles; tiles concatenated along z, ``counts`` splits them),
        written atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced if it exists).
        """
        counts = np.array([p.shape[0] for p in self.planes], dtype=np.int64)
        t = self.tile
        planes = np.concatenate(self.planes) if self.planes else np.zeros((0, t, t), np.float32)
        defocus = np.concatenate(self.defocus_um) if self.defocus_um else np.zeros(0)
        buf = io.BytesIO()
        np.savez(
            buf,
            format=np.array(_FORMAT),
            planes=planes,
            counts=counts,
            defocus_um=defocus,
            focus_index=self.focus_index,
            field=self.field,
            pixel_size_um=np.array(self.pixel_size_um),
            info=np.array(json.dumps(self.info)),
        )
        with atomic_output(Path(path), overwrite=True) as tmp, open(tmp, "wb") as f:
            f.write(buf.getbuffer())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RefocusTiles:
        """Read tiles written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` written by :meth:`save`.

        Returns
        -------
        tiles : RefocusTiles

        Raises
        ------
        ConfigError
            When the file is missing, unreadable or not a refocus tile file.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != _FORMAT:
                    raise ValueError(f"format {str(z['format'])!r}")
                counts = z["counts"]
                bounds = np.cumsum(counts)[:-1]
                planes = list(np.split(z["planes"], bounds)) if counts.size else []
                defocus = list(np.split(z["defocus_um"], bounds)) if counts.size else []
                return cls(
                    planes,
                    defocus,
                    z["focus_index"],
                    z["field"],
                    float(z["pixel_size_um"]),
                    json.loads(str(z["info"])),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path}: not a refocus tile file ({exc}); regenerate it") from None


# ---------------------------------------------------------------------- from a stack


def tiles_from_stack(
    stack: FocalStack,
    *,
    tile: int = 512,
    z_range_um: float | None = None,
    register: bool = True,
    field: int = 0,
) -> RefocusTiles:
    """Training tiles of one field of view (Luo et al., Methods "Data pre-processing").

    Register the stack (:func:`register_stack`), compute its EDOF image (:func:`edof_image`,
    over the whole field as the paper does, so tile edges see no filter border), cut both into
    non-overlapping tiles (:func:`tile_origins`); per tile the focus is the plane of highest
    SSIM to the EDOF tile (the paper picks the ground truth per 512² patch), and the planes
    with ``|z − z_focus| ≤ z_range_um`` (all if None) are kept, in increasing z.

    Parameters
    ----------
    stack : FocalStack
        One field of view, at least 2 planes (z in µm).
    tile : int
        Tile side (pixels; the paper's 512).
    z_range_um : float, optional
        Keep planes within ±this of each tile's focus (µm); None: all planes.
    register : bool
        Register the planes for rigid shifts and rotations first.
    field : int
        Field-of-view id given to every tile.

    Returns
    -------
    tiles : RefocusTiles
        The tiles; ``info["fields"]`` records origins, chosen focus z (µm) and the largest
        registration shift (pixels) and rotation (degrees).

    Raises
    ------
    ConfigError
        When ``stack`` is not a FocalStack, has fewer than 2 planes or invalid data,
        ``z_range_um`` < 0, or the tile does not fit.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing".
    """
    if not isinstance(stack, FocalStack):
        raise ConfigError(
            f"tiles_from_stack needs a focuskit.io.FocalStack, got {type(stack).__name__}"
        )
    if z_range_um is not None and not z_range_um >= 0:
        raise ConfigError(f"z_range_um must be ≥ 0 µm or None (all planes), got {z_range_um}")
    data = check_stack(stack.data, "stack data")
    if data.shape[0] < 2:
        raise ConfigError(f"a focal stack needs at least 2 planes, got {data.shape[0]}")
    origins = tile_origins(data.shape[1:], tile)  # type: ignore[arg-type]
    z = np.asarray(stack.z_um, dtype=np.float64)
    order = np.argsort(z)
    data, z = data[order], z[order]
    transforms = np.zeros((z.size, 3))
    if register:
        data, transforms = register_stack(data)
    edof = edof_image(data)
    planes, defocus, focus = [], [], []
    chosen_z = []
    for y0, x0 in origins:
        cut = np.ascontiguousarray(data[:, y0 : y0 + tile, x0 : x0 + tile])
        k = focus_plane_by_ssim(cut, edof[y0 : y0 + tile, x0 : x0 + tile])
        d = z - z[k]
        keep = np.ones(z.size, bool) if z_range_um is None else np.abs(d) <= z_range_um + 1e-6
        planes.append(cut[keep])
        defocus.append(d[keep])
        focus.append(int(np.flatnonzero(keep).tolist().index(k)))
        chosen_z.append(float(z[k]))
    record: dict[str, Any] = {
        "field": int(field),
        "origins": [list(o) for o in origins],
        "focus_z_um": chosen_z,
        "true_focus_z_um": stack.focus_z_um,
        "max_registration_px": float(np.abs(transforms[:, :2]).max()),
        "max_registration_deg": float(np.abs(transforms[:, 2]).max()),
    }
    info = {
        "source": "stack",
        "optics": stack.optics.to_dict() if isinstance(stack.optics, Optics) else None,
        "tile": int(tile),
        "z_range_um": z_range_um,
        "registered": bool(register),
        "fields": [record],
    }
    return RefocusTiles(
        planes,
        defocus,
        np.asarray(focus),
        np.full(len(origins), int(field)),
        stack.pixel_size_um,
        info,
    )


# ------------------------------------------------------------------------- simulation


def field_sample(
    kind: str,
    optics: Optics,
    shape: tuple[int, int],
    px: float,
    seed: int,
    rng: np.random.Generator,
) -> Sample:
    """The in-focus object of one simulated refocusing field, at the render pixel ``px``.

    Fluorescence: ``beads`` are 0.2–0.4 µm beads (the paper's 300 nm ± spread) at 2–30 per
    100 µm² on a faint autofluorescent background; ``cells`` are phase cells used as stain
    density (:func:`focuskit.simulate.stain_density`); other kinds as the simulator makes
    them. Brightfield: absorbing beads, phase cells, stained tissue. The bead density,
    size and background are drawn from ``rng``.

    Parameters
    ----------
    kind : str
        Sample kind (:data:`FLUORESCENCE_SAMPLES` or :data:`BRIGHTFIELD_SAMPLES`).
    optics : Optics
        The microscope (fluorescence or brightfield).
    shape : (int, int)
        Sample grid (pixels).
    px : float
        Render pixel size (µm).
    seed : int
        Seed of the sample generator.
    rng : numpy.random.Generator
        Draws the bead density, size and background.

    Returns
    -------
    sample : Sample
        The in-focus object at pixel size ``px``.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing".
    """
    if optics.is_fluorescence:
        if (
            kind == "beads"
        ):  # 300 nm beads (the paper's) ± spread, on a faint autofluorescent background
            s = make_sample(
                "beads",
                shape,
                px,
                seed=seed,
                as_="fluorescence",
                density_per_100um2=float(np.exp(rng.uniform(math.log(2), math.log(30)))),
                diameter_um=float(rng.uniform(0.2, 0.4)),
            )
            bg = float(rng.uniform(0.005, 0.03)) * float(s.values.max())
            return Sample(
                "fluorescence", s.values + np.float32(bg), px, {**s.description, "background": bg}
            )
        if kind == "cells":  # phase as stain density, as the blur-score data do
            n = max(shape)
            inner = int(np.random.default_rng(seed).integers(2**31))
            values = stain_density((n, n), px, seed=inner)[: shape[0], : shape[1]].astype(
                np.float32
            )
            return Sample("fluorescence", values, px, {"generator": "cells-as-stain", "seed": seed})
        return make_sample(kind, shape, px, seed=seed, wavelength_um=optics.wavelength_um)
    if kind == "beads":
        return make_sample(
            "beads",
            shape,
            px,
            seed=seed,
            as_="absorption",
            density_per_100um2=float(np.exp(rng.uniform(math.log(2), math.log(30)))),
            diameter_um=float(rng.uniform(0.2, 0.4)),
        )
    return make_sample(kind, shape, px, seed=seed, wavelength_um=optics.wavelength_um)


def _simulate_field(
    preset: str,
    kind: str,
    index: int,
    z: np.ndarray,
    size: int,
    tile: int,
    z_range_um: float,
    photons: float | None,
    drift: bool,
    seed: int,
) -> RefocusTiles:
    p = get_preset(preset)
    optics = p.optics
    px = optics.pixel_size_um
    rng = np.random.default_rng([seed, index])
    sample_seed, render_seed = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
    # Off-grid focus: the true focus lies between planes, as after a real autofocus.
    focus = float(rng.uniform(-0.5, 0.5))
    move = None
    if drift:
        move = Drift(
            step_um=(float(rng.uniform(-0.1, 0.1)) * px, float(rng.uniform(-0.1, 0.1)) * px),
            jitter_um=float(rng.uniform(0.05, 0.3)) * px,
            rotation_deg_per_plane=float(rng.uniform(-0.02, 0.02)),
        )
    plan = plan_render(optics, z, (size, size), focus_z_um=focus, drift=move, seed=render_seed)
    sample = field_sample(kind, optics, plan.render_shape, px / plan.oversampling, sample_seed, rng)
    check_sample_matches(sample, optics)
    sim = render_stack(
        sample.values,
        optics,
        z,
        shape=(size, size),
        sample_pixel_size_um=sample.pixel_size_um,
        focus_z_um=focus,
        drift=move,
        photons=None,
        seed=render_seed,
    )
    data, used = sim.data, None
    if photons is not None:
        # Lowered where the brightest pixel would clip (sparse beads: the mean is mostly
        # background); the drift's spline resampling rings slightly below 0 near sharp beads.
        data, used = expose(sim.data, optics.camera, float(photons), headroom=0.8, seed=rng)
    stack = FocalStack(data, z, px, optics, focus)
    out = tiles_from_stack(stack, tile=tile, z_range_um=z_range_um, field=index)
    out.info["fields"][0].update(
        {
            "sample": kind,
            "sample_seed": sample_seed,
            "render_seed": render_seed,
            "photons": used,
            "drift": None
            if move is None
            else {
                "step_um": list(move.step_um),
                "jitter_um": move.jitter_um,
                "rotation_deg_per_plane": move.rotation_deg_per_plane,
            },
        }
    )
    return out


def _simulate_field_job(job: tuple[Any, ...]) -> RefocusTiles:
    return _simulate_field(*job)


def simulate_refocus_tiles(
    preset: str = "deepr-40x-fluor",
    n_fields: int = 8,
    *,
    samples: Sequence[str] | None = None,
    z_range_um: float = 5.0,
    z_step_um: float | None = None,
    size: int = 512,
    tile: int = 512,
    photons: float | None = 2000.0,
    drift: bool = True,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> RefocusTiles:
    """Simulated training tiles: ``n_fields`` fields of view through :func:`tiles_from_stack`.

    Field ``i`` images sample kind ``samples[i % len(samples)]`` (its own seed) in a stack over
    ``−(z_range + 1 µm) … +(z_range + 1 µm)`` at ``z_step_um`` (default the preset's step), the
    true focus off-grid within ±0.5 µm; with ``drift`` the stage wanders (constant step ≤ 0.1
    px/plane + random-walk jitter ≤ 0.3 px/plane, rotation ≤ 0.02°/plane) so registration is
    exercised; ``photons`` (mean e⁻/pixel, lowered where the brightest pixel would clip) gives
    camera noise, None none. Fluorescence presets image ``beads`` (300 nm-ish), ``cells`` (phase
    cells used as stain density) and ``fluorescent-tissue`` (the default ``samples``);
    brightfield ones absorbing ``beads``, phase ``cells`` and stained ``tissue``. The planes
    within ±z_range of each tile's SSIM-chosen focus are kept. Seeded and reproducible,
    whatever the number of ``workers`` (processes rendering fields).

    Parameters
    ----------
    preset : str
        Microscope preset.
    n_fields : int
        Fields of view (≥ 1).
    samples : sequence of str, optional
        Sample kinds in turn: the generators above (the default) and/or sample families of
        the preset's modality (``focuskit samples``).
    z_range_um : float
        Defocus range kept around each tile's focus (± µm, > 0).
    z_step_um : float, optional
        Plane spacing (µm; default the preset's).
    size : int
        Field side (pixels, ≥ 16).
    tile : int
        Tile side (pixels, ≤ ``size``).
    photons : float or None
        Mean photo-electrons per pixel; None: no noise.
    drift : bool
        Simulate stage drift between planes.
    seed : int
        Seed.
    workers : int
        Processes rendering fields.
    progress : callable, optional
        ``progress(done, total)`` after each field.

    Returns
    -------
    tiles : RefocusTiles
        ``info`` records the preset, optics, samples, z grid (µm) and settings.

    Raises
    ------
    ConfigError
        On an unknown sample for the preset's modality, ``n_fields`` < 1, a non-positive
        range, step or photon count, a size < 16 or a tile larger than the field.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing".
    """
    p = get_preset(preset)
    optics = p.optics
    valid = FLUORESCENCE_SAMPLES if optics.is_fluorescence else BRIGHTFIELD_SAMPLES
    if isinstance(samples, str):
        raise ConfigError(f"samples must be a list of sample names, got the string {samples!r}")
    mode = "fluorescence" if optics.is_fluorescence else optics.illumination.kind
    kinds = check_sample_names(
        valid if samples is None else samples,
        fluorescence=optics.is_fluorescence,
        generators=valid,
        what=f"samples for {mode} preset {preset!r}",
    )
    if isinstance(n_fields, bool) or int(n_fields) != n_fields or n_fields < 1:
        raise ConfigError(f"n_fields must be an integer ≥ 1, got {n_fields}")
    if not (math.isfinite(z_range_um) and z_range_um > 0):
        raise ConfigError(f"z_range_um must be > 0 µm, got {z_range_um}")
    step = p.z_step_um if z_step_um is None else float(z_step_um)
    if not (math.isfinite(step) and step > 0):
        raise ConfigError(f"z_step_um must be > 0 µm, got {z_step_um}")
    if photons is not None and not (math.isfinite(photons) and photons > 0):
        raise ConfigError(
            f"photons must be > 0 (mean e⁻ per pixel) or None for no noise, got {photons}"
        )
    if size < 16:
        raise ConfigError(f"size must be ≥ 16 pixels, got {size}")
    tile_origins((size, size), tile)  # tile ≤ size
    half = math.ceil((z_range_um + _Z_MARGIN_UM) / step - 1e-9)
    z = np.round(step * np.arange(-half, half + 1), 6)

    jobs = [
        (p.name, kinds[i % len(kinds)], i, z, size, tile, z_range_um, photons, drift, seed)
        for i in range(int(n_fields))
    ]
    parts: list[RefocusTiles] = []
    if (
        workers > 1 and len(jobs) > 1
    ):  # each field has its own seed: same result for any worker count
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for part in pool.imap(_simulate_field_job, jobs):
                parts.append(part)
                if progress is not None:
                    progress(len(parts), len(jobs))
    else:
        for job in jobs:
            parts.append(_simulate_field(*job))
            if progress is not None:
                progress(len(parts), len(jobs))
    out = RefocusTiles.concat(parts)
    out.info = {
        "source": "simulated",
        "preset": p.name,
        "optics": optics.to_dict(),
        "samples": kinds,
        "seed": seed,
        "n_fields": int(n_fields),
        "z_range_um": z_range_um,
        "z_step_um": step,
        "z_um": z.tolist(),
        "size": size,
        "tile": tile,
        "photons": photons,
        "drift": drift,
        "fields": out.info["fields"],
    }
    return out


def split_tiles_by_field(
    tiles: RefocusTiles, validation_fraction: float = 0.15, *, seed: int = 0
) -> tuple[RefocusTiles, RefocusTiles]:
    """Train/validation split with no field of view on both sides.

    Default 0.85 : 0.15, as Luo et al. (:func:`focuskit.nn.split_fields`).

    Parameters
    ----------
    tiles : RefocusTiles
        The tiles, with their ``field`` ids.
    validation_fraction : float
        Fraction of fields held out.
    seed : int
        Seed of the split.

    Returns
    -------
    train : RefocusTiles
        Tiles of the training fields.
    validation : RefocusTiles
        Tiles of the held-out fields.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Data pre-processing".
    """
    is_val = split_fields(tiles.field, validation_fraction, seed=seed)
    return tiles.subset(np.flatnonzero(~is_val)), tiles.subset(np.flatnonzero(is_val))
