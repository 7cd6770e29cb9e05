"""Focus measures: how sharp is an image (or each plane of a stack)?

Every measure is a plain function ``f(image, **params)``: a (Y, X) image gives a
``float``, a (Z, Y, X) stack gives a float64 array of shape (Z,) (computed over the
stack with array operations, a few planes at a time so memory stays bounded). Integer
and bool input is accepted; NaN/Inf raises ConfigError. Images are (Y, X) with ``x`` the
last axis (OPTICS.md).

Every scalar measure is normalized per pixel (a mean over the terms its formula sums), so
the image size does not change its scale. Under ``I → c·I`` (``c > 0``) each scales as
``c**k``:

=====================  ====  =====================================================
registry name          k     function
=====================  ====  =====================================================
vollath4               2     :func:`vollath_f4` (Deep-R eq. 9)
vollath5               2     :func:`vollath_f5` (Deep-R eq. 10)
std                    1     :func:`std` (Deep-R eq. 11)
nvar                   1     :func:`normalized_variance` (Deep-R eq. 12)
brenner                2     :func:`brenner`
tenengrad              2     :func:`tenengrad` (threshold 0)
lapv                   2     :func:`laplacian_variance`
sml                    1     :func:`sum_modified_laplacian` (threshold 0)
ws                     1     :func:`wavelet_sum`
ewc                    2     :func:`wavelet_energy`
hpf                    2     :func:`high_pass_filter`
spectral-highband      0     :func:`spectral_highband` (Pinkard's ground truth)
spectral-midband       0     :func:`spectral_midband` (needs pixel size, NA, λ)
=====================  ====  =====================================================

A constant image scores 0, except ``spectral-highband`` (ln 1e-20 ≈ −46.05, its floor).
``nvar`` and the two spectral measures divide by the mean (mean²) and need an intensity
image (mean > 0). ``hpf`` is DeepFocus' code: away from two border columns it sums
Brenner's differences. Vollath, Brenner and HPF look along ``x`` only. The spectral
measures use the periodic component of each plane (Moisan 2011) by default.
For every measure a sharper image scores higher (``FocusMeasure.maximize`` is True for
all; :func:`score` negates any that is not, so its output is always larger = sharper).
:func:`sobel_sharpness_map` (Deep-R eq. 5) returns a map, not a score, and is not in the
registry.

:data:`DEFAULT_MEASURE` (``spectral-midband``) is what ``find_focus`` and the classic
searches use where the optics are known, :data:`DEFAULT_MEASURE_WITHOUT_OPTICS`
(``tenengrad``) otherwise; :func:`default_measure` picks between them. ``score(...,
saturation=)`` excludes clipped pixels and the kernel positions that touch them from the
local measures (off by default; see :func:`score`).

Image-quality measures against a ground truth (Deep-R's, Luo et al. Methods "Image
quality analysis"): :func:`ssim_to_truth`, :func:`rmse_to_truth` (standardized images,
10-pixel border cropped), :func:`find_beads` + :func:`gaussian_fwhm` (lateral FWHM of
isolated beads), :func:`relative_sharpness` + :func:`mip_reference` (row-wise Sobel
sharpness, eq. 5–8), :func:`standardize` (zero mean, unit SD).
"""

from focuskit.measures._common import chunk_budget
from focuskit.measures._quality import (
    crop_border,
    find_beads,
    gaussian_fwhm,
    mip_reference,
    relative_sharpness,
    rmse_to_truth,
    ssim_to_truth,
)
from focuskit.measures._registry import (
    DEFAULT_MEASURE,
    DEFAULT_MEASURE_WITHOUT_OPTICS,
    MEASURES,
    FocusMeasure,
    default_measure,
    get_measure,
    score,
)
from focuskit.measures._saturation import Saturation, saturation_level
from focuskit.measures._spatial import (
    brenner,
    high_pass_filter,
    laplacian_variance,
    normalized_variance,
    sobel_sharpness_map,
    std,
    sum_modified_laplacian,
    tenengrad,
    vollath_f4,
    vollath_f5,
)
from focuskit.measures._spectral import LOG_FLOOR, spectral_highband, spectral_midband
from focuskit.measures._standardize import standardize
from focuskit.measures._wavelet import wavelet_energy, wavelet_sum

__all__ = [
    "DEFAULT_MEASURE",
    "DEFAULT_MEASURE_WITHOUT_OPTICS",
    "LOG_FLOOR",
    "MEASURES",
    "FocusMeasure",
    "Saturation",
    "brenner",
    "chunk_budget",
    "crop_border",
    "default_measure",
    "find_beads",
    "gaussian_fwhm",
    "get_measure",
    "high_pass_filter",
    "laplacian_variance",
    "mip_reference",
    "normalized_variance",
    "relative_sharpness",
    "rmse_to_truth",
    "saturation_level",
    "score",
    "sobel_sharpness_map",
    "spectral_highband",
    "spectral_midband",
    "ssim_to_truth",
    "standardize",
    "std",
    "sum_modified_laplacian",
    "tenengrad",
    "vollath_f4",
    "vollath_f5",
    "wavelet_energy",
    "wavelet_sum",
]
