"""Restore: the classic deconvolution baselines that learned refocusing is measured against.

numpy / scipy / scikit-image only (no torch).

- :func:`defocus_psf` — the fluorescence PSF at defocus ``z`` on the camera pixel, exactly
  as the simulator images a point (sub-pixel rendering + binning), centred, sum 1.
- :func:`richardson_lucy`, :func:`landweber` — the two DeconvolutionLab2 baselines of Deep-R
  (Luo et al. 2021, Methods; 100 iterations, Landweber step 0.1).

The image-quality measures they are scored with (SSIM, RMSE, bead FWHM, relative
sharpness) live in :mod:`focuskit.measures`. Images are (Y, X), intensities, ``x`` the
last axis (OPTICS.md); lengths in µm.
"""

from focuskit.restore._deconvolve import defocus_psf, landweber, richardson_lucy

__all__ = ["defocus_psf", "landweber", "richardson_lucy"]
