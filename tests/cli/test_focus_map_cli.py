"""`focuskit focus-map`: slide QC on a simulated tilted slide whose defocus is a known plane,
on local threads and on a dask.distributed LocalCluster; the model-free default; bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from focuskit.io import FocalStack, write_stack
from focuskit.optics import get_preset
from focuskit.simulate import simulate_stack

TILT_DEG, AZIMUTH_DEG = 0.5, 30.0


@pytest.fixture(scope="module")
def tilted_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2048² LED slide (the single-shot model's microscope) tilted 0.5° towards 30° from
    +x, in focus at its centre: defocus = tan 0.5° · (x cos 30° + y sin 30°)."""
    sim = simulate_stack(
        "fcfnn-20x-led",
        size=2048,
        z_um=[0.0],
        tilt_deg=TILT_DEG,
        tilt_azimuth_deg=AZIMUTH_DEG,
        photons=1000,
        seed=4,
    )
    stack = FocalStack.from_simulation(sim)
    stack.metadata.pop("defocus_map", None)
    path = tmp_path_factory.mktemp("slide") / "slide.ome.zarr"
    return write_stack(stack, path, chunks=(1, 512, 512))


def _check_plane(summary: dict) -> None:
    c = summary["surface"]["coefficients"]
    slope = math.tan(math.radians(TILT_DEG))
    phi = math.radians(AZIMUTH_DEG)
    # The slide's defocus grows along the tilt direction; 20 % of the slope either way.
    assert c["x"] == pytest.approx(slope * math.cos(phi), abs=0.2 * slope)
    assert c["y"] == pytest.approx(slope * math.sin(phi), abs=0.2 * slope)
    assert summary["surface"]["tilt_deg"] == pytest.approx(TILT_DEG, abs=0.1)


def test_single_shot_map_finds_the_tilt_and_flags_beyond_half_the_dof(
    tilted_slide: Path, tmp_path: Path
) -> None:
    table, png = tmp_path / "map.csv", tmp_path / "map.png"
    code, out, err = run_cli(
        "focus-map", tilted_slide, "--tile", 1024, "--method", "singleshot",
        "-o", table, "--plot", png, "--workers", 2, "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["rows"], summary["cols"], summary["kind"]) == (2, 2, "signed-z")
    _check_plane(summary)
    half_dof = get_preset("fcfnn-20x-led").optics.depth_of_field_um / 2
    assert summary["max_defocus_um"] == pytest.approx(half_dof)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["row"], r["col"]) for r in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    z = np.array([float(r["z_um"]) for r in rows])
    assert [r["flag"] == "defocus" for r in rows] == list(np.abs(z) > half_dof)
    assert summary["flagged"] == int((np.abs(z) > half_dof).sum())
    # The corner tiles lie ±1.97 µm off focus, the other two ±0.53 µm.
    assert z[3] - z[0] == pytest.approx(2 * 1.97, abs=0.8)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_the_same_map_on_a_distributed_local_cluster(tilted_slide: Path) -> None:
    distributed = pytest.importorskip("distributed")
    code, local, err = run_cli(
        "focus-map", tilted_slide, "--tile", 1024, "--method", "singleshot", "--json"
    )
    assert code == 0, err
    with distributed.LocalCluster(
        n_workers=2, processes=False, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        code, out, err = run_cli(
            "focus-map", tilted_slide, "--tile", 1024, "--method", "singleshot",
            "--scheduler", cluster.scheduler_address, "--json",
        )  # fmt: skip
    assert code == 0, err
    remote = json.loads(out)
    _check_plane(remote)
    assert remote["surface"]["coefficients"] == pytest.approx(
        json.loads(local)["surface"]["coefficients"]
    )
    assert remote["flagged"] == json.loads(local)["flagged"]


def test_model_free_default_flags_a_blurred_tile(tmp_path: Path) -> None:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    image = gaussian_filter(rng.normal(1000, 200, (1, 768, 1024)), (0, 1, 1)).astype(np.float32)
    image[0, 256:512, 512:768] = gaussian_filter(image[0, 256:512, 512:768], 4)
    slide = write_stack(FocalStack(image, [0.0], 0.5), tmp_path / "s.ome.tif")
    code, out, err = run_cli("focus-map", slide, "--tile", 256, "-o", tmp_path / "m.csv", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "score" and summary["estimator"] == "tenengrad"
    assert summary["flagged"] == 1 and summary["by_flag"]["off-surface"] == 1
    with open(tmp_path / "m.csv", newline="") as f:
        flagged = [(r["row"], r["col"]) for r in csv.DictReader(f) if r["flag"]]
    assert flagged == [("1", "2")]


def test_bad_input_is_refused_in_one_line_before_any_work(tmp_path: Path) -> None:
    slide = write_stack(
        FocalStack(np.ones((1, 300, 300), np.float32), [0.0], 0.5), tmp_path / "s.npy"
    )
    code, _, err = run_cli("focus-map", slide, "--tile", 512)
    one_line_error(code, err, "larger than the image")
    code, _, err = run_cli("focus-map", slide, "--tile", 128, "-o", tmp_path / "m.txt")
    one_line_error(code, err, ".csv")
    code, _, err = run_cli("focus-map", slide, "--calibration", tmp_path / "c.json")
    one_line_error(code, err, "--method blur")
    code, _, err = run_cli("focus-map", slide, "--tile", 128, "--order", 4)
    one_line_error(code, err, "order")
    code, _, err = run_cli("focus-map", slide, "--tile", 128, "--method", "singleshot")
    one_line_error(code, err, "1024")
    code, _, err = run_cli("focus-map", slide, "-o", slide)
    one_line_error(code, err)
    plain = tmp_path / "plain.tif"
    import tifffile

    tifffile.imwrite(plain, np.ones((300, 300), np.uint16))
    code, _, err = run_cli("focus-map", plain, "--tile", 128)
    one_line_error(code, err, "pixel size", "--pixel-size")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.tif", "s.npy", "s.npy.json"]


def test_a_corrupt_chunk_met_mid_map_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, (1, 512, 512)).astype(np.uint16)
    slide = write_stack(
        FocalStack(image, [0.0], 0.5), tmp_path / "s.ome.zarr", chunks=(1, 128, 128)
    )
    (slide / "0" / "0" / "2" / "1").write_bytes(b"not zlib")
    table = tmp_path / "m.csv"
    code, _, err = run_cli(
        "focus-map", slide, "--tile", 128, "-o", table, "--plot", tmp_path / "m.png"
    )
    one_line_error(code, err, "s.ome.zarr", "cannot read its pixels")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ome.zarr"]
