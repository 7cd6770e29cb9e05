"""`focuskit singleshot` (alias `defocus`): single-shot defocus prediction
— predict, train, info."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from focuskit._errors import ConfigError, FocuskitError
from focuskit.cli._common import (
    SchedulerOpt,
    WorkersOpt,
    console,
    friendly_errors,
    model_input,
    print_json,
    progress_bar,
    sub_app,
    training_bar,
)
from focuskit.singleshot import DEFAULT_MODEL

singleshot_app = sub_app(
    "Single-shot defocus prediction (FCFNN, Pinkard et al.): predict z from one image, "
    "train, inspect a model."
)


# --- predict -----------------------------------------------------------------------------


@singleshot_app.command()
@friendly_errors
def predict(
    images: Annotated[
        list[Path],
        typer.Argument(
            metavar="IMG...", help="Images or stacks: OME-TIFF, TIFF, OME-Zarr, NPY, PNG"
        ),
    ],
    model: Annotated[str, typer.Option(help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size at the sample (µm), if a file lacks it")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Predict even if the image's pixel size / optics differ from the model's"
        ),
    ] = False,
    gray: Annotated[bool, typer.Option(help="Use the luminance of a colour image")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Predict the defocus z (µm) of each image; the focus drive should move by −z.

    A whole slide (OME-Zarr, a tiled TIFF above 512 MiB) is predicted region by region on
    --workers local threads or a --scheduler, never read whole: the same tiles and median
    as in memory. For a map of a tilted slide use `focuskit focus-map --method singleshot`."""
    import contextlib

    import dask.array as da

    from focuskit.io import compute_context, read_images
    from focuskit.singleshot import DefocusModel

    if pixel_size is not None and not (math.isfinite(pixel_size) and pixel_size > 0):
        raise ConfigError(f"--pixel-size must be > 0 µm, got {pixel_size}")
    m = DefocusModel.load(model)
    out: list[dict[str, Any]] = []
    for path in images:
        found = read_images(
            path,
            pixel_size_um=pixel_size,
            rgb="gray" if gray else "error",
            # Region by region on the workers when asked; large slides are lazy anyway.
            lazy=True if workers or scheduler else None,
        )
        try:
            m.check_optics(found.optics, found.pixel_size_um, force=force)  # before any work
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        n = len(found)
        chunked = isinstance(found.planes, da.Array) or workers or scheduler
        with compute_context(workers, scheduler) if chunked else contextlib.nullcontext():
            predictions = []
            for i in range(n):
                try:
                    predictions.append(
                        (m.predict_blocks if chunked else m.predict)(
                            found.planes[i] if chunked else found.plane(i),
                            pixel_size_um=found.pixel_size_um,
                            optics=found.optics,
                            force=force,
                        )
                    )
                except FocuskitError as exc:
                    where = f"{path} plane {i}" if n > 1 else str(path)
                    raise ConfigError(f"{where}: {exc}") from None
        for i, p in enumerate(predictions):
            entry: dict[str, Any] = {"file": str(path)}
            if n > 1:
                entry["plane"] = i
                if found.z_um is not None:
                    entry["stage_z_um"] = found.z_um[i]
            entry.update({"z_um": p.z_um, "sigma_um": p.sigma_um, "in_range": p.in_range})
            if p.notes:
                entry["notes"] = p.notes
            out.append(entry)
    if as_json:
        print_json(out)
        return
    table = Table(
        "file",
        "plane",
        "z (µm)",
        "σ (µm)",
        "in range",
        "move focus by (µm)",
        title=f"defocus predicted by {model} (z > 0: focal plane above the sample)",
    )
    for e in out:
        table.add_row(
            Path(e["file"]).name,
            str(e.get("plane", "")),
            f"{e['z_um']:+.2f}",
            f"{e['sigma_um']:.2f}",
            "yes" if e["in_range"] else "[red]no[/]",
            f"{-e['z_um']:+.2f}",
        )
    console.print(table)
    notes = dict.fromkeys((Path(e["file"]).name, note) for e in out for note in e.get("notes", []))
    for name, note in notes:
        console.print(f"[yellow]note:[/] {name}: {note}", highlight=False, soft_wrap=True)


# --- train -------------------------------------------------------------------------------


@singleshot_app.command()
@friendly_errors
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Folder of coherent LED focal stacks (+ <stem>.incoherent.<ext> companions)"
        ),
    ] = None,
    simulate: Annotated[
        int | None, typer.Option(help="Train on N simulated fields of view instead")
    ] = None,
    sample: Annotated[
        list[str] | None,
        typer.Option(
            help="--simulate: a transmitted-light sample family or generator to draw fields "
            "from (repeatable; see `focuskit samples`). Default: cells"
        ),
    ] = None,
    finetune: Annotated[
        str | None,
        typer.Option(
            help="Start from this model (folder or builtin:NAME); keeps its features and optics"
        ),
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Microscope for --simulate (and for stacks without optics)")
    ] = "fcfnn-20x-led",
    steps: Annotated[int, typer.Option(help="Most training steps")] = 4000,
    tile: Annotated[
        int | None,
        typer.Option(help="Tile size in pixels (default 1024, or the fine-tuned model's)"),
    ] = None,
    validation: Annotated[
        float, typer.Option(help="Fraction of fields held out for validation")
    ] = 0.15,
    width: Annotated[int, typer.Option(help="Units per hidden layer")] = 100,
    depth: Annotated[int, typer.Option(help="Hidden layers")] = 10,
    batch_size: Annotated[int, typer.Option(help="Examples per step")] = 64,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    eval_every: Annotated[int, typer.Option(help="Validate every this many steps")] = 100,
    z_range: Annotated[
        tuple[float, float] | None, typer.Option(help="--simulate: first and last z (µm)")
    ] = None,
    z_step: Annotated[float | None, typer.Option(help="--simulate: z step (µm)")] = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="--data: pixel size (µm) for stacks that lack it")
    ] = None,
    workers: Annotated[int, typer.Option(help="--simulate: processes rendering fields")] = 1,
    seed: Annotated[
        int, typer.Option(help="Seed of the simulation, the split and the training")
    ] = 0,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Save a checkpoint here at each validation")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Resume from the checkpoint in --checkpoint-dir")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the training summary as JSON")
    ] = False,
) -> None:
    """Train a single-shot defocus model (or fine-tune one) and save it as a model folder.

    On several processes: torchrun --nproc_per_node N -m focuskit singleshot train … (the
    README's "Training on several processes / nodes"; --batch-size is the global batch).
    """
    from focuskit.nn import check_model_output, process_rank
    from focuskit.optics import get_preset
    from focuskit.optics import z_range as make_z
    from focuskit.singleshot import TrainConfig
    from focuskit.singleshot import train as train_model

    check_model_output(output, overwrite, [data, model_input(finetune)], checkpoint_dir)
    config = TrainConfig(
        width=width,
        depth=depth,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_steps=steps,
        eval_every=eval_every,
        seed=seed,
    )
    z = None
    if z_range is not None or z_step is not None:
        p = get_preset(preset)
        lo, hi = z_range if z_range is not None else (p.z_min_um, p.z_max_um)
        z = make_z(lo, hi, z_step if z_step is not None else p.z_step_um)
    label = f"simulating {simulate} fields" if simulate is not None else "reading focal stacks"
    main = process_rank() == 0  # under torchrun only rank 0 reports
    with (
        progress_bar(label, enabled=not as_json and main) as data_update,
        training_bar("training", enabled=not as_json and main) as train_update,
    ):
        model = train_model(
            output,
            data=data,
            simulate=simulate,
            samples=sample,
            finetune=finetune,
            preset=preset,
            config=config,
            tile=tile,
            validation=validation,
            z_um=z,
            pixel_size_um=pixel_size,
            workers=workers,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            overwrite=overwrite,
            data_progress=data_update,
            progress=train_update,
        )
    if not main:
        return
    training = model.metadata["training"]
    history = training["history"]
    sets = model.metadata["data"]
    summary = {
        "output": str(output),
        "best_val_rmse_um": history["best_val_rmse_um"],
        "best_step": history["best_step"],
        "steps": history["steps"][-1] if history["steps"] else 0,
        "stopped_early": history["stopped_early"],
        "examples": {
            "train": sets["train"]["examples"],
            "validation": sets["validation"]["examples"],
        },
        "fields": {"train": sets["train"]["fields"], "validation": sets["validation"]["fields"]},
        "tile": model.region.tile,
        "features": model.region.n_features,
        "parameters": model.net.parameter_count(),
        "z_range_um": list(model.z_range_um),
        "seconds": {"data": training["data_seconds"], "train": training["train_seconds"]},
        "finetuned_from": training.get("finetuned_from"),
        "notes": sets.get("notes", []),
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"wrote [cyan]{output}[/]: best validation RMSE [bold]{summary['best_val_rmse_um']:.3f} "
        f"µm[/] at step {summary['best_step']} ({summary['examples']['train']} train / "
        f"{summary['examples']['validation']} validation examples, {summary['fields']['train']} / "
        f"{summary['fields']['validation']} fields); data {summary['seconds']['data']:.1f} s + "
        f"training {summary['seconds']['train']:.1f} s"
    )
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"try: [green]focuskit singleshot predict IMG --model {output}[/]")


# --- info --------------------------------------------------------------------------------


def model_summary(spec: str) -> dict[str, Any]:
    """What a single-shot model folder says about itself."""
    from focuskit.singleshot import DefocusModel

    model = DefocusModel.load(spec)
    config = {**model.metadata, **model.config()}  # what the model is wins over provenance
    # Provenance is free-form JSON: shown as far as it has the expected shape.
    training = config.get("training") if isinstance(config.get("training"), dict) else {}
    history = training.get("history") if isinstance(training.get("history"), dict) else {}
    steps = history.get("steps")
    return {
        "model": spec,
        "path": str(model.path),
        "kind": model.kind,
        "focuskit_version": model.saved_by,
        "preset": config.get("preset"),
        "architecture": config.get("architecture"),
        "parameters": config.get("parameters"),
        "training_bytes_per_example": config.get("training_bytes_per_example"),
        "features": config.get("features"),
        "optics": config.get("optics"),
        "z_range_um": config.get("z_range_um"),
        "ood": config.get("ood"),
        "training": {
            "best_val_rmse_um": history.get("best_val_rmse_um"),
            "best_step": history.get("best_step"),
            "steps": steps[-1] if isinstance(steps, list) and steps else None,
            "stopped_early": history.get("stopped_early"),
            "seconds": training.get("train_seconds", history.get("seconds")),
            "config": training.get("config"),
            "finetuned_from": training.get("finetuned_from"),
            "command": training.get("command"),
        },
        "data": config.get("data"),
    }


@singleshot_app.command()
@friendly_errors
def info(
    model: Annotated[
        str, typer.Argument(metavar="MODEL", help="Model folder or builtin:NAME")
    ] = DEFAULT_MODEL,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Describe a defocus model: architecture, size, optics, z range, how it was trained."""
    s = model_summary(model)
    if as_json:
        print_json(s)
        return
    table = Table(title=f"{model} ({s['path']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    arch = s["architecture"] or {}
    table.add_row(
        "architecture",
        f"FCFNN: {arch.get('n_features')} Fourier features → {arch.get('depth')} × "
        f"{arch.get('width')} ReLU → z{' + log σ' if arch.get('predict_sigma') else ''}",
    )
    table.add_row("parameters", f"{s['parameters']:,}" if s["parameters"] is not None else "?")
    if s["training_bytes_per_example"] is not None:
        table.add_row(
            "training memory", f"{s['training_bytes_per_example']:,} bytes / example (activations)"
        )
    f = s["features"] or {}
    table.add_row(
        "tiles",
        f"{f.get('tile')}² px at {f.get('pixel_size_um')} µm, {f.get('bin')}×{f.get('bin')} bins",
    )
    o = s["optics"] or {}
    obj, ill = o.get("objective", {}), o.get("illumination", {})
    table.add_row(
        "optics",
        f"{obj.get('magnification', '?')}×/{obj.get('na', '?')}, λ {o.get('wavelength_um')} µm, "
        f"{ill.get('kind')} at ({ill.get('sx')}, {ill.get('sy')})"
        + (f" — preset {s['preset']}" if s["preset"] else ""),
    )
    z = s["z_range_um"] or [math.nan, math.nan]
    table.add_row("z range", f"{z[0]:+g} … {z[1]:+g} µm (outside: in_range = false)")
    t = s["training"]
    if t["best_val_rmse_um"] is not None:
        secs = f", {t['seconds']:.0f} s" if t["seconds"] is not None else ""
        table.add_row(
            "training",
            f"best validation RMSE {t['best_val_rmse_um']:.3f} µm at step {t['best_step']} "
            f"of {t['steps']}{secs}"
            + (f"; fine-tuned from {t['finetuned_from']}" if t["finetuned_from"] else ""),
        )
    d = s["data"] or {}
    if "train" in d and isinstance(d["train"], dict):
        table.add_row(
            "data",
            f"{d['train'].get('examples')} train / {(d.get('validation') or {}).get('examples')} "
            f"validation examples from {d['train'].get('fields')} / "
            f"{(d.get('validation') or {}).get('fields')} fields",
        )
    console.print(table)


__all__ = ["singleshot_app"]
