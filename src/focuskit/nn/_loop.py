"""The one training loop every focuskit network is trained with.

A system supplies what differs — how one step updates its networks (``step``), how it is
validated (``validate``) and what its history records — and :func:`run_training` does the
rest: the cosine learning-rate schedule, evaluation every ``eval_every`` steps with the
mean of each training term since the last one, keeping the best network by the validation
metric, early stopping, checkpoint + exact resume (safetensors + JSON, no pickles) and
progress reports.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from focuskit._errors import ConfigError, ModelFileError
from focuskit.nn._distributed import current_distributed
from focuskit.nn._folder import check_safetensors_head, read_weights
from focuskit.nn._schema import ANY_OBJECT, Number, Section, Text, check_arrays, check_config

# progress(step, max_steps, {"val_rmse_um": …, …}): called after every evaluation.
Progress = Callable[[int, int, dict[str, float]], None]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` torch intra-op threads, then restore the previous count.

    Parameters
    ----------
    n : int
        Intra-op threads inside the ``with`` block.

    Returns
    -------
    context : context manager
        Use as ``with torch_threads(1): ...``; it yields None.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cosine_learning_rate(base: float, step: int, max_steps: int) -> float:
    """The learning rate at ``step`` of a cosine decay from ``base`` to 1 % of it.

    ``base · (0.01 + 0.99 · ½(1 + cos(π·step/max_steps)))``: a cosine decay from ``base``
    to 1 % of it; a function of the step, so a resumed run continues on the same schedule.

    Parameters
    ----------
    base : float
        The rate at step 0.
    step : int
        Steps done (clipped to ``max_steps``).
    max_steps : int
        Steps of the whole run.

    Returns
    -------
    rate : float
        The learning rate, from ``base`` down to ``0.01 · base``.
    """
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, max_steps) / max_steps)))


def state_to_numpy(net: Any) -> dict[str, np.ndarray]:
    """A copy of a torch module's state as numpy arrays.

    Parameters
    ----------
    net : torch.nn.Module
        The module (parameters and buffers are copied).

    Returns
    -------
    state : dict of str to ndarray
        Its ``state_dict``, each tensor detached, on the CPU, copied.
    """
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def numpy_to_state(net: Any, state: Mapping[str, np.ndarray]) -> None:
    """Load numpy arrays (from :func:`state_to_numpy` or a file) into a torch module.

    Parameters
    ----------
    net : torch.nn.Module
        The module, changed in place.
    state : mapping of str to ndarray
        Its ``state_dict`` entries as arrays (all of them: the load is strict).
    """
    import torch

    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})


def state_layout(net: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """The shape and numpy dtype kind of each entry of a torch module's state.

    Parameters
    ----------
    net : torch.nn.Module
        The module.

    Returns
    -------
    layout : dict of str to (shape, kind)
        For each ``state_dict`` entry: its shape and ``"f"`` (floating point), ``"b"``
        (boolean) or ``"i"`` (integer) — what :func:`~focuskit.nn.check_arrays` expects.
    """
    import torch

    def kind(t: Any) -> str:
        return "f" if t.is_floating_point() else "b" if t.dtype == torch.bool else "i"

    return {k: (tuple(v.shape), kind(v)) for k, v in net.state_dict().items()}


# ------------------------------------------------------------------------ checkpoints
CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_META = "checkpoint.json"
# Written into the safetensors header with the JSON state: the one file is the checkpoint.
_CHECKPOINT_FORMAT = "focuskit-checkpoint/2"
RESUME_FIX = "train afresh without --resume (in a new checkpoint folder)"
# What checkpoint.json (or the header's copy of it) must hold.
_CHECKPOINT_SCHEMA = Section(
    required={
        "step": Number(lo=0, whole=True),
        "history": ANY_OBJECT,
        "rng": Section(required={"bit_generator": Text(), "state": ANY_OBJECT}, others=True),
        "adam_steps": ANY_OBJECT,
    },
    optional={"settings": ANY_OBJECT, "bad_evals": Number(lo=0, whole=True)},
    others=True,
)


def _adam_tensors(prefix: str, optimizer: Any) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    tensors, steps = {}, {}
    for i, st in optimizer.state_dict()["state"].items():
        tensors[f"{prefix}.{i}.exp_avg"] = st["exp_avg"].detach().cpu().numpy().copy()
        tensors[f"{prefix}.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().numpy().copy()
        steps[str(i)] = float(st["step"])
    return tensors, steps


def _check_adam(
    name: str, optimizer: Any, tensors: Mapping[str, np.ndarray], steps: Any, file: Path
) -> None:
    """Refuse Adam moments that do not fit the optimizer's parameters (shapes, counts)."""
    prefix = f"adam_{name}."
    params = [p for group in optimizer.param_groups for p in group["params"]]
    found = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not isinstance(steps, dict):
        raise ModelFileError(file, f'has no Adam step counts for "{name}"', RESUME_FIX)
    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    for i, p in enumerate(params):
        # A parameter never stepped has no moments (e.g. a discriminator not yet updated).
        if f"{i}.exp_avg" in found or f"{i}.exp_avg_sq" in found:
            expected[f"{i}.exp_avg"] = expected[f"{i}.exp_avg_sq"] = (tuple(p.shape), "f")
            step = steps.get(str(i))
            if isinstance(step, bool) or not isinstance(step, (int, float)) or step < 0:
                raise ModelFileError(
                    file, f'has no valid Adam step count for "{name}" parameter {i}', RESUME_FIX
                )
    check_arrays(found, expected, file, RESUME_FIX, prefix=prefix, wanted_by="this run's network")


def _restore_adam(
    prefix: str, optimizer: Any, tensors: Mapping[str, np.ndarray], steps: dict[str, float]
) -> None:
    import torch

    state = optimizer.state_dict()
    for p in state["param_groups"][0]["params"]:
        key = f"{prefix}.{p}.exp_avg"
        if key in tensors:
            state["state"][p] = {
                "step": torch.tensor(steps[str(p)]),
                "exp_avg": torch.from_numpy(np.array(tensors[key])),
                "exp_avg_sq": torch.from_numpy(np.array(tensors[f"{prefix}.{p}.exp_avg_sq"])),
            }
    optimizer.load_state_dict(state)


def save_training_state(
    path: Path,
    nets: Mapping[str, Any],
    optimizers: Mapping[str, Any],
    extra: Mapping[str, Mapping[str, np.ndarray]],
    meta: dict[str, Any],
) -> None:
    """Save a training checkpoint: tensors in safetensors, the rest in JSON (no pickles).

    Networks, Adam moments, extra arrays and torch's random state (dropout draws) go into
    ``checkpoint.safetensors``, and the JSON state (counters, the numpy generator, ``meta``)
    into its header, so that one file, renamed into place, is the whole checkpoint: a run
    killed at any moment leaves the previous checkpoint or the new one, never a mix.
    ``checkpoint.json`` is a readable copy of the JSON state, written after it.

    Parameters
    ----------
    path : Path
        The checkpoint folder (created if missing).
    nets : mapping of str to torch.nn.Module
        The networks, saved under ``<name>.<parameter>``.
    optimizers : mapping of str to torch.optim.Adam
        Their optimizers, whose moments are saved under ``adam_<name>.*``.
    extra : mapping of str to mapping of str to ndarray
        More arrays by group (e.g. ``{"best": state}``), saved under ``<group>.<key>``.
    meta : dict
        JSON-able counters and state (step, history, RNG state …).
    """
    import torch
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    adam_steps: dict[str, dict[str, float]] = {}
    for name, net in nets.items():
        tensors.update({f"{name}.{k}": v for k, v in state_to_numpy(net).items()})
    for name, opt in optimizers.items():
        t, s = _adam_tensors(f"adam_{name}", opt)
        tensors.update(t)
        adam_steps[name] = s
    for name, arrays in extra.items():
        tensors.update({f"{name}.{k}": v for k, v in arrays.items()})
    tensors["torch_rng.cpu"] = torch.get_rng_state().numpy().copy()
    text = json.dumps({**meta, "adam_steps": adam_steps}, default=float)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (CHECKPOINT_TENSORS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": _CHECKPOINT_FORMAT, "state": text})
    os.replace(tmp, path / CHECKPOINT_TENSORS)
    (path / (CHECKPOINT_META + ".tmp")).write_text(text)
    os.replace(path / (CHECKPOINT_META + ".tmp"), path / CHECKPOINT_META)


def _parse_state(text: str, file: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            file,
            f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            RESUME_FIX,
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(file, f"is not a focuskit checkpoint ({exc})", RESUME_FIX) from None


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def check_training_state(
    path: str | os.PathLike[str] | None, settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Refuse a checkpoint that cannot be resumed, before any data are made.

    Reads only the safetensors header and the JSON state: both files are there and whole,
    the JSON holds what a resume needs, and the run's ``settings`` (e.g. the network's
    width) are those the checkpoint was trained with.

    Parameters
    ----------
    path : str, path-like or None
        The checkpoint folder.
    settings : mapping, optional
        What this run must share with the checkpoint (JSON-able; compared entry by entry
        with the settings the checkpoint recorded, when it recorded them).

    Returns
    -------
    state : dict
        The checkpoint's JSON state (``step``, ``history``, ``rng``, ``adam_steps`` …).

    Raises
    ------
    ConfigError
        No folder given, or no checkpoint in it (nothing to resume).
    ModelFileError
        A damaged checkpoint (a file missing, truncated or not what focuskit writes), or
        one trained with other settings; the message names the file and the fix.
    """
    from safetensors import SafetensorError, safe_open

    if path is None:
        raise ConfigError("nothing to resume: no checkpoint folder given")
    folder = Path(path)
    tensors_file, meta_file = folder / CHECKPOINT_TENSORS, folder / CHECKPOINT_META
    if not tensors_file.is_file() and not meta_file.is_file():
        raise ConfigError(f"nothing to resume: no checkpoint in {folder}")
    if not tensors_file.is_file():
        raise ModelFileError(tensors_file, "is missing (the JSON alone cannot resume)", RESUME_FIX)
    check_safetensors_head(tensors_file, fix=RESUME_FIX)
    try:
        with safe_open(str(tensors_file), "np") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, TypeError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            tensors_file, f"is not a complete safetensors file ({text})", RESUME_FIX
        ) from None
    if "state" in header:  # the whole checkpoint in one file
        file, meta = tensors_file, _parse_state(header["state"], tensors_file)
    else:  # written by an older focuskit: the JSON file beside it holds the state
        if not meta_file.is_file():
            raise ModelFileError(meta_file, "is missing", RESUME_FIX)
        try:
            text = meta_file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFileError(meta_file, f"cannot be read ({exc})", RESUME_FIX) from None
        file, meta = meta_file, _parse_state(text, meta_file)
    check_config(meta, _CHECKPOINT_SCHEMA, file, RESUME_FIX)
    saved = meta.get("settings") or {}
    wanted = json.loads(json.dumps(dict(settings or {})))  # tuples → lists, as saved
    for key, value in wanted.items():
        if key in saved and saved[key] != value:
            raise ModelFileError(
                folder,
                f"the checkpoint was trained with {key} {_shown(saved[key])}, this run asks "
                f"for {_shown(value)}",
                f"resume with {key} {_shown(saved[key])}, or {RESUME_FIX}",
            )
    return meta


def load_training_state(
    path: Path | None,
    nets: Mapping[str, Any],
    optimizers: Mapping[str, Any],
    extra: tuple[str, ...] = (),
    settings: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Restore what :func:`save_training_state` wrote; returns ``(meta, extra arrays)``.

    Every tensor is checked against the networks and optimizers before any is loaded.

    Parameters
    ----------
    path : Path or None
        The checkpoint folder.
    nets : mapping of str to torch.nn.Module
        The networks, loaded in place.
    optimizers : mapping of str to torch.optim.Adam
        Their optimizers, whose Adam moments are restored in place.
    extra : tuple of str, optional
        Groups of extra arrays to read back.
    settings : mapping, optional
        What this run must share with the checkpoint (:func:`check_training_state`).

    Returns
    -------
    meta : dict
        The JSON part of the checkpoint (with ``adam_steps``).
    arrays : dict of str to dict of str to ndarray
        The extra arrays of each group in ``extra``, and ``torch_rng`` (torch's random
        state) when the checkpoint saved it.

    Raises
    ------
    ConfigError
        No checkpoint in ``path``.
    ModelFileError
        A damaged checkpoint, or one whose tensors do not fit the networks (another
        architecture); nothing is loaded then.
    """
    meta = check_training_state(path, settings)
    assert path is not None
    file = Path(path) / CHECKPOINT_TENSORS
    tensors = read_weights(file, fix=RESUME_FIX)
    for name, net in nets.items():
        n = len(name) + 1
        group = {k[n:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        check_arrays(
            group,
            state_layout(net),
            file,
            RESUME_FIX,
            prefix=f"{name}.",
            wanted_by="this run's network",
        )
    for name, opt in optimizers.items():
        _check_adam(name, opt, tensors, meta["adam_steps"].get(name), file)
    arrays = {
        e: {k[len(e) + 1 :]: v for k, v in tensors.items() if k.startswith(e + ".")}
        for e in (*extra, "torch_rng")
    }
    rng_state = arrays.pop("torch_rng")
    if rng_state:
        import torch

        size = torch.get_rng_state().numel()
        found = rng_state.get("cpu")
        if found is None or found.dtype != np.uint8 or found.shape != (size,):
            raise ModelFileError(file, "holds no valid torch random state", RESUME_FIX)
        arrays["torch_rng"] = rng_state
    for name, net in nets.items():
        n = len(name) + 1
        numpy_to_state(net, {k[n:]: v for k, v in tensors.items() if k.startswith(name + ".")})
    for name, opt in optimizers.items():
        _restore_adam(f"adam_{name}", opt, tensors, meta["adam_steps"][name])
    return meta, arrays


def _check_history(history_cls: type[History], data: Mapping[str, Any], file: Path) -> None:
    """Refuse a recorded history whose entries are not of their fields' types."""
    for f in dataclasses.fields(history_cls):
        if f.name not in data:
            continue
        value = data[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default
        if isinstance(default, list):
            ok = isinstance(value, list) and all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for v in value
            )
        elif isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = True
        if not ok:
            raise ModelFileError(
                file,
                f'"history.{f.name}" is {json.dumps(value)[:40]}, not what focuskit writes',
                RESUME_FIX,
            )


# ---------------------------------------------------------------------------- history
@dataclass
class History:
    """What a training run recorded; each system names its curves.

    Subclasses add list fields and map the loop's keys to them: ``TRAIN`` maps the keys of
    ``step``'s result (means over each evaluation interval), ``VALIDATION`` those of
    ``validate``'s, and ``BEST`` names the field holding the best validation value.

    Attributes
    ----------
    steps : list of int
        The step of each evaluation.
    best_step : int
        The step whose network was kept (best validation value).
    stopped_early : bool
        Whether early stopping ended the run.
    seconds : float
        Training time (s), summed over resumed runs.
    best : float
        The best validation value (the field ``BEST`` names).
    """

    TRAIN: ClassVar[dict[str, str]] = {}
    VALIDATION: ClassVar[dict[str, str]] = {}
    BEST: ClassVar[str] = ""

    steps: list[int] = field(default_factory=list)
    best_step: int = 0
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def best(self) -> float:
        """The best validation value so far (the field named by ``BEST``)."""
        return float(getattr(self, self.BEST))

    @best.setter
    def best(self, value: float) -> None:
        setattr(self, self.BEST, float(value))

    def record(
        self, step: int, train: Mapping[str, float], validation: Mapping[str, float]
    ) -> None:
        """Append one evaluation.

        Parameters
        ----------
        step : int
            Steps done.
        train : mapping of str to float
            Mean training terms since the last evaluation (a missing key records NaN).
        validation : mapping of str to float
            Validation values (every key of ``VALIDATION`` must be present).
        """
        self.steps.append(step)
        for key, name in self.TRAIN.items():
            getattr(self, name).append(float(train.get(key, math.nan)))
        for key, name in self.VALIDATION.items():
            getattr(self, name).append(float(validation[key]))

    def to_dict(self) -> dict[str, Any]:
        """The history as a JSON-able dict (for checkpoints and model metadata).

        Returns
        -------
        data : dict
            One entry per field.
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Rebuild a history from :meth:`to_dict` (unknown keys are ignored).

        Parameters
        ----------
        data : mapping
            A dict written by :meth:`to_dict`.

        Returns
        -------
        history : History
            An instance of this class.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Schedule:
    """How long to train and how to choose the result.

    Attributes
    ----------
    max_steps : int
        Training steps (≥ 1).
    eval_every : int
        Steps between evaluations (≥ 1; the last step is always evaluated).
    learning_rates : mapping of str to float
        The base rate of each optimizer on the cosine schedule (optimizers not named keep
        their rate).
    patience : int or None
        Evaluations without improvement before stopping (None: never stop early).
    select_after : int
        The best network is chosen among evaluations from this step on (earlier ones are
        recorded, not kept: e.g. before an uncertainty head is trained).

    Raises
    ------
    ConfigError
        ``max_steps`` or ``eval_every`` below 1.
    """

    max_steps: int
    eval_every: int
    learning_rates: Mapping[str, float]
    patience: int | None = None
    select_after: int = 0

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.eval_every < 1:
            raise ConfigError("max_steps and eval_every must be ≥ 1")


def run_training(
    *,
    nets: Mapping[str, Any],
    optimizers: Mapping[str, Any],
    step: Callable[[int, np.random.Generator], Mapping[str, float]],
    validate: Callable[[], Mapping[str, float]],
    metric: str,
    keep: str,
    history: History,
    schedule: Schedule,
    rng: np.random.Generator,
    seed: int,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    state: Callable[[], dict[str, Any]] | None = None,
    restore: Callable[[dict[str, Any]], None] | None = None,
    on_evaluate: Callable[[], None] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> History:
    """Train until ``schedule.max_steps`` (or early stopping).

    Leaves ``nets[keep]`` at its best validation state and every network in eval mode.

    Parameters
    ----------
    nets, optimizers : mapping of str to torch.nn.Module / torch.optim.Optimizer
        The modules and optimizers, by name (checkpointed under these names).
    step : callable
        ``step(k, rng)``: update ``k`` (0, 1, …), its batch drawn from ``rng``; returns its
        loss terms (each averaged over the steps since the last evaluation; a term missing
        from a step is not counted for it).
    validate : callable
        ``validate()``: validation values; ``metric`` among them is minimized.
    metric : str
        The validation value that chooses the best network.
    keep : str
        The network whose best state is kept (and returned to at the end).
    history : History
        Filled in place (and restored from the checkpoint on resume).
    schedule : Schedule
        Steps, evaluation interval, learning rates, patience and ``select_after``.
    rng : numpy.random.Generator
        The run's generator.
    seed : int
        Its seed (on resume torch is reseeded with ``seed + step``).
    checkpoint_dir : str or path-like, optional
        Save a checkpoint at every evaluation.
    resume : bool, optional
        Continue from the checkpoint in ``checkpoint_dir``.
    progress : callable, optional
        ``progress(step, max_steps, validation values)`` after every evaluation.
    state, restore : callable, optional
        Extra JSON state of the system's step (e.g. loss weights) to checkpoint and restore.
    on_evaluate : callable, optional
        Called after each evaluation is recorded, before progress and checkpoint.
    settings : mapping, optional
        What a resumed run must share with its checkpoint (e.g. the architecture),
        recorded in every checkpoint and compared on resume (JSON-able).

    Returns
    -------
    history : History
        ``history``, filled in.

    Raises
    ------
    ConfigError
        ``resume`` without a checkpoint folder, or no checkpoint in it.
    ModelFileError
        A damaged checkpoint, or one trained with other settings or another architecture.

    Notes
    -----
    A resumed run continues exactly where the checkpoint left it: the networks, Adam's
    moments, the numpy generator, torch's random state (dropout), the evaluations without
    improvement and the system's ``state`` are all restored, so it ends bit-identical to a
    run that was never interrupted.

    Under ``torchrun`` (inside :func:`~focuskit.nn.distributed`) ``nets`` are the plain
    networks (``step`` runs the DDP-wrapped ones), and every process keeps the same numpy
    generator and torch random state as one process would: the logged terms are averaged
    over the processes, rank 0 validates and sends its values to all (one decision about
    the best network and early stopping), only rank 0 calls ``progress`` and writes
    checkpoints (plain state, which one process resumes as well as several), and every
    process reads the checkpoint on resume.
    """
    import torch

    dist = current_distributed()
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    best = state_to_numpy(nets[keep])
    done = 0
    bad_evals = 0
    if resume:
        if ckpt is None:
            raise ConfigError("nothing to resume: give the checkpoint folder")
        file = ckpt / CHECKPOINT_TENSORS
        meta = check_training_state(ckpt, settings)
        _check_history(type(history), meta["history"], file)
        meta, arrays = load_training_state(ckpt, nets, optimizers, ("best",), settings)
        check_arrays(
            arrays["best"],
            state_layout(nets[keep]),
            file,
            RESUME_FIX,
            prefix="best.",
            wanted_by="this run's network",
        )
        done, best = int(meta["step"]), arrays["best"]
        restored = type(history).from_dict(meta["history"])
        for f in dataclasses.fields(history):
            setattr(history, f.name, getattr(restored, f.name))
        try:
            rng.bit_generator.state = meta["rng"]
            if restore is not None:
                restore(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                file, f"holds a state this run cannot restore ({exc})", RESUME_FIX
            ) from None
        if "torch_rng" in arrays:  # dropout continues with the draws it would have made
            torch.set_rng_state(torch.from_numpy(arrays["torch_rng"]["cpu"].copy()))
        else:  # a checkpoint written before focuskit saved torch's state
            torch.manual_seed(seed + done)
        # Evaluations since the last improvement (recounted for older checkpoints).
        bad_evals = (
            int(meta["bad_evals"])
            if "bad_evals" in meta
            else sum(
                1 for s in history.steps if s >= schedule.select_after and s > history.best_step
            )
        )

    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for net in nets.values():
        net.train()
    while done < schedule.max_steps:
        for name, base in schedule.learning_rates.items():
            for group in optimizers[name].param_groups:
                group["lr"] = cosine_learning_rate(base, done, schedule.max_steps)
        terms = step(done, rng)
        done += 1
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
        if done % schedule.eval_every and done != schedule.max_steps:
            continue
        # Rank 0 validates (the networks are the same on every process) and tells the others.
        validation = dist.broadcast(dict(validate()) if dist.is_main else None)
        history.record(done, dist.mean({k: sums[k] / counts[k] for k in sums}), validation)
        sums, counts = {}, {}
        value = validation[metric]
        if done >= schedule.select_after:
            if value < history.best:
                history.best, history.best_step = value, done
                best = state_to_numpy(nets[keep])
                bad_evals = 0
            else:
                bad_evals += 1
        history.seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        if on_evaluate is not None:
            on_evaluate()
        if progress is not None and dist.is_main:
            progress(done, schedule.max_steps, validation)
        if ckpt is not None and dist.is_main:
            save_training_state(
                ckpt,
                nets,
                optimizers,
                {"best": best},
                {
                    "step": done,
                    "history": history.to_dict(),
                    "rng": rng.bit_generator.state,
                    "bad_evals": bad_evals,
                    **({"settings": dict(settings)} if settings else {}),
                    **(state() if state is not None else {}),
                },
            )
        if schedule.patience is not None and bad_evals >= schedule.patience:
            history.stopped_early = True
            break
    history.seconds += time.perf_counter() - t0
    numpy_to_state(nets[keep], best)
    for net in nets.values():
        net.eval()
    return history
