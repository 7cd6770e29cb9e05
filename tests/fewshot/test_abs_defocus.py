"""BlurCalibration.abs_defocus_um: the calibration curve read backwards (slide QC's |z|)."""

from __future__ import annotations

import numpy as np
import pytest

from focuskit.fewshot import BlurCalibration


def test_abs_defocus_inverts_an_asymmetric_curve_on_both_branches() -> None:
    z = np.arange(-10.0, 10.5, 0.5)
    b = np.where(z >= 0, 0.3 * z, 0.2 * -z) + 0.1  # steeper above focus
    cal = BlurCalibration(z, b, None, 0.0)
    # b = 1.3 means |z| = 4 above and 6 below: the two branches are averaged.
    assert float(cal.abs_defocus_um(1.3)) == pytest.approx(5.0)
    np.testing.assert_allclose(cal.abs_defocus_um([0.1, 0.0]), [0.0, 0.0])  # at or below focus
    assert float(cal.abs_defocus_um(50.0)) == pytest.approx(10.0)  # beyond: the range's end
    assert np.isnan(cal.abs_defocus_um(np.nan))


def test_abs_defocus_tolerates_a_non_monotone_noisy_branch() -> None:
    z = np.arange(-6.0, 6.5, 1.0)
    b = np.abs(z) * 0.5 + 0.2
    b[9] -= 0.4  # z = 3: a dip below its neighbour
    cal = BlurCalibration(z, b, None, 0.0)
    out = cal.abs_defocus_um(np.linspace(0.2, 3.2, 31))
    assert np.all(np.diff(out) >= -1e-12)  # still monotone in the score
    assert float(cal.abs_defocus_um(2.2)) == pytest.approx(4.0, abs=0.6)
