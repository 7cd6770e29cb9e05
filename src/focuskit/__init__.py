"""focuskit: keep microscope images in focus.

Three published systems over shared layers (docs/architecture.md):

- :mod:`focuskit.singleshot` — single-shot defocus prediction (FCFNN, Pinkard et al. 2019);
- :mod:`focuskit.fewshot` — few-shot autofocus with a calibrated CNN blur score
  (DeepFocus, Shajkofci & Liebling 2020);
- :mod:`focuskit.refocus` — offline refocusing and defocus maps (Deep-R, Luo et al. 2021);

and the layers they share: ``optics``, ``simulate``, ``io``, ``measures``, ``focus``,
``scopes``, ``search``, ``restore``, ``report``, ``nn``.

The names here are what most users need::

    import focuskit

    stack = focuskit.simulate_stack("fcfnn-20x-led", size=512, seed=1)
    model = focuskit.load_model("builtin:singleshot-20x-led")
    model.predict(stack.plane(10), optics=stack.optics)

Importing ``focuskit`` loads none of its subpackages (and no torch) until a name is used.
"""

import os

# Idle OpenMP threads sleep instead of spinning. On a 2-core PC that is doing anything
# else, spinning threads made one Deep-R training step 17× slower (6.3 s against 0.37 s);
# it must be set before torch loads its OpenMP runtime. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from focuskit._errors import ConfigError, FocuskitError, ModelFileError, StackFileError
from focuskit._lazy import lazy_exports
from focuskit._version import __version__

__all__ = [
    "AUTOFOCUS_METHODS",
    "BlurScorer",
    "ConfigError",
    "DefocusModel",
    "FocalStack",
    "FocuskitError",
    "ModelFileError",
    "Refocuser",
    "StackFileError",
    "__version__",
    "autofocus",
    "find_focus",
    "load_model",
    "read_stack",
    "score",
    "simulate_stack",
    "write_stack",
]
# The layers and systems, imported on first use: `focuskit.singleshot.train(...)` works after
# a plain `import focuskit`.
SUBPACKAGES = (
    "optics",
    "simulate",
    "io",
    "measures",
    "focus",
    "scopes",
    "search",
    "restore",
    "report",
    "nn",
    "singleshot",
    "fewshot",
    "refocus",
)
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "FocalStack": "focuskit.io",
        "read_stack": "focuskit.io",
        "write_stack": "focuskit.io",
        "simulate_stack": "focuskit._api",
        "load_model": "focuskit._api",
        "autofocus": "focuskit._api",
        "AUTOFOCUS_METHODS": "focuskit._api",
        "find_focus": "focuskit.focus",
        "score": "focuskit.measures",
        "DefocusModel": "focuskit.singleshot",
        "BlurScorer": "focuskit.fewshot",
        "Refocuser": "focuskit.refocus",
    },
    __all__,
    subpackages=SUBPACKAGES,
)
