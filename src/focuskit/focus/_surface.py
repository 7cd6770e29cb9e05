"""The focal surface of a defocus map: a plane through it (tilted samples, Deep-R Fig. 7c)."""

from __future__ import annotations

import math

import numpy as np


def fitted_tilt(
    defocus_map_um: np.ndarray, pixel_size_um: float, *, unsigned: bool = False
) -> tuple[float, float, float]:
    """Least-squares plane ``z = a·y + b·x + c`` through a defocus map.

    Returns (tilt in degrees = atan(|∇z|), azimuth in degrees = atan2(a, b), RMS residual in
    µm).

    ``unsigned``: the map holds |z| (a V where a tilted sample crosses focus), so
    ``|a·y + b·x + c|`` is fitted instead, from several starts; the azimuth is then known
    modulo 180° and is reported in [0°, 180°).

    Parameters
    ----------
    defocus_map_um : (Y, X) array_like
        Defocus per pixel, in µm.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    unsigned : bool, optional
        The map holds ``|z|`` (default False).

    Returns
    -------
    tilt_deg : float
        Tilt angle ``atan(|∇z|)``, in degrees.
    azimuth_deg : float
        Direction of the slope ``atan2(a, b)``, in degrees from +x (in [0, 180) when
        ``unsigned``).
    rms_um : float
        RMS residual of the fit, in µm.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Fig. 7c.
    """
    dz = np.asarray(defocus_map_um, dtype=np.float64)
    yy, xx = np.mgrid[0 : dz.shape[0], 0 : dz.shape[1]] * pixel_size_um
    a = np.column_stack([yy.ravel(), xx.ravel(), np.ones(dz.size)])
    coef, *_ = np.linalg.lstsq(a, dz.ravel(), rcond=None)
    if unsigned:
        from scipy.optimize import least_squares

        step = max(1, int(np.sqrt(dz.size / 20000)))  # ~20 k pixels are plenty for three numbers
        sub = a.reshape(*dz.shape, 3)[::step, ::step].reshape(-1, 3)
        target = dz[::step, ::step].ravel()
        span = float(np.ptp(sub[:, 0]) + np.ptp(sub[:, 1])) or 1.0
        slope = max(float(np.ptp(target)) / span, 1e-6)
        starts = [coef, coef * [2, 2, 1], coef * [1, 1, -1]]
        for phi in np.radians(
            np.arange(0, 180, 30)
        ):  # a V along each direction, crossing the centre
            g = np.array([np.sin(phi), np.cos(phi)]) * 2 * slope
            starts.append(np.array([g[0], g[1], -g @ sub[:, :2].mean(axis=0)]))
        fits = [least_squares(lambda c: np.abs(sub @ c) - target, c0) for c0 in starts]
        coef = min(fits, key=lambda f: f.cost).x
        resid = dz.ravel() - np.abs(a @ coef)
        azimuth = math.degrees(math.atan2(coef[0], coef[1])) % 180.0
        return (
            math.degrees(math.atan(math.hypot(coef[0], coef[1]))),
            azimuth,
            float(np.sqrt(np.mean(resid**2))),
        )
    resid = dz.ravel() - a @ coef
    slope = math.hypot(coef[0], coef[1])
    return (
        math.degrees(math.atan(slope)),
        math.degrees(math.atan2(coef[0], coef[1])),
        float(np.sqrt(np.mean(resid**2))),
    )
