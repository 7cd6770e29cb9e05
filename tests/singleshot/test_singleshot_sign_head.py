"""The sign head and the |z| + sign model (issue 18): tiny nets on synthetic features.

Features here are made up so that the test controls what carries the sign: a "ring"
pattern that depends on |z| only (what one LED sees of a weak phase object) and,
optionally, one feature odd in z (what absorption or a strong phase adds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from focuskit.optics import get_preset
from focuskit.singleshot import (
    DefocusExamples,
    DefocusModel,
    TrainConfig,
    fit_fcfnn,
    region_for,
    split_by_field,
)

torch = pytest.importorskip("torch")

OPTICS = get_preset("fcfnn-20x-led").optics
REGION = region_for(OPTICS, 64)


def _examples(sign_feature: bool, n_fields: int = 40, seed: int = 0) -> DefocusExamples:
    rng = np.random.default_rng(seed)
    z = np.tile(np.arange(-30.0, 30.1, 2.0), n_fields)
    field = np.repeat(np.arange(n_fields), 31)
    f = np.linspace(0.2, 1.0, REGION.n_features)
    x = 1 + 0.5 * np.cos(np.pi * 0.05 * np.abs(z)[:, None] * f[None, :] ** 2)  # even in z
    x += 0.05 * rng.standard_normal(x.shape)
    if sign_feature:
        x[:, 0] = 1 + 0.3 * np.tanh(z / 3) + 0.05 * rng.standard_normal(len(z))
    records = [{"field": int(i), "focus_um": 0.0} for i in range(n_fields)]
    return DefocusExamples(x.astype(np.float32), z.astype(np.float32), field, records)


def _fit(ex: DefocusExamples, **kw: object) -> tuple[DefocusModel, DefocusExamples]:
    torch.manual_seed(0)
    train, val = split_by_field(ex, 0.25, seed=1)
    cfg = TrainConfig(width=32, depth=2, max_steps=600, eval_every=100, patience=20, **kw)
    net, _ = fit_fcfnn(train, val, cfg)
    return DefocusModel.from_training(net, REGION, OPTICS, train, validation=val), val


def test_the_sign_head_learns_the_sign_where_the_features_carry_it() -> None:
    model, val = _fit(_examples(sign_feature=True), magnitude=True)
    p = model.sign_probability(val.features)
    far = np.abs(val.z_um) > 3
    assert np.mean((p[far] > 0.5) == (val.z_um[far] > 0)) > 0.95
    z, _, _ = model.predict_features(val.features)
    assert np.sqrt(np.mean((z - val.z_um) ** 2)) < 5.0


def test_where_the_sign_is_blind_magnitude_mode_keeps_abs_z_and_says_it_does_not_know() -> None:
    ex = _examples(sign_feature=False)
    model, val = _fit(ex, magnitude=True)
    signed, _ = _fit(ex, magnitude=False, predict_sign=False)
    z, _, _ = model.predict_features(val.features)
    z_signed, _, _ = signed.predict_features(val.features)
    abs_err = np.sqrt(np.mean((np.abs(z) - np.abs(val.z_um)) ** 2))
    abs_err_signed = np.sqrt(np.mean((np.abs(z_signed) - np.abs(val.z_um)) ** 2))
    # A signed regression on sign-blind features learns the mean of ±z (≈ 0).
    assert abs_err < 4.0 < abs_err_signed
    p = model.sign_probability(val.features)
    assert np.mean(np.abs(p - 0.5)) < 0.15  # little false confidence


def test_a_sign_model_round_trips_and_old_configs_still_load(tmp_path: Path) -> None:
    model, val = _fit(_examples(sign_feature=True), magnitude=True)
    path = model.save(tmp_path / "m")
    again = DefocusModel.load(path)
    np.testing.assert_array_equal(
        again.sign_probability(val.features[:10]), model.sign_probability(val.features[:10])
    )
    # A folder without the new fields (saved before the sign head) loads, with p = NaN.
    old, _ = _fit(_examples(sign_feature=True, n_fields=8), predict_sign=False, magnitude=False)
    old_path = old.save(tmp_path / "old")
    config = json.loads((old_path / "config.json").read_text())
    for key in ("predict_sign", "magnitude"):
        config["architecture"].pop(key)
    for key in ("transform", "cells"):
        config["features"].pop(key)
    (old_path / "config.json").write_text(json.dumps(config))
    loaded = DefocusModel.load(old_path)
    # Without a sign head, a signed model's P(z > 0) is Φ(z/σ) of its Gaussian predictive.
    z, sigma, _ = loaded.predict_features(val.features[:20])
    p = loaded.sign_probability(val.features[:20])
    np.testing.assert_allclose(p, 0.5 * (1 + erf(z / sigma / np.sqrt(2))), rtol=1e-6)
    assert np.all((p > 0.5) == (z > 0))
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    assert 0 <= loaded.predict(image, pixel_size_um=0.325).p_positive <= 1
    assert 0 <= again.predict(image, pixel_size_um=0.325).p_positive <= 1
    # Neither a sign head nor σ: unknown.
    bare, _ = _fit(
        _examples(sign_feature=True, n_fields=8),
        predict_sign=False,
        magnitude=False,
        predict_sigma=False,
    )
    assert np.all(np.isnan(bare.sign_probability(val.features[:3])))
