"""`focuskit convert` / convert_stack: round trips keep pixels and metadata, big tiled TIFFs
stream, bad input is refused in one line and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import tifffile
import zarr
from conftest import one_line_error, run_cli

from focuskit.io import FocalStack, convert_stack, read_stack, write_stack
from focuskit.optics import get_preset


def _stack(shape=(3, 200, 300), dtype="uint16") -> FocalStack:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 4000, shape).astype(dtype)
    return FocalStack(
        data,
        [-1.5, 0.25, 2.0][: shape[0]],
        0.325,
        get_preset("deepr-20x-fluor").optics,
        0.4,
        {"sample": {"kind": "cells", "seed": 3}, "note": "µm"},
    )


def _same(a: FocalStack, b: FocalStack) -> None:
    np.testing.assert_array_equal(np.asarray(b.data), np.asarray(a.data))
    assert b.dtype == a.dtype
    assert b.z_um.tolist() == a.z_um.tolist()
    assert b.pixel_size_um == a.pixel_size_um
    assert b.optics == a.optics
    assert b.focus_z_um == a.focus_z_um
    assert b.metadata == a.metadata


def test_tiff_to_zarr_to_tiff_keeps_pixels_metadata_and_chunks(tmp_path: Path) -> None:
    original = _stack()
    src = write_stack(original, tmp_path / "s.ome.tif")
    zpath = tmp_path / "s.ome.zarr"
    code, out, err = run_cli("convert", src, "-o", zpath, "--chunks", "1,64,128", "--json")
    assert code == 0, err
    assert json.loads(out)["shape"] == [3, 200, 300]
    group = zarr.open_group(str(zpath), mode="r")
    assert group["0"].chunks == (1, 64, 128)
    ms = group.attrs["multiscales"][0]
    assert [a["unit"] for a in ms["axes"]] == ["micrometer"] * 3
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[1:] == [0.325, 0.325]
    _same(original, read_stack(zpath))
    back = tmp_path / "back.ome.tif"
    code, _, err = run_cli("convert", zpath, "-o", back, "--chunks", "1,64,96")
    assert code == 0, err
    with tifffile.TiffFile(back) as tif:
        assert tif.pages[0].is_tiled and tif.pages[0].tilelength == 64
        assert tif.pages[0].tilewidth == 96
    _same(original, read_stack(back))


def test_zarr_to_npy_streams_a_pair_the_reader_accepts(tmp_path: Path) -> None:
    original = _stack(dtype="float32")
    zpath = write_stack(original, tmp_path / "s.ome.zarr")
    stack, notes = convert_stack(zpath, tmp_path / "s.npy")
    assert stack.is_lazy and notes == []
    _same(original, read_stack(tmp_path / "s.npy"))  # the sidecar's CRC matches the array
    convert_stack(tmp_path / "s.npy", tmp_path / "t.ome.zarr")
    _same(original, read_stack(tmp_path / "t.ome.zarr"))


def test_a_plain_2d_tiff_becomes_a_one_plane_stack_at_z0(tmp_path: Path) -> None:
    image = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)
    tifffile.imwrite(tmp_path / "plain.tif", image)
    code, _, err = run_cli("convert", tmp_path / "plain.tif", "-o", tmp_path / "p.ome.zarr")
    one_line_error(code, err, "pixel size", "--pixel-size")
    assert not (tmp_path / "p.ome.zarr").exists()
    _, notes = convert_stack(tmp_path / "plain.tif", tmp_path / "p.ome.zarr", pixel_size_um=0.5)
    assert "z = 0 µm" in notes[0]
    back = read_stack(tmp_path / "p.ome.zarr")
    assert back.z_um.tolist() == [0.0] and back.pixel_size_um == 0.5
    np.testing.assert_array_equal(np.asarray(back.data)[0], image)


def _tiled_tiff(path: Path, size: int, tile: int = 512) -> None:
    """A (1, size, size) uint16 OME-TIFF written tile by tile (never whole in memory)."""

    def tiles():
        for y in range(0, size, tile):
            for x in range(0, size, tile):
                yield np.full((tile, tile), (y // tile * 7 + x // tile) % 4096, np.uint16)

    tifffile.imwrite(
        path,
        tiles(),
        shape=(1, size, size),
        dtype=np.uint16,
        tile=(tile, tile),
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5},
    )


def test_a_tiled_tiff_is_read_tile_by_tile_never_whole(tmp_path: Path, monkeypatch) -> None:
    from focuskit.io import _zarr

    src = tmp_path / "big.ome.tif"
    _tiled_tiff(src, 2048)
    largest = []
    real = _zarr._TiffChunks.__getitem__

    def counting(self, index):
        block = real(self, index)
        largest.append(block.size)
        return block

    monkeypatch.setattr(_zarr._TiffChunks, "__getitem__", counting)
    convert_stack(src, tmp_path / "big.ome.zarr", chunks=(1, 1024, 1024))
    reads = [n for n in largest if n]  # (Dask probes the array once with an empty slice)
    # Regions of whole TIFF tiles, about 1024² (four 512² tiles), never the whole plane.
    assert max(reads) == 1024 * 1024
    assert len(reads) == 4
    back = zarr.open_group(str(tmp_path / "big.ome.zarr"), mode="r")["0"]
    assert int(back[0, 1536, 1024]) == 3 * 7 + 2


_PEAK = textwrap.dedent(
    """
    import resource, sys
    from focuskit.io import convert_stack
    import dask.array, zarr, tifffile  # imported before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    convert_stack(sys.argv[1], sys.argv[2], chunks=(1, 1024, 1024), compression=None)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)
    """
)


def test_converting_a_tiled_tiff_larger_than_the_budget_stays_small(tmp_path: Path) -> None:
    src = tmp_path / "big.ome.tif"
    _tiled_tiff(src, 8192)  # 128 MiB of pixels
    nbytes_mib = 8192 * 8192 * 2 / 2**20
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(src), str(tmp_path / "big.ome.zarr")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    grew_mib = float(out.stdout.strip().splitlines()[-1])
    assert grew_mib < nbytes_mib / 2, (grew_mib, out.stderr)
    arr = zarr.open_group(str(tmp_path / "big.ome.zarr"), mode="r")["0"]
    assert arr.shape == (1, 8192, 8192) and int(arr[0, 8191, 8191]) == (15 * 7 + 15) % 4096


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    src = write_stack(_stack(), tmp_path / "s.ome.zarr")
    code, _, err = run_cli("convert", tmp_path / "missing.ome.tif", "-o", tmp_path / "m.ome.zarr")
    one_line_error(code, err, "not found")
    code, _, err = run_cli("convert", src, "-o", src, "--overwrite")
    one_line_error(code, err, "input")
    code, _, err = run_cli("convert", src, "-o", tmp_path / "o.ome.zarr", "--chunks", "1,x,5")
    one_line_error(code, err, "--chunks", "1,512,512")
    code, _, err = run_cli("convert", src, "-o", tmp_path / "o.ome.tif", "--chunks", "1,40,40")
    one_line_error(code, err, "multiples of 16")
    write_stack(_stack(), tmp_path / "taken.ome.tif")
    code, _, err = run_cli("convert", src, "-o", tmp_path / "taken.ome.tif")
    one_line_error(code, err, "already exists", "--overwrite")
    # A chunk lost from the source: refused by name before anything is written.
    broken = tmp_path / "broken.ome.zarr"
    shutil.copytree(src, broken)
    (broken / "0" / "1" / "0" / "0").unlink()
    code, _, err = run_cli("convert", broken, "-o", tmp_path / "b.ome.tif")
    one_line_error(code, err, "0/1/0/0", "missing")
    # A chunk that cannot be decoded: found mid-write; the partial output is removed.
    corrupt = tmp_path / "corrupt.ome.zarr"
    shutil.copytree(src, corrupt)
    (corrupt / "0" / "2" / "0" / "0").write_bytes(b"not zlib")
    code, _, err = run_cli("convert", corrupt, "-o", tmp_path / "c.ome.tif")
    one_line_error(code, err, "cannot read its pixels")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["broken.ome.zarr", "corrupt.ome.zarr", "s.ome.zarr", "taken.ome.tif"]


def test_a_lazily_read_tiff_is_closed_with_its_last_reference(tmp_path: Path) -> None:
    """tifffile's Zarr store holds the file open; dropping the lazy array closes it (a
    leaked handle surfaced as a ResourceWarning in whatever ran next)."""
    import gc
    import warnings

    from focuskit.io._zarr import tiff_dask_array

    path = tmp_path / "t.ome.tif"
    tifffile.imwrite(path, np.ones((2, 256, 256), np.uint16), tile=(128, 128))
    lazy = tiff_dask_array(path, (2, 256, 256), np.uint16)
    assert int(lazy.sum().compute()) == 2 * 256 * 256
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        del lazy
        gc.collect()
    assert [w for w in said if issubclass(w.category, ResourceWarning)] == []
