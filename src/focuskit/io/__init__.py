"""Focal-stack files: the FocalStack model and OME-TIFF / OME-Zarr / NPY read and write.

No torch, and nothing from ``focuskit.simulate`` or below it: io sits under optics and
simulate in the one-way flow (DESIGN.md).
"""

from focuskit.io._formats import SUPPORTED_SUFFIXES, read_stack, stack_json, write_stack
from focuskit.io._stack import FocalStack
from focuskit.io._zfile import read_z_file

__all__ = [
    "SUPPORTED_SUFFIXES",
    "FocalStack",
    "read_stack",
    "read_z_file",
    "stack_json",
    "write_stack",
]
