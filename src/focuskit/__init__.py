"""focuskit: keep microscope images in focus.

Data flows one way (see DESIGN.md): optics → simulate → io → measures → focus →
scopes → search → models → train → evaluate → cli.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# Idle OpenMP threads sleep instead of spinning. On a 2-core PC that is doing anything
# else, spinning threads made one Deep-R training step 17× slower (6.3 s against 0.37 s);
# it must be set before torch loads its OpenMP runtime. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from focuskit._errors import ConfigError, FocuskitError, StackFileError

try:
    __version__ = version("focuskit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["ConfigError", "FocuskitError", "StackFileError", "__version__"]
