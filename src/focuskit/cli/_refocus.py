"""`focuskit refocus`: Deep-R offline refocusing — apply a model to images, train one, inspect it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from focuskit._errors import ConfigError, StackFileError
from focuskit.cli._app import (
    GrayOpt,
    PixelSizeOpt,
    ZStepOpt,
    _print_json,
    console,
    err_console,
    friendly_errors,
    progress_bar,
)
from focuskit.cli._defocus import _PLAIN_IMAGE_SUFFIXES, read_plain_image

refocus_app = typer.Typer(
    help="Deep-R refocusing (Luo et al.): one defocused image → an in-focus image and a per-pixel defocus map, "
    "without knowing the defocus or the PSF.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_MODEL = "builtin:deepr-40x-fluor"
ModelOpt = Annotated[str, typer.Option(help="Refocusing model folder or builtin:NAME")]
_OUT_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".ome.zarr", ".zarr", ".npy")


def _refocuser(spec: str) -> Any:
    from focuskit.train import Refocuser

    return Refocuser.load(spec)


def _read_input(path: Path, pixel_size: Optional[float], gray: bool) -> Any:
    """An image or a stack as a FocalStack (a single image gets z = 0); metadata kept."""
    from focuskit.io import FocalStack, read_stack

    if not path.exists():
        raise StackFileError(path, "file not found", "check the path")
    if path.suffix.lower() in _PLAIN_IMAGE_SUFFIXES:
        data = read_plain_image(path, pixel_size, gray)
        return FocalStack(data[None], [0.0], pixel_size)
    rgb = "gray" if gray else "error"
    try:
        return read_stack(path, pixel_size_um=pixel_size, rgb=rgb)
    except StackFileError as exc:
        # A single image or a stack without z positions: z does not matter for refocusing.
        if "z positions" not in exc.problem and "single 2-D image" not in exc.problem:
            raise
        return read_stack(path, pixel_size_um=pixel_size, z_step_um=1.0, rgb=rgb)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", *_PLAIN_IMAGE_SUFFIXES, ".tiff", ".tif", ".zarr", ".npy"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _targets(inputs: list[Path], output: Path, dpm: Optional[Path]) -> list[tuple[Path, Optional[Path]]]:
    """One output (and defocus-map) path per input: the paths themselves for one input, or
    ``<stem>.ome.tif`` / ``<stem>.dpm.ome.tif`` inside folders for several."""
    if len(inputs) == 1 and not output.is_dir():
        return [(output, dpm)]
    if not output.is_dir():
        raise ConfigError(f"{output}: with {len(inputs)} inputs, -o must be an existing folder — create it first")
    if dpm is not None and not dpm.is_dir():
        raise ConfigError(f"{dpm}: with several inputs, --defocus-map must be an existing folder — create it first")
    stems = [_stem(p) for p in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError("two inputs share a file name; refocus them into different folders")
    return [(output / f"{s}.ome.tif", (dpm / f"{s}.dpm.ome.tif") if dpm is not None else None) for s in stems]


# --- apply -------------------------------------------------------------------------------


@refocus_app.command()
@friendly_errors
def apply(
    images: Annotated[list[Path], typer.Argument(help="Image(s) or stack(s) to refocus (TIFF/OME-TIFF/OME-Zarr/NPY/PNG)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (one input) or existing folder (several)")],
    model: ModelOpt = DEFAULT_MODEL,
    defocus_map: Annotated[Optional[Path], typer.Option("--defocus-map", help="Also write the per-pixel defocus map (µm) here (file, or folder for several inputs)")] = None,
    pixel_size: PixelSizeOpt = None,
    tile: Annotated[int, typer.Option(help="Tile size (pixels, multiple of 32)")] = 512,
    overlap: Annotated[Optional[int], typer.Option(help="Tile overlap blended with a raised-cosine window (pixels; default min(64, tile/4))")] = None,
    force: Annotated[bool, typer.Option(help="Refocus even if the pixel size / optics differ from the model's")] = False,
    gray: GrayOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs (never an input)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary")] = False,
) -> None:
    """Refocus images with a Deep-R model: float32 output in the input's intensity scale, metadata carried over.

    A stack is refocused plane by plane. Outputs are written whole or not at all."""
    from focuskit.io import FocalStack, write_stack
    from focuskit.io._atomic import check_target

    refocuser = _refocuser(model)
    plan = _targets(list(images), output, defocus_map)
    for (out, dpm) in plan:  # fail before any work if a target is taken or unsupported
        for target in (out, dpm):
            if target is None:
                continue
            if not target.name.lower().endswith(_OUT_SUFFIXES):
                raise StackFileError(target, "unsupported output format", "use .ome.tif, .ome.zarr or .npy")
            check_target(target, overwrite=overwrite, protect=images)
    if defocus_map is not None and refocuser.dpm is None:
        raise ConfigError(f"{model} has no defocus-map decoder — drop --defocus-map or train one with `refocus train`")
    summary = []
    t0 = time.perf_counter()
    for path, (out, dpm) in zip(images, plan):
        stack = _read_input(path, pixel_size, gray)
        notes = refocuser.check_optics(stack.pixel_size_um, stack.optics, force=force)
        for note in notes:
            err_console.print(f"[yellow]note:[/] {path.name}: {note}", highlight=False)
        n = len(stack)
        planes, maps = [], []
        with progress_bar(f"refocusing {path.name}", n > 1) as update:
            for k in range(n):
                plane = np.asarray(stack.plane(k))
                planes.append(refocuser.refocus(plane, tile=tile, overlap=overlap))
                if dpm is not None:
                    maps.append(refocuser.defocus_map(plane, tile=tile, overlap=overlap))
                update(k + 1, n)
        provenance = {"model": model, "input": str(path), "tile": tile, "overlap": overlap, "notes": notes}
        meta = {**stack.metadata, "refocused": provenance}
        write_stack(FocalStack(np.stack(planes), stack.z_um, stack.pixel_size_um, stack.optics, None, meta), out,
                    overwrite=overwrite, protect=images)
        row: dict[str, Any] = {"input": str(path), "output": str(out), "planes": n, "shape": list(stack.shape[1:])}
        if dpm is not None:
            dmeta = {**stack.metadata, "defocus_map_um": provenance}
            write_stack(FocalStack(np.stack(maps), stack.z_um, stack.pixel_size_um, stack.optics, None, dmeta), dpm,
                        overwrite=overwrite, protect=images)
            row["defocus_map"] = str(dpm)
            row["mean_defocus_um"] = float(np.mean(maps))
            from focuskit.train import fitted_tilt

            tilt, azimuth, rms = fitted_tilt(maps[0], stack.pixel_size_um, unsigned=not refocuser.dpm_signed)
            row.update({"fitted_tilt_deg": tilt, "tilt_azimuth_deg": azimuth, "plane_fit_rms_um": rms})
        summary.append(row)
    seconds = time.perf_counter() - t0
    if as_json:
        _print_json({"model": model, "seconds": seconds, "images": summary})
        return
    for row in summary:
        extra = ""
        if "defocus_map" in row:
            extra = (f"; defocus map → {row['defocus_map']} (mean {row['mean_defocus_um']:+.2f} µm, "
                     f"plane fit: tilt {row['fitted_tilt_deg']:.2f}° at {row['tilt_azimuth_deg']:.0f}°, "
                     f"rms {row['plane_fit_rms_um']:.2f} µm)")
        console.print(f"{row['input']} → {row['output']}{extra}", highlight=False)
    console.print(f"refocused {sum(r['planes'] for r in summary)} image(s) in {seconds:.1f} s", highlight=False)


# --- train -------------------------------------------------------------------------------


@contextmanager
def _training_bar(label: str) -> Iterator[Callable[[int, int, dict[str, float]], None]]:
    """A progress bar showing the latest validation numbers (silent when not a terminal)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
                  TextColumn("{task.fields[values]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None, values="")

        def update(step: int, total: int, values: dict[str, float]) -> None:
            text = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in values.items())
            bar.update(task, completed=step, total=total, values=text)

        yield update


@refocus_app.command()
@friendly_errors
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write")],
    stack: Annotated[Optional[list[Path]], typer.Option("--stack", help="Your own focal stack(s) (repeat); each is registered, its focus found by SSIM to the EDOF image")] = None,
    simulate: Annotated[Optional[int], typer.Option(help="Train on N simulated fields of --preset (default when no --stack)")] = None,
    preset: Annotated[str, typer.Option(help="Microscope for --simulate")] = "deepr-40x-fluor",
    init: Annotated[Optional[str], typer.Option(help="Fine-tune this model (folder or builtin:NAME)")] = None,
    steps: Annotated[int, typer.Option(help="Generator updates")] = 2000,
    dpm_steps: Annotated[int, typer.Option(help="Defocus-map decoder updates (0: no decoder)")] = 500,
    dpm_signed: Annotated[bool, typer.Option(help="Train the defocus map on signed z (only if your PSF differs at ±z, e.g. with spherical aberration); default |z|")] = False,
    z_range: Annotated[float, typer.Option(help="Train on planes within ±this of focus (µm)")] = 5.0,
    tile: Annotated[int, typer.Option(help="Tile size cut from each field (pixels)")] = 512,
    field_size: Annotated[int, typer.Option(help="--simulate: field size (pixels, ≥ tile)")] = 512,
    channels: Annotated[Optional[str], typer.Option(help="Generator widths, 6 comma-separated (default 16,32,64,96,128,192)")] = None,
    crop: Annotated[int, typer.Option(help="Training window (pixels, multiple of 32, ≤ tile)")] = 256,
    validation: Annotated[float, typer.Option(help="Fraction of fields held out")] = 0.15,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulation, the split and the training")] = 0,
    workers: Annotated[int, typer.Option(help="--simulate: processes rendering fields")] = 2,
    threads: Annotated[int, typer.Option(help="torch threads for training (1 on a busy machine)")] = 2,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint folder; --resume continues from it")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder")] = False,
) -> None:
    """Train a Deep-R model (GAN, eq. 1–4) and its defocus-map decoder, on your stacks or simulated ones.

    Writes the model folder and <output>/loss_curves.png (Fig. S8)."""
    from focuskit.evaluate import loss_curve_plot
    from focuskit.io import read_stack
    from focuskit.optics import get_preset
    from focuskit.train import (
        DPMTrainConfig,
        Refocuser,
        RefocusTiles,
        RefocusTrainConfig,
        fit_deepr,
        fit_dpm,
        simulate_refocus_tiles,
        split_tiles_by_field,
        tiles_from_stack,
    )

    if output.exists() and not overwrite:
        raise ConfigError(f"{output}: already exists — pass --overwrite or choose another -o")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: folder {output.parent} does not exist — create it first")
    extra: dict[str, Any] = {}
    if channels is not None:
        try:
            extra["generator_channels"] = tuple(int(c) for c in channels.split(","))
        except ValueError:
            raise ConfigError(f"--channels must be 6 comma-separated integers, got {channels!r}") from None
        if len(extra["generator_channels"]) != 6 or min(extra["generator_channels"]) < 1:
            raise ConfigError(f"--channels must be 6 positive integers (stem + 5 levels), got {channels!r}")
    config = RefocusTrainConfig(max_steps=steps, warmup_steps=min(500, steps // 4), z_range_um=z_range, crop=crop,
                                seed=seed, eval_every=max(10, min(100, steps // 20)), num_threads=threads, **extra)
    if dpm_steps < 0:
        raise ConfigError(f"--dpm-steps must be ≥ 0, got {dpm_steps}")
    base = _refocuser(init) if init is not None else None
    if base is not None:  # fine-tuning keeps the model's architecture
        config = RefocusTrainConfig.from_dict({**config.to_dict(),
                                               "generator_channels": list(base.generator.config.channels)})
    t0 = time.perf_counter()
    parts: list[RefocusTiles] = []
    optics = base.optics if base is not None else None
    for k, path in enumerate(stack or []):
        s = read_stack(path, pixel_size_um=pixel_size, z_step_um=z_step)
        with progress_bar(f"registering {path.name}") as update:
            update(0, 1)
            parts.append(tiles_from_stack(s, tile=tile, z_range_um=z_range, field=k))
            update(1, 1)
        optics = s.optics or optics
    if simulate or not parts:
        n = simulate or 24
        with progress_bar("simulating fields") as update:
            parts.append(simulate_refocus_tiles(preset, n, z_range_um=z_range, tile=tile, size=max(tile, field_size),
                                                seed=seed, workers=workers, progress=update))
        optics = optics or get_preset(preset).optics
    tiles = RefocusTiles.concat(parts)
    if stack and len(np.unique(tiles.field)) < 2:
        # One field of view: hold out every fifth tile (by position) so validation is unseen.
        if len(tiles) < 2:
            raise ConfigError("one stack gave a single tile — use a smaller --tile or add stacks")
        held = min(4, len(tiles) - 1)
        tiles.field = np.where(np.arange(len(tiles)) % 5 == held, tiles.field + 1, tiles.field)
    train_set, val_set = split_tiles_by_field(tiles, validation, seed=seed)
    with _training_bar("Deep-R GAN") as update:
        generator, _, history = fit_deepr(train_set, val_set, config, init=base.generator if base else None,
                                          checkpoint_dir=checkpoint, resume=resume, progress=update)
    dpm_history = None
    decoder = None
    if dpm_steps:
        dconf = DPMTrainConfig(max_steps=dpm_steps, z_range_um=z_range, crop=crop, seed=seed, num_threads=threads,
                               signed=dpm_signed,
                               eval_every=max(10, min(100, dpm_steps // 10)))
        with _training_bar("defocus-map decoder") as update:
            decoder, dpm_history = fit_dpm(generator, train_set, val_set, dconf, progress=update)
    model = Refocuser(generator, decoder, optics=optics, pixel_size_um=tiles.pixel_size_um, z_range_um=z_range,
                      dpm_signed=dpm_signed, info={
        "training": {"stacks": [str(p) for p in stack or []], "simulated_fields": simulate, "preset": preset,
                     "init": init, "tiles": {"train": len(train_set), "validation": len(val_set)},
                     "train_config": config.to_dict(), "best_step": history.best_step,
                     "validation_berhu": history.best_val_berhu, "loss_weights": history.weights,
                     "dpm_validation_rmse_um": dpm_history.best_val_rmse_um if dpm_history else None,
                     "seconds": round(time.perf_counter() - t0, 1)}})
    model.save(output, overwrite=overwrite)
    loss_curve_plot(history, dpm_history, output / "loss_curves.png")
    dpm_text = f", DPM RMSE {dpm_history.best_val_rmse_um:.2f} µm" if dpm_history else ""
    console.print(f"trained on {len(train_set)} tiles in {time.perf_counter() - t0:.0f} s: validation BerHu "
                  f"[bold]{history.best_val_berhu:.3f}[/] (step {history.best_step}){dpm_text}; wrote {output} "
                  f"and {output / 'loss_curves.png'}")


# --- info --------------------------------------------------------------------------------


@refocus_app.command()
@friendly_errors
def info(
    model: Annotated[str, typer.Argument(help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What a refocusing model is, what microscope it is for and how it was trained."""
    r = _refocuser(model)
    o = r.optics
    summary = {"model": model, "parameters": r.parameter_counts(), "architecture": r.generator.config.to_dict(),
               "optics": o.to_dict() if o is not None else None, "pixel_size_um": r.pixel_size_um,
               "z_range_um": r.z_range_um, "defocus_map": r.dpm is not None,
               **{k: v for k, v in r.info.items() if k != "training"}}
    t = dict(r.info.get("training", {}))
    for key in ("history", "dpm_history"):
        t.pop(key, None)
    summary["training"] = t
    if as_json:
        _print_json(summary)
        return
    scope = (f"{o.objective.magnification:g}×/{o.na:g}, λ {o.wavelength_um:g} µm, {o.illumination.kind}"
             if o is not None else "optics unknown")
    counts = ", ".join(f"{k} {v:,}" for k, v in summary["parameters"].items())
    console.print(f"[bold]{model}[/]: Deep-R U-Net ({counts} parameters), channels "
                  f"{summary['architecture']['channels']}; {scope}, pixel {r.pixel_size_um:g} µm; "
                  f"trained on ±{r.z_range_um:g} µm; defocus map: {'yes' if r.dpm is not None else 'no'}",
                  highlight=False)
    if t:
        keys = ("command", "best_step", "validation_berhu", "validation_ms_ssim", "dpm_validation_rmse_um", "seconds")
        console.print("training: " + "; ".join(f"{k} {t[k]}" for k in keys if k in t), highlight=False)
