"""Deep-R training pairs from focal stacks: registration, EDOF, SSIM focus, tiles, files, splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from focuskit import ConfigError
from focuskit.focus import edof_image, focus_plane_by_ssim, register_stack
from focuskit.io import FocalStack
from focuskit.refocus import (
    RefocusTiles,
    simulate_refocus_tiles,
    split_tiles_by_field,
    tile_origins,
    tiles_from_stack,
)
from focuskit.simulate import Drift, move_image, simulate_stack

Z15 = np.round(np.arange(-7, 8) * 0.2, 6)  # 15 planes, −1.4 … +1.4 µm


def _texture(n: int = 192, seed: int = 0) -> np.ndarray:
    """A smooth random texture with structure at all positions (sum of blurred noise scales)."""
    rng = np.random.default_rng(seed)
    img = sum(
        ndimage.gaussian_filter(rng.normal(size=(n, n)), s, mode="wrap") * s for s in (1.5, 4, 10)
    )
    return (img - img.min()).astype(np.float32) + 1.0


def _inverse(dy: float, dx: float, deg: float) -> np.ndarray:
    """The (dy, dx, deg) that undoes ``move_image(·, dy, dx, deg)``
    (rotate about the centre, then shift)."""
    th = math.radians(-deg)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    return np.array([*(-(rot @ np.array([dy, dx]))), -deg])


def _tiles(n_fields: int, per_field: int = 2, planes: int = 5, t: int = 8) -> RefocusTiles:
    rng = np.random.default_rng(1)
    n = n_fields * per_field
    z = np.arange(planes) * 0.5
    focus = rng.integers(0, planes, n)
    return RefocusTiles(
        [rng.random((planes, t, t), dtype=np.float32) for _ in range(n)],
        [z - z[f] for f in focus],
        focus,
        np.repeat(np.arange(n_fields), per_field),
        0.1625,
        {"fields": [{"field": i, "sample": "beads"} for i in range(n_fields)], "seed": 1},
    )


# ------------------------------------------------------------------------ registration


@pytest.mark.parametrize("rotation", [True, False])
def test_registration_undoes_a_known_shift_and_rotation(rotation: bool) -> None:
    img = _texture()
    dy, dx, deg = 3.4, -2.1, 1.5 if rotation else 0.0
    moved = move_image(img, dy, dx, deg)
    registered, transforms = register_stack(np.stack([img, moved]), reference=0, rotation=rotation)
    assert transforms.shape == (2, 3) and registered.dtype == np.float32
    np.testing.assert_array_equal(transforms[0], 0)
    np.testing.assert_array_equal(registered[0], img)
    want = _inverse(dy, dx, deg)
    assert np.abs(transforms[1, :2] - want[:2]).max() < 0.2  # px
    assert abs(transforms[1, 2] - want[2]) < 0.2  # deg
    # The transform is applied in Drift's convention, and it puts the plane back.
    np.testing.assert_allclose(registered[1], move_image(moved, *transforms[1]), atol=1e-4)
    inner = (slice(24, -24), slice(24, -24))
    assert np.abs(registered[1] - img)[inner].mean() < 0.02 * np.abs(moved - img)[inner].mean()


def test_registration_chains_neighbours_onto_the_middle_plane() -> None:
    img = _texture(160, seed=2)
    offsets = Drift(step_um=(0.4, -0.3), jitter_um=0.3, rotation_deg_per_plane=0.2).offsets(
        7, seed=4
    )
    stack = np.stack([move_image(img, dy, dx, r) for dy, dx, r in offsets])
    registered, transforms = register_stack(stack)
    inner = (slice(30, -30), slice(30, -30))
    for k in range(7):  # every plane lands on the middle one (the default reference)
        assert np.abs(registered[k] - stack[3])[inner].max() < 0.05 * float(np.ptp(img))
    assert transforms[0, 2] == pytest.approx(0.6, abs=0.05)  # 3 planes × 0.2° back
    assert transforms[6, 2] == pytest.approx(-0.6, abs=0.05)


def test_registration_refuses_bad_stacks() -> None:
    with pytest.raises(ConfigError, match="3-D"):
        register_stack(np.zeros((64, 64)))
    bad = np.ones((3, 64, 64), np.float32)
    bad[1, 5, 5] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        register_stack(bad)
    with pytest.raises(ConfigError, match="reference"):
        register_stack(np.ones((3, 64, 64)), reference=3)
    with pytest.raises(ConfigError, match="3-D"):
        edof_image(np.zeros((64, 64)))


# ------------------------------------------------------------------------ EDOF & focus


def test_edof_takes_each_region_from_its_sharpest_plane() -> None:
    sharp = _texture(96, seed=3)
    blurred = ndimage.gaussian_filter(sharp, 3)
    left, right = np.s_[:, :40], np.s_[:, 56:]
    stack = np.stack([blurred, blurred, blurred]).copy()
    stack[0][left] = sharp[left]
    stack[2][right] = sharp[right]
    edof = edof_image(stack)
    assert edof.shape == sharp.shape and edof.dtype == np.float32
    np.testing.assert_array_equal(edof[3:-3, 3:36], sharp[3:-3, 3:36])
    np.testing.assert_array_equal(edof[3:-3, 60:-3], sharp[3:-3, 60:-3])


@pytest.mark.parametrize(("sample", "focus"), [("beads", 0.6), ("fluorescent-tissue", -0.8)])
def test_focus_by_ssim_finds_the_in_focus_plane(sample: str, focus: float) -> None:
    opts = {"density_per_100um2": 10.0, "diameter_um": 0.3} if sample == "beads" else None
    sim = simulate_stack(
        "deepr-40x-fluor",
        sample=sample,
        sample_options=opts,
        size=128,
        z_um=Z15,
        focus_z_um=focus,
        photons=2000,
        seed=3,
    )
    registered, _ = register_stack(sim.data)
    k = focus_plane_by_ssim(registered, edof_image(registered))
    truth = int(np.argmin(np.abs(Z15 - focus)))
    assert truth != len(Z15) // 2
    assert abs(k - truth) <= 1


# ------------------------------------------------------------------------------ tiles


def test_tile_origins_are_a_centred_row_major_grid() -> None:
    assert tile_origins((256, 256), 128) == [(0, 0), (0, 128), (128, 0), (128, 128)]
    assert tile_origins((300, 260), 128) == [(22, 2), (22, 130), (150, 2), (150, 130)]
    with pytest.raises(ConfigError, match="larger than"):
        tile_origins((100, 300), 128)


@pytest.fixture(scope="module")
def stack256() -> FocalStack:
    sim = simulate_stack(
        "deepr-40x-fluor",
        sample="fluorescent-tissue",
        size=256,
        z_um=Z15,
        focus_z_um=0.3,
        photons=2000,
        seed=5,
    )
    return FocalStack(sim.data, sim.z_um, sim.pixel_size_um, sim.optics, sim.focus_z_um)


def test_tiles_from_stack_cuts_four_tiles_with_their_pairs(stack256: FocalStack) -> None:
    tiles = tiles_from_stack(stack256, tile=128, z_range_um=0.6, field=7)
    assert len(tiles) == 4 and tiles.tile == 128
    np.testing.assert_array_equal(tiles.field, 7)
    assert tiles.pixel_size_um == stack256.pixel_size_um
    assert tiles.info["optics"]["objective"]["na"] == 0.95
    for planes, d, f in zip(tiles.planes, tiles.defocus_um, tiles.focus_index, strict=True):
        assert planes.dtype == np.float32 and planes.shape[1:] == (128, 128)
        assert planes.shape[0] == d.size and d[f] == 0.0
        assert np.all(np.abs(d) <= 0.6 + 1e-6) and np.all(np.diff(d) > 0)
    chosen = np.array(tiles.info["fields"][0]["focus_z_um"])
    assert np.all(np.abs(chosen - 0.3) <= 0.2 + 1e-9)  # true focus 0.3 µm: ±1 plane
    pairs = tiles.pairs(0.6)
    assert pairs.shape == (sum(d.size for d in tiles.defocus_um), 2)
    for i, k in pairs:
        assert abs(tiles.defocus_um[i][k]) <= 0.6 + 1e-6
    np.testing.assert_array_equal(
        tiles.pairs(0.0), np.column_stack([np.arange(4), tiles.focus_index])
    )
    assert len(tiles.pairs(0.25)) == 4 * 3  # the focus plane and one on each side at 0.2 µm


def test_unregistered_tiles_are_the_raw_stack_cut(stack256: FocalStack) -> None:
    tiles = tiles_from_stack(stack256, tile=128, register=False)
    assert [p.shape[0] for p in tiles.planes] == [15] * 4
    np.testing.assert_array_equal(
        tiles.planes[3], np.asarray(stack256.data, np.float32)[:, 128:, 128:]
    )
    with pytest.raises(ConfigError, match="larger than"):
        tiles_from_stack(stack256, tile=512)


def test_save_load_round_trip_is_identical(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tiles = _tiles(3)
    tiles.planes[1] = tiles.planes[1][:3]  # ragged: tiles may keep different numbers of planes
    tiles.defocus_um[1] = tiles.defocus_um[1][:3]
    tiles.focus_index[1] = 2
    path = tmp_path / "pairs.npz"
    tiles.save(path)
    back = RefocusTiles.load(path)
    assert (
        len(back) == len(tiles)
        and back.pixel_size_um == tiles.pixel_size_um
        and back.info == tiles.info
    )
    for a, b in zip(tiles.planes, back.planes, strict=True):
        np.testing.assert_array_equal(a, b)
        assert b.dtype == np.float32
    for a, b in zip(tiles.defocus_um, back.defocus_um, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.focus_index, tiles.focus_index)
    np.testing.assert_array_equal(back.field, tiles.field)
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.npz"]  # no temporary left behind
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="regenerate"):
        RefocusTiles.load(tmp_path / "junk.npz")


def test_split_keeps_each_field_on_one_side_and_concat_renumbers() -> None:
    tiles = _tiles(10)
    train, val = split_tiles_by_field(tiles, 0.15, seed=3)
    assert len(train) + len(val) == len(tiles)
    assert not set(train.field.tolist()) & set(val.field.tolist())
    assert len(np.unique(val.field)) == 2  # round(0.15 × 10)
    assert {r["field"] for r in val.info["fields"]} == set(val.field.tolist())
    with pytest.raises(ConfigError, match="two fields"):
        split_tiles_by_field(_tiles(1))
    both = RefocusTiles.concat([tiles, tiles])
    assert len(both) == 2 * len(tiles)
    np.testing.assert_array_equal(both.field, np.repeat(np.arange(20), 2))
    assert [r["field"] for r in both.info["fields"]] == list(range(20))
    sub = tiles.subset([4, 5])
    np.testing.assert_array_equal(sub.field, [2, 2])
    assert sub.planes[0] is tiles.planes[4]


def test_simulated_tiles_are_reproducible_and_cycle_samples() -> None:
    calls: list[tuple[int, int]] = []
    kwargs = {
        "samples": ("beads", "fluorescent-tissue"),
        "z_range_um": 0.4,
        "size": 96,
        "tile": 96,
        "seed": 2,
    }
    a = simulate_refocus_tiles(
        "deepr-40x-fluor", 2, progress=lambda i, n: calls.append((i, n)), **kwargs
    )
    assert calls == [(1, 2), (2, 2)]
    assert len(a) == 2 and a.tile == 96
    np.testing.assert_array_equal(a.field, [0, 1])
    assert a.info["z_um"] == pytest.approx(
        np.round(np.arange(-7, 8) * 0.2, 6)
    )  # ±(0.4 + 1) µm, 15 planes
    assert [r["sample"] for r in a.info["fields"]] == ["beads", "fluorescent-tissue"]
    for planes, d, f in zip(a.planes, a.defocus_um, a.focus_index, strict=True):
        assert np.all(np.abs(d) <= 0.4 + 1e-6) and d[f] == 0 and planes.shape[0] >= 3
        assert planes.min() >= 0 and planes.max() > 100  # camera counts, offset 100 ADU
    b = simulate_refocus_tiles("deepr-40x-fluor", 2, **kwargs)
    for x, y in zip(a.planes, b.planes, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ConfigError, match="fluorescent-tissue"):
        simulate_refocus_tiles("deepr-40x-fluor", 1, samples=("tissue",))
