"""`focuskit autofocus --scope mmcore…` and `focuskit timelapse`: focuskit on a Micro-Manager
core (a configuration file, or the simulated microscope inside the core)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from focuskit._errors import ConfigError
from focuskit.cli._common import check_png, console, print_json, print_notes
from focuskit.search import SearchResult


@dataclass
class CoreFocus:
    """One autofocus on a core: the search's record, the registry's result, the calibration."""

    search: SearchResult
    result: Any
    calibration: Any


def parse_config(text: str | None) -> tuple[str, str] | None:
    """``GROUP:PRESET`` → ``(group, preset)``; one clear line when it is not that."""
    if text is None:
        return None
    group, sep, preset = text.partition(":")
    if not sep or not group.strip() or not preset.strip():
        raise ConfigError(f"--af-config {text!r}: write it as GROUP:PRESET, e.g. Illumination:DPC")
    return group.strip(), preset.strip()


def led_channel_note(core: Any, method: str, af_config: Any) -> list[str]:
    """On the simulated LED-array microscope, say why a classic search wants the DPC channel."""
    simulation = getattr(core, "simulation", None)
    if (
        simulation is None
        or method not in ("brent", "gss", "scan")
        or af_config is not None
        or "DPC" not in simulation.illuminations
        or simulation.illumination != "LED"
    ):
        return []
    return [
        "phase cells under one LED are least visible in focus, so a classic search in this "
        "channel walks away from focus; focus in DPC with --af-config Illumination:DPC"
    ]


def focus_core(
    scope: Any,
    method: str,
    measure: str,
    model: Any,
    calibration: Any,
    settings: dict[str, Any],
    af_config: str | None,
    calibrate_range: float | None,
) -> CoreFocus:
    """Run one autofocus on an ``MMCoreScope`` as ``focuskit autofocus`` asks."""
    from focuskit.mmcore import Autofocuser, calibrate_deepfocus

    config = parse_config(af_config)
    print_notes(led_channel_note(scope.core, method, config))
    if method == "deepfocus" and calibration is None:
        assert calibrate_range is not None
        console.print(
            f"calibrating DeepFocus on this microscope: {calibrate_range:g} µm around "
            f"z = {scope.z_um:+.2f} µm …",
            highlight=False,
        )
        calibration = calibrate_deepfocus(
            scope.core,
            model=model,
            range_um=calibrate_range,
            focus_device=scope.focus_device,
            limits_um=scope.z_limits_um,
            max_step_um=scope.max_step_um,
        )
    scope_settings = {"measure": measure} if method != "deepfocus" else {}
    autofocuser = Autofocuser(
        method, model=model, calibration=calibration, config=config, **scope_settings, **settings
    )
    result = autofocuser.run_on(scope)
    search = result.search
    if search is None:  # the camera or stage failed, or the run was cancelled
        search = SearchResult(
            method=method,
            measure=measure,
            z_start_um=result.z_before,
            z_final_um=result.z_after,
            score_start=math.nan,
            score_final=math.nan,
            images=result.n_images,
            success=False,
            message=result.message,
            elapsed_s=result.elapsed_s,
        )
    return CoreFocus(search, result, calibration)


def timelapse(
    scope: Annotated[
        str,
        typer.Option(
            help="mmcore-sim:PRESET (simulated, with drift) or mmcore:CONFIG.cfg (a real core)"
        ),
    ] = "mmcore-sim:fcfnn-20x-led",
    method: Annotated[
        str, typer.Option(help="brent | gss | scan | singleshot | deepfocus")
    ] = "singleshot",
    timepoints: Annotated[int, typer.Option(help="Number of time points")] = 10,
    drift: Annotated[
        float | None,
        typer.Option(help="mmcore-sim: focus drift per time point (µm; default 0)"),
    ] = None,
    positions: Annotated[
        int | None,
        typer.Option(
            help="mmcore-sim: stage positions, 500 µm apart on a slide tilted 5 µm per mm "
            "(default 1)"
        ),
    ] = None,
    interval: Annotated[float, typer.Option(help="Time between time points (s, real)")] = 0.0,
    range_um: Annotated[
        float | None,
        typer.Option("--range", help="Search range around the last focus (µm; default 20)"),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            help="Classic searches: final bracket (µm; default DOF/4 when known, else 0.5)"
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="singleshot / deepfocus: the model (default: built-in)")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="deepfocus: calibration JSON (`focuskit fewshot calibrate`)")
    ] = None,
    calibrate_range: Annotated[
        float | None,
        typer.Option(
            help=(
                "deepfocus: calibrate on this microscope first, a stack this high (µm); "
                "mmcore-sim default 200 on a separate field"
            )
        ),
    ] = None,
    af_config: Annotated[
        str | None,
        typer.Option(help="Focus in this configuration, GROUP:PRESET (e.g. Illumination:DPC)"),
    ] = None,
    fallback_config: Annotated[
        str | None,
        typer.Option(
            help=(
                "singleshot: run its classic fallback in this configuration, GROUP:PRESET "
                "(mmcore-sim:fcfnn-20x-led: Illumination:DPC unless given)"
            )
        ),
    ] = None,
    limits: Annotated[
        tuple[float, float] | None,
        typer.Option(
            help="Stage limits MIN MAX (µm; default: the device's own)", show_default=False
        ),
    ] = None,
    on_failure: Annotated[
        str, typer.Option(help="A failed autofocus: continue (keep the last correction) | abort")
    ] = "continue",
    seed: Annotated[int, typer.Option(help="mmcore-sim: seed (sample, focus, noise)")] = 0,
    size: Annotated[
        int | None,
        typer.Option(
            help="mmcore-sim: camera side in pixels (default: the preset's model tile, 512 or 1024)"
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write stage z vs focus, error and images to this PNG")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a time-lapse kept in focus by focuskit's MDA engine (pymmcore-plus + useq)."""
    from focuskit._api import AUTOFOCUS_METHODS
    from focuskit.mmcore import open_core, run_timelapse, timelapse_plot

    check_png(plot)
    if method not in AUTOFOCUS_METHODS:
        raise ConfigError(
            f"unknown autofocus method {method!r}; use one of {', '.join(AUTOFOCUS_METHODS)}"
        )
    if timepoints < 1:
        raise ConfigError(f"--timepoints must be ≥ 1, got {timepoints}")
    if positions is not None and positions < 1:
        raise ConfigError(f"--positions must be ≥ 1, got {positions}")
    kind = scope.split(":", 1)[0].strip().lower()
    simulated = kind == "mmcore-sim"
    if kind not in ("mmcore", "mmcore-sim"):
        raise ConfigError(
            f"timelapse runs on a Micro-Manager core: --scope mmcore-sim:PRESET or "
            f"mmcore:CONFIG.cfg, got {scope!r}"
        )
    if not simulated and (positions is not None or drift is not None or size is not None):
        raise ConfigError("--drift, --positions and --size apply to mmcore-sim: only")
    drift = 0.0 if drift is None else drift
    positions = 1 if positions is None else positions
    config = parse_config(af_config)
    fallback = parse_config(fallback_config)
    if fallback is not None and method != "singleshot":
        raise ConfigError("--fallback-config applies to --method singleshot only")
    settings: dict[str, Any] = {"config": config}
    if limits is not None:
        settings["limits_um"] = tuple(limits)
    loaded: Any = None
    if method == "singleshot":
        from focuskit.singleshot import DEFAULT_MODEL, DefocusModel

        loaded = DefocusModel.load(model or DEFAULT_MODEL)
        settings["model"] = loaded
    elif method == "deepfocus":
        from focuskit.fewshot import DEFAULT_MODEL as BLUR_MODEL
        from focuskit.fewshot import BlurCalibration, BlurScorer

        if calibration is not None and calibrate_range is not None:
            raise ConfigError("give --calibration or --calibrate-range, not both")
        if calibration is None and calibrate_range is None and not simulated:
            raise ConfigError(
                "--method deepfocus needs --calibration CALIB.json or --calibrate-range R "
                "(a stack of R µm on this microscope, through focus)"
            )
        calib = None if calibration is None else BlurCalibration.load(calibration)
        loaded = BlurScorer.load(model or (calib.model if calib else None) or BLUR_MODEL)
        settings.update(model=loaded, calibration=calib, max_images=4)
    elif model is not None or calibration is not None or calibrate_range is not None:
        raise ConfigError(
            "--model, --calibration and --calibrate-range apply to singleshot/deepfocus"
        )
    options: dict[str, Any] = {}
    if simulated:
        from focuskit.optics import get_preset

        preset = get_preset(scope.split(":", 1)[1].strip())
        span = abs(drift) * timepoints + 5.0 * 0.5 * (positions - 1)
        lo, hi = (2.0 * preset.z_min_um, 2.0 * preset.z_max_um)
        options = {
            "seed": seed,
            "drift_um_per_timepoint": drift,
            "tilt_um_per_mm": (5.0, 0.0),
            "z_limits_um": (min(lo, -span - 20.0), max(hi, span + 20.0)),
        }
        if size is not None:
            options["size"] = size
        elif loaded is not None and method == "singleshot":
            options["size"] = loaded.region.tile
    core = open_core(scope, **options)
    notes = led_channel_note(core, method, config)
    simulation = getattr(core, "simulation", None)
    if method == "singleshot":
        if fallback is None and simulation is not None and "DPC" in simulation.illuminations:
            fallback = ("Illumination", "DPC")  # the LED array's channel with a focus peak
        settings["fallback_config"] = fallback
    optics = getattr(simulation, "preset", None)
    dof = optics.optics.depth_of_field_um if optics is not None else None
    if method in ("brent", "gss", "scan"):
        settings["range_um"] = 20.0 if range_um is None else range_um
        settings["tolerance_um"] = tolerance if tolerance is not None else (dof / 4 if dof else 0.5)
    elif range_um is not None:
        settings["range_um"] = range_um
    if method == "singleshot" and tolerance is not None:
        settings["tolerance_um"] = tolerance
    z0 = float(core.getPosition())
    where = [(500.0 * i, 0.0, z0) for i in range(positions)] if simulated else None
    if method == "deepfocus" and settings["calibration"] is None:
        from focuskit.mmcore import calibrate_deepfocus

        settings["calibration"] = _calibrate_elsewhere(
            core, loaded, calibrate_range or 200.0, simulated, calibrate_deepfocus, settings
        )
    rows: list[dict[str, Any]] = []

    def show(frame: dict[str, Any]) -> None:
        rows.append(frame)
        if not as_json:
            error = frame.get("error_um")
            console.print(
                f"  t={frame['t']:>3} p={frame['p'] if frame['p'] is not None else 0}: "
                f"{frame['af_images']} images, z {frame['z_um']:+8.3f} µm"
                + ("" if error is None else f", error {error:+.3f} µm")
                + (
                    ""
                    if frame["af_succeeded"]
                    else f" [red]autofocus failed: {frame['af_message']}[/]"
                ),
                highlight=False,
            )

    print_notes(notes)
    if not as_json:
        console.print(
            f"time-lapse on {scope}: {timepoints} time points × {len(where or [None])} "
            f"position(s), {method}"
            + (f" (fallback in {' '.join(fallback)})" if fallback else "")
            + (f" in {' '.join(config)}" if config else "")
            + (f", drift {drift:+g} µm per time point" if simulated else ""),
            highlight=False,
        )
    result = run_timelapse(
        core,
        method,
        timepoints=timepoints,
        positions=where,
        interval_s=interval,
        on_failure=on_failure,
        on_frame=show,
        **settings,
    )
    summary = result.summary()
    if plot is not None:
        timelapse_plot(result, plot, title=f"{method} on {scope}")
    if as_json:
        print_json({"summary": summary, "frames": result.frames, "autofocus": result.autofocus})
    else:
        _print_summary(summary, dof)
        notes = [n for r in result.autofocus for n in r.get("notes", [])]
        print_notes(notes)
        if plot is not None:
            console.print(f"plot [cyan]{plot}[/]")
    if summary["failures"]:
        raise typer.Exit(code=1)


def _calibrate_elsewhere(
    core: Any, model: Any, range_um: float, simulated: bool, calibrate: Any, settings: Any
) -> Any:
    """DeepFocus calibration on this microscope; on the simulator, on a field of its own."""
    from focuskit.mmcore import MMCoreScope
    from focuskit.scopes import move_in_steps

    limits = settings.get("limits_um")
    scope = MMCoreScope(core, None, limits)
    x0, y0 = core.getXYPosition() if core.getXYStageDevice() else (0.0, 0.0)
    z0 = scope.z_um
    if simulated:
        # Another sample than the time-lapse's, 5 mm away, put in focus as a user would.
        core.setXYPosition(x0 - 5000.0, y0)
        move_in_steps(scope, core.simulation.true_focus_um())
    console.print(f"calibrating DeepFocus: a {range_um:g} µm stack on this microscope …")
    try:
        return calibrate(core, model=model, range_um=range_um, limits_um=limits)
    finally:
        if simulated:
            scope.refresh()
            move_in_steps(scope, z0)
            core.setXYPosition(x0, y0)


def _print_summary(summary: dict[str, Any], dof: float | None) -> None:
    table = Table("images per autofocus (median / max)", "|error| median / max (µm)", "failures")
    error = (
        "—"
        if summary["error_median_um"] is None
        else f"{summary['error_median_um']:.3f} / {summary['error_max_um']:.3f}"
    )
    table.add_row(
        f"{summary['images_median']:g} / {summary['images_max']}", error, str(summary["failures"])
    )
    console.print(table)
    if dof and summary["within_quarter_dof"] is not None:
        console.print(
            f"{summary['within_quarter_dof']}/{summary['frames']} frames within DOF/4 = "
            f"{dof / 4:.2f} µm; engine overhead {summary['overhead_ms_median']:.2f} ms per "
            "autofocus (median)",
            highlight=False,
        )
