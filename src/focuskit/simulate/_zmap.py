"""Defocus maps ``dz(x, y)`` (µm) of tilted and curved samples (Deep-R Fig. 8, Fig. S1).

A pixel of the image taken at focal position ``z`` is defocused by ``z + dz(x, y)``:
it is in focus where the focal plane reaches ``z = −dz``. Maps are centred on the
field of view (``dz = 0`` at its centre).
"""

from __future__ import annotations

import math

import numpy as np

from focuskit._errors import ConfigError

Shape2D = tuple[int, int]


def _centred_coords(shape: Shape2D, pixel_size_um: float) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    y = (np.arange(ny) - (ny - 1) / 2) * pixel_size_um
    x = (np.arange(nx) - (nx - 1) / 2) * pixel_size_um
    return y[:, None], x[None, :]


def tilt_map(
    shape: Shape2D, pixel_size_um: float, angle_deg: float, azimuth_deg: float = 90.0
) -> np.ndarray:
    """Planar tilt: ``dz = tan(angle) · (x·cos φ + y·sin φ)``; φ = 90° tilts along y (Deep-R S.1).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    angle_deg : float
        Tilt angle, in degrees, within ±45.
    azimuth_deg : float, optional
        Direction φ of the tilt, in degrees from +x (default 90).

    Returns
    -------
    dz : (Y, X) ndarray of float32
        Defocus per pixel, in µm, 0 at the centre of the field.

    Raises
    ------
    ConfigError
        If ``|angle_deg| >= 45``.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Fig. 8 and Supplementary
           S.1.
    """
    if not abs(angle_deg) < 45:
        raise ConfigError(f"tilt angle must be within ±45°, got {angle_deg}")
    y, x = _centred_coords(shape, pixel_size_um)
    phi = math.radians(azimuth_deg)
    u = x * math.cos(phi) + y * math.sin(phi)
    return (math.tan(math.radians(angle_deg)) * u).astype(np.float32)


def _sag(u2: np.ndarray, radius_um: float) -> np.ndarray:
    r = abs(radius_um)
    if not np.all(u2 < r**2):
        raise ConfigError(
            f"curvature radius {radius_um} µm is smaller than the field of "
            "view; use a larger radius"
        )
    return (math.copysign(1.0, radius_um) * (r - np.sqrt(r**2 - u2))).astype(np.float32)


def cylinder_map(
    shape: Shape2D, pixel_size_um: float, radius_um: float, azimuth_deg: float = 0.0
) -> np.ndarray:
    """Cylindrical surface bent across direction φ: ``dz = R − sqrt(R² − u²)`` (R < 0: concave).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    radius_um : float
        Radius ``R``, in µm (< 0: concave); larger than the field of view.
    azimuth_deg : float, optional
        Direction φ across which the surface bends, in degrees from +x (default 0).

    Returns
    -------
    dz : (Y, X) ndarray of float32
        Defocus per pixel, in µm, 0 at the centre of the field.

    Raises
    ------
    ConfigError
        If the radius is smaller than the field of view.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Fig. 8 and Fig. S1.
    """
    y, x = _centred_coords(shape, pixel_size_um)
    phi = math.radians(azimuth_deg)
    u = x * math.cos(phi) + y * math.sin(phi)
    return _sag(u**2, radius_um)


def sphere_map(shape: Shape2D, pixel_size_um: float, radius_um: float) -> np.ndarray:
    """Spherical cap: ``dz = R − sqrt(R² − x² − y²)`` (R < 0: concave).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    radius_um : float
        Radius ``R``, in µm (< 0: concave); larger than the field of view.

    Returns
    -------
    dz : (Y, X) ndarray of float32
        Defocus per pixel, in µm, 0 at the centre of the field.

    Raises
    ------
    ConfigError
        If the radius is smaller than the field of view.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Fig. 8 and Fig. S1.
    """
    y, x = _centred_coords(shape, pixel_size_um)
    return _sag(x**2 + y**2, radius_um)
