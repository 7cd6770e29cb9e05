"""DeepFocus's pair design: two blur images place focus coarsely, two sharpness images at
f̂ ± d place it finely through the default measure's defocus curve from the optics."""

from __future__ import annotations

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.fewshot import BlurScorer, midband_defocus_curve
from focuskit.fewshot._search import _pair_focus
from focuskit.io import FocalStack
from focuskit.measures import score
from focuskit.optics import get_preset
from focuskit.scopes import StackScope
from focuskit.simulate import simulate_stack

OPTICS = get_preset("deepfocus-10x").optics
DOF = OPTICS.depth_of_field_um


def test_the_midband_curve_is_one_at_focus_falls_with_defocus_and_is_quadratic_there() -> None:
    """``T(z) = <|OTF_z|²>`` over the band: 1 at focus, ≤ 1 everywhere (|OTF| ≤ 1 for a
    non-negative PSF), falling through the depth of field, and even and smooth in z, so
    ``ln T ∝ z²`` near focus."""
    z, log_t = midband_defocus_curve(OPTICS, OPTICS.pixel_size_um)
    assert z[0] == 0.0 and log_t[0] == 0.0
    assert np.all(log_t <= 1e-12)
    inside = (z > 0) & (z <= DOF)
    assert np.all(np.diff(log_t[inside]) < 0)
    near = (z > 0) & (z <= DOF / 4)
    curvature = log_t[near] / z[near] ** 2
    assert np.ptp(curvature) < 0.1 * abs(curvature.mean())


@pytest.fixture(scope="module")
def stack() -> FocalStack:
    """Fluorescent tissue through focus (focus at 0), −40…+40 µm every 1 µm, 256²."""
    return FocalStack.from_simulation(
        simulate_stack(
            "deepfocus-10x",
            sample="fluorescent-tissue",
            size=256,
            z_um=np.arange(-40.0, 40.01, 1.0),
            photons=2000.0,
            seed=11,
        )
    )


@pytest.mark.parametrize("coarse", [-3.0, -1.0, 2.0, 3.5])
def test_the_sharpness_ratio_of_a_pair_locates_focus(stack: FocalStack, coarse: float) -> None:
    """The sample's own spectrum cancels in the ratio: from a coarse guess up to DOF/2 off,
    images at guess ± DOF/2 give focus to within DOF/8."""
    d = DOF / 2
    kw = {"pixel_size_um": OPTICS.pixel_size_um, "na": OPTICS.objective.na}
    s = {}
    for z in (coarse - d, coarse + d):
        plane = stack.data[int(np.argmin(np.abs(stack.z_um - round(z))))]
        s[z] = score(plane, "spectral-midband", wavelength_um=OPTICS.wavelength_um, **kw)
    lo, hi = sorted(s)
    lo_z, hi_z = round(lo), round(hi)  # the planes really imaged
    f = _pair_focus(lo_z, s[lo], hi_z, s[hi], midband_defocus_curve(OPTICS, OPTICS.pixel_size_um))
    assert abs(f) < DOF / 8, f


def test_four_images_place_focus_with_the_pair_and_are_not_called_a_success(
    stack: FocalStack,
) -> None:
    scorer = BlurScorer.load("builtin:fewshot-widefield", num_threads=1)
    result = scorer.autofocus(StackScope(stack, start_z_um=25.0), "physical", max_images=4)
    assert result.images == 4 and not result.success
    assert "none to verify" in result.message
    pair = result.predictions[-1]["pair"]
    assert pair["images_um"][1] - pair["images_um"][0] == pytest.approx(DOF, abs=1.0)
    assert abs(result.z_final_um) < DOF / 2
    # With the default budget the estimate is verified by a bracket.
    full = scorer.autofocus(StackScope(stack, start_z_um=25.0), "physical")
    assert full.success and abs(full.z_final_um) < DOF / 2 and full.images <= 8
    # The paper's design: z1 and z1 ± spread·FWHM first, no pair.
    paper = scorer.autofocus(
        StackScope(stack, start_z_um=25.0), "physical", max_images=4, design="paper"
    )
    assert "pair" not in paper.predictions[-1]
    first = sorted(z for z, _ in paper.trace[:3])
    assert first[1] == pytest.approx(25.0) and first[0] < 25.0 < first[2]


def test_a_stack_calibration_keeps_the_papers_design(stack: FocalStack) -> None:
    """The pair needs the physical curve; a calibration from a stack (here the same curve
    without the physical mark) takes the paper's three images."""
    import dataclasses

    from focuskit.fewshot import BlurCalibration

    scorer = BlurScorer.load("builtin:fewshot-widefield", num_threads=1)
    stacked = dataclasses.replace(BlurCalibration.from_optics(OPTICS), source={})
    for start in (12.0, 25.0):
        result = scorer.autofocus(StackScope(stack, start_z_um=start), stacked, max_images=4)
        assert all("pair" not in record for record in result.predictions)
        first = sorted(z for z, _ in result.trace[:3])
        assert first[1] == pytest.approx(start) and first[0] < start < first[2]


def test_an_unknown_design_is_refused() -> None:
    scorer = BlurScorer.load("builtin:fewshot-widefield", num_threads=1)
    scope = StackScope(
        FocalStack(
            np.random.default_rng(0).random((3, 128, 128)),
            [0.0, 1.0, 2.0],
            OPTICS.pixel_size_um,
            OPTICS,
        )
    )
    with pytest.raises(ConfigError, match="design must be"):
        scorer.autofocus(scope, "physical", design="triple")
