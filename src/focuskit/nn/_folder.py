"""A model is a folder: ``config.json`` + ``weights.safetensors`` (no pickles, ever).

``builtin:NAME`` resolves to a folder shipped inside the package (``focuskit/builtin/NAME``),
trained by a seeded script in the repo. Built-ins are named ``<system>-<microscope>``; the
names they had before focuskit 0.2 still resolve (:data:`BUILTIN_ALIASES`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError, ModelFileError
from focuskit.io import atomic_output

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin"
# Old built-in names → current ones (the old spellings keep working).
BUILTIN_ALIASES = {
    "fcfnn-20x-led": "singleshot-20x-led",
    "blur-cnn": "fewshot-widefield",
    "deepr-40x-fluor": "refocus-40x-fluor",
}


def builtin_models() -> list[str]:
    """Names of the bundled model folders (without their old aliases).

    Returns
    -------
    names : list of str
        The folder names under :data:`BUILTIN_DIR` holding a ``config.json``, sorted (empty
        when the package ships none).
    """
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / CONFIG).is_file())


def resolve_model(spec: str | os.PathLike[str]) -> Path:
    """The model folder of ``spec``: a path, or ``builtin:NAME`` (current or old name).

    Parameters
    ----------
    spec : str or path-like
        ``builtin:NAME`` (a current name or one of :data:`BUILTIN_ALIASES`) or a folder.

    Returns
    -------
    folder : Path
        The model folder, which holds ``config.json`` and ``weights.safetensors``.

    Raises
    ------
    ConfigError
        No such built-in, no such folder, or a folder without both files.
    """
    text = str(spec)
    if text.startswith("builtin:"):
        name = text.split(":", 1)[1]
        path = BUILTIN_DIR / BUILTIN_ALIASES.get(name, name)
        if not (path / CONFIG).is_file():
            raise ConfigError(
                f"no built-in model {name!r}; available: {', '.join(builtin_models()) or 'none'}"
            )
        return path
    path = Path(text)
    if not path.is_dir():
        raise ConfigError(
            f"{path}: model folder not found — give a folder with {CONFIG} and "
            f"{WEIGHTS}, or builtin:NAME"
        )
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise ConfigError(f"{path}: not a model folder (missing {name})")
    return path


def check_model_output(
    output: str | os.PathLike[str] | None,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    checkpoint: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse a model folder that cannot be written, before minutes of work.

    It cannot be written when it exists (without ``overwrite``), its parent is missing or
    not writable, it is, holds or lies inside one of the training's ``inputs``, or it
    overlaps the ``checkpoint`` folder (replacing the model folder would delete the
    checkpoints, or they would make it exist). A ``checkpoint`` folder must be writable
    (created if missing).

    Parameters
    ----------
    output : str, path-like or None
        The model folder to be written; None checks nothing.
    overwrite : bool
        Whether an existing folder may be replaced.
    inputs : iterable of str, path-like or None, optional
        The training's input paths (None entries are skipped).
    checkpoint : str, path-like or None, optional
        The checkpoint folder of the training, if any.

    Raises
    ------
    ConfigError
        The folder exists (without ``overwrite``), its parent is missing or not writable, it
        touches an input, or it overlaps ``checkpoint``.
    """
    from focuskit._errors import StackFileError
    from focuskit.io import check_output_folder, check_target, input_files

    protect = [file for given in inputs if given is not None for file in input_files(given)]
    try:
        if checkpoint is not None:
            check_output_folder(Path(checkpoint), label="checkpoint folder")
        if output is None:
            return
        out = Path(output)
        if checkpoint is not None:
            a, b = out.resolve(), Path(checkpoint).resolve()
            if a == b or a in b.parents or b in a.parents:
                raise ConfigError(
                    f"{out}: the model folder and the checkpoint folder {checkpoint} overlap "
                    "— give them separate paths"
                )
        check_target(out, overwrite=overwrite, protect=protect, directory=True)
    except StackFileError as exc:
        raise ConfigError(str(exc)) from None


def write_model_folder(
    path: str | os.PathLike[str],
    config: dict[str, Any],
    tensors: dict[str, np.ndarray],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``config.json`` + ``weights.safetensors`` as one folder, atomically.

    A hidden sibling is renamed into place: a reader sees the old folder or the new one,
    never half.

    Parameters
    ----------
    path : str or path-like
        The model folder.
    config : dict
        JSON-able configuration, written as ``config.json``.
    tensors : dict of str to ndarray
        The weights, written as ``weights.safetensors`` (no pickles).
    overwrite : bool, optional
        Replace an existing folder. Default False.

    Returns
    -------
    folder : Path
        The written folder.

    Raises
    ------
    ConfigError
        The folder exists and ``overwrite`` is False, or its parent does not exist.
    """
    from safetensors.numpy import save_file

    target = Path(path)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise ConfigError(f"{target}: already exists — pass --overwrite or choose another -o")
    if not target.parent.is_dir():
        raise ConfigError(f"{target}: folder {target.parent} does not exist — create it first")
    with atomic_output(target, overwrite=overwrite, directory=True) as tmp:
        tmp.mkdir()
        (tmp / CONFIG).write_text(json.dumps(config, indent=2))
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS))
    return target


# Ends the message when a folder's files are damaged or do not belong together.
DAMAGED_FIX = "restore the folder as focuskit saved it, or retrain the model"
# The first bytes of what torch.save (a zip) and pickle.dump (protocol 2+) write.
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_model_config(spec: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Read only the ``config.json`` of a model folder or ``builtin:NAME``.

    Parameters
    ----------
    spec : str or path-like
        ``builtin:NAME`` or a model folder (:func:`resolve_model`).

    Returns
    -------
    folder : Path
        The resolved model folder.
    config : dict
        The parsed ``config.json`` (a JSON object; its entries are not checked here).

    Raises
    ------
    ConfigError
        No such model.
    ModelFileError
        ``config.json`` cannot be read, is not JSON, or is not a JSON object.
    """
    path = resolve_model(spec)
    file = path / CONFIG
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(file, "is not text (UTF-8 JSON)", DAMAGED_FIX) from None
    except OSError as exc:
        raise ModelFileError(
            file, f"cannot be read ({exc.strerror or exc})", "check that you may read it"
        ) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            file,
            f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            DAMAGED_FIX,
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting 1000 deep
        raise ModelFileError(
            file, f"is not a focuskit config ({_first_line(exc)})", DAMAGED_FIX
        ) from None
    if not isinstance(config, dict):
        kind = "a list" if isinstance(config, list) else f"a single {type(config).__name__}"
        raise ModelFileError(file, f"holds {kind}, not a JSON object", DAMAGED_FIX)
    return path, config


def read_weights(file: str | os.PathLike[str], *, fix: str = DAMAGED_FIX) -> dict[str, np.ndarray]:
    """Read a safetensors file of a model folder or checkpoint, never unpickling anything.

    Parameters
    ----------
    file : str or path-like
        The ``.safetensors`` file.
    fix : str, optional
        What the user can do when it is damaged (ends the message).

    Returns
    -------
    tensors : dict of str to ndarray
        Its arrays by full name.

    Raises
    ------
    ModelFileError
        The file is empty, a pickle (``torch.save``), not safetensors, truncated, or holds
        a data type numpy has no type for (bfloat16).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    file = Path(file)
    check_safetensors_head(file, fix=fix)
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, TypeError, ValueError) as exc:
        raise ModelFileError(
            file, f"is not a complete safetensors file ({_first_line(exc)})", fix
        ) from None


def check_safetensors_head(file: Path, *, fix: str = DAMAGED_FIX) -> None:
    """Refuse a file that cannot be safetensors before a parser sees it: unreadable, empty,
    or a pickle (what ``torch.save`` and ``pickle.dump`` write), never unpickled.

    Parameters
    ----------
    file : Path
        The ``.safetensors`` file.
    fix : str, optional
        What the user can do when it is damaged (ends the message).

    Raises
    ------
    ModelFileError
        The file cannot be read, is empty, or is a pickle.
    """
    try:
        size = file.stat().st_size
        with file.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise ModelFileError(
            file, f"cannot be read ({exc.strerror or exc})", "check that you may read it"
        ) from None
    if not head:
        raise ModelFileError(file, "is empty", fix)
    # safetensors: an 8-byte header length, then the JSON header. Its first bytes can look
    # like a pickle's (a header of 0x280 bytes starts 80 02), so that is ruled out first.
    header = int.from_bytes(head[:8], "little")
    looks_safe = len(head) == 9 and head[8:] == b"{" and 8 + header <= size
    if not looks_safe and head.startswith(_PICKLE_MAGIC):
        raise ModelFileError(
            file,
            "is a pickle (torch.save / pickle.dump), not safetensors; focuskit never loads pickles",
            fix,
        )


def read_model_folder(
    spec: str | os.PathLike[str],
) -> tuple[Path, dict[str, Any], dict[str, np.ndarray]]:
    """Read a model folder or ``builtin:NAME``.

    Parameters
    ----------
    spec : str or path-like
        ``builtin:NAME`` or a model folder (:func:`resolve_model`).

    Returns
    -------
    folder : Path
        The resolved model folder.
    config : dict
        The parsed ``config.json`` (a JSON object; its entries are checked by the model
        class that loads it).
    tensors : dict of str to ndarray
        The arrays of ``weights.safetensors``, by their full names (``net.body.0.weight``).

    Raises
    ------
    ConfigError
        No such model.
    ModelFileError
        A file that cannot be read, ``config.json`` not a JSON object, or
        ``weights.safetensors`` not a complete safetensors file (a pickle is never loaded).
    """
    path, config = read_model_config(spec)
    return path, config, read_weights(path / WEIGHTS)
