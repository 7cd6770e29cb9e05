"""focuskit.io: FocalStack, OME-TIFF / OME-Zarr / NPY round trips, validation, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from conftest import REAL_DATA
from conftest import needs_real_data as needs_real

from focuskit import ConfigError, StackFileError
from focuskit.io import SUPPORTED_SUFFIXES, FocalStack, read_stack, read_z_file, write_stack
from focuskit.optics import (
    DPC,
    LED,
    Brightfield,
    Camera,
    Fluorescence,
    LEDPattern,
    Objective,
    Optics,
)

REAL = REAL_DATA if REAL_DATA is not None else Path("shared/data/real")

NAMES = ["s.ome.tif", "s.ome.tiff", "s.tif", "s.ome.zarr", "s.zarr", "s.npy"]
Z_NONUNIFORM = [-3.5, -1.25, -0.1, 0.0, 0.3, 2.0, 7.75]
ILLUMINATIONS = [
    Fluorescence(),
    LED.at_angle(24.0),
    LEDPattern(((0.1, 0.0, 1.0), (-0.2, 0.3, 0.5), (0.0, -0.45, 2.0))),
    DPC(0.35, 0.48, side="top"),
    Brightfield(0.55, source_step_na=0.05),
]


def make_optics(illumination=None) -> Optics:
    return Optics(
        Objective(na=0.5, magnification=20.0),
        wavelength_um=0.53,
        camera=Camera(pixel_um=6.5, bit_depth=12, read_noise_e=2.0, offset_adu=90.0),
        illumination=illumination if illumination is not None else LED(sx=0.407),
    )


def make_data(dtype: str, shape=(7, 24, 40), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def make_stack(dtype="uint16", z=Z_NONUNIFORM, **kw) -> FocalStack:
    kw.setdefault("pixel_size_um", 0.325)
    kw.setdefault("optics", make_optics())
    kw.setdefault("focus_z_um", 0.3)
    kw.setdefault(
        "metadata",
        {
            "sample": {"kind": "cells", "seed": 3},
            "drift_um": [0.0, 0.1, -0.2],
            "note": 'µm <&> "q"',
        },
    )
    return FocalStack(make_data(dtype, (len(z), 24, 40)), z, **kw)


def assert_same(a: FocalStack, b: FocalStack) -> None:
    da, db = np.asarray(a.data), np.asarray(b.data)
    assert db.dtype == da.dtype
    assert db.shape == da.shape
    np.testing.assert_array_equal(db, da)
    assert b.z_um.tolist() == a.z_um.tolist()
    assert b.pixel_size_um == a.pixel_size_um
    assert b.optics == a.optics
    assert b.focus_z_um == a.focus_z_um
    assert b.metadata == a.metadata


def listing(d: Path) -> list[str]:
    return sorted(os.listdir(d))


def expect_error(match_words, fn, *args, **kw) -> StackFileError:
    with pytest.raises(StackFileError) as info:
        fn(*args, **kw)
    err = info.value
    msg = str(err)
    assert Path(err.path).name in msg
    assert err.fix and " — " in msg
    for word in [match_words] if isinstance(match_words, str) else match_words:
        assert word in msg, msg
    return err


# --- FocalStack ---------------------------------------------------------------------------


def test_focal_stack_helpers():
    s = make_stack(z=[4.0, 2.0, 1.0, -0.5])
    assert s.shape == (4, 24, 40) and len(s) == 4
    assert s.z_step_um == pytest.approx(1.5)  # median of |Δz| = 2, 1, 1.5
    assert s.nearest_plane(1.2) == 2 and s.nearest_plane(-9) == 3 and s.nearest_plane(99) == 0
    np.testing.assert_array_equal(s.plane(-1), s.data[3])
    with pytest.raises(IndexError):
        s.plane(4)
    with pytest.raises(ValueError):
        s.z_um[0] = 1.0  # z is read-only
    one = FocalStack(np.zeros((1, 3, 3), np.uint8), [0.0], 1.0)
    assert one.z_step_um is None and one.optics is None and one.metadata == {}


def test_focal_stack_normalizes_metadata_to_plain_json():
    s = make_stack(
        metadata={"a": np.arange(3), "b": (np.float32(0.5), np.bool_(True)), "c": np.int64(7)}
    )
    assert s.metadata == {"a": [0, 1, 2], "b": [0.5, True], "c": 7}
    assert type(s.metadata["c"]) is int


def test_info_is_plain_json():
    s = make_stack(dtype="float32")
    info = s.info()
    assert list(info) == [
        "shape", "dtype", "z_um", "z_step_um", "pixel_size_um", "optics", "focus_z_um", "metadata"
    ]  # fmt: skip
    assert json.loads(json.dumps(info, allow_nan=False)) == info
    assert info["shape"] == [7, 24, 40] and info["dtype"] == "float32"
    assert info["z_um"] == Z_NONUNIFORM and info["focus_z_um"] == 0.3
    assert Optics.from_dict(info["optics"]) == s.optics
    assert make_stack(optics=None, focus_z_um=None).info()["optics"] is None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"data": np.zeros((4, 5))}, "3-D"),
        ({"data": np.zeros((1, 2, 4, 5))}, "3-D"),
        ({"data": np.zeros((2, 4, 5), bool)}, "real numeric"),
        ({"data": np.zeros((2, 4, 5), complex)}, "real numeric"),
        ({"data": np.zeros((2, 4, 5), object)}, "real numeric"),
        ({"z_um": [0.0, 1.0, 2.0]}, "3 positions for 2 planes"),
        ({"z_um": [1.0, 1.0]}, "monotonic"),
        ({"z_um": [0.0, np.nan]}, "NaN"),
        ({"z_um": [[0.0, 1.0]]}, "1-D"),
        ({"pixel_size_um": 0.0}, "pixel_size_um"),
        ({"pixel_size_um": float("nan")}, "pixel_size_um"),
        ({"pixel_size_um": None}, "pixel_size_um"),
        ({"optics": {"objective": {}}}, "optics"),
        ({"focus_z_um": float("inf")}, "focus_z_um"),
        ({"metadata": {"x": object()}}, "metadata.x"),
        ({"metadata": {1: "a"}}, "keys must be strings"),
        ({"metadata": {"x": [1.0, float("nan")]}}, "metadata.x[1]"),
    ],
)
def test_focal_stack_validation(kwargs, words):
    args = {"data": np.zeros((2, 4, 5), np.uint16), "z_um": [0.0, 1.0], "pixel_size_um": 0.5}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=words if "[" not in words else None) as info:
        FocalStack(**args)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_focal_stack_keeps_dask_lazy():
    da = pytest.importorskip("dask.array")
    data = da.zeros((3, 16, 16), dtype=np.uint16, chunks=(1, 16, 16))
    s = FocalStack(data, [0.0, 1.0, 2.0], 0.5)
    assert s.is_lazy and s.data is data
    assert s.plane(1).shape == (16, 16)


# --- Round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint16", "float32", "uint8"])
@pytest.mark.parametrize("name", NAMES)
def test_round_trip(tmp_path, name, dtype):
    s = make_stack(dtype)
    out = write_stack(s, tmp_path / name)
    assert out == tmp_path / name and out.exists()
    assert_same(s, read_stack(out))


@pytest.mark.parametrize("illumination", ILLUMINATIONS, ids=lambda i: i.kind)
@pytest.mark.parametrize("name", ["s.ome.tif", "s.ome.zarr", "s.npy"])
def test_round_trip_optics_and_no_focus(tmp_path, name, illumination):
    s = make_stack(
        "uint16",
        z=[10.0, 8.0, 6.5, 1.0],
        optics=make_optics(illumination),
        focus_z_um=None,
        metadata={},
    )
    back = read_stack(write_stack(s, tmp_path / name))
    assert_same(s, back)
    assert back.optics.illumination == illumination and back.focus_z_um is None


@pytest.mark.parametrize("name", ["s.ome.tif", "s.ome.zarr", "s.npy"])
@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint32", "float64"])
def test_round_trip_other_dtypes(tmp_path, name, dtype):
    s = make_stack(dtype, optics=None)
    assert_same(s, read_stack(write_stack(s, tmp_path / name)))


@pytest.mark.parametrize("name", ["s.ome.zarr", "s.npy"])
@pytest.mark.parametrize("dtype", ["int64", "uint64", "float16"])
def test_round_trip_wide_dtypes_outside_tiff(tmp_path, name, dtype):
    s = make_stack(dtype)
    assert_same(s, read_stack(write_stack(s, tmp_path / name)))


def test_ome_tiff_refuses_int64_with_fix(tmp_path):
    err = expect_error(
        ["int64", ".ome.zarr"], write_stack, make_stack("int64"), tmp_path / "s.ome.tif"
    )
    assert listing(tmp_path) == []
    assert "convert" in err.fix


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_single_plane(tmp_path, name):
    s = make_stack("uint16", z=[-2.5])
    assert_same(s, read_stack(write_stack(s, tmp_path / name)))


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_uncompressed(tmp_path, name):
    s = make_stack("float32")
    assert_same(s, read_stack(write_stack(s, tmp_path / name, compression=None)))


@pytest.mark.parametrize("name", ["s.ome.tif", "s.ome.zarr", "s.npy"])
def test_write_dask_stack(tmp_path, name):
    da = pytest.importorskip("dask.array")
    s = make_stack("uint16")
    lazy = FocalStack(
        da.from_array(s.data, chunks=(1, 12, 40)),
        s.z_um,
        s.pixel_size_um,
        s.optics,
        s.focus_z_um,
        s.metadata,
    )
    assert_same(s, read_stack(write_stack(lazy, tmp_path / name)))


def test_zarr_read_lazy(tmp_path):
    da = pytest.importorskip("dask.array")
    s = make_stack("uint16")
    path = write_stack(s, tmp_path / "s.ome.zarr")
    lazy = read_stack(path, lazy=True)
    assert isinstance(lazy.data, da.Array) and lazy.is_lazy
    assert_same(s, lazy)
    assert isinstance(read_stack(path).data, np.ndarray)  # small: loaded


def test_ome_tiff_content(tmp_path):
    s = make_stack("uint16")
    path = write_stack(s, tmp_path / "s.ome.tif")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.series[0].axes == "ZYX"
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        root = ET.fromstring(tif.ome_metadata)
    ns = {"ome": root.tag[1:].split("}")[0]}
    pixels = root.find(".//ome:Pixels", ns)
    assert float(pixels.get("PhysicalSizeX")) == 0.325 and pixels.get("PhysicalSizeXUnit") == "µm"
    assert float(pixels.get("PhysicalSizeZ")) == pytest.approx(s.z_step_um)
    planes = pixels.findall("ome:Plane", ns)
    assert [int(p.get("TheZ")) for p in planes] == list(range(7))
    assert [float(p.get("PositionZ")) for p in planes] == Z_NONUNIFORM
    ann = root.find(".//ome:StructuredAnnotations/ome:MapAnnotation", ns)
    assert ann.get("Namespace") == "focuskit"
    block = json.loads(ann.find("ome:Value/ome:M[@K='focuskit']", ns).text)
    assert block["z_um"] == Z_NONUNIFORM and block["focus_z_um"] == 0.3
    assert set(block) >= {"focuskit_version", "optics", "metadata", "pixel_size_um"}


def test_zarr_layout_is_ngff_v04(tmp_path):
    s = make_stack("uint16")
    path = write_stack(s, tmp_path / "s.ome.zarr")
    assert (path / ".zgroup").is_file() and (path / "0" / ".zarray").is_file()
    group = zarr.open_group(str(path), mode="r")
    ms = group.attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert [(a["name"], a["type"], a["unit"]) for a in ms["axes"]] == [
        ("z", "space", "micrometer"), ("y", "space", "micrometer"), ("x", "space", "micrometer")
    ]  # fmt: skip
    transforms = {t["type"]: t for t in ms["datasets"][0]["coordinateTransformations"]}
    assert transforms["scale"]["scale"] == [float(np.median(np.diff(Z_NONUNIFORM))), 0.325, 0.325]
    assert transforms["translation"]["translation"] == [-3.5, 0.0, 0.0]
    assert group["0"].chunks == (1, 24, 40)
    assert group.attrs["focuskit"]["z_um"] == Z_NONUNIFORM


def test_zarr_chunks_capped_at_1024(tmp_path):
    s = FocalStack(np.zeros((2, 1030, 8), np.uint8), [0.0, 1.0], 1.0)
    path = write_stack(s, tmp_path / "big.zarr")
    assert zarr.open_group(str(path), mode="r")["0"].chunks == (1, 1024, 8)


def test_zarr_folder_without_suffix_is_recognized(tmp_path):
    s = make_stack("uint16")
    path = write_stack(s, tmp_path / "s.ome.zarr")
    path.rename(tmp_path / "plainfolder")
    assert_same(s, read_stack(tmp_path / "plainfolder"))


def test_import_stays_light():
    code = (
        "import sys, focuskit.io; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' "
        "or m.startswith('focuskit.simulate')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_npy_sidecar_and_stem_json(tmp_path):
    s = make_stack("uint8")
    path = write_stack(s, tmp_path / "s.npy")
    sidecar = tmp_path / "s.npy.json"
    assert listing(tmp_path) == ["s.npy", "s.npy.json"]
    block = json.loads(sidecar.read_text())
    assert block["pixel_size_um"] == 0.325 and block["z_um"] == Z_NONUNIFORM
    sidecar.rename(tmp_path / "s.json")  # the short sidecar name is read too
    assert_same(s, read_stack(path))


# --- Files from other tools ---------------------------------------------------------------


def test_plain_ome_tiff_from_tifffile(tmp_path):
    data = make_data("uint16", (3, 16, 20))
    path = tmp_path / "plain.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 130.0,
            "PhysicalSizeXUnit": "nm",
            "Plane": {"PositionZ": [5.0, 5.5, 6.25]},
        },
    )
    s = read_stack(path)
    np.testing.assert_array_equal(s.data, data)
    assert s.pixel_size_um == pytest.approx(0.13)
    assert s.z_um.tolist() == [5.0, 5.5, 6.25]
    assert s.optics is None and s.focus_z_um is None and s.metadata == {}


def test_ome_tiff_without_pixel_size(tmp_path):
    path = tmp_path / "nopx.ome.tif"
    tifffile.imwrite(
        path,
        make_data("uint16", (3, 8, 8)),
        ome=True,
        metadata={"axes": "ZYX", "Plane": {"PositionZ": [0.0, 1.0, 2.0]}},
    )
    err = expect_error(["pixel size is missing", "--pixel-size"], read_stack, path)
    assert "pixel_size_um" in err.fix
    assert read_stack(path, pixel_size_um=0.2).pixel_size_um == 0.2


def test_plain_tiff_needs_z(tmp_path):
    data = make_data("uint16", (4, 8, 8))
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    expect_error(
        ["pixel size and z positions", "--pixel-size", "--z-step", "--z-file"], read_stack, path
    )
    expect_error(["z positions", "--z-step"], read_stack, path, pixel_size_um=1.0)
    s = read_stack(path, pixel_size_um=1.0, z_um=[0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(s.data, data)
    assert read_stack(path, pixel_size_um=1.0, z_step_um=-0.5, z_start_um=3.0).z_um.tolist() == [
        3.0,
        2.5,
        2.0,
        1.5,
    ]


def test_plain_tiff_with_sidecar_json(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, make_data("uint16", (2, 8, 8)), photometric="minisblack")
    (tmp_path / "plain.json").write_text(
        json.dumps({"pixel_size_um": 0.65, "z_um": [1.0, 2.0], "focus_z_um": 1.5})
    )
    s = read_stack(path)
    assert (s.pixel_size_um, s.z_um.tolist(), s.focus_z_um) == (0.65, [1.0, 2.0], 1.5)


def test_imagej_tiff_spacing_and_resolution(tmp_path):
    path = tmp_path / "ij.tif"
    data = make_data("uint16", (5, 8, 8))
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "ZYX", "spacing": 0.4, "unit": "um"},
    )
    s = read_stack(path)
    assert s.pixel_size_um == pytest.approx(0.25)
    np.testing.assert_allclose(s.z_um, [0.0, 0.4, 0.8, 1.2, 1.6])


def test_ngff_from_another_tool(tmp_path):
    path = tmp_path / "other.ome.zarr"
    data = make_data("uint16", (1, 1, 4, 10, 12))
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("s0", data=data, chunks=(1, 1, 1, 10, 12))
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}]
        + [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        "datasets": [{"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0, 500.0, 108.0, 108.0]},
            {"type": "translation", "translation": [0.0, 0.0, -1000.0, 0.0, 0.0]},
        ]}],
    }]  # fmt: skip
    s = read_stack(path)
    np.testing.assert_array_equal(s.data, data[0, 0])
    assert s.pixel_size_um == pytest.approx(0.108)
    np.testing.assert_allclose(s.z_um, [-1.0, -0.5, 0.0, 0.5])


def test_arguments_override_file_metadata(tmp_path):
    s = make_stack("uint16", z=[0.0, 1.0, 2.0])
    other = make_optics(Fluorescence())
    for name in ["s.ome.tif", "s.ome.zarr", "s.npy"]:
        path = write_stack(s, tmp_path / name)
        r = read_stack(path, pixel_size_um=0.1, z_um=[5.0, 4.0, 3.0], optics=other)
        assert (r.pixel_size_um, r.z_um.tolist(), r.optics) == (0.1, [5.0, 4.0, 3.0], other)
        assert r.focus_z_um == s.focus_z_um and r.metadata == s.metadata


def test_2d_image_is_a_one_plane_stack_only_with_z(tmp_path):
    path = tmp_path / "img.tif"
    data = make_data("uint16", (9, 11))
    tifffile.imwrite(path, data, photometric="minisblack")
    expect_error(["2-D image", "z_um"], read_stack, path, pixel_size_um=1.0)
    s = read_stack(path, pixel_size_um=1.0, z_um=[1.5])
    assert s.shape == (1, 9, 11) and s.z_um.tolist() == [1.5]
    np.testing.assert_array_equal(s.data[0], data)


def test_rgb_npy(tmp_path):
    rgb = make_data("uint8", (2, 6, 7, 3))
    path = tmp_path / "rgb.npy"
    np.save(path, rgb)
    expect_error(["colour axis", "rgb='gray'"], read_stack, path, pixel_size_um=1.0, z_um=[0, 1])
    gray = read_stack(path, pixel_size_um=1.0, z_um=[0, 1], rgb="gray")
    assert gray.dtype == np.float32 and gray.shape == (2, 6, 7)
    np.testing.assert_allclose(gray.data, rgb @ np.array([0.2125, 0.7154, 0.0721]), rtol=1e-5)
    green = read_stack(path, pixel_size_um=1.0, z_um=[0, 1], rgb=1)
    assert green.dtype == np.uint8
    np.testing.assert_array_equal(green.data, rgb[..., 1])
    with pytest.raises(ConfigError):
        read_stack(path, pixel_size_um=1.0, z_um=[0, 1], rgb=3)


# --- Validation on read -------------------------------------------------------------------


def _truncate(path: Path, fraction: float) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])


@pytest.mark.parametrize("compression", ["zlib", None])
@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_truncated_tiff(tmp_path, compression, fraction):
    path = write_stack(make_stack("uint16"), tmp_path / "cut.ome.tif", compression=compression)
    _truncate(path, fraction)
    expect_error(["cut.ome.tif", "corrupt"], read_stack, path)


def test_truncated_npy(tmp_path):
    path = write_stack(make_stack("uint16"), tmp_path / "cut.npy")
    _truncate(path, 0.5)
    expect_error(["cut.npy", "corrupt"], read_stack, path)


def test_garbage_files(tmp_path):
    (tmp_path / "junk.ome.tif").write_bytes(b"not a tiff at all" * 10)
    expect_error("corrupt", read_stack, tmp_path / "junk.ome.tif")
    (tmp_path / "junk.zarr").mkdir()
    expect_error("junk.zarr", read_stack, tmp_path / "junk.zarr")


def test_corrupt_zarr_chunk(tmp_path):
    path = write_stack(make_stack("uint16"), tmp_path / "c.ome.zarr")
    (path / "0" / "3" / "0" / "0").write_bytes(b"\x00garbage")
    expect_error(["c.ome.zarr", "corrupt"], read_stack, path)


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_nan_data_refused(tmp_path, suffix):
    data = make_data("float32", (3, 8, 8))
    data[2, 1, 1] = np.nan
    path = tmp_path / f"nan{suffix}"
    np.save(path, data) if suffix == ".npy" else tifffile.imwrite(
        path, data, photometric="minisblack"
    )
    expect_error(
        ["NaN/Inf", "plane 2", "nan_to_num"], read_stack, path, pixel_size_um=1.0, z_um=[0, 1, 2]
    )


@pytest.mark.parametrize(
    ("z", "words"),
    [
        ([0.0, 1.0, 1.0], "monotonic"),
        ([0.0, 2.0, 1.0], "monotonic"),
        ([0.0, 1.0], "3 planes but 2 z"),
        ([0.0, 1.0, np.inf], "NaN/Inf"),
    ],
)
def test_bad_z_in_sidecar(tmp_path, z, words):
    path = tmp_path / "s.npy"
    np.save(path, make_data("uint16", (3, 4, 4)))
    (tmp_path / "s.npy.json").write_text(json.dumps({"pixel_size_um": 1.0, "z_um": z}))
    err = expect_error([words, "sidecar s.npy.json"], read_stack, path)
    assert "z" in err.fix


def test_bad_z_given(tmp_path):
    path = write_stack(make_stack("uint16"), tmp_path / "s.ome.tif")
    expect_error(["7 planes but 3 z", "given"], read_stack, path, z_um=[0, 1, 2])
    expect_error("monotonic", read_stack, path, z_um=[0, 1, 2, 3, 4, 4, 5])


def test_wrong_shape_and_dtype(tmp_path):
    np.save(tmp_path / "four.npy", np.zeros((2, 3, 4, 5), np.uint16))
    expect_error(
        ["4 dimensions", "(Z, Y, X)"],
        read_stack,
        tmp_path / "four.npy",
        pixel_size_um=1.0,
        z_um=[0, 1],
    )
    np.save(tmp_path / "cplx.npy", np.zeros((2, 4, 5), np.complex64))
    expect_error(
        "not real numeric", read_stack, tmp_path / "cplx.npy", pixel_size_um=1.0, z_um=[0, 1]
    )
    np.save(tmp_path / "obj.npy", np.array([[[object()]]]), allow_pickle=True)
    expect_error("not real numeric", read_stack, tmp_path / "obj.npy", pixel_size_um=1.0, z_um=[0])


def test_missing_file_and_unknown_suffix(tmp_path):
    expect_error(["nope.ome.tif", "not found"], read_stack, tmp_path / "nope.ome.tif")
    (tmp_path / "image.png").write_bytes(b"png")
    err = expect_error(["'.png'"], read_stack, tmp_path / "image.png")
    assert all(s in err.fix for s in SUPPORTED_SUFFIXES)
    expect_error("'.png'", write_stack, make_stack(), tmp_path / "out.png")


@pytest.mark.parametrize(
    "optics",
    [
        {"objective": {"na": 0.5}},
        {"objective": {"na": 2.0, "magnification": 20}, "wavelength_um": 0.5},
        "led",
        [1, 2],
    ],
)
def test_malformed_optics(tmp_path, optics):
    path = tmp_path / "s.npy"
    np.save(path, make_data("uint16", (2, 4, 4)))
    (tmp_path / "s.npy.json").write_text(
        json.dumps({"pixel_size_um": 1.0, "z_um": [0, 1], "optics": optics})
    )
    expect_error("optics", read_stack, path)
    # a given optics replaces the malformed block
    assert read_stack(path, optics=make_optics()).optics == make_optics()


def test_invalid_sidecar_json(tmp_path):
    np.save(tmp_path / "s.npy", make_data("uint16", (2, 4, 4)))
    (tmp_path / "s.npy.json").write_text("{not json")
    err = expect_error("not valid JSON", read_stack, tmp_path / "s.npy")
    assert err.path.endswith("s.npy.json")


# --- Atomic writes --------------------------------------------------------------------------


def _boom_after(real):
    def boom(*args, **kwargs):
        real(*args, **kwargs)  # write something first, then fail
        raise OSError("disk full (simulated)")

    return boom


@pytest.mark.parametrize("name", ["s.ome.tif", "s.npy"])
def test_failed_write_leaves_nothing(tmp_path, monkeypatch, name):
    if name.endswith(".tif"):
        monkeypatch.setattr(tifffile, "imwrite", _boom_after(tifffile.imwrite))
    else:
        monkeypatch.setattr(np, "save", _boom_after(np.save))
    with pytest.raises(OSError, match="disk full"):
        write_stack(make_stack(), tmp_path / name)
    assert listing(tmp_path) == []


def test_failed_zarr_write_leaves_nothing_and_keeps_old(tmp_path, monkeypatch):
    old = make_stack("uint8", z=[0.0, 1.0])
    path = write_stack(old, tmp_path / "s.ome.zarr")
    real = zarr.Array.__setitem__

    def flaky(self, key, value):
        plane = key[0].start if isinstance(key, tuple) else key  # written chunk by chunk
        if plane == 2:  # the third plane
            raise OSError("disk full (simulated)")
        real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_stack(make_stack(), tmp_path / "new.ome.zarr")
    with pytest.raises(OSError, match="disk full"):
        write_stack(make_stack(), path, overwrite=True)
    monkeypatch.undo()
    assert listing(tmp_path) == ["s.ome.zarr"]
    assert_same(old, read_stack(path))


def test_overwrite_refused_keeps_target(tmp_path):
    for name in ["s.ome.tif", "s.ome.zarr", "s.npy"]:
        first = make_stack("uint16", z=[0.0, 1.0])
        path = write_stack(first, tmp_path / name)
        expect_error(["exists", "--overwrite"], write_stack, make_stack("float32"), path)
        assert_same(first, read_stack(path))
        second = make_stack("float32", z=[3.0, 2.0, 1.0])
        write_stack(second, path, overwrite=True)
        assert_same(second, read_stack(path))
    assert listing(tmp_path) == ["s.npy", "s.npy.json", "s.ome.tif", "s.ome.zarr"]


def test_refuses_to_overwrite_an_input(tmp_path):
    path = write_stack(make_stack(), tmp_path / "in.ome.tif")
    before = path.read_bytes()
    alias = tmp_path / "sub" / ".." / "in.ome.tif"
    (tmp_path / "sub").mkdir()
    expect_error(
        "overwrite an input",
        write_stack,
        make_stack("uint8"),
        alias,
        overwrite=True,
        protect=[path],
    )
    os.symlink(path, tmp_path / "link.ome.tif")
    expect_error(
        "input",
        write_stack,
        make_stack(),
        tmp_path / "link.ome.tif",
        overwrite=True,
        protect=[str(path)],
    )
    zpath = write_stack(make_stack(), tmp_path / "in.ome.zarr")
    expect_error("input", write_stack, make_stack(), zpath, overwrite=True, protect=[zpath / "0"])
    assert path.read_bytes() == before


def test_missing_parent_and_nan_write(tmp_path):
    expect_error(
        ["does not exist", "create it"], write_stack, make_stack(), tmp_path / "no" / "s.ome.tif"
    )
    s = make_stack("float32")
    s.data[4, 0, 0] = np.inf
    for name in ["s.ome.tif", "s.ome.zarr", "s.npy"]:
        expect_error(["NaN/Inf", "plane 4"], write_stack, s, tmp_path / name)
    assert listing(tmp_path) == []


# --- z files --------------------------------------------------------------------------------


def test_read_z_file_formats(tmp_path):
    (tmp_path / "z.txt").write_text("# z in um\n-1.5\n\n-0.5\n0.25\n")
    assert read_z_file(tmp_path / "z.txt").tolist() == [-1.5, -0.5, 0.25]
    (tmp_path / "z.csv").write_text("plane,z_um,name\n0,2.0,a\n1,1.0,b\n")
    assert read_z_file(tmp_path / "z.csv").tolist() == [2.0, 1.0]
    (tmp_path / "nm.tsv").write_text("index\tz_nm\n0\t100\n1\t350\n")
    assert read_z_file(tmp_path / "nm.tsv").tolist() == pytest.approx([0.1, 0.35])
    (tmp_path / "two.csv").write_text("z_top,z_bottom\n1,2\n")
    expect_error(["which column", "z_um"], read_z_file, tmp_path / "two.csv")
    (tmp_path / "bad.csv").write_text("z_um\n1\nfoo\n")
    expect_error(["row 3", "'foo'"], read_z_file, tmp_path / "bad.csv")
    (tmp_path / "empty.csv").write_text("\n# nothing\n")
    expect_error("empty", read_z_file, tmp_path / "empty.csv")
    expect_error("not found", read_z_file, tmp_path / "none.csv")


# --- Real stacks (read-only) ----------------------------------------------------------------


@needs_real
def test_real_llsm_stack_with_z_file():
    folder = REAL / "llsm_mitochondria_defocus"
    z = read_z_file(folder / "z_positions.csv")
    assert len(z) == 34 and z[0] == -0.95 and z[-1] == 0.70 and z[19] == 0.0
    expect_error(
        ["pixel size is missing", "--pixel-size"], read_stack, folder / "stack.tif", z_um=z
    )
    s = read_stack(folder / "stack.tif", z_um=z, pixel_size_um=0.1)
    assert s.shape == (34, 800, 512) and s.dtype == np.uint16
    assert s.z_um.min() == -0.95 and s.z_um.max() == 0.70
    assert s.nearest_plane(0.0) == 19 and s.z_step_um == pytest.approx(0.05)
    assert s.data.max() > 0


@needs_real
def test_real_wafer_rgb_stack():
    folder = REAL / "wafer_reflected_brightfield"
    z = read_z_file(folder / "z_positions.csv")
    assert len(z) == 11 and z[4] == 0.0 and np.all(np.diff(z) > 0)
    path = folder / "stack.tif"
    expect_error(
        ["colour axis", "(11, 1200, 1920, 3)", "rgb='gray'"],
        read_stack,
        path,
        z_um=z,
        pixel_size_um=0.286,
    )
    gray = read_stack(path, z_um=z, pixel_size_um=0.286, rgb="gray")
    assert gray.shape == (11, 1200, 1920) and gray.dtype == np.float32
    raw = tifffile.imread(path, key=4)
    np.testing.assert_allclose(
        gray.data[4, ::97, ::89], raw[::97, ::89] @ np.array([0.2125, 0.7154, 0.0721]), rtol=1e-5
    )
    assert gray.nearest_plane(0.0) == 4


@needs_real
def test_real_bead_psf_needs_z_and_pixel():
    path = REAL / "bead_psf_na085" / "psf_wl520nm_z300nm_x130nm_na0.85_n1.0.tif"
    expect_error(["pixel size and z positions", "--z-step"], read_stack, path)
    s = read_stack(path, pixel_size_um=0.13, z_step_um=0.3, z_start_um=-3.6)
    assert s.shape == (25, 256, 256) and s.z_um[12] == pytest.approx(0.0)
    peak = int(np.argmax(s.data.reshape(25, -1).max(axis=1)))
    assert abs(peak - 12) <= 1
