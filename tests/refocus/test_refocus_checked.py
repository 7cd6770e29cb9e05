"""Refocusing that does no harm: the re-blur check decides, physical outputs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.fft
import tifffile
from conftest import REAL_DATA, needs_real_data, one_line_error, run_cli

from focuskit.io import FocalStack, read_stack, write_stack
from focuskit.measures import ssim_to_truth
from focuskit.optics import get_preset
from focuskit.refocus import psf_family_for, refocus_checked
from focuskit.restore import PsfFamily, physics_refocus

FLUOR = get_preset("deepr-40x-fluor").optics


class _Model:
    """A stand-in learned model: ``refocus`` returns what ``fn`` makes of the image."""

    size_multiple = 1
    optics = FLUOR

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def refocus(self, image: np.ndarray, *, tile: int = 512) -> np.ndarray:
        return np.asarray(self.fn(np.asarray(image, np.float64)), np.float32)


@pytest.fixture(scope="module")
def family() -> PsfFamily:
    return psf_family_for(FLUOR, z_max_um=6.0)


@pytest.fixture(scope="module")
def scene(family: PsfFamily) -> tuple[np.ndarray, np.ndarray]:
    """(measured at z = 3 µm with Poisson noise, the noise-free in-focus image)."""
    rng = np.random.default_rng(7)
    shape = (256, 256)
    obj = np.full(shape, 300.0)
    obj[rng.integers(0, 256, 120), rng.integers(0, 256, 120)] += 3e4

    def blur(z: float) -> np.ndarray:
        otf = family.otf_at(z, shape)
        return scipy.fft.irfft2(scipy.fft.rfft2(obj) * otf, s=shape)

    y = rng.poisson(np.maximum(blur(3.0), 0)).astype(np.float64)
    return y, np.maximum(blur(0.0), 0)


def test_an_inventing_model_falls_back_to_physics_and_says_so(
    family: PsfFamily, scene: tuple[np.ndarray, np.ndarray]
) -> None:
    y, truth = scene
    wave = 20 * np.sqrt(y.mean()) * np.sin(2 * np.pi * np.arange(256) / 48.0)[None, :]
    liar = _Model(lambda im: im + wave)  # texture the measurement cannot contain
    out = refocus_checked(y, refocuser=liar, family=family, z_um=3.0, tile=128)
    assert np.all(out.source != "deepr")
    assert out.fell_back and "fell back to physics" in out.notes[0]
    assert np.all(out.chi2_deepr > out.chi2)
    physics = physics_refocus(y, family, z_um=3.0, tile=128).image
    np.testing.assert_allclose(out.image, physics, rtol=1e-5, atol=1e-3)
    assert ssim_to_truth(out.image, truth) > ssim_to_truth(liar.refocus(y), truth)


def test_the_truth_reads_as_noise_and_auto_is_never_worse_than_physics(
    family: PsfFamily, scene: tuple[np.ndarray, np.ndarray]
) -> None:
    y, truth = scene
    oracle = _Model(lambda im: truth)  # the true in-focus image
    out = refocus_checked(y, refocuser=oracle, family=family, z_um=3.0, tile=128)
    assert out.chi2_deepr is not None and np.all(out.chi2_deepr < 1.5)  # noise only
    # Kept where it explains the measurement as well as Richardson–Lucy (which fits some
    # of the noise, so not on every tile); either way no worse than physics alone.
    assert np.any(out.source == "deepr")
    physics = physics_refocus(y, family, z_um=3.0, tile=128).image
    assert ssim_to_truth(out.image, truth) >= ssim_to_truth(physics, truth)


def test_outputs_are_physical_and_reports_serialize(family: PsfFamily) -> None:
    img = np.random.default_rng(0).poisson(500.0, (128, 128)).astype(np.float64)
    negative = _Model(lambda im: im - 2 * im.mean())
    out = refocus_checked(img, method="deepr", refocuser=negative, family=family, tile=64)
    assert out.image.min() >= 0.0 and out.image.dtype == np.float32
    report = json.loads(json.dumps(out.to_dict()))
    assert report["tiles"] == len(out.tiles) and report["method"] == "deepr"
    assert out.consistency_map().shape == img.shape
    with pytest.raises(Exception, match="needs a learned model"):
        refocus_checked(img, method="auto", family=family)
    with pytest.raises(Exception, match="method must be"):
        refocus_checked(img, method="wiener", refocuser=negative, family=family)  # type: ignore[arg-type]


@needs_real_data
def test_a_measured_bead_stack_is_a_psf_family_that_refocuses(tmp_path: Path) -> None:
    """The real 0.85 NA bead stack as the PSF: an object blurred by its plane 5 planes
    (1.5 µm) from focus is sharpened by the physics path told that defocus, and not made
    worse with the blind estimate."""
    beads = read_stack(
        REAL_DATA / "bead_psf_na085/psf_wl520nm_z300nm_x130nm_na0.85_n1.0.tif",
        pixel_size_um=0.13,
        z_step_um=0.3,
    )
    fam = PsfFamily.from_stack(beads)
    assert fam.z_um[0] == 0.0 and fam.z_um[1] == pytest.approx(0.3)
    rng = np.random.default_rng(1)
    shape = (256, 256)
    obj = np.full(shape, 200.0)
    obj[rng.integers(0, 256, 150), rng.integers(0, 256, 150)] += 2e4
    i = int(np.argmin(np.abs(fam.z_um - 1.5)))

    def blur(k: int) -> np.ndarray:
        return scipy.fft.irfft2(scipy.fft.rfft2(obj) * fam.otf(k, shape), s=shape)

    y = rng.poisson(np.maximum(blur(i), 0)).astype(np.float64)
    truth = blur(0)
    told = physics_refocus(y, fam, z_um=float(fam.z_um[i]), tile=128)
    assert ssim_to_truth(told.image, truth) > ssim_to_truth(y, truth) + 0.05
    blind = physics_refocus(y, fam, tile=128)  # the estimate may miss; it must not harm
    assert ssim_to_truth(blind.image, truth) >= ssim_to_truth(y, truth)


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def defocused_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from focuskit.simulate import simulate_stack

    sim = simulate_stack(
        "deepr-40x-fluor", sample="filaments", size=128, z_um=[2.5], photons=2000, seed=2
    )
    path = tmp_path_factory.mktemp("data") / "blurred.ome.tif"
    data = np.asarray(sim.data).astype(np.uint16)
    write_stack(FocalStack(data, sim.z_um, sim.pixel_size_um, sim.optics, None, {}), path)
    return path


def test_cli_physics_with_known_defocus_writes_the_check_and_the_input_dtype(
    defocused_file: Path, tmp_path: Path
) -> None:
    out, chi2 = tmp_path / "sharp.ome.tif", tmp_path / "chi2.ome.tif"
    code, stdout, err = run_cli(
        "refocus", "apply", defocused_file, "-o", out, "--method", "physics", "--z", "2.5",
        "--consistency", chi2, "--tile", 64, "--dtype", "input", "--json",
    )  # fmt: skip
    assert code == 0, err
    row = json.loads(stdout)["images"][0]
    assert row["method"] == "physics" and row["dtype"] == "uint16"
    assert np.all(np.asarray(row["refocus"]["z_um"]) == 2.5)
    assert row["refocus"]["tile_sources"]["physics"] == row["refocus"]["tiles"]
    got = read_stack(out)
    assert got.data.dtype == np.uint16 and got.data.shape == (1, 128, 128)
    assert got.metadata["refocused"]["method"] == "physics"
    assert read_stack(chi2).data.shape == (1, 128, 128)


def test_cli_refuses_bad_method_and_a_mismatched_bead_stack(
    defocused_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.ome.tif"
    code, _, err = run_cli("refocus", "apply", defocused_file, "-o", out, "--method", "wiener")
    one_line_error(code, err, "--method")
    beads = tmp_path / "beads.tif"
    tifffile.imwrite(beads, np.ones((5, 32, 32), np.uint16))
    code, _, err = run_cli(
        "refocus", "apply", defocused_file, "-o", out, "--method", "physics", "--psf", beads,
        "--psf-pixel-size", "0.5", "--psf-z-step", "0.3",
    )  # fmt: skip
    one_line_error(code, err, "pixel")
    assert not out.exists()
