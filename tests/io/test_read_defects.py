"""Reproductions of issue 17's read defects (items 1, 7, 11): a half-deleted OME-Zarr read
as zeros, invalid z renumbered 0, 1, 2 …, malformed NGFF metadata, and library noise
(asyncio tasks, tifffile / imageio logs) around one-line errors."""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import one_line_error, run_cli

import focuskit
from focuskit import StackFileError
from focuskit.io import FocalStack, read_images, read_plain_image, read_stack, write_stack
from focuskit.simulate import load_sample_image

SRC = Path(focuskit.__file__).resolve().parents[1]  # the focuskit under test, for subprocesses


def make_stack(n: int = 5, size: int = 48, seed: int = 0) -> FocalStack:
    rng = np.random.default_rng(seed)
    data = rng.integers(100, 4000, size=(n, size, size), dtype=np.uint16)
    return FocalStack(data, np.linspace(-2.0, 2.0, n), 0.5, metadata={"case": "defects"})


def single_error(exc: StackFileError, *needles: str) -> str:
    """The error is one line naming the file, the problem and the fix."""
    text = str(exc)
    assert "\n" not in text and " — " in text and Path(exc.path).name in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


# --- 1. A half-deleted OME-Zarr is refused, not read as zeros -----------------------------


def chunk_files(folder: Path) -> list[Path]:
    meta = {".zarray", ".zattrs", ".zgroup", "zarr.json"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in meta)


def test_half_deleted_zarr_is_refused_naming_the_first_missing_chunk(tmp_path):
    path = write_stack(make_stack(n=7), tmp_path / "s.ome.zarr")
    for plane in (1, 3, 5):
        shutil.rmtree(path / "0" / str(plane))
    for lazy in (False, True, None):
        with pytest.raises(StackFileError) as info:
            read_stack(path, lazy=lazy)
        single_error(info.value, "chunk 0/1/0/0 is missing", "(of 7)", "copy the dataset again")
    code, _, err = run_cli("info", path)
    one_line_error(code, err, "chunk 0/1/0/0 is missing")
    code, out, err = run_cli("find-focus", path, "--json")
    one_line_error(code, err, "chunk 0/1/0/0 is missing")
    assert out == ""


def _ngff_group(path: Path, data: np.ndarray, fmt: int, **array_kw) -> zarr.Array:
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    array = root.create_array("0", shape=data.shape, dtype=data.dtype, **array_kw)
    array[...] = data
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 0.5, 0.5]}]}],
    }]  # fmt: skip
    return array


NESTED = {"name": "v2", "separator": "/"}
DOTTED = {"name": "default", "separator": "."}
LAYOUTS = {
    "v2 nested": (2, {"chunks": (1, 16, 16), "chunk_key_encoding": NESTED}),
    "v2 flat": (2, {"chunks": (1, 16, 16)}),
    "v3": (3, {"chunks": (1, 16, 16)}),
    "v3 dotted": (3, {"chunks": (1, 16, 16), "chunk_key_encoding": DOTTED}),
    "v3 sharded": (3, {"chunks": (1, 8, 8), "shards": (2, 16, 16)}),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_missing_chunk_is_refused_in_every_layout(tmp_path, layout):
    fmt, kw = LAYOUTS[layout]
    data = make_stack(n=4, size=32).data
    path = tmp_path / "other.ome.zarr"
    array = _ngff_group(path, data, fmt, **kw)
    np.testing.assert_array_equal(read_stack(path).data, data)  # complete: read as written
    blocks = kw.get("shards", kw["chunks"])
    expected = int(np.prod([-(-s // b) for s, b in zip(data.shape, blocks, strict=True)]))
    files = chunk_files(path / "0")
    assert len(files) == expected
    key = array.metadata.encode_chunk_key((1, 1, 0))
    (path / "0" / key).unlink()
    with pytest.raises(StackFileError) as info:
        read_stack(path)
    unit = "shard" if "shards" in kw else "chunk"
    single_error(info.value, f"{unit} 0/{key} is missing (of {expected})")


def test_the_chunk_check_lists_files_and_reads_no_pixels(tmp_path, monkeypatch):
    import focuskit.io._formats as formats

    path = write_stack(make_stack(), tmp_path / "s.ome.zarr")
    shutil.rmtree(path / "0" / "4")

    def no_reading(*args, **kwargs):
        raise AssertionError("pixels were read before the chunk check")

    monkeypatch.setattr(formats, "read_pixels", no_reading)
    monkeypatch.setattr(formats, "checked_dask_array", no_reading)
    with pytest.raises(StackFileError, match="chunk 0/4/0/0 is missing"):
        read_stack(path)


def test_the_writer_stores_every_chunk_so_zero_planes_read_back(tmp_path):
    data = np.zeros((3, 20, 20), np.uint16)
    data[1] = 7  # planes 0 and 2 are all fill value: zarr would skip them by default
    path = write_stack(FocalStack(data, [0.0, 1.0, 2.0], 0.5), tmp_path / "z.ome.zarr")
    assert [p.relative_to(path / "0").as_posix() for p in chunk_files(path / "0")] == [
        "0/0/0",
        "1/0/0",
        "2/0/0",
    ]
    np.testing.assert_array_equal(read_stack(path).data, data)


# --- 7. refocus apply refuses a file's invalid z, as read_stack does ------------------------


@pytest.mark.parametrize(
    ("z_um", "problem"),
    [
        ([0.0, 1.0], "has 3 planes but 2 z positions"),
        ([], "has 3 planes but 0 z positions"),
        ([0.0, 1.0, 1.0], "not strictly monotonic"),
    ],
)
def test_invalid_file_z_is_refused_where_z_does_not_matter(tmp_path, z_um, problem):
    path = tmp_path / "w.npy"
    np.save(path, make_stack(n=3).data)
    path.with_name("w.npy.json").write_text(json.dumps({"pixel_size_um": 0.2, "z_um": z_um}))
    for read in (read_stack, read_images):
        with pytest.raises(StackFileError) as info:
            read(path)
        single_error(info.value, problem, "sidecar w.npy.json")
    out = tmp_path / "out.ome.tif"
    code, stdout, err = run_cli(
        "refocus", "apply", path, "-o", out, "--model", "builtin:refocus-40x-fluor", "--force"
    )
    one_line_error(code, err, problem, "fix or remove the z positions in the sidecar w.npy.json")
    assert stdout == "" and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npy", "w.npy.json"]


def test_a_stack_without_z_is_still_numbered_where_z_does_not_matter(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, make_stack(n=3).data)
    images = read_images(path, pixel_size_um=0.2)
    assert images.z_um is None and images.as_stack().z_um.tolist() == [0.0, 1.0, 2.0]


# --- 11. Malformed NGFF metadata: one line naming the field --------------------------------


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def mutate(ms: dict) -> None:
        node = ms
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return mutate


DS = ("datasets", 0)
NGFF_CASES = {
    "transformations as strings": (
        _set(*DS, "coordinateTransformations", ["scale", "translation"]),
        "datasets[0].coordinateTransformations[0] is a str",
    ),
    "transformations a string": (
        _set(*DS, "coordinateTransformations", "scale"),
        "datasets[0].coordinateTransformations is a str, not a list",
    ),
    "scale of strings": (
        _set(*DS, "coordinateTransformations", 0, "scale", ["1", "0.5", "0.5"]),
        "coordinateTransformations[0].scale[0] is '1', not a number",
    ),
    "scale too short": (
        _set(*DS, "coordinateTransformations", 0, "scale", [1.0, 0.5]),
        "coordinateTransformations[0].scale has 2 values for the 3-D array",
    ),
    "scale too large for a float": (
        _set(*DS, "coordinateTransformations", 0, "scale", [10**400, 0.5, 0.5]),
        "scale[0] is",
    ),
    "unknown transformation": (
        _set(*DS, "coordinateTransformations", 0, "type", "affine"),
        "coordinateTransformations[0].type is 'affine'",
    ),
    "scale by path": (
        _set(*DS, "coordinateTransformations", 0, {"type": "scale", "path": "s.bin"}),
        "'path' to binary values is unsupported",
    ),
    "level transformations a dict": (
        _set("coordinateTransformations", {"type": "scale"}),
        "multiscales[0].coordinateTransformations is a dict",
    ),
    "axes a string": (_set("axes", "zyx"), "multiscales[0].axes is a str, not a list"),
    "axis unit a number": (_set("axes", 0, "unit", 5), "axes[0].unit is an int"),
    "axis a number": (_set("axes", 1, 3), "axes[1] is an int"),
    "too few axes": (_set("axes", [{"name": "y"}, {"name": "x"}]), "names 2 axes for the 3-D"),
    "datasets a dict": (_set("datasets", {"path": "0"}), "datasets is not a non-empty list"),
    "dataset a string": (_set("datasets", ["0"]), "datasets[0] is a str"),
    "dataset path a number": (_set(*DS, "path", 0), "datasets[0].path is 0"),
    "dataset not there": (_set(*DS, "path", "9"), "dataset '9' is not in the Zarr group"),
}


@pytest.fixture(scope="module")
def zarr_file(tmp_path_factory) -> Path:
    return write_stack(make_stack(), tmp_path_factory.mktemp("ngff") / "s.ome.zarr")


@pytest.mark.parametrize("case", NGFF_CASES)
def test_malformed_ngff_metadata_is_one_line(tmp_path, zarr_file, case):
    mutate, needle = NGFF_CASES[case]
    path = tmp_path / "bad.ome.zarr"
    shutil.copytree(zarr_file, path)
    attrs = json.loads((path / ".zattrs").read_text())
    mutate(attrs["multiscales"][0])
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(StackFileError) as info:
        read_stack(path)
    single_error(info.value, needle)
    code, _, err = run_cli("info", path)
    one_line_error(code, err, needle)


@pytest.mark.parametrize("multiscales", ["x", {"datasets": []}, [3], [{"datasets": "0"}]])
def test_malformed_multiscales_is_one_line(tmp_path, zarr_file, multiscales):
    path = tmp_path / "bad.ome.zarr"
    shutil.copytree(zarr_file, path)
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["multiscales"] = multiscales
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(StackFileError) as info:
        read_stack(path)
    single_error(info.value, "NGFF metadata: multiscales")


# --- 11. Library noise: a bad file ends in exactly one line --------------------------------


def _zarr_loop_pending() -> int:
    import asyncio

    from zarr.core import sync as zarr_sync

    loop = zarr_sync.loop[0]
    if loop is None:
        return 0

    async def count() -> int:
        me = asyncio.current_task()
        return sum(1 for t in asyncio.all_tasks() if t is not me and not t.done())

    return asyncio.run_coroutine_threadsafe(count(), loop).result(10)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_bad_chunk_leaves_no_zarr_task_running(tmp_path, damage):
    path = write_stack(make_stack(n=21), tmp_path / "s.ome.zarr")
    chunk = path / "0" / "4" / "0" / "0"
    raw = chunk.read_bytes()
    chunk.write_bytes(b"\x00garbage" * 20 if damage == "garbage" else raw[: len(raw) // 3])
    with pytest.raises(StackFileError) as info:
        read_stack(path)
    single_error(info.value, "cannot read its pixels", "corrupt or truncated")
    # zarr's other chunk reads of the failed gather finished before the error was raised
    # (left running, they end at exit as pages of "Task was destroyed but it is pending!")
    assert _zarr_loop_pending() == 0
    with pytest.raises(StackFileError) as info:
        np.asarray(read_stack(path, lazy=True).data)  # met when the bad chunk is computed
    single_error(info.value, "cannot read its pixels", "corrupt or truncated")


NOISE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from focuskit import StackFileError
    from focuskit.io import read_stack
    for path in sys.argv[1:-1]:
        for lazy in (False, True):
            try:
                np.asarray(read_stack(path, lazy=lazy).data)
            except StackFileError:
                pass
            else:
                raise SystemExit(f"{path} was read")
    sys.argv = ["focuskit", "info", sys.argv[-1]]
    from focuskit.cli import app
    app()
    """
)


def test_bad_chunks_print_one_line_and_no_asyncio_noise(tmp_path):
    # The noise came at interpreter exit, so this runs a real process.
    paths = []
    for damage in ("garbage", "truncated"):
        path = write_stack(make_stack(n=21), tmp_path / f"{damage}.ome.zarr")
        for plane in (4, 11):
            chunk = path / "0" / str(plane) / "0" / "0"
            raw = chunk.read_bytes()
            chunk.write_bytes(b"\xffjunk" * 9 if damage == "garbage" else raw[: len(raw) // 2])
        paths.append(path)
    result = subprocess.run(
        [sys.executable, "-c", NOISE_SCRIPT, *map(str, paths), str(paths[0])],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "garbage.ome.zarr: cannot read its pixels" in lines[0]


@contextmanager
def as_in_a_fresh_process() -> Iterator[None]:
    """Logging and warnings as a fresh `focuskit` process has them (pytest's capture off):
    a library's log record with no handler reaches stderr through logging.lastResort, and
    a warning through warnings.showwarning."""

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    gc.collect()  # a fresh process has no garbage of earlier tests left to finalize
    root = logging.getLogger()
    handlers = root.handlers
    root.handlers = []
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            warnings.simplefilter("default")
            warnings.showwarning = show
            yield
    finally:
        root.handlers = handlers


def run_fresh(*args: object) -> tuple[int, str, str]:
    with as_in_a_fresh_process():
        return run_cli(*args)


@pytest.fixture
def truncated_tiff(tmp_path) -> Path:
    path = write_stack(make_stack(n=5, size=64), tmp_path / "s.ome.tif")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[:3000])
    return cut


def test_simulate_sample_image_on_a_truncated_tiff_is_one_line(truncated_tiff, tmp_path):
    out = tmp_path / "out.ome.tif"
    code, _, err = run_fresh("simulate", "-o", out, "--sample-image", truncated_tiff, "--size", 64)
    one_line_error(code, err, "cut.tif: cannot read the sample image")
    assert not out.exists()


def test_truncated_tiffs_are_one_line_in_python(truncated_tiff, caplog):
    caplog.set_level("DEBUG")
    with pytest.raises(Exception) as info:
        load_sample_image(truncated_tiff, 0.5)
    assert "\n" not in str(info.value) and "cannot read the sample image" in str(info.value)
    with pytest.raises(StackFileError) as info:
        read_stack(truncated_tiff)
    single_error(info.value, "corrupt or truncated")
    assert [r for r in caplog.records if r.name.startswith("tifffile")] == []


def test_a_text_file_named_png_is_one_line(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\nsecond line\n")
    for read in (read_plain_image, read_images):
        with pytest.raises(StackFileError) as info:
            read(text)
        single_error(info.value, "not a PNG or other image file Pillow knows")
    out = tmp_path / "out.ome.tif"
    for args in (
        ("refocus", "apply", text, "-o", out, "--pixel-size", 0.2),
        ("singleshot", "predict", text, "--pixel-size", 0.5),
        ("simulate", "-o", out, "--sample-image", text, "--size", 64),
    ):
        code, _, err = run_fresh(*args)
        one_line_error(code, err, "notes.png")
        assert "imageio" not in err and "pip install" not in err
    assert not out.exists()


def test_a_text_file_named_tif_is_one_line(tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("this is not an image either\n")
    with pytest.raises(StackFileError) as info:
        read_stack(text)
    single_error(info.value, "cannot read it as TIFF")
    code, _, err = run_fresh("info", text)
    one_line_error(code, err, "notes.tif")


def test_a_sidecar_nested_too_deep_is_one_line(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, make_stack(n=3).data)
    path.with_name("s.npy.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(StackFileError) as info:
        read_stack(path)
    single_error(info.value, "sidecar metadata is not valid JSON")


def test_an_npy_cut_short_is_refused_before_loading(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((3, 64, 64), np.uint16))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(StackFileError) as info:
        read_stack(path, pixel_size_um=1.0, z_step_um=1.0)
    single_error(info.value, "cut short", "corrupt or truncated")


@pytest.mark.parametrize("key", ["pixel_size_um", "focus_z_um", "z_um"])
def test_metadata_numbers_too_large_for_a_float_are_one_line(tmp_path, key):
    path = tmp_path / "big.npy"
    np.save(path, make_stack(n=2).data)
    block = {"pixel_size_um": 0.5, "z_um": [0.0, 1.0], "focus_z_um": 0.5}
    block[key] = [0, 10**400] if key == "z_um" else 10**400  # JSON allows any integer
    path.with_name("big.npy.json").write_text(json.dumps(block))
    with pytest.raises(StackFileError) as info:
        read_stack(path)
    single_error(info.value, key if key != "z_um" else "NaN/Inf")
