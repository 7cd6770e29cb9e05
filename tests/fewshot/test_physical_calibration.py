"""The physical blur calibration: the wavefront the CNN is trained to read, from the optics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.fewshot import BlurCalibration, deepfocus_search
from focuskit.optics import get_preset
from focuskit.scopes import SimulatedScope


def test_the_curve_is_the_edge_defocus_wavefront_in_waves() -> None:
    optics = get_preset("deepfocus-10x").optics
    cal = BlurCalibration.from_optics(optics)
    na, lam, n = optics.objective.na, optics.wavelength_um, optics.objective.immersion_index
    rate = (n - math.sqrt(n * n - na * na)) / lam  # dW/dz, waves per µm (OPTICS.md)
    assert cal.curve(0.0) == 0.0 and cal.focus_z_um == 0.0
    # Linear in |z| up to the cap, the same on both sides of focus, flat beyond.
    z = np.array([1.0, 5.0, 20.0])
    assert np.allclose(cal.curve(z), rate * z)
    assert np.allclose(cal.curve(-z), cal.curve(z))
    cap = cal.source["cap_waves"]
    assert cal.curve(10 * cap / rate) == pytest.approx(cap)
    # Half depth at half the cap: the FWHM the search spaces its first images by.
    assert cal.fwhm_um == pytest.approx(cap / rate, rel=0.02)
    assert cal.optics == optics.to_dict() and cal.source["physical"] is True


def test_physical_calibration_is_refused_without_optics() -> None:
    with pytest.raises(ConfigError, match="needs the microscope's optics"):
        BlurCalibration.from_optics(None)
    with pytest.raises(ConfigError, match="cap_waves"):
        BlurCalibration.from_optics(get_preset("deepfocus-10x").optics, cap_waves=0.0)


def _blur_from_wavefront(scope: SimulatedScope, true_focus: float):  # type: ignore[no-untyped-def]
    """A perfect blur scorer: the edge wavefront of the scope's current defocus."""
    cal = BlurCalibration.from_optics(scope.optics, cap_waves=50.0)

    def score_map(image: np.ndarray) -> np.ndarray:
        return np.full((2, 2), float(cal.curve(scope.z_um - true_focus)))

    return score_map


def test_a_scorer_that_reads_the_wavefront_finds_focus_with_the_physical_calibration() -> None:
    scope = SimulatedScope(
        "deepfocus-10x", sample="nuclei", size=128, focus_z_um=4.0, start_z_um=-20.0, seed=1
    )
    result = deepfocus_search(
        scope, score_map=_blur_from_wavefront(scope, 4.0), calibration="physical"
    )
    assert abs(result.predictions[0]["z_focus_um"] - 4.0) < 0.5  # three images suffice
    assert result.success, result.message
    assert abs(result.z_final_um - 4.0) < scope.optics.depth_of_field_um / 2


def test_the_side_peak_of_the_verification_measure_is_where_the_otf_puts_it() -> None:
    # Band power 0.25–0.75 of the cutoff (spectral-midband) under the incoherent defocus
    # OTF: largest at focus, then a first local maximum where the OTF's zero crossings
    # sweep through the band. The search refuses a bracketed peak that reads more than
    # half that defocus, so the constant must sit at the OTF's side peak.
    from focuskit.fewshot._data import defocus_otf
    from focuskit.fewshot._search import SIDE_PEAK_WAVES

    n, cutoff = 256, 0.4
    radius = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :]) / cutoff
    band = (radius >= 0.25) & (radius <= 0.75)
    waves = np.arange(0.0, 3.0, 0.05)
    power = np.array([(np.abs(defocus_otf(n, cutoff, w)) ** 2)[band].mean() for w in waves])
    assert int(np.argmax(power)) == 0
    first = next(i for i in range(1, waves.size - 1) if power[i - 1] < power[i] >= power[i + 1])
    assert waves[first] == pytest.approx(SIDE_PEAK_WAVES, abs=0.1)
