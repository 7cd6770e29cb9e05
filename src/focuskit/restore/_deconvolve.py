"""Defocus PSF and the classic deconvolution baselines of Deep-R (Methods, "Implementation
of RL and Landweber image deconvolution algorithms": DeconvolutionLab2, 100 iterations,
Landweber step 0.1).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.ndimage

from focuskit._errors import ConfigError
from focuskit.optics import Optics, incoherent_psf, vectorial_psf
from focuskit.simulate import oversampling

Shape2D = tuple[int, int]


def _odd(n: int) -> int:
    return n if n % 2 else n + 1


def defocus_psf(
    optics: Optics,
    z_um: float,
    shape: Shape2D = (65, 65),
    *,
    pixel_size_um: float | None = None,
) -> np.ndarray:
    """The incoherent PSF at defocus ``z`` as the simulator images it on the camera pixel.

    The simulator renders on sub-pixels ``k`` times finer than the camera pixel
    (:func:`focuskit.simulate.oversampling`), spreads an emitter uniformly over its
    k × k sub-pixels and averages each camera pixel over its own k × k. A point source
    in camera pixel J therefore gives pixel I the weight
    ``K[I − J] = (1/k²) Σ_{a,b} h((I − J)·k + a − b)``, i.e. the fine PSF ``h``
    convolved with the triangle ``(k − |m|)`` per axis, sampled every ``k`` sub-pixels.
    ``h`` is ``|IFFT(P_z)|²`` (or the vectorial PSF when the optics ask for it), computed
    on a fine grid twice the window so that wrap-around stays out of it.

    Returns the PSF centred at ``(ny // 2, nx // 2)``, summing to 1, float64 (Y, X).
    ``shape`` is made odd and grown to ≥ 3× the geometric blur diameter
    ``2·|z|·tan(asin(NA/n))`` when smaller. Fluorescence only: partially coherent
    (transmitted-light) imaging has no intensity PSF.

    Parameters
    ----------
    optics : Optics
        Fluorescence optics (NA, emission wavelength, immersion index, PSF model).
    z_um : float
        Defocus, in µm.
    shape : tuple of int, optional
        (Y, X) size of the PSF window, in camera pixels (default (65, 65)).
    pixel_size_um : float, optional
        Camera pixel at the sample, in µm; default ``optics.pixel_size_um``.

    Returns
    -------
    psf : (Y, X) ndarray of float64
        The PSF, centred, summing to 1.

    Raises
    ------
    ConfigError
        If the optics are not fluorescence, ``z_um`` is not finite, or the shape or pixel
        size is invalid.
    """
    if not optics.is_fluorescence:
        raise ConfigError(
            f"defocus_psf needs fluorescence optics, got {optics.illumination.kind} illumination "
            "(partially coherent imaging has no intensity PSF); use a fluorescence preset"
        )
    try:
        z = float(z_um)
    except (TypeError, ValueError):
        z = math.nan
    if not math.isfinite(z):
        raise ConfigError(f"defocus z must be a finite number (µm), got {z_um!r}")
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"PSF shape must be a pair of integers (ny, nx), got {shape!r}") from None
    if ny < 1 or nx < 1:
        raise ConfigError(f"PSF shape must be positive, got {shape!r}")
    dx = optics.pixel_size_um if pixel_size_um is None else float(pixel_size_um)
    if not (math.isfinite(dx) and dx > 0):
        raise ConfigError(f"pixel size must be a finite number > 0 µm, got {pixel_size_um!r}")

    blur_px = 2 * abs(z) * math.tan(math.asin(min(optics.na / optics.n, 0.999))) / dx
    need = math.ceil(3 * blur_px)
    ny, nx = _odd(max(ny, need)), _odd(max(nx, need))

    k = oversampling(optics, dx)
    hy, hx = ny // 2, nx // 2
    # Fine samples reach ±(h·k + k − 1) from the centre; twice that keeps the wrap away.
    fine = (
        scipy.fft.next_fast_len(4 * (hy * k + k) + 1),
        scipy.fft.next_fast_len(4 * (hx * k + k) + 1),
    )
    o, lam = optics.objective, optics.wavelength_um
    if getattr(optics.illumination, "psf_model", "scalar") == "vectorial":
        h = vectorial_psf(fine, dx / k, o.na, lam, [z], o.immersion_index, centered=True)[0]
    else:
        h = incoherent_psf(fine, dx / k, o.na, lam, [z], o.immersion_index, centered=True)[0]
    h = h.astype(np.float64)
    if k > 1:
        tri = (k - np.abs(np.arange(-(k - 1), k))).astype(np.float64) / k
        h = scipy.ndimage.convolve1d(h, tri, axis=0, mode="wrap")
        h = scipy.ndimage.convolve1d(h, tri, axis=1, mode="wrap")
    cy, cx = fine[0] // 2, fine[1] // 2
    psf = h[cy - hy * k : cy + hy * k + 1 : k, cx - hx * k : cx + hx * k + 1 : k]
    psf = np.maximum(psf, 0.0)
    return psf / psf.sum()


# --------------------------------------------------------------------------- inputs


def _image(image: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 2:
        raise ConfigError(
            f"{name}: image must be 2-D (Y, X), got shape {a.shape}; deconvolve one plane at a time"
        )
    if np.iscomplexobj(a):
        raise ConfigError(f"{name}: image must be real intensities, got a complex array")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name}: image contains NaN or Inf; fill or crop them first")
    return a


def _psf(psf: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(psf, dtype=np.float64)
    if p.ndim != 2:
        raise ConfigError(f"{name}: PSF must be 2-D (Y, X), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
        raise ConfigError(
            f"{name}: PSF must be finite, ≥ 0 and not all zero (e.g. from defocus_psf)"
        )
    # An even side gets a leading zero: the centre stays at (p − 1) // 2 (scipy's 'same'
    # convention) and the flipped PSF that RL uses as Hᵀ has the same centre.
    p = np.pad(p, ((1 - p.shape[0] % 2, 0), (1 - p.shape[1] % 2, 0)))
    return p / p.sum()


def _iterations(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name}: iterations must be an integer ≥ 0, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- algorithms


def richardson_lucy(image: np.ndarray, psf: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Richardson–Lucy deconvolution ``x ← x · Hᵀ(y / Hx)`` (Deep-R: 100 iterations).

    Runs ``skimage.restoration.richardson_lucy`` (``clip=False``) on the image
    mirror-padded by half the PSF (skimage's zero-padded 'same' convolution would
    otherwise leave a dark frame one PSF radius wide) and made non-negative (lifted by
    ``−min`` when it has negative pixels, e.g. after offset subtraction) and scaled to
    [0, 1] by its max; the result is returned in the input's scale, lift removed, float32.
    The PSF is normalized to sum 1; zero iterations return the input.

    Parameters
    ----------
    image : (Y, X) ndarray
        The blurred intensity image, real and finite.
    psf : (Y, X) ndarray
        The PSF (e.g. :func:`defocus_psf`), finite, ≥ 0, not all zero.
    iterations : int, optional
        Number of iterations, ≥ 0 (default 100).

    Returns
    -------
    restored : (Y, X) ndarray of float32
        The deconvolved image, in the input's intensity scale.

    Raises
    ------
    ConfigError
        If the image or PSF is invalid, or ``iterations`` is not an integer ≥ 0.

    References
    ----------
    .. [1] W. H. Richardson, "Bayesian-based iterative method of image restoration",
           J. Opt. Soc. Am. 62, 55 (1972).
    .. [2] L. B. Lucy, "An iterative technique for the rectification of observed
           distributions", Astron. J. 79, 745 (1974).
    .. [3] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods,
           "Implementation of RL and Landweber image deconvolution algorithms".
    """
    from skimage.restoration import richardson_lucy as _skimage_rl

    y = _image(image, "richardson_lucy")
    h = _psf(psf, "richardson_lucy")
    n = _iterations(iterations, "richardson_lucy")
    if n == 0:
        return y.astype(np.float32)
    lift = max(0.0, -float(y.min()))
    y = y + lift
    scale = float(y.max())
    if scale == 0:
        return np.zeros(y.shape, dtype=np.float32)
    # Mirror-pad by the PSF's half-size (as landweber does) so the zero-padded 'same'
    # convolution's edge falls outside the image: no frame artefacts in the result.
    py, px = h.shape[0] // 2 + 1, h.shape[1] // 2 + 1
    padded = np.pad(y / scale, ((py, py), (px, px)), mode="symmetric")
    x = _skimage_rl(padded.astype(np.float32), h.astype(np.float32), num_iter=n, clip=False)
    x = np.asarray(x, dtype=np.float64)[py : py + y.shape[0], px : px + y.shape[1]]
    return (x * scale - lift).astype(np.float32)


def landweber(
    image: np.ndarray,
    psf: np.ndarray,
    iterations: int = 100,
    step: float = 0.1,
    nonnegative: bool = True,
) -> np.ndarray:
    """Landweber iteration ``x ← x + τ·Hᵀ(y − Hx)`` from ``x₀ = y`` (DeconvolutionLab2 'LW').

    Deep-R used 100 iterations with τ = 0.1. ``H`` is circular FFT convolution with the
    PSF (normalized to sum 1, so ``|OTF| ≤ 1`` and any ``0 < τ < 2`` converges) on the
    image padded by one PSF size per side with mirror reflection (``np.pad`` 'symmetric'),
    which keeps the periodic boundary smooth; the padding is cropped at the end.
    ``nonnegative`` projects ``x`` onto ``x ≥ 0`` after every step (two FFTs per
    iteration); without it the whole iteration runs in Fourier space. The image is
    scaled by its max and unscaled at the end (the update is linear, so only round-off
    sees the scale). Returns float32 of the input's shape.

    Parameters
    ----------
    image : (Y, X) ndarray
        The blurred intensity image, real and finite.
    psf : (Y, X) ndarray
        The PSF (e.g. :func:`defocus_psf`), finite, ≥ 0, not all zero.
    iterations : int, optional
        Number of iterations, ≥ 0 (default 100).
    step : float, optional
        Step τ, in (0, 2) (default 0.1).
    nonnegative : bool, optional
        Project onto ``x ≥ 0`` after every step (default True).

    Returns
    -------
    restored : (Y, X) ndarray of float32
        The deconvolved image, in the input's intensity scale.

    Raises
    ------
    ConfigError
        If the image or PSF is invalid, ``iterations`` is not an integer ≥ 0, or τ is
        outside (0, 2).

    References
    ----------
    .. [1] L. Landweber, "An iteration formula for Fredholm integral equations of the first
           kind", Amer. J. Math. 73, 615 (1951).
    .. [2] D. Sage et al., "DeconvolutionLab2: an open-source software for deconvolution
           microscopy", Methods 115, 28 (2017).
    .. [3] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods,
           "Implementation of RL and Landweber image deconvolution algorithms".
    """
    y = _image(image, "landweber")
    h = _psf(psf, "landweber")
    n = _iterations(iterations, "landweber")
    tau = float(step)
    if not (math.isfinite(tau) and 0 < tau < 2):
        raise ConfigError(
            f"landweber: step τ must be in (0, 2) for a PSF summing to 1, got {step!r}"
        )
    if n == 0:
        return y.astype(np.float32)
    scale = float(np.abs(y).max())
    if scale == 0:
        return np.zeros(y.shape, dtype=np.float32)
    y = y / scale

    py, px = h.shape
    shape = (
        scipy.fft.next_fast_len(y.shape[0] + 2 * py, real=True),
        scipy.fft.next_fast_len(y.shape[1] + 2 * px, real=True),
    )
    top, left = (shape[0] - y.shape[0]) // 2, (shape[1] - y.shape[1]) // 2
    pad = ((top, shape[0] - y.shape[0] - top), (left, shape[1] - y.shape[1] - left))
    y_pad = np.pad(y, pad, mode="symmetric")

    # PSF centre ((p − 1) // 2, as scipy's 'same' convolution and skimage's RL) at the origin.
    kernel = np.zeros(shape)
    kernel[:py, :px] = h
    kernel = np.roll(kernel, (-((py - 1) // 2), -((px - 1) // 2)), axis=(0, 1))
    otf = scipy.fft.rfft2(kernel, workers=-1)
    damp = 1.0 - tau * (otf.real**2 + otf.imag**2)  # (I − τHᵀH)
    y_hat = scipy.fft.rfft2(y_pad, workers=-1)
    drive = tau * np.conj(otf) * y_hat  # τHᵀy

    x_hat = y_hat.copy()
    if nonnegative:
        x = np.maximum(y_pad, 0.0)
        for _ in range(n):
            x_hat = scipy.fft.rfft2(x, workers=-1)
            x_hat *= damp
            x_hat += drive
            x = scipy.fft.irfft2(x_hat, s=shape, workers=-1)
            np.maximum(x, 0.0, out=x)
    else:
        for _ in range(n):
            x_hat *= damp
            x_hat += drive
        x = scipy.fft.irfft2(x_hat, s=shape, workers=-1)
    x = x[top : top + y.shape[0], left : left + y.shape[1]]
    return (x * scale).astype(np.float32)


__all__ = ["defocus_psf", "landweber", "richardson_lucy"]
