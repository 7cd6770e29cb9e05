"""Every public function has a numpydoc docstring, as scikit-image's do: a Parameters section
when it takes parameters and a Returns section when it returns something."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "focuskit",
    "focuskit.optics",
    "focuskit.simulate",
    "focuskit.io",
    "focuskit.measures",
    "focuskit.focus",
    "focuskit.scopes",
    "focuskit.search",
    "focuskit.restore",
    "focuskit.report",
    "focuskit.nn",
    "focuskit.singleshot",
    "focuskit.singleshot.analyses",
    "focuskit.fewshot",
    "focuskit.fewshot.analyses",
    "focuskit.refocus",
    "focuskit.refocus.analyses",
    "focuskit.mmcore",
]


def _public_functions(package: str) -> list[tuple[str, object]]:
    module = importlib.import_module(package)
    out = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) and obj.__module__.startswith("focuskit"):
            out.append((f"{package}.{name}", obj))
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_public_functions_have_numpydoc_sections(package: str) -> None:
    missing = []
    for name, func in _public_functions(package):
        doc = inspect.getdoc(func) or ""
        signature = inspect.signature(func)
        params = [p for p in signature.parameters if p not in ("self", "cls")]
        if not doc.strip():
            missing.append(f"{name}: no docstring")
            continue
        if params and "Parameters\n----------" not in doc:
            missing.append(f"{name}: no Parameters section")
        if signature.return_annotation not in (None, "None", inspect.Signature.empty) and (
            "Returns\n-------" not in doc and "Yields\n------" not in doc
        ):
            missing.append(f"{name}: no Returns section")
    assert not missing, "\n".join(missing)
