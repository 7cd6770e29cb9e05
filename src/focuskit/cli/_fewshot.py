"""`focuskit fewshot` (alias `blur`): the DeepFocus blur score — score images, calibrate an
objective, train, inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from focuskit._errors import ConfigError, FocuskitError
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
    friendly_errors,
    model_input,
    print_json,
    progress_bar,
    read_stack_given,
    sub_app,
    training_bar,
)
from focuskit.fewshot import DEFAULT_MODEL

fewshot_app = sub_app(
    "Few-shot autofocus (DeepFocus): a CNN blur score that reads the local defocus — score images, "
    "calibrate an objective, train."
)

ModelOpt = Annotated[str, typer.Option(help="Blur-score model folder or builtin:NAME")]
StrideOpt = Annotated[
    int | None, typer.Option(help="Patch stride (pixels; default 128 = non-overlapping patches)")
]


def _score_stack(scorer: Any, planes: Any, stride: int | None, show: bool) -> np.ndarray:
    """Score maps of every plane, shape (Z, rows, cols). A lazy stack (OME-Zarr, a large
    tiled TIFF) is scored region by region (``BlurScorer.score_map_blocks``), never read
    whole."""
    import dask.array as da

    lazy = isinstance(planes, da.Array)
    maps = []
    with progress_bar("blur score", show) as update:
        for i in range(int(planes.shape[0])):
            if lazy:
                maps.append(scorer.score_map_blocks(planes[i], stride))
            else:
                maps.append(scorer.score_map(np.asarray(planes[i], dtype=np.float32), stride))
            update(i + 1, int(planes.shape[0]))
    return np.stack(maps)


def _preview(plane: Any, side: int = 2048) -> np.ndarray:
    """The plane, decimated to at most ``side`` pixels a side for a plot."""
    step = max(1, -(-max(int(n) for n in plane.shape) // side))
    return np.asarray(plane[::step, ::step], dtype=np.float32)


# --- score -------------------------------------------------------------------------------


@fewshot_app.command("score")
@friendly_errors
def score_images(
    images: Annotated[
        list[Path],
        typer.Argument(
            metavar="IMG...", help="Images or stacks: OME-TIFF, TIFF, OME-Zarr, NPY, PNG"
        ),
    ],
    model: ModelOpt = DEFAULT_MODEL,
    stride: StrideOpt = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size at the sample (µm), if a file lacks it")
    ] = None,
    gray: GrayOpt = False,
    map_output: Annotated[
        Path | None,
        typer.Option("--map", help="Write the score map(s) of one input to this TIFF"),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="PNG of the first plane with its score map")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing --map and --plot files")
    ] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Blur score of each image (defocus W in waves per 128² patch; lower is sharper).

    A whole slide (OME-Zarr, a tiled TIFF above 512 MiB) is scored region by region on
    --workers local threads or a --scheduler, never read whole."""
    import contextlib

    import dask.array as da

    from focuskit.fewshot import BlurScorer, score_map_plot
    from focuskit.io import atomic_output, compute_context, read_images

    check_png(plot)
    if map_output is not None:
        if len(images) != 1:
            raise ConfigError("--map writes one file: give one input")
        if map_output.suffix.lower() not in (".tif", ".tiff"):
            raise ConfigError(f"{map_output}: score maps are written as TIFF — use a .tif name")
    check_outputs(
        {"--map": map_output, "--plot": plot},
        overwrite=overwrite,
        inputs=[*images, model_input(model)],
    )
    scorer = BlurScorer.load(model)
    out: list[dict[str, Any]] = []
    first: tuple[np.ndarray, np.ndarray] | None = None
    all_maps = []
    for path in images:
        # The blur score needs neither z nor the pixel size.
        found = read_images(
            path,
            pixel_size_um=pixel_size,
            rgb="gray" if gray else "error",
            need_pixel_size=False,
            # Region by region on the workers when asked; large slides are lazy anyway.
            lazy=True if workers or scheduler else None,
        )
        notes = (
            scorer.check_optics(found.optics, found.pixel_size_um)
            if found.optics is not None
            else []
        )
        chunked = isinstance(found.planes, da.Array) or workers or scheduler
        try:
            with compute_context(workers, scheduler) if chunked else contextlib.nullcontext():
                maps = _score_stack(scorer, found.planes, stride, not as_json)
        except FocuskitError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        all_maps.append(maps)
        if first is None and plot is not None:
            first = (_preview(found.planes[0]), maps[0])
        for i, m in enumerate(maps):
            entry: dict[str, Any] = {
                "file": str(path),
                "score": float(m.mean()),
                "score_sd": float(m.std()),
                "patches": int(m.size),
            }
            if maps.shape[0] > 1:
                entry["plane"] = i
                if found.z_um is not None:
                    entry["stage_z_um"] = found.z_um[i]
            if notes:
                entry["notes"] = notes
            out.append(entry)
    if map_output is not None:
        import tifffile

        with atomic_output(map_output, overwrite=overwrite) as tmp:
            tifffile.imwrite(tmp, all_maps[0].astype(np.float32), metadata={"axes": "ZYX"})
    if plot is not None and first is not None:
        score_map_plot(first[0], first[1], plot, title=f"blur score ({model})")
    if as_json:
        print_json(out)
        return
    table = Table(
        "file",
        "plane",
        "z (µm)",
        "blur score (waves)",
        "SD over patches",
        "patches",
        title=f"blur score by {model} (lower is sharper)",
    )
    for e in out:
        z = e.get("stage_z_um")
        table.add_row(
            Path(e["file"]).name,
            str(e.get("plane", "")),
            "" if z is None else f"{z:+.2f}",
            f"{e['score']:.3f}",
            f"{e['score_sd']:.3f}",
            str(e["patches"]),
        )
    console.print(table)
    for note in dict.fromkeys(n for e in out for n in e.get("notes", [])):
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


# --- calibrate ---------------------------------------------------------------------------


@fewshot_app.command(
    help=(
        "Calibrate an objective (DeepFocus §2.2): blur score along a stack → "
        "b_calib(z), Moffat fit, FWHM."
    ),
)
@friendly_errors
def calibrate(
    stack_path: Annotated[
        Path, typer.Argument(metavar="STACK", help="Focal stack of a flat textured object")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration JSON to write")],
    model: ModelOpt = DEFAULT_MODEL,
    stride: StrideOpt = None,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    z_start: ZStartOpt = 0.0,
    z_file: ZFileOpt = None,
    gray: GrayOpt = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="PNG of b_calib(z) and its Moffat fit (default: next to -o)"),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing calibration and its plot")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    from focuskit.fewshot import BlurScorer, calibration_plot
    from focuskit.fewshot import calibrate as calibrate_stack

    if output.suffix.lower() != ".json":
        raise ConfigError(f"{output}: a calibration is written as JSON — use a .json name")
    plot = plot if plot is not None else output.with_suffix(".png")
    check_png(plot)
    check_outputs(
        {"-o": output, "--plot": plot},
        overwrite=overwrite,
        inputs=[stack_path, z_file, model_input(model)],
    )
    stack = read_stack_given(stack_path, pixel_size, z_step, z_start, z_file, gray)
    if len(stack) < 5:
        raise ConfigError(
            f"{stack_path}: {len(stack)} planes — a calibration needs ≥ 5 "
            "(a full stack through focus)"
        )
    scorer = BlurScorer.load(model)
    notes = scorer.check_optics(stack.optics, stack.pixel_size_um)
    with progress_bar("blur score", not as_json) as update:
        calibration = calibrate_stack(
            stack,
            lambda image: scorer.score_map(image, stride),
            model=model,
            source={"path": str(stack_path.resolve())},
            progress=update,
        )
    if calibration.depth_ratio < 2:
        notes.append(
            f"the blur score rises only {calibration.depth_ratio:.1f}× its spread across patches "
            "along this stack: the CNN barely sees its defocus (too small a z range, or images "
            "unlike its training); the calibration will not focus reliably"
        )
    calibration.save(output, overwrite=overwrite)
    calibration_plot(calibration, plot, title=f"calibration of {stack_path.name}")
    fit = calibration.moffat
    summary = {
        "calibration": str(output),
        "plot": str(plot),
        "fwhm_um": calibration.fwhm_um,
        "focus_z_um": calibration.focus_z_um,
        "moffat": fit.to_dict() if fit is not None else None,
        "notes": notes,
    }
    if as_json:
        print_json(summary)
        return
    how = (
        f"Moffat FWHM [bold]{calibration.fwhm_um:.2f} µm[/] (β {fit.beta:.2f}, R² {fit.r2:.3f})"
        if fit is not None
        else (
            f"FWHM [bold]{calibration.fwhm_um:.2f} µm[/] measured on the curve "
            "(no Moffat profile fits it)"
        )
    )
    console.print(
        f"b_calib(z) of {stack_path.name}: {len(stack)} planes × "
        f"{calibration.source['patches_per_plane']} patches; "
        f"minimum at z = {calibration.focus_z_um:+.2f} µm; {how}"
    )
    console.print(f"wrote {output} and {plot}")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


# --- train -------------------------------------------------------------------------------


@fewshot_app.command()
@friendly_errors
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write")],
    fields: Annotated[
        int, typer.Option(help="Simulated objects (each: 6 defocus values × 4 patches)")
    ] = 200,
    steps: Annotated[int, typer.Option(help="Training steps")] = 2000,
    batch_size: Annotated[
        int, typer.Option(help="Patches per step (under torchrun: the global batch)")
    ] = 64,
    sample: Annotated[
        list[str] | None,
        typer.Option(
            help="What simulated objects show: a sample family or built-in content "
            "(repeatable; see `focuskit samples`)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    stack: Annotated[
        list[Path] | None,
        typer.Option("--stack", help="Your own focal stack(s) with known focus (repeat)"),
    ] = None,
    focus_z: Annotated[
        list[float] | None,
        typer.Option(
            "--focus-z", help="In-focus stage z of each --stack (µm; default: the file's focus)"
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune this model (folder or builtin:NAME) instead of starting fresh"
        ),
    ] = None,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    gray: GrayOpt = False,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint folder; --resume continues from it")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --checkpoint")] = False,
    workers: Annotated[int, typer.Option(help="Processes simulating patches")] = 2,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder")] = False,
) -> None:
    """Train a blur-score CNN on simulated patches, or fine-tune one on your own stacks.

    On several processes: torchrun --nproc_per_node N -m focuskit fewshot train … (the
    README's "Training on several processes / nodes"; --batch-size is the global batch).
    """
    from focuskit.fewshot import train as train_model
    from focuskit.nn import check_model_output, process_rank

    check_model_output(output, overwrite, [*(stack or []), model_input(init)], checkpoint)
    if focus_z and (not stack or len(focus_z) != len(stack)):
        raise ConfigError("give one --focus-z per --stack (or none)")
    stacks = [read_stack_given(path, pixel_size, z_step, 0.0, None, gray) for path in stack or []]
    for path, s in zip(stack or [], stacks, strict=True):
        if s.optics is None:
            raise ConfigError(
                f"{path}: optics unknown — training labels need NA and λ; write the stack with "
                "focuskit or use a preset's metadata"
            )
        if not focus_z and s.focus_z_um is None:
            raise ConfigError(f"{path}: in-focus z unknown — pass --focus-z")
    main = process_rank() == 0  # under torchrun only rank 0 reports
    with (
        progress_bar("simulating patches", enabled=main) as data_update,
        training_bar("training", enabled=main) as train_update,
    ):
        scorer = train_model(
            output,
            fields=fields,
            samples=sample,
            stacks=stacks,
            focus_z_um=focus_z or None,
            init=init,
            steps=steps,
            batch_size=batch_size,
            seed=seed,
            workers=workers,
            checkpoint_dir=checkpoint,
            resume=resume,
            overwrite=overwrite,
            metadata={"stacks": [str(p) for p in stack or []]},
            data_progress=data_update,
            progress=train_update,
        )
    if not main:
        return
    t = scorer.metadata["training"]
    console.print(
        f"trained on {t['patches']['train']} patches in {t['seconds']:.0f} s: validation MAE "
        f"[bold]{t['validation_mae_waves']:.3f} waves[/] (step {t['best_step']}); wrote {output}"
    )


# --- info --------------------------------------------------------------------------------


@fewshot_app.command()
@friendly_errors
def info(
    model: Annotated[str, typer.Argument(help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What a blur-score model is and how it was trained."""
    from focuskit.fewshot import BlurScorer

    scorer = BlurScorer.load(model)
    summary = {
        **scorer.metadata,  # provenance first: what the model is wins
        "model": model,
        "parameters": scorer.net.parameter_count(),
        "architecture": scorer.net.config.to_dict(),
        "cutoff_range": list(scorer.cutoff_range),
        "focuskit_version": scorer.saved_by,
    }
    if as_json:
        print_json(summary)
        return
    t = summary.get("training") if isinstance(summary.get("training"), dict) else {}
    console.print(
        f"[bold]{model}[/]: blur-score CNN, {summary['parameters']:,} parameters, channels "
        f"{summary['architecture']['channels']}; trained for objectives with NA·pixel/λ in "
        f"{scorer.cutoff_range[0]:g}–{scorer.cutoff_range[1]:g}"
    )
    if t:
        mae = t.get("validation_mae_waves")
        patches = t.get("patches", "?")
        if isinstance(patches, dict):
            patches = (
                f"{patches.get('train', '?')} training + "
                f"{patches.get('validation', '?')} validation"
            )
        console.print(
            f"training: {patches} patches, validation MAE "
            f"{f'{mae:.3f}' if isinstance(mae, (int, float)) else mae} waves; "
            f"{t.get('command', '')}"
        )
        for key in ("validation_mae_by_content", "validation_mae_by_waves"):
            if isinstance(t.get(key), dict):
                console.print(
                    f"  {key.replace('_', ' ')}: "
                    + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, (int, float)) else f"{k} {v}"
                        for k, v in t[key].items()
                    )
                )


__all__ = ["fewshot_app"]
