"""Benchmark: few-shot autofocus (DeepFocus) against Brent with Tenengrad and with HPF.

On the ``deepfocus-10x`` SimulatedScope (512² images, 500 photons/pixel): one calibration
stack of a flat fluorescent-tissue object (−120…+120 µm, 2 µm), then ``--trials``
random samples (fluorescent tissue, beads, pictures the CNN never saw) with hidden
focus and starts within ±60 µm of it. DeepFocus runs with budgets of 3, 4, 6 and 8
images; Brent (bounded, ±75 µm around the start, tolerance 0.05 µm) runs once per trial
and is scored after each number of images (its best position so far). Then StackScope
replays of the real stacks (calibrated on one half of the field, focused on the other),
and the latency of one blur-score map of a 2048² image on 2 cores against one rfft2.

First, out of family ("Sample families"): stacks of every fluorescence family; how well
the bundled blur CNN and Tenengrad (the baseline, same stacks) locate focus from one score
(through a texture calibration) and by a full scan, and the across-stack SD (Table 1);
then leave-one-family-out CNNs trained here and the unseen families.

    python bench/fewshot.py [--trials 100] [--model builtin:fewshot-widefield]
                            [--family-stacks 3] [--lofo-steps 0] [--json out.json]

Summary: DeepFocus's median error with 4 images, the images Brent(Tenengrad) needs for
the same median error, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from typing import Any

import numpy as np

BUDGETS = (3, 4, 6, 8)
MEASURES = ("tenengrad", "hpf")
_WORKER: dict[str, Any] = {}


def _variants() -> dict[str, dict[str, Any]]:
    from focuskit.fewshot import PAPER_SETTINGS

    # focuskit's defaults; the same matching each patch (the paper's step 6); the paper's settings.
    return {
        "deepfocus": {},
        "deepfocus-patches": {"combine": "patches"},
        "deepfocus-paper": PAPER_SETTINGS,
    }


def _init(model: str, calibration: dict[str, Any]) -> None:
    from focuskit.fewshot import BlurCalibration, BlurScorer

    _WORKER["scorer"] = BlurScorer.load(model, num_threads=1)
    _WORKER["calibration"] = BlurCalibration.from_dict(calibration)


def _one_trial(trial_dict: dict[str, Any]) -> dict[str, Any]:
    from focuskit.fewshot.analyses import Trial, af_error_vs_images, trial_scope

    trial = Trial(**trial_dict)
    scope = trial_scope(trial)

    def fresh():  # type: ignore[no-untyped-def]
        scope.move_to(trial.start_z_um)
        scope.reset_counters()
        return scope

    return af_error_vs_images(
        [fresh],
        [trial.focus_z_um],
        _WORKER["scorer"].score_map,
        _WORKER["calibration"],
        budgets=BUDGETS,
        measures=MEASURES,
        variants=_variants(),
    )


FAMILY_Z_UM = np.arange(-60.0, 60.01, 4.0)


def family_stacks(families: list[str], stacks: int, size: int) -> dict[str, np.ndarray]:
    """``stacks`` noisy deepfocus-10x stacks (in focus at z = 0) of each family."""
    from focuskit.simulate import simulate_stack

    out = {}
    for k, fam in enumerate(families):
        out[fam] = np.stack(
            [
                simulate_stack(
                    "deepfocus-10x",
                    sample=fam,
                    size=size,
                    z_um=FAMILY_Z_UM,
                    photons=1000.0,
                    seed=7000 + 31 * k + j,
                ).data.astype(np.float32)
                for j in range(stacks)
            ]
        )
    return out


def family_metrics(score_plane: Any, calibration: Any, data: np.ndarray) -> dict[str, float]:
    """How well one blur score locates focus on a family's stacks (z in µm from focus).

    scan_error: |z| of each stack's score minimum (a full scan's error), median;
    abs_z_error: median |ẑ − |z|| over planes with |z| ≤ 40 µm, ẑ read off the calibration
    curve's z ≥ 0 branch (how DeepFocus turns one score into a distance); sigma: SD across
    stacks of the min–max normalized curves within ±50 µm and entropy_nats H(B|Z), the
    conditional entropy of the normalized score given z (Table 1; lower = more
    sample-invariant).
    """
    from focuskit.fewshot.analyses import invariance_statistics

    curves = np.array([[float(score_plane(p)) for p in stack] for stack in data])
    scan = np.abs(FAMILY_Z_UM[np.argmin(curves, axis=1)])
    zc = calibration.z_um[calibration.z_um >= 0]
    branch = np.maximum.accumulate(calibration.curve(zc))  # monotone: a score ↦ one |z|
    near = np.abs(FAMILY_Z_UM) <= 40
    est = np.interp(curves[:, near], branch, zc)
    abs_err = np.abs(est - np.abs(FAMILY_Z_UM[near])[None, :])
    stats = invariance_statistics(FAMILY_Z_UM, curves, dof_um=7.94, sd_range_um=50.0)
    return {
        "scan_error_um": float(np.median(scan)),
        "abs_z_error_um": float(np.median(abs_err)),
        "sigma": float(stats["sigma"]),
        "entropy_nats": float(stats["entropy"]),
    }


def family_section(
    model: str, stacks: int, size: int, lofo_fields: int, lofo_steps: int, workers: int
) -> dict[str, Any]:
    """The out-of-family protocol for the blur score: the bundled CNN and Tenengrad on every
    fluorescence family, leave-one-family-out CNNs, and the unseen families."""
    from focuskit.fewshot import BlurScorer
    from focuskit.fewshot import train as train_blur
    from focuskit.fewshot.analyses import calibrate_simulated, classic_scorers
    from focuskit.report import evaluate_families, leave_one_family_out
    from focuskit.simulate import sample_families

    train_fams = sample_families("fluorescence", split="train")
    unseen = sample_families("fluorescence", split="unseen")
    t0 = time.perf_counter()
    data = family_stacks(train_fams + unseen, stacks, size)
    t_data = time.perf_counter() - t0
    units = {"scan_error_um": "µm", "abs_z_error_um": "µm"}

    def mean_score(scorer: Any) -> Any:
        return lambda image: float(np.mean(scorer.score_map(image)))

    def calibrated(score_map: Any, name: str) -> Any:
        # One calibration stack per scorer, of a texture (as the paper calibrates).
        return calibrate_simulated(
            score_map,
            sample="smooth-texture",
            z_um=np.arange(-80.0, 80.01, 2.0),
            size=size,
            model=name,
        )

    out: dict[str, Any] = {"seconds": {"data": t_data}}
    bundled = BlurScorer.load(model)
    cal = calibrated(bundled.score_map, model)
    out["bundled"] = evaluate_families(
        train_fams + unseen,
        lambda f: family_metrics(mean_score(bundled), cal, data[f]),
        title=f"bundled blur CNN ({model}) on every fluorescence family "
        f"({stacks} stacks each, −60…+60 µm)",
        units=units,
    )
    from focuskit.fewshot import BlurCalibration
    from focuskit.optics import get_preset

    physical = BlurCalibration.from_optics(get_preset("deepfocus-10x").optics)
    out["physical"] = evaluate_families(
        train_fams + unseen,
        lambda f: family_metrics(mean_score(bundled), physical, data[f]),
        title=f"bundled blur CNN read through the physical calibration (the optics' wavefront, "
        f"no stack; FWHM {physical.fwhm_um:.1f} µm)",
        units=units,
    )
    ten = classic_scorers(["tenengrad"])["tenengrad"]
    ten_cal = calibrated(lambda im: np.full((2, 2), ten(im)), "tenengrad")
    out["tenengrad"] = evaluate_families(
        train_fams + unseen,
        lambda f: family_metrics(ten, ten_cal, data[f]),
        title="baseline: Tenengrad as a blur score (same stacks and calibration recipe)",
        units=units,
    )
    if lofo_steps > 0:
        t1 = time.perf_counter()

        def train_on(fams: list[str]) -> Any:
            return train_blur(
                fields=lofo_fields, samples=fams, steps=lofo_steps, seed=0, workers=workers
            )

        def evaluate(scorer: Any, fam: str) -> dict[str, float]:
            return family_metrics(
                mean_score(scorer), calibrated(scorer.score_map, "lofo"), data[fam]
            )

        out["lofo"] = leave_one_family_out(
            train_fams,
            train_on,
            evaluate,
            title=f"leave one family out: blur CNN trained here on the other families "
            f"({lofo_fields} objects, {lofo_steps} steps), measured on the held-out one",
            units=units,
        )
        all_model = train_on(train_fams)
        out["unseen"] = evaluate_families(
            unseen,
            lambda f: evaluate(all_model, f),
            title="unseen families: blur CNN trained here on all fluorescence families",
            units=units,
        )
        out["seconds"]["training"] = time.perf_counter() - t1
    return out


# Held-out content for the search: the fluorescence families the CNN never trained on, and
# sparse beads that saturate the camera at focus (a double-peaked curve for classic measures).
HELDOUT: dict[str, dict[str, Any]] = {
    "mitochondria": {},
    "tissue-section": {},
    "saturated-beads": {"family": "point-emitters", "saturate": True, "overexposure": 4.0},
}
HELDOUT_Z_UM = np.arange(-60.0, 60.01, 1.0)
HELDOUT_BUDGETS = (4, 6, 8)


def heldout_stacks(stacks: int, size: int) -> list[tuple[str, Any]]:
    """``stacks`` deepfocus-10x stacks (−60…+60 µm every 1 µm, focus at 0) per held-out case."""
    from focuskit.io import FocalStack
    from focuskit.simulate import simulate_stack

    out = []
    for k, (name, spec) in enumerate(HELDOUT.items()):
        options = {key: v for key, v in spec.items() if key != "family"}
        for j in range(stacks):
            out.append(
                (
                    name,
                    FocalStack.from_simulation(
                        simulate_stack(
                            "deepfocus-10x",
                            sample=spec.get("family", name),
                            sample_options=options or None,
                            size=size,
                            z_um=HELDOUT_Z_UM,
                            photons=1000.0,
                            seed=9100 + 37 * k + j,
                        )
                    ),
                )
            )
    return out


def heldout_section(
    models: list[str], stacks: int, starts: int, size: int, measure: str | None, seed: int
) -> dict[str, Any]:
    """DeepFocus (each model, through a texture calibration) and Brent(measure) on replays of
    held-out stacks, starts uniform within ±40 µm of focus: final |error|, images used,
    reported success, and the runs that report success while more than DOF/2 off."""
    from focuskit.fewshot import BlurScorer
    from focuskit.fewshot.analyses import calibrate_simulated
    from focuskit.measures import default_measure
    from focuskit.optics import get_preset
    from focuskit.scopes import StackScope
    from focuskit.search import brent_search

    optics = get_preset("deepfocus-10x").optics
    dof = optics.depth_of_field_um
    measure = measure or default_measure(optics)
    t0 = time.perf_counter()
    data = heldout_stacks(stacks, size)
    t_data = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    plan = [
        (name, stack, float(rng.uniform(-40, 40))) for name, stack in data for _ in range(starts)
    ]
    runs: dict[str, list[dict[str, Any]]] = {}

    def record(method: str, case: str, result: Any) -> None:
        err = abs(result.z_final_um)  # every stack is in focus at z = 0
        runs.setdefault(method, []).append(
            {
                "case": case,
                "error_um": err,
                "images": result.images,
                "success": bool(result.success),
                "false_success": bool(result.success and err > dof / 2),
                "trace_z": [z for z, _ in result.trace],
            }
        )

    calibrations = {}
    for model in models:
        scorer = BlurScorer.load(model)
        cal = calibrate_simulated(
            scorer.score_map,
            sample="smooth-texture",
            z_um=np.arange(-80.0, 80.01, 2.0),
            size=size,
            model=model,
        )
        calibrations[model] = {"fwhm_um": cal.fwhm_um, "fwhm_over_dof": cal.fwhm_um / dof}
        # A texture stack as the paper calibrates, and the optics alone (the wavefront the
        # CNN was trained to read).
        for how, calib in (("texture", cal), ("physical", "physical")):
            for budget in HELDOUT_BUDGETS:
                for case, stack, start in plan:
                    scope = StackScope(stack, start_z_um=start)
                    result = scorer.autofocus(scope, calib, max_images=budget)
                    record(f"deepfocus[{model}, {how}] ≤{budget}", case, result)
    brent_curves = []
    for case, stack, start in plan:
        scope = StackScope(stack, start_z_um=start)
        result = brent_search(scope, measure, range_um=120.0, tolerance_um=dof / 8, max_images=30)
        record(f"brent-{measure}", case, result)
        trace = result.trace
        brent_curves.append(
            [abs(max(trace[:n], key=lambda t: t[1])[0]) for n in range(1, 31) if n <= len(trace)]
            + [abs(max(trace, key=lambda t: t[1])[0])] * max(0, 30 - len(trace))
        )
    return {
        "dof_um": dof,
        "measure": measure,
        "runs": runs,
        "calibrations": calibrations,
        "brent_curve": np.array(brent_curves),
        "cases": list(HELDOUT),
        "seconds": {"data": t_data, "total": time.perf_counter() - t0},
    }


def heldout_table(section: dict[str, Any]) -> str:
    """One row per method and held-out case, then the pooled row."""
    dof = section["dof_um"]
    lines = [
        f"### held-out families, StackScope replays, starts within ±40 µm "
        f"(DOF {dof:.2f} µm; false success: reports success while |err| > DOF/2)",
        "",
        "| method | case | median |err| µm | p90 µm | worst µm | mean images | success | "
        "false success |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, rows in section["runs"].items():
        for case in [*section["cases"], "all"]:
            sel = [r for r in rows if case in ("all", r["case"])]
            e = np.array([r["error_um"] for r in sel])
            lines.append(
                f"| {method} | {case} | {np.median(e):.2f} | {np.percentile(e, 90):.2f} | "
                f"{e.max():.2f} | {np.mean([r['images'] for r in sel]):.1f} | "
                f"{np.mean([r['success'] for r in sel]):.0%} | "
                f"{sum(r['false_success'] for r in sel)}/{len(sel)} |"
            )
    for model, cal in section["calibrations"].items():
        lines.append("")
        lines.append(
            f"calibration of {model} (smooth texture): Moffat FWHM {cal['fwhm_um']:.1f} µm "
            f"= {cal['fwhm_over_dof']:.1f} × DOF"
        )
    return "\n".join(lines)


def brent_images_for(section: dict[str, Any], error_um: float) -> int | None:
    """Fewest images after which Brent's median |error| (best position so far) ≤ error_um."""
    curve = np.median(section["brent_curve"], axis=0)
    hit = np.flatnonzero(curve <= error_um)
    return int(hit[0]) + 1 if hit.size else None


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(parts[0])
    for key in ("errors", "images", "brent_curves"):
        out[key] = {m: np.concatenate([p[key][m] for p in parts]) for m in parts[0][key]}
    out["seconds"] = {m: sum(p["seconds"][m] for p in parts) for m in parts[0]["seconds"]}
    return out


def _table(result: dict[str, Any], title: str) -> str:
    from focuskit.fewshot.analyses import error_table_rows

    rows = error_table_rows(result)
    lines = [
        f"### {title}",
        "",
        "| method | images | median |err| µm | p90 µm | mean ± SD µm | trials |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['images']} | {r['median_um']:.3f} | {r['p90_um']:.3f} | "
            f"{r['mean_um']:.2f} ± {r['sd_um']:.2f} | {r['trials']} |"
        )
    return "\n".join(lines)


def _real(model: str, trials: int) -> list[tuple[str, dict[str, Any] | None, dict[str, Any]]]:
    """Replays of the real stacks: calibrate on one half of the field, focus the other."""
    from focuskit import FocuskitError
    from focuskit.fewshot import BlurScorer, calibrate
    from focuskit.fewshot.analyses import af_error_vs_images, split_stack, stack_trials
    from focuskit.scopes import real_stack

    scorer = BlurScorer.load(model)
    out: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []
    for name, axis in (
        ("wafer_reflected_brightfield", 2),
        ("llsm_mitochondria_defocus", 1),
        ("bead_psf_na085", 2),
    ):
        try:
            stack = real_stack(name)
        except FocuskitError as exc:  # the data folder may be absent
            out.append((name, None, {"skipped": str(exc)}))
            continue
        calib_half, test_half = split_stack(stack, axis=axis)
        try:
            calibration = calibrate(calib_half, scorer.score_map, model=model)
        except FocuskitError as exc:
            out.append((name, None, {"skipped": f"calibration failed: {exc}"}))
            continue
        span = float(np.ptp(stack.z_um))
        info = {
            "fwhm_um": calibration.fwhm_um,
            "z_span_um": span,
            "calibration_min_um": calibration.focus_z_um,
            "depth_ratio": calibration.depth_ratio,
        }
        if calibration.depth_ratio < 2:
            info["skipped"] = (
                f"the blur score rises only {calibration.depth_ratio:.1f}× its patch spread over "
                f"this stack's {span:.2f} µm: the CNN does not see its defocus"
            )
            out.append((name, None, info))
            continue
        makers, focus = stack_trials(test_half, trials, seed=1)
        result = af_error_vs_images(
            makers,
            focus,
            scorer.score_map,
            calibration,
            budgets=BUDGETS,
            measures=MEASURES,
            brent_range_um=span,
            brent_tolerance_um=span / 1000,
            brent_max_images=20,
            variants=_variants(),
        )
        out.append((name, result, info))
    return out


def _latency(model: str) -> dict[str, float]:
    import scipy.fft

    from focuskit.fewshot import BlurScorer
    from focuskit.measures import score

    scorer = BlurScorer.load(model, num_threads=2)
    exact = BlurScorer.load(model, num_threads=2)
    exact.precision = "float32"
    image = np.random.default_rng(0).random((2048, 2048)).astype(np.float32) * 1000

    def best_of(f, k: int = 7) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(k):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    default, full = scorer.score_map(image), exact.score_map(image)
    return {
        "precision": str(scorer.inference_dtype()).removeprefix("torch."),
        "max_rel_diff_vs_float32": float(np.max(np.abs(default - full) / np.abs(full))),
        "score_map_2048_s": best_of(lambda: scorer.score_map(image)),
        "score_map_float32_2048_s": best_of(lambda: exact.score_map(image)),
        "rfft2_2048_s": best_of(lambda: scipy.fft.rfft2(image, workers=2)),
        "tenengrad_2048_s": best_of(lambda: score(image, "tenengrad")),
    }


def main() -> None:
    from focuskit.fewshot import BlurScorer
    from focuskit.fewshot.analyses import calibrate_simulated, images_for_error, simulated_trials

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="legacy-sample trials (0: skip)")
    parser.add_argument(
        "--heldout-stacks", type=int, default=2, help="stacks per held-out case (0: skip)"
    )
    parser.add_argument("--heldout-starts", type=int, default=8, help="starts per stack")
    parser.add_argument("--heldout-size", type=int, default=384, help="held-out image size")
    parser.add_argument(
        "--compare", action="append", default=[], help="another blur model to run (repeatable)"
    )
    parser.add_argument(
        "--measure",
        default=None,
        help="focus measure of the held-out Brent baseline (default: the default measure "
        "for the optics, as `focuskit autofocus` uses)",
    )
    parser.add_argument("--real-trials", type=int, default=20)
    parser.add_argument("--model", default="builtin:fewshot-widefield")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--family-stacks", type=int, default=3, help="stacks per sample family (0: skip)"
    )
    parser.add_argument("--family-size", type=int, default=256, help="family stack image size")
    parser.add_argument(
        "--lofo-fields", type=int, default=60, help="simulated objects per leave-one-out fold"
    )
    parser.add_argument(
        "--lofo-steps",
        type=int,
        default=0,
        help="CNN steps per leave-one-family-out fold (0: skip; ~0.5 s a step on 2 CPU cores)",
    )
    args = parser.parse_args()

    fam = None
    if args.family_stacks > 0:
        t_f = time.perf_counter()
        fam = family_section(
            args.model,
            args.family_stacks,
            args.family_size,
            args.lofo_fields,
            args.lofo_steps,
            args.workers,
        )
        print(
            f"out-of-family: {args.family_stacks} stacks × {len(FAMILY_Z_UM)} planes per family, "
            f"{args.family_size}² ({time.perf_counter() - t_f:.0f} s). scan_error: |z| of the "
            "score minimum; abs_z_error: |z| read off the calibration (texture stack) vs truth "
            "over |z| ≤ 40 µm; sigma: across-stack SD of normalized curves (Table 1)"
        )
        for key in ("bundled", "physical", "tenengrad", "lofo", "unseen"):
            if key in fam:
                print()
                print(fam[key].format())
                print(fam[key].summary("abs_z_error_um"))
        if "lofo" not in fam:
            print(
                "\nleave-one-family-out blur-CNN training: skipped (10 trainings; run with "
                "--lofo-steps N --lofo-fields M, e.g. 2000 and 400 on a GPU)"
            )
        print(flush=True)

    held = None
    if args.heldout_stacks > 0:
        held = heldout_section(
            [args.model, *args.compare],
            args.heldout_stacks,
            args.heldout_starts,
            args.heldout_size,
            args.measure,
            args.seed,
        )
        print(heldout_table(held))
        print(flush=True)

    t0 = time.perf_counter()
    scorer = BlurScorer.load(args.model)
    calibration = calibrate_simulated(scorer.score_map, model=args.model)
    print(
        f"calibration: Moffat FWHM {calibration.fwhm_um:.1f} µm, minimum at "
        f"{calibration.focus_z_um:+.2f} µm ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    trials = simulated_trials(args.trials, seed=args.seed)
    with mp.get_context("spawn").Pool(
        args.workers, _init, (args.model, calibration.to_dict())
    ) as pool:
        parts = []
        for k, part in enumerate(pool.imap(_one_trial, [t.to_dict() for t in trials])):
            parts.append(part)
            if (k + 1) % 10 == 0:
                print(
                    f"  {k + 1}/{len(trials)} trials ({time.perf_counter() - t0:.0f} s)", flush=True
                )
    sim = _merge(parts)
    print()
    print(_table(sim, f"deepfocus-10x SimulatedScope, {args.trials} samples, starts within ±60 µm"))
    kinds = np.array([t.kind for t in trials])
    print()
    print("### median |error| (µm) by sample kind")
    print()
    print("| method | kind | " + " | ".join(f"{n} images" for n in BUDGETS) + " | trials |")
    print("|---|---|" + "---:|" * (len(BUDGETS) + 1))
    by_kind: dict[str, dict[str, list[float]]] = {}
    for m in sim["methods"]:
        for k in dict.fromkeys(kinds):
            med = np.median(sim["errors"][m][kinds == k], axis=0)
            by_kind.setdefault(m, {})[str(k)] = [float(v) for v in med]
            print(
                f"| {m} | {k} | "
                + " | ".join(f"{v:.2f}" for v in med)
                + f" | {int(np.sum(kinds == k))} |"
            )
    report: dict[str, Any] = {
        "simulated": {"calibration": calibration.to_dict(), "rows": None, "by_kind": by_kind}
    }
    from focuskit.fewshot.analyses import error_table_rows

    report["simulated"]["rows"] = error_table_rows(sim)

    real = _real(args.model, args.real_trials)
    report["real"] = {}
    for name, result, info in real:
        print()
        if result is None:
            print(f"### {name}: not run — {info['skipped']}")
            report["real"][name] = info
            continue
        print(
            _table(
                result,
                f"{name} (StackScope; calibrated on one half of the field, focused on the other; "
                f"FWHM {info['fwhm_um']:.2f} µm, z span {info['z_span_um']:.2f} µm)",
            )
        )
        report["real"][name] = {"rows": error_table_rows(result), **info}

    lat = _latency(args.model)
    print()
    print(
        f"### latency, one 2048² image on 2 cores (best of 7; default precision "
        f"{lat['precision']}, scores within {lat['max_rel_diff_vs_float32']:.2%} of float32's)"
    )
    print()
    print("| what | seconds | / one rfft2 |")
    print("|---|---:|---:|")
    for key, label in (
        ("score_map_2048_s", "blur-score map (256 patches of 128²), default precision"),
        ("score_map_float32_2048_s", "blur-score map, float32"),
        ("rfft2_2048_s", "scipy rfft2 (baseline)"),
        ("tenengrad_2048_s", "Tenengrad"),
    ):
        print(f"| {label} | {lat[key]:.3f} | {lat[key] / lat['rfft2_2048_s']:.1f} |")
    report["latency"] = lat

    e4 = float(np.median(sim["errors"]["deepfocus"][:, BUDGETS.index(4)]))
    e3 = float(np.median(sim["errors"]["deepfocus"][:, BUDGETS.index(3)]))
    n_brent = images_for_error(sim, "brent-tenengrad", e4)
    n_brent_hpf = images_for_error(sim, "brent-hpf", e4)
    # The target's error level: how many images each needs for a median ≤ 0.3 µm.
    n_df_target = images_for_error(sim, "deepfocus", 0.3)
    n_brent_target = images_for_error(sim, "brent-tenengrad", 0.3)
    report["summary"] = {
        "deepfocus_median_3": e3,
        "deepfocus_median_4": e4,
        "brent_tenengrad_images": n_brent,
        "brent_hpf_images": n_brent_hpf,
        "deepfocus_images_0.3um": n_df_target,
        "brent_tenengrad_images_0.3um": n_brent_target,
        "seconds": time.perf_counter() - t0,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
    ratio = f"{4 / n_brent:.2f}" if n_brent else "n/a (Brent never reached it)"
    fam_line = ""
    if fam is not None:
        report["families"] = {k: v.to_dict() for k, v in fam.items() if k != "seconds"}
        f_b, e_b = fam["bundled"].worst("abs_z_error_um")
        e_t = dict(fam["tenengrad"].rows)[f_b]["abs_z_error_um"]
        fam_line = (
            f"out-of-family: bundled CNN worst family {f_b} |z| error {e_b:.1f} µm = "
            f"{e_b / e_t:.2f}× Tenengrad's {e_t:.1f} µm on it"
        )
        if "lofo" in fam:
            f_l, e_l = fam["lofo"].worst("abs_z_error_um")
            fam_line += f"; leave-one-family-out worst {f_l} {e_l:.1f} µm"
        fam_line += "; then the legacy samples: "
    held_line = ""
    if held is not None:
        report["heldout"] = {k: v for k, v in held.items() if k != "brent_curve"}
        parts = []
        for model in [args.model, *args.compare]:
            rows = held["runs"][f"deepfocus[{model}, physical] ≤{max(HELDOUT_BUDGETS)}"]
            e = np.array([r["error_um"] for r in rows])
            med = float(np.median(e))
            n_b = brent_images_for(held, med)
            imgs = float(np.mean([r["images"] for r in rows]))
            four = held["runs"][f"deepfocus[{model}, physical] ≤4"]
            if n_b:
                brent = f"needs {n_b} images for that median → images ratio {imgs / n_b:.2f}"
            else:  # DeepFocus ends closer than Brent ever gets: compare whole runs
                b_rows = held["runs"][f"brent-{held['measure']}"]
                b_med = float(np.median([r["error_um"] for r in b_rows]))
                b_imgs = float(np.mean([r["images"] for r in b_rows]))
                brent = (
                    f"ends at a median of {b_med:.2f} µm in {b_imgs:.1f} images (never "
                    f"{med:.2f} µm in 30) → images ratio {imgs / b_imgs:.2f} for a smaller error"
                )
            parts.append(
                f"DeepFocus[{model}, physical calibration] median {med:.2f} µm in "
                f"{imgs:.1f} images (verified {np.mean([r['success'] for r in rows]):.0%}, "
                f"worst {e.max():.2f} µm; DOF/2 {held['dof_um'] / 2:.2f} µm), "
                f"Brent({held['measure']}) {brent}; with 4 images "
                f"(estimate, unverified) median "
                f"{np.median([r['error_um'] for r in four]):.2f} µm (target ≤ 1.0), worst "
                f"{max(r['error_um'] for r in four):.2f} µm"
            )
        dfs = [r for m, rows in held["runs"].items() if m.startswith("deep") for r in rows]
        brs = [r for m, rows in held["runs"].items() if m.startswith("brent") for r in rows]
        held_line = (
            "held-out families (±40 µm starts): "
            + "; ".join(parts)
            + f"; success while > DOF/2 off: DeepFocus {sum(r['false_success'] for r in dfs)}"
            f"/{len(dfs)}, Brent {sum(r['false_success'] for r in brs)}/{len(brs)}; "
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1, default=float)
    print()
    print(
        f"SUMMARY: {held_line}{fam_line}DeepFocus median |error| {e3:.3f} µm with 3 images, "
        f"{e4:.3f} µm with 4 (target "
        f"≤ 0.3 µm); Brent(Tenengrad) needs {n_brent} images and Brent(HPF) {n_brent_hpf} for the "
        f"same median error → images ratio DeepFocus/Brent(Tenengrad) = {ratio}; for a median ≤ "
        f"0.3 µm DeepFocus needs {n_df_target or f'more than {max(BUDGETS)}'} images and "
        f"Brent(Tenengrad) {n_brent_target}; score map of 2048² = "
        f"{lat['score_map_2048_s'] / lat['rfft2_2048_s']:.1f}× one rfft2 "
        f"({time.perf_counter() - t0:.0f} s total)"
    )


if __name__ == "__main__":
    main()
