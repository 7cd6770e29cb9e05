"""focuskit: keep microscope images in focus.

Data flows one way (see DESIGN.md): optics → simulate → io → measures → focus →
scopes → search → models → train → evaluate → cli.
"""

from importlib.metadata import PackageNotFoundError, version

from focuskit._errors import ConfigError, FocuskitError, StackFileError

try:
    __version__ = version("focuskit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["ConfigError", "FocuskitError", "StackFileError", "__version__"]
