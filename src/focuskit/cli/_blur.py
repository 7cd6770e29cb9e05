"""`focuskit blur`: the DeepFocus blur score — score images, calibrate an objective, train, inspect."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.table import Table

from focuskit._errors import ConfigError, FocuskitError
from focuskit.cli._app import (
    GrayOpt,
    PixelSizeOpt,
    ZFileOpt,
    ZStartOpt,
    ZStepOpt,
    _check_png,
    _print_json,
    _read,
    console,
    err_console,
    friendly_errors,
    progress_bar,
)

blur_app = typer.Typer(
    help="DeepFocus blur score (a CNN that reads the local defocus): score images, calibrate an objective, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_MODEL = "builtin:blur-cnn"
ModelOpt = Annotated[str, typer.Option(help="Blur-score model folder or builtin:NAME")]
StrideOpt = Annotated[Optional[int], typer.Option(help="Patch stride (pixels; default 128 = non-overlapping patches)")]


def _scorer(spec: str) -> Any:
    from focuskit.train import BlurScorer

    return BlurScorer.load(spec)


def _score_stack(scorer: Any, data: Any, stride: Optional[int], show: bool) -> np.ndarray:
    """Score maps of every plane, shape (Z, rows, cols)."""
    maps = []
    with progress_bar("blur score", show) as update:
        for i in range(int(data.shape[0])):
            maps.append(scorer.score_map(np.asarray(data[i], dtype=np.float32), stride))
            update(i + 1, int(data.shape[0]))
    return np.stack(maps)


# --- score -------------------------------------------------------------------------------


def _read_any(path: Path, pixel_size: Optional[float], gray: bool) -> Any:
    """An image or stack to score: the blur score needs neither z nor the pixel size."""
    from focuskit._errors import StackFileError
    from focuskit.cli._defocus import _read_images

    try:
        return _read_images(path, pixel_size, gray)
    except StackFileError as exc:
        if "pixel size" not in exc.problem:
            raise
        return _read_images(path, 1.0, gray)  # a placeholder: scoring does not use it


@blur_app.command("score")
@friendly_errors
def score_images(
    images: Annotated[list[Path], typer.Argument(metavar="IMG...", help="Images or stacks: OME-TIFF, TIFF, OME-Zarr, NPY, PNG")],
    model: ModelOpt = DEFAULT_MODEL,
    stride: StrideOpt = None,
    pixel_size: Annotated[Optional[float], typer.Option(help="Pixel size at the sample (µm), if a file lacks it")] = None,
    gray: GrayOpt = False,
    map_output: Annotated[Optional[Path], typer.Option("--map", help="Write the score map(s) of one input to this TIFF")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="PNG of the first plane with its score map")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --map file")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Blur score of each image (defocus W in waves per 128² patch; lower is sharper)."""
    from focuskit.io._atomic import check_target

    _check_png(plot)
    if map_output is not None:
        if len(images) != 1:
            raise ConfigError("--map writes one file: give one input")
        if map_output.suffix.lower() not in (".tif", ".tiff"):
            raise ConfigError(f"{map_output}: score maps are written as TIFF — use a .tif name")
        check_target(map_output, overwrite=overwrite, protect=images)
    scorer = _scorer(model)
    out: list[dict[str, Any]] = []
    first: tuple[np.ndarray, np.ndarray] | None = None
    all_maps = []
    for path in images:
        found = _read_any(path, pixel_size, gray)
        notes = scorer.check_optics(found.optics, found.pixel_size_um) if found.optics is not None else []
        try:
            maps = _score_stack(scorer, found.planes, stride, not as_json)
        except FocuskitError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        all_maps.append(maps)
        if first is None:
            first = (np.asarray(found.planes[0]), maps[0])
        for i, m in enumerate(maps):
            entry: dict[str, Any] = {"file": str(path), "score": float(m.mean()), "score_sd": float(m.std()),
                                     "patches": int(m.size)}
            if maps.shape[0] > 1:
                entry["plane"] = i
                if found.z_um is not None:
                    entry["stage_z_um"] = found.z_um[i]
            if notes:
                entry["notes"] = notes
            out.append(entry)
    if map_output is not None:
        import tifffile

        from focuskit.io._atomic import atomic_output

        with atomic_output(map_output, overwrite=overwrite) as tmp:
            tifffile.imwrite(tmp, all_maps[0].astype(np.float32), metadata={"axes": "ZYX"})
    if plot is not None and first is not None:
        _score_map_plot(first[0], first[1], plot, title=f"blur score ({model})")
    if as_json:
        _print_json(out)
        return
    table = Table("file", "plane", "z (µm)", "blur score (waves)", "SD over patches", "patches",
                  title=f"blur score by {model} (lower is sharper)")
    for e in out:
        z = e.get("stage_z_um")
        table.add_row(Path(e["file"]).name, str(e.get("plane", "")), "" if z is None else f"{z:+.2f}",
                      f"{e['score']:.3f}", f"{e['score_sd']:.3f}", str(e["patches"]))
    console.print(table)
    for note in dict.fromkeys(n for e in out for n in e.get("notes", [])):
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


def _score_map_plot(image: np.ndarray, score_map: np.ndarray, path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from focuskit.evaluate import save_figure_atomic

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    lo, hi = np.percentile(image, [0.5, 99.5])
    axes[0].imshow(image, cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title("image")
    shown = axes[1].imshow(score_map, cmap="magma", extent=(0, image.shape[1], image.shape[0], 0))
    axes[1].set_title(f"blur score per patch (mean {score_map.mean():.2f} waves)")
    fig.colorbar(shown, ax=axes[1], label="defocus W (waves)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    save_figure_atomic(fig, path)


# --- calibrate ---------------------------------------------------------------------------


@blur_app.command()
@friendly_errors
def calibrate(
    stack_path: Annotated[Path, typer.Argument(metavar="STACK", help="Focal stack of a flat textured object")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration JSON to write")],
    model: ModelOpt = DEFAULT_MODEL,
    stride: StrideOpt = None,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    z_start: ZStartOpt = 0.0,
    z_file: ZFileOpt = None,
    gray: GrayOpt = False,
    plot: Annotated[Optional[Path], typer.Option(help="PNG of b_calib(z) and its Moffat fit (default: next to -o)")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing calibration")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Calibrate an objective (DeepFocus §2.2): blur score along a stack → b_calib(z), Moffat fit, FWHM."""
    from focuskit.focus import BlurCalibration

    if output.suffix.lower() != ".json":
        raise ConfigError(f"{output}: a calibration is written as JSON — use a .json name")
    if output.exists() and not overwrite:
        raise ConfigError(f"{output}: already exists — pass --overwrite or choose another -o")
    if not output.parent.exists():
        raise ConfigError(f"{output}: folder {output.parent} does not exist — create it first")
    plot = plot if plot is not None else output.with_suffix(".png")
    _check_png(plot)
    stack = _read(stack_path, pixel_size, z_step, z_start, z_file, gray)
    if stack.data.shape[0] < 5:
        raise ConfigError(f"{stack_path}: {stack.data.shape[0]} planes — a calibration needs ≥ 5 (a full stack through focus)")
    scorer = _scorer(model)
    notes = scorer.check_optics(stack.optics, stack.pixel_size_um)
    maps = _score_stack(scorer, stack.data, stride, not as_json)
    flat = maps.reshape(maps.shape[0], -1)
    calibration = BlurCalibration.from_scores(
        np.asarray(stack.z_um, dtype=float), flat.mean(axis=1), score_sd=flat.std(axis=1), model=model,
        optics=stack.optics.to_dict() if stack.optics is not None else None, pixel_size_um=stack.pixel_size_um,
        source={"path": str(stack_path.resolve()), "shape": list(stack.data.shape),
                "z_range_um": [float(np.min(stack.z_um)), float(np.max(stack.z_um))], "patches_per_plane": int(flat.shape[1])},
    )
    if calibration.depth_ratio < 2:
        notes.append(f"the blur score rises only {calibration.depth_ratio:.1f}× its spread across patches along "
                     "this stack: the CNN barely sees its defocus (too small a z range, or images unlike its training); "
                     "the calibration will not focus reliably")
    calibration.save(output, overwrite=overwrite)
    calibration_plot(calibration, plot, title=f"calibration of {stack_path.name}")
    fit = calibration.moffat
    summary = {"calibration": str(output), "plot": str(plot), "fwhm_um": calibration.fwhm_um,
               "focus_z_um": calibration.focus_z_um, "moffat": fit.to_dict() if fit is not None else None,
               "notes": notes}
    if as_json:
        _print_json(summary)
        return
    how = (f"Moffat FWHM [bold]{calibration.fwhm_um:.2f} µm[/] (β {fit.beta:.2f}, R² {fit.r2:.3f})" if fit is not None
           else f"FWHM [bold]{calibration.fwhm_um:.2f} µm[/] measured on the curve (no Moffat profile fits it)")
    console.print(f"b_calib(z) of {stack_path.name}: {flat.shape[0]} planes × {flat.shape[1]} patches; "
                  f"minimum at z = {calibration.focus_z_um:+.2f} µm; {how}")
    console.print(f"wrote {output} and {plot}")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


def calibration_plot(calibration: Any, path: Path, *, title: str = "") -> None:
    """b_calib(z) (mean ± SD over patches) with its Moffat fit and FWHM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from focuskit.evaluate import save_figure_atomic

    fit = calibration.moffat
    z = np.asarray(calibration.z_um)
    b = np.asarray(calibration.score)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if calibration.score_sd is not None:
        sd = np.asarray(calibration.score_sd)
        ax.fill_between(z, b - sd, b + sd, color="C0", alpha=0.2, label="± SD over patches")
    ax.plot(z, b, "o", ms=3, color="C0", label="b_calib(z)")
    if fit is not None:
        zz = np.linspace(z.min(), z.max(), 600)
        ax.plot(zz, fit(zz), color="C3", label=f"Moffat fit, FWHM {fit.fwhm_um:.1f} µm")
        ax.hlines(fit.top - fit.amplitude / 2, fit.z0_um - fit.fwhm_um / 2, fit.z0_um + fit.fwhm_um / 2,
                  color="C3", ls=":")
    else:
        ax.axvspan(-calibration.fwhm_um / 2, calibration.fwhm_um / 2, color="C3", alpha=0.1,
                   label=f"FWHM {calibration.fwhm_um:.1f} µm (no Moffat fit)")
    ax.set_xlabel("z − focus (µm)")
    ax.set_ylabel("blur score (waves)")
    ax.set_title(title or "DeepFocus calibration")
    ax.legend(fontsize=8)
    save_figure_atomic(fig, path)


# --- train -------------------------------------------------------------------------------


@blur_app.command()
@friendly_errors
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write")],
    fields: Annotated[int, typer.Option(help="Simulated objects (each: 6 defocus values × 4 patches)")] = 200,
    steps: Annotated[int, typer.Option(help="Training steps (batches of 64)")] = 2000,
    seed: Annotated[int, typer.Option()] = 0,
    stack: Annotated[Optional[list[Path]], typer.Option("--stack", help="Your own focal stack(s) with known focus (repeat)")] = None,
    focus_z: Annotated[Optional[list[float]], typer.Option("--focus-z", help="In-focus stage z of each --stack (µm; default: the file's focus or z of the blur-score minimum)")] = None,
    init: Annotated[Optional[str], typer.Option(help="Fine-tune this model (folder or builtin:NAME) instead of starting fresh")] = None,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    gray: GrayOpt = False,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint folder; --resume continues from it")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --checkpoint")] = False,
    workers: Annotated[int, typer.Option(help="Processes simulating patches")] = 2,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder")] = False,
) -> None:
    """Train a blur-score CNN on simulated patches, or fine-tune one on your own stacks."""
    from focuskit.train import (
        BlurDataConfig,
        BlurPatches,
        BlurScorer,
        BlurTrainConfig,
        blur_patches_from_stack,
        fit_blur_cnn,
        simulate_blur_patches,
        split_patches_by_field,
    )

    if output.exists() and not overwrite:
        raise ConfigError(f"{output}: already exists — pass --overwrite or choose another -o")
    if not output.parent.exists():
        raise ConfigError(f"{output}: folder {output.parent} does not exist — create it first")
    if focus_z and (not stack or len(focus_z) != len(stack)):
        raise ConfigError("give one --focus-z per --stack (or none)")
    t0 = time.perf_counter()
    parts: list[BlurPatches] = []
    for k, path in enumerate(stack or []):
        s = _read(path, pixel_size, z_step, 0.0, None, gray)
        if s.optics is None:
            raise ConfigError(f"{path}: optics unknown — training labels need NA and λ; write the stack with focuskit or use a preset's metadata")
        focus = focus_z[k] if focus_z else s.focus_z_um
        if focus is None:
            raise ConfigError(f"{path}: in-focus z unknown — pass --focus-z")
        parts.append(blur_patches_from_stack(np.asarray(s.data), np.asarray(s.z_um), float(focus), na=s.optics.na,
                                             wavelength_um=s.optics.wavelength_um, pixel_size_um=s.pixel_size_um,
                                             immersion_index=s.optics.objective.immersion_index, field_id=10_000_000 + k))
    if not parts or init is None:
        with progress_bar("simulating patches") as update:
            parts.append(simulate_blur_patches(BlurDataConfig(n_fields=fields, seed=seed), workers=workers, progress=update))
    patches = BlurPatches.concatenate(parts)
    if stack and len(stack) == 1 and init is not None:
        # One stack: hold out its last fifth of patches (by position) for validation.
        n = len(patches)
        patches.field = np.where(np.arange(n) % 5 == 4, patches.field + 1, patches.field)
    train_set, val_set = split_patches_by_field(patches, 0.15, seed=seed)
    init_net = _scorer(init).net if init is not None else None
    config = BlurTrainConfig(max_steps=steps, seed=seed, eval_every=max(10, min(250, steps // 10)))
    from focuskit.cli._defocus import _training_bar

    with _training_bar(True) as update:
        net, history = fit_blur_cnn(train_set, val_set, config, init=init_net, checkpoint_dir=checkpoint,
                                    resume=resume, progress=update)
    scorer = BlurScorer(net, info={"training": {"train_config": config.to_dict(), "patches": len(train_set),
                                                "validation_mae_waves": history.best_val_mae_waves,
                                                "init": init, "stacks": [str(p) for p in stack or []],
                                                "seconds": round(time.perf_counter() - t0, 1)}})
    scorer.save(output, overwrite=overwrite)
    console.print(f"trained on {len(train_set)} patches in {time.perf_counter() - t0:.0f} s: validation MAE "
                  f"[bold]{history.best_val_mae_waves:.3f} waves[/] (step {history.best_step}); wrote {output}")


# --- info --------------------------------------------------------------------------------


@blur_app.command()
@friendly_errors
def info(
    model: Annotated[str, typer.Argument(help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What a blur-score model is and how it was trained."""
    scorer = _scorer(model)
    summary = {"model": model, "parameters": scorer.net.parameter_count(),
               "architecture": scorer.net.config.to_dict(), "cutoff_range": list(scorer.cutoff_range),
               **{k: v for k, v in scorer.info.items() if k != "source"}}
    if as_json:
        _print_json(summary)
        return
    t = summary.get("training", {})
    console.print(f"[bold]{model}[/]: blur-score CNN, {summary['parameters']:,} parameters, channels "
                  f"{summary['architecture']['channels']}; trained for objectives with NA·pixel/λ in "
                  f"{scorer.cutoff_range[0]:g}–{scorer.cutoff_range[1]:g}")
    if t:
        mae = t.get("validation_mae_waves")
        patches = t.get("patches", "?")
        if isinstance(patches, dict):
            patches = f"{patches.get('train', '?')} training + {patches.get('validation', '?')} validation"
        console.print(f"training: {patches} patches, validation MAE "
                      f"{mae if mae is None else f'{float(mae):.3f}'} waves; {t.get('command', '')}")
        for key in ("validation_mae_by_content", "validation_mae_by_waves"):
            if key in t:
                console.print(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v:.3f}" for k, v in t[key].items()))
