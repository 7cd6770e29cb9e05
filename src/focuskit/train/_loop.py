"""What every training loop here shares: the torch thread count and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager


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
