"""Slide QC in the focus layer: per-tile values over Dask, the robust focal surface, flags."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.focus import (
    MeasureTileEstimator,
    fit_focal_surface,
    slide_focus_map,
    surface_terms,
    tile_grid,
    tile_values,
)


def test_tile_values_match_numpy_blocks_over_misaligned_chunks() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((1000, 1300)).astype(np.float32)
    lazy = da.from_array(image, chunks=(300, 700))  # not the tile grid
    calls = []
    lock = threading.Lock()

    def mean_and_max(tile: np.ndarray) -> tuple[float, float]:
        with lock:
            calls.append(tile.shape)
        return float(tile.mean()), float(tile.max())

    values = tile_values(lazy, 256, mean_and_max, n_out=2)
    assert values.shape == (3, 5, 2)  # the 232- and 20-pixel remainders are left out
    assert set(calls) == {(256, 256)} and len(calls) == 15
    for r in range(3):
        for c in range(5):
            block = image[r * 256 : (r + 1) * 256, c * 256 : (c + 1) * 256]
            assert values[r, c, 0] == pytest.approx(block.mean(), rel=1e-6)
            assert values[r, c, 1] == block.max()


def test_tile_grid_refuses_tiles_that_do_not_fit() -> None:
    assert tile_grid((1, 600, 900), 256) == (2, 3)
    with pytest.raises(ConfigError, match="larger than the image"):
        tile_grid((600, 900), 700)
    with pytest.raises(ConfigError, match="≥ 16"):
        tile_grid((600, 900), 8)


def _grid(rows: int = 12, cols: int = 16, step: float = 166.4):
    return np.meshgrid(
        (np.arange(rows) + 0.5) * step, (np.arange(cols) + 0.5) * step, indexing="ij"
    )


def test_plane_fit_shrugs_off_a_fifth_of_outlier_tiles() -> None:
    yy, xx = _grid()
    rng = np.random.default_rng(1)
    truth = 4.0 + 0.0031 * yy - 0.0087 * xx
    z = truth + rng.normal(0, 0.15, yy.shape)
    bad = rng.random(yy.shape) < 0.2  # folds and debris: far off, all to one side
    z[bad] += rng.uniform(8, 25, bad.sum())
    surface = fit_focal_surface(z, yy, xx)
    c = surface.coefficients
    assert c["y"] == pytest.approx(0.0031, abs=3e-4)
    assert c["x"] == pytest.approx(-0.0087, abs=3e-4)
    assert c["1"] == pytest.approx(4.0, abs=0.2)
    assert surface.rms < 0.25
    assert not surface.inliers[bad].any()  # every outlier lost its weight
    assert surface.tilt_deg == pytest.approx(
        math.degrees(math.atan(math.hypot(0.0031, 0.0087))), rel=0.05
    )
    # The same data through plain least squares are pulled far off: the test can fail.
    design = np.column_stack([np.ones(z.size), yy.ravel(), xx.ravel()])
    plain, *_ = np.linalg.lstsq(design, z.ravel(), rcond=None)
    assert abs(plain[0] - 4.0) > 1.0


def test_quadric_fit_recovers_a_bowed_slide_about_the_corner() -> None:
    yy, xx = _grid()
    truth = 1.0 + 0.002 * yy + 0.001 * xx + 2e-6 * (xx - 1300) ** 2 - 1e-6 * yy * xx
    surface = fit_focal_surface(truth, yy, xx, order=2)
    assert list(surface.coefficients) == ["1", "y", "x", "y^2", "y*x", "x^2"]
    np.testing.assert_allclose(surface(yy, xx), truth, atol=1e-6)
    assert surface.coefficients["x^2"] == pytest.approx(2e-6, rel=1e-6)
    assert surface.coefficients["y*x"] == pytest.approx(-1e-6, rel=1e-6)
    assert surface.coefficients["x"] == pytest.approx(0.001 - 2 * 2e-6 * 1300, rel=1e-6)


def test_surface_needs_enough_tiles_and_a_known_order() -> None:
    yy, xx = _grid(2, 2)
    z = np.array([[1.0, 2.0], [np.nan, np.nan]])
    with pytest.raises(ConfigError, match="2 tiles with a value"):
        fit_focal_surface(z, yy, xx)
    with pytest.raises(ConfigError, match="order"):
        surface_terms(4)


@dataclass(frozen=True)
class _ZFromPixels:
    """Reads a tile's "defocus" from its mean pixel value (NaN pixels: no signal)."""

    kind: str = "signed-z"
    lower_is_sharper: bool = True

    def __call__(self, tile: np.ndarray) -> tuple[float, float]:
        z = float(np.mean(tile))
        return z, z


def test_slide_map_flags_defocused_off_surface_and_empty_tiles() -> None:
    tile, px = 64, 0.5
    rows, cols = 6, 8
    yy, xx = _grid(rows, cols, tile * px)
    z = 0.02 * xx - 0.01 * yy - 2.0  # crosses focus
    z[2, 3] += 6.0  # a fold
    image = np.repeat(np.repeat(z, tile, axis=0), tile, axis=1)
    image[4 * tile : 5 * tile, 0:tile] = np.nan  # an empty tile
    fmap = slide_focus_map(image, tile, _ZFromPixels(), pixel_size_um=px, max_defocus_um=1.0)
    assert fmap.surface.coefficients["x"] == pytest.approx(0.02, abs=1e-9)
    assert fmap.surface.coefficients["y"] == pytest.approx(-0.01, abs=1e-9)
    assert fmap.flags[2, 3] == "defocus"  # |z| above the limit wins over off-surface
    assert fmap.flags[4, 0] == "no-signal"
    expected = np.abs(z) > 1.0
    expected[4, 0] = False
    np.testing.assert_array_equal(fmap.flagged, expected)
    summary = fmap.summary()
    assert summary["flagged"] == int(expected.sum())
    assert summary["by_flag"]["no-signal"] == 1
    assert summary["surface"]["tilt_deg"] == pytest.approx(
        math.degrees(math.atan(math.hypot(0.02, 0.01))), rel=1e-6
    )
    rows_out = fmap.rows()
    assert len(rows_out) == rows * cols
    assert rows_out[3]["x_um"] == pytest.approx(3.5 * tile * px)


def test_off_surface_flags_only_the_blurry_side_of_a_score() -> None:
    rng = np.random.default_rng(2)
    image = rng.normal(1000, 100, (512, 512)).astype(np.float32)
    from scipy.ndimage import gaussian_filter

    image[128:192, 256:320] = gaussian_filter(image[128:192, 256:320], 3)  # one blurred tile
    image[320:384, 64:128] *= 1.0  # untouched
    fmap = slide_focus_map(image, 64, MeasureTileEstimator("tenengrad"), pixel_size_um=0.325)
    assert fmap.kind == "score" and np.isnan(fmap.z_um).all()
    assert fmap.flags[2, 4] == "off-surface"
    assert int(fmap.flagged.sum()) == 1


def _tilted_stack(seed: int):  # type: ignore[no-untyped-def]
    """A 256² stack of nuclei tilted by 1°, −4…+4 µm every 1 µm (deepr-20x-fluor)."""
    from focuskit.io import FocalStack
    from focuskit.simulate import simulate_stack

    return FocalStack.from_simulation(
        simulate_stack(
            "deepr-20x-fluor",
            sample="nuclei",
            size=256,
            z_um=np.arange(-4.0, 4.1, 1.0),
            photons=1000,
            seed=seed,
            tilt_deg=1.0,
        )
    )


def test_the_tile_focus_map_of_a_lazy_stack_is_the_in_memory_one() -> None:
    import dask.array as da

    from focuskit.focus import focus_map
    from focuskit.io import FocalStack

    stack = _tilted_stack(seed=1)
    whole = focus_map(stack, 32)
    lazy = FocalStack(
        da.from_array(np.asarray(stack.data), chunks=(1, 100, 100)),
        stack.z_um,
        stack.pixel_size_um,
        optics=stack.optics,
    )
    # Regions of 3 × 3 tiles that do not divide the 8 × 8 grid nor match the chunks.
    parts = focus_map(lazy, 32, region_px=96)
    assert np.array_equal(parts.z_focus_um, whole.z_focus_um)
    assert np.array_equal(parts.confidence, whole.confidence)
    assert np.ptp(whole.z_focus_um) > 0  # the tilt shows: the test compares real maps


def test_find_focus_tile_map_on_workers_matches_the_plain_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from conftest import run_cli

    from focuskit.io import write_stack

    path = write_stack(_tilted_stack(seed=2), tmp_path / "s.ome.zarr")
    code, plain, err = run_cli("find-focus", path, "--tile", "64", "--json")
    assert code == 0, err
    code, parts, err = run_cli("find-focus", path, "--tile", "64", "--workers", "2", "--json")
    assert code == 0, err
    assert json.loads(parts)["focus_map"] == json.loads(plain)["focus_map"]
