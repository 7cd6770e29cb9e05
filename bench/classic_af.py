"""Benchmark: classic autofocus and find-focus (issue 14: succeed far from focus, on sparse
and saturated samples, and say so when they don't).

1. Measure choice: every focus measure (unmasked, and saturation-masked where it can be)
   on deepfocus-10x (10×/0.3) stacks −60…+60 µm of every fluorescence family, sparse
   beads that saturate at focus and the absorbing families under brightfield; median
   |error| of the argmax plane and of find-focus per family, and the share of
   double-peaked curves. The winner is ``focuskit.measures.DEFAULT_MEASURE``.
2. Autofocus far from focus: Brent, golden section and scan with the default measure and
   with Tenengrad (the default before issue 14), from starts up to ±40 µm of focus on
   held-out families (SimulatedScope, fresh camera noise per image) and on replays of the
   real stacks of shared/data/real (StackScope). Error vs images, and the share of runs
   that report success while |error| > DOF/2 — under the verified rule of issue 14 and
   under the old rule (success = converged), from the same runs.
3. find-focus on the real stacks and on coarse uneven stacks made from them (every 3rd
   and 5th plane, jittered selections): target max(DOF/4, distance to the nearest
   plane), against the old refinement (a parabola through the two neighbours, however
   far) on the same curves.

    python bench/classic_af.py [--quick] [--json out.json]
    python bench/classic_af.py --sweep [--starts 50]   # every search × every measure (old)

Summary: false successes of the default measure vs Tenengrad and vs the old rule, Brent's
median error and images, find-focus misses new vs old, the measure table's winner against
Tenengrad — all measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from typing import Any

import numpy as np

# --- Measure choice on the sample families (issue 14 item 4) --------------------------------

#: Sample families of the measure table, rendered with the deepfocus-10x optics (10×/0.3):
#: every fluorescence family, the unseen ones marked *, sparse beads that saturate at focus,
#: and the unseen absorbing families under brightfield. ``rods`` (pure phase) is left out:
#: a phase object has its least intensity contrast in focus, so no intensity measure's
#: maximum is its focus (Pinkard et al. Fig. 1a).
FLUOR_FAMILIES = [
    "point-emitters",
    "nuclei",
    "filaments",
    "membranes",
    "vesicles",
    "patterned-substrate",
    "smooth-texture",
    "natural-emitters",
    "mitochondria",
    "tissue-section",
]
SATURATING_BEADS = "beads-saturating"
BRIGHTFIELD_FAMILIES = ["printed-target", "stained-tissue", "opaque-particles"]
#: Overexposure of the saturating beads: the in-focus peak is this many times the camera's
#: full well (a bright bead under an exposure set for dim content). At 30× the Tenengrad
#: curve of sparse 0.5 µm beads has two peaks about 6 µm either side of focus.
BEAD_OVEREXPOSURE = 30.0


def render_family_stack(family: str, seed: int, size: int, z_step: float) -> tuple[Any, float]:
    """(FocalStack, true focus in µm): one deepfocus-10x stack −60…+60 µm of ``family``."""
    from focuskit.io import FocalStack
    from focuskit.optics import Brightfield, get_preset
    from focuskit.simulate import make_sample, plan_render, render_stack

    preset = get_preset("deepfocus-10x")
    optics = preset.optics
    if family in BRIGHTFIELD_FAMILIES:
        optics = optics.with_illumination(Brightfield(na_condenser=0.2))
    rng = np.random.default_rng([seed, 14])
    focus = float(rng.uniform(-8, 8))
    z = np.arange(-60.0, 60.0 + z_step / 2, z_step)
    shape = (size, size)
    plan = plan_render(optics, z, shape, focus_z_um=focus)
    px = optics.pixel_size_um / plan.oversampling
    over = None
    if family == SATURATING_BEADS:
        sample = make_sample(
            "point-emitters",
            plan.render_shape,
            px,
            seed=seed,
            wavelength_um=optics.wavelength_um,
            density_per_100um2=0.1,
            diameter_um=0.5,
            background=0.05,
        )
        over = BEAD_OVEREXPOSURE
    else:
        sample = make_sample(
            family, plan.render_shape, px, seed=seed, wavelength_um=optics.wavelength_um
        )
    sim = render_stack(
        sample.values,
        optics,
        z,
        shape=shape,
        sample_pixel_size_um=sample.pixel_size_um,
        focus_z_um=focus,
        photons=500.0 if over is None else 200.0,
        overexposure=over,
        seed=seed,
    )
    return FocalStack(np.asarray(sim.data), z, optics.pixel_size_um, optics), focus


def measure_variants() -> list[tuple[str, str, Any]]:
    """(label, registry name, saturation): every measure as ``score`` runs it by default
    (no masking), and each maskable one with saturated pixels masked (``"auto"``)."""
    from focuskit.measures import MEASURES

    out = [(name, name, None) for name in MEASURES]
    out += [(f"{n} (masked)", n, "auto") for n, m in MEASURES.items() if m.masked is not None]
    return out


def _double_peaked(curve: np.ndarray) -> bool:
    """More than one local maximum standing ≥ 10 % of the curve's range above its surroundings."""
    from scipy.signal import find_peaks

    c = np.asarray(curve, dtype=np.float64)
    span = float(np.ptp(c))
    if span <= 0:
        return False
    # Pad with the minimum so a maximum at either end counts as a peak too.
    padded = np.concatenate([[c.min()], c, [c.min()]])
    peaks, _ = find_peaks((padded - c.min()) / span, prominence=0.1)
    return len(peaks) > 1


def measure_family_rows(args: tuple[str, int, int, float]) -> list[dict[str, Any]]:
    """Every measure variant on ``stacks`` stacks of one family: errors and double peaks."""
    from focuskit.focus import find_focus

    family, stacks, size, z_step = args
    rows = []
    for seed in range(stacks):
        stack, truth = render_family_stack(family, seed, size, z_step)
        dof = stack.optics.depth_of_field_um
        for label, name, saturation in measure_variants():
            r = find_focus(stack, name, saturation=saturation)
            rows.append(
                {
                    "family": family,
                    "seed": seed,
                    "measure": label,
                    "err_argmax_um": abs(float(stack.z_um[r.plane]) - truth),
                    "err_refined_um": abs(r.z_focus_um - truth),
                    "double_peak": _double_peaked(r.curve),
                    "dof_um": dof,
                }
            )
    return rows


def summarize_measures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per measure variant: median errors per family, the worst family, double-peak share."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    out = []
    for label in dict.fromkeys(r["measure"] for r in rows):
        mine = [r for r in rows if r["measure"] == label]
        per = {}
        for fam in families:
            f = [r for r in mine if r["family"] == fam]
            per[fam] = {
                "argmax": float(np.median([r["err_argmax_um"] for r in f])),
                "refined": float(np.median([r["err_refined_um"] for r in f])),
                "double": float(np.mean([r["double_peak"] for r in f])),
            }
        out.append(
            {
                "measure": label,
                "families": per,
                "worst_refined_um": max(v["refined"] for v in per.values()),
                "double_peak_share": float(np.mean([r["double_peak"] for r in mine])),
                "dof_um": mine[0]["dof_um"],
            }
        )
    return out


def choose_measure(
    summary: list[dict[str, Any]], *, without_optics: bool = False
) -> dict[str, Any]:
    """The winner: the smallest worst-family median refined error; ties (within 1 % of a
    DOF) broken by the smaller share of double-peaked curves (what traps Brent).
    ``without_optics``: among the measures that need no NA, λ or pixel size."""
    from focuskit.measures import get_measure

    dof = summary[0]["dof_um"]
    pool = [
        s
        for s in summary
        if not without_optics or not get_measure(s["measure"].split(" ")[0]).needs_optics
    ]
    return min(pool, key=lambda s: (round(s["worst_refined_um"] / dof, 2), s["double_peak_share"]))


def print_measure_table(summary: list[dict[str, Any]], default: str) -> None:
    from focuskit.simulate import UNSEEN_FAMILIES

    families = list(summary[0]["families"])
    short = {f: (f[:9] + ("*" if f in UNSEEN_FAMILIES else "")) for f in families}
    print(
        "\nmeasure × family (deepfocus-10x, 10×/0.3, DOF "
        f"{summary[0]['dof_um']:.2f} µm; focus hidden in ±8 µm; * = unseen family): median "
        "|error| µm of the argmax plane / of find-focus, and the share of double-peaked curves"
    )
    head = f"| {'measure':<24} | " + " | ".join(f"{short[f]:>13}" for f in families)
    head += f" | {'worst':>6} | {'2-peak':>6} |"
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for s in summary:
        cells = []
        for f in families:
            v = s["families"][f]
            mark = "!" if v["double"] > 0 else " "
            cells.append(f"{v['argmax']:>5.1f}/{v['refined']:>5.1f}{mark}".rjust(13))
        print(
            f"| {s['measure']:<24} | "
            + " | ".join(cells)
            + f" | {s['worst_refined_um']:>6.2f} | {100 * s['double_peak_share']:>5.0f}% |"
        )
    best = choose_measure(summary)
    plain = choose_measure(summary, without_optics=True)
    print(
        f"winner (smallest worst-family median find-focus error, then fewest double peaks): "
        f"{best['measure']} (worst {best['worst_refined_um']:.2f} µm, "
        f"{100 * best['double_peak_share']:.0f}% double-peaked); "
        f"focuskit.measures.DEFAULT_MEASURE = {default!r}"
        + ("" if best["measure"] == default else " — DIFFERS from this run's winner")
    )
    print(
        f"best needing no optics: {plain['measure']} (worst {plain['worst_refined_um']:.2f} µm); "
        "the default without optics is chosen on the real stacks (section 3)"
    )


# --- The measure sweep of earlier versions (--sweep) ---------------------------------------

SIM_TARGETS = ["fcfnn-20x-led", "deepr-20x-fluor", "deepfocus-10x"]
REAL_TARGETS = ["llsm_mitochondria_defocus", "wafer_reflected_brightfield", "bead_psf_na085"]


def _scope(target: str, size: int, seed: int):  # type: ignore[no-untyped-def]
    """(scope, DOF or z unit in µm, R: half the search range, True if DOF is optical)."""
    from focuskit.optics import get_preset
    from focuskit.scopes import SimulatedScope, StackScope, real_stack

    if target in SIM_TARGETS:
        preset = get_preset(target)
        ill = preset.ground_truth_illumination  # DPC for fcfnn, None otherwise
        if ill is not None:
            ill = type(ill)(ill.na_inner, ill.na_outer, ill.side, source_step_na=0.06)  # type: ignore[union-attr]
        dof = preset.optics.depth_of_field_um
        half_range = (preset.z_max_um - preset.z_min_um) / 2
        focus = float(np.random.default_rng(seed).uniform(-half_range / 2, half_range / 2))
        scope = SimulatedScope(
            preset,
            size=size,
            illumination=ill,
            photons=1000,
            seed=seed,
            focus_z_um=focus,
            # Starts lie within ±R of focus and search ±R around the start: limits at ±2R.
            z_limits_um=(focus - 2 * half_range, focus + 2 * half_range),
            stage_resolution_um=dof / 20,
        )
        return scope, dof, half_range, True
    stack = real_stack(target)
    meta = stack.metadata.get("real", {})
    na, lam = meta.get("na"), meta.get("wavelength_um")
    z = np.sort(np.asarray(stack.z_um))
    if na and lam:
        dof, optical = (
            lam / na**2 + stack.pixel_size_um / na,
            True,
        )  # OPTICS.md, e/M = pixel at sample
    else:  # no NA documented: the unit is the plane spacing around the documented focus
        i = int(np.argmin(np.abs(z - stack.focus_z_um)))
        dof, optical = float(np.mean(np.diff(z)[max(i - 1, 0) : i + 1])), False
    return StackScope(stack), dof, float(z[-1] - z[0]) / 2, optical


def run_target(args: tuple[str, int, int, list[str], list[str]]) -> list[dict[str, Any]]:
    from focuskit.search import autofocus

    target, starts, size, methods, measures = args
    scope, dof, half_range, optical = _scope(target, size, seed=1)
    truth = scope.true_focus_um()
    lo, hi = scope.z_limits_um
    rng = np.random.default_rng(7)
    start_points = np.clip(rng.uniform(truth - half_range, truth + half_range, starts), lo, hi)
    # Stop the search at DOF/4 (simulated, bead) or half a plane (stacks without optics).
    tolerance = dof / 4 if optical else dof / 2
    failure_at = dof if optical else 2 * dof  # a miss: out of the DOF, or > 1 plane off
    rows = []
    for method in methods:
        for measure in measures:
            if measure == "spectral-midband" and scope.optics is None:
                continue
            images, errors, failures = [], [], 0
            t0 = time.perf_counter()
            for z0 in start_points:
                scope.move_to(float(z0))
                scope.reset_counters()
                r = autofocus(
                    scope, method, measure, range_um=2 * half_range, tolerance_um=tolerance
                )
                err = abs(r.z_final_um - truth)
                images.append(r.images)
                errors.append(err)
                failures += int((not r.success) or err > failure_at)
            errors_a = np.asarray(errors)
            rows.append(
                {
                    "target": target,
                    "method": method,
                    "measure": measure,
                    "dof_um": dof,
                    "optical_dof": optical,
                    "images_median": float(np.median(images)),
                    "err_median_um": float(np.median(errors_a)),
                    "err_p90_um": float(np.percentile(errors_a, 90)),
                    "err_median_dof": float(np.median(errors_a) / dof),
                    "err_p90_dof": float(np.percentile(errors_a, 90) / dof),
                    "failures": failures,
                    "starts": starts,
                    "seconds": time.perf_counter() - t0,
                }
            )
    return rows


def measure_throughput() -> list[dict[str, float]]:
    from focuskit.measures import MEASURES, score

    image = np.random.default_rng(0).random((2048, 2048), dtype=np.float32) + 0.5

    def best(fn, k: int = 5) -> float:  # type: ignore[no-untyped-def]
        t = float("inf")
        for _ in range(k):
            t0 = time.perf_counter()
            fn()
            t = min(t, time.perf_counter() - t0)
        return t

    t_sum = best(lambda: np.sum(image), 20)
    out = []
    for name, m in MEASURES.items():
        kw = {"pixel_size_um": 0.325, "na": 0.5, "wavelength_um": 0.53} if m.needs_optics else {}
        t = best(lambda name=name, kw=kw: score(image, name, **kw))
        out.append({"measure": name, "ms": 1000 * t, "x_sum": t / t_sum})
    return [{"measure": "np.sum (floor)", "ms": 1000 * t_sum, "x_sum": 1.0}, *out]


def print_summary(rows: list[dict[str, Any]], targets: list[str]) -> None:
    """Per target: fewest median images among methods that are reliably in focus
    (90th-percentile |error| ≤ DOF/4 and no failure), with the ratio to Brent/tenengrad."""
    print(
        "\nsummary: best classic method per target (fewest median images with p90 |error| ≤ DOF/4 "
        "and no failures), images relative to Brent/tenengrad on the same target:"
    )
    for target in targets:
        mine = [r for r in rows if r["target"] == target]
        ok = [r for r in mine if r["err_p90_dof"] <= 0.25 and r["failures"] == 0]
        ref = next(
            (r for r in mine if r["method"] == "brent" and r["measure"] == "tenengrad"), None
        )
        if not ok:
            closest = min(mine, key=lambda r: r["err_p90_dof"])
            print(
                f"  {target}: none reliably within DOF/4; closest "
                f"{closest['method']}/{closest['measure']} (p90 {closest['err_p90_dof']:.2f} DOF, "
                f"{closest['images_median']:.0f} images)"
            )
            continue
        best = min(ok, key=lambda r: (r["images_median"], r["err_p90_dof"]))
        ratio = (
            f"; {best['images_median'] / ref['images_median']:.2f}× Brent/tenengrad's images"
            if ref
            else ""
        )
        print(
            f"  {target}: {best['method']}/{best['measure']} — {best['images_median']:.0f} images, "
            f"median |error| {best['err_median_um']:.3f} µm, p90 {best['err_p90_um']:.3f} µm "
            f"({best['err_p90_dof']:.2f} DOF){ratio}"
        )


def sweep_main(argv: list[str]) -> None:
    from focuskit.measures import MEASURES
    from focuskit.search import SEARCHES

    parser = argparse.ArgumentParser(description="every search × every measure")
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--size", type=int, default=128, help="simulated image size (pixels)")
    parser.add_argument("--targets", nargs="*", default=SIM_TARGETS + REAL_TARGETS)
    parser.add_argument("--methods", nargs="*", default=list(SEARCHES))
    parser.add_argument("--measures", nargs="*", default=list(MEASURES))
    parser.add_argument("--json", help="also write all rows to this JSON file")
    args = parser.parse_args(argv)

    jobs = [(t, args.starts, args.size, args.methods, args.measures) for t in args.targets]
    with mp.get_context("spawn").Pool(2) as pool:
        rows = [r for chunk in pool.map(run_target, jobs, chunksize=1) for r in chunk]

    header = (
        f"| {'target':<28} | {'method':<6} | {'measure':<17} | {'images':>6} | "
        f"{'|err| med µm':>12} | {'p90 µm':>8} | {'med DOF':>7} | {'p90 DOF':>7} | {'fail':>4} |"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {r['target']:<28} | {r['method']:<6} | {r['measure']:<17} | "
            f"{r['images_median']:>6.1f} | {r['err_median_um']:>12.3f} | {r['err_p90_um']:>8.3f} | "
            f"{r['err_median_dof']:>7.2f} | {r['err_p90_dof']:>7.2f} | {r['failures']:>4} |"
        )

    print(
        "DOF for simulated targets and the bead stack (NA 0.85, λ 0.52) is OPTICS.md's. The LLSM "
        "and wafer stacks document no NA: their 'DOF' unit is the plane spacing around the "
        "documented focus (0.05 µm; 3.07 µm), tolerance half of it, and a failure is an error of "
        "more than two units."
    )
    throughput = measure_throughput()
    print(f"\n| {'measure (2048² float32)':<24} | {'ms':>7} | {'× np.sum':>8} |")
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 10}|")
    for t in throughput:
        print(f"| {t['measure']:<24} | {t['ms']:>7.2f} | {t['x_sum']:>8.1f} |")

    print_summary(rows, args.targets)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "throughput": throughput}, f, indent=1)


# --- Autofocus far from focus (issue 14) -----------------------------------------------------

#: Held-out targets of the autofocus runs (issue 14: 10×/0.3 fluorescence): the unseen
#: fluorescence families and sparse beads saturating at focus; then, outside the issue's
#: set and reported apart, the unseen chrome-on-glass target under brightfield, whose
#: focus curve has real side peaks (self-images of its periods, 2p²/λ from focus).
AF_FAMILIES = ["mitochondria", "tissue-section", SATURATING_BEADS]
AF_EXTRA = ["printed-target"]
AF_METHODS = ["brent", "gss", "scan"]
#: Starts lie uniformly within this distance of focus (µm) on simulated targets.
MAX_START_OFFSET_UM = 40.0
#: Images after which the best position so far is scored (error vs images).
CHECKPOINTS = (5, 10, 15, 20)


def _family_scope(family: str, seed: int, size: int):  # type: ignore[no-untyped-def]
    """A deepfocus-10x SimulatedScope looking at ``family`` (fresh camera noise per image)."""
    from focuskit.optics import Brightfield, get_preset
    from focuskit.scopes import SimulatedScope

    preset = get_preset("deepfocus-10x")
    focus = float(np.random.default_rng([seed, 41]).uniform(-8, 8))
    options: dict[str, Any] = {}
    illumination = None
    name = family
    if family == SATURATING_BEADS:
        name = "point-emitters"
        options = {"density_per_100um2": 0.1, "diameter_um": 0.5, "background": 0.05}
    if family in BRIGHTFIELD_FAMILIES:
        illumination = Brightfield(na_condenser=0.2)
    scope = SimulatedScope(
        preset,
        sample=name,
        sample_options=options,
        size=size,
        focus_z_um=focus,
        photons=500.0,
        seed=seed,
        illumination=illumination,
        z_limits_um=(focus - 100.0, focus + 100.0),
        stage_resolution_um=preset.optics.depth_of_field_um / 40,
    )
    if family == SATURATING_BEADS:
        # Expose so that the in-focus peak is BEAD_OVEREXPOSURE × the full well.
        cam = scope.optics.camera
        full_well = (cam.max_adu - cam.offset_adu) / cam.gain_adu_per_e
        image = scope.render(0.0)
        scope.photons = BEAD_OVEREXPOSURE * full_well * float(image.mean()) / float(image.max())
    return scope


def _real_dof(stack) -> float:  # type: ignore[no-untyped-def]
    """OPTICS.md's DOF where SOURCE.md gives the NA, else the full stack's curve width."""
    from focuskit.focus import find_focus

    meta = stack.metadata["real"]
    if meta.get("na"):
        n = meta.get("immersion_index", 1.0)
        return meta["wavelength_um"] * n / meta["na"] ** 2 + n * stack.pixel_size_um / meta["na"]
    dof = find_focus(stack).dof_um
    assert dof is not None
    return float(dof)


def af_rows(args: tuple[str, int, int]) -> list[dict[str, Any]]:
    """Every method × (default measure, tenengrad) from ``starts`` starts on one target."""
    from focuskit.measures import default_measure
    from focuskit.scopes import StackScope, real_stack
    from focuskit.search import autofocus

    target, starts, size = args
    rows = []
    rng = np.random.default_rng(11)
    real = target in REAL_TARGETS
    stack = real_stack(target) if real else None
    dof = _real_dof(stack) if real else 0.0
    for k in range(starts):
        if real:
            scope = StackScope(stack)
            truth = float(stack.focus_z_um)
            lo, hi = scope.z_limits_um
            z0 = float(rng.uniform(max(lo, truth - MAX_START_OFFSET_UM), min(hi, truth + 40.0)))
            range_um = 2 * (hi - lo)  # the whole stack from any start
        else:
            scope = _family_scope(target, seed=k, size=size)
            truth = scope.true_focus_um()
            dof = scope.optics.depth_of_field_um
            z0 = truth + float(rng.uniform(-MAX_START_OFFSET_UM, MAX_START_OFFSET_UM))
            range_um = 100.0  # ±50 µm around the start: focus is always inside
        measures = list(dict.fromkeys([default_measure(scope.optics), "tenengrad"]))
        for method in AF_METHODS:
            for measure in measures:
                scope.move_to(z0)
                scope.reset_counters()
                r = autofocus(scope, method, measure, range_um=range_um, tolerance_um=dof / 4)
                err = abs(r.z_final_um - truth)
                best_after = {}
                for n in CHECKPOINTS:
                    seen = r.trace[: min(n, len(r.trace))]
                    best_after[n] = abs(max(seen, key=lambda t: t[1])[0] - truth)
                converged = not r.message.startswith(("failed", "stopped"))
                rows.append(
                    {
                        "target": target,
                        "start": k,
                        "offset_um": z0 - truth,
                        "method": method,
                        "measure": measure,
                        "default": measure == default_measure(scope.optics),
                        "dof_um": dof,
                        "images": r.images,
                        "err_um": err,
                        "success": r.success,
                        "old_rule_success": converged,
                        "false_success": r.success and err > dof / 2,
                        "old_rule_false_success": converged and err > dof / 2,
                        "best_after": best_after,
                        "message": r.message,
                    }
                )
    return rows


def print_af_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"\nautofocus from starts up to ±{MAX_START_OFFSET_UM:g} µm of focus (real stacks: "
        "anywhere in the stack); tolerance DOF/4. 'false ✓' = reported success while "
        "|error| > DOF/2 (verified rule; old rule = converged)"
    )
    head = (
        f"| {'target':<27} | {'method':<5} | {'measure':<17} | {'img':>4} | "
        + " | ".join(f"{f'@{n}':>5}" for n in CHECKPOINTS)
        + f" | {'|err| µm':>8} | {'p90':>6} | {'DOF':>5} | {'succ':>4} | {'false ✓':>7} | "
        f"{'old':>4} |"
    )
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    keys = list(dict.fromkeys((r["target"], r["method"], r["measure"]) for r in rows))
    for target, method, measure in keys:
        g = [
            r for r in rows if (r["target"], r["method"], r["measure"]) == (target, method, measure)
        ]
        err = np.array([r["err_um"] for r in g])
        at = [float(np.median([r["best_after"][n] for r in g])) for n in CHECKPOINTS]
        print(
            f"| {target:<27} | {method:<5} | {measure:<17} | "
            f"{np.median([r['images'] for r in g]):>4.0f} | "
            + " | ".join(f"{a:>5.1f}" for a in at)
            + f" | {np.median(err):>8.2f} | {np.percentile(err, 90):>6.2f} | "
            f"{g[0]['dof_um']:>5.2f} | {sum(r['success'] for r in g):>2}/{len(g):<1} | "
            f"{sum(r['false_success'] for r in g):>3}/{len(g):<3} | "
            f"{sum(r['old_rule_false_success'] for r in g):>4} |"
        )
    print("@n: median |error| (µm) of the best position after n images.")


# --- find-focus on real stacks and coarse uneven stacks ---------------------------------------


def _subsets(n: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    for k in (3, 5):
        for offset in range(k):
            yield f"every {k}th+{offset}", np.arange(offset, n, k)
    for j in range(6):  # jittered: one plane per bin of three, at random within the bin
        yield f"jitter {j}", np.unique([min(n - 1, b + rng.integers(0, 3)) for b in range(0, n, 3)])


def find_focus_rows(name: str, measures: list[str | None]) -> list[dict[str, Any]]:
    """find-focus (new) and the old refinement on a real stack and its coarse subsets."""
    from focuskit.focus import find_focus, refine_peak
    from focuskit.io import FocalStack
    from focuskit.scopes import real_stack

    stack = real_stack(name)
    truth = float(stack.focus_z_um)
    dof = _real_dof(stack)
    data, z = np.asarray(stack.data), np.asarray(stack.z_um, dtype=np.float64)
    cases = [("full stack", np.arange(len(z)))]
    cases += [c for c in _subsets(len(z), np.random.default_rng(0)) if len(c[1]) >= 3]
    rows = []
    for label, idx in cases:
        sub = FocalStack(data[idx], z[idx], stack.pixel_size_um, stack.optics)
        allowed = max(dof / 4, float(np.min(np.abs(z[idx] - truth))))
        for measure in measures:
            r = find_focus(sub, measure)
            old = refine_peak(z[idx], r.curve, r.plane, "parabola")  # z increasing here
            rows.append(
                {
                    "stack": name,
                    "subset": label,
                    "measure": r.measure,
                    "planes": len(idx),
                    "allowed_um": allowed,
                    "err_um": abs(r.z_focus_um - truth),
                    "old_err_um": abs(old - truth),
                    "refined": r.refined,
                }
            )
    return rows


def print_find_focus_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\nfind-focus on the real stacks and coarse uneven subsets (every 3rd/5th plane, "
        "jittered): misses of max(DOF/4, nearest-plane distance), new refinement vs the old "
        "one (parabola through the two neighbours, however far) on the same curve"
    )
    head = (
        f"| {'stack':<27} | {'measure':<17} | {'cases':>5} | {'refined':>7} | {'misses':>6} | "
        f"{'old':>4} | {'worst err/allowed':>17} | {'old worst':>9} |"
    )
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for key in dict.fromkeys((r["stack"], r["measure"]) for r in rows):
        g = [r for r in rows if (r["stack"], r["measure"]) == key]
        ratio = [r["err_um"] / max(r["allowed_um"], 1e-12) for r in g]
        old = [r["old_err_um"] / max(r["allowed_um"], 1e-12) for r in g]
        print(
            f"| {key[0]:<27} | {key[1]:<17} | {len(g):>5} | {sum(r['refined'] for r in g):>7} | "
            f"{sum(v > 1 for v in ratio):>6} | {sum(v > 1 for v in old):>4} | "
            f"{max(ratio):>17.2f} | {max(old):>9.2f} |"
        )


def main() -> None:
    from focuskit.measures import DEFAULT_MEASURE, DEFAULT_MEASURE_WITHOUT_OPTICS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-minute run")
    parser.add_argument("--stacks", type=int, help="stacks per family in the measure table")
    parser.add_argument("--starts", type=int, help="autofocus starts per target")
    parser.add_argument("--size", type=int, default=128, help="simulated image size (pixels)")
    parser.add_argument("--sweep", action="store_true", help="the old every-measure sweep")
    parser.add_argument("--json", help="also write all rows to this JSON file")
    args, rest = parser.parse_known_args()
    if args.sweep:
        passed = ["--size", str(args.size)] + (["--json", args.json] if args.json else [])
        passed += ["--starts", str(args.starts)] if args.starts else []
        return sweep_main(rest + passed)
    stacks = args.stacks or (2 if args.quick else 4)
    starts = args.starts or (6 if args.quick else 16)
    z_step = 2.0 if args.quick else 1.0
    t0 = time.perf_counter()

    families = [*FLUOR_FAMILIES, SATURATING_BEADS, *BRIGHTFIELD_FAMILIES]
    with mp.get_context("spawn").Pool(2) as pool:
        m_rows = [
            r
            for chunk in pool.map(
                measure_family_rows,
                [(f, stacks, args.size, z_step) for f in families],
                chunksize=1,
            )
            for r in chunk
        ]
        af_targets = AF_FAMILIES + REAL_TARGETS + AF_EXTRA
        a_rows = [
            r
            for chunk in pool.map(
                af_rows, [(t, starts, args.size) for t in af_targets], chunksize=1
            )
            for r in chunk
        ]
    plain_best = choose_measure(summarize_measures(m_rows), without_optics=True)["measure"]
    ff_measures = list(dict.fromkeys([None, plain_best.split(" ")[0]]))
    f_rows = [r for name in REAL_TARGETS for r in find_focus_rows(name, ff_measures)]

    summary = summarize_measures(m_rows)
    print_measure_table(summary, DEFAULT_MEASURE)
    print_af_table(a_rows)
    print_find_focus_table(f_rows)

    # Summary line: every ratio against a baseline measured in this run.
    issue = [r for r in a_rows if r["target"] not in AF_EXTRA]
    new = [r for r in issue if r["default"]]
    ten = [r for r in issue if r["measure"] == "tenengrad"]
    extra = [r for r in a_rows if r["target"] in AF_EXTRA and r["default"]]
    b_new = [r for r in new if r["method"] == "brent"]
    b_ten = [r for r in ten if r["method"] == "brent"]
    per_method = ", ".join(
        f"{m} {sum(r['false_success'] for r in new if r['method'] == m)}/"
        f"{sum(r['method'] == m for r in new)}"
        for m in AF_METHODS
    )
    ff_new = [r for r in f_rows if r["measure"] == DEFAULT_MEASURE_WITHOUT_OPTICS]
    best = choose_measure(summary)
    ten_row = next(s for s in summary if s["measure"] == "tenengrad")
    med = float(np.median([r["err_um"] for r in b_new]))
    med_ten = float(np.median([r["err_um"] for r in b_ten]))
    print(
        f"\nsummary: success while |err| > DOF/2, default measure, fluorescence + real stacks: "
        f"{per_method} (old rule on the same runs: "
        f"{sum(r['old_rule_false_success'] for r in new)}/{len(new)}; Tenengrad: "
        f"{sum(r['false_success'] for r in ten)}/{len(ten)}, old rule "
        f"{sum(r['old_rule_false_success'] for r in ten)}/{len(ten)}; brightfield periodic target: "
        f"{sum(r['false_success'] for r in extra)}/{len(extra)}); success rate "
        f"{np.mean([r['success'] for r in new]):.0%}; Brent median |err| "
        f"{med:.2f} µm vs Tenengrad {med_ten:.2f} µm ({med / max(med_ten, 1e-12):.2f}×) in "
        f"{np.median([r['images'] for r in b_new]):.0f} vs "
        f"{np.median([r['images'] for r in b_ten]):.0f} images; find-focus misses "
        f"{sum(r['err_um'] > r['allowed_um'] for r in ff_new)}/{len(ff_new)} vs old refinement "
        f"{sum(r['old_err_um'] > r['allowed_um'] for r in ff_new)}/{len(ff_new)}; measure table: "
        f"{best['measure']} worst-family {best['worst_refined_um']:.2f} µm vs Tenengrad "
        f"{ten_row['worst_refined_um']:.2f} µm "
        f"({best['worst_refined_um'] / max(ten_row['worst_refined_um'], 1e-12):.2f}×); "
        f"{time.perf_counter() - t0:.0f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"measures": m_rows, "autofocus": a_rows, "find_focus": f_rows}, f, indent=1)


if __name__ == "__main__":
    main()
