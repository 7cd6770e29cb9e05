"""Train: datasets, training loops, checkpoints and model folders (torch imported lazily)."""

from focuskit.train._blur_data import (
    CONTENTS,
    CUTOFF_RANGE,
    HELD_OUT_IMAGES,
    TRAIN_IMAGES,
    BlurDataConfig,
    BlurPatches,
    blur_patches_from_stack,
    defocus_otf,
    simulate_blur_patches,
    standardize,
    waves_per_um,
)
from focuskit.train._blur_model import BlurScorer, patch_origins
from focuskit.train._blur_train import BlurTrainConfig, BlurTrainHistory, augment_d4, fit_blur_cnn, split_patches_by_field
from focuskit.train._defocus_data import (
    DefocusExamples,
    examples_from_stacks,
    region_for,
    simulate_examples,
    split_by_field,
)
from focuskit.train._defocus_model import DefocusModel, DefocusPrediction, OODReference
from focuskit.train._fcfnn_train import TrainConfig, TrainHistory, fit_fcfnn
from focuskit.train._model_folder import builtin_models, load_model_folder, resolve_model, save_model_folder
from focuskit.train._refocus_data import (
    RefocusTiles,
    edof_image,
    focus_plane_by_ssim,
    register_stack,
    simulate_refocus_tiles,
    split_tiles_by_field,
    tile_origins,
    tiles_from_stack,
)
from focuskit.train._refocus_losses import berhu, ms_ssim
from focuskit.train._refocus_model import Refocuser, fitted_tilt
from focuskit.train._refocus_train import (
    DPMHistory,
    DPMTrainConfig,
    PairSampler,
    RefocusHistory,
    RefocusTrainConfig,
    fit_deepr,
    fit_dpm,
)

__all__ = [
    "CONTENTS",
    "CUTOFF_RANGE",
    "HELD_OUT_IMAGES",
    "TRAIN_IMAGES",
    "BlurDataConfig",
    "BlurPatches",
    "BlurScorer",
    "BlurTrainConfig",
    "BlurTrainHistory",
    "augment_d4",
    "blur_patches_from_stack",
    "defocus_otf",
    "fit_blur_cnn",
    "patch_origins",
    "simulate_blur_patches",
    "split_patches_by_field",
    "standardize",
    "waves_per_um",
    "DefocusExamples",
    "DefocusModel",
    "DefocusPrediction",
    "OODReference",
    "TrainConfig",
    "TrainHistory",
    "builtin_models",
    "examples_from_stacks",
    "fit_fcfnn",
    "load_model_folder",
    "region_for",
    "resolve_model",
    "save_model_folder",
    "simulate_examples",
    "split_by_field",
    "DPMHistory",
    "DPMTrainConfig",
    "PairSampler",
    "RefocusHistory",
    "RefocusTiles",
    "RefocusTrainConfig",
    "Refocuser",
    "berhu",
    "edof_image",
    "fit_deepr",
    "fit_dpm",
    "fitted_tilt",
    "focus_plane_by_ssim",
    "ms_ssim",
    "register_stack",
    "simulate_refocus_tiles",
    "split_tiles_by_field",
    "tile_origins",
    "tiles_from_stack",
]
