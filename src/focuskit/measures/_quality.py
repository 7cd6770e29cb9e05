"""Image-quality measures of Deep-R (Methods, "Image quality analysis", "Estimation of the
lateral FWHM values for PSF analysis"; Supplementary S1 for the row-wise sharpness).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.optimize

from focuskit._errors import ConfigError
from focuskit.measures._spatial import sobel_sharpness_map
from focuskit.measures._standardize import standardize

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _image(image: np.ndarray, name: str, what: str = "image") -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 2:
        raise ConfigError(f"{name}: {what} must be 2-D (Y, X), got shape {a.shape}")
    if np.iscomplexobj(a):
        raise ConfigError(f"{name}: {what} must be real, got a complex array")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name}: {what} contains NaN or Inf; fill or crop them first")
    return a


def _pair(image: np.ndarray, truth: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, t = _image(image, name), _image(truth, name, "truth")
    if x.shape != t.shape:
        raise ConfigError(f"{name}: image {x.shape} and truth {t.shape} must have the same shape")
    return x, t


def crop_border(image: np.ndarray, px: int = 10) -> np.ndarray:
    """The image without ``px`` pixels on each edge.

    Deep-R crops 10 px (deconvolution edge artefacts). Works on (..., Y, X).

    Parameters
    ----------
    image : ndarray
        An image (Y, X) or a batch (..., Y, X).
    px : int, optional
        Pixels to remove from each edge, ≥ 0 (default 10).

    Returns
    -------
    cropped : ndarray
        A view of ``image`` without the border.

    Raises
    ------
    ConfigError
        If ``px`` is not an integer ≥ 0 or the image is too small to crop.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Image quality
           analysis".
    """
    a = np.asarray(image)
    if isinstance(px, bool) or not isinstance(px, (int, np.integer)) or px < 0:
        raise ConfigError(f"crop_border: px must be an integer ≥ 0, got {px!r}")
    if a.ndim < 2 or min(a.shape[-2:]) <= 2 * px:
        raise ConfigError(
            f"crop_border: cannot crop {px} px from each edge of an image of shape {a.shape}"
        )
    if px == 0:
        return a
    return a[..., px:-px, px:-px]


def _standardized(image: np.ndarray) -> np.ndarray:
    """Deep-R normalizes input, output and ground truth to zero mean and unit variance
    before comparing them (float64; a flat image gives zeros)."""
    return standardize(image, axes=(-2, -1), dtype=np.float64, floor=1e-12)


def ssim_to_truth(image: np.ndarray, truth: np.ndarray, *, border_px: int = 10) -> float:
    """SSIM of ``image`` to ``truth`` after cropping ``border_px`` and standardizing both.

    ``skimage.metrics.structural_similarity`` with Wang et al.'s settings (Gaussian
    window σ = 1.5, ``use_sample_covariance=False``, K1 = 0.01, K2 = 0.03) and
    ``data_range`` = max − min of the standardized truth. Invariant to ``a·x + b``
    (a > 0) of either image.

    Parameters
    ----------
    image : (Y, X) ndarray
        The image to assess, real and finite.
    truth : (Y, X) ndarray
        The ground truth, same shape.
    border_px : int, optional
        Pixels cropped from each edge before comparing (default 10).

    Returns
    -------
    ssim : float
        Structural similarity, at most 1.

    Raises
    ------
    ConfigError
        If the images are not 2-D, real and finite, differ in shape, are too small to crop,
        or the truth is constant after cropping.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
           from error visibility to structural similarity", IEEE Trans. Image Process. 13,
           600 (2004).
    .. [2] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Image quality
           analysis".
    """
    from skimage.metrics import structural_similarity

    x, t = _pair(image, truth, "ssim_to_truth")
    x = _standardized(crop_border(x, border_px))
    t = _standardized(crop_border(t, border_px))
    data_range = float(t.max() - t.min())
    if data_range == 0:
        raise ConfigError("ssim_to_truth: the truth is constant after cropping; SSIM is undefined")
    return float(
        structural_similarity(
            x,
            t,
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def rmse_to_truth(image: np.ndarray, truth: np.ndarray, *, border_px: int = 10) -> float:
    """``sqrt(mean((x̂ − t̂)²))`` of the standardized images after cropping ``border_px``.

    In units of the truth's SD.

    Parameters
    ----------
    image : (Y, X) ndarray
        The image to assess, real and finite.
    truth : (Y, X) ndarray
        The ground truth, same shape.
    border_px : int, optional
        Pixels cropped from each edge before comparing (default 10).

    Returns
    -------
    rmse : float
        Root-mean-square difference of the standardized images.

    Raises
    ------
    ConfigError
        If the images are not 2-D, real and finite, differ in shape, or are too small to crop.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Image quality
           analysis".
    """
    x, t = _pair(image, truth, "rmse_to_truth")
    d = _standardized(crop_border(x, border_px)) - _standardized(crop_border(t, border_px))
    return float(np.sqrt(np.mean(d * d)))


def find_beads(
    image: np.ndarray, *, box_px: int = 15, threshold: float | None = None
) -> np.ndarray:
    """Centres (N, 2) = (row, col), float64, of isolated beads, for PSF analysis.

    Threshold (default Otsu) → connected components (8-connected) → centroids. Dropped:
    components within ``box_px / 2`` of the border; components closer than ``box_px`` to
    another component (neighbours would fall into the fitting box); components whose area
    is > 3× the median area, and elongated ones (major/minor axis > 1.5), which are
    clusters of touching beads or dirt — as Deep-R excludes clusters and dirt.

    Parameters
    ----------
    image : (Y, X) ndarray
        Fluorescence image of beads, real and finite.
    box_px : int, optional
        Side of the fitting box, in pixels, ≥ 3 (default 15).
    threshold : float, optional
        Intensity threshold; default Otsu's.

    Returns
    -------
    centres : (N, 2) ndarray of float64
        (row, col) centroids of the kept beads, in pixels; empty for a constant image.

    Raises
    ------
    ConfigError
        If the image is not 2-D, real and finite, or ``box_px`` is not an integer ≥ 3.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Estimation of
           the lateral FWHM values for PSF analysis".
    """
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops

    a = _image(image, "find_beads")
    if isinstance(box_px, bool) or not isinstance(box_px, (int, np.integer)) or box_px < 3:
        raise ConfigError(f"find_beads: box_px must be an integer ≥ 3, got {box_px!r}")
    if threshold is None:
        if a.max() == a.min():
            return np.empty((0, 2))
        threshold = float(threshold_otsu(a))
    regions = regionprops(label(a > threshold, connectivity=2))
    if not regions:
        return np.empty((0, 2))
    centres = np.array([r.centroid for r in regions], dtype=np.float64)
    area = np.array([r.area for r in regions], dtype=np.float64)
    major = np.array([r.axis_major_length for r in regions], dtype=np.float64)
    minor = np.array([r.axis_minor_length for r in regions], dtype=np.float64)

    half = box_px / 2
    ny, nx = a.shape
    keep = (
        (centres[:, 0] >= half)
        & (centres[:, 0] <= ny - 1 - half)
        & (centres[:, 1] >= half)
        & (centres[:, 1] <= nx - 1 - half)
    )
    keep &= area <= 3 * np.median(area)
    # A one-pixel component has minor axis 0: treat it as round.
    keep &= major <= 1.5 * np.maximum(minor, 1.0)
    if len(regions) > 1:
        d = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        keep &= d.min(axis=1) >= box_px
    return centres[keep]


def _gaussian_2d(
    coords: tuple[np.ndarray, np.ndarray],
    amp: float,
    y0: float,
    x0: float,
    sy: float,
    sx: float,
    offset: float,
) -> np.ndarray:
    yy, xx = coords
    return amp * np.exp(-0.5 * (((yy - y0) / sy) ** 2 + ((xx - x0) / sx) ** 2)) + offset


def gaussian_fwhm(
    image: np.ndarray, centres: np.ndarray, *, box_px: int = 15, pixel_size_um: float = 1.0
) -> np.ndarray:
    """Lateral FWHM (µm) of each bead: ``2√(2 ln 2)·(σx + σy)/2 · pixel``.

    A 2-D Gaussian plus offset, ``A·exp(−(x−x₀)²/2σx² − (y−y₀)²/2σy²) + B``, is fitted
    (``scipy.optimize.curve_fit``, bounded) to the ``box_px`` × ``box_px`` box centred on
    the rounded centre (Deep-R: lsqcurvefit, mean of the x and y FWHM). NaN where the box
    leaves the image, the fit fails, the centre leaves the box, or σ ≥ box_px / 2.

    Parameters
    ----------
    image : (Y, X) ndarray
        Fluorescence image of beads, real and finite.
    centres : (N, 2) array_like
        (row, col) bead centres, in pixels (e.g. from :func:`find_beads`).
    box_px : int, optional
        Side of the fitting box, in pixels, ≥ 5 (default 15).
    pixel_size_um : float, optional
        Pixel size at the sample, in µm (default 1: FWHM in pixels).

    Returns
    -------
    fwhm : (N,) ndarray of float64
        FWHM of each bead, in µm; NaN where the fit is rejected.

    Raises
    ------
    ConfigError
        If the image is invalid, ``box_px`` is not an integer ≥ 5, or ``pixel_size_um`` ≤ 0.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Estimation of
           the lateral FWHM values for PSF analysis".
    """
    a = _image(image, "gaussian_fwhm")
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if isinstance(box_px, bool) or not isinstance(box_px, (int, np.integer)) or box_px < 5:
        raise ConfigError(f"gaussian_fwhm: box_px must be an integer ≥ 5, got {box_px!r}")
    if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ConfigError(f"gaussian_fwhm: pixel_size_um must be > 0, got {pixel_size_um!r}")
    half = box_px // 2
    yy, xx = np.mgrid[-half : box_px - half, -half : box_px - half].astype(np.float64)
    coords = (yy.ravel(), xx.ravel())
    lower = [0.0, -half, -half, 0.2, 0.2, -np.inf]
    upper = [np.inf, half, half, float(box_px), float(box_px), np.inf]
    out = np.full(len(c), np.nan)
    for i, (row, col) in enumerate(c):
        if not (np.isfinite(row) and np.isfinite(col)):
            continue
        r0, c0 = round(float(row)) - half, round(float(col)) - half
        if r0 < 0 or c0 < 0 or r0 + box_px > a.shape[0] or c0 + box_px > a.shape[1]:
            continue
        box = a[r0 : r0 + box_px, c0 : c0 + box_px].ravel()
        lo, hi = float(box.min()), float(box.max())
        if hi <= lo:
            continue
        p0 = [hi - lo, row - (r0 + half), col - (c0 + half), 1.5, 1.5, lo]
        p0[1] = float(np.clip(p0[1], -half, half))
        p0[2] = float(np.clip(p0[2], -half, half))
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
                p, _ = scipy.optimize.curve_fit(
                    _gaussian_2d, coords, box, p0=p0, bounds=(lower, upper), max_nfev=2000
                )
        except (RuntimeError, ValueError):
            continue
        _, y0, x0, sy, sx, _ = p
        if max(sy, sx) >= box_px / 2 or abs(y0) >= half or abs(x0) >= half:
            continue
        out[i] = _FWHM_PER_SIGMA * (sy + sx) / 2 * pixel_size_um
    return out


def relative_sharpness(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise relative sharpness of ``image`` to ``reference`` (Deep-R eq. 5–8).

    ``S = sqrt(Ix² + Iy²)`` (Sobel, :func:`focuskit.measures.sobel_sharpness_map`);
    for row ``i`` the no-intercept OLS slope and its standard error

        β_i = S(x)_i·S(y)_iᵀ / S(y)_i·S(y)_iᵀ
        Std(β_i) = sqrt(RSS_i / ((N − 1)·S(y)_i·S(y)_iᵀ)),  RSS_i = Σ (S(x)_i − β_i·S(y)_i)²

    with ``N`` the number of pixels in a row (the regression's sample size; the paper's
    text calls it the number of rows). Rows where the reference has no edges give NaN.
    Returns ``(β, std)``, float64, one value per row.

    Parameters
    ----------
    image : (Y, X) ndarray
        The image ``x`` to assess, real and finite.
    reference : (Y, X) ndarray
        The reference ``y`` (e.g. :func:`mip_reference`), same shape.

    Returns
    -------
    beta : (Y,) ndarray of float64
        Relative sharpness β_i of each row; NaN where the reference row has no edges.
    std : (Y,) ndarray of float64
        Standard error Std(β_i) of each row.

    Raises
    ------
    ConfigError
        If the images are invalid, differ in shape, or rows have fewer than 2 pixels.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), eq. 5–8 and
           Supplementary S1.
    """
    x, y = _image(image, "relative_sharpness"), _image(reference, "relative_sharpness", "reference")
    if x.shape != y.shape:
        raise ConfigError(
            f"relative_sharpness: image {x.shape} and reference {y.shape} must have the same shape"
        )
    if x.shape[1] < 2:
        raise ConfigError("relative_sharpness: rows need at least 2 pixels")
    sx = np.asarray(sobel_sharpness_map(x), dtype=np.float64)
    sy = np.asarray(sobel_sharpness_map(y), dtype=np.float64)
    syy = np.einsum("ij,ij->i", sy, sy)
    sxy = np.einsum("ij,ij->i", sx, sy)
    ok = syy > 0
    beta = np.full(x.shape[0], np.nan)
    beta[ok] = sxy[ok] / syy[ok]
    resid = sx - beta[:, None] * sy
    rss = np.einsum("ij,ij->i", resid, resid)
    std = np.full(x.shape[0], np.nan)
    std[ok] = np.sqrt(rss[ok] / ((x.shape[1] - 1) * syy[ok]))
    return beta, std


def mip_reference(planes: np.ndarray) -> np.ndarray:
    """Maximum-intensity projection along z of (Z, Y, X) planes.

    Deep-R's reference for tilted samples (10 planes over z = 0…1.8 µm).

    Parameters
    ----------
    planes : (Z, Y, X) ndarray
        Non-empty stack of planes, finite.

    Returns
    -------
    mip : (Y, X) ndarray
        The maximum over z, the planes' dtype.

    Raises
    ------
    ConfigError
        If ``planes`` is not a non-empty 3-D stack or holds NaN/Inf.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Supplementary S1.
    """
    p = np.asarray(planes)
    if p.ndim != 3 or p.shape[0] == 0:
        raise ConfigError(
            f"mip_reference: planes must be a non-empty (Z, Y, X) stack, got shape {p.shape}"
        )
    if np.issubdtype(p.dtype, np.floating) and not np.all(np.isfinite(p)):
        raise ConfigError("mip_reference: planes contain NaN or Inf; fill or crop them first")
    return p.max(axis=0)


__all__ = [
    "crop_border",
    "find_beads",
    "gaussian_fwhm",
    "mip_reference",
    "relative_sharpness",
    "rmse_to_truth",
    "ssim_to_truth",
]
