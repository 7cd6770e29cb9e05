"""The `focuskit` command: thin — parses, calls the API, prints or writes."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from focuskit._errors import ConfigError
from focuskit.cli._common import (
    GrayOpt,
    PixelSizeOpt,
    SchedulerOpt,
    WorkersOpt,
    ZFileOpt,
    ZStartOpt,
    ZStepOpt,
    check_outputs,
    check_png,
    console,
    err_console,
    friendly_errors,
    info_table,
    model_input,
    print_json,
    print_notes,
    progress_bar,
    read_stack_given,
)
from focuskit.cli._evaluate import evaluate_app
from focuskit.cli._fewshot import fewshot_app
from focuskit.cli._mmcore import timelapse
from focuskit.cli._refocus import refocus_app
from focuskit.cli._singleshot import singleshot_app
from focuskit.cli._slide import convert, focus_map

app = typer.Typer(
    name="focuskit",
    help="Keep microscope images in focus: simulate, inspect, score, predict, refocus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# One command group per system; the names they had before focuskit 0.2 still work (hidden).
app.add_typer(singleshot_app, name="singleshot")
app.add_typer(fewshot_app, name="fewshot")
app.add_typer(refocus_app, name="refocus")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(singleshot_app, name="defocus", hidden=True)
app.add_typer(fewshot_app, name="blur", hidden=True)
# Micro-Manager: a time-lapse kept in focus by focuskit's MDA engine.
app.command(name="timelapse")(friendly_errors(timelapse))
# Whole slides: streamed conversion, and slide QC (issue 16).
app.command(name="convert")(friendly_errors(convert))
app.command(name="focus-map")(friendly_errors(focus_map))

OverwritePlotOpt = Annotated[bool, typer.Option(help="Replace an existing --plot file")]


# --- simulate ---------------------------------------------------------------------------


class SampleAs(str, Enum):
    phase = "phase"
    absorption = "absorption"
    fluorescence = "fluorescence"


class IlluminationKind(str, Enum):
    preset = "preset"
    fluorescence = "fluorescence"
    led = "led"
    dpc = "dpc"
    brightfield = "brightfield"


def _illumination(
    kind: IlluminationKind,
    led_sx: float,
    led_sy: float,
    condenser_na: float,
    dpc_na: tuple[float, float],
):  # type: ignore[no-untyped-def]
    from focuskit.optics import DPC, LED, Brightfield, Fluorescence

    if kind is IlluminationKind.preset:
        return None
    if kind is IlluminationKind.fluorescence:
        return Fluorescence()
    if kind is IlluminationKind.led:
        return LED(sx=led_sx, sy=led_sy)
    if kind is IlluminationKind.dpc:
        return DPC(na_inner=dpc_na[0], na_outer=dpc_na[1])
    return Brightfield(na_condenser=condenser_na)


@app.command()
@friendly_errors
def simulate(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output stack: .ome.tif, .ome.zarr or .npy")
    ],
    preset: Annotated[
        str, typer.Option(help="Named microscope (see `focuskit presets`)")
    ] = "fcfnn-20x-led",
    sample: Annotated[
        str | None,
        typer.Option(
            help="A sample family (see `focuskit samples`) or beads | cells | tissue | "
            "fluorescent-tissue (default: the preset's)"
        ),
    ] = None,
    sample_param: Annotated[
        list[str] | None,
        typer.Option(
            "--sample-param",
            help="Fix a parameter of the sample, NAME=VALUE (repeatable); "
            "a family draws the others from --seed",
        ),
    ] = None,
    sample_image: Annotated[
        Path | None, typer.Option(help="Use this image (TIFF/PNG) as the sample")
    ] = None,
    sample_as: Annotated[
        SampleAs, typer.Option(help="How --sample-image acts on light")
    ] = SampleAs.phase,
    sample_strength: Annotated[
        float,
        typer.Option(help="Phase in rad, absorbance (≤1) or emitter scale for --sample-image"),
    ] = 1.0,
    density: Annotated[
        float | None,
        typer.Option(help="Sample density (beads per 100 µm², or cell area fraction)"),
    ] = None,
    illumination: Annotated[
        IlluminationKind, typer.Option(help="Override the preset's illumination")
    ] = IlluminationKind.preset,
    led_sx: Annotated[float, typer.Option(help="LED illumination NA along x (sin θ)")] = 0.407,
    led_sy: Annotated[float, typer.Option(help="LED illumination NA along y")] = 0.0,
    condenser_na: Annotated[float, typer.Option(help="Brightfield condenser NA")] = 0.55,
    dpc_na: Annotated[
        tuple[float, float], typer.Option(help="DPC half-annulus inner and outer NA")
    ] = (0.35, 0.48),
    z_range: Annotated[
        tuple[float, float] | None, typer.Option(help="First and last z (µm)")
    ] = None,
    z_step: Annotated[float | None, typer.Option(help="z step (µm)")] = None,
    size: Annotated[int | None, typer.Option(help="Image size in pixels (square)")] = None,
    focus_z: Annotated[
        float, typer.Option(help="Stage z at which the sample is in focus (µm)")
    ] = 0.0,
    tilt: Annotated[float, typer.Option(help="Sample tilt (degrees)")] = 0.0,
    tilt_azimuth: Annotated[
        float, typer.Option(help="Direction of the tilt (degrees from +x)")
    ] = 90.0,
    cylinder_radius: Annotated[
        float | None, typer.Option(help="Cylindrical sample curvature radius (µm; <0 concave)")
    ] = None,
    sphere_radius: Annotated[
        float | None, typer.Option(help="Spherical sample curvature radius (µm; <0 concave)")
    ] = None,
    drift: Annotated[
        tuple[float, float], typer.Option(help="Lateral drift per plane (dy, dx) µm")
    ] = (0.0, 0.0),
    drift_jitter: Annotated[float, typer.Option(help="Random-walk drift per plane (µm rms)")] = 0.0,
    rotation: Annotated[float, typer.Option(help="Rotation per plane (degrees)")] = 0.0,
    photons: Annotated[
        float, typer.Option(help="Mean photo-electrons per pixel (exposure)")
    ] = 1000.0,
    noise: Annotated[
        bool,
        typer.Option(
            "--noise/--no-noise", help="Camera noise and integer counts, or noise-free float32"
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="Random seed (sample, drift and noise)")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stack summary as JSON")
    ] = False,
) -> None:
    """Render a focal stack of a simulated microscope and save it."""
    from focuskit.io import FocalStack, write_stack
    from focuskit.optics import get_preset
    from focuskit.optics import z_range as make_z
    from focuskit.simulate import Drift, load_sample_image, simulate_stack

    p = get_preset(preset)
    _check_output_free(output, overwrite, sample_image)
    z = None
    if z_range is not None or z_step is not None:
        lo, hi = z_range if z_range is not None else (p.z_min_um, p.z_max_um)
        z = make_z(lo, hi, z_step if z_step is not None else p.z_step_um)
    ill = _illumination(illumination, led_sx, led_sy, condenser_na, dpc_na)
    if sample_image is not None:
        if sample is not None:
            raise ConfigError("give either --sample or --sample-image, not both")
        sample_obj: Any = load_sample_image(
            sample_image, p.optics.pixel_size_um, as_=sample_as.value, strength=sample_strength
        )
    else:
        sample_obj = sample
    options: dict[str, Any] = _sample_params(sample_param)
    if options and sample_image is not None:
        raise ConfigError("--sample-param applies to --sample, not to --sample-image")
    if density is not None:
        name = sample or p.default_sample
        options["density_per_100um2" if name == "beads" else "density"] = density
    moving = drift != (0.0, 0.0) or drift_jitter > 0 or rotation != 0
    with progress_bar(f"rendering {preset}", enabled=not as_json) as update:
        sim = simulate_stack(
            p,
            sample=sample_obj,
            sample_options=options,
            size=size,
            z_um=z,
            illumination=ill,
            focus_z_um=focus_z,
            tilt_deg=tilt,
            tilt_azimuth_deg=tilt_azimuth,
            cylinder_radius_um=cylinder_radius,
            sphere_radius_um=sphere_radius,
            drift=Drift(step_um=drift, jitter_um=drift_jitter, rotation_deg_per_plane=rotation)
            if moving
            else None,
            photons=photons if noise else None,
            seed=seed,
            progress=update,
        )
    stack = FocalStack.from_simulation(sim)
    protect = [sample_image] if sample_image is not None else []
    written = write_stack(stack, output, overwrite=overwrite, protect=protect)
    if as_json:
        print_json({"file": str(written), **stack.info()})
    else:
        console.print(info_table(stack, str(written)))


def _sample_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["diameter_um=0.2", …]`` → ``{"diameter_um": "0.2"}`` (the sample checks values)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(
                f"--sample-param {pair!r}: write NAME=VALUE, e.g. --sample-param diameter_um=0.2"
            )
        out[name.strip()] = value.strip()
    return out


def _check_output_free(output: Path, overwrite: bool, sample_image: Path | None) -> None:
    """Fail before minutes of rendering rather than after."""
    from focuskit.io import SUPPORTED_SUFFIXES

    if not output.name.lower().endswith(SUPPORTED_SUFFIXES):
        raise ConfigError(
            f"{output}: unknown file type '{output.suffix}' — use one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}"
        )
    check_outputs({"-o": output}, overwrite=overwrite, inputs=[sample_image])


# --- info -------------------------------------------------------------------------------


@app.command()
@friendly_errors
def info(
    stack_path: Annotated[
        Path, typer.Argument(metavar="STACK", help="OME-TIFF, OME-Zarr, TIFF or NPY stack")
    ],
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    z_start: ZStartOpt = 0.0,
    z_file: ZFileOpt = None,
    gray: GrayOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Describe a focal stack: shape, dtype, z positions, pixel size, optics, true focus."""
    stack = read_stack_given(stack_path, pixel_size, z_step, z_start, z_file, gray)
    if as_json:
        print_json(stack.info())
    else:
        console.print(info_table(stack, str(stack_path)))


@app.command()
@friendly_errors
def score(
    stack_path: Annotated[Path, typer.Argument(metavar="STACK")],
    measure: Annotated[
        str, typer.Option(help="Focus measure name, or 'all' (see `focuskit measures`)")
    ] = "tenengrad",
    plot: Annotated[Path | None, typer.Option(help="Write the focus curve(s) to this PNG")] = None,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    z_start: ZStartOpt = 0.0,
    z_file: ZFileOpt = None,
    gray: GrayOpt = False,
    overwrite: OverwritePlotOpt = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score every plane of a stack with a focus measure (larger = sharper)."""
    from focuskit.focus import focus_curve
    from focuskit.measures import MEASURES, get_measure

    check_png(plot)
    check_outputs({"--plot": plot}, overwrite=overwrite, inputs=[stack_path, z_file])
    stack = read_stack_given(stack_path, pixel_size, z_step, z_start, z_file, gray)
    names = (
        [n for n, m in MEASURES.items() if not m.needs_optics or stack.optics is not None]
        if measure == "all"
        else [get_measure(measure).name]
    )
    curves = {name: focus_curve(stack, name) for name in names}
    z = [float(v) for v in stack.z_um]
    if plot is not None:
        from focuskit.report import focus_curve_plot

        focus_curve_plot(
            stack.z_um, curves, plot, focus_z_um=stack.focus_z_um, title=stack_path.name
        )
    if as_json:
        if len(names) == 1:
            print_json(
                {"measure": names[0], "z_um": z, "score": [float(v) for v in curves[names[0]]]}
            )
        else:
            print_json(
                {
                    "measure": "all",
                    "z_um": z,
                    "score": {n: [float(v) for v in c] for n, c in curves.items()},
                }
            )
        return
    if len(names) == 1:
        table = Table("z (µm)", names[0], title=f"{stack_path.name}: focus scores")
        best = int(curves[names[0]].argmax())
        for i, zi in enumerate(z):
            style = "bold green" if i == best else None
            table.add_row(f"{zi:+.3f}", f"{curves[names[0]][i]:.5g}", style=style)
    else:  # one row per measure: a 13-column z table would not fit a terminal
        table = Table(
            "measure",
            "sharpest z (µm)",
            "plane",
            "peak / median",
            title=f"{stack_path.name}: focus scores",
        )
        for n in names:
            c = curves[n]
            i = int(c.argmax())
            med = float(np.median(c))
            table.add_row(n, f"{z[i]:+.3f}", str(i), f"{c[i] / med:.3g}" if med > 0 else "—")
    console.print(table)


@app.command("find-focus")
@friendly_errors
def find_focus_cmd(
    stack_path: Annotated[Path, typer.Argument(metavar="STACK")],
    measure: Annotated[
        str | None,
        typer.Option(
            help="Focus measure (see `focuskit measures`; default spectral-midband when the "
            "stack has optics, else tenengrad)"
        ),
    ] = None,
    refine: Annotated[
        str, typer.Option(help="Sub-step refinement: parabola | gaussian | none")
    ] = "parabola",
    saturation: Annotated[
        str | None,
        typer.Option(
            help="Exclude saturated pixels from the measure: 'auto' (an integer stack's "
            "maximum) or a level in intensity units (default: no masking)"
        ),
    ] = None,
    tile: Annotated[
        int | None, typer.Option(help="Also map focus per tile of this size (tilted samples)")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the focus curve to this PNG")] = None,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    z_start: ZStartOpt = 0.0,
    z_file: ZFileOpt = None,
    gray: GrayOpt = False,
    overwrite: OverwritePlotOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Find the in-focus z of a stack (sub-step refined), with a confidence.

    --tile on a stack too large to hold (OME-Zarr, a tiled TIFF above 512 MiB) reads it
    region by region on --workers local threads or a --scheduler."""
    import contextlib

    import dask.array as da

    from focuskit.focus import find_focus, focus_map
    from focuskit.io import compute_context

    if refine not in ("parabola", "gaussian", "none"):
        raise ConfigError(f"--refine must be parabola, gaussian or none, got {refine!r}")
    check_png(plot)
    check_outputs({"--plot": plot}, overwrite=overwrite, inputs=[stack_path, z_file])
    # Region by region on the workers when asked; large stacks are lazy anyway.
    lazy = True if tile is not None and (workers or scheduler) else None
    stack = read_stack_given(stack_path, pixel_size, z_step, z_start, z_file, gray, lazy)
    level: Any = saturation
    if saturation is not None and saturation != "auto":
        try:
            level = float(saturation)
        except ValueError:
            raise ConfigError(
                f"--saturation must be 'auto' or a number (intensity units), got {saturation!r}"
            ) from None
    result = find_focus(stack, measure, refine=refine, saturation=level)  # type: ignore[arg-type]
    measure = result.measure
    out = result.to_dict()
    if tile is not None:
        chunked = isinstance(stack.data, da.Array) or workers or scheduler
        with compute_context(workers, scheduler) if chunked else contextlib.nullcontext():
            fmap = focus_map(stack, tile, measure, refine=refine)  # type: ignore[arg-type]
        _a, b, c = fmap.plane_fit()
        out["focus_map"] = {
            "tile": tile,
            "z_focus_um": fmap.z_focus_um.round(4).tolist(),
            "confidence": fmap.confidence.round(3).tolist(),
            "tilt_deg_y": float(np.degrees(np.arctan(b))),
            "tilt_deg_x": float(np.degrees(np.arctan(c))),
        }
    if plot is not None:
        from focuskit.report import focus_curve_plot

        focus_curve_plot(
            result.z_um,
            {measure: result.curve},
            plot,
            focus_z_um=result.z_focus_um,
            title=f"{stack_path.name}: focus at {result.z_focus_um:+.3f} µm",
        )
    if not result.has_signal:
        if as_json:
            print_json({**out, "z_focus_um": None, "plane": None})
        else:
            err_console.print(
                f"[bold red]no focus signal:[/] every plane of {stack_path.name} scores the "
                f"same with {measure} (a constant or empty stack?); no focus reported",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(code=1)
    if as_json:
        print_json(out)
        return
    console.print(
        f"[bold]{stack_path.name}[/]: in focus at [bold green]z = {result.z_focus_um:+.3f} µm[/] "
        f"(plane {result.plane}, {measure}, confidence {result.confidence:.2f})"
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if "focus_map" in out:
        fm = out["focus_map"]
        console.print(
            f"per-tile focus ({tile}² tiles): tilt {fm['tilt_deg_y']:+.2f}° along y, "
            f"{fm['tilt_deg_x']:+.2f}° along x"
        )


def _roi(roi: str | None) -> tuple[int, ...] | None:
    if roi is None:
        return None
    try:
        ys, xs = roi.split(",")
        return tuple(int(v) for v in (*ys.split(":"), *xs.split(":")))
    except ValueError:
        raise ConfigError(
            f"--roi {roi!r}: write it as Y0:Y1,X0:X1 in pixels, e.g. 0:512,256:768"
        ) from None


@app.command()
@friendly_errors
def autofocus(
    scope: Annotated[
        str,
        typer.Option(
            help=(
                "sim:PRESET, stack:PATH, real:NAME, mmcore:CONFIG.cfg (a Micro-Manager "
                "configuration) or mmcore-sim:PRESET (the simulator inside Micro-Manager's core)"
            )
        ),
    ] = "sim:deepr-20x-fluor",
    method: Annotated[
        str, typer.Option(help="brent | gss | scan | singleshot | deepfocus")
    ] = "brent",
    measure: Annotated[
        str | None,
        typer.Option(
            help="Focus measure to maximize (singleshot: scored for the trace and the "
            "fallback; default spectral-midband when the scope has optics, else tenengrad)"
        ),
    ] = None,
    start: Annotated[
        float | None, typer.Option(help="Start z (µm); default: the scope's current z")
    ] = None,
    range_um: Annotated[
        float | None,
        typer.Option(
            "--range", help="Search range (µm), centred on the start (singleshot: the fallback's)"
        ),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            help=(
                "Stop when the bracket is below this (µm; default 0.5), or singleshot: when "
                "|predicted z| is (default max(σ, DOF/4)), or deepfocus: the verification "
                "bracket's half width (default DOF/2)"
            )
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help=(
                "singleshot: defocus model (default builtin:singleshot-20x-led); deepfocus: "
                "blur-score model (default: the calibration's, else builtin:fewshot-widefield)"
            )
        ),
    ] = None,
    max_iterations: Annotated[
        int, typer.Option(help="singleshot: most moves (one verification image each)")
    ] = 3,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="deepfocus: calibration JSON from `focuskit fewshot calibrate`, or "
            "'physical': the wavefront the CNN reads, from the microscope's optics (no stack)"
        ),
    ] = None,
    max_images: Annotated[
        int | None,
        typer.Option(
            help="Hard image budget of the search (default: deepfocus 8, three for the "
            "estimate and the rest to verify it; classic 40; singleshot its moves + 1, plus "
            "the fallback's)"
        ),
    ] = None,
    roi: Annotated[
        str | None,
        typer.Option(
            help="deepfocus: region of interest Y0:Y1,X0:X1 in pixels (default: automatic)"
        ),
    ] = None,
    paper: Annotated[
        bool,
        typer.Option(
            "--paper",
            help=(
                "deepfocus: the paper's settings (first images at ±2·FWHM, plain shift, "
                "refinement at f̂ ∓ FWHM/2)"
            ),
        ),
    ] = False,
    fallback: Annotated[
        str,
        typer.Option(
            help=(
                "singleshot: classic search when a prediction is out of range "
                "(brent | gss | scan | none)"
            )
        ),
    ] = "brent",
    force: Annotated[
        bool,
        typer.Option(
            help="singleshot: use the model even if the scope's optics differ from its own"
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seed of a simulated scope (sample, hidden focus, noise)")
    ] = 0,
    sample: Annotated[
        str | None,
        typer.Option(
            help="sim: scopes: the sample (a family from `focuskit samples`, or a generator; "
            "default the preset's)"
        ),
    ] = None,
    limits: Annotated[
        tuple[float, float] | None,
        typer.Option(
            help="mmcore: stage limits MIN MAX (µm; default: the focus device's own)",
            show_default=False,
        ),
    ] = None,
    max_step: Annotated[
        float | None, typer.Option(help="mmcore: largest single stage move (µm)")
    ] = None,
    focus_device: Annotated[
        str | None, typer.Option(help="mmcore: the stage to focus with (default: the core's)")
    ] = None,
    af_config: Annotated[
        str | None,
        typer.Option(
            help=(
                "mmcore: focus in this configuration, GROUP:PRESET (e.g. Illumination:DPC), "
                "put back after"
            )
        ),
    ] = None,
    calibrate_range: Annotated[
        float | None,
        typer.Option(
            help=(
                "deepfocus on mmcore: calibrate on this microscope first, a stack this high "
                "(µm) around the start (put a flat textured sample in focus)"
            )
        ),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the search trace to this PNG")] = None,
    overwrite: OverwritePlotOpt = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Focus a (virtual) microscope with a classic search, a single-shot model or DeepFocus."""
    from focuskit._api import AUTOFOCUS_METHODS
    from focuskit._api import autofocus as run_autofocus
    from focuskit.scopes import move_in_steps, open_scope

    check_png(plot)
    replayed = scope.split(":", 1)[1] if scope.startswith("stack:") else None
    # --calibration physical: the curve from the microscope's optics, not a file.
    physical = calibration is not None and str(calibration) == "physical"
    check_outputs(
        {"--plot": plot},
        overwrite=overwrite,
        inputs=[replayed, None if physical else calibration, model_input(model)],
    )
    if method not in AUTOFOCUS_METHODS:
        raise ConfigError(
            f"unknown autofocus method {method!r}; use one of {', '.join(AUTOFOCUS_METHODS)}"
        )
    on_core = scope.split(":", 1)[0].strip().lower() in ("mmcore", "mmcore-sim")
    mm_options = {
        "--limits": limits,
        "--max-step": max_step,
        "--focus-device": focus_device,
        "--af-config": af_config,
        "--calibrate-range": calibrate_range,
    }
    if not on_core and any(v is not None for v in mm_options.values()):
        given = ", ".join(k for k, v in mm_options.items() if v is not None)
        raise ConfigError(f"{given} apply to mmcore:CONFIG.cfg and mmcore-sim:PRESET scopes only")
    simulated = scope.startswith(("sim:", "mmcore-sim:"))
    scope_kwargs: dict[str, Any] = {"seed": seed} if simulated else {}
    if sample is not None:
        if not scope.startswith("sim:"):
            raise ConfigError("--sample chooses what a sim: scope shows; a stack has its own")
        scope_kwargs["sample"] = sample
    settings: dict[str, Any] = {}
    loaded: Any = None
    calib: Any = None
    if method == "deepfocus":
        from focuskit.fewshot import (
            DEFAULT_MAX_IMAGES,
            DEFAULT_MODEL,
            PAPER_SETTINGS,
            BlurCalibration,
            BlurScorer,
        )

        if calibration is not None and calibrate_range is not None:
            raise ConfigError("give --calibration or --calibrate-range, not both")
        if calibration is None and calibrate_range is None:
            raise ConfigError(
                "--method deepfocus needs --calibration CALIB.json (make one with "
                "`focuskit fewshot calibrate STACK -o CALIB.json`"
                + (
                    "; or --calibrate-range R to calibrate on this microscope first)"
                    if on_core
                    else ")"
                )
            )
        max_images = DEFAULT_MAX_IMAGES if max_images is None else max_images
        if max_images < 3:
            raise ConfigError(
                "--max-images must be ≥ 3 for deepfocus "
                f"(it starts with 3 images), got {max_images}"
            )
        box = _roi(roi)  # refuse bad input before the stage moves
        calib = None if calibration is None or physical else BlurCalibration.load(calibration)
        loaded = BlurScorer.load(model or (calib.model if calib else None) or DEFAULT_MODEL)
        settings = {"max_images": max_images, "roi": box, **(dict(PAPER_SETTINGS) if paper else {})}
        if tolerance is not None:
            settings["tolerance_um"] = tolerance
        measure = "blur-cnn"
    elif calibration is not None or calibrate_range is not None:
        raise ConfigError("--calibration and --calibrate-range apply to --method deepfocus only")
    if method == "singleshot":
        from focuskit.singleshot import DEFAULT_MODEL as DEFOCUS_MODEL
        from focuskit.singleshot import DefocusModel

        loaded = DefocusModel.load(model or DEFOCUS_MODEL)
        if simulated:
            scope_kwargs["size"] = loaded.region.tile  # at least one model tile per image
        settings = {
            "tolerance_um": tolerance,
            "max_iterations": max_iterations,
            "force": force,
            "fallback": None if fallback == "none" else fallback,
            "max_images": max_images,
        }
    core: Any = None
    if on_core:
        from focuskit.mmcore import MMCoreScope, open_core

        core = open_core(scope, **scope_kwargs)
        microscope: Any = MMCoreScope(core, focus_device, limits, max_step)
    else:
        microscope = open_scope(scope, **scope_kwargs)
    if method == "deepfocus" and physical:
        from focuskit.fewshot import BlurCalibration

        if microscope.optics is None:
            raise ConfigError(
                "--calibration physical needs a microscope whose optics are known; "
                "calibrate on a stack instead (`focuskit fewshot calibrate`)"
            )
        calib = BlurCalibration.from_optics(
            microscope.optics, pixel_size_um=microscope.pixel_size_um, model=loaded.source
        )
    if start is not None:
        move_in_steps(microscope, start)
    if measure is None:
        from focuskit.measures import default_measure

        measure = default_measure(microscope.optics)
    lo, hi = microscope.z_limits_um
    if method in ("brent", "gss", "scan"):
        settings["range_um"] = range_um if range_um is not None else (hi - lo)
        if method in ("brent", "gss"):
            settings["tolerance_um"] = 0.5 if tolerance is None else tolerance
        if max_images is not None:
            settings["max_images"] = max_images
    elif range_um is not None:
        settings["range_um"] = range_um
    on_mm: Any = None
    if on_core:
        from focuskit.cli._mmcore import focus_core

        on_mm = focus_core(
            microscope, method, measure, loaded, calib, settings, af_config, calibrate_range
        )
        result, calib = on_mm.search, calib or on_mm.calibration
    else:
        result = run_autofocus(
            microscope, method, measure, model=loaded, calibration=calib, **settings
        )
    print_notes(result.notes)
    measure = result.measure
    out = {
        "z_final_um": result.z_final_um,
        "images": result.images,
        "success": result.success,
        **result.to_dict(),
    }
    if on_mm is not None:  # the Micro-Manager registry's record of the same run
        out["autofocus_result"] = on_mm.result.to_dict()
    truth = getattr(getattr(core, "simulation", microscope), "true_focus_um", None)
    true_z = truth() if callable(truth) else None
    if true_z is not None:
        out["true_focus_um"] = true_z
        out["error_um"] = result.z_final_um - true_z
    if plot is not None and method == "deepfocus" and result.predictions:
        from focuskit.fewshot import deepfocus_plot

        deepfocus_plot(result, calib, plot, true_focus_um=true_z, title=f"DeepFocus on {scope}")
    elif plot is not None:
        from focuskit.report import autofocus_trace_plot

        autofocus_trace_plot(
            result.trace,
            plot,
            z_final_um=result.z_final_um,
            true_focus_um=true_z,
            title=f"{method} / {measure} on {scope}",
        )
    if as_json:
        print_json(out)
    else:
        verdict = "[green]success[/]" if result.success else "[red]failed[/]"
        line = (
            f"{method} / {measure}: z {result.z_start_um:+.2f} → [bold]{result.z_final_um:+.3f} "
            f"µm[/] in {result.images} images ({result.elapsed_s:.2f} s of "
            f"stage+camera time), {verdict}"
        )
        if true_z is not None:
            line += f"; true focus {true_z:+.3f} µm (error {result.z_final_um - true_z:+.3f} µm)"
        console.print(line)
        if result.message:
            console.print(f"[yellow]{result.message}[/]")
    if not result.success:
        raise typer.Exit(code=1)


@app.command()
@friendly_errors
def measures(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the focus measures."""
    from focuskit.measures import MEASURES

    if as_json:
        print_json(
            {
                n: {
                    "description": m.description,
                    "reference": m.reference,
                    "needs_optics": m.needs_optics,
                    "brightness_power": m.brightness_power,
                }
                for n, m in MEASURES.items()
            }
        )
        return
    table = Table("measure", "description", "reference")
    for n, m in MEASURES.items():
        table.add_row(n, m.description, m.reference)
    console.print(table)


@app.command()
@friendly_errors
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the bundled models: one per system, named <system>-<microscope>."""
    from focuskit._api import builtin_models_info

    rows = builtin_models_info()
    if as_json:
        print_json(rows)
        return
    table = Table("model", "parameters", "microscope", "old name")
    table.columns[0].no_wrap = True
    for r in rows:
        old = (r["old_name"] or "").removeprefix("builtin:")
        table.add_row(r["name"], f"{r['parameters']:,}", r["microscope"], old)
    console.print(table)
    console.print(
        "load any of them with [green]focuskit.load_model(NAME)[/]; train your own with "
        "[green]focuskit <system> train[/]"
    )


@app.command()
@friendly_errors
def samples(
    modality: Annotated[
        str | None,
        typer.Option(help="Only families with this contrast: fluorescence, phase, absorption"),
    ] = None,
    montage: Annotated[
        Path | None,
        typer.Option(help="Also render every family at −DOF, 0, +DOF into this PNG"),
    ] = None,
    size: Annotated[int, typer.Option(help="Image size of the montage (pixels)")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the montage's scenes")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing montage")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Families with parameters and measured statistics")
    ] = False,
) -> None:
    """List the sample families: content to simulate, train and test on."""
    from focuskit.simulate import family_statistics, get_family, sample_families

    names = sample_families(modality)
    if montage is not None:
        check_png(montage)
        check_outputs({"--montage": montage}, overwrite=overwrite)
    if as_json:
        print_json([{**get_family(n).to_dict(), "statistics": family_statistics(n)} for n in names])
    else:
        table = Table("family", "modality", "split", "description", "parameters")
        for n in names:
            fam = get_family(n)
            table.add_row(
                n,
                ", ".join(fam.modality),
                fam.split,
                fam.description,
                ", ".join(fam.parameters),
            )
        console.print(table)
        console.print(
            "Use one with `focuskit simulate --sample NAME [--sample-param NAME=VALUE]`; "
            "'unseen' families are never used to train a bundled model."
        )
    if montage is not None:
        from focuskit.report import family_montage
        from focuskit.simulate import family_views

        with progress_bar("rendering families", enabled=not as_json) as update:
            views = family_views(names, size=size, seed=seed, progress=update)
        family_montage(views, montage)
        if not as_json:
            console.print(f"montage: {montage}")


@app.command()
@friendly_errors
def presets(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the named microscopes (OPTICS.md presets)."""
    from focuskit.optics import PRESETS

    if as_json:
        print_json(
            {
                name: {
                    "optics": p.optics.to_dict(),
                    "z_um": [p.z_min_um, p.z_max_um, p.z_step_um],
                    "size": p.size,
                    "sample": p.default_sample,
                    "reference": p.reference,
                }
                for name, p in PRESETS.items()
            }
        )
        return
    table = Table(
        "preset", "objective", "λ (µm)", "pixel (µm)", "illumination", "z (µm)", "DOF (µm)"
    )
    for name, p in PRESETS.items():
        o = p.optics
        table.add_row(
            name,
            f"{o.objective.magnification:g}×/{o.na:g}",
            f"{o.wavelength_um:g}",
            f"{o.pixel_size_um:g}",
            o.illumination.kind,
            f"{p.z_min_um:g}…{p.z_max_um:g} / {p.z_step_um:g}",
            f"{o.depth_of_field_um:.2f}",
        )
    console.print(table)


@app.command()
@friendly_errors
def demo(
    output_dir: Annotated[
        Path, typer.Option("-o", "--output-dir", help="Where the demo writes its files")
    ] = Path("focuskit-demo"),
) -> None:
    """Run everything focuskit can do on embedded defaults, in about a minute."""
    from focuskit.cli._demo import run_demo
    from focuskit.io import check_output_folder

    check_output_folder(output_dir)  # before a minute of work, not after
    run_demo(output_dir, console)


def main() -> None:  # pragma: no cover - console-script entry
    app()
