"""Pupil, defocus transfer function and point-spread functions on an FFT grid.

Sign convention (OPTICS.md, "Defocus sign"): the field at focal-plane position ``z``
relative to the sample's in-focus plane is

    U_z(f) = U_0(f) · P(f) · exp(+i·2π·z·(sqrt((n/λ)² − |f|²) − n/λ))

with NumPy's FFT convention (forward kernel exp(−i2π f·x)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

from focuskit._errors import ConfigError

Shape2D = tuple[int, int]


def frequency_grid(shape: Shape2D, pixel_size_um: float) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies (cycles/µm) of an FFT of ``shape``: ``(fy[:, None], fx[None, :])``.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field.
    pixel_size_um : float
        Pixel size, in µm.

    Returns
    -------
    fy : (Y, 1) ndarray
        Frequencies along y, in cycles/µm, FFT layout.
    fx : (1, X) ndarray
        Frequencies along x, in cycles/µm, FFT layout.
    """
    ny, nx = shape
    fy = np.fft.fftfreq(ny, d=pixel_size_um)[:, None]
    fx = np.fft.fftfreq(nx, d=pixel_size_um)[None, :]
    return fy, fx


def pupil(shape: Shape2D, pixel_size_um: float, na: float, wavelength_um: float) -> np.ndarray:
    """Binary pupil ``P = 1`` inside ``fx² + fy² ≤ (NA/λ)²`` (boolean array, FFT layout).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    na : float
        Numerical aperture of the objective.
    wavelength_um : float
        Wavelength λ, in µm.

    Returns
    -------
    pupil : (Y, X) ndarray of bool
        True inside the coherent cut-off NA/λ.
    """
    fy, fx = frequency_grid(shape, pixel_size_um)
    return (fx**2 + fy**2) <= (na / wavelength_um) ** 2


def defocus_kz(shape: Shape2D, pixel_size_um: float, wavelength_um: float, n: float) -> np.ndarray:
    """``sqrt((n/λ)² − f²) − n/λ`` (cycles/µm), 0 where the wave would be evanescent.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    wavelength_um : float
        Wavelength λ, in µm.
    n : float
        Refractive index of the immersion medium.

    Returns
    -------
    kz : (Y, X) ndarray
        Axial frequency offset, in cycles/µm, FFT layout.
    """
    fy, fx = frequency_grid(shape, pixel_size_um)
    k = n / wavelength_um
    kz2 = k**2 - fx**2 - fy**2
    return np.where(kz2 > 0, np.sqrt(np.maximum(kz2, 0.0)) - k, 0.0)


def coherent_transfer(
    shape: Shape2D,
    pixel_size_um: float,
    na: float,
    wavelength_um: float,
    z_um: float | Sequence[float] | np.ndarray,
    n: float = 1.0,
) -> np.ndarray:
    """Defocused coherent transfer function ``P · exp(i2πz(kz − n/λ))``, complex64 (Z, Y, X).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    na : float
        Numerical aperture of the objective.
    wavelength_um : float
        Wavelength λ, in µm.
    z_um : float, sequence of float or ndarray
        Focal-plane positions relative to the in-focus plane, in µm.
    n : float, optional
        Refractive index of the immersion medium (default 1).

    Returns
    -------
    transfer : (Z, Y, X) ndarray of complex64
        One transfer function per z, FFT layout, zero outside the pupil.

    Raises
    ------
    ConfigError
        If the pixel cannot sample the pupil (NA/λ above Nyquist).
    """
    z = np.atleast_1d(np.asarray(z_um, dtype=np.float64))
    _check_sampling(na, wavelength_um, pixel_size_um)
    p = pupil(shape, pixel_size_um, na, wavelength_um)
    kz = defocus_kz(shape, pixel_size_um, wavelength_um, n)
    out = np.zeros((z.size, *shape), dtype=np.complex64)
    out[:, p] = np.exp(2j * np.pi * z[:, None] * kz[p][None, :])
    return out


def incoherent_psf(
    shape: Shape2D,
    pixel_size_um: float,
    na: float,
    wavelength_um: float,
    z_um: float | Sequence[float] | np.ndarray,
    n: float = 1.0,
    *,
    centered: bool = False,
) -> np.ndarray:
    """Scalar incoherent PSF ``|IFFT(P_z)|²``, each plane normalized to sum 1, float32 (Z, Y, X).

    The PSF sits at the origin (index [0, 0], for FFT convolution) unless ``centered``,
    which moves it to ``(ny // 2, nx // 2)`` for viewing and profiling.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    na : float
        Numerical aperture of the objective.
    wavelength_um : float
        Wavelength λ, in µm.
    z_um : float, sequence of float or ndarray
        Focal-plane positions relative to the in-focus plane, in µm.
    n : float, optional
        Refractive index of the immersion medium (default 1).
    centered : bool, optional
        Put the PSF at the centre instead of the origin.

    Returns
    -------
    psf : (Z, Y, X) ndarray of float32
        One PSF per z, each summing to 1.

    Raises
    ------
    ConfigError
        If the pixel cannot sample the pupil.
    """
    h = coherent_transfer(shape, pixel_size_um, na, wavelength_um, z_um, n)
    amp = scipy.fft.ifft2(h, axes=(-2, -1), workers=-1, overwrite_x=True)
    psf = (amp.real**2 + amp.imag**2).astype(np.float32)
    psf /= psf.sum(axis=(-2, -1), keepdims=True)
    if centered:
        psf = np.fft.fftshift(psf, axes=(-2, -1))
    return psf


def vectorial_psf(
    shape: Shape2D,
    pixel_size_um: float,
    na: float,
    wavelength_um: float,
    z_um: float | Sequence[float] | np.ndarray,
    n: float = 1.0,
    *,
    centered: bool = False,
    size: int = 255,
) -> np.ndarray:
    """Vectorial (Richards–Wolf / Aguet) PSF from ``psfmodels``, for high-NA fluorescence.

    Computed on a ``size``² window (odd), embedded in ``shape`` and normalized to sum 1
    per plane; same layout as :func:`incoherent_psf`. Immersion, coverslip and specimen
    indices are all ``n`` so defocus is the only aberration, as in the scalar model.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    na : float
        Numerical aperture of the objective.
    wavelength_um : float
        Emission wavelength λ, in µm.
    z_um : float, sequence of float or ndarray
        Focal-plane positions relative to the in-focus plane, in µm.
    n : float, optional
        Refractive index of immersion, coverslip and specimen (default 1).
    centered : bool, optional
        Put the PSF at the centre instead of the origin.
    size : int, optional
        Side of the computed window, in pixels (default 255; reduced to fit ``shape``).

    Returns
    -------
    psf : (Z, Y, X) ndarray of float32
        One PSF per z, each summing to 1.

    Raises
    ------
    ConfigError
        If ``psfmodels`` is not installed (``pip install 'focuskit[psf]'``).

    References
    ----------
    .. [1] B. Richards and E. Wolf, "Electromagnetic diffraction in optical systems. II.
           Structure of the image field in an aplanatic system", Proc. R. Soc. A 253, 358 (1959).
    .. [2] F. Aguet et al., Opt. Express 17(8), 6829–6848 (2009); F. Aguet, PhD thesis, EPFL
           (2009), the vectorial model implemented by ``psfmodels``.
    """
    try:
        import psfmodels
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigError(
            "the vectorial PSF needs psfmodels: pip install 'focuskit[psf]'"
        ) from None
    z = np.atleast_1d(np.asarray(z_um, dtype=np.float64))
    ny, nx = shape
    size = min(size, (min(ny, nx) // 2) * 2 - 1)
    params = {"NA": na, "ni": n, "ni0": n, "ns": n, "ng": n, "ng0": n, "sf": 1, "mode": 1}
    # psfmodels takes the focal position relative to the source; intensity is even in z
    # for an aberration-free system, and the sign below matches our z (focal − sample).
    window = np.stack(
        [
            psfmodels.vectorial_psf(
                zv=[float(zi)],
                nx=size,
                dxy=pixel_size_um,
                pz=0.0,
                wvl=wavelength_um,
                params=params,
                normalize=False,
            )[0]
            for zi in z
        ]
    ).astype(np.float32)
    out = np.zeros((z.size, ny, nx), dtype=np.float32)
    y0, x0 = ny // 2 - size // 2, nx // 2 - size // 2
    out[:, y0 : y0 + size, x0 : x0 + size] = window
    out /= out.sum(axis=(-2, -1), keepdims=True)
    if not centered:
        out = np.fft.ifftshift(out, axes=(-2, -1))
    return out


def fwhm_um(profile: np.ndarray, pixel_size_um: float) -> float:
    """Full width at half maximum of a 1-D peak (linear interpolation of the crossings).

    Parameters
    ----------
    profile : (N,) ndarray
        Samples of the peak.
    pixel_size_um : float
        Sample spacing, in µm.

    Returns
    -------
    fwhm : float
        Full width at half maximum, in µm.

    Raises
    ------
    ValueError
        If the profile does not fall to half maximum on both sides of its peak.
    """
    profile = np.asarray(profile, dtype=np.float64)
    i = int(np.argmax(profile))
    half = profile[i] / 2
    left = i
    while left > 0 and profile[left] > half:
        left -= 1
    right = i
    while right < profile.size - 1 and profile[right] > half:
        right += 1
    if profile[left] > half or profile[right] > half:
        raise ValueError("profile does not fall to half maximum on both sides")
    xl = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    xr = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return float((xr - xl) * pixel_size_um)


def _check_sampling(na: float, wavelength_um: float, pixel_size_um: float) -> None:
    nyquist = 1.0 / (2.0 * pixel_size_um)
    if na / wavelength_um > nyquist:
        raise ConfigError(
            f"pixel {pixel_size_um} µm cannot sample the pupil (NA/λ = {na / wavelength_um:.3f} "
            f"> Nyquist {nyquist:.3f} cycles/µm); use a pixel ≤ {wavelength_um / (2 * na):.4f} µm"
        )
