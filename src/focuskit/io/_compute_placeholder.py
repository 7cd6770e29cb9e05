"""Where Dask work runs: local threads, or a ``dask.distributed`` scheduler.

A placeholder with the signature of ``focuskit.io.compute_context`` (issue 16, item 3),
which another change provides; this one is swapped for it when the branches merge.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from focuskit._errors import ConfigError

__all__ = ["compute_context"]


@contextmanager
def compute_context(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """Run the Dask computations inside the block on ``workers`` local threads, or on the
    ``dask.distributed`` scheduler at ``scheduler``.

    Parameters
    ----------
    workers : int or None
        Local threads (None: Dask's default, one per core).
    scheduler : str or None
        Address of a running scheduler (``tcp://host:8786``); overrides ``workers``.

    Returns
    -------
    context : contextlib.AbstractContextManager
        Yields the ``distributed.Client`` when connected to a scheduler, else None.

    Raises
    ------
    ConfigError
        If ``workers`` < 1, or the scheduler cannot be reached.
    """
    import dask

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be ≥ 1, got {workers}")
    if scheduler is not None:
        try:
            from distributed import Client

            client = Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}) — start it, or "
                "leave out --scheduler to run locally"
            ) from None
        try:
            with dask.config.set(scheduler=client):
                yield client
        finally:
            client.close()
        return
    with dask.config.set(scheduler="threads", num_workers=workers):
        yield None
