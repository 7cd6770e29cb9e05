"""Restore: the classic deconvolution baselines that learned refocusing is measured against.

numpy / scipy / scikit-image only (no torch).

- :func:`defocus_psf` — the fluorescence PSF at defocus ``z`` on the camera pixel, exactly
  as the simulator images a point (sub-pixel rendering + binning), centred, sum 1.
- :func:`richardson_lucy`, :func:`landweber` — the two DeconvolutionLab2 baselines of Deep-R
  (Luo et al. 2021, Methods; 100 iterations, Landweber step 0.1).
- the physics refocusing path: :class:`PsfFamily` (the optics' or a bead stack's PSFs at
  candidate defocus), :func:`estimate_defocus` (maximum likelihood |z| of a tile from its
  spectrum), :func:`physics_refocus` (Richardson–Lucy + TV with the estimated PSF, tiled,
  no border artefacts) and :func:`reblur_consistency` (does a refocused image, blurred back,
  explain the measurement?).

The image-quality measures they are scored with (SSIM, RMSE, bead FWHM, relative
sharpness) live in :mod:`focuskit.measures`. Images are (Y, X), intensities, ``x`` the
last axis (OPTICS.md); lengths in µm.
"""

from focuskit.restore._deconvolve import defocus_psf, landweber, richardson_lucy
from focuskit.restore._physics import (
    DefocusFit,
    PhysicsResult,
    PsfFamily,
    background_level,
    blend,
    estimate_defocus,
    noise_level,
    noise_power,
    physics_refocus,
    reblur,
    reblur_consistency,
    rl_tv_refocus,
    saturated,
)

__all__ = [
    "DefocusFit",
    "PhysicsResult",
    "PsfFamily",
    "background_level",
    "blend",
    "defocus_psf",
    "estimate_defocus",
    "landweber",
    "noise_level",
    "noise_power",
    "physics_refocus",
    "reblur",
    "reblur_consistency",
    "richardson_lucy",
    "rl_tv_refocus",
    "saturated",
]
