"""Single-shot defocus prediction (FCFNN; Pinkard et al., Optica 2019): one image under an
off-axis LED → the Fourier-magnitude features inside its two pupil discs → a small fully
connected network → how far out of focus, in µm.

- :class:`DefocusModel` — the trained model users call: ``predict(image)`` (z, σ, in range),
  ``autofocus(scope)``; ``focuskit.load_model("builtin:singleshot-20x-led")``.
- :func:`train` — the whole recipe: data from your focal stacks or simulated fields,
  validation hold-out, training, the model object.
- the parts: :func:`fourier_features` / :class:`FourierRegion` (features), :class:`FCFNN`
  (network), :func:`simulate_examples` / :func:`examples_from_stacks` (data),
  :func:`fit_fcfnn` (training loop), :func:`singleshot_search` (the autofocus loop),
  :mod:`focuskit.singleshot.analyses` (the paper's figures).

Importing this package does not import torch; the network and training do.
"""

from focuskit._lazy import lazy_exports
from focuskit.singleshot._data import (
    DefocusExamples,
    FieldSpec,
    Randomization,
    draw_fields,
    examples_from_folder,
    examples_from_stacks,
    region_for,
    restrength,
    simulate_examples,
    split_by_field,
    stack_pairs,
)
from focuskit.singleshot._features import FourierRegion, fourier_features, split_tiles
from focuskit.singleshot._model import DefocusModel, DefocusPrediction, OODReference
from focuskit.singleshot._recipe import DEFAULT_MODEL, train
from focuskit.singleshot._search import GUARDS, DefocusEstimate, DefocusPredictor, singleshot_search
from focuskit.singleshot._train import TrainConfig, TrainHistory, fit_fcfnn

__all__ = [  # noqa: RUF022 - grouped: eager names, then the lazily imported network
    "FCFNN",
    "FCFNNConfig",
    "DEFAULT_MODEL",
    "GUARDS",
    "DefocusEstimate",
    "DefocusExamples",
    "DefocusModel",
    "DefocusPrediction",
    "DefocusPredictor",
    "FieldSpec",
    "FourierRegion",
    "OODReference",
    "Randomization",
    "TrainConfig",
    "TrainHistory",
    "draw_fields",
    "examples_from_folder",
    "examples_from_stacks",
    "fit_fcfnn",
    "fourier_features",
    "region_for",
    "restrength",
    "simulate_examples",
    "singleshot_search",
    "split_by_field",
    "split_tiles",
    "stack_pairs",
    "train",
]
# The network needs torch: imported on first use.
__getattr__, __dir__ = lazy_exports(
    __name__, {"FCFNN": "._network", "FCFNNConfig": "._network"}, __all__
)
