"""Few-shot autofocus (DeepFocus; Shajkofci & Liebling 2020): a sample-invariant CNN blur
score, calibrated once per objective on a stack of a flat textured object, finds focus
from ~3 images by matching their scores to the calibration curve.

- :class:`BlurScorer` — the trained score users call: ``score_map(image)``, ``calibrate(…)``
  via :func:`calibrate`, ``autofocus(scope, calibration)``;
  ``focuskit.load_model("builtin:fewshot-widefield")``.
- :class:`BlurCalibration` — one objective's ``b_calib(z)`` with its Moffat fit (§2.2 step 1).
- :func:`train` — the whole recipe: simulated patches (and your stacks), hold-out,
  training, the model object.
- the parts: :func:`simulate_blur_patches` (data), :class:`BlurCNN` (network),
  :func:`fit_blur_cnn` (training loop), :func:`deepfocus_search` (the few-image search),
  :mod:`focuskit.fewshot.analyses` (the paper's Table 1, Fig. 3 and 4).

Importing this package does not import torch; the network and training do.
"""

from focuskit._lazy import lazy_exports
from focuskit.fewshot._calibration import (
    BlurCalibration,
    MoffatFit,
    calibrate,
    convexity,
    fit_moffat,
    moffat_fwhm,
    moffat_profile,
    shift_by_correlation,
)
from focuskit.fewshot._data import (
    CONTENTS,
    CUTOFF_RANGE,
    HELD_OUT_IMAGES,
    PATCH,
    TRAIN_IMAGES,
    BlurDataConfig,
    BlurPatches,
    blur_patches_from_stack,
    defocus_otf,
    simulate_blur_patches,
    waves_per_um,
)
from focuskit.fewshot._model import BlurScorer
from focuskit.fewshot._plots import calibration_plot, deepfocus_plot, score_map_plot
from focuskit.fewshot._recipe import DEFAULT_MODEL, train
from focuskit.fewshot._search import (
    DEFAULT_MAX_IMAGES,
    PAPER_SETTINGS,
    BlurMapper,
    content_weights,
    deepfocus_search,
    midband_defocus_curve,
    midband_noise_floor,
)
from focuskit.fewshot._train import (
    BlurTrainConfig,
    BlurTrainHistory,
    fit_blur_cnn,
    split_patches_by_field,
)

__all__ = [  # noqa: RUF022 - the lazily imported network first
    "BlurCNN",
    "BlurCNNConfig",
    "CONTENTS",
    "CUTOFF_RANGE",
    "DEFAULT_MODEL",
    "HELD_OUT_IMAGES",
    "PAPER_SETTINGS",
    "PATCH",
    "TRAIN_IMAGES",
    "BlurCalibration",
    "BlurDataConfig",
    "BlurMapper",
    "BlurPatches",
    "BlurScorer",
    "BlurTrainConfig",
    "BlurTrainHistory",
    "MoffatFit",
    "blur_patches_from_stack",
    "calibrate",
    "calibration_plot",
    "convexity",
    "deepfocus_plot",
    "DEFAULT_MAX_IMAGES",
    "deepfocus_search",
    "midband_defocus_curve",
    "midband_noise_floor",
    "content_weights",
    "defocus_otf",
    "fit_blur_cnn",
    "fit_moffat",
    "moffat_fwhm",
    "moffat_profile",
    "score_map_plot",
    "shift_by_correlation",
    "simulate_blur_patches",
    "split_patches_by_field",
    "train",
    "waves_per_um",
]
# The network needs torch: imported on first use.
__getattr__, __dir__ = lazy_exports(
    __name__, {"BlurCNN": "._network", "BlurCNNConfig": "._network"}, __all__
)
