"""Benchmark: single-shot defocus prediction with the bundled model (Pinkard et al.).

1. Accuracy on held-out simulated fields (seed 777; the bundled model was trained on
   seed 2019, scripts/train_fcfnn.py): phase cells of random density (0.1–0.6) and
   exposure (200–3000 e⁻/pixel) under the preset's LED (fcfnn-20x-led), 2048² images,
   defocus −30…+30 µm in 1 µm steps (plus a random sub-µm offset per field, so planes
   are not all at integer defocus). Each image is predicted as a user would:
   ``DefocusModel.predict`` — the median over its four 1024² tiles. RMSE, 90th
   percentile |error|, share within DOF/2, per |z| band; σ calibration (share with
   |error| ≤ 2σ) and the in-range rate.
2. Latency of one prediction on a 2048² image (features + network, best of several)
   against one ``scipy.fft.rfft2`` of a 2048² float32 image timed in the same run —
   with the libraries' default thread pools, and in a subprocess with BLAS and torch
   on one thread (a 4-row forward pass gains nothing from threads, and idle pool
   threads spin-wait when another process holds a core: ~0.5 s instead of ~1 ms).
3. The bundled model's training wall time (from its config.json).
4. Closed loop on ``SimulatedScope`` (1024², hidden focus): N starts within ±25 µm of
   focus; single shot (snap → predict → move by −z → snap to verify, again while the
   verification says |z| > DOF/2, at most 3 moves) against the classic-AF benchmark's
   best search for this preset, scan + golden section with the ``hpf`` measure, which
   needs DPC images (a DPC twin of the scope: same seed, focus and starts; 256² images
   by default — an Abbe sum over ~50 source points per image is costly at 1024²).

5. Out-of-family generalization first (issue 18): leave-one-family-out FCFNNs of the
   families recipe and of the paper's, trained here on the same simulated fields (the
   summary gives the first as a ratio of the second); a five-recipe ablation on three
   held-out families; models trained on all phase families measured on the unseen
   families; sign errors by peak phase and absorption; the bundled model per family when
   the study runs at its tile (RMSE, p90, |z| RMSE, sign errors, unflagged large errors,
   ±2σ coverage). Then fine-tuning the model on 0/1/2/4 stacks of an unseen family.

    python bench/singleshot.py [--fields 4] [--starts 10] [--family-fields 3] [--json out.json]
    python bench/singleshot.py --family-fields 4 --family-tile 512 --only-families

Summary: the family study's key figure (worst leave-one-family-out RMSE) as a ratio of the
paper recipe's in the same run, with |z| RMSE, sign errors, unflagged errors and ±2σ
coverage; in-family RMSE against 0.5 µm; latency against 50 ms and 2.5× one FFT; the
closed loop's images and final error relative to the classic search, and on unseen
families.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Any

import numpy as np

PRESET = "fcfnn-20x-led"
MODEL = "builtin:singleshot-20x-led"
HELD_OUT_SEED = 777  # training used 2019 (scripts/train_fcfnn.py)
BANDS = [(0, 5), (5, 10), (10, 20), (20, 31)]


def _best(fn, k: int = 7) -> float:  # type: ignore[no-untyped-def]
    t = math.inf
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def held_out_accuracy(
    model: Any, n_fields: int, size: int, chunk: int = 8
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Predict every plane of ``n_fields`` fresh 2048² stacks; one row per image."""
    from focuskit.optics import get_preset
    from focuskit.simulate import apply_camera, make_sample, plan_render, render_stack

    preset = get_preset(PRESET)
    optics = preset.optics
    rng = np.random.default_rng(HELD_OUT_SEED)
    rows: list[dict[str, Any]] = []
    last_image = None
    for f in range(n_fields):
        seed = int(rng.integers(0, 2**31 - 1))
        density = float(rng.uniform(0.1, 0.6))
        photons = float(np.exp(rng.uniform(np.log(200), np.log(3000))))
        focus = float(rng.uniform(-5, 5))
        offset = float(rng.uniform(-0.5, 0.5))
        defocus = np.arange(-30, 31, dtype=np.float64) + offset
        z = focus + defocus
        t0 = time.perf_counter()
        # One sample for the whole stack (rendered in chunks of planes to bound memory):
        # the sample fills the widest padded field; render_stack centre-crops it.
        plan = plan_render(optics, z, (size, size), focus_z_um=focus)
        sample = make_sample(
            "cells",
            plan.render_shape,
            optics.pixel_size_um,
            seed=seed,
            wavelength_um=optics.wavelength_um,
            density=density,
        )
        noise = np.random.default_rng([HELD_OUT_SEED, f])
        for i in range(0, z.size, chunk):
            zc = z[i : i + chunk]
            clean = render_stack(
                sample.values, optics, zc, shape=(size, size), focus_z_um=focus, photons=None
            ).data
            # Fixed exposure: `photons` e⁻/pixel for unscattered light (as simulate_examples).
            counts = apply_camera(
                clean, optics.camera, photons * float(clean.mean(dtype=np.float64)), seed=noise
            )
            for zk, image in zip(zc, counts, strict=True):
                p = model.predict(image, optics=optics)
                rows.append(
                    {
                        "field": f,
                        "density": density,
                        "photons": photons,
                        "z_true_um": float(zk - focus),
                        "z_pred_um": p.z_um,
                        "sigma_um": p.sigma_um,
                        "in_range": p.in_range,
                        "tiles_z_um": p.tiles_z_um,
                    }
                )
            last_image = counts[-1]
        err = np.array([r["z_pred_um"] - r["z_true_um"] for r in rows if r["field"] == f])
        print(
            f"  field {f + 1}/{n_fields}: density {density:.2f}, {photons:.0f} e⁻/px — RMSE "
            f"{np.sqrt(np.mean(err**2)):.2f} µm ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    assert last_image is not None
    return rows, last_image


def accuracy_table(rows: list[dict[str, Any]], dof: float) -> list[dict[str, Any]]:
    z = np.array([r["z_true_um"] for r in rows])
    err = np.array([r["z_pred_um"] for r in rows]) - z
    sigma = np.array([r["sigma_um"] for r in rows])
    in_range = np.array([r["in_range"] for r in rows], dtype=bool)
    out = []
    for name, sel in (
        [("all", np.ones(z.size, bool))]
        + [(f"{lo}–{min(hi, 30)} µm", (np.abs(z) >= lo) & (np.abs(z) < hi)) for lo, hi in BANDS]
        + [("in range", in_range)]
    ):
        if not sel.any():
            continue
        e = err[sel]
        out.append(
            {
                "band": name,
                "images": int(sel.sum()),
                "rmse_um": float(np.sqrt(np.mean(e**2))),
                "p90_abs_um": float(np.percentile(np.abs(e), 90)),
                "bias_um": float(np.mean(e)),
                "within_dof2": float(np.mean(np.abs(e) <= dof / 2)),
                "within_2sigma": float(np.mean(np.abs(e) <= 2 * sigma[sel])),
                "median_sigma_um": float(np.median(sigma[sel])),
                "in_range": float(np.mean(in_range[sel])),
            }
        )
    return out


def latency(model: Any, image: np.ndarray) -> dict[str, float]:
    import scipy.fft

    from focuskit.optics import get_preset
    from focuskit.singleshot import fourier_features, split_tiles

    optics = get_preset(PRESET).optics
    f32 = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    load = os.getloadavg()[0]
    model.predict(image, optics=optics)  # warm-up (torch, FFT plans)
    t_predict = _best(lambda: model.predict(image, optics=optics), 9)
    feats = fourier_features(split_tiles(image, model.region.tile), model.region)
    t_features = _best(
        lambda: fourier_features(split_tiles(image, model.region.tile), model.region), 9
    )
    import torch

    x = torch.from_numpy(feats)

    def forward() -> None:
        with torch.no_grad():
            model.net(x)

    t_net = _best(forward, 9)
    t_ood = _best(lambda: model.ood.familiar(model._standardize(model.net, feats)), 9)
    t_fft = _best(lambda: scipy.fft.rfft2(f32), 9)
    t_fft2 = _best(lambda: scipy.fft.rfft2(f32, workers=-1), 9)
    return {
        "predict_ms": 1e3 * t_predict,
        "features_ms": 1e3 * t_features,
        "network_ms": 1e3 * t_net,
        "ood_ms": 1e3 * t_ood,
        "load_average": load,
        "rfft2_ms": 1e3 * t_fft,
        "rfft2_workers_ms": 1e3 * t_fft2,
        "x_rfft2": t_predict / t_fft,
        "x_rfft2_workers": t_predict / t_fft2,
    }


def latency_single_threaded(model_spec: str, image: np.ndarray) -> dict[str, float]:
    """:func:`latency` in a fresh process whose BLAS and torch run one thread each
    (``OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1``; FFTs keep ``workers=-1``).
    A 4-row forward pass and a 4 × F by F × 16 product gain nothing from threads, and
    idle pool threads spin-wait when another process holds a core."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "image.npy")
        np.save(path, image)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        out = subprocess.run(
            [sys.executable, __file__, "--latency-only", path, "--model", model_spec],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def closed_loop(
    model: Any,
    starts: int,
    classic_size: int,
    seed: int = 1,
    samples: tuple[str, ...] = ("rods", "debris", "printed-target"),
) -> list[dict[str, Any]]:
    from focuskit.optics import DPC, get_preset
    from focuskit.scopes import SimulatedScope
    from focuskit.search import autofocus

    preset = get_preset(PRESET)
    dof = preset.optics.depth_of_field_um
    half_range = (preset.z_max_um - preset.z_min_um) / 2
    focus = float(np.random.default_rng(seed).uniform(-half_range / 2, half_range / 2))
    common = {
        "photons": 1000,
        "seed": seed,
        "focus_z_um": focus,
        "stage_resolution_um": dof / 20,
        "z_limits_um": (focus - 2 * half_range, focus + 2 * half_range),
    }
    single = SimulatedScope(preset, size=1024, **common)
    gt = preset.ground_truth_illumination
    dpc = DPC(gt.na_inner, gt.na_outer, gt.side, source_step_na=0.06)  # type: ignore[union-attr]
    classic = SimulatedScope(preset, size=classic_size, illumination=dpc, **common)
    z0s = np.random.default_rng(7).uniform(focus - 25, focus + 25, starts)
    rows = []
    # The same loop on samples of families the model never saw (its sign check included).
    others = [
        (f"single-shot, {fam}", SimulatedScope(preset, size=1024, sample=fam, **common))
        for fam in samples
    ]
    for method, scope in (("single-shot", single), ("scan/hpf (DPC)", classic), *others):
        t0 = time.perf_counter()
        for z0 in z0s:
            scope.move_to(float(z0))
            scope.reset_counters()
            fallback = False
            if method.startswith("single-shot"):
                res = model.autofocus(scope)
                images, fallback = res.images, "fell back" in res.message
            else:
                images = autofocus(
                    scope, "scan", "hpf", range_um=2 * half_range, tolerance_um=dof / 4
                ).images
            rows.append(
                {
                    "method": method,
                    "z_start_um": float(z0 - focus),
                    "images": images,
                    "fallback": fallback,
                    "error_um": abs(scope.z_um - scope.true_focus_um()),
                    "elapsed_s": scope.elapsed_s,
                }
            )
        print(
            f"  {method}: {starts} starts in {time.perf_counter() - t0:.0f} s"
            + (" (DefocusModel.autofocus)" if method.startswith("single-shot") else ""),
            flush=True,
        )
    return rows


def summarize_loop(rows: list[dict[str, Any]], dof: float) -> list[dict[str, Any]]:
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        img = np.array([r["images"] for r in mine])
        err = np.array([r["error_um"] for r in mine])
        out.append(
            {
                "method": method,
                "starts": len(mine),
                "images_median": float(np.median(img)),
                "images_max": int(img.max()),
                "err_median_um": float(np.median(err)),
                "err_p90_um": float(np.percentile(err, 90)),
                "err_max_um": float(err.max()),
                "failures": int(np.sum(err > dof)),
                "fallbacks": int(sum(r["fallback"] for r in mine)),
                "sim_time_median_s": float(np.median([r["elapsed_s"] for r in mine])),
            }
        )
    return out


FAMILY_Z_UM = np.arange(-30.0, 30.1, 2.0)
SIGN_SURE = 0.9  # a sign is "sure" when max(P(z > 0), P(z < 0)) ≥ this

# Training recipes compared on the same simulated fields (the ablation): the paper's
# (signed z, Fourier magnitudes on the two discs divided by their mean, the plain fields),
# then one ingredient added at a time. Features: (transform, cells) of FourierRegion.
RECIPES: dict[str, dict[str, Any]] = {
    "paper: signed z, mean-normalized discs, plain fields": {
        "magnitude": False,
        "predict_sign": False,
        "features": ("mean", "discs"),
        "rand": False,
    },
    "+ |z| and sign heads": {
        "magnitude": True,
        "predict_sign": True,
        "features": ("mean", "discs"),
        "rand": False,
    },
    "+ log-standardized features": {
        "magnitude": True,
        "predict_sign": True,
        "features": ("log", "discs"),
        "rand": False,
    },
    "+ overlap cells only": {
        "magnitude": True,
        "predict_sign": True,
        "features": ("log", "overlap"),
        "rand": False,
    },
    "+ randomized fields (shipped)": {
        "magnitude": True,
        "predict_sign": True,
        "features": ("log", "overlap"),
        "rand": True,
    },
}
BASELINE = "paper: signed z, mean-normalized discs, plain fields"
SHIPPED = "+ randomized fields (shipped)"


def refeature(ex: Any, source: Any, transform: str, cells: str) -> Any:
    """The same examples with other features, computed from mean-normalized disc features.

    The overlap cells are a subset of the discs', and both normalizations are invariant to
    a vector's scale, so nothing needs simulating again.
    """
    from dataclasses import replace

    from focuskit.singleshot import DefocusExamples

    assert source.transform == "mean" and source.cells == "discs"
    target = replace(source, transform=transform, cells=cells)
    keep = target.mask()[source.mask()]
    f = ex.features[:, keep].astype(np.float64)
    mean = f.mean(axis=1, keepdims=True)
    if transform == "log":
        g = np.log(f + 1e-3 * mean)
        f = (g - g.mean(axis=1, keepdims=True)) / g.std(axis=1, keepdims=True)
    else:
        f = f / mean
    return DefocusExamples(f.astype(np.float32), ex.z_um, ex.field, ex.fields)


def family_metrics(model: Any, ex: Any, dof: float) -> dict[str, float]:
    """What ``model`` gets right and wrong on examples ``ex`` (planes of one family).

    rmse / p90: signed error; abs_rmse: error of |z| alone; sign_error: wrong sign where
    |z| > DOF; sign_unsure: share of those whose sign head is below SIGN_SURE (the loop
    then checks the sign with its verification image); unflagged_large: |error| > DOF/2
    while reported in range (a silent failure); unflagged_sure: the same, also with a sure
    sign; within_2sigma: coverage of ±2σ (of |z| for a |z| + sign model).
    """
    z, sigma, familiar = model.predict_features(ex.features)
    p = model.sign_probability(ex.features)
    truth = np.asarray(ex.z_um, dtype=float)
    err = z - truth
    abs_err = np.abs(z) - np.abs(truth)
    lo, hi = model.z_range_um
    in_range = familiar & (z >= lo) & (z <= hi)
    far = np.abs(truth) > dof
    sure = np.maximum(p, 1 - p) >= SIGN_SURE if np.all(np.isfinite(p)) else np.ones(len(z), bool)
    large = np.abs(err) > dof / 2
    sigma_err = abs_err if model.net.config.magnitude else err
    return {
        "rmse_um": float(np.sqrt(np.mean(err**2))),
        "p90_um": float(np.percentile(np.abs(err), 90)),
        "abs_rmse_um": float(np.sqrt(np.mean(abs_err**2))),
        "sign_error": float(np.mean(np.sign(z[far]) != np.sign(truth[far]))) if far.any() else 0.0,
        "sign_unsure": float(np.mean(~sure[far])) if far.any() else 0.0,
        "unflagged_large": float(np.mean(large & in_range)),
        "unflagged_sure": float(np.mean(large & in_range & sure)),
        "in_range": float(np.mean(in_range)),
        "within_2sigma": float(np.mean(np.abs(sigma_err) <= 2 * sigma)),
    }


def sign_by_strength(model: Any, ex: Any, dof: float) -> list[dict[str, Any]]:
    """Sign error (|z| > DOF) of ``model`` by the fields' peak phase and absorption."""
    z = model.predict_features(ex.features)[0]
    truth = np.asarray(ex.z_um, dtype=float)
    rec = {f["field"]: f for f in ex.fields}
    phase = np.array([rec[int(f)].get("phase_rad", np.nan) for f in ex.field])
    absorb = np.array([rec[int(f)].get("absorption", np.nan) for f in ex.field])
    far = np.abs(truth) > dof
    rows = []
    for p_lo, p_hi in ((0.2, 0.6), (0.6, 2.0), (2.0, 6.0)):
        for a_lo, a_hi in ((0.0, 0.03), (0.03, 0.1)):
            sel = far & (phase >= p_lo) & (phase < p_hi) & (absorb >= a_lo) & (absorb <= a_hi)
            rows.append(
                {
                    "phase_rad": f"{p_lo:g}–{p_hi:g}",
                    "absorption": f"{a_lo:g}–{a_hi:g}",
                    "planes": int(sel.sum()),
                    "sign_error": float(np.mean(np.sign(z[sel]) != np.sign(truth[sel])))
                    if sel.any()
                    else math.nan,
                }
            )
    return rows


def family_generalization(
    model: Any,
    fields: int,
    steps: int,
    workers: int,
    dof: float,
    tile: int | None = None,
    ablation: tuple[str, ...] = ("natural-phase", "tissue-unstained", "cells-textured"),
) -> dict[str, Any]:
    """The out-of-family protocol, each recipe trained here on the same simulated fields:
    leave-one-family-out FCFNNs (the shipped recipe and the paper's baseline on all phase
    families, every recipe on ``ablation``), models trained on all phase families measured
    on the fixed unseen families, sign errors by phase strength and absorption, and the
    bundled model per family (when ``tile`` is the bundled model's)."""
    from focuskit.optics import get_preset
    from focuskit.report import evaluate_families, leave_one_family_out
    from focuskit.simulate import sample_families
    from focuskit.singleshot import (
        DefocusExamples,
        Randomization,
        TrainConfig,
        region_for,
        simulate_examples,
    )
    from focuskit.singleshot import train as train_model

    tile = tile or model.region.tile
    train_fams = sample_families("phase", split="train")
    unseen = sample_families("transmitted", split="unseen")
    plain: dict[str, Any] = {}
    rand: dict[str, Any] = {}
    t0 = time.perf_counter()
    for k, fam in enumerate(train_fams + unseen):
        for store, extra, offset in (
            (plain, {}, 0),
            (rand, {"randomization": Randomization()}, 50),
        ):
            store[fam] = simulate_examples(
                fields,
                size=tile,
                tile=tile,
                z_um=FAMILY_Z_UM,
                sample=[fam],
                incoherent_every=0,
                seed=9000 + k + 1000 * bool(offset),
                first_field=100 * k + offset,
                workers=workers,
                **extra,
            )
        print(f"  simulated {fam} ({time.perf_counter() - t0:.0f} s)", flush=True)
    t_data = time.perf_counter() - t0
    units = {"rmse_um": "µm", "p90_um": "µm", "abs_rmse_um": "µm"}
    better = {"in_range": False, "within_2sigma": False}

    source = region_for(get_preset(PRESET).optics, tile)
    featured: dict[tuple[str, str, str, bool], Any] = {}

    def examples_of(fam: str, features: tuple[str, str], randomized: bool) -> Any:
        key = (fam, *features, randomized)
        if key not in featured:
            featured[key] = refeature((rand if randomized else plain)[fam], source, *features)
        return featured[key]

    def train_on(fams: list[str], recipe: str) -> Any:
        r = RECIPES[recipe]
        parts = [examples_of(f, r["features"], False) for f in fams]
        if r["rand"]:
            parts += [examples_of(f, r["features"], True) for f in fams]
        transform, cells = r["features"]
        return train_model(
            examples=DefocusExamples.concatenate(parts),
            preset=PRESET,
            tile=tile,
            transform=transform,
            cells=cells,
            config=TrainConfig(
                max_steps=steps,
                eval_every=100,
                patience=8,
                magnitude=r["magnitude"],
                predict_sign=r["predict_sign"],
            ),
            seed=0,
            calibrate_on_validation=True,
        )

    def measure(m: Any, fam: str) -> dict[str, float]:
        return family_metrics(m, examples_of(fam, (m.region.transform, m.region.cells), False), dof)

    t1 = time.perf_counter()
    out: dict[str, Any] = {"fields": fields, "tile": tile}
    lofo: dict[str, Any] = {}
    for recipe in RECIPES:
        fams = train_fams if recipe in (BASELINE, SHIPPED) else list(ablation)
        lofo[recipe] = leave_one_family_out(
            fams,
            lambda others, recipe=recipe, fams=fams: train_on(
                [f for f in train_fams if f in others or f not in fams], recipe
            ),
            measure,
            title=f"leave one family out — {recipe}: FCFNN trained here on the other phase "
            f"families ({steps} steps), measured on the held-out one",
            units=units,
            lower_is_better=better,
        )
        print(f"  LOFO {recipe}: {time.perf_counter() - t1:.0f} s", flush=True)
    out["lofo"] = lofo[SHIPPED]
    out["lofo_baseline"] = lofo[BASELINE]
    out["ablation"] = {
        recipe: {fam: dict(lofo[recipe].rows)[fam] for fam in ablation} for recipe in RECIPES
    }
    all_model = train_on(train_fams, SHIPPED)
    out["unseen"] = evaluate_families(
        unseen,
        lambda fam: measure(all_model, fam),
        title=f"unseen families (never trained on): {SHIPPED} on all phase families",
        units=units,
        lower_is_better=better,
    )
    out["sign_by_strength"] = sign_by_strength(
        all_model,
        DefocusExamples.concatenate(
            [
                examples_of(f, (all_model.region.transform, all_model.region.cells), True)
                for f in unseen
            ]
        ),
        dof,
    )
    out["all_model"] = all_model
    if tile == model.region.tile:
        out["bundled"] = evaluate_families(
            train_fams + unseen,
            lambda fam: measure(model, fam),
            title="bundled model on every family (the train families are in-family for it)",
            units=units,
            lower_is_better=better,
        )
    out["seconds"] = {"data": t_data, "training": time.perf_counter() - t1}
    out["plain"], out["rand"] = plain, rand
    return out


def finetune_curve(
    base: Any, family: str, counts: tuple[int, ...], steps: int, dof: float, workers: int
) -> list[dict[str, Any]]:
    """RMSE on a family the model never saw vs the number of the user's focal stacks it
    is fine-tuned on (what ``focuskit singleshot train --finetune … --data stacks/``
    runs, on examples made from simulated stacks of that family: 61 planes, ±30 µm)."""
    from focuskit.singleshot import DefocusExamples, TrainConfig, simulate_examples
    from focuskit.singleshot import train as train_model

    tile = base.region.tile
    test = simulate_examples(
        3,
        size=tile,
        tile=tile,
        z_um=FAMILY_Z_UM,
        sample=[family],
        incoherent_every=0,
        transform=base.region.transform,
        cells=base.region.cells,
        seed=4242,
        first_field=9000,
        workers=workers,
    )
    user = simulate_examples(
        max(counts),
        size=tile,
        tile=tile,
        z_um=np.arange(-30.0, 30.1, 1.0),
        sample=[family],
        incoherent_every=0,
        transform=base.region.transform,
        cells=base.region.cells,
        seed=4343,
        first_field=9100,
        workers=workers,
    )
    ids = sorted(set(user.field.tolist()))
    rows = []
    for n in counts:
        if n == 0:
            m = base
        else:
            keep = np.isin(user.field, ids[:n])
            # One stack is split by plane for validation (fine-tuning cannot hold a field out).
            ex = user.subset(keep)
            if n == 1:
                ex = DefocusExamples(ex.features, ex.z_um, np.arange(len(ex)) % 4, ex.fields)
            m = train_model(
                examples=ex,
                finetune=base,
                preset=PRESET,
                validation=0.25,
                seed=0,
                config=TrainConfig(
                    max_steps=steps,
                    eval_every=50,
                    patience=6,
                    learning_rate=2e-4,
                    magnitude=base.net.config.magnitude,
                    predict_sign=base.net.config.predict_sign,
                ),
            )
        met = family_metrics(m, test, dof)
        rows.append({"stacks": n, **met})
        print(f"  fine-tune on {n} {family} stack(s): RMSE {met['rmse_um']:.2f} µm", flush=True)
    return rows


def family_summary(gen: dict[str, Any]) -> str:
    """The family study's part of the summary line (the key figure as a ratio)."""
    fam, worst = gen["lofo"].worst("rmse_um")
    b_fam, b_worst = gen["lofo_baseline"].worst("rmse_um")
    a_fam, a_worst = gen["lofo"].worst("abs_rmse_um")
    u_fam, u_worst = gen["unseen"].worst("rmse_um")
    lofo_rows = [r for _, r in gen["lofo"].rows]
    family_line = (
        f"out-of-family: leave-one-family-out worst RMSE {worst:.2f} µm ({fam}; target ≤ "
        f"1.0: {'met' if worst <= 1.0 else 'NOT met'}) = {worst / b_worst:.2f}× the paper "
        f"recipe's {b_worst:.2f} µm ({b_fam}) in this run; worst |z| RMSE {a_worst:.2f} µm "
        f"({a_fam}); sign errors where |z| > DOF up to "
        f"{max(r['sign_error'] for r in lofo_rows):.0%} (target ≤ 1 %), unflagged "
        f"|error| > DOF/2 up to {max(r['unflagged_large'] for r in lofo_rows):.0%} "
        f"({max(r['unflagged_sure'] for r in lofo_rows):.0%} with a sure sign; target ≤ 2 %), "
        f"±2σ coverage ≥ {min(r['within_2sigma'] for r in lofo_rows):.0%}; unseen worst "
        f"{u_fam} {u_worst:.2f} µm; then seeds: "
    )
    return family_line


def main() -> None:
    from focuskit.optics import get_preset
    from focuskit.singleshot import DefocusModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fields", type=int, default=4, help="held-out fields (61 images of 2048² each)"
    )
    parser.add_argument("--size", type=int, default=2048, help="held-out image size (pixels)")
    parser.add_argument("--starts", type=int, default=10, help="closed-loop random starts")
    parser.add_argument(
        "--classic-size", type=int, default=256, help="image size of the classic (DPC) scope"
    )
    parser.add_argument(
        "--family-fields", type=int, default=3, help="fields per sample family (0: skip)"
    )
    parser.add_argument(
        "--lofo-steps", type=int, default=1500, help="training steps per leave-one-out fold"
    )
    parser.add_argument(
        "--family-tile",
        type=int,
        default=None,
        help="image/tile side of the family study (default: the model's; smaller is faster, "
        "and the bundled model's per-family table is then left out)",
    )
    parser.add_argument(
        "--finetune-stacks",
        default="0,1,2,4",
        help="user stacks of an unseen family to fine-tune on ('' to skip)",
    )
    parser.add_argument("--finetune-family", default="printed-target")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering fields")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--json", help="also write everything to this JSON file")
    parser.add_argument(
        "--only-families",
        action="store_true",
        help="stop after the family study and fine-tuning (no held-out seeds, latency, loop)",
    )
    parser.add_argument("--latency-only", metavar="IMAGE_NPY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.latency_only:  # the single-threaded latency subprocess
        print(json.dumps(latency(DefocusModel.load(args.model), np.load(args.latency_only))))
        return

    model = DefocusModel.load(args.model)
    dof = get_preset(PRESET).optics.depth_of_field_um
    print(
        f"model {args.model}: {model.net.parameter_count():,} parameters, "
        f"{model.region.n_features} features, {model.region.tile}² tiles; held-out fields from "
        f"seed {HELD_OUT_SEED} (training: seed 2019); DOF {dof:.2f} µm",
        flush=True,
    )

    gen = None
    if args.family_fields > 0:
        gen = family_generalization(
            model, args.family_fields, args.lofo_steps, args.workers, dof, tile=args.family_tile
        )
        print(
            f"\nout-of-family generalization: {args.family_fields} plain + {args.family_fields} "
            f"randomized fields × {len(FAMILY_Z_UM)} planes (−30…+30 µm) per family, "
            f"{gen['tile']}² images; measured on the plain fields; data "
            f"{gen['seconds']['data']:.0f} s, training {gen['seconds']['training']:.0f} s. "
            "abs_rmse: error of |z|; sign_error: wrong sign where |z| > DOF; sign_unsure: "
            f"P(sign) < {SIGN_SURE} there; unflagged_large: |error| > DOF/2 while reported in "
            "range (silent failures); unflagged_sure: the same with a sure sign"
        )
        for key in ("lofo", "lofo_baseline", "unseen", "bundled"):
            if key in gen:
                print()
                print(gen[key].format())
                print(gen[key].summary("rmse_um"))
        print("\nablation (leave one family out, RMSE / |z| RMSE / sign errors, µm and %):")
        fams = list(next(iter(gen["ablation"].values())))
        print("| recipe | " + " | ".join(fams) + " |")
        print("|---|" + "---|" * len(fams))
        for recipe, row in gen["ablation"].items():
            cells = [
                f"{row[f]['rmse_um']:.2f} / {row[f]['abs_rmse_um']:.2f} / "
                f"{row[f]['sign_error']:.0%}"
                for f in fams
            ]
            print(f"| {recipe} | " + " | ".join(cells) + " |")
        print(
            "\nsign errors (|z| > DOF) of the all-family model on randomized fields of the "
            "unseen families, by peak phase and co-located absorption:"
        )
        print("| peak phase rad | absorption | planes | sign error |")
        print("|---|---|---|---|")
        for r in gen["sign_by_strength"]:
            print(
                f"| {r['phase_rad']} | {r['absorption']} | {r['planes']} | {r['sign_error']:.0%} |"
            )

    tune = None
    counts = tuple(int(c) for c in args.finetune_stacks.split(",") if c.strip())
    if counts:
        print(f"\nfine-tuning {args.model} on user stacks of {args.finetune_family}:")
        tune = finetune_curve(model, args.finetune_family, counts, 600, dof, args.workers)
        print("| user stacks | RMSE µm | abs RMSE µm | sign error | unflagged > DOF/2 |")
        print("|---|---|---|---|---|")
        for r in tune:
            print(
                f"| {r['stacks']} | {r['rmse_um']:.2f} | {r['abs_rmse_um']:.2f} | "
                f"{r['sign_error']:.0%} | {r['unflagged_large']:.1%} |"
            )

    if args.only_families:
        if gen is not None:
            print(f"\nsummary: {family_summary(gen).removesuffix('; then seeds: ')}")
        return

    t0 = time.perf_counter()
    rows, image = held_out_accuracy(model, args.fields, args.size)
    acc = accuracy_table(rows, dof)
    t_acc = time.perf_counter() - t0
    header = (
        f"| {'abs z band':<10} | {'images':>6} | {'RMSE µm':>7} | {'p90 µm':>6} | {'bias µm':>7} | "
        f"{'≤ DOF/2':>7} | {'≤ 2σ':>5} | {'med σ µm':>8} | {'in range':>8} |"
    )
    print(
        f"\nheld-out accuracy: {args.fields} fields × 61 planes, {args.size}² images "
        f"({(args.size // model.region.tile) ** 2} tiles, median), {t_acc:.0f} s; last row: only "
        "the predictions the model flags in range"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for a in acc:
        print(
            f"| {a['band']:<10} | {a['images']:>6} | {a['rmse_um']:>7.2f} | "
            f"{a['p90_abs_um']:>6.2f} | {a['bias_um']:>+7.2f} | {a['within_dof2']:>7.0%} | "
            f"{a['within_2sigma']:>5.0%} | {a['median_sigma_um']:>8.2f} | {a['in_range']:>8.0%} |"
        )

    lat_default = latency(model, image)
    lat = latency_single_threaded(args.model, image)
    print(
        f"\n| {'latency (2048² image, best of 9)':<36} | {'default threads':>15} | "
        f"{'BLAS/torch 1 thread':>19} |"
    )
    print(f"|{'-' * 38}|{'-' * 17}|{'-' * 21}|")
    for key, label in (
        ("predict_ms", "DefocusModel.predict (ms)"),
        ("features_ms", "  Fourier features (4 tiles)"),
        ("network_ms", "  network (torch forward)"),
        ("ood_ms", "  out-of-distribution check (numpy)"),
        ("rfft2_ms", "scipy.fft.rfft2 2048² float32 (ms)"),
        ("rfft2_workers_ms", "  … with workers=-1 (2 threads)"),
        ("x_rfft2", "predict / rfft2"),
        ("x_rfft2_workers", "predict / rfft2 with workers=-1"),
    ):
        print(f"| {label:<36} | {lat_default[key]:>15.2f} | {lat[key]:>19.2f} |")
    print(
        f"load average before timing: {lat_default['load_average']:.2f} and "
        f"{lat['load_average']:.2f} on {os.cpu_count()} cores. Default threads: torch's and "
        "OpenBLAS's pools, which spin-wait when another process holds a core; the summary uses "
        "the single-threaded column (FFTs still use both cores)."
    )

    training = model.metadata.get("training", {})
    data_s, train_s = training.get("data_seconds"), training.get("train_seconds")
    hist = training.get("history", {})
    if data_s is not None and train_s is not None:
        print(
            f"\nbundled model training (config.json): data {data_s / 60:.1f} min + training "
            f"{train_s / 60:.1f} min = {(data_s + train_s) / 60:.1f} min on this project's 2-core "
            f"CPU; best validation RMSE {hist.get('best_val_rmse_um', float('nan')):.2f} µm at "
            f"step {hist.get('best_step')} ({training.get('command', '')})"
        )
    else:
        print("\nbundled model training time: not recorded in config.json")

    t0 = time.perf_counter()
    loop_rows = closed_loop(model, args.starts, args.classic_size)
    loop = summarize_loop(loop_rows, dof)
    header = (
        f"| {'method':<16} | {'starts':>6} | {'images med':>10} | {'max':>3} | {'err med µm':>10} "
        f"| {'p90 µm':>6} | {'max µm':>6} | {'> DOF':>5} | {'fallback':>8} | {'sim time s':>10} |"
    )
    print(
        "\nclosed loop: starts within ±25 µm of a hidden focus "
        f"({time.perf_counter() - t0:.0f} s); single shot on 1024² LED images, classic on "
        f"{args.classic_size}² DPC images; the stage moves in steps of DOF/20 = {dof / 20:.3f} µm "
        "(as in classic_af.py), so final errors fall on a grid"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for r in loop:
        print(
            f"| {r['method']:<16} | {r['starts']:>6} | {r['images_median']:>10.1f} | "
            f"{r['images_max']:>3} | {r['err_median_um']:>10.3f} | {r['err_p90_um']:>6.2f} | "
            f"{r['err_max_um']:>6.2f} | {r['failures']:>5} | {r['fallbacks']:>8} | "
            f"{r['sim_time_median_s']:>10.2f} |"
        )

    ss, cl = loop[0], loop[1]
    overall = acc[0]
    family_line = "" if gen is None else family_summary(gen)
    print(
        f"\nsummary: {family_line}held-out RMSE {overall['rmse_um']:.2f} µm (in-family target "
        f"≤ 0.5: {'met' if overall['rmse_um'] <= 0.5 else 'NOT met'}), p90 "
        f"{overall['p90_abs_um']:.2f} µm, {overall['within_dof2']:.0%} within DOF/2; latency "
        f"{lat['predict_ms']:.0f} ms per 2048² image (target ≤ 50: "
        f"{'met' if lat['predict_ms'] <= 50 else 'NOT met'}) = {lat['x_rfft2']:.2f}× one rfft2 "
        f"(target ≤ 2.5: {'met' if lat['x_rfft2'] <= 2.5 else 'NOT met'}); closed loop "
        f"{ss['images_median']:.0f} vs {cl['images_median']:.0f} images = "
        f"{ss['images_median'] / cl['images_median']:.2f}× the classic scan/hpf, median |error| "
        f"{ss['err_median_um']:.2f} vs {cl['err_median_um']:.2f} µm = "
        f"{ss['err_median_um'] / max(cl['err_median_um'], 1e-9):.2f}×; on unseen families "
        f"{sum(r['starts'] - r['failures'] for r in loop[2:])}/{sum(r['starts'] for r in loop[2:])}"
        f" starts end within DOF, median {np.median([r['images_median'] for r in loop[2:]]):.0f}"
        f" images, {sum(r['fallbacks'] for r in loop[2:])} fallbacks"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "accuracy": acc,
                    "latency": lat,
                    "latency_default_threads": lat_default,
                    "training": {"data_seconds": data_s, "train_seconds": train_s},
                    "closed_loop": loop,
                    "families": None
                    if gen is None
                    else {
                        **{
                            k: gen[k].to_dict()
                            for k in ("bundled", "lofo", "lofo_baseline", "unseen")
                            if k in gen
                        },
                        "ablation": gen["ablation"],
                        "sign_by_strength": gen["sign_by_strength"],
                    },
                    "finetune": tune,
                    "closed_loop_rows": loop_rows,
                    "predictions": [
                        {k: v for k, v in r.items() if k != "tiles_z_um"} for r in rows
                    ],
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
