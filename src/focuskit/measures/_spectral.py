"""Fourier-domain focus measures: Pinkard's high-band log spectrum and an optics-aware band power.

Both work on the power spectrum ``|F(f)|²`` of the mean-subtracted plane (``rfft2``,
float64; the half-plane is weighted so that averages equal those over the full plane)
and normalize it by ``N·μ²`` (``N = Y·X`` pixels, ``μ`` the plane mean):

    ``P(f) = |F(f)|² / (N·μ²)``

i.e. the power spectral density of the relative contrast ``I/μ − 1``. By default
(``periodic=True``) ``F`` is the spectrum of the plane's *periodic component* (Moisan's
periodic + smooth decomposition, see ``_spectrum``), which removes the cross of power
that the jump between opposite image borders puts on the frequency axes; that cross does
not blur with the image and, on images with strong edges, made band powers rise with
blur in our tests. (An image that *is* exactly periodic, e.g. a grating with a whole
number of periods, loses a little: the decomposition treats its wrap-around as a border
too.) ``periodic=False`` uses the raw FFT. The normalization makes both
invariant to ``I → c·I`` (k = 0) and independent of the image size, and leaves the ranking
of the planes of a stack unchanged wherever the mean intensity is the same in every plane
(transmitted light, or fluorescence without bleaching). It needs an intensity image:
a plane whose mean is ≤ 0 raises ConfigError (an all-zero plane scores the no-detail value).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import scipy.fft

from focuskit._errors import ConfigError
from focuskit.measures._common import (
    Score,
    centered,
    check_band,
    check_positive,
    positive_mean,
    reduce_planes,
)

#: Floor added to the normalized spectrum before the log (spectral_highband): an image
#: with no detail (constant) scores ln(1e-20) ≈ −46.05 instead of −inf. Real images sit
#: far above it (the rounding of a 16-bit camera alone puts ≳ 1e-11 at every frequency).
LOG_FLOOR = 1e-20


def _rfft_weights(ny: int, nx: int) -> np.ndarray:
    """Multiplicity of each rfft2 column in the full spectrum (2; 1 for DC and Nyquist columns)."""
    nxr = nx // 2 + 1
    w = np.full(nxr, 2.0)
    w[0] = 1.0
    if nx % 2 == 0:
        w[-1] = 1.0
    return np.broadcast_to(w, (ny, nxr))


@functools.lru_cache(maxsize=4)
def _smooth_plan(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors of the smooth component's spectrum (Moisan 2011) in the rfft layout."""
    q = np.arange(ny)
    r = np.arange(nx // 2 + 1)
    den = (2 * np.cos(2 * np.pi * q / ny))[:, None] + (2 * np.cos(2 * np.pi * r / nx))[None, :] - 4
    den[0, 0] = 1.0
    inv = 1.0 / den
    inv[0, 0] = 0.0  # the smooth component has zero mean
    cq = 1 - np.exp(2j * np.pi * q / ny)
    cr = 1 - np.exp(2j * np.pi * r / nx)
    for arr in (inv, cq, cr):
        arr.setflags(write=False)
    return inv, cq, cr


def _spectrum(d: np.ndarray, periodic: bool) -> np.ndarray:
    """rfft2 of each plane of ``d``, or of its periodic component (Moisan's periodic + smooth).

    An image is not periodic: the jump between opposite borders puts a cross of power
    along the ``fx = 0`` and ``fy = 0`` axes that does not blur with the image and can
    mask (or interfere with) the image's own spectrum. Moisan's decomposition
    ``u = p + s`` (L. Moisan, "Periodic plus smooth image decomposition", J. Math.
    Imaging Vis. 39:161, 2011) removes the smooth, non-periodic part ``s`` that carries
    those jumps, in closed form: ``ŝ(q, r) = v̂(q, r) / (2cos(2πq/M) + 2cos(2πr/N) − 4)``
    with ``v`` the border-difference image, whose spectrum needs only 1-D FFTs of the
    two border differences.
    """
    ny, nx = d.shape[-2], d.shape[-1]
    spec = scipy.fft.rfft2(d, axes=(-2, -1), workers=-1)
    if periodic:
        inv, cq, cr = _smooth_plan(ny, nx)
        a = scipy.fft.rfft(d[:, -1, :] - d[:, 0, :], axis=-1)  # (n, X//2+1)
        b = scipy.fft.fft(d[:, :, -1] - d[:, :, 0], axis=-1)  # (n, Y)
        smooth = cq[None, :, None] * a[:, None, :]
        smooth += cr[None, None, :] * b[:, :, None]
        smooth *= inv
        spec -= smooth
    return spec


def _power(name: str, x: np.ndarray, start: int, periodic: bool) -> np.ndarray:
    """Normalized power ``|F|²/(N μ²)`` of each plane, (n, Y, X//2+1); all-zero planes → 0."""
    _n, ny, nx = x.shape
    mu, d = centered(x)
    zero = positive_mean(name, mu, d, start)
    spec = _spectrum(d, periodic)
    del d
    p = spec.real**2
    p += spec.imag**2
    del spec
    p *= np.where(zero, 0.0, 1.0 / (ny * nx * np.where(zero, 1.0, mu) ** 2))[:, None, None]
    return p


@functools.lru_cache(maxsize=16)
def _highband_plan(
    ny: int, nx: int, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of the band's rings in the rfft layout, sorted by ring.

    Returns ``(flat_index, weight, ring_starts, ring_weight)``.
    """
    nb = min(ny, nx) // 2
    fy = np.fft.fftfreq(ny)[:, None] / 0.5  # in units of the Nyquist frequency
    fx = np.fft.rfftfreq(nx)[None, :] / 0.5
    rho = np.sqrt(fy**2 + fx**2)
    ring = np.rint(rho * nb).astype(np.int64)  # ring i: radius within half a sample of i
    keep = (ring >= max(1, math.ceil(lo * nb - 1e-9))) & (ring < hi * nb - 1e-9)
    keep &= rho > 0
    w = _rfft_weights(ny, nx)
    flat = np.flatnonzero(keep)
    rings = ring.ravel()[flat]
    order = np.argsort(rings, kind="stable")
    flat, rings = flat[order], rings[order]
    weight = np.ascontiguousarray(w.ravel()[flat])
    if flat.size == 0:
        return flat, weight, np.zeros(0, np.int64), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, rings[1:] != rings[:-1]])
    ring_weight = np.add.reduceat(weight, starts)
    for arr in (flat, weight, starts, ring_weight):
        arr.setflags(write=False)
    return flat, weight, starts, ring_weight


def spectral_highband(
    image: Any, *, band: tuple[float, float] = (0.25, 1.0), periodic: bool = True
) -> Score:
    """High-frequency part of the radially averaged log power spectrum (Pinkard et al. 2019).

    Pinkard et al. define the ground-truth focal plane as the maximum over z of "the
    high-frequency content of [each image's] radially averaged log power spectrum". Their
    code (Waller-Lab/DeepAutofocus, ``calc_focal_plane``) takes ``ln|FFT|²`` per pixel,
    averages it in rings one frequency sample wide (``round(radius)``), and sums the rings
    from a quarter of the way to Nyquist up to Nyquist. Here:

    ``F = mean over rings i in band of  < ln(P(f) + 1e-20) >_{round(|f|/f_Nyq · n_r) = i}``

    with ``P = |F|²/(N·μ²)`` (module docstring), ``n_r = min(Y, X)//2`` rings between DC and
    Nyquist, and the rings ``lo·n_r ≤ i < hi·n_r`` (``band`` in fractions of the Nyquist
    frequency; default (0.25, 1.0) as in Pinkard's code; DC excluded). Averaging the
    rings instead of summing them makes the value independent of the image size: Pinkard's
    sum = (this + ln(N·μ²)) × the number of rings, so for a stack of constant mean intensity the
    best plane is the same. Unlike Pinkard's code, the spectrum is by default that of the
    periodic component (``periodic=True``, module docstring); ``periodic=False`` uses the raw
    FFT as Pinkard did.

    Brightness: k = 0 (invariant). Constant image → ln(1e-20) ≈ −46.05 (:data:`LOG_FLOOR`).
    Needs a positive mean (ConfigError otherwise) and at least 4×4 pixels.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers, mean > 0.
    band : tuple of float, optional
        (lo, hi) fractions of the Nyquist frequency, ``0 ≤ lo < hi ≤ 1`` (default (0.25, 1)).
    periodic : bool, optional
        Use the periodic component of each plane (Moisan 2011; default True) or the raw FFT.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Mean log normalized power in the band (dimensionless).

    Raises
    ------
    ConfigError
        If the image is invalid, holds NaN/Inf, is smaller than 4×4, a plane's mean is ≤ 0,
        the band is invalid, or no frequency ring falls in the band.

    References
    ----------
    .. [1] H. Pinkard, Z. Phillips, A. Babakhani, D. A. Fletcher and L. Waller, "Deep learning
           for single-shot autofocus microscopy", Optica 6, 794 (2019); code
           Waller-Lab/DeepAutofocus, ``calc_focal_plane``.
    .. [2] L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis. 39,
           161 (2011).
    """
    name = "spectral_highband"
    lo, hi = check_band(name, band)

    def chunk(x: np.ndarray, start: int) -> np.ndarray:
        n, ny, nx = x.shape
        flat, weight, starts, ring_weight = _highband_plan(ny, nx, lo, hi)
        if starts.size == 0:
            raise ConfigError(
                f"{name}: no frequency ring of a {ny}×{nx} image falls in band {band!r} — "
                "widen the band or use a larger image"
            )
        p = _power(name, x, start, bool(periodic)).reshape(n, -1)[:, flat]
        p += LOG_FLOOR
        np.log(p, out=p)
        p *= weight
        ring_mean = np.add.reduceat(p, starts, axis=1) / ring_weight
        return ring_mean.mean(axis=1)

    return reduce_planes(image, name, chunk, min_yx=(4, 4), allow_float32=True, work_itemsize=16)


@functools.lru_cache(maxsize=16)
def _annulus_plan(ny: int, nx: int, f_lo: float, f_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat rfft indices and weights of the annulus ``f_lo ≤ |f| ≤ f_hi`` (cycles/pixel), no DC."""
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    r = np.sqrt(fy**2 + fx**2)
    eps = 1e-12
    keep = (r >= f_lo - eps) & (r <= f_hi + eps) & (r > 0)
    flat = np.flatnonzero(keep)
    weight = np.ascontiguousarray(_rfft_weights(ny, nx).ravel()[flat])
    flat.setflags(write=False)
    weight.setflags(write=False)
    return flat, weight


def spectral_midband(
    image: Any,
    *,
    pixel_size_um: float | None = None,
    na: float | None = None,
    wavelength_um: float | None = None,
    band: tuple[float, float] = (0.25, 0.75),
    periodic: bool = True,
) -> Score:
    """Optics-aware band power: mean normalized power in an annulus set by the incoherent cut-off.

    ``f_c = min(2·NA/λ, 1/(2·pixel))`` — the incoherent (OTF) cut-off, clipped to the
    Nyquist frequency of the pixel grid (cycles/µm) — and

    ``F = < P(f) >_{band[0]·f_c ≤ |f| ≤ band[1]·f_c}``

    the mean over the annulus of ``P = |F|²/(N·μ²)`` (module docstring: normalized by the
    mean², not by the total power: a blur that keeps the mean (any normalized, non-negative
    PSF, whose |OTF| ≤ 1) can only lower it, up to border effects, and ``I → c·I`` leaves
    it unchanged; normalized by the total power it could *rise* with blur when power
    leaves the frequencies above the band first). The default band (0.25–0.75 of the cut-off)
    avoids the lowest frequencies (slow illumination gradients, edge leakage) and the band
    edge near the cut-off where the OTF and the signal-to-noise vanish. ``periodic`` as in
    the module docstring. A focuskit measure (no paper defines it).

    ``pixel_size_um`` (at the sample), ``na`` and ``wavelength_um`` (emission wavelength
    for fluorescence) are required; a missing one raises ConfigError.

    Brightness: k = 0. Constant image → 0. Needs a positive mean (ConfigError otherwise),
    and an annulus containing at least one frequency sample (ConfigError otherwise).

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers, mean > 0.
    pixel_size_um : float
        Pixel size at the sample, in µm (required).
    na : float
        Numerical aperture of the objective (required).
    wavelength_um : float
        Wavelength λ, in µm (0.53, not 530; required).
    band : tuple of float, optional
        (lo, hi) fractions of the cut-off ``f_c``, ``0 ≤ lo < hi ≤ 1`` (default (0.25, 0.75)).
    periodic : bool, optional
        Use the periodic component of each plane (Moisan 2011; default True) or the raw FFT.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Mean normalized power in the annulus (dimensionless).

    Raises
    ------
    ConfigError
        If an optics value is missing or invalid, the image is invalid, a plane's mean is
        ≤ 0, the band is invalid, or no frequency sample lies in the annulus.

    References
    ----------
    .. [1] L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis. 39,
           161 (2011).
    """
    name = "spectral_midband"
    given = {"pixel_size_um": pixel_size_um, "na": na, "wavelength_um": wavelength_um}
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError(f"{name} needs the optics: give {', '.join(missing)}")
    p_um = check_positive(name, "pixel_size_um", pixel_size_um)
    na_v = check_positive(name, "na", na)
    lam = check_positive(name, "wavelength_um", wavelength_um)
    if lam >= 5:
        raise ConfigError(f"{name}: wavelength_um is in µm (0.53, not 530); got {wavelength_um}")
    lo, hi = check_band(name, band)
    fc_um = min(2 * na_v / lam, 1 / (2 * p_um))  # cycles/µm
    fc_px = fc_um * p_um  # cycles/pixel, ≤ 0.5

    def chunk(x: np.ndarray, start: int) -> np.ndarray:
        n, ny, nx = x.shape
        flat, weight = _annulus_plan(ny, nx, lo * fc_px, hi * fc_px)
        if flat.size == 0:
            raise ConfigError(
                f"{name}: no frequency sample of a {ny}×{nx} image lies between {lo:g} and "
                f"{hi:g} × the cut-off {fc_um:.4g} cycles/µm — widen the band or use a larger image"
            )
        p = _power(name, x, start, bool(periodic)).reshape(n, -1)[:, flat]
        return p @ weight / weight.sum()

    return reduce_planes(image, name, chunk, min_yx=(2, 2), allow_float32=True, work_itemsize=16)
