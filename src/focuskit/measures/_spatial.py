"""Spatial-domain focus measures: autocorrelation, statistics, gradients, Laplacians.

Axes: an image is (Y, X) and ``x`` is the last axis (OPTICS.md). Every measure is a
per-pixel average (a mean over the terms it sums), so the image size does not change
its scale; the docstrings give the sum each one averages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focuskit.measures._common import (
    Score,
    as_stack,
    centered,
    check_int,
    check_nonnegative,
    iter_chunks,
    positive_mean,
    reduce_planes,
    sum_yx,
    sumsq_yx,
)

# Measures built on ``centered`` convert each chunk to float64 deviations themselves: the
# chunk need not be a float64 copy first, but is sized for float64.
_FLOAT64_INSIDE = {"allow_float32": True, "work_itemsize": 8}


# --- Vollath autocorrelation ---------------------------------------------------------------


def _lag_covariance(mu: np.ndarray, d: np.ndarray, lag: int) -> np.ndarray:
    """Per plane ``<I(x)·I(x+lag)> − μ²`` (mean over the ``Y·(X−lag)`` pairs), with ``d = I − μ``.

    Computed as ``μ·(<d(x)> + <d(x+lag)>) + <d(x)·d(x+lag)>``: algebraically the same,
    without the cancellation of two large numbers on bright, low-contrast images.
    """
    ny, nx = d.shape[-2], d.shape[-1]
    pairs = ny * (nx - lag)
    col = d.sum(axis=-2, dtype=np.float64)  # (n, X)
    first = col[:, : nx - lag].sum(axis=-1) / pairs
    second = col[:, lag:].sum(axis=-1) / pairs
    prod = sum_yx(d[..., : nx - lag] * d[..., lag:]) / pairs
    return mu * (first + second) + prod


def _vollath4_chunk(x: np.ndarray, start: int) -> np.ndarray:
    mu, d = centered(x)
    return _lag_covariance(mu, d, 1) - _lag_covariance(mu, d, 2)


def _vollath5_chunk(x: np.ndarray, start: int) -> np.ndarray:
    mu, d = centered(x)
    return _lag_covariance(mu, d, 1)


def vollath_f4(image: Any) -> Score:
    """Vollath's F4 autocorrelation, per pixel pair (Deep-R eq. 9; Vollath 1987/1988).

    ``F4 = <I(x, y)·I(x+1, y)> − <I(x, y)·I(x+2, y)>``

    with ``<·>`` the mean over the pixel pairs each sum of eq. (9) runs over
    (``Y·(X−1)`` and ``Y·(X−2)`` pairs), and ``x`` the last axis (image columns), the
    direction Micro-Manager's OughtaFocus uses (Deep-R measured its autofocus speed with
    OughtaFocus). Eq. (9) is the difference of the two *sums*; dividing each by its own
    pair count instead of one ``M·N`` makes the value independent of the image size and
    makes a constant image score 0 (eq. (9)/(M·N) would give ``c²/X``).

    It is the difference of the image autocorrelation at lags 1 and 2, so it is
    ≈ 0 for white noise (uncorrelated pixels) and large for structure a few pixels wide.

    Brightness: ``I → c·I`` scales F4 by ``c²`` (k = 2). Constant image → 0.
    Needs X ≥ 3.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers (bool, integer or float).

    Returns
    -------
    score : float or (Z,) ndarray of float64
        F4 of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is not 2-D/3-D real numbers, holds NaN/Inf, or has X < 3.

    References
    ----------
    .. [1] D. Vollath, "Automatic focusing by correlative methods", J. Microsc. 147, 279
           (1987).
    .. [2] D. Vollath, "The influence of the scene parameters and of noise on the behaviour
           of automatic focusing algorithms", J. Microsc. 151, 133 (1988).
    .. [3] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), eq. 9.
    """
    return reduce_planes(image, "vollath_f4", _vollath4_chunk, min_yx=(1, 3), **_FLOAT64_INSIDE)


def vollath_f5(image: Any) -> Score:
    """Vollath's F5, per pixel pair (Deep-R eq. 10; Vollath 1988).

    ``F5 = <I(x, y)·I(x+1, y)> − μ²``

    with ``<·>`` the mean over the ``Y·(X−1)`` horizontally adjacent pairs and ``μ`` the
    image mean: the autocovariance at lag 1 along ``x``. Eq. (10) as printed subtracts
    ``M·N·μ²`` from the pair *sum*; Micro-Manager's OughtaFocus (which Deep-R ran)
    subtracts ``(pairs)·μ²``. We follow OughtaFocus and divide by the pair count: this is
    OughtaFocus' value / ``(Y·(X−1))``, and a constant image scores exactly 0 (the printed
    form differs by ``−μ²/X``).

    Brightness: k = 2. Constant image → 0. Needs X ≥ 2.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        F5 of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is not 2-D/3-D real numbers, holds NaN/Inf, or has X < 2.

    References
    ----------
    .. [1] D. Vollath, "The influence of the scene parameters and of noise on the behaviour
           of automatic focusing algorithms", J. Microsc. 151, 133 (1988).
    .. [2] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), eq. 10.
    """
    return reduce_planes(image, "vollath_f5", _vollath5_chunk, min_yx=(1, 2), **_FLOAT64_INSIDE)


# --- Statistics ----------------------------------------------------------------------------


def _variance(d: np.ndarray) -> np.ndarray:
    """Population variance of each plane from its deviations (squares ``d`` in place)."""
    return sumsq_yx(d) / (d.shape[-2] * d.shape[-1])


def std(image: Any) -> Score:
    """Standard deviation of the intensity (Deep-R eq. 11, ``STD``).

    ``F_STD = sqrt( 1/(M·N) · Σ (I − μ)² )`` — the population standard deviation.

    Note: Micro-Manager's OughtaFocus "StdDev" (what Deep-R timed) divides this by the
    mean (``σ/μ``, brightness-invariant); the printed eq. (11) is garbled in our copy. We
    keep the plain standard deviation; divide by the mean yourself for OughtaFocus' form.

    Brightness: k = 1. Constant image → 0.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Standard deviation of the image, or of each plane of a stack (intensity units).

    Raises
    ------
    ConfigError
        If the image is not 2-D/3-D real numbers or holds NaN/Inf.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), eq. 11.
    """
    return reduce_planes(
        image, "std", lambda x, start: np.sqrt(_variance(centered(x)[1])), **_FLOAT64_INSIDE
    )


def normalized_variance(image: Any) -> Score:
    """Normalized variance ``F_NVAR = 1/(M·N·μ) · Σ (I − μ)²`` (Deep-R eq. 12; Groen et al. 1985).

    Variance divided by the mean intensity (not by the mean², so it is *not*
    brightness-invariant): ``I → c·I`` scales it by ``c`` (k = 1). Needs a positive
    mean (an intensity image; ConfigError otherwise). Constant image → 0 (also all-zero).

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers, mean > 0.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Normalized variance of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is invalid, holds NaN/Inf, or a plane (not all zero) has a mean ≤ 0.

    References
    ----------
    .. [1] F. C. A. Groen, I. T. Young and G. Ligthart, "A comparison of different focus
           functions for use in autofocus algorithms", Cytometry 6, 81 (1985).
    .. [2] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), eq. 12.
    """

    def chunk(x: np.ndarray, start: int) -> np.ndarray:
        mu, d = centered(x)
        zero = positive_mean("normalized_variance", mu, d, start)
        var = _variance(d)
        return np.where(zero, 0.0, var / np.where(zero, 1.0, mu))

    return reduce_planes(image, "normalized_variance", chunk, **_FLOAT64_INSIDE)


# --- Derivatives ---------------------------------------------------------------------------


def _brenner_chunk(x: np.ndarray, start: int) -> np.ndarray:
    d = x[..., 2:] - x[..., :-2]
    return sumsq_yx(d) / d[0].size


def brenner(image: Any) -> Score:
    """Brenner gradient (Brenner et al., J. Histochem. Cytochem. 24:100, 1976).

    ``F = <(I(x+2, y) − I(x, y))²>`` — the mean over the ``Y·(X−2)`` differences two
    pixels apart along ``x`` (the last axis), without Brenner's optional threshold.

    Brightness: k = 2. Constant image → 0. Needs X ≥ 3.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Brenner gradient of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is not 2-D/3-D real numbers, holds NaN/Inf, or has X < 3.

    References
    ----------
    .. [1] J. F. Brenner, B. S. Dew, J. B. Horton, T. King, P. W. Neurath and W. D. Selles,
           "An automated microscope for cytologic research: a preliminary evaluation",
           J. Histochem. Cytochem. 24, 100 (1976).
    """
    return reduce_planes(image, "brenner", _brenner_chunk, min_yx=(1, 3), allow_float32=True)


def _sobel_xy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel derivatives on the interior (valid region), normalized to unit gain on a ramp."""
    gx = x[..., :, 2:] - x[..., :, :-2]
    sx = gx[..., :-2, :] + 2 * gx[..., 1:-1, :] + gx[..., 2:, :]
    del gx
    gy = x[..., 2:, :] - x[..., :-2, :]
    sy = gy[..., :, :-2] + 2 * gy[..., :, 1:-1] + gy[..., :, 2:]
    sx *= 0.125
    sy *= 0.125
    return sx, sy


def tenengrad(image: Any, *, threshold: float = 0.0) -> Score:
    """Tenengrad: mean squared Sobel gradient (Tenenbaum 1970; Krotkov 1988; DeepFocus [13]).

    ``F = <G²·[G ≥ T]>`` with ``G² = Gx² + Gy²``, ``Gx``/``Gy`` the 3×3 Sobel responses
    normalized by 1/8 (so ``G`` is the gradient in intensity per pixel: a ramp of slope
    ``a`` gives ``G = a``; the unnormalized Sobel sum is 64× larger), averaged over the
    ``(Y−2)·(X−2)`` interior pixels. Pixels whose gradient magnitude is below
    ``threshold`` (intensity per pixel) contribute 0 (Krotkov's thresholded form);
    the default 0 keeps all.

    Brightness: k = 2 with ``threshold = 0``; a fixed non-zero threshold breaks the power
    law (scale the threshold by ``c`` too). Constant image → 0. Needs 3×3.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.
    threshold : float, optional
        Gradient magnitude ``T`` below which a pixel contributes 0, in intensity per pixel,
        ≥ 0 (default 0).

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Tenengrad of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is invalid, holds NaN/Inf, is smaller than 3×3, or ``threshold`` < 0.

    References
    ----------
    .. [1] J. M. Tenenbaum, "Accommodation in computer vision", PhD thesis, Stanford
           University (1970).
    .. [2] E. Krotkov, "Focusing", Int. J. Comput. Vis. 1, 223 (1988).
    .. [3] A. Shajkofci and M. Liebling, "DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function", ISBI 2020,
           arXiv:2001.00667 (2020), Table 1 and ref. [13].
    """
    t = check_nonnegative("tenengrad", "threshold", threshold)

    def chunk(x: np.ndarray, start: int) -> np.ndarray:
        sx, sy = _sobel_xy(x)
        np.square(sx, out=sx)
        np.square(sy, out=sy)
        sx += sy
        del sy
        if t > 0:
            sx[sx < t * t] = 0
        return sum_yx(sx) / sx[0].size

    return reduce_planes(image, "tenengrad", chunk, min_yx=(3, 3), allow_float32=True)


def _laplacian(x: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian on the interior (valid region)."""
    c = x[..., 1:-1, 1:-1]
    lap = x[..., 1:-1, :-2] + x[..., 1:-1, 2:]
    lap += x[..., :-2, 1:-1]
    lap += x[..., 2:, 1:-1]
    lap -= 4 * c
    return lap


def laplacian_variance(image: Any) -> Score:
    """Variance of the Laplacian, LAPV (Pech-Pacheco et al., ICPR 2000; DeepFocus Table 1).

    ``F = Var(∇²I)`` over the ``(Y−2)·(X−2)`` interior pixels, with the 4-neighbour
    Laplacian ``I(x−1,y) + I(x+1,y) + I(x,y−1) + I(x,y+1) − 4·I(x,y)`` (the kernel of
    ``skimage.filters.laplace`` that the DeepFocus code uses).

    Brightness: k = 2. Constant image → 0. Needs 3×3.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        Variance of the Laplacian of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is invalid, holds NaN/Inf, or is smaller than 3×3.

    References
    ----------
    .. [1] J. L. Pech-Pacheco, G. Cristóbal, J. Chamorro-Martínez and J. Fernández-Valdivia,
           "Diatom autofocusing in brightfield microscopy: a comparative study", Proc. ICPR
           2000, vol. 3, 314.
    .. [2] A. Shajkofci and M. Liebling, "DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function", ISBI 2020,
           arXiv:2001.00667 (2020), Table 1.
    """

    def chunk(x: np.ndarray, start: int) -> np.ndarray:
        lap = _laplacian(x)
        n = lap[0].size
        m = sum_yx(lap) / n
        return np.maximum(sumsq_yx(lap) / n - m * m, 0.0)

    return reduce_planes(image, "laplacian_variance", chunk, min_yx=(3, 3), allow_float32=True)


def sum_modified_laplacian(image: Any, *, step: int = 1, threshold: float = 0.0) -> Score:
    """Sum-modified Laplacian, SML (Nayar & Nakagawa, IEEE TPAMI 16:824, 1994; DeepFocus Table 1).

    ``ML(x, y) = |2I(x,y) − I(x−s,y) − I(x+s,y)| + |2I(x,y) − I(x,y−s) − I(x,y+s)|``

    ``F = <ML·[ML ≥ T]>`` over the ``(Y−2s)·(X−2s)`` interior pixels, ``s = step``
    (pixels), ``T = threshold`` (intensity units; default 0 keeps all). Nayar's SML is
    the sum over a window; this is its per-pixel mean over the whole image.

    Brightness: k = 1 with ``threshold = 0``. Constant image → 0. Needs (2s+1)×(2s+1).

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.
    step : int, optional
        Step ``s`` of the second differences, in pixels, ≥ 1 (default 1).
    threshold : float, optional
        ``T``, in intensity units, ≥ 0 (default 0).

    Returns
    -------
    score : float or (Z,) ndarray of float64
        SML of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is invalid, holds NaN/Inf, is smaller than (2s+1)×(2s+1), or ``step``
        or ``threshold`` is out of range.

    References
    ----------
    .. [1] S. K. Nayar and Y. Nakagawa, "Shape from focus", IEEE Trans. Pattern Anal. Mach.
           Intell. 16, 824 (1994).
    .. [2] A. Shajkofci and M. Liebling, "DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function", ISBI 2020,
           arXiv:2001.00667 (2020), Table 1.
    """
    s = check_int("sum_modified_laplacian", "step", step, 1)
    t = check_nonnegative("sum_modified_laplacian", "threshold", threshold)

    def chunk(x: np.ndarray, start: int) -> np.ndarray:
        c2 = 2 * x[..., s:-s, s:-s]
        mx = c2 - x[..., s:-s, : -2 * s]
        mx -= x[..., s:-s, 2 * s :]
        np.abs(mx, out=mx)
        my = c2
        my -= x[..., : -2 * s, s:-s]
        my -= x[..., 2 * s :, s:-s]
        np.abs(my, out=my)
        mx += my
        del my, c2
        if t > 0:
            mx[mx < t] = 0
        return sum_yx(mx) / mx[0].size

    return reduce_planes(
        image, "sum_modified_laplacian", chunk, min_yx=(2 * s + 1, 2 * s + 1), allow_float32=True
    )


def _hpf_chunk(x: np.ndarray, start: int) -> np.ndarray:
    inner = x[..., 2:] - x[..., :-2]
    total = sumsq_yx(inner)
    del inner
    # scipy.ndimage 'reflect' borders: I(−1) = I(0), I(X) = I(X−1)
    left = x[..., 1] - x[..., 0]
    right = x[..., -1] - x[..., -2]
    total += np.square(left, dtype=np.float64).sum(axis=-1)
    total += np.square(right, dtype=np.float64).sum(axis=-1)
    return total / x[0].size


def high_pass_filter(image: Any) -> Score:
    """HPF of DeepFocus (Shajkofci & Liebling, ISBI 2020, Table 1), as in the authors' code.

    The DeepFocus code (``get_hpf_image(method='hpf')``) convolves the image with the
    high-pass kernel ``[1, 0, −1]`` along ``x`` (``scipy.ndimage.convolve1d``, last
    axis, ``mode='reflect'``), squares and sums:

    ``F = <(I(x+1, y) − I(x−1, y))²>`` over all ``Y·X`` pixels, with reflected borders
    (``I(−1) = I(0)``, ``I(X) = I(X−1)``).

    Away from the two border columns these are exactly Brenner's differences (two
    pixels apart), so HPF ≈ Brenner; they differ only by the border terms and the
    normalization (``Y·X`` here, ``Y·(X−2)`` for Brenner). Kept separately to reproduce
    DeepFocus' Table 1. Brightness: k = 2. Constant image → 0. Needs X ≥ 2.

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.

    Returns
    -------
    score : float or (Z,) ndarray of float64
        HPF of the image, or of each plane of a stack.

    Raises
    ------
    ConfigError
        If the image is not 2-D/3-D real numbers, holds NaN/Inf, or has X < 2.

    References
    ----------
    .. [1] A. Shajkofci and M. Liebling, "DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function", ISBI 2020,
           arXiv:2001.00667 (2020), Table 1; code idiap/deepfocus,
           ``calibration_fit.get_hpf_image``.
    """
    return reduce_planes(image, "high_pass_filter", _hpf_chunk, min_yx=(1, 2), allow_float32=True)


# --- Sharpness map -------------------------------------------------------------------------


def sobel_sharpness_map(image: Any) -> np.ndarray:
    """Sobel sharpness map ``S(I) = sqrt(Ix² + Iy²)`` (Deep-R eq. 5) — a map, not a score.

    ``Ix``, ``Iy`` are the 3×3 Sobel derivatives along ``x`` (last axis) and ``y``,
    normalized by 1/8 so that a linear ramp of slope ``a`` (intensity per pixel) gives
    ``S = a`` in the interior (MATLAB's unnormalized Sobel is 8× larger). Borders use
    reflected edges (``scipy.ndimage`` ``'reflect'``), so the outermost ring of pixels
    sees half the slope of a ramp.

    Returns an array of the input's shape ((Y, X) or (Z, Y, X); each plane separately,
    no smoothing across z): float32 for float32 / ≤16-bit integer input, else float64.
    Brightness: k = 1 (the map scales with ``c``).

    Parameters
    ----------
    image : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.

    Returns
    -------
    sharpness : ndarray of float32 or float64
        The map, the input's shape, in intensity per pixel.

    Raises
    ------
    ConfigError
        If the image is not 2-D/3-D real numbers or holds NaN/Inf.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), eq. 5.
    """
    name = "sobel_sharpness_map"
    stack, single = as_stack(image, name)
    out: np.ndarray | None = None
    for start, x in iter_chunks(stack, name, min_yx=(1, 1), allow_float32=True):
        if out is None:
            out = np.empty(tuple(int(s) for s in stack.shape), dtype=x.dtype)
        # np.pad 'symmetric' repeats the edge pixel: scipy.ndimage's 'reflect'
        sx, sy = _sobel_xy(np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="symmetric"))
        np.square(sx, out=sx)
        np.square(sy, out=sy)
        sx += sy
        np.sqrt(sx, out=out[start : start + x.shape[0]])
    if out is None:  # an empty stack
        out = np.empty(tuple(int(s) for s in stack.shape), dtype=np.float64)
    return out[0] if single else out
