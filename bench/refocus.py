"""Benchmark: Deep-R offline refocusing against Richardson–Lucy and Landweber with the true PSF.

Held-out simulated fields of ``deepr-40x-fluor`` (seeds never used in training; beads,
cells and fluorescent tissue), defocus −5…+5 µm:

1. mean SSIM and RMSE over |z| ≤ 5 µm of the input, the Deep-R output, RL and Landweber
   (100 iterations each, given the true PSF at the true defocus), against the in-focus plane,
   10-pixel border cropped (Luo et al. Fig. 2b, 5, S4). Target: output SSIM ≥ 0.85 and ≥ RL + 0.10.
2. bead lateral FWHM of the output against the in-focus FWHM (Fig. 4b). Target: within 20 %.
3. latency per 512² tile on this machine's CPU threads and s/mm² (Table S2), next to a Brent
   autofocus (Tenengrad, tolerance DOF/4) run in the same process on a simulated 512² scope:
   images taken, its compute time, and both with a modelled 100 ms exposure per image (the
   paper's OughtaFocus setting) and the scope's stage-move model. Target ≤ 0.3 s per tile.
4. the defocus-map decoder: RMSE on uniformly defocused and on tilted fields.
5. the real light-sheet stack: SSIM before/after fine-tuning on part of its field.
H. first of all, do no harm (--harm-only runs just this): every fluorescence family at
   z = 0, ±1, ±2.5, ±4 µm — input, RL-TV told the true |z|, the physics path with the
   estimated |z|, Deep-R and ``auto`` (Deep-R checked by re-blurring, physics elsewhere),
   SSIM to the noise-free in-focus image, harm rates, the share of Deep-R's losses the
   check flags, time per 512² image by part; then the real light-sheet stack
   ($FOCUSKIT_REAL_DATA). Targets: auto ≥ input + 0.10, harm 0 %, flags ≥ 90 %, ≤ 1 s.
0. then, out of family ("Sample families"): the bundled model, RL and Landweber on every
   fluorescence family (the bundled model never saw any of them), and with --lofo-steps N
   a leave-one-family-out Deep-R trained here per fold.

    python bench/refocus.py [--model builtin:refocus-40x-fluor] [--fields-per-sample 2]
                            [--family-fields 1] [--lofo-steps 0] [--quick] [--json out.json]
                            [--harm-fields 1] [--harm-only]

Summary: output SSIM − RL SSIM, and Deep-R's time per field / Brent's (both with exposure).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

EXPOSURE_S = 0.1  # the paper's OughtaFocus exposure


def latency(model: Any, size: int = 512, repeats: int = 10) -> dict[str, float]:
    """Median wall time of ``model.refocus`` on one size² tile (after a warm-up call)."""
    from focuskit.simulate import simulate_stack

    image = simulate_stack(
        "deepr-40x-fluor", size=size, z_um=[2.0], photons=2000, seed=99_999
    ).data[0]
    image = np.asarray(image, dtype=np.float32)
    model.refocus(image, tile=size)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.refocus(image, tile=size)
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    area_mm2 = (size * model.pixel_size_um * 1e-3) ** 2
    t_fft = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.fft.rfft2(image)
        t_fft.append(time.perf_counter() - t0)
    return {
        "s_per_tile": t,
        "s_per_mm2": t / area_mm2,
        "tile_mm2": area_mm2,
        "fft_ms": 1000 * float(np.median(t_fft)),
    }


def brent_baseline(starts: int = 8, size: int = 512, seed: int = 1) -> dict[str, float]:
    """Brent (Tenengrad) autofocus on a simulated deepr-40x-fluor scope
    from random starts within ±5 µm.

    Time = the scope's timing model (100 ms exposures, stage moves and travel) + the focus
    measure's compute on every image, measured here; the simulator's rendering is not counted."""
    from focuskit.measures import score
    from focuskit.optics import get_preset
    from focuskit.scopes import SimulatedScope
    from focuskit.search import autofocus

    preset = get_preset("deepr-40x-fluor")
    dof = preset.optics.depth_of_field_um
    scope = SimulatedScope(
        preset,
        size=size,
        photons=2000,
        seed=seed,
        focus_z_um=0.0,
        z_limits_um=(-20.0, 20.0),
        stage_resolution_um=dof / 20,
        exposure_time_s=EXPOSURE_S,
    )
    image = np.asarray(scope.snap(), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(10):
        score(image, "tenengrad")
    measure_s = (time.perf_counter() - t0) / 10
    rng = np.random.default_rng(seed)
    images, errors, hardware = [], [], []
    for z0 in rng.uniform(-5, 5, starts):
        scope.move_to(float(z0))
        scope.reset_counters()
        r = autofocus(scope, "brent", "tenengrad", range_um=20.0, tolerance_um=dof / 4)
        images.append(r.images)
        errors.append(abs(r.z_final_um - scope.true_focus_um()))
        hardware.append(scope.elapsed_s)
    n = float(np.median(images))
    compute = n * measure_s
    return {
        "images": n,
        "error_median_um": float(np.median(errors)),
        "compute_s": compute,
        "with_exposure_s": float(np.median(hardware)) + compute,
        "dof_um": dof,
    }


def family_quality(model: Any, families: list[str], fields: int, z_um: np.ndarray, say: Any) -> Any:
    """SSIM of the input, Deep-R, RL and Landweber (true PSF) family by family."""
    from focuskit.refocus.analyses import analyze_refocus_quality
    from focuskit.report import evaluate_families

    def one(fam: str) -> dict[str, float]:
        q = analyze_refocus_quality(model, samples=[fam], fields_per_sample=fields, z_um=z_um)
        v = q["by_sample"][fam]
        say(f"{fam}: SSIM input {v['input']['ssim']:.3f}, Deep-R {v['deep-r']['ssim']:.3f}")
        return {
            "ssim_input": v["input"]["ssim"],
            "ssim_deepr": v["deep-r"]["ssim"],
            "ssim_rl": v["rl"]["ssim"],
            "ssim_landweber": v["landweber"]["ssim"],
            "deepr_minus_input": v["deep-r"]["ssim"] - v["input"]["ssim"],
            "deepr_minus_rl": v["deep-r"]["ssim"] - v["rl"]["ssim"],
        }

    higher = dict.fromkeys(("ssim_input", "ssim_deepr", "ssim_rl", "ssim_landweber"), False)
    higher |= {"deepr_minus_input": False, "deepr_minus_rl": False}
    return evaluate_families(
        families,
        one,
        title=(
            f"the bundled Deep-R on every fluorescence family ({fields} field(s) each, "
            f"z = {', '.join(f'{z:+g}' for z in z_um)} µm; SSIM to the in-focus plane; RL and "
            "Landweber with the true PSF)"
        ),
        lower_is_better=higher,
    )


def lofo_refocus(steps: int, fields: int, say: Any) -> Any:
    """Leave one fluorescence family out: a Deep-R trained here on the others, measured on it."""
    from focuskit.refocus import train
    from focuskit.refocus.analyses import analyze_refocus_quality
    from focuskit.report import leave_one_family_out
    from focuskit.simulate import sample_families

    fams = sample_families("fluorescence", split="train")
    z = np.array([-4.0, -2.5, -1.0, 1.0, 2.5, 4.0])

    def train_on(others: list[str]) -> Any:
        say(f"training Deep-R on {len(others)} families ({steps} steps)")
        return train(simulate=3 * len(others), samples=others, steps=steps, dpm_steps=0, seed=0)

    def evaluate(m: Any, fam: str) -> dict[str, float]:
        v = analyze_refocus_quality(m, samples=[fam], fields_per_sample=fields, z_um=z)
        b = v["by_sample"][fam]
        return {
            "ssim_input": b["input"]["ssim"],
            "ssim_deepr": b["deep-r"]["ssim"],
            "ssim_rl": b["rl"]["ssim"],
            "deepr_minus_input": b["deep-r"]["ssim"] - b["input"]["ssim"],
        }

    table = leave_one_family_out(
        fams,
        train_on,
        evaluate,
        title=f"leave one family out: Deep-R trained here ({steps} steps) without the family",
        lower_is_better=dict.fromkeys(("ssim_input", "ssim_deepr", "ssim_rl"), False)
        | {"deepr_minus_input": False},
    )
    print()
    print(table.format())
    print(table.summary("deepr_minus_input"))
    return table


HARM_Z_UM = (0.0, -1.0, 1.0, -2.5, 2.5, -4.0, 4.0)


def no_harm(model: Any, fields: int, size: int, say: Any) -> dict[str, Any]:
    """Issue "refocusing that does no harm": every fluorescence family at z = 0, ±1, ±2.5,
    ±4 µm, scored by SSIM against the noise-free in-focus image of the same field.

    Methods: the input; RL-TV given the true |z| (the physics path told the defocus); the
    physics path with |z| estimated from the image; Deep-R; ``auto`` (Deep-R where its
    re-blurred output explains the measurement, physics elsewhere). Harm: an output whose
    SSIM is below the input's by more than 1e-4. Flag rate: of the images where Deep-R's
    SSIM is below the physics output's, the share ``auto`` did not keep Deep-R on.
    """
    from focuskit.measures import ssim_to_truth
    from focuskit.optics import get_preset
    from focuskit.refocus import psf_family_for, refocus_checked
    from focuskit.report import evaluate_families
    from focuskit.simulate import UNSEEN_FAMILIES, sample_families, simulate_stack

    preset = get_preset("deepr-40x-fluor")
    family = psf_family_for(preset.optics)
    methods = ("input", "rl_true", "physics", "deepr", "auto")
    records: list[dict[str, Any]] = []
    seconds: dict[str, list[float]] = {"deepr": [], "physics": [], "check": [], "auto": []}

    def one(fam: str) -> dict[str, float]:
        rows = []
        for k in range(fields):
            seed = 7000 + 31 * k
            noisy = simulate_stack(
                preset, sample=fam, size=size, z_um=HARM_Z_UM, photons=2000, seed=seed
            )
            clean = simulate_stack(preset, sample=fam, size=size, z_um=HARM_Z_UM, seed=seed)
            truth = np.asarray(clean.data[list(HARM_Z_UM).index(0.0)], np.float64)
            for j, z in enumerate(HARM_Z_UM):
                y = np.asarray(noisy.data[j], np.float64)
                t0 = time.perf_counter()
                auto = refocus_checked(y, method="auto", refocuser=model, family=family)
                seconds["auto"].append(time.perf_counter() - t0)
                for part in ("deepr", "physics", "check"):
                    seconds[part].append(auto.seconds[part])
                deepr = refocus_checked(y, method="deepr", refocuser=model, family=family)
                phys = refocus_checked(y, method="physics", family=family)
                told = refocus_checked(y, method="physics", family=family, z_um=abs(z))
                ssim = {
                    "input": ssim_to_truth(y, truth),
                    "rl_true": ssim_to_truth(told.image, truth),
                    "physics": ssim_to_truth(phys.image, truth),
                    "deepr": ssim_to_truth(deepr.image, truth),
                    "auto": ssim_to_truth(auto.image, truth),
                }
                rows.append(
                    {
                        "family": fam,
                        "z_um": z,
                        "seed": seed,
                        **{f"ssim_{m}": v for m, v in ssim.items()},
                        "kept_deepr": bool(np.all(auto.source == "deepr")),
                        "z_est_um": float(np.mean(auto.z_um)),
                        "chi2_deepr": float(np.mean(auto.chi2_deepr)),
                    }
                )
        records.extend(rows)
        say(
            f"{fam}: SSIM input {np.mean([r['ssim_input'] for r in rows]):.3f}, auto "
            f"{np.mean([r['ssim_auto'] for r in rows]):.3f}"
        )
        out = {f"ssim_{m}": float(np.mean([r[f"ssim_{m}"] for r in rows])) for m in methods}
        for m in ("physics", "deepr", "auto"):
            out[f"harm_{m}"] = float(
                np.mean([r[f"ssim_{m}"] < r["ssim_input"] - 1e-4 for r in rows])
            )
        out["auto_minus_input"] = out["ssim_auto"] - out["ssim_input"]
        return out

    fams = sample_families("fluorescence")
    lower = {f"ssim_{m}": False for m in methods} | {"auto_minus_input": False}
    table = evaluate_families(
        fams,
        one,
        title=(
            f"do no harm: every fluorescence family ({fields} field(s) of {size}² each, z = "
            f"{', '.join(f'{z:+g}' for z in HARM_Z_UM)} µm, 2000 photons; SSIM to the noise-free "
            f"in-focus image; unseen families: {', '.join(UNSEEN_FAMILIES)})"
        ),
        lower_is_better=lower,
    )
    bad = [r for r in records if r["ssim_deepr"] < r["ssim_physics"]]
    flagged = float(np.mean([not r["kept_deepr"] for r in bad])) if bad else float("nan")
    overall = {m: float(np.mean([r[f"ssim_{m}"] for r in records])) for m in methods}
    harm = {
        m: float(np.mean([r[f"ssim_{m}"] < r["ssim_input"] - 1e-4 for r in records]))
        for m in ("rl_true", "physics", "deepr", "auto")
    }
    timing = {k: float(np.median(v)) for k, v in seconds.items()}
    return {
        "table": table,
        "records": records,
        "overall": overall,
        "harm": harm,
        "flag_rate": flagged,
        "flag_cases": len(bad),
        "seconds": timing,
        "size": size,
    }


def real_stack_harm(model: Any, crop: int = 512) -> dict[str, Any] | None:
    """The real lattice light-sheet stack (shared/data/real): every defocused plane
    refocused by Deep-R, physics and auto, SSIM to the in-focus plane (z = 0). Its NA and
    pixel size are not known: the model's optics stand in for the PSF family."""
    import os
    from pathlib import Path

    import tifffile

    from focuskit.measures import ssim_to_truth
    from focuskit.refocus import psf_family_for, refocus_checked

    root = os.environ.get("FOCUSKIT_REAL_DATA")
    folder = Path(root) / "llsm_mitochondria_defocus" if root else None
    if folder is None or not folder.is_dir():
        print("\nreal light-sheet stack: not found (set FOCUSKIT_REAL_DATA); skipped")
        return None
    stack = tifffile.imread(folder / "stack.tif").astype(np.float64)
    rows = np.loadtxt(folder / "z_positions.csv", delimiter=",", skiprows=1, usecols=(2,))
    z = np.asarray(rows, dtype=float).ravel()
    sl = (slice(0, crop), slice(0, crop))
    truth = stack[int(np.argmin(np.abs(z)))][sl]
    family = psf_family_for(model.optics)
    out = []
    for plane, zi in zip(stack, z, strict=True):
        if zi == 0:
            continue
        y = plane[sl]
        auto = refocus_checked(y, refocuser=model, family=family)
        deepr = refocus_checked(y, method="deepr", refocuser=model, family=family)
        phys = refocus_checked(y, method="physics", family=family)
        out.append(
            {
                "z_um": float(zi),
                "input": ssim_to_truth(y, truth),
                "deepr": ssim_to_truth(deepr.image, truth),
                "physics": ssim_to_truth(phys.image, truth),
                "auto": ssim_to_truth(auto.image, truth),
                "kept_deepr": int(np.sum(auto.source == "deepr")),
            }
        )
    mean = {m: float(np.mean([r[m] for r in out])) for m in ("input", "deepr", "physics", "auto")}
    harm = {
        m: float(np.mean([r[m] < r["input"] - 1e-4 for r in out]))
        for m in ("deepr", "physics", "auto")
    }
    print(
        f"\n## real lattice light-sheet stack ({len(out)} defocused planes, |z| ≤ "
        f"{np.max(np.abs(z)):.2f} µm, {crop}² crop; SSIM to the in-focus plane)\n"
    )
    _table(
        ["method", "mean SSIM", "harm rate"],
        [[m, f"{mean[m]:.3f}", f"{harm[m]:.1%}" if m in harm else "—"] for m in mean],
    )
    return {"rows": out, "mean": mean, "harm": harm}


def print_no_harm(h: dict[str, Any]) -> None:
    """The do-no-harm tables and their summary line."""
    print()
    print(h["table"].format())
    print(h["table"].summary("auto_minus_input"))
    names = {
        "input": "input",
        "rl_true": "RL-TV, true |z|",
        "physics": "physics, estimated |z|",
        "deepr": "Deep-R",
        "auto": "auto (checked)",
    }
    print(f"\n## all families: mean SSIM and harm rate ({len(h['records'])} images)\n")
    _table(
        ["method", "mean SSIM", "harm rate (SSIM below the input's)"],
        [
            [names[m], f"{h['overall'][m]:.3f}", f"{h['harm'][m]:.1%}" if m in h["harm"] else "—"]
            for m in names
        ],
    )
    by_z = {}
    for r in h["records"]:
        by_z.setdefault(r["z_um"], []).append(r)
    print("\nby defocus (mean SSIM over families):\n")
    _table(
        ["z (µm)", *names.values(), "estimated |z| (µm)"],
        [
            [
                f"{z:+.1f}",
                *[f"{np.mean([r[f'ssim_{m}'] for r in rs]):.3f}" for m in names],
                f"{np.mean([r['z_est_um'] for r in rs]):.2f}",
            ]
            for z, rs in sorted(by_z.items())
        ],
    )
    t = h["seconds"]
    print(
        f"\ntime per {h['size']}² image (median, this CPU): Deep-R {t['deepr']:.3f} s, physics "
        f"(estimate + RL-TV) {t['physics']:.3f} s, re-blur checks {t['check']:.3f} s; auto in "
        f"all {t['auto']:.3f} s"
    )
    print(
        f"consistency check: of the {h['flag_cases']} images where Deep-R's SSIM is below the "
        f"physics output's, auto fell back on {h['flag_rate']:.0%}"
    )
    print(
        f"summary (do no harm): auto mean SSIM {h['overall']['auto']:.3f} vs input "
        f"{h['overall']['input']:.3f} (+{h['overall']['auto'] - h['overall']['input']:.3f}; "
        f"target +0.10, ≥ 0.80: "
        f"{'met' if h['overall']['auto'] >= max(0.8, h['overall']['input'] + 0.1) else 'NOT met'}"
        f"), vs RL-TV with the true |z| {h['overall']['rl_true']:.3f} = "
        f"{h['overall']['auto'] / h['overall']['rl_true']:.2f}×; harm rate auto "
        f"{h['harm']['auto']:.1%} (target 0 %: {'met' if h['harm']['auto'] == 0 else 'NOT met'})"
        f", Deep-R alone {h['harm']['deepr']:.1%}; flags {h['flag_rate']:.0%} of Deep-R's "
        f"losses to physics (target ≥ 90 %)"
        + (
            f"; real light-sheet stack: auto {h['real']['mean']['auto']:.3f} vs input "
            f"{h['real']['mean']['input']:.3f}, harm {h['real']['harm']['auto']:.1%} (Deep-R "
            f"{h['real']['mean']['deepr']:.3f}, harm {h['real']['harm']['deepr']:.1%})"
            if h.get("real")
            else ""
        )
    )


def _dump(path: str | None, out: dict[str, Any]) -> None:
    if path:
        with open(path, "w") as fh:
            json.dump(out, fh, default=float)


def _table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main() -> None:
    from focuskit.refocus import Refocuser
    from focuskit.refocus.analyses import (
        analyze_bead_fwhm,
        analyze_dpm_uniform,
        analyze_real_refocus,
        analyze_refocus_quality,
        analyze_tilted_sample,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:refocus-40x-fluor")
    parser.add_argument("--fields-per-sample", type=int, default=2)
    parser.add_argument("--real-steps", type=int, default=300)
    parser.add_argument(
        "--quick", action="store_true", help="fewer fields and z values (a smoke run)"
    )
    parser.add_argument(
        "--family-fields", type=int, default=1, help="fields per sample family (0: skip)"
    )
    parser.add_argument(
        "--lofo-steps",
        type=int,
        default=0,
        help="GAN steps per leave-one-family-out fold (0: skip; each fold trains a Deep-R)",
    )
    parser.add_argument(
        "--harm-fields", type=int, default=1, help="fields per family of the do-no-harm table"
    )
    parser.add_argument(
        "--harm-only", action="store_true", help="only the do-no-harm tables (issue 13)"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    model = Refocuser.load(args.model)
    say = lambda m: print(f"  … {m}", flush=True)  # noqa: E731
    z_step = 2.5 if args.quick else 1.0
    fields = 1 if args.quick else args.fields_per_sample
    out: dict[str, Any] = {"model": args.model}

    harm = None
    if args.harm_fields > 0:
        harm = no_harm(model, args.harm_fields, 512, say)
        harm["real"] = real_stack_harm(model)
        print_no_harm(harm)
        out["no_harm"] = {k: v for k, v in harm.items() if k != "table"} | {
            "table": harm["table"].to_dict()
        }
        if args.harm_only:
            _dump(args.json, out)
            return

    # 0. out of family: every fluorescence family (the bundled model was trained on the
    # legacy beads / cells / fluorescent-tissue generators, so each family is new to it).
    fam_table = None
    if args.family_fields > 0:
        from focuskit.simulate import sample_families

        fams = sample_families("fluorescence")
        fam_table = family_quality(
            model, fams, args.family_fields, np.array([-4.0, -2.5, -1.0, 1.0, 2.5, 4.0]), say
        )
        out["families"] = fam_table.to_dict()
        print()
        print(fam_table.format())
        print(fam_table.summary("deepr_minus_input"))
    if args.lofo_steps > 0:
        out["lofo"] = lofo_refocus(args.lofo_steps, args.family_fields or 1, say).to_dict()
    else:
        print(
            "\nleave-one-family-out Deep-R training: skipped (each fold trains a GAN; run with "
            "--lofo-steps N, e.g. 2000 on a GPU)"
        )

    # 1. quality
    q = analyze_refocus_quality(
        model, fields_per_sample=fields, z_um=np.arange(-5, 5.01, z_step), progress=say
    )
    out["quality"] = q
    print("\n## SSIM / RMSE against the in-focus plane (mean over fields; 10-px border cropped)\n")
    keys = {"input": "input", "deepr": "Deep-R", "rl": "RL", "lw": "Landweber"}
    _table(
        ["z (µm)", *[f"SSIM {v}" for v in keys.values()], *[f"RMSE {v}" for v in keys.values()]],
        [
            [
                f"{r['z_um']:+.1f}"
                if not isinstance(r["z_um"], str)
                else f"**{r['z_um'].replace('|', chr(92) + '|')} µm**",
                *[f"{r[f'ssim_{k}']:.3f}" for k in keys],
                *[f"{r[f'rmse_{k}']:.3f}" for k in keys],
            ]
            for r in q["rows"]
        ],
    )
    s = next(r for r in q["rows"] if isinstance(r["z_um"], str))  # the |z| ≤ range summary row
    print("\nper sample kind, SSIM over |z| ≤ 5 µm:\n")
    _table(
        ["sample", "input", "Deep-R", "RL", "Landweber"],
        [
            [k, *[f"{v[m]['ssim']:.3f}" for m in ("input", "deep-r", "rl", "landweber")]]
            for k, v in q["by_sample"].items()
        ],
    )

    # 2. bead FWHM
    b = analyze_bead_fwhm(
        model, fields=fields, z_um=np.arange(-5, 5.01, 2.5 if args.quick else 0.5), progress=say
    )
    out["bead_fwhm"] = b
    print(
        f"\n## Bead lateral FWHM (in focus {b['in_focus_fwhm_um']:.3f} ± "
        f"{b['in_focus_fwhm_sd_um']:.3f} µm)\n"
    )

    def fwhm(mean: Any, sd: Any, n: Any) -> str:
        return "—" if mean is None or not np.isfinite(mean) else f"{mean:.3f} ± {sd:.3f} (n={n})"

    _table(
        ["z (µm)", "input FWHM (µm)", "output FWHM (µm)", "output / in focus"],
        [
            [
                f"{r['z_um']:+.1f}",
                fwhm(r["fwhm_input_um"], r["fwhm_input_sd_um"], r["n_input"]),
                fwhm(r["fwhm_output_um"], r["fwhm_output_sd_um"], r["n_output"]),
                "—" if r["output_to_focus"] is None else f"{r['output_to_focus']:.2f}",
            ]
            for r in b["rows"]
        ],
    )
    ratios = np.array(
        [np.nan if r["output_to_focus"] is None else r["output_to_focus"] for r in b["rows"]], float
    )
    within = float(
        np.mean(np.abs(ratios - 1) <= 0.2)
    )  # a z where no bead could be fitted counts as a miss

    # 3. latency vs Brent
    lat = latency(model)
    brent = brent_baseline(starts=4 if args.quick else 8)
    out["latency"], out["brent"] = lat, brent
    deepr_field = lat["s_per_tile"] + EXPOSURE_S
    print("\n## Time per 512² field of view (this CPU)\n")
    _table(
        ["method", "images", "compute (s)", "with 100 ms exposures + stage (s)", "s/mm² (total)"],
        [
            [
                "Deep-R (one image, offline)",
                "1",
                f"{lat['s_per_tile']:.3f}",
                f"{deepr_field:.3f}",
                f"{deepr_field / lat['tile_mm2']:.1f}",
            ],
            [
                "Brent + Tenengrad (simulated scope)",
                f"{brent['images']:.0f}",
                f"{brent['compute_s']:.3f}",
                f"{brent['with_exposure_s']:.3f}",
                f"{brent['with_exposure_s'] / lat['tile_mm2']:.1f}",
            ],
            ["one rfft2 of the tile", "—", f"{lat['fft_ms'] / 1000:.4f}", "—", "—"],
        ],
    )
    print(
        f"\nBrent median |error| {brent['error_median_um']:.3f} µm (DOF {brent['dof_um']:.2f} µm)"
    )

    # 4. DPM
    d = analyze_dpm_uniform(model, fields_per_sample=fields, progress=say)
    t = analyze_tilted_sample(model, progress=say)
    out["dpm_uniform"], out["tilted"] = d, t
    print("\n## Defocus-map decoder\n")
    truth = "z" if model.dpm_signed else "|z| (the map is unsigned: a symmetric PSF hides the sign)"
    rows = [
        [
            "uniform defocus, \\|z\\| ≤ 5 µm",
            f"{d['rmse_in_range_um']:.3f}",
            f"per-pixel map vs the true {truth}",
        ]
    ]
    for r in t["rows"]:
        rows.append(
            [
                f"tilted {t['true_tilt_deg']:.1f}°, defocus "
                f"{r['defocus_min_um']:+.1f}…{r['defocus_max_um']:+.1f} µm",
                f"{r['dpm_rmse_um']:.3f}",
                f"fitted tilt {r['dpm_tilt_deg']:.2f}° at {r['dpm_azimuth_deg']:.0f}° "
                f"(true {t['true_tilt_deg']:.2f}° at {t['true_azimuth_deg']:.0f}°)",
            ]
        )
    _table(["sample", "RMSE (µm)", "detail"], rows)
    print(
        "\nrow-wise relative sharpness against the MIP reference (1 = as sharp): "
        + "; ".join(
            f"focal z {r['focal_z_um']:+.1f} µm: input β {r['beta_input']:.3f}, Deep-R β "
            f"{r['beta_output']:.3f}"
            for r in t["rows"]
        )
    )

    # 5. real stack
    try:
        r = analyze_real_refocus(model, steps=20 if args.quick else args.real_steps, progress=say)
        out["real"] = r
        rs = r["summary"]
        print(
            "\n## Real light-sheet stack (llsm_mitochondria_defocus), held-out rows, "
            "mean over defocused planes\n"
        )
        _table(
            ["", "input", "Deep-R as shipped", "Deep-R fine-tuned"],
            [
                [
                    "SSIM",
                    f"{rs['ssim_input']:.3f}",
                    f"{rs['ssim_before']:.3f}",
                    f"{rs['ssim_after']:.3f}",
                ],
                [
                    "RMSE",
                    f"{rs['rmse_input']:.3f}",
                    f"{rs['rmse_before']:.3f}",
                    f"{rs['rmse_after']:.3f}",
                ],
            ],
        )
    except Exception as exc:  # the real data may be absent: say so, do not fail the benchmark
        print(f"\nreal stack skipped: {exc}")

    _dump(args.json, out)
    ssim_out, ssim_rl = s["ssim_deepr"], s["ssim_rl"]
    targets = (
        f"targets: SSIM ≥ 0.85 {'met' if ssim_out >= 0.85 else 'MISSED'}, ≥ RL + 0.10 "
        f"{'met' if ssim_out - ssim_rl >= 0.10 else 'MISSED'}, FWHM within 20 % at {within:.0%} of "
        f"z, ≤ 0.3 s/tile {'met' if lat['s_per_tile'] <= 0.3 else 'MISSED'}"
    )
    fam_line = ""
    if fam_table is not None:
        fam, worst = fam_table.worst("deepr_minus_input")
        row = dict(fam_table.rows)[fam]
        fam_line = (
            f"out-of-family: worst family {fam} — Deep-R SSIM {row['ssim_deepr']:.3f} vs input "
            f"{row['ssim_input']:.3f} (Δ {worst:+.3f}) and RL {row['ssim_rl']:.3f}; mean Deep-R "
            f"{fam_table.mean('ssim_deepr'):.3f} = "
            f"{fam_table.mean('ssim_deepr') / fam_table.mean('ssim_input'):.2f}× the input's "
            f"{fam_table.mean('ssim_input'):.3f} over {len(fam_table.rows)} families; then "
            "the legacy generators: "
        )
    harm_line = ""
    if harm is not None:
        harm_line = (
            f"do no harm: auto {harm['overall']['auto']:.3f} vs input "
            f"{harm['overall']['input']:.3f}, harm {harm['harm']['auto']:.1%} (Deep-R alone "
            f"{harm['harm']['deepr']:.1%}); "
        )
    print(
        f"\nsummary: {harm_line}{fam_line}over |z| ≤ 5 µm Deep-R SSIM {ssim_out:.3f} vs RL "
        f"{ssim_rl:.3f} (Δ "
        f"{ssim_out - ssim_rl:+.3f}), input {s['ssim_input']:.3f}; time per field Deep-R / Brent = "
        f"{deepr_field / brent['with_exposure_s']:.3f} ({deepr_field:.2f} s vs "
        f"{brent['with_exposure_s']:.2f} s); {targets}"
    )


if __name__ == "__main__":
    main()
