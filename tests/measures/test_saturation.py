"""Saturation masking: a clipped pixel and the kernel positions that touch it are excluded."""

from __future__ import annotations

import numpy as np
import pytest

from focuskit import FocuskitError
from focuskit.measures import MEASURES, score, tenengrad


def _texture(seed: int = 0, shape: tuple[int, int] = (48, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1000 + 500 * rng.random(shape)).astype(np.uint16)


MASKABLE = [n for n, m in MEASURES.items() if m.masked is not None]


def test_a_saturated_plateau_contributes_nothing_when_masked() -> None:
    # A flat background with one clipped block: the only gradients are the block's rim.
    img = np.full((40, 40), 100, np.uint16)
    img[10:20, 10:20] = np.iinfo(np.uint16).max
    assert score(img, "tenengrad") > 0  # unmasked: the rim counts
    assert score(img, "tenengrad", saturation="auto") == 0.0


@pytest.mark.parametrize("name", MASKABLE)
def test_masked_scores_do_not_depend_on_what_lies_under_the_mask(name: str) -> None:
    a = _texture(1)
    b = a.copy()
    # Two different saturated shapes inside the same block, plus the same 1-pixel ring
    # around them: every position whose kernel touches the block is masked in both.
    a[20:30, 20:30] = 4000
    b[20:30, 20:30] = 4000
    a[22:28, 22:28] = 5000
    b[21:26, 23:29] = 5000
    assert score(a, name, saturation=4000) == pytest.approx(score(b, name, saturation=4000))
    assert score(a, name) != pytest.approx(score(b, name))


@pytest.mark.parametrize("name", MASKABLE)
def test_without_saturated_pixels_masking_changes_nothing(name: str) -> None:
    stack = np.stack([_texture(s) for s in range(3)])
    assert np.array_equal(score(stack, name, saturation="auto"), score(stack, name))


def test_masked_tenengrad_is_the_mean_over_unsaturated_footprints() -> None:
    img = _texture(2).astype(np.float64)
    img[5, 7] = img[30, 31] = 9000.0
    valid = np.ones((46, 46), bool)  # interior positions (Y−2, X−2)
    for y, x in ((5, 7), (30, 31)):
        valid[max(y - 2, 0) : y + 1, max(x - 2, 0) : x + 1] = False  # 3×3 footprints hit
    sx = (img[:, 2:] - img[:, :-2])[:-2] + 2 * (img[:, 2:] - img[:, :-2])[1:-1]
    sx += (img[:, 2:] - img[:, :-2])[2:]
    sy = (
        (img[2:] - img[:-2])[:, :-2]
        + 2 * (img[2:] - img[:-2])[:, 1:-1]
        + (img[2:] - img[:-2])[:, 2:]
    )
    g2 = (sx / 8) ** 2 + (sy / 8) ** 2
    assert score(img, "tenengrad", saturation=9000) == pytest.approx(g2[valid].mean())
    assert tenengrad(img) == pytest.approx(g2.mean())


def test_auto_uses_the_integer_maximum_and_leaves_float_images_alone() -> None:
    img = _texture(3, (32, 32)).astype(np.uint8)  # wraps: any values, none at 255 yet
    img[img == 255] = 254
    img[8:12, 8:12] = 255
    assert score(img, "brenner", saturation="auto") != score(img, "brenner")
    as_float = img.astype(np.float32)
    assert score(as_float, "brenner", saturation="auto") == score(as_float, "brenner")


@pytest.mark.parametrize("name", [n for n, m in MEASURES.items() if m.masked is None])
def test_measures_that_cannot_mask_refuse_an_explicit_level(name: str) -> None:
    kw = {"pixel_size_um": 0.3, "na": 0.5, "wavelength_um": 0.5}
    with pytest.raises(FocuskitError, match="cannot exclude saturated pixels"):
        score(_texture(), name, saturation=1200.0, **kw)


@pytest.mark.parametrize("bad", ["max", float("nan"), True])
def test_bad_saturation_is_one_clear_error(bad: object) -> None:
    with pytest.raises(FocuskitError, match="saturation must be"):
        score(_texture(), "tenengrad", saturation=bad)  # type: ignore[arg-type]
