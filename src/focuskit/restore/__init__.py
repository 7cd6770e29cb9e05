"""Restore: classic deconvolution baselines and image-quality measures.

numpy / scipy / scikit-image only (no torch).

What Deep-R (Luo et al. 2021) compares its refocusing network against, and how it scores
images:

- :func:`defocus_psf` — the fluorescence PSF at defocus ``z`` on the camera pixel, exactly
  as the simulator images a point (sub-pixel rendering + binning), centred, sum 1.
- :func:`richardson_lucy`, :func:`landweber` — the two DeconvolutionLab2 baselines
  (100 iterations; Landweber step 0.1).
- :func:`ssim_to_truth`, :func:`rmse_to_truth` — on standardized images with a 10-pixel
  border cropped (deconvolution edge artefacts), as in the paper.
- :func:`find_beads`, :func:`gaussian_fwhm` — lateral FWHM of isolated beads from 2-D
  Gaussian fits (clusters and dirt excluded).
- :func:`relative_sharpness`, :func:`mip_reference` — row-wise Sobel sharpness of an image
  relative to a reference (eq. 5–8), the MIP reference used for tilted samples.

Images are (Y, X), intensities, ``x`` the last axis (OPTICS.md); lengths in µm.
"""

from focuskit.restore._deconvolve import defocus_psf, landweber, richardson_lucy
from focuskit.restore._quality import (
    crop_border,
    find_beads,
    gaussian_fwhm,
    mip_reference,
    relative_sharpness,
    rmse_to_truth,
    ssim_to_truth,
    standardized,
)

__all__ = [
    "crop_border",
    "defocus_psf",
    "find_beads",
    "gaussian_fwhm",
    "landweber",
    "mip_reference",
    "relative_sharpness",
    "richardson_lucy",
    "rmse_to_truth",
    "ssim_to_truth",
    "standardized",
]
