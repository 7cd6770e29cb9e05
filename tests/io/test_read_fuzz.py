"""Fuzzing the stack readers (issue 17): random and mutated OME-TIFF, TIFF, NPY + sidecar,
OME-Zarr (metadata JSON and chunks) and PNG files, and NGFF metadata dicts.

A reader either returns a stack or raises ``StackFileError`` with a one-line message;
no other exception escapes, and no library logs, warns or prints on stderr. Each test is
bounded (``FOCUSKIT_FUZZ_EXAMPLES``, default 50; raise it for a longer campaign).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focuskit import StackFileError
from focuskit.io import FocalStack, read_images, read_plain_image, read_stack, write_stack
from focuskit.io._zarr import NgffImage, ngff_image

FUZZ = settings(
    max_examples=int(os.environ.get("FOCUSKIT_FUZZ_EXAMPLES", "50")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# --- What may come out of a read ----------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def only_documented_errors(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The block may raise StackFileError (one line) and nothing else, and nothing may be
    logged at WARNING or above, warned, or written to stderr meanwhile."""
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    capfd.readouterr()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except StackFileError as exc:
                text = str(exc)
                assert "\n" not in text and " — " in text, text
    finally:
        root.removeHandler(handler)
    loud = [f"{r.name}: {r.getMessage()}" for r in handler.records if r.levelno >= logging.WARNING]
    assert loud == [], loud
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""


def read_fully(read: Callable[..., Any], path: Path, **kw: Any) -> None:
    """Read, and compute lazy pixels too (a bad chunk of a lazy read is met there)."""
    result = read(path, **kw)
    data = getattr(result, "data", None)
    if data is None:
        data = getattr(result, "planes", result)
    np.asarray(data)


# --- Inputs -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**400), 10**400)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """Random bytes, or ``raw`` cut short, with bytes changed, or with bytes put in."""
    how = draw(st.sampled_from(["random", "truncate", "flip", "insert", "flip"]))
    if how == "random" or not raw:
        return draw(st.binary(max_size=4096))
    if how == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    out = bytearray(raw)
    if how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    at = draw(st.integers(0, len(out)))
    return bytes(out[:at]) + draw(st.binary(min_size=1, max_size=64)) + bytes(out[at:])


def small_stack() -> FocalStack:
    rng = np.random.default_rng(17)
    data = rng.integers(0, 4000, size=(3, 16, 24), dtype=np.uint16)
    return FocalStack(data, [-1.0, 0.0, 1.5], 0.5, metadata={"fuzz": True})


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("originals")
    stack = small_stack()
    files = {
        name: write_stack(stack, folder / name) for name in ("s.ome.tif", "s.npy", "s.ome.zarr")
    }
    files["s.tif"] = folder / "s.tif"
    tifffile.imwrite(
        files["s.tif"],
        stack.data,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um"},
    )
    from PIL import Image

    files["s.png"] = folder / "s.png"
    Image.fromarray((stack.data[0] // 16).astype(np.uint8)).save(files["s.png"])
    return files


@contextmanager
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- Single-file formats ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["s.ome.tif", "s.tif"])
@FUZZ
@given(data=st.data())
def test_fuzzed_tiff(originals, capfd, name, data):
    raw = data.draw(mutated(originals[name].read_bytes()))
    with scratch() as folder:
        path = folder / name
        path.write_bytes(raw)
        with only_documented_errors(capfd):
            read_fully(read_stack, path)
        with only_documented_errors(capfd):
            read_fully(read_images, path, need_pixel_size=False)


@FUZZ
@given(data=st.data())
def test_fuzzed_npy_and_sidecar(originals, capfd, data):
    raw = originals["s.npy"].read_bytes()
    sidecar = originals["s.npy"].with_name("s.npy.json").read_bytes()
    which = data.draw(st.sampled_from(["array", "sidecar", "sidecar json", "both"]))
    if which in ("array", "both"):
        raw = data.draw(mutated(raw))
    if which in ("sidecar", "both"):
        sidecar = data.draw(mutated(sidecar))
    if which == "sidecar json":
        block = json.loads(sidecar)
        key = data.draw(st.sampled_from([*block, "z_um", "optics"]))
        block[key] = data.draw(json_values)
        sidecar = json.dumps(block).encode()
    with scratch() as folder:
        path = folder / "s.npy"
        path.write_bytes(raw)
        path.with_name("s.npy.json").write_bytes(sidecar)
        with only_documented_errors(capfd):
            read_fully(read_stack, path)
        with only_documented_errors(capfd):
            read_fully(read_images, path, need_pixel_size=False)


@FUZZ
@given(data=st.data())
def test_fuzzed_png(originals, capfd, data):
    raw = data.draw(mutated(originals["s.png"].read_bytes()))
    with scratch() as folder:
        path = folder / "s.png"
        path.write_bytes(raw)
        with only_documented_errors(capfd):
            read_plain_image(path)
        with only_documented_errors(capfd):
            read_fully(read_images, path, pixel_size_um=1.0)


# --- OME-Zarr -----------------------------------------------------------------------------

numbers = st.one_of(
    json_values,
    st.lists(st.floats() | st.integers(-(10**400), 10**400) | json_values, max_size=4),
    st.lists(st.floats(0.01, 10.0), min_size=3, max_size=3),
)
transform = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["scale", "translation", "identity", "affine"]) | json_values},
        optional={"scale": numbers, "translation": numbers, "path": json_values},
    ),
)
transforms = st.lists(transform, max_size=3) | json_values
axis = st.one_of(
    st.sampled_from(["z", "y", "x", "t", ""]),
    json_values,
    st.fixed_dictionaries(
        {"name": st.sampled_from(["z", "y", "x", "c"]) | json_values},
        optional={
            "type": st.sampled_from(["space", "time", "channel"]) | json_values,
            "unit": st.sampled_from(["micrometer", "nanometer", "µm", "parsec"]) | json_values,
        },
    ),
)
dataset = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"path": st.sampled_from(["0", "1", "", "0/.zarray"]) | json_values},
        optional={"coordinateTransformations": transforms},
    ),
)
multiscale = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"datasets": st.lists(dataset, max_size=2) | json_values},
        optional={
            "axes": st.lists(axis, max_size=4) | json_values,
            "coordinateTransformations": transforms,
            "version": st.sampled_from(["0.4", "0.5"]) | json_values,
        },
    ),
)
multiscales = st.lists(multiscale, max_size=2) | json_values
ngff_attrs = st.one_of(
    st.fixed_dictionaries({"multiscales": multiscales}),
    st.fixed_dictionaries({"ome": st.fixed_dictionaries({"multiscales": multiscales})}),
    st.fixed_dictionaries({"ome": json_values}),
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)


@FUZZ
@given(attrs=ngff_attrs)
def test_fuzzed_ngff_metadata_dicts(attrs):
    try:
        image = ngff_image(Path("fuzz.ome.zarr"), attrs)
    except StackFileError as exc:
        assert "\n" not in str(exc) and "fuzz.ome.zarr" in str(exc)
    else:
        assert isinstance(image, NgffImage) and isinstance(image.dataset_path, str)
        for kind, values, _ in image.transforms:
            assert kind in ("scale", "translation")
            assert all(isinstance(v, float) and np.isfinite(v) for v in values)


zarray_fields = {
    "shape": st.lists(st.integers(-2, 40) | st.integers(-(10**20), 10**20), max_size=4)
    | json_values,
    "chunks": st.lists(st.integers(-1, 40), max_size=4) | json_values,
    "dtype": st.sampled_from(["<u2", ">u2", "<f4", "|b1", "<c8", "|O", "<U4", "<M8[s]", "zz"])
    | json_values,
    "compressor": st.sampled_from([None, {"id": "zlib", "level": 1}, {"id": "blosc"}])
    | json_values,
    "fill_value": st.sampled_from([0, None, "NaN", "Infinity", 7]) | json_values,
    "order": st.sampled_from(["C", "F"]) | json_values,
    "filters": st.none() | json_values,
    "zarr_format": st.sampled_from([2, 3]) | json_values,
    "dimension_separator": st.sampled_from(["/", "."]) | json_values,
}


@FUZZ
@given(data=st.data())
def test_fuzzed_zarr_metadata(originals, capfd, data):
    with scratch() as folder:
        path = folder / "s.ome.zarr"
        shutil.copytree(originals["s.ome.zarr"], path)
        target = data.draw(st.sampled_from([".zattrs", "0/.zarray", ".zgroup", "0/.zattrs"]))
        file = path / target
        how = data.draw(st.sampled_from(["bytes", "json", "fields"]))
        if how == "bytes":
            file.write_bytes(data.draw(mutated(file.read_bytes())))
        elif target == ".zattrs":
            attrs = json.loads(file.read_text())
            attrs.update(data.draw(ngff_attrs))
            if how == "json":
                attrs["focuskit"] = data.draw(json_values)
            file.write_text(json.dumps(attrs))
        elif target == "0/.zarray" and how == "fields":
            meta = json.loads(file.read_text())
            for key in data.draw(st.sets(st.sampled_from(sorted(zarray_fields)), min_size=1)):
                meta[key] = data.draw(zarray_fields[key])
            file.write_text(json.dumps(meta))
        else:
            file.write_text(json.dumps(data.draw(json_values)))
        for lazy in (False, True):
            with only_documented_errors(capfd):
                read_fully(read_stack, path, lazy=lazy)


@FUZZ
@given(data=st.data())
def test_fuzzed_zarr_chunks(originals, capfd, data):
    with scratch() as folder:
        path = folder / "s.ome.zarr"
        shutil.copytree(originals["s.ome.zarr"], path)
        for plane in data.draw(st.sets(st.sampled_from(["0", "1", "2"]), min_size=1)):
            chunk = path / "0" / plane / "0" / "0"
            if data.draw(st.booleans()):
                chunk.write_bytes(data.draw(mutated(chunk.read_bytes())))
            else:
                chunk.unlink()
        for lazy in (False, True):
            with only_documented_errors(capfd):
                read_fully(read_stack, path, lazy=lazy)
