"""Rendering: defocus maps, drift, camera noise, margins, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
from skimage.registration import phase_cross_correlation

from focuskit import ConfigError
from focuskit.optics import Fluorescence, get_preset, z_range
from focuskit.simulate import (
    Drift,
    apply_camera,
    cylinder_map,
    render_stack,
    simulate_stack,
    sphere_map,
    tilt_map,
)


def _local_sharpness(stack: np.ndarray) -> np.ndarray:
    """Per-plane variance of the Laplacian, one value per band of rows."""
    lap = np.stack([scipy.ndimage.laplace(p.astype(np.float64)) for p in stack])
    return lap**2


def test_uniform_stack_is_sharpest_at_the_true_focus() -> None:
    z = z_range(-6, 6, 1)
    sim = simulate_stack(
        "deepr-20x-fluor",
        sample="beads",
        size=96,
        z_um=z,
        focus_z_um=2.0,
        seed=3,
        sample_options={"density_per_100um2": 5},
    )
    sharp = _local_sharpness(sim.data).mean(axis=(1, 2))
    assert z[int(np.argmax(sharp))] == pytest.approx(2.0)
    assert sim.focus_z_um == 2.0


def test_tilted_sample_is_in_focus_at_z_equal_minus_dz() -> None:
    """Tilt along y: rows at height y are in focus at z = −tan(θ)·y (pixel defocus z + dz)."""
    preset = get_preset("deepr-20x-fluor")
    dx = preset.optics.pixel_size_um
    angle = 6.0
    z = z_range(-4, 4, 0.25)
    sim = simulate_stack(
        preset,
        sample="beads",
        size=128,
        z_um=z,
        tilt_deg=angle,
        seed=5,
        sample_options={"density_per_100um2": 8},
    )
    sharp = _local_sharpness(sim.data)
    dz = tilt_map((128, 128), dx, angle, 90.0)
    for rows in (slice(8, 40), slice(88, 120)):
        best = z[int(np.argmax(sharp[:, rows].mean(axis=(1, 2))))]
        expected = -float(dz[rows].mean())
        assert best == pytest.approx(expected, abs=0.5)
    # ...and the two bands really do disagree (the tilt is visible).
    assert abs(float(dz[8:40].mean() - dz[88:120].mean())) > 2 * preset.optics.depth_of_field_um


def test_defocus_maps_have_the_stated_geometry() -> None:
    dx = 0.5
    t = tilt_map((101, 101), dx, 10.0, 0.0)
    assert t[50, 50] == pytest.approx(0.0, abs=1e-6)
    assert t[50, 60] - t[50, 40] == pytest.approx(np.tan(np.radians(10)) * 20 * dx, rel=1e-5)
    np.testing.assert_allclose(t[0], t[100], atol=1e-6)  # no slope along y at φ = 0
    c = cylinder_map((101, 101), dx, radius_um=200.0, azimuth_deg=0.0)
    assert c[50, 100] == pytest.approx(200 - np.sqrt(200**2 - 25**2), rel=1e-4)
    np.testing.assert_allclose(c[:, 10], c[50, 10], atol=1e-6)  # a cylinder: constant along y
    s = sphere_map((101, 101), dx, radius_um=-300.0)
    assert s[50, 50] == 0 and s[0, 0] < 0
    assert s[0, 50] == pytest.approx(s[50, 0], rel=1e-6)
    with pytest.raises(ConfigError):
        sphere_map((101, 101), dx, radius_um=10.0)


def test_drift_offsets_are_recorded_and_recoverable_by_registration() -> None:
    drift = Drift(step_um=(0.4, -0.25), jitter_um=0.1)
    # Planes well within the depth of field: a defocused OTF flips sign in bands, which
    # biases phase correlation between very different planes (physics, not drift).
    z = z_range(-0.2, 0.2, 0.1)
    sim = simulate_stack(
        "deepr-20x-fluor", sample="fluorescent-tissue", size=128, z_um=z, drift=drift, seed=2
    )
    dx = sim.pixel_size_um
    offsets = np.array([[d["dy_um"], d["dx_um"]] for d in sim.metadata["drift"]])
    assert offsets.shape == (5, 2) and np.all(offsets[0] == 0)
    mid = 2
    for k in (0, 4):
        # phase_cross_correlation returns the shift that registers the
        # moving image to the reference.
        shift, _, _ = phase_cross_correlation(sim.data[mid], sim.data[k], upsample_factor=20)
        np.testing.assert_allclose(-shift * dx, offsets[k] - offsets[mid], atol=0.05)
    assert np.abs(offsets[4] - offsets[0]).max() > 0.8  # they really moved


def test_rotation_between_planes_is_applied() -> None:
    from focuskit.simulate import make_sample

    optics = get_preset("deepfocus-10x").optics
    sample = make_sample("fluorescent-tissue", (400, 400), optics.pixel_size_um, seed=4)
    z = [0.0, 0.0]
    base = render_stack(sample.values, optics, z, shape=(128, 128))
    rot = render_stack(
        sample.values, optics, z, shape=(128, 128), drift=Drift(rotation_deg_per_plane=3.0)
    )
    # Plane 0 is the reference (equal up to the Airy tails of a wider margin's light).
    np.testing.assert_allclose(rot.data[0], base.data[0], atol=5e-3 * base.data[0].max())
    assert np.abs(rot.data[1] - base.data[1]).mean() > 0.05 * base.data[1].mean()
    assert rot.metadata["drift"][1]["rotation_deg"] == pytest.approx(3.0)
    # It is the rotation skimage would apply, about the field centre.
    from skimage.transform import rotate

    expected = rotate(base.data[1], 3.0, order=3)
    inner = (slice(20, -20), slice(20, -20))
    assert (
        np.abs(rot.data[1][inner] - expected[inner]).mean()
        < 0.05 * np.abs(base.data[1][inner] - expected[inner]).mean()
    )


def test_camera_noise_is_poisson_plus_read_noise() -> None:
    camera = get_preset("fcfnn-20x-led").optics.camera
    flat = np.ones((200, 200), np.float32)
    counts = apply_camera(flat, camera, photons=400, seed=0).astype(np.float64)
    electrons = (counts - camera.offset_adu) / camera.gain_adu_per_e
    assert electrons.mean() == pytest.approx(400, rel=0.01)
    # Var = mean (Poisson) + read² (Gaussian) + 1/12 (rounding to integer ADU).
    assert electrons.var() == pytest.approx(400 + camera.read_noise_e**2 + 1 / 12, rel=0.05)
    assert counts.dtype == np.float64 and apply_camera(flat, camera, 10, seed=0).dtype == np.uint16


def test_camera_keeps_relative_plane_intensities_and_clips() -> None:
    camera = get_preset("fcfnn-20x-led").optics.camera
    stack = np.stack([np.full((64, 64), 1.0), np.full((64, 64), 0.5)]).astype(np.float32)
    counts = (
        apply_camera(stack, camera, photons=1000, seed=1).astype(np.float64) - camera.offset_adu
    )
    assert counts[1].mean() / counts[0].mean() == pytest.approx(0.5, rel=0.02)
    saturated = apply_camera(stack, camera, photons=1e6, seed=1)
    assert saturated.max() == camera.max_adu
    with pytest.raises(ConfigError):
        apply_camera(stack, camera, photons=0)


def test_margin_prevents_wrap_around() -> None:
    """A bright point at the left edge must not light the right edge when defocused."""
    optics = get_preset("deepr-20x-fluor").optics
    emitters = np.zeros((128, 128), np.float32)
    emitters[64, 2] = 1.0
    from focuskit.optics import image_stack

    padded = render_stack(emitters, optics, [8.0], shape=(128, 128)).data[0]
    wrapped = image_stack(emitters, optics, [8.0], pixel_size_um=optics.pixel_size_um / 2)[0]
    # Without a margin the FFT wraps the blur around to the far edge...
    assert wrapped[:, -10:].max() > 1e-2 * wrapped.max()
    # ...with it, only float32 round-off is left there.
    assert padded[:, -10:].max() < 1e-3 * padded.max()


def test_same_seed_same_stack_and_different_seed_differs() -> None:
    kw = {"sample": "cells", "size": 64, "z_um": [-10.0, 0.0, 10.0], "photons": 500}
    a = simulate_stack("fcfnn-20x-led", seed=7, **kw)
    b = simulate_stack("fcfnn-20x-led", seed=7, **kw)
    c = simulate_stack("fcfnn-20x-led", seed=8, **kw)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


def test_sample_and_illumination_must_match() -> None:
    with pytest.raises(ConfigError, match="fluorescent sample"):
        simulate_stack("deepr-40x-fluor", sample="cells", size=32, z_um=[0.0])
    with pytest.raises(ConfigError, match="transmitted-light"):
        simulate_stack("fcfnn-20x-led", sample="fluorescent-tissue", size=32, z_um=[0.0])
    # ...but overriding the illumination makes it consistent.
    sim = simulate_stack(
        "fcfnn-20x-led", sample="beads", size=32, z_um=[0.0], illumination=Fluorescence()
    )
    assert sim.optics.is_fluorescence


def test_led_stack_of_phase_cells_has_contrast_only_out_of_focus() -> None:
    """Phase objects are nearly invisible in focus under brightfield-like LED illumination
    and gain contrast with defocus (the signal single-shot defocus prediction reads)."""
    sim = simulate_stack(
        "fcfnn-20x-led",
        sample="cells",
        size=192,
        z_um=[-10.0, 0.0, 10.0],
        seed=1,
        sample_options={"density": 0.4},
    )
    contrast = sim.data.std(axis=(1, 2)) / sim.data.mean(axis=(1, 2))
    assert contrast[1] < 0.6 * contrast[0] and contrast[1] < 0.6 * contrast[2]
