"""Focal-stack files: the FocalStack model, OME-TIFF / OME-Zarr / NPY read and write,
plain images, z files, atomic writes and the rules every output follows; chunk-wise
(Dask) reading and resumable OME-Zarr writing for images larger than memory.

numpy, tifffile and zarr only: no torch, and nothing from ``focuskit.simulate``
(io and simulate are siblings under optics in the one-way flow, docs/architecture.md).
"""

from focuskit.io._atomic import (
    atomic_output,
    atomic_outputs,
    check_output_folder,
    check_target,
    record_writes,
    signals_held,
)
from focuskit.io._chunked import (
    ChunkedWrite,
    Compute,
    block_chunks,
    compute_context,
    open_lazy,
    write_chunked,
)
from focuskit.io._convert import convert_stack
from focuskit.io._formats import (
    PLAIN_IMAGE_SUFFIXES,
    SUPPORTED_SUFFIXES,
    Images,
    read_images,
    read_plain_image,
    read_stack,
    stack_json,
    write_stack,
)
from focuskit.io._outputs import check_outputs, input_files, output_files
from focuskit.io._stack import FocalStack, plain_json
from focuskit.io._tiles import blend_ramp, tile_starts
from focuskit.io._zfile import read_z_file

__all__ = [
    "PLAIN_IMAGE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "ChunkedWrite",
    "Compute",
    "FocalStack",
    "Images",
    "atomic_output",
    "atomic_outputs",
    "blend_ramp",
    "block_chunks",
    "check_output_folder",
    "check_outputs",
    "check_target",
    "compute_context",
    "convert_stack",
    "input_files",
    "open_lazy",
    "output_files",
    "plain_json",
    "read_images",
    "read_plain_image",
    "read_stack",
    "read_z_file",
    "record_writes",
    "signals_held",
    "stack_json",
    "tile_starts",
    "write_chunked",
    "write_stack",
]
