"""A model is a folder: ``config.json`` + ``weights.safetensors`` (no pickles, ever).

``builtin:NAME`` resolves to a folder shipped inside the package
(``focuskit/models/builtin/NAME``), trained by a script in the repo.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "models" / "builtin"


def builtin_models() -> list[str]:
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / CONFIG).is_file())


def resolve_model(spec: str | os.PathLike[str]) -> Path:
    """A model folder from a path or ``builtin:NAME``; clear errors otherwise."""
    text = str(spec)
    if text.startswith("builtin:"):
        name = text.split(":", 1)[1]
        path = BUILTIN_DIR / name
        if not (path / CONFIG).is_file():
            raise ConfigError(f"no built-in model {name!r}; available: {', '.join(builtin_models()) or 'none'}")
        return path
    path = Path(text)
    if not path.is_dir():
        raise ConfigError(f"{path}: model folder not found — give a folder with {CONFIG} and {WEIGHTS}, or builtin:NAME")
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise ConfigError(f"{path}: not a model folder (missing {name})")
    return path


def save_model_folder(path: str | os.PathLike[str], config: dict[str, Any], tensors: dict[str, np.ndarray],
                      *, overwrite: bool = False) -> Path:
    """Write the folder atomically: a temporary sibling, then rename."""
    from safetensors.numpy import save_file

    target = Path(path)
    if target.exists() and not overwrite:
        raise ConfigError(f"{target}: already exists — pass --overwrite or choose another -o")
    if not target.parent.is_dir():
        raise ConfigError(f"{target}: folder {target.parent} does not exist — create it first")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / CONFIG).write_text(json.dumps(config, indent=2))
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model_folder(spec: str | os.PathLike[str]) -> tuple[Path, dict[str, Any], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    path = resolve_model(spec)
    try:
        config = json.loads((path / CONFIG).read_text())
        tensors = load_file(str(path / WEIGHTS))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the model ({exc}) — is the folder complete?") from None
    return path, config, tensors
