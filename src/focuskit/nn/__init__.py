"""Shared torch plumbing of the three systems: one training loop, checkpoints, model
folders and the model base class, augmentation, the validation hold-out, tiling.

Importing this package does not import torch; its functions do when they need it.
"""

from focuskit.nn._data import (
    augment_d4,
    blend_ramp,
    patch_origins,
    split_fields,
    split_one_field,
    tile_starts,
)
from focuskit.nn._folder import (
    BUILTIN_ALIASES,
    BUILTIN_DIR,
    builtin_models,
    check_model_output,
    read_model_folder,
    resolve_model,
    write_model_folder,
)
from focuskit.nn._loop import (
    History,
    Progress,
    Schedule,
    cosine_learning_rate,
    load_training_state,
    numpy_to_state,
    run_training,
    save_training_state,
    state_to_numpy,
    torch_threads,
)
from focuskit.nn._model import TrainedModel, group_tensors

__all__ = [
    "BUILTIN_ALIASES",
    "BUILTIN_DIR",
    "History",
    "Progress",
    "Schedule",
    "TrainedModel",
    "augment_d4",
    "blend_ramp",
    "builtin_models",
    "check_model_output",
    "cosine_learning_rate",
    "group_tensors",
    "load_training_state",
    "numpy_to_state",
    "patch_origins",
    "read_model_folder",
    "resolve_model",
    "run_training",
    "save_training_state",
    "split_fields",
    "split_one_field",
    "state_to_numpy",
    "tile_starts",
    "torch_threads",
    "write_model_folder",
]
