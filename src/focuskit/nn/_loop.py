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

from focuskit._errors import ConfigError

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
def _adam_tensors(prefix: str, optimizer: Any) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    tensors, steps = {}, {}
    for i, st in optimizer.state_dict()["state"].items():
        tensors[f"{prefix}.{i}.exp_avg"] = st["exp_avg"].detach().cpu().numpy().copy()
        tensors[f"{prefix}.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().numpy().copy()
        steps[str(i)] = float(st["step"])
    return tensors, steps


def _restore_adam(
    prefix: str, optimizer: Any, tensors: dict[str, np.ndarray], steps: dict[str, float]
) -> None:
    import torch

    state = optimizer.state_dict()
    for p in state["param_groups"][0]["params"]:
        key = f"{prefix}.{p}.exp_avg"
        if key in tensors:
            state["state"][p] = {
                "step": torch.tensor(steps[str(p)]),
                "exp_avg": torch.from_numpy(tensors[key]),
                "exp_avg_sq": torch.from_numpy(tensors[f"{prefix}.{p}.exp_avg_sq"]),
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

    Networks, Adam moments and extra arrays in ``checkpoint.safetensors``; counters, RNG
    state and ``meta`` in ``checkpoint.json`` (each written to a temporary name, then renamed).

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
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "checkpoint.safetensors.tmp"))
    os.replace(path / "checkpoint.safetensors.tmp", path / "checkpoint.safetensors")
    (path / "checkpoint.json.tmp").write_text(
        json.dumps({**meta, "adam_steps": adam_steps}, default=float)
    )
    os.replace(path / "checkpoint.json.tmp", path / "checkpoint.json")


def load_training_state(
    path: Path | None,
    nets: Mapping[str, Any],
    optimizers: Mapping[str, Any],
    extra: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Restore what :func:`save_training_state` wrote; returns ``(meta, extra arrays)``.

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

    Returns
    -------
    meta : dict
        The JSON part of the checkpoint (with ``adam_steps``).
    arrays : dict of str to dict of str to ndarray
        The extra arrays of each group in ``extra``.

    Raises
    ------
    ConfigError
        No checkpoint in ``path``.
    """
    from safetensors.numpy import load_file

    if path is None or not (path / "checkpoint.json").is_file():
        raise ConfigError(f"nothing to resume: no checkpoint in {path}")
    tensors = load_file(str(path / "checkpoint.safetensors"))
    meta = json.loads((path / "checkpoint.json").read_text())
    for name, net in nets.items():
        n = len(name) + 1
        numpy_to_state(net, {k[n:]: v for k, v in tensors.items() if k.startswith(name + ".")})
    for name, opt in optimizers.items():
        _restore_adam(f"adam_{name}", opt, tensors, meta["adam_steps"][name])
    arrays = {
        e: {k[len(e) + 1 :]: v for k, v in tensors.items() if k.startswith(e + ".")} for e in extra
    }
    return meta, arrays


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

    Returns
    -------
    history : History
        ``history``, filled in.

    Raises
    ------
    ConfigError
        ``resume`` without a checkpoint folder, or no checkpoint in it.
    """
    import torch

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    best = state_to_numpy(nets[keep])
    done = 0
    if resume:
        if ckpt is None:
            raise ConfigError("nothing to resume: give the checkpoint folder")
        meta, arrays = load_training_state(ckpt, nets, optimizers, ("best",))
        done, best = int(meta["step"]), arrays["best"]
        restored = type(history).from_dict(meta["history"])
        for f in dataclasses.fields(history):
            setattr(history, f.name, getattr(restored, f.name))
        rng.bit_generator.state = meta["rng"]
        if restore is not None:
            restore(meta)
        torch.manual_seed(seed + done)

    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    bad_evals = 0
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
        validation = dict(validate())
        history.record(done, {k: sums[k] / counts[k] for k in sums}, validation)
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
        if progress is not None:
            progress(done, schedule.max_steps, validation)
        if ckpt is not None:
            save_training_state(
                ckpt,
                nets,
                optimizers,
                {"best": best},
                {
                    "step": done,
                    "history": history.to_dict(),
                    "rng": rng.bit_generator.state,
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
