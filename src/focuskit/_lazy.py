"""Names a package exports without importing their modules until first use (PEP 562), so
``import focuskit`` and ``import focuskit.<system>`` never load torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, names: dict[str, str], eager: list[str], *, subpackages: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each lazy name to the module
    (absolute, or relative to ``package`` when it starts with ``.``) that defines it;
    ``eager`` are the names the package already holds; ``subpackages`` are imported on first
    attribute access (``focuskit.singleshot`` after a plain ``import focuskit``)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            if name in subpackages:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*eager, *names, *subpackages})

    return __getattr__, __dir__
