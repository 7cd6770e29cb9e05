"""Train: datasets, training loops, checkpoints and model folders (torch imported lazily)."""

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

__all__ = [
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
]
