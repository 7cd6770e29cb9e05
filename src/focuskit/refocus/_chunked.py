"""Deep-R over a whole slide, block by block: a lazy Dask array that refocuses each block
with exactly the tiles and blending of :meth:`Refocuser.refocus` on the whole image.

Each block is computed from itself and a margin of one tile on every side
(``dask.array.map_overlap``): every tile of the whole image's grid that meets the block is
inside that window, so the blended sums are the ones the in-memory path computes — no
seams, and no dependence on where the slide is cut. Tiles that straddle two blocks are run
by both (the cost of independent blocks: about (n+1)²/n² for n tiles per block side).

The image is standardized with each plane's own mean and SD, as in memory: one streaming
pass over the slide before the blocks run.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.io import block_chunks
from focuskit.refocus._model import Refocuser

__all__ = ["refocus_lazy", "worker_refocuser"]

_MODELS: dict[tuple[str, int], Refocuser] = {}
_MODELS_LOCK = threading.Lock()


def worker_refocuser(spec: str, threads: int = 1) -> Refocuser:
    """The model ``spec`` loaded once in this process (each Dask worker keeps its own).

    Blocks are tasks, and a task may run in another process or on another machine: it
    names its model by ``spec`` rather than carrying the networks, and the first task a
    worker runs loads it; the later ones reuse it.

    Parameters
    ----------
    spec : str
        ``builtin:NAME`` or a model folder (which every worker must see).
    threads : int, optional
        Torch threads per task, set for the whole process (the model leaves it alone).

    Returns
    -------
    refocuser : Refocuser
        The loaded model.
    """
    import torch

    key = (str(spec), int(threads))
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = Refocuser.load(spec, num_threads=int(threads))
            # Set once for the worker process: per-call set-and-restore from several worker
            # threads at once would race.
            model.num_threads = None
            _MODELS[key] = model
        torch.set_num_threads(int(threads))
    return model


def _refocus_block(
    block: np.ndarray,
    *,
    spec: str,
    threads: int,
    head: str,
    geometry: tuple[int, int, int, int],
    image_shape: tuple[int, int],
    mean: np.ndarray,
    sd: np.ndarray,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """One output block (a Dask task): the core of ``block``, which carries a one-tile
    margin on every side that is not the slide's edge."""
    assert block_info is not None  # Dask passes it
    (z0, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    th, tw = geometry[:2]
    # boundary="none": the slide's own edges get no margin.
    origin = (y0 - th if y0 > 0 else 0, x0 - tw if x0 > 0 else 0)
    model = worker_refocuser(spec, threads)
    out = np.empty((block.shape[0], y1 - y0, x1 - x0), dtype=np.float32)
    for k in range(block.shape[0]):
        z = z0 + k
        plane = np.asarray(block[k], dtype=np.float32)
        if not np.isfinite(plane).all():
            raise ConfigError(
                f"plane {z} holds NaN or inf in the block at y {y0}:{y1}, x {x0}:{x1}; "
                "replace them (e.g. with the background) before refocusing"
            )
        work = (plane - mean[z]) / sd[z]
        blended = model.blend_tiles(work, head, geometry, image_shape, origin, ((y0, y1), (x0, x1)))
        if head == "generator":
            blended = blended * sd[z] + mean[z]
        out[k] = blended
    return out


def _block_moments(block: np.ndarray) -> np.ndarray:
    """(count, mean, M2, min, max) of one block, in float64 (a Dask task)."""
    x = np.asarray(block, dtype=np.float64)
    mean = x.mean()
    return np.array(
        [[[[x.size, mean, float(((x - mean) ** 2).sum()), x.min(), x.max()]]]], dtype=np.float64
    )


def _plane_statistics(planes: Any) -> tuple[np.ndarray, ...]:
    """Each plane's mean, SD, min and max, as Refocuser.refocus standardizes the whole image.

    One small task per block returns its moments, combined here (Chan et al.'s pairwise
    update): a float64 copy of a block lives only inside its task, whatever the slide size.
    """
    import dask.array as da

    grid = tuple(len(c) for c in planes.chunks)
    moments = da.map_blocks(
        _block_moments,
        planes,
        chunks=((1,) * grid[0], (1,) * grid[1], (1,) * grid[2], (5,)),
        new_axis=3,
        dtype=np.float64,
        meta=np.empty((0, 0, 0, 0), dtype=np.float64),
    ).compute()
    z = planes.shape[0]
    m = moments.reshape(z, -1, 5)
    mean, sd, lo, hi = (np.empty(z) for _ in range(4))
    for k in range(z):
        n, mu, m2 = 0.0, 0.0, 0.0
        for nb, mb, m2b, _, _ in m[k]:
            delta = mb - mu
            total = n + nb
            mu += delta * nb / total
            m2 += m2b + delta * delta * n * nb / total
            n = total
        mean[k], sd[k] = mu, np.sqrt(m2 / n)
        lo[k], hi[k] = m[k, :, 3].min(), m[k, :, 4].max()
    return mean, sd, lo, hi


def refocus_lazy(
    planes: Any,
    model: str,
    *,
    tile: int = 512,
    overlap: int | None = None,
    block: int = 2048,
    head: str = "generator",
    threads: int = 1,
) -> Any:
    """Refocus (or map the defocus of) a lazy (Z, Y, X) image block by block.

    The same result as :meth:`Refocuser.refocus` (``head="dpm"``:
    :meth:`Refocuser.defocus_map`) plane by plane on the whole image, to float rounding,
    without holding more than a block and its margin per task.

    Parameters
    ----------
    planes : dask.array.Array
        (Z, Y, X) real pixels; each plane at least one tile in both axes.
    model : str
        ``builtin:NAME`` or a model folder, loaded once per worker.
    tile : int, optional
        Tile side (pixels, a multiple of 32).
    overlap : int, optional
        Tile overlap blended (pixels; default min(64, tile/4)).
    block : int, optional
        Output block side (pixels; at least a tile): the unit of work, of writing and of
        resuming.
    head : {'generator', 'dpm'}, optional
        The refocused image (default) or the defocus map (µm).
    threads : int, optional
        Torch threads per task.

    Returns
    -------
    result : dask.array.Array
        float32 (Z, Y, X), chunked ``(1, block, block)`` (a remainder shorter than a tile
        joined to the block before it).

    Raises
    ------
    ConfigError
        If the tile or overlap is invalid, a plane is smaller than a tile, constant, or
        holds NaN/inf (found when the statistics are computed).
    """
    import dask.array as da

    if planes.ndim != 3:
        raise ConfigError(f"refocus_lazy needs (Z, Y, X) planes, got shape {planes.shape}")
    if not np.issubdtype(planes.dtype, np.number) or np.issubdtype(
        planes.dtype, np.complexfloating
    ):
        raise ConfigError(f"refocusing needs real-valued pixels, got dtype {planes.dtype}")
    r = worker_refocuser(model, threads)
    h, w = (int(s) for s in planes.shape[1:])
    geometry = r.tile_geometry((h, w), tile, overlap, head)
    th, tw = geometry[:2]
    if h < th or w < tw:
        raise ConfigError(
            f"the image is {h}×{w} pixels, smaller than one {tile}-pixel tile; "
            "refocus it in memory (without --chunked)"
        )
    block = max(int(block), th, tw)
    planes = planes.rechunk((1, block_chunks(h, block, th), block_chunks(w, block, tw)))
    mean, sd, lo, hi = _plane_statistics(planes)
    for z in range(planes.shape[0]):
        if not (np.isfinite(lo[z]) and np.isfinite(hi[z])):
            raise ConfigError(
                f"plane {z} contains NaN or inf; replace them (e.g. with the background) "
                "before refocusing"
            )
        if lo[z] == hi[z]:
            raise ConfigError(
                f"plane {z} is constant ({lo[z]:g} everywhere): there is nothing to refocus "
                "— check the file or the channel"
            )
    mean32 = mean.astype(np.float32)
    sd32 = np.maximum(sd, 1e-6 * np.maximum(np.abs(mean), 1.0)).astype(np.float32)
    return da.map_overlap(
        _refocus_block,
        planes,
        depth={0: 0, 1: th, 2: tw},
        boundary="none",
        trim=False,
        chunks=planes.chunks,
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
        spec=str(model),
        threads=int(threads),
        head=head,
        geometry=geometry,
        image_shape=(h, w),
        mean=mean32,
        sd=sd32,
    )
