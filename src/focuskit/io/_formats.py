"""Read and write focal stacks: OME-TIFF, OME-Zarr (NGFF v0.4) and NPY + sidecar JSON.

Every format stores the same focuskit block (``stack_json``): focuskit version, pixel
size, the exact per-plane z list, optics, true focus and the metadata dict. OME-TIFF
keeps it in an OME ``MapAnnotation`` (key ``focuskit``, namespace ``focuskit``), OME-Zarr
in the group attribute ``focuskit``, NPY in the sidecar ``<file>.npy.json``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from focuskit._errors import ConfigError, FocuskitError, StackFileError
from focuskit._quiet import describe, image_problem, library_messages
from focuskit._version import __version__
from focuskit.io._atomic import atomic_output, atomic_outputs, signals_held
from focuskit.io._stack import FocalStack, as_z_list, is_real_numeric, z_problem
from focuskit.io._zarr import (
    NgffImage,
    check_chunks,
    checked_dask_array,
    ngff_image,
    read_pixels,
    refuse_incomplete,
    tiff_dask_array,
)
from focuskit.optics import Optics

__all__ = ["SUPPORTED_SUFFIXES", "read_stack", "stack_json", "write_stack"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".ome.tif",
    ".ome.tiff",
    ".tif",
    ".tiff",
    ".ome.zarr",
    ".zarr",
    ".npy",
)
_FORMAT_OF_SUFFIX = {
    ".ome.tif": "tiff",
    ".ome.tiff": "tiff",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".ome.zarr": "zarr",
    ".zarr": "zarr",
    ".npy": "npy",
}
_ANNOTATION_KEY = "focuskit"
_NPY_ARRAY_KEY = "npy_array"  # in an NPY sidecar: the array it was written with
_OME_TIFF_DTYPES = ("int8", "int16", "int32", "uint8", "uint16", "uint32", "float32", "float64")
# Stacks at most this big are loaded into memory when read from OME-Zarr or TIFF (lazy=None).
_LAZY_ABOVE_BYTES = 512 * 2**20
# Written at most this many bytes at a time (chunks read together, in parallel under Dask).
_BATCH_BYTES = 16 * 2**20
# Default chunk side of OME-Zarr output, and largest default tile of streamed OME-TIFF.
_ZARR_CHUNK = 1024
_TIFF_TILE = 512
# Luminance weights (ITU-R BT.709, as skimage.color.rgb2gray) for rgb="gray".
_LUMA = (0.2125, 0.7154, 0.0721)
_LENGTH_UNITS = {
    "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6, "metre": 1e6,
}  # fmt: skip

_FIX_CORRUPT = "the file is corrupt or truncated; copy or export it again"
_FIX_PIXEL = "pass --pixel-size UM (pixel_size_um=...)"
_FIX_Z = "pass --z-step UM [--z-start UM] or --z-file CSV (z_um=... or z_step_um=...)"
_FIX_JSON = "fix or delete the focuskit metadata block, or pass the values on the command line"

Rgb = Literal["error", "gray"] | int


# --- The focuskit metadata block ----------------------------------------------------------


def stack_json(stack: FocalStack) -> dict[str, Any]:
    """The focuskit metadata block stored with a stack in every format (plain JSON).

    Parameters
    ----------
    stack : FocalStack
        The stack.

    Returns
    -------
    block : dict
        ``focuskit_version``, ``pixel_size_um`` (µm), ``z_um`` (µm, one per plane),
        ``optics`` (or None), ``focus_z_um`` (µm or None) and ``metadata``.
    """
    return {
        "focuskit_version": __version__,
        "pixel_size_um": stack.pixel_size_um,
        "z_um": as_z_list(stack.z_um),
        "optics": None if stack.optics is None else stack.optics.to_dict(),
        "focus_z_um": stack.focus_z_um,
        "metadata": stack.metadata,
    }


@dataclass
class _Meta:
    """What one metadata source of a file says; None where it says nothing."""

    source: str
    pixel_size_um: float | None = None
    z_um: np.ndarray | None = None
    optics: Any = None  # an Optics (from arguments) or its dict form (from a file)
    focus_z_um: float | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class _Raw:
    """A file's pixels (colour axis, if any, still in) and its metadata sources, best first."""

    data: Any
    colour_axis: int | None = None
    metas: list[_Meta] = field(default_factory=list)


def _number_or_none(path: Path, source: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    number = _finite(value)
    if number is None:
        raise StackFileError(
            path, f"{source}: {key!r} is {value!r:.40}, not a finite number", _FIX_JSON
        )
    return number


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a finite int/float (bool, str,
    NaN, or an int too large for a float, as JSON allows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _meta_from_block(path: Path, block: Any, source: str) -> _Meta:
    """Parse a focuskit block (annotation, zarr attribute or sidecar)."""
    if not isinstance(block, dict):
        raise StackFileError(path, f"{source} is not a JSON object", _FIX_JSON)
    z = block.get("z_um")
    if z is not None:
        if not isinstance(z, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in z
        ):
            raise StackFileError(path, f"{source}: 'z_um' is not a list of numbers", _FIX_JSON)
        z = np.array([v if _finite(v) is not None else math.nan for v in z], dtype=np.float64)
    optics = block.get("optics")  # checked by Optics.from_dict when it is used
    metadata = block.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise StackFileError(path, f"{source}: 'metadata' is not a JSON object", _FIX_JSON)
    return _Meta(
        source=source,
        pixel_size_um=_number_or_none(path, source, "pixel_size_um", block.get("pixel_size_um")),
        z_um=z,
        optics=optics,
        focus_z_um=_number_or_none(path, source, "focus_z_um", block.get("focus_z_um")),
        metadata=metadata if metadata is not None else {},
    )


def _strip_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _sidecar_paths(path: Path) -> list[Path]:
    """``stack.npy.json`` (what focuskit writes), then ``stack.json``."""
    return [path.with_name(path.name + ".json"), path.with_name(_strip_suffix(path.name) + ".json")]


def _sidecar_meta(path: Path) -> _Meta | None:
    for sidecar in _sidecar_paths(path):
        if sidecar.is_file():
            try:
                block = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise StackFileError(
                    sidecar, f"sidecar metadata is not valid JSON ({describe(exc)})", _FIX_JSON
                ) from None
            return _meta_from_block(path, block, f"sidecar {sidecar.name}")
    return None


# --- Format detection -------------------------------------------------------------------


def _format_of(path: Path) -> str | None:
    lower = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return _FORMAT_OF_SUFFIX[suffix]
    return None


def _unknown_suffix(path: Path) -> StackFileError:
    return StackFileError(
        path,
        f"unknown file type {''.join(path.suffixes) or '(no extension)'!r}",
        f"use one of {', '.join(SUPPORTED_SUFFIXES)}",
    )


# --- OME-TIFF -----------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _length_um(value: str | None, unit: str | None) -> float | None:
    """A length in µm from an OME value + unit (default µm); None if absent or unknown."""
    if value is None:
        return None
    scale = _LENGTH_UNITS.get((unit or "µm").strip().replace("\\u00B5", "µ").replace("μ", "µ"))
    try:
        v = float(value) * scale if scale is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


def _ome_metas(path: Path, xml: str, leading_axis: str, n_planes: int) -> list[_Meta]:
    """Pixel size and plane z from OME-XML, then the focuskit annotation if present."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise StackFileError(path, f"its OME-XML is malformed ({exc})", _FIX_CORRUPT) from None
    pixels = next((e for e in root.iter() if _local(e.tag) == "Pixels"), None)
    metas: list[_Meta] = []
    if pixels is not None:
        meta = _Meta("OME-XML")
        meta.pixel_size_um = _length_um(
            pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit")
        )
        the = f"The{leading_axis}" if leading_axis in "ZTC" else "TheZ"
        others = [a for a in ("TheZ", "TheT", "TheC") if a != the]
        positions: dict[int, float] = {}
        for plane in pixels:
            if _local(plane.tag) != "Plane" or any(plane.get(a, "0") != "0" for a in others):
                continue
            z = _length_um(plane.get("PositionZ"), plane.get("PositionZUnit"))
            if z is not None:
                positions[int(plane.get(the, "0"))] = z
        if positions and sorted(positions) == list(range(len(positions))):
            meta.z_um = np.array([positions[i] for i in range(len(positions))])
            meta.source = "OME-XML Plane PositionZ"
        elif leading_axis == "Z":
            dz = _length_um(pixels.get("PhysicalSizeZ"), pixels.get("PhysicalSizeZUnit"))
            if dz is not None and dz > 0:
                meta.z_um = dz * np.arange(n_planes, dtype=np.float64)
                meta.source = "OME-XML PhysicalSizeZ (z from 0)"
        metas.append(meta)
    for annotation in root.iter():
        if _local(annotation.tag) != "MapAnnotation":
            continue
        for m in annotation.iter():
            if _local(m.tag) == "M" and m.get("K") == _ANNOTATION_KEY:
                try:
                    block = json.loads(m.text or "")
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise StackFileError(
                        path,
                        f"its focuskit OME annotation is not valid JSON ({describe(exc)})",
                        _FIX_JSON,
                    ) from None
                metas.append(_meta_from_block(path, block, "focuskit OME annotation"))
                return metas
    return metas


def _imagej_meta(ij: dict[str, Any], page: Any, n_planes: int) -> _Meta | None:
    """Pixel size from the resolution tags and z from 'spacing', when ImageJ names a unit."""
    unit = str(ij.get("unit", "")).replace("\\u00B5", "µ").replace("μ", "µ")
    scale = _LENGTH_UNITS.get(unit)
    if scale is None:
        return None
    meta = _Meta("ImageJ metadata")
    tag = page.tags.get("XResolution")
    if tag is not None:
        num, den = tag.value
        if num > 0 and den > 0:
            meta.pixel_size_um = den / num * scale
    spacing = ij.get("spacing")
    if isinstance(spacing, (int, float)) and math.isfinite(spacing) and spacing > 0:
        meta.z_um = spacing * scale * np.arange(n_planes, dtype=np.float64)
        meta.source = "ImageJ metadata (z from 0)"
    return meta


def _shaped_meta(shaped: Any) -> _Meta | None:
    """``z_um`` / ``pixel_size_um`` from tifffile's JSON image description, if present."""
    if not shaped or not isinstance(shaped[0], dict):
        return None
    d = shaped[0]
    meta = _Meta("tifffile description")
    z = d.get("z_um")
    if isinstance(z, list) and z and all(_finite(v) is not None for v in z):
        meta.z_um = np.array(z, dtype=np.float64)
    meta.pixel_size_um = _finite(d.get("pixel_size_um"))
    return meta if meta.z_um is not None or meta.pixel_size_um is not None else None


def _read_tiff(path: Path, lazy: bool | None) -> _Raw:
    import tifffile

    size = path.stat().st_size
    try:
        with library_messages() as said, tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            for page in tif.pages:
                end = max(
                    (o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)),
                    default=0,
                )
                if end > size:
                    raise StackFileError(
                        path,
                        f"image data runs past the end of the file ({size} bytes)",
                        _FIX_CORRUPT,
                    )
            axes = series.axes
            nbytes = math.prod(series.shape) * np.dtype(series.dtype).itemsize
            if lazy or (lazy is None and nbytes > _LAZY_ABOVE_BYTES):
                # Tile by tile (strip by strip) when computed: a slide is never read whole.
                data = tiff_dask_array(path, tuple(series.shape), np.dtype(series.dtype))
            else:
                data = series.asarray()
            ome = tif.ome_metadata if tif.is_ome else None
            imagej = tif.imagej_metadata
            shaped = tif.shaped_metadata
            page0 = tif.pages.first
            # tifffile logs, rather than raises, on broken page chains and tags.
            if said.errors:
                raise StackFileError(path, f"corrupt TIFF ({said.errors[0]})", _FIX_CORRUPT)
            colour_axis = (
                axes.index("S") if "S" in axes and data.shape[axes.index("S")] in (3, 4) else None
            )
            spatial = [a for a in axes if a not in "YXS"]
            leading = spatial[0] if spatial else "Z"
            n_planes = int(data.shape[0]) if spatial else 1
            metas: list[_Meta] = []
            if ome:
                metas += _ome_metas(path, ome, leading, n_planes)
            if imagej:
                ij = _imagej_meta(imagej, page0, n_planes)
                if ij is not None:
                    metas.append(ij)
            sm = _shaped_meta(shaped)
            if sm is not None:
                metas.append(sm)
    except FocuskitError:
        raise
    except Exception as exc:
        raise StackFileError(
            path, f"cannot read it as TIFF ({describe(exc)})", _FIX_CORRUPT
        ) from None
    # A sidecar fills in after the OME-XML fields (before ImageJ / description metadata),
    # and only when the file has no focuskit OME annotation.
    sidecar = _sidecar_meta(path)
    if sidecar is not None:
        has_block = any(m.source == "focuskit OME annotation" for m in metas)
        if not has_block:
            k = next((i for i, m in enumerate(metas) if not m.source.startswith("OME")), len(metas))
            metas.insert(k, sidecar)
    return _Raw(data, colour_axis, metas)


def _write_tiff(
    stack: FocalStack,
    target: Path,
    *,
    overwrite: bool,
    compression: str | None,
    chunks: tuple[int, int, int] | None = None,
) -> None:
    import tifffile

    if stack.dtype.name not in _OME_TIFF_DTYPES:
        raise StackFileError(
            target,
            f"OME-TIFF cannot store {stack.dtype} pixels",
            f"convert to one of {', '.join(_OME_TIFF_DTYPES)} or write .ome.zarr / .npy",
        )
    streamed = chunks is not None or stack.is_lazy
    n = len(stack)
    block = json.dumps(stack_json(stack), allow_nan=False)
    metadata: dict[str, Any] = {
        "axes": "ZYX",
        "Name": _strip_suffix(target.name),
        "PhysicalSizeX": stack.pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": stack.pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "Plane": {"PositionZ": as_z_list(stack.z_um), "PositionZUnit": ["µm"] * n},
        "MapAnnotation": {"Namespace": _ANNOTATION_KEY, "Value": {_ANNOTATION_KEY: block}},
    }
    if stack.z_step_um:
        metadata.update(PhysicalSizeZ=stack.z_step_um, PhysicalSizeZUnit="µm")
    if streamed:
        # Tiled, and written tile by tile: the stack is never held whole (a slide, lazily).
        tile = _tiff_tile(stack.shape, chunks, target)
        pixels: Any = _tiff_tiles(stack, tile, target)
        layout: dict[str, Any] = {"shape": stack.shape, "dtype": stack.dtype, "tile": tile}
    else:
        pixels, layout = _checked_array(stack, target), {}
    nbytes = math.prod(stack.shape) * stack.dtype.itemsize
    with atomic_output(target, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp,
            pixels,
            ome=True,
            photometric="minisblack",
            compression="zlib" if compression else None,
            bigtiff=nbytes > 2**31,
            metadata=metadata,
            **layout,
        )


def _tiff_tile(
    shape: tuple[int, int, int], chunks: tuple[int, int, int] | None, target: Path
) -> tuple[int, int]:
    """The TIFF tile (Y, X): the chunks' last two, or up to 512² (multiples of 16, as TIFF
    requires)."""
    if chunks is None:
        return min(_TIFF_TILE, -(-shape[1] // 16) * 16), min(_TIFF_TILE, -(-shape[2] // 16) * 16)
    ty, tx = chunks[1], chunks[2]
    if ty % 16 or tx % 16:
        raise StackFileError(
            target,
            f"TIFF tiles must be multiples of 16 pixels, got {ty} × {tx} from --chunks",
            "give --chunks Z,Y,X with Y and X multiples of 16 (e.g. 1,512,512)",
        )
    return ty, tx


def _tiff_tiles(stack: FocalStack, tile: tuple[int, int], target: Path) -> Iterator[np.ndarray]:
    """Every tile of every plane in TIFF order (plane, tile row, tile column); one row of
    tiles computed at a time (in parallel when the data are Dask), checked for NaN/Inf."""
    z, y, x = stack.shape
    ty, tx = tile
    for k in range(z):
        for y0 in range(0, y, ty):
            row = [(k, slice(y0, y0 + ty), slice(x0, x0 + tx)) for x0 in range(0, x, tx)]
            yield from _checked_blocks(stack, row, target)


# --- OME-Zarr -----------------------------------------------------------------------------


def _ngff_meta(image: NgffImage, keep: list[int], shape: tuple[int, ...]) -> _Meta:
    """z and pixel size from NGFF scale/translation (dataset, then multiscale level)."""
    ndim = len(shape)
    scale = np.ones(ndim)
    translation = np.zeros(ndim)
    for kind, values, _ in image.transforms:
        if len(values) != ndim:
            continue  # checked by the caller
        v = np.asarray(values, dtype=np.float64)
        if kind == "scale":
            scale, translation = scale * v, translation * v
        else:
            translation = translation + v
    units: list[str | None] = (
        image.axis_units if image.axis_units and len(image.axis_units) == ndim else [None] * ndim
    )
    meta = _Meta("NGFF coordinateTransformations")
    if not keep:  # a 0-D array, refused later as not a stack
        return meta
    if len(keep) == 3:
        zi, xi = keep[0], keep[2]
        zu = _length_um("1", units[zi])
        if zu is not None:
            z = (translation[zi] + scale[zi] * np.arange(shape[zi])) * zu
            if np.all(np.isfinite(z)):
                meta.z_um = z
    else:
        xi = keep[-1]
    xu = _length_um("1", units[xi])
    if xu is not None and scale[xi] > 0 and math.isfinite(scale[xi] * xu):
        meta.pixel_size_um = float(scale[xi] * xu)
    return meta


def _read_zarr(path: Path, lazy: bool | None) -> _Raw:
    import zarr

    try:
        with library_messages():
            node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise StackFileError(
            path,
            f"cannot open it as Zarr ({describe(exc)})",
            "point at an OME-Zarr folder (with .zgroup or zarr.json); "
            "a damaged one must be rewritten",
        ) from None
    metas: list[_Meta] = []
    index: tuple[int | slice, ...] = ()
    if isinstance(node, zarr.Array):
        array = node
    else:
        attrs = dict(node.attrs)
        refuse_incomplete(path, attrs)
        image = ngff_image(path, attrs)
        try:
            with library_messages():
                array = node[image.dataset_path]
        except KeyError:
            raise StackFileError(
                path,
                f"the NGFF dataset {image.dataset_path!r} is not in the Zarr group",
                "copy the dataset again completely, or fix multiscales[0].datasets[0].path",
            ) from None
        except Exception as exc:
            raise StackFileError(
                path,
                f"NGFF dataset {image.dataset_path!r} cannot be opened ({describe(exc)})",
                _FIX_CORRUPT,
            ) from None
        if not isinstance(array, zarr.Array):
            raise StackFileError(
                path,
                f"NGFF dataset {image.dataset_path!r} is a group, not an array",
                "fix the NGFF metadata or export the image again",
            )
        for _, values, where in image.transforms:
            if len(values) != array.ndim:
                raise StackFileError(
                    path,
                    f"NGFF metadata: {where} has {len(values)} values for the "
                    f"{array.ndim}-D array {image.dataset_path!r}",
                    "give one value per axis (fix .zattrs / zarr.json)",
                )
        types = image.axis_types
        if types is not None and len(types) != array.ndim:
            raise StackFileError(
                path,
                f"NGFF metadata: multiscales[0].axes names {len(types)} axes for the "
                f"{array.ndim}-D array {image.dataset_path!r}",
                "give one axis per array dimension (fix .zattrs / zarr.json)",
            )
        if types is None:
            types = ["space"] * array.ndim
        # Drop singleton non-space axes (t, c of a tczyx image).
        keep = [i for i, t in enumerate(types) if t == "space" or array.shape[i] != 1]
        index = tuple(slice(None) if i in keep else 0 for i in range(array.ndim))
        if "focuskit" in attrs:
            metas.append(_meta_from_block(path, attrs["focuskit"], "focuskit Zarr attribute"))
        metas.append(_ngff_meta(image, keep, tuple(array.shape)))
    # A chunk missing from disk reads as the fill value: refuse before reading anything.
    check_chunks(path, array)
    nbytes = math.prod(array.shape) * np.dtype(array.dtype).itemsize
    if lazy is None:
        lazy = nbytes > _LAZY_ABOVE_BYTES
    if lazy:
        data = checked_dask_array(path, array)
        data = data[index] if index else data
    else:
        data = read_pixels(path, array, index if index else ...)
    return _Raw(data, None, metas)


def ngff_multiscales(
    name: str, z_um: Sequence[float], pixel_size_um: float
) -> list[dict[str, Any]]:
    """NGFF 0.4 ``multiscales`` for one (Z, Y, X) level ``"0"`` in µm.

    The z scale is the median step and the translation the first z (NGFF cannot hold an
    uneven z list: the exact one is in the focuskit block).

    Parameters
    ----------
    name : str
        The image's name.
    z_um : sequence of float
        z of each plane (µm).
    pixel_size_um : float
        Pixel size at the sample (µm).

    Returns
    -------
    multiscales : list of dict
        The group attribute ``multiscales``.
    """
    zs = as_z_list(np.asarray(z_um, dtype=np.float64))
    step = float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
    return [
        {
            "version": "0.4",
            "name": name,
            "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [step, pixel_size_um, pixel_size_um]},
                        {"type": "translation", "translation": [zs[0], 0.0, 0.0]},
                    ],
                }
            ],
        }
    ]


def create_zarr_level(
    root: Any,
    shape: tuple[int, int, int],
    dtype: Any,
    chunks: tuple[int, int, int],
    compression: str | None,
) -> Any:
    """The level-``"0"`` array of a focuskit OME-Zarr group, every chunk to be stored.

    Parameters
    ----------
    root : zarr.Group
        The group (Zarr format 2).
    shape, chunks : tuple of int
        (Z, Y, X) shape and chunk shape.
    dtype : dtype
        Pixel type.
    compression : {'zlib', None}
        Chunk compression.

    Returns
    -------
    array : zarr.Array
        The empty array.
    """
    import numcodecs

    return root.create_array(
        "0",
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compressors=numcodecs.Zlib(level=6) if compression else None,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=0,
        # Every chunk on disk, even an all-zero one: the reader refuses missing
        # chunks (a half-copied dataset) rather than reading them as zeros.
        config={"write_empty_chunks": True},
    )


def _write_zarr(
    stack: FocalStack,
    target: Path,
    *,
    overwrite: bool,
    compression: str | None,
    chunks: tuple[int, int, int] | None = None,
) -> None:
    import zarr

    z, y, x = stack.shape
    chunks = _zarr_chunks(stack.shape, chunks, target)
    multiscales = ngff_multiscales(_strip_suffix(target.name), stack.z_um, stack.pixel_size_um)
    # Zarr writes chunks from its own event-loop thread: an interrupt that reached this thread
    # mid-call would leave that writer filling the temporary folder while it is removed.
    # Interrupts are held during each Zarr call and acted on between them.
    with atomic_output(target, overwrite=overwrite, directory=True) as tmp:
        with signals_held():
            root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            array = create_zarr_level(root, (z, y, x), stack.dtype, chunks, compression)
        # Chunk by chunk, a batch of up to _BATCH_BYTES computed at a time (in parallel when
        # the data are Dask): memory stays a few chunks whatever the size of the stack.
        for batch in _chunk_batches(stack.shape, chunks, stack.dtype.itemsize):
            for index, block in zip(batch, _checked_blocks(stack, batch, target), strict=True):
                with signals_held():
                    array[index] = block
        with signals_held():
            root.attrs.update({"multiscales": multiscales, "focuskit": stack_json(stack)})


# --- NPY + sidecar ------------------------------------------------------------------------


def _npy_size_problem(path: Path) -> str | None:
    """Why an NPY file is shorter than its header says, or None (checked before loading,
    so that a damaged header is not met with a huge allocation)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None  # np.load judges other versions
            start = f.tell()
    except Exception:
        return None  # np.load says what is wrong with the header
    if dtype.hasobject:
        return None
    need = math.prod(shape) * dtype.itemsize
    have = path.stat().st_size - start
    if have < need:
        return f"its pixel data is cut short ({have} of {need} bytes)"
    return None


def _read_npy(path: Path, lazy: bool | None) -> _Raw:
    problem = _npy_size_problem(path)
    if problem:
        raise StackFileError(path, problem, _FIX_CORRUPT)
    try:
        with library_messages():
            data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise StackFileError(
                path, "holds Python objects, not real numeric pixels", "save a uint/int/float array"
            ) from None
        raise StackFileError(
            path, f"cannot read it as NPY ({describe(exc)})", _FIX_CORRUPT
        ) from None
    except Exception as exc:
        raise StackFileError(
            path, f"cannot read it as NPY ({describe(exc)})", _FIX_CORRUPT
        ) from None
    if not isinstance(data, np.ndarray):
        raise StackFileError(path, "is not a single NPY array", "save one array with np.save")
    _check_npy_pair(path, data)
    colour_axis = 3 if data.ndim == 4 and data.shape[3] in (3, 4) else None
    sidecar = _sidecar_meta(path)
    return _Raw(data, colour_axis, [sidecar] if sidecar else [])


def _write_npy(
    stack: FocalStack,
    target: Path,
    *,
    overwrite: bool,
    compression: str | None,
    chunks: tuple[int, int, int] | None = None,
) -> None:
    if stack.is_lazy:
        _write_npy_streamed(stack, target, overwrite=overwrite)
        return
    data = _checked_array(stack, target)
    sidecar = _sidecar_paths(target)[0]
    # The sidecar names the array it describes, so that a pair split by a crash (the array
    # renamed, the process killed before the sidecar) is refused on reading, never mixed.
    block = {**stack_json(stack), _NPY_ARRAY_KEY: _npy_fingerprint(data)}
    text = json.dumps(block, indent=1, allow_nan=False)
    with atomic_outputs([target, sidecar], overwrite=overwrite) as (tmp, tmp_json):
        with open(tmp, "wb") as f:
            np.save(f, data, allow_pickle=False)
        tmp_json.write_text(text, encoding="utf-8")


def _write_npy_streamed(stack: FocalStack, target: Path, *, overwrite: bool) -> None:
    """A lazy stack as NPY, written band by band (C order) with its CRC-32 kept running."""
    z, y, x = stack.shape
    dtype = stack.dtype
    sidecar = _sidecar_paths(target)[0]
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": stack.shape,
    }
    rows = max(1, min(y, _BATCH_BYTES // max(1, x * dtype.itemsize)))
    crc = 0
    with atomic_outputs([target, sidecar], overwrite=overwrite) as (tmp, tmp_json):
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for k in range(z):
                for y0 in range(0, y, rows):
                    (band,) = _checked_blocks(stack, [(k, slice(y0, y0 + rows), slice(None))], tmp)
                    raw = np.ascontiguousarray(band, dtype=dtype).data
                    crc = zlib.crc32(raw, crc)
                    f.write(raw)
        fingerprint = {"shape": list(stack.shape), "dtype": dtype.str, "crc32": crc}
        block = {**stack_json(stack), _NPY_ARRAY_KEY: fingerprint}
        tmp_json.write_text(json.dumps(block, indent=1, allow_nan=False), encoding="utf-8")


def _npy_fingerprint(data: np.ndarray) -> dict[str, Any]:
    """Shape, dtype and CRC-32 of the pixels (C order) of an NPY array."""
    return {
        "shape": list(data.shape),
        "dtype": data.dtype.str,
        "crc32": zlib.crc32(np.ascontiguousarray(data).data),
    }


def _check_npy_pair(path: Path, data: np.ndarray) -> None:
    """Refuse an array whose own sidecar was written for another array."""
    sidecar = _sidecar_paths(path)[0]
    if not sidecar.is_file():
        return
    try:
        block = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return  # reported by the metadata reader
    expected = block.get(_NPY_ARRAY_KEY) if isinstance(block, dict) else None
    if not isinstance(expected, dict):
        return  # written by hand or by focuskit < 0.3: nothing to compare
    if expected != _npy_fingerprint(data):
        raise StackFileError(
            path,
            f"its sidecar {sidecar.name} was written for another array (an interrupted or "
            "outside write)",
            "write the stack again, or delete the sidecar to read the pixels without it",
        )


# --- Shared checks ------------------------------------------------------------------------


def _nonfinite_error(path: Path, plane: int, count: int, writing: bool) -> StackFileError:
    return StackFileError(
        path,
        f"pixel data contains NaN/Inf (first in plane {plane}, {count} there)",
        "replace them (e.g. np.nan_to_num) before "
        + ("writing" if writing else "saving the stack"),
    )


def _first_nonfinite(data: np.ndarray) -> tuple[int, int] | None:
    """(plane, count in that plane) of the first plane with NaN/Inf, for float data."""
    if data.dtype.kind != "f":
        return None
    for i in range(data.shape[0]):
        bad = int(np.count_nonzero(~np.isfinite(data[i])))
        if bad:
            return i, bad
    return None


def _checked_plane(stack: FocalStack, i: int, target: Path) -> np.ndarray:
    plane = np.asarray(stack.data[i])
    if plane.dtype.kind == "f" and not np.all(np.isfinite(plane)):
        raise _nonfinite_error(target, i, int(np.count_nonzero(~np.isfinite(plane))), True)
    return plane


def _checked_array(stack: FocalStack, target: Path) -> np.ndarray:
    data = np.asarray(stack.data)
    bad = _first_nonfinite(data)
    if bad:
        raise _nonfinite_error(target, bad[0], bad[1], True)
    return data


def _zarr_chunks(
    shape: tuple[int, int, int], chunks: tuple[int, int, int] | None, target: Path
) -> tuple[int, int, int]:
    """The Zarr chunks: as given (each clipped to the array), else one plane of up to 1024²."""
    if chunks is None:
        return 1, min(shape[1], _ZARR_CHUNK), min(shape[2], _ZARR_CHUNK)
    if len(chunks) != 3 or any(
        isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in chunks
    ):
        raise StackFileError(
            target,
            f"chunks must be three whole numbers ≥ 1 (Z, Y, X), got {chunks!r}",
            "give --chunks Z,Y,X, e.g. 1,512,512",
        )
    cz, cy, cx = (int(min(c, n)) for c, n in zip(chunks, shape, strict=True))
    return cz, cy, cx


def _chunk_batches(
    shape: tuple[int, int, int], chunks: tuple[int, int, int], itemsize: int
) -> Iterator[list[tuple[slice, slice, slice]]]:
    """The chunk grid in C order, in batches of about ``_BATCH_BYTES`` (at least one chunk)."""
    per_batch = max(1, _BATCH_BYTES // max(1, math.prod(chunks) * itemsize))
    grid = itertools.product(*(range(0, n, c) for n, c in zip(shape, chunks, strict=True)))
    batch: list[tuple[slice, slice, slice]] = []
    for origin in grid:
        (z0, y0, x0), (cz, cy, cx) = origin, chunks
        batch.append((slice(z0, z0 + cz), slice(y0, y0 + cy), slice(x0, x0 + cx)))
        if len(batch) == per_batch:
            yield batch
            batch = []
    if batch:
        yield batch


def _checked_blocks(stack: FocalStack, indices: Sequence[Any], target: Path) -> list[np.ndarray]:
    """``stack.data[index]`` for each index as NumPy (one Dask compute for them all, so
    they are read in parallel), refused if a float block holds NaN/Inf."""
    if stack.is_lazy:
        import dask

        blocks = [np.asarray(b) for b in dask.compute(*(stack.data[i] for i in indices))]
    else:
        blocks = [np.asarray(stack.data[i]) for i in indices]
    for index, block in zip(indices, blocks, strict=True):
        if block.dtype.kind == "f" and not np.all(np.isfinite(block)):
            plane = index[0].start if isinstance(index[0], slice) else index[0]
            raise _nonfinite_error(target, int(plane or 0), int((~np.isfinite(block)).sum()), True)
    return blocks


_READERS: dict[str, Callable[[Path, bool | None], _Raw]] = {
    "tiff": _read_tiff,
    "zarr": _read_zarr,
    "npy": _read_npy,
}
_WRITERS: dict[str, Callable[..., None]] = {
    "tiff": _write_tiff,
    "zarr": _write_zarr,
    "npy": _write_npy,
}


# --- Public API ---------------------------------------------------------------------------


def _to_gray(path: Path, data: Any, axis: int, rgb: Rgb) -> Any:
    n = data.shape[axis]
    if rgb == "error":
        raise StackFileError(
            path,
            f"has a colour axis ({n} channels, shape {tuple(data.shape)}), not a grayscale stack",
            "pass --gray (rgb='gray' in Python) for luminance, "
            "or rgb=CHANNEL (0, 1, 2) to pick one channel",
        )
    data = np.moveaxis(np.asarray(data), axis, -1)
    if rgb == "gray":
        out = np.empty(data.shape[:-1], dtype=np.float32)
        weights = np.asarray(_LUMA, dtype=np.float32)
        if out.ndim == 2:
            return np.asarray(data[..., :3], dtype=np.float32) @ weights
        for i in range(out.shape[0]):
            out[i] = np.asarray(data[i, ..., :3], dtype=np.float32) @ weights
        return out
    if isinstance(rgb, (int, np.integer)) and not isinstance(rgb, bool) and 0 <= rgb < n:
        return np.ascontiguousarray(data[..., int(rgb)])
    raise ConfigError(f"rgb must be 'error', 'gray' or a channel index 0..{n - 1}, got {rgb!r}")


def _resolve(metas: Sequence[_Meta], name: str) -> tuple[Any, str] | None:
    for meta in metas:
        value = getattr(meta, name)
        if value is not None:
            return value, meta.source
    return None


def read_stack(
    path: str | os.PathLike[str],
    *,
    pixel_size_um: float | None = None,
    z_um: Sequence[float] | np.ndarray | None = None,
    z_step_um: float | None = None,
    z_start_um: float = 0.0,
    optics: Optics | None = None,
    rgb: Rgb = "error",
    lazy: bool | None = None,
) -> FocalStack:
    """Read a focal stack from OME-TIFF / TIFF, OME-Zarr or NPY (+ sidecar JSON).

    Values given here override the file's (``z_step_um``/``z_start_um`` build
    ``z = z_start + k·z_step``); the file's fill the rest: for TIFF the OME-XML
    (PhysicalSizeX, Plane PositionZ), then the focuskit OME annotation, a sidecar
    ``<file>.json`` / ``<stem>.json``, ImageJ metadata, tifffile's JSON description.
    A 2-D image is read as a 1-plane stack when one z is known.

    ``rgb`` handles a colour axis: ``"error"`` (default) refuses it, ``"gray"`` converts
    to float32 luminance 0.2125·R + 0.7154·G + 0.0721·B (BT.709; intensity scale kept,
    alpha ignored), an int picks that channel (dtype kept). ``lazy`` (OME-Zarr, TIFF):
    True keeps a Dask array over the chunks, False loads it, None loads up to 512 MiB.
    Lazy data is not checked for NaN/Inf; a chunk that cannot be decoded raises
    ``StackFileError`` when it is computed. An OME-Zarr must have every chunk (every
    shard) on disk: zarr would read a missing one as the fill value. Every problem raises
    ``StackFileError``, its message one line.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.ome.tif``, ``.tif``, ``.ome.zarr``, ``.zarr`` or ``.npy`` path.
    pixel_size_um : float, optional
        Pixel size at the sample, in µm, overriding the file's.
    z_um : sequence of float or ndarray, optional
        One z position per plane, in µm, overriding the file's.
    z_step_um : float, optional
        z step, in µm, building ``z = z_start + k·z_step``.
    z_start_um : float, optional
        z of the first plane, in µm, with ``z_step_um`` (default 0).
    optics : Optics, optional
        The microscope, overriding the file's.
    rgb : {'error', 'gray'} or int, optional
        What to do with a colour axis (default 'error').
    lazy : bool or None, optional
        OME-Zarr and TIFF: keep a Dask array (True), load (False) or load up to 512 MiB
        (None).

    Returns
    -------
    stack : FocalStack
        The stack with z positions and pixel size in µm.

    Raises
    ------
    StackFileError
        If the file is missing, unreadable or corrupt (an OME-Zarr chunk missing or
        undecodable, NGFF metadata of the wrong type), its suffix is unsupported, its pixel
        size or z positions are missing or invalid, or it holds NaN/Inf.
    """
    p = Path(path)
    read = _read(
        p,
        pixel_size_um=pixel_size_um,
        z_um=z_um,
        z_step_um=z_step_um,
        z_start_um=z_start_um,
        optics=optics,
        rgb=rgb,
        lazy=lazy,
        need_z=True,
        need_pixel_size=True,
    )
    try:
        return FocalStack(
            read.planes, read.z_um, read.pixel_size_um, read.optics, read.focus_z_um, read.metadata
        )
    except ConfigError as exc:
        raise StackFileError(p, str(exc), _FIX_JSON) from None


@dataclass
class Images:
    """The planes of one image file, for work that does not need their z positions.

    For prediction, scoring and refocusing: ``planes`` (N, Y, X) NumPy or Dask; ``z_um``,
    ``pixel_size_um`` and ``optics`` None where the file does not say.

    Attributes
    ----------
    planes : (N, Y, X) ndarray or dask.array.Array
        The planes.
    pixel_size_um : float or None
        Pixel size at the sample, in µm, when known.
    optics : Optics or None, optional
        The microscope, when known.
    z_um : list of float or None, optional
        z position of each plane, in µm, when known.
    focus_z_um : float or None, optional
        True in-focus z, in µm, when known.
    metadata : dict, optional
        The file's focuskit metadata.
    """

    planes: Any
    pixel_size_um: float | None
    optics: Optics | None = None
    z_um: list[float] | None = None
    focus_z_um: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.planes.shape[0])

    def plane(self, i: int) -> np.ndarray:
        """Plane ``i`` as a NumPy (Y, X) array.

        Parameters
        ----------
        i : int
            Plane index.

        Returns
        -------
        plane : (Y, X) ndarray
            The plane.
        """
        return np.asarray(self.planes[i])

    def as_stack(self) -> FocalStack:
        """A :class:`FocalStack` (z = 0, 1, 2, … µm where the file gives none).

        Returns
        -------
        stack : FocalStack
            The planes as a stack.

        Raises
        ------
        ConfigError
            If the pixel size is unknown, or the z positions are invalid for a stack.
        """
        z = self.z_um if self.z_um is not None else [float(k) for k in range(len(self))]
        if self.pixel_size_um is None:
            raise ConfigError("the image has no pixel size — pass --pixel-size UM")
        return FocalStack(
            self.planes, z, self.pixel_size_um, self.optics, self.focus_z_um, self.metadata
        )


# Image files read as plain 2-D images (no focuskit metadata), not as focal stacks.
PLAIN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_plain_image(path: str | os.PathLike[str], *, rgb: Rgb = "error") -> np.ndarray:
    """One 2-D grey image from a PNG / JPEG / BMP / GIF / WebP.

    With ``rgb="gray"``, the BT.709 luminance of a colour image. Such files carry no pixel
    size or z.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    rgb : {'error', 'gray'} or int, optional
        What to do with a colour image: refuse (default), luminance, or one channel.

    Returns
    -------
    image : (Y, X) ndarray
        The grey image.

    Raises
    ------
    StackFileError
        If the file is missing, unreadable, coloured with ``rgb="error"``, or not 2-D.
    ConfigError
        If ``rgb`` is not a valid choice.
    """
    p = Path(path)
    if not p.is_file():
        raise StackFileError(p, "file not found", "check the path")
    import skimage.io

    try:
        # Our own handle, closed here even when a plugin fails half-way (imageio left it
        # to the garbage collector, which warned "unclosed file" later).
        with library_messages(), open(p, "rb") as f:
            data = np.asarray(skimage.io.imread(f))
    except Exception as exc:  # Pillow, imageio and their plugins raise many kinds
        raise StackFileError(
            p, f"cannot read the image ({image_problem(p, exc)})", "export it again as TIFF or PNG"
        ) from None
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        data = _to_gray(p, data, data.ndim - 1, rgb)
    if data.ndim != 2:
        raise StackFileError(
            p, f"has shape {data.shape}, expected one 2-D grayscale image", "save one plane"
        )
    return data


def read_images(
    path: str | os.PathLike[str],
    *,
    pixel_size_um: float | None = None,
    rgb: Rgb = "error",
    need_pixel_size: bool = True,
    lazy: bool | None = None,
) -> Images:
    """Read an image or a stack whose z positions do not matter.

    A plain PNG/JPEG/…, a single 2-D TIFF, or a stack with or without z. What the file
    says is kept; a missing pixel size is an error unless given or ``need_pixel_size=False``.
    z positions the file gives must fit its planes (one each, strictly monotonic), as for
    ``read_stack``: a file whose z list does not fit is refused, not renumbered.

    Parameters
    ----------
    path : str or os.PathLike
        A plain image or a stack file.
    pixel_size_um : float, optional
        Pixel size at the sample, in µm, overriding the file's.
    rgb : {'error', 'gray'} or int, optional
        What to do with a colour axis (default 'error').
    need_pixel_size : bool, optional
        Refuse a file without a pixel size (default True).
    lazy : bool or None, optional
        OME-Zarr and TIFF: keep a Dask array (True), load (False) or load up to 512 MiB
        (None, the default).

    Returns
    -------
    images : Images
        The planes and what the file says about them.

    Raises
    ------
    StackFileError
        If the file cannot be read, its z positions do not fit its planes, or the pixel
        size is missing when needed.
    """
    p = Path(path)
    if p.name.lower().endswith(PLAIN_IMAGE_SUFFIXES):
        data = read_plain_image(p, rgb=rgb)
        if pixel_size_um is None and need_pixel_size:
            raise StackFileError(p, "pixel size is missing (plain image)", _FIX_PIXEL)
        return Images(data[None], pixel_size_um)
    read = _read(
        p,
        pixel_size_um=pixel_size_um,
        z_um=None,
        z_step_um=None,
        z_start_um=0.0,
        optics=None,
        rgb=rgb,
        lazy=lazy,
        need_z=False,
        need_pixel_size=need_pixel_size,
    )
    return Images(
        read.planes, read.pixel_size_um, read.optics, read.z_um, read.focus_z_um, read.metadata
    )


@dataclass
class _Read:
    planes: Any
    z_um: list[float] | None
    pixel_size_um: float | None
    optics: Optics | None
    focus_z_um: float | None
    metadata: dict[str, Any]


def _read(
    p: Path,
    *,
    pixel_size_um: float | None,
    z_um: Sequence[float] | np.ndarray | None,
    z_step_um: float | None,
    z_start_um: float,
    optics: Optics | None,
    rgb: Rgb,
    lazy: bool | None,
    need_z: bool,
    need_pixel_size: bool,
) -> _Read:
    """What a stack file holds, with what was given; refuses what is missing when needed."""
    if optics is not None and not isinstance(optics, Optics):
        raise ConfigError(f"optics must be a focuskit.optics.Optics, got {type(optics).__name__}")
    if z_um is not None and z_step_um is not None:
        raise ConfigError("give either z_um or z_step_um, not both")
    if z_step_um is not None and not (math.isfinite(z_step_um) and z_step_um != 0):
        raise ConfigError(f"z_step_um must be finite and non-zero, got {z_step_um!r}")
    if not math.isfinite(z_start_um):
        raise ConfigError(f"z_start_um must be finite, got {z_start_um!r}")
    if not (p.exists() or p.is_symlink()):
        raise StackFileError(p, "file not found", "check the path")
    fmt = _format_of(p)
    if (
        fmt is None
        and p.is_dir()
        and any((p / n).exists() for n in (".zgroup", ".zarray", "zarr.json"))
    ):
        fmt = "zarr"
    if fmt is None:
        raise _unknown_suffix(p)
    raw = _READERS[fmt](p, lazy)

    data = raw.data
    if raw.colour_axis is not None:
        data = _to_gray(p, data, raw.colour_axis, rgb)
    if not is_real_numeric(data.dtype):
        raise StackFileError(
            p, f"pixel type {data.dtype} is not real numeric", "convert it to uint8/uint16/float32"
        )

    args = _Meta("given", pixel_size_um=pixel_size_um, optics=optics)
    if z_um is not None:
        try:
            args.z_um = np.asarray(z_um, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ConfigError(f"z_um must be a list of numbers, got {z_um!r:.80}") from None
    metas = [args, *raw.metas]
    z_found = _resolve(metas, "z_um")

    if data.ndim == 2:
        planes_known = z_step_um is not None or (z_found is not None and len(z_found[0]) == 1)
        if not planes_known and need_z:
            raise StackFileError(
                p,
                f"is a single 2-D image {tuple(data.shape)}, not a (Z, Y, X) stack",
                "give its z (z_um=[Z] or --z-file) to read it as a 1-plane stack",
            )
        data = data[None]
    if data.ndim != 3:
        raise StackFileError(
            p,
            f"has {data.ndim} dimensions {tuple(data.shape)}, expected a (Z, Y, X) stack",
            "save one z series of grayscale planes (split channels / time points first)",
        )
    n = int(data.shape[0])

    px_found = _resolve(metas, "pixel_size_um")
    z: Any
    if z_step_um is not None:
        z, z_source = z_start_um + z_step_um * np.arange(n, dtype=np.float64), "given"
    elif z_found is not None:
        # Even where z does not matter, a file whose z list does not fit its planes is
        # refused: the caller would otherwise number the planes 0, 1, 2 ... unsaid.
        z, z_source = z_found
    elif not need_z:
        z, z_source = None, ""
    elif px_found is None:
        raise StackFileError(
            p,
            f"pixel size and z positions of its {n} planes are missing",
            f"{_FIX_PIXEL}; {_FIX_Z}",
        )
    else:
        raise StackFileError(p, f"z positions of its {n} planes are missing", _FIX_Z)
    fix_z = (
        "give exactly one strictly increasing or decreasing z per plane"
        if need_z or z_source == "given"
        else f"fix or remove the z positions in the {z_source}"
    )
    if z is not None and len(z) != n:
        raise StackFileError(p, f"has {n} planes but {len(z)} z positions ({z_source})", fix_z)
    problem = z_problem(np.asarray(z)) if z is not None else None
    if problem:
        raise StackFileError(p, f"{problem} ({z_source})", fix_z)

    px: float | None = None
    if px_found is None:
        if need_pixel_size:
            raise StackFileError(p, "pixel size is missing", _FIX_PIXEL)
    else:
        px, px_source = px_found
        if not (math.isfinite(px) and px > 0):
            raise StackFileError(p, f"pixel size {px!r} µm ({px_source}) is not > 0", _FIX_PIXEL)

    optics_found = _resolve(metas, "optics")
    stack_optics: Optics | None = None
    if optics_found is not None:
        value, source = optics_found
        if isinstance(value, Optics):
            stack_optics = value
        else:
            try:
                stack_optics = Optics.from_dict(value)
            except (ConfigError, TypeError, ValueError, AttributeError, KeyError) as exc:
                raise StackFileError(
                    p,
                    f"optics in the {source} are invalid ({exc})",
                    "fix them, or pass the optics (--preset)",
                ) from None

    block = next((m for m in raw.metas if m.metadata is not None), None)
    focus = block.focus_z_um if block else None
    metadata = block.metadata if block and block.metadata is not None else {}

    if isinstance(data, np.ndarray):
        bad = _first_nonfinite(data)
        if bad:
            raise _nonfinite_error(p, bad[0], bad[1], False)
    z_list = None if z is None else [float(v) for v in np.asarray(z, dtype=np.float64)]
    return _Read(data, z_list, px, stack_optics, focus, metadata)


def write_stack(
    stack: FocalStack,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike[str]] = (),
    compression: Literal["zlib"] | None = "zlib",
    chunks: tuple[int, int, int] | None = None,
) -> Path:
    """Write ``stack`` atomically as OME-TIFF, OME-Zarr or NPY + ``<file>.json`` by suffix.

    The output appears complete or not at all (temporary sibling + rename). An existing
    target needs ``overwrite=True``; a target that is one of ``protect`` (the command's
    inputs) is always refused. ``compression`` is zlib or None (NPY is never compressed).
    Returns the path written.

    OME-Zarr is written chunk by chunk; a lazy (Dask) stack, or one given ``chunks``, is
    written to OME-TIFF as tiles, tile by tile, and to NPY band by band: a stack larger
    than memory is never held whole.

    Parameters
    ----------
    stack : FocalStack
        The stack to write.
    path : str or os.PathLike
        Target; the suffix picks the format (``.ome.tif``, ``.tif``, ``.ome.zarr``, ``.zarr``,
        ``.npy``).
    overwrite : bool, optional
        Allow replacing an existing target (default False).
    protect : iterable of str or os.PathLike, optional
        The command's inputs, never overwritten.
    compression : {'zlib', None}, optional
        Compression of TIFF and Zarr (default 'zlib').
    chunks : (int, int, int), optional
        OME-Zarr chunks (Z, Y, X; default one plane of up to 1024²); for OME-TIFF, Y and X
        are the tile (multiples of 16; default up to 512² when streamed). NPY ignores it.

    Returns
    -------
    path : pathlib.Path
        The path written.

    Raises
    ------
    ConfigError
        If ``stack`` is not a FocalStack or ``compression`` is invalid.
    StackFileError
        If the suffix is unsupported, the target may not be written, or the data hold NaN/Inf.
    """
    if not isinstance(stack, FocalStack):
        raise ConfigError(f"write_stack needs a FocalStack, got {type(stack).__name__}")
    if compression not in ("zlib", None):
        raise ConfigError(f"compression must be 'zlib' or None, got {compression!r}")
    target = Path(path)
    fmt = _format_of(target)
    if fmt is None:
        raise _unknown_suffix(target)
    from focuskit.io._outputs import check_outputs  # (it builds on this module)

    check_outputs({"-o": target}, overwrite=overwrite, inputs=protect)
    _WRITERS[fmt](stack, target, overwrite=overwrite, compression=compression, chunks=chunks)
    return target
