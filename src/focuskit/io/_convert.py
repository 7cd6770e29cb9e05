"""Convert a stack between OME-TIFF / TIFF, OME-Zarr and NPY, streamed chunk by chunk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from focuskit._errors import StackFileError
from focuskit.io._formats import _FIX_Z, Rgb, _read, write_stack
from focuskit.io._outputs import check_outputs
from focuskit.io._stack import FocalStack

__all__ = ["convert_stack"]


def convert_stack(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    chunks: tuple[int, int, int] | None = None,
    overwrite: bool = False,
    compression: Literal["zlib"] | None = "zlib",
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    z_start_um: float = 0.0,
    rgb: Rgb = "error",
) -> tuple[FocalStack, list[str]]:
    """Copy a stack into another format, keeping its metadata, without reading it whole.

    OME-Zarr and TIFF input are read lazily (a Dask array over the Zarr chunks, or over the
    TIFF's tiles through tifffile's Zarr view); the output is written chunk by chunk
    (OME-Zarr), tile by tile (OME-TIFF, tiled) or band by band (NPY), a few MiB at a time,
    atomically (a hidden sibling renamed at the end). What the file says is kept: pixel
    size, per-plane z, optics, true focus and the focuskit metadata; OME-Zarr gets NGFF 0.4
    ``multiscales`` (axes in micrometres, scale and translation). NPY input is loaded
    (NumPy's format has no chunks).

    Parameters
    ----------
    source : str or os.PathLike
        The stack to read (``.ome.tif``, ``.tif``, ``.ome.zarr``, ``.zarr``, ``.npy``).
    target : str or os.PathLike
        The file to write; its suffix picks the format. Never one of the source's files.
    chunks : (int, int, int), optional
        Output chunks (Z, Y, X): Zarr chunks, TIFF tiles (Y, X multiples of 16). Default:
        one plane of up to 1024² (Zarr), up to 512² tiles (TIFF).
    overwrite : bool, optional
        Replace an existing target (default False).
    compression : {'zlib', None}, optional
        Compression of TIFF and Zarr output (default 'zlib').
    pixel_size_um : float, optional
        Pixel size (µm), when the file lacks it or to override it.
    z_step_um : float, optional
        z step (µm), building ``z = z_start + k·z_step`` when the file has no z.
    z_start_um : float, optional
        z of the first plane with ``z_step_um`` (µm, default 0).
    rgb : {'error', 'gray'} or int, optional
        A colour axis: refuse (default), luminance, or one channel.

    Returns
    -------
    stack : FocalStack
        The (lazy) stack as written.
    notes : list of str
        What was assumed (a single plane without z placed at 0 µm).

    Raises
    ------
    StackFileError
        If the source cannot be read or lacks the pixel size (or z of several planes), the
        target is an input, exists without ``overwrite`` or cannot be written, or the
        chunks are invalid.
    """
    src, dst = Path(source), Path(target)
    check_outputs({"-o": dst}, overwrite=overwrite, inputs=[src])
    read = _read(
        src,
        pixel_size_um=pixel_size_um,
        z_um=None,
        z_step_um=z_step_um,
        z_start_um=z_start_um,
        optics=None,
        rgb=rgb,
        lazy=True,
        need_z=False,
        need_pixel_size=True,
    )
    notes: list[str] = []
    z = read.z_um
    if z is None:
        n = int(read.planes.shape[0])
        if n > 1:
            raise StackFileError(src, f"z positions of its {n} planes are missing", _FIX_Z)
        z = [z_start_um]
        notes.append(f"{src.name}: one plane without a z position; written at z = {z[0]:g} µm")
    assert read.pixel_size_um is not None  # need_pixel_size
    stack = FocalStack(
        read.planes, np.asarray(z), read.pixel_size_um, read.optics, read.focus_z_um, read.metadata
    )
    write_stack(
        stack, dst, overwrite=overwrite, protect=[src], compression=compression, chunks=chunks
    )
    return stack, notes
