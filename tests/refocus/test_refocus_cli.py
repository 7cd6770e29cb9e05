"""`focuskit refocus apply/train/info`: files in, files out, bad input refused with nothing written.

Plumbing uses a tiny identity model (global residual, correction branch zeroed), so the
output must equal the input; tests/test_refocus.py and bench/refocus.py judge quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import one_line_error, run_cli

from focuskit.io import FocalStack, read_stack, write_stack
from focuskit.optics import get_preset
from focuskit.simulate import simulate_stack

pytest.importorskip("torch")

from focuskit.refocus import (
    DeepRConfig,
    DeepRGenerator,
    DPMDecoder,
    Refocuser,
)

FLUOR = get_preset("deepr-40x-fluor").optics
TINY = DeepRConfig(channels=(4, 8, 8, 8, 8, 8))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    gen = DeepRGenerator(TINY).eval()
    with (
        torch.no_grad()
    ):  # the correction branch off: the generator returns its (standardized) input
        gen.decoder.out.weight.zero_()
        gen.decoder.out.bias.zero_()
    path = tmp_path_factory.mktemp("model") / "tiny"
    Refocuser(gen, DPMDecoder(TINY.channels).eval(), optics=FLUOR, z_range_um=5.0).save(path)
    return path


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = simulate_stack(
        "deepr-40x-fluor", sample="beads", size=96, z_um=[-2.0, 0.0, 2.0], photons=500, seed=4
    )
    path = tmp_path_factory.mktemp("data") / "beads.ome.tif"
    meta = {**sim.metadata, "experiment": "cli test"}
    write_stack(
        FocalStack(sim.data, sim.z_um, sim.pixel_size_um, sim.optics, sim.focus_z_um, meta), path
    )
    return path


def test_apply_writes_float32_in_the_input_scale_with_metadata(
    tiny_model: Path, stack_file: Path, tmp_path: Path
) -> None:
    out, dpm = tmp_path / "out.ome.tif", tmp_path / "dpm.ome.tif"
    code, stdout, err = run_cli(
        "refocus",
        "apply",
        stack_file,
        "-o",
        out,
        "--model",
        tiny_model,
        "--defocus-map",
        dpm,
        "--tile",
        64,
        "--method",
        "deepr",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["images"][0]["planes"] == 3
    src, got, dmap = read_stack(stack_file), read_stack(out), read_stack(dpm)
    assert got.data.dtype == np.float32 and got.shape == src.shape
    assert list(got.z_um) == list(src.z_um) and got.pixel_size_um == src.pixel_size_um
    assert got.metadata["experiment"] == "cli test" and got.metadata["refocused"]["model"] == str(
        tiny_model
    )
    # an identity network: standardize → network → un-standardize gives the input back, in its scale
    np.testing.assert_allclose(got.data, src.data.astype(np.float32), rtol=1e-4, atol=1e-2)
    assert dmap.shape == src.shape and np.isfinite(dmap.data).all()


def test_apply_batch_into_folders_and_plain_tiff_with_pixel_size(
    tiny_model: Path, tmp_path: Path
) -> None:
    img = simulate_stack("deepr-40x-fluor", size=64, z_um=[1.0], photons=500, seed=5).data[0]
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    tifffile.imwrite(a, img)
    tifffile.imwrite(b, img[::-1])
    outdir, dpmdir = tmp_path / "out", tmp_path / "dpm"
    outdir.mkdir()
    dpmdir.mkdir()
    code, _, err = run_cli(
        "refocus",
        "apply",
        a,
        b,
        "-o",
        outdir,
        "--defocus-map",
        dpmdir,
        "--model",
        tiny_model,
        "--pixel-size",
        FLUOR.pixel_size_um,
    )
    assert code == 0, err
    assert (
        "assumed the model's" in err
    )  # a plain TIFF: the optics were assumed, and the user is told
    for stem in ("a", "b"):
        assert (outdir / f"{stem}.ome.tif").is_file() and (dpmdir / f"{stem}.dpm.ome.tif").is_file()


def test_apply_refuses_bad_input_and_writes_nothing(
    tiny_model: Path, stack_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.ome.tif"
    # the wrong microscope
    code, _, err = run_cli(
        "refocus", "apply", stack_file, "-o", out, "--model", tiny_model, "--pixel-size", 0.5
    )
    one_line_error(code, err, "pixel size 0.5", "--force")
    # a plain TIFF without a pixel size
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.ones((64, 64), np.uint16))
    code, _, err = run_cli("refocus", "apply", plain, "-o", out, "--model", tiny_model)
    one_line_error(code, err, "pixel size", "--pixel-size")
    # NaN pixels
    nan = tmp_path / "nan.npy"
    data = np.ones((1, 64, 64), np.float32)
    data[0, 5, 5] = np.nan
    np.save(nan, data)
    code, _, err = run_cli(
        "refocus",
        "apply",
        nan,
        "-o",
        out,
        "--model",
        tiny_model,
        "--pixel-size",
        FLUOR.pixel_size_um,
    )
    assert code == 2 and "NaN" in err
    # an input is never overwritten, even with --overwrite
    before = stack_file.read_bytes()
    code, _, err = run_cli(
        "refocus", "apply", stack_file, "-o", stack_file, "--model", tiny_model, "--overwrite"
    )
    one_line_error(code, err, "input")
    assert stack_file.read_bytes() == before
    # not a model
    code, _, err = run_cli("refocus", "apply", stack_file, "-o", out, "--model", tmp_path)
    one_line_error(code, err, "model")
    assert not out.exists()
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".")
    ] == []  # no temporary leftovers


def test_existing_output_needs_overwrite(
    tiny_model: Path, stack_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.ome.tif"
    out.write_bytes(b"keep")
    code, _, err = run_cli("refocus", "apply", stack_file, "-o", out, "--model", tiny_model)
    one_line_error(code, err, "exists", "--overwrite")
    assert out.read_bytes() == b"keep"
    code, _, err = run_cli(
        "refocus", "apply", stack_file, "-o", out, "--model", tiny_model, "--overwrite"
    )
    assert code == 0, err
    assert read_stack(out).data.dtype == np.float32


def test_train_tiny_then_info_and_fine_tune(tmp_path: Path) -> None:
    model = tmp_path / "m"
    args = [
        "--field-size",
        128,
        "--tile",
        128,
        "--crop",
        64,
        "--channels",
        "4,8,8,8,8,8",
        "--z-range",
        1,
        "--threads",
        1,
        "--workers",
        1,
    ]
    code, _, err = run_cli(
        "refocus", "train", "-o", model, "--simulate", 2, "--steps", 6, "--dpm-steps", 4, *args
    )
    assert code == 0, err
    assert (model / "config.json").is_file() and (model / "loss_curves.png").is_file()
    code, stdout, err = run_cli("refocus", "info", model, "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["defocus_map"] is True and info["architecture"]["channels"] == [4, 8, 8, 8, 8, 8]
    assert info["training"]["tiles"]["validation"] >= 1
    # fine-tune on a stack from disk, starting from the model just trained
    sim = simulate_stack(
        "deepr-40x-fluor",
        sample="fluorescent-tissue",
        size=256,
        z_um=np.arange(-1, 1.01, 0.5),
        photons=1000,
        seed=8,
    )
    stack = tmp_path / "mine.ome.tif"
    write_stack(
        FocalStack(sim.data, sim.z_um, sim.pixel_size_um, sim.optics, sim.focus_z_um), stack
    )
    tuned = tmp_path / "tuned"
    code, _, err = run_cli(
        "refocus",
        "train",
        "-o",
        tuned,
        "--stack",
        stack,
        "--init",
        model,
        "--steps",
        4,
        "--dpm-steps",
        0,
        "--tile",
        128,
        "--crop",
        64,
        "--z-range",
        1,
        "--threads",
        1,
    )
    assert code == 0, err
    assert Refocuser.load(tuned).dpm is None
    # the output folder exists now: refused without --overwrite
    code, _, err = run_cli("refocus", "train", "-o", tuned, "--stack", stack, "--steps", 4)
    one_line_error(code, err, "already exists")


def test_train_refuses_bad_options(tmp_path: Path) -> None:
    code, _, err = run_cli("refocus", "train", "-o", tmp_path / "m", "--crop", 100)
    one_line_error(code, err, "multiple of 32")
    code, _, err = run_cli("refocus", "train", "-o", tmp_path / "m", "--channels", "4,8")
    one_line_error(code, err, "--channels")
    code, _, err = run_cli("refocus", "train", "-o", tmp_path / "nowhere" / "m")
    one_line_error(code, err, "does not exist")
    assert not (tmp_path / "m").exists()
