"""Chunk-wise work (focuskit.io._chunked): lazy reading, the resumable OME-Zarr writer and
where the blocks run. A plain NumPy block function stands in for a model here;
tests/refocus/test_refocus_chunked.py runs Deep-R through it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from focuskit._errors import ConfigError, StackFileError
from focuskit.io import (
    FocalStack,
    block_chunks,
    compute_context,
    open_lazy,
    read_stack,
    write_chunked,
    write_stack,
)

da = pytest.importorskip("dask.array")

PX = 0.25


def _image(shape: tuple[int, int, int] = (2, 300, 260), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, size=shape, dtype=np.uint16)


def _result(image: np.ndarray, block: int = 64) -> da.Array:
    data = da.from_array(image, chunks=(1, block, block))
    return (data.astype(np.float32) * 0.5 + 1.0).astype(np.float32)


def _fails_at(
    block: np.ndarray, bad: tuple[int, ...], block_info: dict | None = None
) -> np.ndarray:
    """×0.5 + 1, but a ConfigError for the block at ``bad`` (a killed or broken task)."""
    assert block_info is not None
    if tuple(block_info[None]["chunk-location"]) == bad:
        raise ConfigError("block broke on purpose")
    return (block.astype(np.float32) * 0.5 + 1.0).astype(np.float32)


def test_block_chunks_join_a_short_remainder_to_the_block_before() -> None:
    assert block_chunks(5000, 2048, 512) == (2048, 2048, 904)
    assert block_chunks(4200, 2048, 512) == (2048, 2152)  # 104 < 512: joined
    assert block_chunks(700, 2048, 512) == (700,)
    assert block_chunks(4096, 2048, 512) == (2048, 2048)


def test_chunked_output_is_ngff_with_pixel_size_and_z_and_refuses_a_second_write(
    tmp_path: Path,
) -> None:
    image = _image()
    out = tmp_path / "out.ome.zarr"
    seen: list[tuple[int, int]] = []
    with compute_context(2, None):
        done = write_chunked(
            _result(image),
            out,
            pixel_size_um=PX,
            z_um=[-1.0, 1.5],
            metadata={"why": "test"},
            job={"input": "x"},
            progress=lambda d, t: seen.append((d, t)),
        )
    assert (done.chunks, done.skipped, done.written) == (2 * 5 * 5, 0, 50)
    assert seen[-1] == (50, 50)
    stack = read_stack(out)
    np.testing.assert_array_equal(stack.data, image.astype(np.float32) * 0.5 + 1.0)
    assert stack.pixel_size_um == PX
    assert list(stack.z_um) == [-1.0, 1.5]
    assert stack.metadata == {"why": "test"}
    attrs = json.loads((out / ".zattrs").read_text())
    assert attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        2.5,
        PX,
        PX,
    ]
    assert "focuskit_incomplete" not in attrs
    assert not (out / "focuskit-progress").exists()
    with pytest.raises(StackFileError, match="already exists"):
        write_chunked(_result(image), out, pixel_size_um=PX)
    with pytest.raises(StackFileError, match="complete already"):
        write_chunked(_result(image), out, pixel_size_um=PX, job={"input": "x"}, resume=True)
    write_chunked(_result(image) * 0, out, pixel_size_um=PX, overwrite=True)
    assert float(np.abs(read_stack(out).data).max()) == 0.0


def test_a_failed_run_is_kept_incomplete_refused_by_readers_and_finished_by_resume(
    tmp_path: Path,
) -> None:
    image = _image((1, 256, 256))
    data = da.from_array(image, chunks=(1, 64, 64))
    out = tmp_path / "out.ome.zarr"
    broken = data.map_blocks(_fails_at, (0, 2, 3), dtype=np.float32)
    with compute_context(1, None), pytest.raises(ConfigError, match="--resume") as info:
        write_chunked(broken, out, pixel_size_um=PX, job={"input": "a"})
    assert "block broke on purpose" in str(info.value)
    markers = {p.name for p in (out / "focuskit-progress").iterdir()}
    assert "0.2.3" not in markers and len(markers) < 16
    with pytest.raises(StackFileError, match=r"incomplete.*rerun .* with --resume") as refused:
        read_stack(out)
    assert "\n" not in str(refused.value)
    # Not resumed: refused like any existing output; resumed with other settings: refused.
    with pytest.raises(StackFileError, match="already exists"):
        write_chunked(_result(image), out, pixel_size_um=PX, job={"input": "a"})
    with pytest.raises(StackFileError, match=r"other settings .*input"):
        write_chunked(_result(image), out, pixel_size_um=PX, job={"input": "b"}, resume=True)
    with compute_context(2, None):
        done = write_chunked(_result(image), out, pixel_size_um=PX, job={"input": "a"}, resume=True)
    assert done.skipped == len(markers) and done.written == 16 - len(markers)
    np.testing.assert_array_equal(read_stack(out).data, image.astype(np.float32) * 0.5 + 1.0)


def test_blocks_run_on_a_distributed_cluster_with_progress(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    image = _image((1, 200, 200))
    out = tmp_path / "out.ome.zarr"
    seen: list[tuple[int, int]] = []
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        compute_context(None, cluster.scheduler_address) as compute,
    ):
        assert compute.client is not None and compute.workers == 2
        done = write_chunked(
            _result(image), out, pixel_size_um=PX, progress=lambda d, t: seen.append((d, t))
        )
    assert done.written == 16 and seen[-1] == (16, 16)
    np.testing.assert_array_equal(read_stack(out).data, image.astype(np.float32) * 0.5 + 1.0)


def test_an_unreachable_scheduler_and_zero_workers_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 1"), compute_context(0, None):
        pass
    with (
        pytest.raises(ConfigError, match="cannot reach the Dask scheduler"),
        compute_context(None, "tcp://127.0.0.1:1"),
    ):
        pass


def _zarr_input(tmp_path: Path, shape: tuple[int, int, int] = (1, 1500, 300)) -> Path:
    path = tmp_path / "slide.ome.zarr"
    write_stack(
        FocalStack(_image(shape), [0.0] * 0 + [float(k) for k in range(shape[0])], PX), path
    )
    return path


def test_a_missing_input_chunk_is_refused_by_name_before_any_work(tmp_path: Path) -> None:
    path = _zarr_input(tmp_path)
    (path / "0" / "0" / "1" / "0").unlink()
    with pytest.raises(StackFileError, match=r"chunk 0/0/1/0 is missing \(of 2\)"):
        open_lazy(path)


def test_a_corrupt_input_chunk_is_named_and_the_partial_output_kept_for_resume(
    tmp_path: Path,
) -> None:
    path = _zarr_input(tmp_path)
    (path / "0" / "0" / "1" / "0").write_bytes(b"not zlib at all")
    lazy = open_lazy(path)
    assert isinstance(lazy.planes, da.Array) and lazy.pixel_size_um == PX
    out = tmp_path / "out.ome.zarr"
    result = lazy.planes.rechunk((1, 512, 300)).astype(np.float32)
    with compute_context(1, None), pytest.raises(StackFileError) as info:
        write_chunked(result, out, pixel_size_um=PX, protect=[path])
    message = str(info.value)
    assert "chunk 0/0/1/0" in message and "--resume" in message and "\n" not in message
    assert out.is_dir()
    with pytest.raises(StackFileError, match="incomplete"):
        read_stack(out)


def test_an_input_is_never_the_output(tmp_path: Path) -> None:
    path = _zarr_input(tmp_path)
    lazy = open_lazy(path)
    with pytest.raises(StackFileError, match="input of this command"):
        write_chunked(
            lazy.planes.astype(np.float32), path, pixel_size_um=PX, protect=[path], overwrite=True
        )
    with pytest.raises(StackFileError, match="input of this command"):
        write_chunked(
            lazy.planes.astype(np.float32), path, pixel_size_um=PX, protect=[path], resume=True
        )
    assert read_stack(path).shape == (1, 1500, 300)


def test_a_tiled_tiff_is_read_lazily_tile_by_tile(tmp_path: Path) -> None:
    image = _image((1, 700, 600))[0]
    path = tmp_path / "slide.ome.tif"
    tifffile.imwrite(
        path, image, tile=(256, 256), ome=True, metadata={"PhysicalSizeX": PX, "PhysicalSizeY": PX}
    )
    lazy = open_lazy(path)
    assert isinstance(lazy.planes, da.Array)
    assert lazy.planes.shape == (1, 700, 600) and lazy.pixel_size_um == PX
    assert lazy.planes.chunks[1][0] == 1024 or lazy.planes.chunks[1] == (700,)
    np.testing.assert_array_equal(
        lazy.planes[0, 300:650, 100:500].compute(), image[300:650, 100:500]
    )
