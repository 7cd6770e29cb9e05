"""The real focal stacks of ``shared/data/real``, read with the metadata their SOURCE.md gives.

Each folder holds a stack and a SOURCE.md (provenance, licence, pixel size, z, the
documented in-focus plane). The files lack some of that metadata, so it is encoded here
once; :func:`real_stack` returns a :class:`FocalStack` with ``focus_z_um`` set from the
documented focus, ready for ``StackScope``. The data is only read, never written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from focuskit._errors import ConfigError, StackFileError
from focuskit.io import FocalStack, read_stack, read_z_file

ENV_VAR = "FOCUSKIT_REAL_DATA"
_RELATIVE = Path("shared") / "data" / "real"


@dataclass(frozen=True)
class RealStackInfo:
    """What SOURCE.md says about one real stack (and how to read it).

    Attributes
    ----------
    name : str
        Folder name under ``shared/data/real``.
    file : str
        The stack file in that folder.
    pixel_size_um : float
        Pixel size at the sample, in µm (an assumed value when not known).
    pixel_size_known : bool
        Whether SOURCE.md documents the pixel size.
    focus : float or {'brightest'}
        Documented in-focus z, in µm, or the brightest plane.
    focus_plane : int
        The plane SOURCE.md names as in focus.
    focus_quote : str
        SOURCE.md's words about the focus.
    z_file : str or None, optional
        File of the z positions (µm), read with :func:`focuskit.io.read_z_file`.
    z_step_um : float or None, optional
        z step, in µm, when there is no z file (z starts at 0).
    rgb : {'error', 'gray'}, optional
        How a colour axis is read.
    modality : str, optional
        Imaging modality.
    extras : tuple of (str, object), optional
        Further documented facts (source, licence, NA, wavelength in µm, …).
    """

    name: str
    file: str
    pixel_size_um: float
    pixel_size_known: bool
    focus: float | Literal["brightest"]  # documented in-focus z (µm), or the brightest plane
    focus_plane: int  # the plane SOURCE.md names as in focus
    focus_quote: str
    z_file: str | None = None
    z_step_um: float | None = None
    rgb: Literal["error", "gray"] = "error"
    modality: str = ""
    extras: tuple[tuple[str, Any], ...] = ()


REAL_STACKS: dict[str, RealStackInfo] = {
    info.name: info
    for info in [
        RealStackInfo(
            name="llsm_mitochondria_defocus",
            file="stack.tif",
            z_file="z_positions.csv",  # column defocus_um = (order − 51) × 0.05
            # SOURCE.md: "Pixel size: not stated in the repo (unknown)". 0.1 µm is a typical
            # lattice light-sheet sampling, used only so a FocalStack can be built.
            pixel_size_um=0.1,
            pixel_size_known=False,
            focus=0.0,
            focus_plane=19,
            focus_quote=(
                "In-focus plane: from repo metadata — original order 51 is in focus "
                "(here plane index 19, defocus 0.0 µm)."
            ),
            modality="fluorescence, lattice light-sheet with a multi-depth lattice pattern",
            extras=(("z_step_um", 0.05), ("source", "ZJUOPTKuangLab/DFNN, MIT")),
        ),
        RealStackInfo(
            name="wafer_reflected_brightfield",
            file="stack.tif",
            z_file="z_positions.csv",  # column z_offset_um, non-uniform within ±50 µm
            pixel_size_um=549.2410888671875 / 1920,  # "image width 549.24 µm over 1920 px"
            pixel_size_known=True,
            focus=0.0,
            focus_plane=4,
            focus_quote="In focus: z = 0 (plane 4), from the original file names.",
            rgb="gray",
            modality="reflected-light brightfield, colour camera (read as BT.709 luminance)",
            extras=(("source", "evanmacbride/microscope-autofocus, MIT"),),
        ),
        RealStackInfo(
            name="bead_psf_na085",
            file="psf_wl520nm_z300nm_x130nm_na0.85_n1.0.tif",
            z_step_um=0.3,  # "z-step: 0.3 µm. Planes: 25 (span 7.2 µm)"; z starts at 0
            pixel_size_um=0.13,  # "Pixel size: 130 nm (file name / README) ... trust 130 nm"
            pixel_size_known=True,
            focus="brightest",
            focus_plane=12,
            focus_quote=(
                "In-focus plane: derived, not in metadata: maximum intensity at plane 12 "
                "(the centre plane; intensity centroid 12.05)."
            ),
            modality="fluorescence bead PSF, NA 0.85 air, emission 520 nm",
            extras=(
                ("na", 0.85),
                ("immersion_index", 1.0),
                ("wavelength_um", 0.52),
                ("source", "david-hoffman/pyotf, Apache-2.0"),
            ),
        ),
    ]
}


def _candidates() -> list[Path]:
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    out: list[Path] = []
    for start in starts:
        for folder in (start, *start.parents):
            out.append(folder / _RELATIVE)
    return out


def real_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the real stacks.

    ``data_dir`` if given, else ``$FOCUSKIT_REAL_DATA``, else the first ``shared/data/real``
    found walking up from the current directory, then from this package (a clone at
    ``<dir>/main`` finds ``<dir>/shared``).

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        The folder, overriding the search.

    Returns
    -------
    folder : pathlib.Path
        The real-data folder.

    Raises
    ------
    StackFileError
        If the given folder does not exist, or none is found.
    """
    if data_dir is None and os.environ.get(ENV_VAR):
        data_dir = os.environ[ENV_VAR]
    if data_dir is not None:
        p = Path(data_dir)
        if not p.is_dir():
            raise StackFileError(p, "real-data folder not found", f"check the path (or ${ENV_VAR})")
        return p
    for p in _candidates():
        if p.is_dir():
            return p
    raise StackFileError(
        _RELATIVE,
        "real-data folder not found above the current directory or the package",
        f"set ${ENV_VAR} to the folder holding {', '.join(REAL_STACKS)}, or pass data_dir=",
    )


def real_stack(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    pixel_size_um: float | None = None,
) -> FocalStack:
    """Read one of the real stacks (``REAL_STACKS``) with its documented metadata.

    ``focus_z_um`` is SOURCE.md's in-focus z (for the bead PSF, the z of the brightest
    plane, computed from the data). ``metadata["real"]`` records the source, the
    documented focus plane and its quote, and whether the pixel size is known;
    ``pixel_size_um`` overrides the encoded one (the light-sheet stack's is unknown).

    Parameters
    ----------
    name : str
        A key of :data:`REAL_STACKS`.
    data_dir : str or os.PathLike, optional
        The real-data folder (see :func:`real_data_dir`).
    pixel_size_um : float, optional
        Pixel size at the sample, in µm, overriding the encoded one.

    Returns
    -------
    stack : FocalStack
        The stack, z in µm, with ``focus_z_um`` and ``metadata["real"]`` set.

    Raises
    ------
    ConfigError
        If the name is unknown.
    StackFileError
        If the folder or a file cannot be read.
    """
    info = REAL_STACKS.get(name)
    if info is None:
        raise ConfigError(f"unknown real stack {name!r}; use one of: {', '.join(REAL_STACKS)}")
    folder = real_data_dir(data_dir) / name
    path = folder / info.file
    px = info.pixel_size_um if pixel_size_um is None else pixel_size_um
    kwargs: dict[str, Any] = {"pixel_size_um": px, "rgb": info.rgb}
    if info.z_file is not None:
        kwargs["z_um"] = read_z_file(folder / info.z_file)
    if info.z_step_um is not None:
        kwargs["z_step_um"] = info.z_step_um
    stack = read_stack(path, **kwargs)
    if info.focus == "brightest":
        peaks = np.asarray(stack.data).reshape(len(stack), -1).max(axis=1)
        focus_plane = int(np.argmax(peaks))
    else:
        focus_plane = stack.nearest_plane(info.focus)
    return FocalStack(
        stack.data,
        stack.z_um,
        stack.pixel_size_um,
        stack.optics,
        focus_z_um=float(stack.z_um[focus_plane]),
        metadata={
            **stack.metadata,
            "real": {
                "name": name,
                "folder": str(folder),
                "modality": info.modality,
                "pixel_size_known": pixel_size_um is not None or info.pixel_size_known,
                "focus_plane": focus_plane,
                "documented_focus_plane": info.focus_plane,
                "focus_quote": info.focus_quote,
                **dict(info.extras),
            },
        },
    )
