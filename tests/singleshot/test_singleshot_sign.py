"""Why one LED often cannot tell +z from −z: the physics behind the sign check.

A thin sample ``t = exp(−a + iφ)`` under one coherent LED, propagated by the angular
spectrum of OPTICS.md on a periodic grid (exact, no crop). For a weak object the image
spectrum is linear in (φ, a):

    Ĩ_z(k) = i·φ̂(k)·[H_z(k) − H_z*(−k)] − â(k)·[H_z(k) + H_z*(−k)],  H_{−z} = H_z*,

so ``|Ĩ_{−z}| = |Ĩ_z|`` when ``a = 0`` — the Fourier-magnitude feature of Pinkard et al.
(Note S3) is sign-blind for a weak phase object — and an incoherent sum of LEDs is too
(a common factor φ̂). Only the φ–a cross term ``Re(φ̂ â*)`` is odd in z; for a strong
phase, ``I(−z; φ) = I(+z; −φ)`` (on axis): a cell (a positive lens) at −z looks like a
negative lens at +z.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

N, PX, LAM, NA = 128, 0.325, 0.53, 0.5


def _object(seed: int = 0) -> np.ndarray:
    """A smooth random pattern (periodic), peak |value| 1."""
    rng = np.random.default_rng(seed)
    v = gaussian_filter(rng.standard_normal((N, N)), 2.0, mode="wrap")
    return v / np.abs(v).max()


def _image(t: np.ndarray, z: float, sx: float = 0.407, sy: float = 0.0) -> np.ndarray:
    """Coherent image of transmittance t under an LED at (sx, sy), defocus z (OPTICS.md)."""
    f = np.fft.fftfreq(N, PX)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    df = 1 / (N * PX)
    kx, ky = round(sx / LAM / df) * df, round(sy / LAM / df) * df  # snapped to the grid
    y, x = np.meshgrid(np.arange(N) * PX, np.arange(N) * PX, indexing="ij")
    field = t * np.exp(2j * np.pi * (kx * x + ky * y))
    pupil = fx**2 + fy**2 <= (NA / LAM) ** 2
    kz = np.sqrt(np.maximum(1 / LAM**2 - fx**2 - fy**2, 0))
    h = pupil * np.exp(2j * np.pi * z * (kz - 1 / LAM))
    return np.abs(np.fft.ifft2(np.fft.fft2(field) * h)) ** 2


def _magnitude(image: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft2(image - image.mean()))


def _asymmetry(t: np.ndarray, z: float, **led: float) -> float:
    """‖|Ĩ_z| − |Ĩ_−z|‖ / ‖|Ĩ_z|‖: 0 when the magnitude cannot tell the sign."""
    a, b = _magnitude(_image(t, z, **led)), _magnitude(_image(t, -z, **led))
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_weak_phase_under_one_led_is_sign_blind_in_fourier_magnitude() -> None:
    t = np.exp(1j * 0.01 * _object())
    for z in (3.0, 10.0, 25.0):
        assert _asymmetry(t, z) < 0.02
    # Not a trivially small signal: the image changes strongly with |z|.
    assert np.linalg.norm(_magnitude(_image(t, 10.0)) - _magnitude(_image(t, 3.0))) > 0.2 * (
        np.linalg.norm(_magnitude(_image(t, 10.0)))
    )


def test_on_axis_weak_phase_at_minus_z_is_the_contrast_inverted_image() -> None:
    t = np.exp(1j * 0.01 * _object())
    plus, minus = _image(t, 8.0, sx=0.0), _image(t, -8.0, sx=0.0)
    c = np.corrcoef((plus - 1).ravel(), (minus - 1).ravel())[0, 1]
    assert c < -0.99  # TIE: dI/dz ∝ −∇·(I∇φ) flips with z


def test_an_incoherent_sum_of_leds_is_sign_blind_too() -> None:
    t = np.exp(1j * 0.01 * _object())
    for z in (5.0, 20.0):
        plus = _image(t, z, sx=0.407) + _image(t, z, sx=-0.2, sy=0.3)
        minus = _image(t, -z, sx=0.407) + _image(t, -z, sx=-0.2, sy=0.3)
        d = np.linalg.norm(_magnitude(plus) - _magnitude(minus))
        assert d < 0.02 * np.linalg.norm(_magnitude(plus))


def test_absorption_with_the_phase_carries_the_sign() -> None:
    phi = _object()
    weak = np.exp(1j * 0.01 * phi)
    stained = np.exp(-0.005 * np.abs(phi) + 1j * 0.01 * phi)  # absorption where the cells are
    for z in (3.0, 10.0):
        assert _asymmetry(stained, z) > 5 * _asymmetry(weak, z)
        assert _asymmetry(stained, z) > 0.1


def test_strong_phase_at_minus_z_is_the_opposite_phase_at_plus_z() -> None:
    phi = 3.0 * np.abs(_object())  # a positive lens, rad
    for z in (4.0, 15.0):
        np.testing.assert_allclose(
            _image(np.exp(1j * phi), -z, sx=0.0),
            _image(np.exp(-1j * phi), z, sx=0.0),
            atol=1e-5,
        )
    # ... so a strong phase object is not sign-blind.
    assert _asymmetry(np.exp(1j * phi), 10.0) > 0.1
