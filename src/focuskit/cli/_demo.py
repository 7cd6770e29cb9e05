"""`focuskit demo`: every capability on embedded defaults, small enough for a laptop.

Each later capability adds its own step here.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def run_demo(output_dir: Path, console: Console) -> None:
    from focuskit import simulate_stack
    from focuskit.io import read_stack, write_stack
    from focuskit.optics import PRESETS
    from focuskit.report import stack_montage
    from focuskit.simulate import Drift

    output_dir.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]focuskit demo")
    console.print(f"Writing to [cyan]{output_dir}/[/]\n")

    table = Table(
        "preset",
        "objective",
        "λ (µm)",
        "pixel (µm)",
        "illumination",
        "DOF (µm)",
        title="Named microscopes",
    )
    for name, p in PRESETS.items():
        o = p.optics
        table.add_row(
            name,
            f"{o.objective.magnification:g}×/{o.na:g}",
            f"{o.wavelength_um:g}",
            f"{o.pixel_size_um:g}",
            o.illumination.kind,
            f"{o.depth_of_field_um:.2f}",
        )
    console.print(table)

    cases = [
        {
            "title": "1. Single-shot training data: cells under one LED at 24° (fcfnn-20x-led)",
            "preset": "fcfnn-20x-led",
            "sample": "cells",
            "size": 384,
            "z": (-30, 30, 5),
            "file": "cells_led.ome.tif",
            "extra": {},
        },
        {
            "title": (
                "2. Refocusing data: fluorescent tissue, tilted 1.5°, drifting (deepr-40x-fluor)"
            ),
            "preset": "deepr-40x-fluor",
            "sample": "fluorescent-tissue",
            "size": 256,
            "z": (-5, 5, 1),
            "file": "tissue_fluor_tilted.ome.zarr",
            "extra": {
                "tilt_deg": 1.5,
                "drift": Drift(step_um=(0.05, -0.03), rotation_deg_per_plane=0.05),
            },
        },
        {
            "title": (
                "3. Brightfield (Abbe sum over the condenser) of a stained section (deepr-20x-bf)"
            ),
            "preset": "deepr-20x-bf",
            "sample": "tissue",
            "size": 256,
            "z": (-8, 8, 2),
            "file": "tissue_brightfield.npy",
            "extra": {},
        },
    ]
    from focuskit.optics import z_range

    for case in cases:
        console.print(f"\n[bold]{case['title']}[/]")
        t0 = time.perf_counter()
        stack = simulate_stack(
            case["preset"],
            sample=case["sample"],
            size=case["size"],
            z_um=z_range(*case["z"]),
            photons=2000,
            seed=1,
            **case["extra"],
        )
        elapsed = time.perf_counter() - t0
        path = write_stack(stack, output_dir / case["file"], overwrite=True)
        back = read_stack(path)
        same = bool((back.data[...] == stack.data).all()) and list(back.z_um) == list(stack.z_um)
        png = stack_montage(
            stack.data,
            stack.z_um,
            output_dir / (path.name.split(".")[0] + ".png"),
            title=case["preset"],
            focus_z_um=stack.focus_z_um,
            pixel_size_um=stack.pixel_size_um,
        )
        console.print(
            f"  rendered {stack.data.shape[0]} planes of {stack.data.shape[1]}² in {elapsed:.1f} s "
            f"→ [cyan]{path.name}[/] (read back identical: {same}); montage [cyan]{png.name}[/]"
        )
        console.print(f"  try: [green]focuskit info {path}[/]")

    _classic_autofocus(output_dir, console)
    _singleshot(output_dir, console)
    _deepfocus(output_dir, console)
    _refocus(output_dir, console)
    _one_api(console)
    _families(output_dir, console)
    _micromanager(output_dir, console)
    _slide_qc(output_dir, console)
    console.rule("[bold]done")
    console.print(
        "Next: [green]focuskit simulate --preset fcfnn-20x-led --sample cells --size "
        "1024 -o stack.ome.tif[/]"
    )


def _classic_autofocus(output_dir: Path, console: Console) -> None:
    """Issue 3: focus measures, ground-truth focus, and classic searches on a virtual scope."""
    from focuskit.focus import find_focus, focus_curve
    from focuskit.io import read_stack
    from focuskit.report import autofocus_trace_plot, focus_curve_plot
    from focuskit.scopes import SimulatedScope
    from focuskit.search import SEARCHES, autofocus

    console.print("\n[bold]4. Ground-truth focus of the brightfield stack (every focus measure)[/]")
    stack = read_stack(output_dir / "tissue_brightfield.npy")
    result = find_focus(stack, "tenengrad")
    curves = {
        m: focus_curve(stack, m)
        for m in (
            "vollath4",
            "nvar",
            "tenengrad",
            "lapv",
            "ws",
            "spectral-highband",
            "spectral-midband",
        )
    }
    png = focus_curve_plot(
        stack.z_um,
        curves,
        output_dir / "focus_curves.png",
        focus_z_um=stack.focus_z_um,
        title="deepr-20x-bf tissue: focus curves",
    )
    console.print(
        f"  true focus {stack.focus_z_um:+.2f} µm; found {result.z_focus_um:+.3f} µm "
        f"(plane {result.plane}, confidence {result.confidence:.2f}); curves [cyan]{png.name}[/]"
    )

    console.print("\n[bold]5. Classic autofocus on a simulated 20×/0.75 fluorescence microscope[/]")
    table = Table("method", "images", "final z (µm)", "error (µm)", "stage+camera (s)")
    last = None
    for method in SEARCHES:
        scope = SimulatedScope("deepr-20x-fluor", size=128, focus_z_um=3.1, start_z_um=-6.0, seed=4)
        r = autofocus(
            scope,
            method,
            "tenengrad",
            range_um=20.0,
            tolerance_um=scope.optics.depth_of_field_um / 4,
        )
        table.add_row(
            method,
            str(r.images),
            f"{r.z_final_um:+.3f}",
            f"{r.z_final_um - scope.true_focus_um():+.3f}",
            f"{r.elapsed_s:.2f}",
        )
        last = (r, scope.true_focus_um())
    console.print(table)
    if last is not None:
        png = autofocus_trace_plot(
            last[0].trace,
            output_dir / "autofocus_trace.png",
            z_final_um=last[0].z_final_um,
            true_focus_um=last[1],
            title="scan + golden section, tenengrad",
        )
        console.print(
            f"  trace [cyan]{png.name}[/]; try: [green]focuskit autofocus --scope "
            "sim:deepr-20x-fluor --method brent[/]"
        )


def _singleshot(output_dir: Path, console: Console) -> None:
    """Single-shot defocus prediction with the built-in model, and single-shot autofocus."""
    from focuskit.nn import builtin_models

    console.print(
        "\n[bold]6. Single-shot defocus prediction (FCFNN, builtin:singleshot-20x-led)[/]"
    )
    if "singleshot-20x-led" not in builtin_models():
        console.print(
            "  the built-in model is missing; train it with [green]python "
            "scripts/train_fcfnn.py[/] (about 10 min), or your own with [green]focuskit singleshot "
            "train --simulate 140 -o my-model[/]"
        )
        return
    from focuskit import load_model
    from focuskit.report import autofocus_trace_plot
    from focuskit.scopes import SimulatedScope
    from focuskit.search import brent_search

    t0 = time.perf_counter()
    model = load_model("builtin:singleshot-20x-led")
    tile = model.region.tile
    table = Table(
        "sample",
        "true z (µm)",
        "predicted z (µm)",
        "σ (µm)",
        "P(z > 0)",
        "in range",
        "error (µm)",
        title=f"one {tile}² image each under one LED at 24°; rods: a family never trained on",
    )
    # Held-out fields: a sample seed the training script never drew, focus at stage z = 0.
    for sample in ("cells", "rods"):
        scope = SimulatedScope(
            "fcfnn-20x-led", size=tile, focus_z_um=0.0, seed=90210, sample=sample
        )
        for z in (-12.0, 4.0, 20.0):
            scope.move_to(z)
            p = model.predict(scope.snap(), pixel_size_um=scope.pixel_size_um, optics=scope.optics)
            table.add_row(
                sample,
                f"{z:+.1f}",
                f"{p.z_um:+.2f}",
                f"{p.sigma_um:.2f}",
                "–" if p.p_positive != p.p_positive else f"{p.p_positive:.2f}",
                "yes" if p.in_range else "[red]no[/]",
                f"{p.z_um - z:+.2f}",
            )
    console.print(table)
    console.print(
        "  The built-in model knows cells like its training cells; on rods it is wrong and "
        "says so (in range: no), although its P(z > 0) — Φ(z/σ) of its own σ — stays sure. "
        "One LED often cannot tell +z from −z (a weak phase object has the same Fourier "
        "magnitude at ±z), so the autofocus loop checks the sign with its verification image."
    )

    # Autofocus from 15 µm out of focus: single shot (+ verification) vs Brent, same scope.
    scope = SimulatedScope("fcfnn-20x-led", size=tile, focus_z_um=-3.0, start_z_um=12.0, seed=90210)
    dof = scope.optics.depth_of_field_um
    single = model.autofocus(scope)
    single_error = single.z_final_um - scope.true_focus_um()
    scope.move_to(12.0)  # the same start (moves within the limits; no images)
    brent = brent_search(scope, "tenengrad", range_um=40.0, tolerance_um=dof / 4)
    brent_error = brent.z_final_um - scope.true_focus_um()
    table = Table(
        "method",
        "images",
        "final z (µm)",
        "error (µm)",
        "error / DOF",
        title=(f"autofocus from 15 µm out of focus (true focus −3 µm, DOF {dof:.1f} µm)"),
    )
    for name, r, err in (
        ("singleshot", single, single_error),
        ("brent / tenengrad", brent, brent_error),
    ):
        table.add_row(
            name, str(r.images), f"{r.z_final_um:+.2f}", f"{err:+.2f}", f"{abs(err) / dof:.2f}"
        )
    console.print(table)
    console.print(f"  singleshot: {single.message}", highlight=False)
    png = autofocus_trace_plot(
        single.trace,
        output_dir / "singleshot_trace.png",
        z_final_um=single.z_final_um,
        true_focus_um=scope.true_focus_um(),
        title="single-shot autofocus (FCFNN)",
    )
    console.print(
        "  Phase cells under one LED show the least contrast in focus, so contrast-maximizing "
        "searches like Brent walk away from it; the FCFNN reads the defocus from the spectrum."
    )
    console.print(
        f"  trace [cyan]{png.name}[/] ({time.perf_counter() - t0:.1f} s); try: "
        "[green]focuskit singleshot predict IMG.ome.tif --json[/], "
        "[green]focuskit autofocus --scope sim:fcfnn-20x-led --method singleshot[/]"
    )


def _deepfocus(output_dir: Path, console: Console) -> None:
    """Few-shot autofocus: calibrate the blur score once, then focus in a few images."""
    from focuskit.nn import builtin_models

    console.print(
        "\n[bold]7. Few-shot autofocus (DeepFocus, builtin:fewshot-widefield) on a 10×/0.3 "
        "fluorescence microscope[/]"
    )
    if "fewshot-widefield" not in builtin_models():
        console.print(
            "  the built-in blur score is missing; train it with [green]python "
            "scripts/train_blur_cnn.py[/]"
        )
        return
    from focuskit import load_model
    from focuskit.fewshot import calibration_plot
    from focuskit.fewshot.analyses import calibrate_simulated
    from focuskit.optics import get_preset
    from focuskit.report import autofocus_trace_plot
    from focuskit.scopes import SimulatedScope
    from focuskit.search import brent_search

    t0 = time.perf_counter()
    scorer = load_model("builtin:fewshot-widefield")
    # Calibration: one stack of a flat textured object, −120…+120 µm every 2 µm, 512².
    calibration = calibrate_simulated(scorer.score_map, size=512, model="builtin:fewshot-widefield")
    calibration.save(output_dir / "deepfocus_calibration.json", overwrite=True)
    calibration_plot(
        calibration,
        output_dir / "deepfocus_calibration.png",
        title="blur score of one calibration stack",
    )
    console.print(
        f"  calibration: b_calib(z) over 121 planes, Moffat FWHM {calibration.fwhm_um:.1f} µm "
        f"→ [cyan]deepfocus_calibration.json[/], [cyan]deepfocus_calibration.png[/]"
    )

    dof = get_preset("deepfocus-10x").optics.depth_of_field_um
    table = Table(
        "sample",
        "start − focus (µm)",
        "method",
        "images",
        "error (µm)",
        "success",
        title=f"focus far from the start (DOF {dof:.1f} µm); other samples than the calibration's",
    )
    last = None
    for sample, focus, start, seed in (
        ("beads", 12.0, 62.0, 31),
        ("fluorescent-tissue", -8.0, -50.0, 32),
    ):
        options = {"density_per_100um2": 3.0, "diameter_um": 0.5} if sample == "beads" else {}
        scope = SimulatedScope(
            "deepfocus-10x",
            sample=sample,
            sample_options=options,
            size=512,
            focus_z_um=focus,
            start_z_um=start,
            z_limits_um=(focus - 140, focus + 140),
            photons=500,
            seed=seed,
        )
        for k, (how, calib, budget) in enumerate(
            (
                ("stack", calibration, 4),
                ("stack", calibration, 8),
                ("physical", "physical", 4),
                ("physical", "physical", 8),
            )
        ):
            scope.move_to(start)
            few = scorer.autofocus(scope, calib, max_images=budget)
            table.add_row(
                sample if k == 0 else "",
                f"{start - focus:+.0f}" if k == 0 else "",
                f"deepfocus ≤{budget}, {how} calibration",
                str(few.images),
                f"{few.z_final_um - focus:+.2f}",
                "verified" if few.success else "no (says why)",
            )
        scope.move_to(start)
        brent = brent_search(scope, range_um=150.0, tolerance_um=0.5)
        table.add_row(
            "",
            "",
            f"brent / {brent.measure}",
            str(brent.images),
            f"{brent.z_final_um - focus:+.2f}",
            "verified" if brent.success else "no",
        )
        last = (few, focus)
    console.print(table)
    console.print(
        "  Far from focus contrast measures are flat and Brent must bracket first; the blur score "
        "still says how far. Success means verified: the final position lies between two less "
        "sharp images DOF/2 away. Four images estimate focus but cannot verify it: with the "
        "physical calibration they are two blur scores and two images at f̂ ± DOF/2 whose "
        "sharpness ratio places focus (0.6 µm median on held-out families); with the default "
        "budget of 8 DeepFocus verifies in about 7 (bench/fewshot.py)."
    )
    if last is not None:
        png = autofocus_trace_plot(
            last[0].trace,
            output_dir / "deepfocus_trace.png",
            z_final_um=last[0].z_final_um,
            true_focus_um=last[1],
            title=f"DeepFocus: {last[0].images} images, blur score (lower = sharper)",
        )
        console.print(
            f"  trace [cyan]{png.name}[/] ({time.perf_counter() - t0:.1f} s); try: [green]focuskit "
            "fewshot calibrate STACK.ome.tif -o calib.json[/], [green]focuskit autofocus --scope "
            "sim:deepfocus-10x --method deepfocus --calibration calib.json[/] (or "
            "[green]--calibration physical[/]: no stack)"
        )


def _refocus(output_dir: Path, console: Console) -> None:
    """Offline refocusing: one defocused image → in-focus estimate, checked against the
    measurement, next to physics with the estimated and with the true PSF."""
    from focuskit.nn import builtin_models

    console.print(
        "\n[bold]8. Offline refocusing (Deep-R, builtin:refocus-40x-fluor) "
        "of one defocused image[/]"
    )
    if "refocus-40x-fluor" not in builtin_models():
        console.print(
            "  the built-in refocusing model is missing; train it with [green]python "
            "scripts/train_deepr.py[/]"
        )
        return
    import numpy as np

    from focuskit import load_model
    from focuskit.focus import fitted_tilt
    from focuskit.measures import ssim_to_truth
    from focuskit.refocus import psf_family_for, refocus_checked
    from focuskit.report import image_panels
    from focuskit.simulate import simulate_stack

    t0 = time.perf_counter()
    model = load_model("builtin:refocus-40x-fluor")
    family = psf_family_for(model.optics)
    table = Table(
        "sample family",
        "z (µm)",
        "input",
        "Deep-R",
        "physics (est. |z|)",
        "auto (checked)",
        "RL-TV (true |z|)",
        title="SSIM to the noise-free in-focus image (families Deep-R never saw, 512²)",
    )
    panels = None
    for sample, z, seed in (("patterned-substrate", 2.5, 20_001), ("nuclei", -4.0, 20_002)):
        kw = {"sample": sample, "size": 512, "z_um": [0.0, z], "seed": seed}
        sim = simulate_stack("deepr-40x-fluor", photons=2000, **kw)
        truth = np.asarray(simulate_stack("deepr-40x-fluor", **kw).data[0], np.float64)
        image = np.asarray(sim.data[1], np.float64)
        auto = refocus_checked(image, refocuser=model, family=family)
        deepr = refocus_checked(image, method="deepr", refocuser=model, family=family)
        phys = refocus_checked(image, method="physics", family=family)
        told = refocus_checked(image, method="physics", family=family, z_um=z)
        kept = "Deep-R" if np.all(auto.source == "deepr") else "fell back to physics"
        table.add_row(
            sample,
            f"{z:+.1f}",
            *[f"{ssim_to_truth(x, truth):.3f}" for x in (image, deepr.image, phys.image)],
            f"{ssim_to_truth(auto.image, truth):.3f} ({kept})",
            f"{ssim_to_truth(told.image, truth):.3f}",
        )
        if panels is None:
            panels = (truth, image, deepr.image, auto.image, told.image, z)
    console.print(table)
    console.print(
        "  auto re-blurs Deep-R's output to the defocus estimated from the image and keeps it "
        "only where it explains the measurement; elsewhere Richardson–Lucy + TV with the "
        "estimated PSF (no border artefacts). Over every fluorescence family (bench/refocus.py "
        "--harm-only) Deep-R alone makes 32 % of images worse, auto 3 %."
    )
    truth, image, out, checked, told, z = panels
    png = image_panels(
        [
            ("in focus", truth),
            (f"input, z = {z:+.1f} µm", image),
            ("Deep-R", out),
            ("auto (checked)", checked),
            ("RL-TV, true |z|", told),
        ],
        output_dir / "refocus.png",
    )
    tilted = simulate_stack(
        "deepr-40x-fluor",
        sample="fluorescent-tissue",
        size=512,
        z_um=[0.0],
        tilt_deg=3.0,
        photons=2000,
        seed=20_003,
    )
    dpm = model.defocus_map(tilted.data[0].astype("float32"))
    tilt, azimuth, _ = fitted_tilt(dpm, tilted.pixel_size_um, unsigned=not model.dpm_signed)
    console.print(
        f"  a sample tilted 3.0° along y: the defocus map's plane fit says {tilt:.2f}° at azimuth "
        f"{azimuth:.0f}° (90° = along y); montage [cyan]{png.name}[/] "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    console.print(
        "  try: [green]focuskit refocus apply IMAGE.ome.tif -o refocused.ome.tif "
        "--consistency chi2.ome.tif --json[/] (add [green]--z 2.5[/] if you know the defocus, "
        "[green]--psf beads.ome.tif[/] for a measured PSF)"
    )
    _whole_slide(output_dir, console, model, tilted)


def _whole_slide(output_dir: Path, console: Console, model: Any, field: Any) -> None:
    """A small 'slide' (1024² OME-Zarr) refocused chunk-wise, against the in-memory result."""
    import numpy as np

    from focuskit.io import FocalStack, compute_context, open_lazy, write_chunked, write_stack
    from focuskit.refocus import refocus_lazy

    t0 = time.perf_counter()
    tile = np.asarray(field.data[0], dtype=np.float32)
    image = np.block([[tile, tile[:, ::-1]], [tile[::-1], tile[::-1, ::-1]]])
    slide = output_dir / "slide.ome.zarr"
    out = output_dir / "slide-refocused.ome.zarr"
    px = field.pixel_size_um
    write_stack(FocalStack(image[None], [0.0], px, field.optics), slide, overwrite=True)
    lazy = open_lazy(slide)
    with compute_context(2, None):
        result = refocus_lazy(lazy.planes, "builtin:refocus-40x-fluor", block=512)
        done = write_chunked(result, out, pixel_size_um=px, overwrite=True, protect=[slide])
    chunked = np.asarray(open_lazy(out).planes[0])
    memory = model.refocus(image)
    rel = float(np.abs(chunked - memory).max() / np.abs(memory).max())
    console.print(
        f"  whole slides: [cyan]{slide.name}[/] (1024²) refocused in {done.chunks} blocks of "
        f"512² on 2 workers → [cyan]{out.name}[/]; max difference to the in-memory result "
        f"{rel:.1e} (no seams) ({time.perf_counter() - t0:.1f} s)"
    )
    console.print(
        "  try: [green]focuskit refocus apply SLIDE.ome.zarr -o sharp.ome.zarr --workers 2[/] "
        "(kill it, then add [green]--resume[/])"
    )


def _one_api(console: Console) -> None:
    """The three systems behind one model API."""
    from focuskit._api import builtin_models_info

    console.print("\n[bold]9. Three systems, one model API (focuskit.load_model)[/]")
    table = Table("model", "Python class", "parameters", "for")
    for r in builtin_models_info():
        table.add_row(
            r["name"],
            f"focuskit.{r['system']}.{r['class']}",
            f"{r['parameters']:,}",
            r["microscope"],
        )
    console.print(table)
    console.print(
        "  each loads with [green]focuskit.load_model(NAME)[/] and has .save(), .info(), "
        ".check_optics(optics, pixel_size_um), .predict(image); DefocusModel and BlurScorer also "
        ".autofocus(scope, …); training recipes: focuskit.singleshot.train, "
        "focuskit.fewshot.train, focuskit.refocus.train. Try: [green]focuskit models[/]"
    )


def _families(output_dir: Path, console: Console) -> None:
    """The zoo of sample families, each rendered in focus and one DOF either side."""
    from focuskit.report import family_montage
    from focuskit.simulate import FAMILIES, family_views

    console.print("\n[bold]10. Sample families: content to train and test on (focuskit samples)[/]")
    t0 = time.perf_counter()
    views = family_views(size=96, seed=0)
    png = family_montage(views, output_dir / "sample_families.png")
    by_mod: dict[str, int] = {}
    for fam in FAMILIES.values():
        by_mod[fam.modality[0]] = by_mod.get(fam.modality[0], 0) + 1
    unseen = [n for n, f in FAMILIES.items() if f.split == "unseen"]
    counts = ", ".join(f"{n} {m}" for m, n in by_mod.items())
    console.print(
        f"  {len(FAMILIES)} families ({counts}) rendered at −DOF, 0, +DOF in "
        f"{time.perf_counter() - t0:.1f} s → [cyan]{png.name}[/]"
    )
    console.print(
        f"  never trained on (reported only): {', '.join(unseen)}; learned models are measured "
        "leave-one-family-out (focuskit.report.leave_one_family_out)"
    )
    console.print(
        "  try: [green]focuskit samples[/], [green]focuskit simulate --preset deepr-40x-fluor "
        "--sample point-emitters --sample-param saturate=true -o beads.ome.tif[/]"
    )


def _micromanager(output_dir: Path, console: Console) -> None:
    """Micro-Manager: autofocus on the real core (simulated devices) and a focused time-lapse."""
    from focuskit.mmcore import MMCoreUnavailableError, require_pymmcore_plus
    from focuskit.nn import builtin_models

    console.print(
        "\n[bold]11. Micro-Manager: focuskit inside a pymmcore-plus acquisition "
        "(mmcore-sim:fcfnn-20x-led)[/]"
    )
    try:
        require_pymmcore_plus()
    except MMCoreUnavailableError as exc:
        console.print(f"  skipped: {exc}", highlight=False)
        return
    if "singleshot-20x-led" not in builtin_models():
        console.print("  skipped: the built-in single-shot model is missing")
        return
    from focuskit.mmcore import (
        Autofocuser,
        FocuskitEngine,
        SimulatedCore,
        run_timelapse,
        timelapse_plot,
    )

    t0 = time.perf_counter()
    # Micro-Manager's C++ core (UniMMCore) with focuskit's simulator as camera, focus drive
    # (travel ±60 µm), XY stage, shutter and LED array; focus drifts 3 µm per time point.
    core = SimulatedCore("fcfnn-20x-led", focus_z_um=6.0, drift_um_per_timepoint=3.0, seed=1)
    # One model load for everything below; a rejected prediction falls back to Brent in DPC.
    singleshot = Autofocuser("singleshot", fallback_config=("Illumination", "DPC"))
    result = singleshot.run(core)  # the registry's run(core, focus_device, settings, …)
    console.print(
        f"  one autofocus: {result.kind} / {result.method} on {result.focus_device!r}: z "
        f"{result.z_before:+.2f} → {result.z_after:+.2f} µm in {result.n_images} images, "
        f"succeeded={result.succeeded} (true focus {core.simulation.true_focus_um():+.2f} µm)",
        highlight=False,
    )
    engine = FocuskitEngine(core, autofocuser=singleshot)
    timelapse = run_timelapse(core, engine=engine, timepoints=6, positions=[(0.0, 0.0, 0.0)])
    dof = core.simulation.preset.optics.depth_of_field_um
    table = Table(
        "time point",
        "autofocus images",
        "stage z (µm)",
        "focus (µm)",
        "error (µm)",
        title=f"an MDA with an autofocus event per time point (DOF/4 = {dof / 4:.2f} µm)",
    )
    for frame in timelapse.frames:
        table.add_row(
            str(frame["t"]),
            str(frame["af_images"]),
            f"{frame['z_um']:+.2f}",
            f"{frame['true_focus_um']:+.2f}",
            f"{frame['error_um']:+.2f}",
        )
    console.print(table)
    png = timelapse_plot(timelapse, output_dir / "timelapse.png", title="single shot in an MDA")
    overhead = timelapse.summary()["overhead_ms_median"]
    console.print(
        f"  FocuskitEngine answered each autofocus event (the core has no autofocus device) and "
        f"kept the correction per position; its own cost {overhead:.1f} ms per event; plot "
        f"[cyan]{png.name}[/] ({time.perf_counter() - t0:.1f} s). On some fields the model "
        "rejects its check image right at focus and the engine falls back to Brent in DPC "
        "(bench/mmcore.py counts how often)."
    )
    console.print(
        "  try: [green]focuskit timelapse --scope mmcore-sim:fcfnn-20x-led --timepoints 10 "
        "--drift 3 --method singleshot --plot tl.png[/], [green]focuskit autofocus --scope "
        "mmcore:MyScope.cfg --method brent[/]"
    )


def _slide_qc(output_dir: Path, console: Console) -> None:
    """A tilted slide: converted to OME-Zarr chunk by chunk, then mapped tile by tile."""
    from focuskit import simulate_stack
    from focuskit.focus import MeasureTileEstimator, slide_focus_map
    from focuskit.io import FocalStack, convert_stack, read_images, write_stack
    from focuskit.report import slide_focus_map_plot

    console.print("\n[bold]12. Slide QC: a tilted slide, converted and mapped tile by tile[/]")
    t0 = time.perf_counter()
    # In focus at the left edge, 2.9 µm out at the right (1° along x; DOF 1.2 µm).
    sim = simulate_stack(
        "deepr-20x-fluor",
        sample="fluorescent-tissue",
        size=512,
        z_um=[0.0],
        focus_z_um=-83.2 * math.tan(math.radians(1.0)),
        tilt_deg=1.0,
        tilt_azimuth_deg=0.0,
        photons=1000,
        seed=2,
    )
    stack = FocalStack.from_simulation(sim)
    stack.metadata.pop("defocus_map", None)
    tiff = write_stack(stack, output_dir / "slide.ome.tif", overwrite=True)
    zarr_path = output_dir / "slide.ome.zarr"
    convert_stack(tiff, zarr_path, chunks=(1, 128, 128), overwrite=True)
    slide = read_images(zarr_path, lazy=True)
    fmap = slide_focus_map(
        slide.planes[0], 64, MeasureTileEstimator("tenengrad"), pixel_size_um=0.325
    )
    png = slide_focus_map_plot(fmap, output_dir / "slide_focus_map.png", title="tenengrad")
    s = fmap.summary()
    left, right = float(fmap.value[:, 0].mean()), float(fmap.value[:, -1].mean())
    console.print(
        f"  {tiff.name} → [cyan]{zarr_path.name}[/] (128² chunks, read lazily); "
        f"{s['rows']}×{s['cols']} tiles of 64²: Tenengrad {left:.3g} at the left edge, "
        f"{right:.3g} at the right ({right / left:.2f}×) as the slide leaves focus; "
        f"{s['flagged']} tiles off the fitted surface; plot [cyan]{png.name}[/] "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    console.print(
        "  try: [green]focuskit focus-map slide.ome.zarr --tile 1024 --method singleshot "
        "-o map.csv --plot map.png[/] (LED slides), [green]focuskit convert "
        "slide.ome.zarr -o slide.ome.tif --chunks 1,512,512[/]"
    )
