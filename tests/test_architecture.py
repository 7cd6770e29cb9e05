"""The house rules of docs/architecture.md, checked on the source: data flows one way, a
system never imports another, torch stays in nn and the systems, no module reaches into
another package's private modules, and `import focuskit` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import focuskit

SRC = Path(focuskit.__file__).resolve().parent
# The one-way flow, top to bottom: a package may import only from packages above it.
LAYERS = [
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
]
SYSTEMS = ["singleshot", "fewshot", "refocus"]
# Root modules every package may use; the facade (_api), the Micro-Manager bridge (mmcore,
# which runs any method on a real core) and the CLI (with `python -m focuskit`, what torchrun
# starts) sit above everything.
ROOT_MODULES = {"_errors", "_version", "_lazy", "_quiet"}
TOP = {"_api", "cli", "mmcore", "__main__"}
# io and simulate are siblings under optics: neither imports the other.
SIBLINGS = {("io", "simulate"), ("simulate", "io")}


def _imports() -> list[tuple[str, str, int, bool]]:
    """(importing module, imported focuskit module, line, at module level) for every import."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = (
                    [node.module]
                    if node.module != "focuskit"
                    else [f"focuskit.{a.name}" for a in node.names]
                )
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("focuskit", "torch", "pytorch_msssim", "safetensors"):
                    out.append((module, name, node.lineno, id(node) in top_level))
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_packages_import_only_layers_above_them() -> None:
    order = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for module, imported, line, _ in _imports():
        if not imported.startswith("focuskit."):
            continue
        src, dst = _package(module), _package(imported)
        if src == dst or dst in ROOT_MODULES or src in TOP:
            continue
        if src in ROOT_MODULES or dst in TOP:
            bad.append(
                f"{module}:{line} imports {imported} (the facade and the CLI sit above everything)"
            )
        elif src in order and dst in order and (order[dst] > order[src] or (src, dst) in SIBLINGS):
            bad.append(f"{module}:{line} imports {imported}, a layer below it")
        elif src in order and dst in SYSTEMS:
            bad.append(f"{module}:{line}: the shared layer {src} imports the system {dst}")
        elif src in SYSTEMS and dst in SYSTEMS:
            bad.append(f"{module}:{line}: the system {src} imports the system {dst}")
    assert not bad, "\n".join(bad)


def test_no_private_imports_across_packages() -> None:
    bad = [
        f"{module}:{line} imports {imported}"
        for module, imported, line, _ in _imports()
        if imported.startswith("focuskit.")
        and _package(module) != _package(imported)
        and any(part.startswith("_") for part in imported.split(".")[2:])
    ]
    assert not bad, "\n".join(bad)


def test_torch_only_in_nn_and_the_systems() -> None:
    allowed = {"nn", *SYSTEMS}
    bad = [
        f"{module}:{line} imports {imported}"
        for module, imported, line, _ in _imports()
        if not imported.startswith("focuskit") and _package(module) not in allowed
    ]
    assert not bad, "\n".join(bad)


def test_torch_is_imported_at_module_level_only_by_the_networks() -> None:
    # A system package stays importable without loading torch: only its network modules
    # (reached lazily) import torch when they load.
    bad = [
        f"{module}:{line}"
        for module, imported, line, top in _imports()
        if top and not imported.startswith("focuskit") and not module.endswith("._network")
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "statement",
    [
        "import focuskit",
        "import focuskit.singleshot, focuskit.fewshot, focuskit.refocus",
        "import focuskit.singleshot.analyses, focuskit.fewshot.analyses, focuskit.refocus.analyses",
        "import focuskit.cli",
        "import focuskit.mmcore",
    ],
)
def test_importing_does_not_load_torch(statement: str) -> None:
    code = (
        f"import sys; {statement}; assert 'torch' not in sys.modules, sorted(m for m in "
        "sys.modules if 'torch' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_focuskit_loads_no_subpackage() -> None:
    code = (
        "import sys, focuskit; loaded = sorted(m for m in sys.modules if "
        "m.startswith('focuskit.')); assert set(loaded) <= "
        "{'focuskit._errors', 'focuskit._lazy', 'focuskit._version'}, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_module_imports_on_its_own() -> None:
    # No import cycles: each module loads in a fresh interpreter by itself.
    modules = sorted({m for m, *_ in _imports()} | {"focuskit.cli._demo"})
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('focuskit')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    subprocess.run([sys.executable, "-c", code, *modules], check=True)
