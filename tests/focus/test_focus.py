"""Ground-truth focus of stacks: simulated (known truth) and real (documented focus)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_real_data

from focuskit.focus import curve_snr, find_focus, focus_map, refine_peak
from focuskit.io import FocalStack
from focuskit.optics import DPC, get_preset, z_range
from focuskit.simulate import simulate_stack


def _stack(preset: str, *, focus: float, size: int = 96, illumination=None, **kw) -> FocalStack:  # type: ignore[no-untyped-def]
    p = get_preset(preset)
    z = z_range(p.z_min_um / 2, p.z_max_um / 2, p.z_step_um * 2)
    sim = simulate_stack(
        p,
        size=size,
        z_um=z,
        focus_z_um=focus,
        illumination=illumination,
        photons=3000,
        seed=11,
        **kw,
    )
    return FocalStack(
        sim.data, sim.z_um, sim.pixel_size_um, sim.optics, sim.focus_z_um, sim.metadata
    )


@pytest.mark.parametrize(
    "preset,illumination,focus",
    [
        (
            "fcfnn-20x-led",
            DPC(0.35, 0.48, source_step_na=0.06),
            3.3,
        ),  # Pinkard: ground truth from DPC
        # Sparse beads at 3000 mean photons saturate a 16-bit camera; a tissue fills the field.
        ("deepr-40x-fluor", "fluorescent-tissue", -1.1),
        ("deepr-20x-fluor", None, 2.2),
        ("deepr-20x-bf", None, -2.6),
        ("deepfocus-10x", None, 13.0),
    ],
)
def test_focus_of_simulated_stacks_within_one_step(preset: str, illumination, focus: float) -> None:  # type: ignore[no-untyped-def]
    if isinstance(illumination, str):
        stack = _stack(preset, focus=focus, sample=illumination)
    else:
        stack = _stack(preset, focus=focus, illumination=illumination)
    step = float(np.median(np.diff(stack.z_um)))
    for measure in ("tenengrad", "spectral-highband"):
        result = find_focus(stack, measure)
        assert abs(result.z_focus_um - focus) <= step, (measure, result.z_focus_um)
        assert result.confidence > 0.5


def test_led_stack_of_phase_cells_gets_a_note() -> None:
    stack = _stack("fcfnn-20x-led", focus=0.0, size=64)
    assert any("coherent LED" in n for n in find_focus(stack).notes)


def test_subpixel_refinement_beats_the_grid() -> None:
    """A Gaussian focus curve sampled on a non-uniform grid: both fits land closer to the
    true peak than the best grid point, and the Gaussian fit is exact for a Gaussian."""
    z = np.array([-6.0, -4.5, -2.0, -1.0, 0.5, 2.5, 3.0, 5.0])
    for true in (-1.7, 0.13, 1.9):
        curve = 2.0 + np.exp(-((z - true) ** 2) / (2 * 1.8**2))
        i = int(np.argmax(curve))
        grid_err = abs(z[i] - true)
        assert abs(refine_peak(z, curve, i, "parabola") - true) < grid_err
        assert refine_peak(z, curve - 2.0, i, "gaussian") == pytest.approx(true, abs=1e-6)
    # At the stack's end there is nothing to fit: the grid point is kept.
    assert refine_peak(z, np.arange(z.size, dtype=float), z.size - 1) == z[-1]


def test_confidence_falls_with_noise() -> None:
    z = np.linspace(-10, 10, 41)
    clean = np.exp(-(z**2) / 8)
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 0.3, z.size)
    i_clean, i_noisy = int(np.argmax(clean)), int(np.argmax(noisy))
    assert curve_snr(clean, i_clean) > 10 * curve_snr(noisy, i_noisy)


def test_focus_map_recovers_a_tilt() -> None:
    p = get_preset("deepr-20x-fluor")
    angle = 3.0
    sim = simulate_stack(
        p,
        sample="beads",
        size=192,
        z_um=z_range(-6, 6, 0.5),
        tilt_deg=angle,
        photons=3000,
        seed=2,
        sample_options={"density_per_100um2": 6},
    )
    stack = FocalStack(sim.data, sim.z_um, sim.pixel_size_um, sim.optics, sim.focus_z_um)
    fmap = focus_map(stack, tile=48)
    _, slope_y, slope_x = fmap.plane_fit()
    # In focus where z = −dz = −tan(θ)·y: slope −tan θ along y, none along x.
    assert slope_y == pytest.approx(-np.tan(np.radians(angle)), rel=0.25)
    assert abs(slope_x) < 0.25 * np.tan(np.radians(angle))


@needs_real_data
@pytest.mark.parametrize(
    "name", ["llsm_mitochondria_defocus", "wafer_reflected_brightfield", "bead_psf_na085"]
)
@pytest.mark.parametrize("measure", ["tenengrad", "spectral-highband"])
def test_find_focus_lands_on_the_documented_focus_of_real_stacks(name: str, measure: str) -> None:
    from focuskit.scopes import real_stack

    stack = real_stack(name)
    documented = int(np.argmin(np.abs(np.asarray(stack.z_um) - stack.focus_z_um)))
    result = find_focus(stack, measure)
    # LLSM's measures peak one plane (0.05 µm) before the documented plane 19; the others on it.
    assert abs(result.plane - documented) <= 1
    steps = np.abs(np.diff(stack.z_um))
    assert (
        abs(result.z_focus_um - stack.focus_z_um)
        <= 1.5 * steps[max(documented - 1, 0) : documented + 1].max()
    )


def test_parabola_vertex_is_exact_and_guards_degenerate_points() -> None:
    from focuskit.focus import parabola_vertex

    z = np.array([-1.3, 0.4, 2.9])
    s = -2.0 * (z - 0.77) ** 2 + 5
    assert parabola_vertex(z, s) == pytest.approx(0.77, abs=1e-12)
    assert (
        parabola_vertex(np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])) is None
    )  # coincident z
    assert parabola_vertex(z, (z - 0.77) ** 2) is None  # a minimum, not a peak
    assert parabola_vertex(z, 3 * z) is None  # collinear
