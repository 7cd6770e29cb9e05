"""DeepFocus Fig. 4 machinery: trials, calibration on a simulated stack, error vs images."""

from __future__ import annotations

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.fewshot import calibrate as calibrate_stack
from focuskit.fewshot.analyses import (
    af_error_plot,
    af_error_vs_images,
    calibrate_simulated,
    error_table_rows,
    images_for_error,
    simulated_trials,
    split_stack,
    stack_trials,
    trial_scope,
)
from focuskit.io import FocalStack


def _contrast_blur(image: np.ndarray) -> np.ndarray:
    """A stand-in blur map: per 32² patch, 1 / (1 + gradient energy / mean²)."""
    img = np.asarray(image, dtype=np.float64)
    h, w = (s // 32 * 32 for s in img.shape)
    g = (
        np.diff(img[:h, : w + 1] if w < img.shape[1] else img[:h, :w], axis=1, append=img[:h, -1:])
        ** 2
    )
    patches = g[:h, :w].reshape(h // 32, 32, w // 32, 32).mean(axis=(1, 3))
    means = img[:h, :w].reshape(h // 32, 32, w // 32, 32).mean(axis=(1, 3))
    return 1.0 / (1.0 + patches / np.maximum(means, 1e-9) ** 2 * 100)


def test_trials_are_reproducible_and_cycle_sample_kinds() -> None:
    a, b = simulated_trials(6, seed=3), simulated_trials(6, seed=3)
    assert a == b
    assert [t.kind for t in a[:3]] == ["fluorescent-tissue", "beads", "image"]
    assert all(abs(t.start_z_um - t.focus_z_um) <= 60 for t in a)


def test_error_vs_images_on_a_small_simulated_scope(tmp_path) -> None:  # type: ignore[no-untyped-def]
    calibration = calibrate_simulated(_contrast_blur, size=128, z_um=np.arange(-120.0, 120.1, 8.0))
    assert abs(calibration.focus_z_um) < 8.0  # the stack's focus is at 0
    trials = simulated_trials(2, seed=1)
    scopes = [trial_scope(t, size=128) for t in trials]

    def maker(scope, start):  # type: ignore[no-untyped-def]
        def fresh():  # type: ignore[no-untyped-def]
            scope.move_to(start)
            scope.reset_counters()
            return scope

        return fresh

    result = af_error_vs_images(
        [maker(s, t.start_z_um) for s, t in zip(scopes, trials, strict=True)],
        [t.focus_z_um for t in trials],
        _contrast_blur,
        calibration,
        budgets=(3, 4),
        measures=("tenengrad",),
        brent_max_images=8,
    )
    assert result["errors"]["deepfocus"].shape == (2, 2)
    assert np.all(result["images"]["deepfocus"] == [[3, 4], [3, 4]])
    assert np.isfinite(result["errors"]["brent-tenengrad"]).all()
    rows = error_table_rows(result)
    assert {r["method"] for r in rows} == {"deepfocus", "brent-tenengrad"} and len(rows) == 4
    af_error_plot(result, tmp_path / "fig4.png")
    assert (tmp_path / "fig4.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="≥ 3"):
        af_error_vs_images(
            [maker(scopes[0], 0.0)], [0.0], _contrast_blur, calibration, budgets=(2,)
        )


def test_images_for_error_reads_the_brent_curve_and_the_budgets() -> None:
    result = {
        "budgets": [3, 4],
        "errors": {"deepfocus": np.array([[2.0, 0.2], [2.0, 0.4]])},
        "brent_curves": {"brent-x": np.array([[9, 5, 1, 0.3, 0.1], [9, 5, 1, 0.2, 0.1]], float)},
        "brent_curve_images": [1, 2, 3, 4, 5],
    }
    assert images_for_error(result, "deepfocus", 0.35) == 4
    assert images_for_error(result, "brent-x", 0.3) == 4
    assert images_for_error(result, "brent-x", 0.01) is None


def test_split_stack_halves_the_field_and_stack_trials_start_in_range() -> None:
    data = np.random.default_rng(0).random((5, 64, 100)).astype(np.float32)
    stack = FocalStack(data, np.arange(5.0), 0.5, focus_z_um=2.0)
    left, right = split_stack(stack)
    assert left.shape == (5, 64, 50) and right.shape == (5, 64, 50)
    makers, focus = stack_trials(stack, 4, seed=0)
    assert focus == [2.0] * 4
    assert all(0.0 <= m().z_um <= 4.0 for m in makers)
    calibration = calibrate_stack(
        FocalStack(
            np.stack([np.full((64, 64), 1 + abs(z - 2.0)) for z in range(5)]), np.arange(5.0), 0.5
        ),
        lambda im: np.full((2, 2), im.mean()),
    )
    assert calibration.focus_z_um == pytest.approx(2.0, abs=0.3)
