"""What every training loop here shares: the torch thread count, the learning-rate
schedule and checkpoints (safetensors + JSON, no pickles)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` torch intra-op threads, then restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cosine_learning_rate(base: float, step: int, max_steps: int) -> float:
    """Cosine decay from ``base`` to 1 % of it over ``max_steps``; a function of the step,
    so a resumed run continues on the same schedule."""
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, max_steps) / max_steps)))


def _adam_tensors(prefix: str, optimizer: Any) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    tensors, steps = {}, {}
    for i, st in optimizer.state_dict()["state"].items():
        tensors[f"{prefix}.{i}.exp_avg"] = st["exp_avg"].detach().cpu().numpy().copy()
        tensors[f"{prefix}.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().numpy().copy()
        steps[str(i)] = float(st["step"])
    return tensors, steps


def _restore_adam(prefix: str, optimizer: Any, tensors: dict[str, np.ndarray], steps: dict[str, float]) -> None:
    import torch

    state = optimizer.state_dict()
    for p in state["param_groups"][0]["params"]:
        key = f"{prefix}.{p}.exp_avg"
        if key in tensors:
            state["state"][p] = {"step": torch.tensor(steps[str(p)]), "exp_avg": torch.from_numpy(tensors[key]),
                                 "exp_avg_sq": torch.from_numpy(tensors[f"{prefix}.{p}.exp_avg_sq"])}
    optimizer.load_state_dict(state)


def save_training_state(path: Path, nets: dict[str, Any], optimizers: dict[str, Any],
                        extra: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
    """Networks, Adam moments and extra arrays in safetensors; counters and RNG in JSON (no pickles)."""
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    adam_steps: dict[str, dict[str, float]] = {}
    for name, net in nets.items():
        tensors.update({f"{name}.{k}": v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()})
    for name, opt in optimizers.items():
        t, s = _adam_tensors(f"adam_{name}", opt)
        tensors.update(t)
        adam_steps[name] = s
    for name, arrays in extra.items():
        tensors.update({f"{name}.{k}": v for k, v in arrays.items()})
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "checkpoint.safetensors.tmp"))
    os.replace(path / "checkpoint.safetensors.tmp", path / "checkpoint.safetensors")
    (path / "checkpoint.json.tmp").write_text(json.dumps({**meta, "adam_steps": adam_steps}, default=float))
    os.replace(path / "checkpoint.json.tmp", path / "checkpoint.json")


def load_training_state(path: Path, nets: dict[str, Any], optimizers: dict[str, Any],
                        extra: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    import torch
    from safetensors.numpy import load_file

    if not (path / "checkpoint.json").is_file():
        raise ConfigError(f"nothing to resume: no checkpoint in {path}")
    tensors = load_file(str(path / "checkpoint.safetensors"))
    meta = json.loads((path / "checkpoint.json").read_text())
    for name, net in nets.items():
        n = len(name) + 1
        net.load_state_dict({k[n:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith(name + ".")})
    for name, opt in optimizers.items():
        _restore_adam(f"adam_{name}", opt, tensors, meta["adam_steps"][name])
    arrays = {e: {k[len(e) + 1:]: v for k, v in tensors.items() if k.startswith(e + ".")} for e in extra}
    return meta, arrays
