"""DeepFocus Table 1 / Fig. 3: blur-score invariance statistics and the tiny end-to-end analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from focuskit import ConfigError
from focuskit.cli import app
from focuskit.fewshot.analyses import (
    HELD_OUT_IMAGES,
    PLOTS,
    ModelBlur,
    analyze_score_invariance,
    classic_scorers,
    conditional_entropy,
    default_z_um,
    informative_range,
    invariance_samples,
    invariance_statistics,
    normalize_curves,
    render_invariance_stack,
    score_invariance_plot,
)
from focuskit.measures import score
from focuskit.optics import get_preset
from focuskit.report import analysis_table, save_analysis

TINY_Z = default_z_um(12, 120.0)


# --------------------------------------------------------------------------- entropy


def test_entropy_zero_when_the_bin_determines_the_plane() -> None:
    z = np.arange(10.0)
    norm, _ = normalize_curves(np.tile(z, (5, 1)))  # monotone: 0, 1/9, …, 1 → bins 0, 2, …, 19
    assert conditional_entropy(norm, 20) == 0.0


def test_entropy_maximal_for_a_constant_score() -> None:
    # p(b0|z) = 1 for every z: H = −Σ_z 1·ln(1/|Z|) = |Z|·ln|Z|
    for nz in (2, 7, 132):
        assert conditional_entropy(np.full((4, nz), 0.5), 20) == pytest.approx(nz * math.log(nz))


def test_entropy_hand_case() -> None:
    # plane 0: both samples in bin 0; plane 1: one in each of 2 bins.
    # p(·|z0) = (1, 0), p(·|z1) = (½, ½); Σ_z p(b|z) = (3/2, 1/2)
    # H = −[1·ln(1/(3/2)) + ½·ln(½/(3/2)) + ½·ln(½/½)] = ln 1.5 + ½ ln 3
    v = np.array([[0.1, 0.2], [0.3, 0.9]])
    assert conditional_entropy(v, 2) == pytest.approx(math.log(1.5) + 0.5 * math.log(3))
    # pooling both planes into one z value leaves one z: H = 0
    assert conditional_entropy(v, 2, groups=np.array([5, 5])) == pytest.approx(0.0)


def test_entropy_bad_input() -> None:
    with pytest.raises(ConfigError, match="bins"):
        conditional_entropy(np.zeros((2, 3)), 1)
    with pytest.raises(ConfigError, match="one group per plane"):
        conditional_entropy(np.zeros((2, 3)), 4, groups=np.array([1, 2]))


# --------------------------------------------------------------------------- SD, normalization


def test_normalization_and_sd_hand_case() -> None:
    z = np.array([-1.0, 0.0, 1.0])
    curves = np.array([[1.0, 0.0, 1.0], [2.0, 0.0, 1.0]])  # normalized: [1, 0, 1] and [1, 0, ½]
    norm, flat = normalize_curves(curves)
    assert np.allclose(norm, [[1, 0, 1], [1, 0, 0.5]]) and not flat.any()
    st = invariance_statistics(z, curves, dof_um=0.5, sd_range_um=1.0, bins=4)
    assert np.allclose(st["sd"], [0, 0, 0.25])  # population SD of (1, ½)
    assert st["sigma"] == pytest.approx(0.25 / 3)
    assert invariance_statistics(z, curves, dof_um=0.5, sd_range_um=0.5)["sigma"] == pytest.approx(
        0.0
    )
    assert st["min_z_um"] == 0.0
    # a flat curve carries no information: all "blurriest"
    norm, flat = normalize_curves(np.array([[3.0, 3.0, 3.0]]))
    assert flat.tolist() == [True] and np.all(norm == 1.0)


# --------------------------------------------------------------------------- informative range


def test_informative_range_of_a_v_with_plateau() -> None:
    # m = min(|z|/40, 1), s = 0.01: z passes while 1 − |z|/40 > 0.02 ⇔ |z| < 39.2
    z = np.arange(-80.0, 80.25, 0.5)
    m = np.minimum(np.abs(z) / 40, 1.0)
    assert informative_range(z, m, np.full_like(z, 0.01), 4.0) == (-39.0, 39.0)
    # a flat mean never passes: no informative range
    assert informative_range(z, np.full_like(z, 0.5), np.full_like(z, 0.1), 4.0) == (0.0, 0.0)
    # a side whose spread is large (0.5 beyond z = 20, the end included): 1 − z/40 > 0.51 ⇔ z < 19.6
    s = np.where(z > 20, 0.5, 0.01)
    assert informative_range(z, m, s, 4.0) == (-39.0, 19.5)


def test_statistics_of_a_v_family_with_known_answers() -> None:
    # each sample: scale_i·min(|z|, a) + offset_i → identical normalized curves
    z = np.arange(-60.0, 61.0, 1.0)
    a = 30.0
    rng = np.random.default_rng(1)
    curves = np.array(
        [
            s * np.minimum(np.abs(z), a) + o
            for s, o in zip(rng.uniform(0.5, 5, 6), rng.normal(0, 9, 6), strict=True)
        ]
    )
    st = invariance_statistics(z, curves, dof_um=4.0, sd_range_um=50.0, bins=1000)
    assert st["sigma"] < 1e-12
    assert (st["informative_lo_um"], st["informative_hi_um"]) == (
        -29.0,
        29.0,
    )  # the last z below the plateau
    assert st["informative_um"] == 58.0 and st["informative_dof"] == pytest.approx(14.5)
    # signed z: z = 0 alone (0), ±k pairs on the slope (ln 2 each, 58 planes),
    # the 62 plateau planes share a bin
    assert st["entropy"] == pytest.approx(58 * math.log(2) + 62 * math.log(62))
    assert st["entropy_rel"] == pytest.approx(st["entropy"] / (121 * math.log(121)))
    # distance |z|: the slope's 30 distances are distinct, the 31 plateau distances share a bin
    assert st["entropy_dist_rel"] == pytest.approx(31 * math.log(31) / (61 * math.log(61)))
    assert st["min_z_um"] == 0.0 and st["flat"] == 0


# --------------------------------------------------------------------------- samples, scorers


def test_samples_reproducible_and_mixed() -> None:
    a = list(invariance_samples(4, seed=3, size=64, z_um=TINY_Z))
    b = list(invariance_samples(2, seed=3, size=64, z_um=TINY_Z))
    c = list(invariance_samples(2, seed=4, size=64, z_um=TINY_Z))
    assert [lab for lab, _ in a][:3] == [
        "fluorescent-tissue",
        "beads",
        f"image:{HELD_OUT_IMAGES[0]}",
    ]
    for (la, sa), (lb, sb) in zip(a, b, strict=False):
        assert la == lb and np.array_equal(sa.values, sb.values)
    assert not np.array_equal(a[0][1].values, c[0][1].values)
    assert all(
        s.kind == "fluorescence" and s.values.min() >= 0 and s.values.max() > 0 for _, s in a
    )
    labels = [
        lab for lab, _ in invariance_samples(3 * len(HELD_OUT_IMAGES), seed=0, size=32, z_um=TINY_Z)
    ]
    assert {lab[6:] for lab in labels if lab.startswith("image:")} == set(HELD_OUT_IMAGES)


def test_render_stack_is_noisy_counts_of_the_right_shape() -> None:
    optics = get_preset("deepfocus-10x").optics
    _, sample = next(invariance_samples(1, seed=0, size=48, z_um=TINY_Z))
    st = render_invariance_stack(sample, optics, TINY_Z, 48, photons=500, seed=1)
    assert st.shape == (12, 48, 48) and st.dtype == np.float32
    assert np.array_equal(
        st, render_invariance_stack(sample, optics, TINY_Z, 48, photons=500, seed=1)
    )
    assert not np.array_equal(
        st, render_invariance_stack(sample, optics, TINY_Z, 48, photons=500, seed=2)
    )


def test_classic_scorers_are_negated_measures() -> None:
    sc = classic_scorers(("tenengrad", "ws"))
    img = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    for name, fn in sc.items():
        assert fn(img[0]) == pytest.approx(-score(img[0], name))
        assert np.allclose(fn.score_stack(img), [fn(p) for p in img])
    with pytest.raises(ConfigError):
        classic_scorers(("no-such-measure",))


class _FakePatchModel:
    """BlurScorer-like: 16² patches, score = 1 / (1 + patch SD)."""

    def patches(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ys = xs = np.arange(0, image.shape[0] - 15, 16)
        tiles = np.array([image[y : y + 16, x : x + 16] for y in ys for x in xs])
        return tiles, ys, xs

    def score_patches(self, tiles: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + tiles.reshape(len(tiles), -1).std(axis=1))

    def score(self, image: np.ndarray) -> float:
        return float(self.score_patches(self.patches(image)[0]).mean())


def test_model_blur_batches_the_stack() -> None:
    m = ModelBlur(_FakePatchModel())
    stack = np.random.default_rng(2).random((4, 48, 48)) * np.arange(1, 5)[:, None, None]
    assert np.allclose(m.score_stack(stack), [m(p) for p in stack])
    with pytest.raises(ConfigError, match="BlurScorer"):
        ModelBlur(object())


# --------------------------------------------------------------------------- end to end


def _tiny(seed: int = 0) -> dict:
    scorers = {**classic_scorers(("tenengrad", "ws")), "stand-in": lambda img: -float(np.std(img))}
    return analyze_score_invariance(
        scorers, n_samples=3, z_um=TINY_Z, size=64, seed=seed, photons=(200, 2000)
    )


def test_tiny_end_to_end(tmp_path: Path) -> None:
    calls = []
    scorers = {**classic_scorers(("tenengrad", "ws")), "stand-in": lambda img: -float(np.std(img))}
    r = analyze_score_invariance(
        scorers,
        n_samples=3,
        z_um=TINY_Z,
        size=64,
        seed=0,
        progress=lambda d, n: calls.append((d, n)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert {"analysis", "figure", "note", "config", "columns", "rows", "seconds"} <= set(r)
    assert r["analysis"] == "blur-invariance" and [row["score"] for row in r["rows"]] == list(
        scorers
    )
    for row in r["rows"]:
        assert set(r["columns"]) <= set(row)
        assert 0 <= row["sigma"] <= 0.5 and 0 <= row["entropy"] <= 12 * math.log(12) + 1e-6
        assert 0 <= row["entropy_rel"] <= 1 and 0 <= row["entropy_dist_rel"] <= 1
        assert row["informative_um"] >= 0 and row["informative_dof"] == pytest.approx(
            row["informative_um"] / r["dof_um"], abs=1e-3
        )
    for c in r["curves"].values():
        assert len(c["mean"]) == len(c["sd"]) == 12 and len(c["examples"]) == 3
    assert len(r["samples"]) == 3 and len(r["z_um"]) == 12
    json.dumps(r)
    assert analysis_table(r).count("\n") == len(r["rows"]) + 1
    json_path, png = save_analysis(r, tmp_path / "out", PLOTS[r["analysis"]])
    assert json.loads(json_path.read_text())["rows"] == r["rows"] and png.stat().st_size > 1000
    assert score_invariance_plot(r, tmp_path / "fig3.png").stat().st_size > 1000


def test_reproducible_per_seed() -> None:
    a, b, c = _tiny(5), _tiny(5), _tiny(6)
    assert a["rows"] == b["rows"] and a["curves"] == b["curves"] and a["samples"] == b["samples"]
    assert a["curves"] != c["curves"]


def test_analysis_bad_input() -> None:
    sc = classic_scorers(("ws",))
    with pytest.raises(ConfigError, match="span the focus"):
        analyze_score_invariance(sc, n_samples=1, z_um=[10, 20, 30], size=32)
    with pytest.raises(ConfigError, match="n_samples"):
        analyze_score_invariance(sc, n_samples=0)
    with pytest.raises(ConfigError, match="photons"):
        analyze_score_invariance(sc, n_samples=1, photons=-5.0)
    with pytest.raises(ConfigError, match="scorer"):
        analyze_score_invariance({}, n_samples=1)
    with pytest.raises(ConfigError, match="non-finite"):
        analyze_score_invariance(
            {"nan": lambda img: float("nan")}, n_samples=1, z_um=TINY_Z, size=32
        )


def test_cli_classic_measures_only(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "blur-invariance",
            "-o",
            str(out),
            "--samples",
            "2",
            "--planes",
            "12",
            "--size",
            "48",
            "--no-model",
            "--measures",
            "tenengrad,ws",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "tenengrad" in res.output and (out / "blur-invariance.png").exists()
    assert [r["score"] for r in json.loads((out / "blur-invariance.json").read_text())["rows"]] == [
        "tenengrad",
        "ws",
    ]
    res = runner.invoke(
        app, ["evaluate", "blur-invariance", "-o", str(out), "--no-model", "--measures", ""]
    )
    assert res.exit_code == 2 and "nothing to score" in res.output
