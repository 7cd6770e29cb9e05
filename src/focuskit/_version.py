"""The installed focuskit version (nothing in focuskit imports back from here but this)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("focuskit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
