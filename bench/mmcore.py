"""Benchmark: focuskit autofocus inside Micro-Manager acquisitions (pymmcore-plus MDA).

A drifting time-lapse on ``mmcore-sim`` — Micro-Manager's real core (``UniMMCore``) with
focuskit's simulator as its camera and focus drive — run by ``FocuskitEngine``: an autofocus
event before each of ``--timepoints`` (20) time points, focus drifting ``--drift`` (3) µm
per time point, one position. For each method: images per autofocus (median, max), the
focus error of each acquired frame (|z − focus|, median and max, and how many are within
DOF/4), simulated stage and camera time per time point (exposures of 50 ms + 20 ms latency
and travel at 1 mm/s per move), fallbacks or failures, and the real time the run took.

- ``fcfnn-20x-led`` (1024² camera, an LED array: one LED at 24° for single shot, a DPC half
  annulus as the autofocus channel of the classic searches, as OughtaFocus would be set
  up on it): Brent, golden section and scan in DPC; Brent in the single-LED channel (what
  goes wrong without an autofocus channel); single shot (one image, a move, one
  verification image; a classic fallback in DPC when a prediction is out of range); the
  paper's pure single shot (no verification image); DeepFocus calibrated in DPC on
  another field of the slide.
- ``deepfocus-10x`` (512² fluorescence): Brent, golden section, scan and DeepFocus
  (4 images, calibrated on another field).

Classic searches cover ±10 µm around the last focus with a tolerance of DOF/4. Then single
shot without a fallback on ``--fields`` (10) fields of the slide: how often its check image
confirms focus, and how often the model rejects that image as unlike its training data. Then the
engine's own cost: per autofocus event, its time beyond the search's (from every event
above), and per acquisition event, FocuskitEngine against pymmcore-plus's MDAEngine on the
same frames (a 64² camera, so that the engine, not the camera, is timed).

    python bench/mmcore.py [--timepoints 20] [--drift 3] [--seed 11] [--fields 10]
                           [--only fcfnn|deepfocus|fields] [--json out.json]

About 15 minutes on 2 cores (the DPC images of the classic searches take ~1 s each).
Summary: single shot's and DeepFocus's images per time point against Brent's (DPC on the
LED microscope) in the same run, their worst |error| against DOF/4, and the engine overhead.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

SETUPS = {
    "fcfnn": "fcfnn-20x-led",
    "deepfocus": "deepfocus-10x",
}


def _core(preset: str, seed: int, drift: float, timepoints: int, **options: Any) -> Any:
    from focuskit.mmcore import SimulatedCore

    span = abs(drift) * timepoints
    return SimulatedCore(
        preset,
        focus_z_um=4.0,
        drift_um_per_timepoint=drift,
        z_limits_um=(-40.0 - span, 40.0 + span),
        seed=seed,
        **options,
    )


def _calibrate(core: Any, config: tuple[str, str] | None, range_um: float) -> Any:
    """DeepFocus calibration on this microscope, on another field put in focus by hand."""
    from focuskit.mmcore import calibrate_deepfocus

    sim = core.simulation
    core.setXYPosition(-5000.0, 0.0)
    core.setPosition(sim.true_focus_um())
    previous = core.getCurrentConfig(config[0]) if config else None
    if config:
        core.setConfig(*config)
    try:
        return calibrate_deepfocus(core, range_um=range_um, planes=41)
    finally:
        if config and previous:
            core.setConfig(config[0], previous)
        core.setXYPosition(0.0, 0.0)
        core.setPosition(0.0)


def _runs(setup: str, args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """(row name, Autofocuser settings) for each method on one microscope."""
    from focuskit.optics import get_preset

    dof = get_preset(SETUPS[setup]).optics.depth_of_field_um
    classic = {"range_um": 20.0, "tolerance_um": dof / 4}
    if setup == "fcfnn":
        dpc = ("Illumination", "DPC")
        return [
            ("brent (DPC)", {"method": "brent", "config": dpc, **classic}),
            ("gss (DPC)", {"method": "gss", "config": dpc, **classic}),
            ("scan (DPC)", {"method": "scan", "config": dpc, **classic}),
            ("brent (LED)", {"method": "brent", **classic}),
            ("singleshot", {"method": "singleshot", "fallback_config": dpc, "range_um": 20.0}),
            (
                "singleshot, no check",
                {"method": "singleshot", "verify": False, "fallback_config": dpc, "range_um": 20.0},
            ),
            (
                "deepfocus (DPC)",
                {"method": "deepfocus", "config": dpc, "max_images": 4, "calibrate": dpc},
            ),
        ]
    return [
        ("brent", {"method": "brent", **classic}),
        ("gss", {"method": "gss", **classic}),
        ("scan", {"method": "scan", **classic}),
        ("deepfocus", {"method": "deepfocus", "max_images": 4, "calibrate": None}),
    ]


def run_setup(setup: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every method's drifting time-lapse on one microscope."""
    from focuskit.mmcore import run_timelapse
    from focuskit.optics import get_preset

    preset = SETUPS[setup]
    dof = get_preset(preset).optics.depth_of_field_um
    rows = []
    for name, settings in _runs(setup, args):
        settings = dict(settings)
        method = settings.pop("method")
        core = _core(preset, args.seed, args.drift, args.timepoints)
        t0 = time.perf_counter()
        if "calibrate" in settings:
            settings["calibration"] = _calibrate(core, settings.pop("calibrate"), 200.0)
        t_calibrated = time.perf_counter()
        result = run_timelapse(
            core, method, timepoints=args.timepoints, positions=[(0.0, 0.0, 0.0)], **settings
        )
        wall = time.perf_counter() - t_calibrated
        images = [r["n_images"] for r in result.autofocus]
        errors = [abs(f["error_um"]) for f in result.frames]
        fallbacks = sum("fell back" in r["message"] for r in result.autofocus)
        row = {
            "method": name,
            "images_median": float(np.median(images)),
            "images_max": int(max(images)),
            "images_per_timepoint": images,
            "error_median_um": float(np.median(errors)),
            "error_max_um": float(max(errors)),
            "errors_um": [float(f["error_um"]) for f in result.frames],
            "within_quarter_dof": int(sum(e <= dof / 4 for e in errors)),
            "clock_s_per_timepoint": float(np.median(result.clock_s)),
            "fallbacks": fallbacks,
            "failures": sum(not r["succeeded"] for r in result.autofocus),
            "overhead_ms": [r["overhead_ms"] for r in result.autofocus],
            "wall_s": wall,
            "calibration_s": t_calibrated - t0,
            "commands_outside_limits": core.simulation.commands_outside_limits,
        }
        rows.append(row)
        print(
            f"  {preset} {name:<16} {row['images_median']:5.1f} images, "
            f"max |error| {row['error_max_um']:.2f} µm ({wall:.0f} s)",
            flush=True,
        )
    return {"preset": preset, "dof_um": dof, "drift_um": args.drift, "rows": rows}


def singleshot_fields(args: argparse.Namespace, fields: int) -> dict[str, Any]:
    """Single shot without a fallback on many fields: how often a time point is verified."""
    from focuskit.mmcore import run_timelapse
    from focuskit.optics import get_preset

    dof = get_preset("fcfnn-20x-led").optics.depth_of_field_um
    core = _core("fcfnn-20x-led", args.seed + 1, args.drift, args.timepoints)
    positions = [(1000.0 * i, 0.0, 0.0) for i in range(fields)]  # a field of its own each
    t0 = time.perf_counter()
    result = run_timelapse(
        core, "singleshot", timepoints=args.timepoints, positions=positions, fallback=None
    )
    ok = [r for r in result.autofocus if r["succeeded"]]
    rejected = [r for r in result.autofocus if "not usable" in r["message"]]
    by_frame = {(f["t"], f["p"]): abs(f["error_um"]) for f in result.frames}
    ok_errors = [by_frame[(r["index"]["t"], r["index"]["p"])] for r in ok]
    out = {
        "fields": fields,
        "events": len(result.autofocus),
        "verified": len(ok),
        "verified_images_max": max((r["n_images"] for r in ok), default=0),
        "verified_two_images": sum(r["n_images"] <= 2 for r in ok),
        "verified_error_max_um": max(ok_errors, default=float("nan")),
        "verified_within_quarter_dof": sum(e <= dof / 4 for e in ok_errors),
        "rejected_near_focus": len(rejected),
        "fields_with_a_rejection": len({r["index"]["p"] for r in rejected}),
        "wall_s": time.perf_counter() - t0,
        "overhead_ms": [r["overhead_ms"] for r in result.autofocus],
        "commands_outside_limits": core.simulation.commands_outside_limits,
    }
    print(
        f"  single shot on {fields} fields: {out['verified']}/{out['events']} verified, "
        f"{out['rejected_near_focus']} rejected ({out['wall_s']:.0f} s)",
        flush=True,
    )
    return out


def image_event_overhead(repeats: int = 5, frames: int = 150) -> dict[str, float]:
    """Per acquisition event: FocuskitEngine − MDAEngine on the same frames (ms)."""
    import useq
    from pymmcore_plus.mda import MDAEngine

    from focuskit.mmcore import FocuskitEngine, SimulatedCore

    core = SimulatedCore("deepr-20x-fluor", size=64, focus_z_um=0.0, seed=1)
    sequence = useq.MDASequence(
        time_plan={"interval": 0, "loops": frames // 3}, z_plan={"range": 2.0, "step": 1.0}
    )
    n = len(list(sequence))

    def per_event(engine: Any) -> float:
        core.mda.set_engine(engine)
        t0 = time.perf_counter()
        core.mda.run(sequence)
        return (time.perf_counter() - t0) / n

    plain, ours = [], []
    for _ in range(repeats):  # interleaved, so that both see the same machine load
        plain.append(per_event(MDAEngine(core)))
        ours.append(per_event(FocuskitEngine(core, "brent")))
    return {
        "mdaengine_ms": 1000 * min(plain),
        "focuskit_ms": 1000 * min(ours),
        "overhead_ms": 1000 * (min(ours) - min(plain)),
        "events": n,
    }


def _table(report: dict[str, Any]) -> None:
    dof = report["dof_um"]
    print(
        f"\n{report['preset']}: drift {report['drift_um']:+g} µm per time point, "
        f"DOF {dof:.2f} µm (DOF/4 = {dof / 4:.2f} µm)"
    )
    head = (
        "| method | images/tp median | images/tp max | |error| median (µm) | |error| max (µm) "
        "| ≤ DOF/4 | stage+camera s/tp | fallbacks | failures | wall s |"
    )
    print(head)
    print("|" + "---|" * 10)
    n = None
    for r in report["rows"]:
        n = len(r["errors_um"])
        print(
            f"| {r['method']} | {r['images_median']:.1f} | {r['images_max']} | "
            f"{r['error_median_um']:.2f} | {r['error_max_um']:.2f} | "
            f"{r['within_quarter_dof']}/{n} | {r['clock_s_per_timepoint']:.2f} | "
            f"{r['fallbacks']} | {r['failures']} | {r['wall_s']:.0f} |"
        )


def _row(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in report["rows"] if r["method"] == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timepoints", type=int, default=20)
    parser.add_argument("--drift", type=float, default=3.0, help="µm per time point")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", choices=[*sorted(SETUPS), "fields"], default=None)
    parser.add_argument("--fields", type=int, default=10, help="fields for the single-shot sweep")
    parser.add_argument("--json", default=None, help="write the full report here")
    args = parser.parse_args()

    t0 = time.perf_counter()
    reports = {}
    for setup in SETUPS:
        if args.only in (None, setup):
            print(f"{SETUPS[setup]} …", flush=True)
            reports[setup] = run_setup(setup, args)
    sweep = None
    if args.only in (None, "fields"):
        print(f"single shot on {args.fields} fields …", flush=True)
        sweep = singleshot_fields(args, args.fields)
    af_overhead = [o for rep in reports.values() for r in rep["rows"] for o in r["overhead_ms"]]
    af_overhead += sweep["overhead_ms"] if sweep is not None else []
    events = image_event_overhead()
    for report in reports.values():
        _table(report)
    if sweep is not None:
        n = sweep["events"]
        print(
            f"\nfcfnn-20x-led, single shot without a fallback on {sweep['fields']} fields × "
            f"{args.timepoints} time points ({n} autofocus events, drift {args.drift:g} µm):\n"
            f"| verified in focus | of which with ≤ 2 images | max |error| verified (µm) "
            f"| within DOF/4 | verification rejected as out of range | fields with a rejection |\n"
            f"|---|---|---|---|---|---|\n"
            f"| {sweep['verified']}/{n} | {sweep['verified_two_images']}/{sweep['verified']} | "
            f"{sweep['verified_error_max_um']:.2f} | {sweep['verified_within_quarter_dof']}/"
            f"{sweep['verified']} | {sweep['rejected_near_focus']}/{n} | "
            f"{sweep['fields_with_a_rejection']}/{sweep['fields']} |"
        )
    print(
        "\nengine overhead beyond the method's own work: per autofocus event median "
        f"{np.median(af_overhead):.2f} ms (max {max(af_overhead):.2f} ms, {len(af_overhead)} "
        f"events); per acquisition event {events['overhead_ms']:+.2f} ms "
        f"(FocuskitEngine {events['focuskit_ms']:.2f} ms against MDAEngine "
        f"{events['mdaengine_ms']:.2f} ms, {events['events']} events, best of 5); target ≤ 5 ms"
    )
    outside = sum(r["commands_outside_limits"] for rep in reports.values() for r in rep["rows"])
    outside += sweep["commands_outside_limits"] if sweep is not None else 0
    print(f"stage commands outside the limits: {outside}")
    print(f"({time.perf_counter() - t0:.0f} s)")

    parts = []
    if "fcfnn" in reports:
        rep = reports["fcfnn"]
        ss, brent = _row(rep, "singleshot"), _row(rep, "brent (DPC)")
        pure = _row(rep, "singleshot, no check")
        b = brent["images_median"]
        parts.append(
            f"on fcfnn-20x-led single shot took {ss['images_median']:.1f} images per time point "
            f"({ss['images_median'] / b:.2f}× Brent's {b:.1f} in DPC; {ss['fallbacks']} "
            f"fallbacks) and the pure single shot {pure['images_median']:.1f} "
            f"({pure['images_median'] / b:.2f}×), max |error| {ss['error_max_um']:.2f} and "
            f"{pure['error_max_um']:.2f} µm against DOF/4 {rep['dof_um'] / 4:.2f} µm (Brent "
            f"{brent['error_max_um']:.2f} µm)"
        )
    if "deepfocus" in reports:
        rep = reports["deepfocus"]
        df, brent = _row(rep, "deepfocus"), _row(rep, "brent")
        parts.append(
            f"DeepFocus {df['images_median']:.1f} images against Brent's "
            f"{brent['images_median']:.1f} = {df['images_median'] / brent['images_median']:.2f}×, "
            f"max |error| {df['error_max_um']:.2f} µm (Brent {brent['error_max_um']:.2f} µm, DOF "
            f"{rep['dof_um']:.1f} µm) on deepfocus-10x"
        )
    if sweep is not None:
        parts.append(
            f"over {sweep['fields']} fields single shot verified focus at "
            f"{sweep['verified']}/{sweep['events']} time points "
            f"({sweep['verified_two_images']} with 2 images or fewer) and the model rejected "
            f"its own near-focus check image at {sweep['rejected_near_focus']}"
        )
    parts.append(
        f"engine overhead {np.median(af_overhead):.2f} ms per autofocus event and "
        f"{events['overhead_ms']:+.2f} ms per acquisition event"
    )
    print(
        f"\nsummary ({args.timepoints} time points, drift {args.drift:g} µm): " + "; ".join(parts)
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"setups": reports, "fields": sweep, "image_events": events}, fh, indent=1)


if __name__ == "__main__":
    main()
