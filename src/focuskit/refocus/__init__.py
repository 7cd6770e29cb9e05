"""Offline refocusing (Deep-R; Luo et al., ACS Photonics 2021): a U-Net GAN turns one
defocused image into an in-focus one, and a decoder on its encoder maps per-pixel defocus.

- :class:`Refocuser` — the trained model users call: ``refocus(image)``,
  ``defocus_map(image)``; ``focuskit.load_model("builtin:refocus-40x-fluor")``.
- :func:`refocus_lazy` — the same over a slide larger than memory, block by block (Dask).
- :func:`train` — the whole recipe: registered stacks (yours or simulated), tiles with
  their in-focus plane, hold-out, GAN and decoder training, the model object.
- the parts: :func:`tiles_from_stack` / :func:`simulate_refocus_tiles` (pairs),
  :class:`DeepRGenerator` / :class:`DeepRDiscriminator` / :class:`DPMDecoder` (networks),
  :func:`berhu` / :func:`ms_ssim` (losses), :func:`fit_deepr` / :func:`fit_dpm` (training
  loops), :mod:`focuskit.refocus.analyses` (the paper's figures).

Importing this package does not import torch; the networks, losses and training do.
"""

from focuskit._lazy import lazy_exports
from focuskit.refocus._checked import (
    METHODS,
    CheckedRefocus,
    psf_family_for,
    refocus_checked,
)
from focuskit.refocus._chunked import refocus_lazy, worker_refocuser
from focuskit.refocus._config import LEVELS, DeepRConfig, DiscriminatorConfig
from focuskit.refocus._data import (
    BRIGHTFIELD_SAMPLES,
    FLUORESCENCE_SAMPLES,
    RefocusTiles,
    field_sample,
    simulate_refocus_tiles,
    split_tiles_by_field,
    tile_origins,
    tiles_from_stack,
)
from focuskit.refocus._losses import berhu, ms_ssim, ms_ssim_window
from focuskit.refocus._model import Refocuser, check_image
from focuskit.refocus._plots import loss_curve_plot
from focuskit.refocus._recipe import DEFAULT_MODEL, train
from focuskit.refocus._train import (
    SIZE_MULTIPLE,
    DPMHistory,
    DPMTrainConfig,
    PairSampler,
    RefocusHistory,
    RefocusTrainConfig,
    fit_deepr,
    fit_dpm,
)

__all__ = [  # noqa: RUF022 - the lazily imported networks first
    "DPMDecoder",
    "DeepRDiscriminator",
    "DeepRGenerator",
    "BRIGHTFIELD_SAMPLES",
    "METHODS",
    "CheckedRefocus",
    "psf_family_for",
    "refocus_checked",
    "DEFAULT_MODEL",
    "FLUORESCENCE_SAMPLES",
    "LEVELS",
    "SIZE_MULTIPLE",
    "DPMHistory",
    "DPMTrainConfig",
    "DeepRConfig",
    "DiscriminatorConfig",
    "PairSampler",
    "RefocusHistory",
    "RefocusTiles",
    "RefocusTrainConfig",
    "Refocuser",
    "berhu",
    "check_image",
    "field_sample",
    "fit_deepr",
    "fit_dpm",
    "loss_curve_plot",
    "ms_ssim",
    "ms_ssim_window",
    "simulate_refocus_tiles",
    "split_tiles_by_field",
    "tile_origins",
    "refocus_lazy",
    "tiles_from_stack",
    "train",
    "worker_refocuser",
]
# The networks need torch: imported on first use.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {"DPMDecoder": "._network", "DeepRDiscriminator": "._network", "DeepRGenerator": "._network"},
    __all__,
)
