"""`focuskit defocus`: single-shot defocus prediction — predict, train, info."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from focuskit._errors import ConfigError, FocuskitError, StackFileError
from focuskit.cli._app import _print_json, console, err_console, friendly_errors, progress_bar

defocus_app = typer.Typer(
    help="Single-shot defocus prediction (FCFNN): predict z from one image, train, inspect a model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_MODEL = "builtin:fcfnn-20x-led"
# Image files read as plain 2-D images (no focuskit metadata), not as focal stacks.
_PLAIN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# --- reading images ----------------------------------------------------------------------


class _Images:
    """The planes of one file and what it says about the microscope."""

    def __init__(self, planes: Any, pixel_size_um: float | None, optics: Any, z_um: list[float] | None) -> None:
        self.planes = planes  # (Z, Y, X), maybe a Dask array
        self.pixel_size_um = pixel_size_um
        self.optics = optics
        self.z_um = z_um


def read_plain_image(path: Path, pixel_size: Optional[float], gray: bool) -> np.ndarray:
    """One 2-D grey image from a PNG/JPEG/… (RGB → BT.709 luminance with ``gray``); such
    files carry no pixel size, so it must be given."""
    if not path.is_file():
        raise StackFileError(path, "file not found", "check the path")
    import skimage.io

    try:
        data = np.asarray(skimage.io.imread(path))
    except (OSError, ValueError) as exc:
        raise StackFileError(path, f"cannot read the image ({exc})", "export it again as TIFF or PNG") from None
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        if not gray:
            raise StackFileError(path, f"is a colour image {data.shape}", "pass --gray to use its luminance")
        data = data[..., :3].astype(np.float32) @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    if data.ndim != 2:
        raise StackFileError(path, f"has shape {data.shape}, expected one 2-D grayscale image", "save one plane")
    if pixel_size is None:
        raise StackFileError(path, "pixel size is missing (plain image)", "pass --pixel-size UM")
    return data


def _read_images(path: Path, pixel_size: Optional[float], gray: bool) -> _Images:
    """Read an image or a focal stack for prediction; z positions are not needed."""
    from focuskit.io import read_stack

    if path.suffix.lower() in _PLAIN_IMAGE_SUFFIXES:
        data = read_plain_image(path, pixel_size, gray)
        return _Images(data[None], pixel_size, None, None)

    rgb = "gray" if gray else "error"
    try:
        stack = read_stack(path, pixel_size_um=pixel_size, rgb=rgb)
        z: list[float] | None = [float(v) for v in stack.z_um]
    except StackFileError as exc:
        # A single image, or a stack without z positions: z does not matter for prediction.
        if "z positions" not in exc.problem and "single 2-D image" not in exc.problem:
            raise
        stack = read_stack(path, pixel_size_um=pixel_size, z_step_um=1.0, rgb=rgb)
        z = None
    return _Images(stack.data, stack.pixel_size_um, stack.optics, z)


def _load_model(spec: str) -> Any:
    from focuskit.train import DefocusModel

    return DefocusModel.load(spec)


# --- predict -----------------------------------------------------------------------------


@defocus_app.command()
@friendly_errors
def predict(
    images: Annotated[list[Path], typer.Argument(metavar="IMG...", help="Images or stacks: OME-TIFF, TIFF, OME-Zarr, NPY, PNG")],
    model: Annotated[str, typer.Option(help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    pixel_size: Annotated[Optional[float], typer.Option(help="Pixel size at the sample (µm), if a file lacks it")] = None,
    force: Annotated[bool, typer.Option(help="Predict even if the image's pixel size / optics differ from the model's")] = False,
    gray: Annotated[bool, typer.Option(help="Use the luminance of a colour image")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Predict the defocus z (µm) of each image; the focus drive should move by −z."""
    if pixel_size is not None and not (math.isfinite(pixel_size) and pixel_size > 0):
        raise ConfigError(f"--pixel-size must be > 0 µm, got {pixel_size}")
    m = _load_model(model)
    out: list[dict[str, Any]] = []
    for path in images:
        found = _read_images(path, pixel_size, gray)
        try:
            m.check_metadata(found.pixel_size_um, found.optics, force=force)  # before any work
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        n = int(found.planes.shape[0])
        for i in range(n):
            plane = np.asarray(found.planes[i])
            try:
                p = m.predict(plane, pixel_size_um=found.pixel_size_um, optics=found.optics, force=force)
            except FocuskitError as exc:
                where = f"{path} plane {i}" if n > 1 else str(path)
                raise ConfigError(f"{where}: {exc}") from None
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
        _print_json(out)
        return
    table = Table("file", "plane", "z (µm)", "σ (µm)", "in range", "move focus by (µm)",
                  title=f"defocus predicted by {model} (z > 0: focal plane above the sample)")
    for e in out:
        table.add_row(Path(e["file"]).name, str(e.get("plane", "")), f"{e['z_um']:+.2f}", f"{e['sigma_um']:.2f}",
                      "yes" if e["in_range"] else "[red]no[/]", f"{-e['z_um']:+.2f}")
    console.print(table)
    notes = dict.fromkeys((Path(e["file"]).name, note) for e in out for note in e.get("notes", []))
    for name, note in notes:
        console.print(f"[yellow]note:[/] {name}: {note}", highlight=False, soft_wrap=True)


# --- train -------------------------------------------------------------------------------


def _stem(path: Path) -> tuple[str, str]:
    """(stem, suffix) with a multi-part suffix (.ome.tif, .ome.zarr) kept whole."""
    from focuskit.io import SUPPORTED_SUFFIXES

    name = path.name
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[len(name) - len(suffix) :]
    return path.stem, path.suffix


def _data_pairs(data: Path) -> list[tuple[Path, Path | None]]:
    """Coherent stacks in ``data`` and their ``<stem>.incoherent.<ext>`` companions."""
    from focuskit.io import SUPPORTED_SUFFIXES

    if not data.is_dir():
        raise ConfigError(f"{data}: --data must be a folder of focal stacks")
    stacks = sorted(p for p in data.iterdir()
                    if not p.name.startswith(".") and p.name.lower().endswith(SUPPORTED_SUFFIXES))
    by_stem = {_stem(p)[0]: p for p in stacks}
    pairs = []
    for p in stacks:
        stem, _ = _stem(p)
        if stem.endswith(".incoherent"):
            if stem[: -len(".incoherent")] not in by_stem:
                raise ConfigError(f"{p}: incoherent stack without its coherent stack "
                                  f"{stem[: -len('.incoherent')]}.<ext> in {data}")
            continue
        pairs.append((p, by_stem.get(stem + ".incoherent")))
    if not pairs:
        raise ConfigError(f"{data}: no focal stacks ({', '.join(SUPPORTED_SUFFIXES)}) found")
    return pairs


def _examples_from_folder(data: Path, tile: int, preset: str, model: Any, pixel_size: Optional[float],
                          progress: Callable[[int, int], None]) -> tuple[Any, Any, Any, list[str]]:
    """Examples from every field in ``data``: (examples, region, optics, notes)."""
    from focuskit.io import read_stack
    from focuskit.optics import get_preset
    from focuskit.train import DefocusExamples, examples_from_stacks, region_for

    pairs = _data_pairs(data)
    parts, notes = [], []
    optics = model.optics if model is not None else None
    region = model.region if model is not None else None
    for field_id, (path, companion) in enumerate(pairs):
        stack = read_stack(path, pixel_size_um=pixel_size)
        stack_optics = stack.optics
        if stack_optics is None:
            fallback = get_preset(preset).optics if model is None else model.optics
            if not math.isclose(fallback.pixel_size_um, stack.pixel_size_um, rel_tol=0.01):
                raise ConfigError(f"{path}: no optics metadata and its pixel size {stack.pixel_size_um:g} µm is not "
                                  f"the {'model' if model is not None else preset}'s {fallback.pixel_size_um:g} µm — "
                                  "save the stack with its optics (focuskit simulate / write_stack)")
            stack_optics = fallback
            notes.append(f"{path.name}: no optics metadata; assumed {'the model' if model is not None else preset}'s")
        if model is not None:
            try:
                model.check_metadata(stack.pixel_size_um, stack_optics)
            except ConfigError as exc:
                raise ConfigError(f"{path}: cannot fine-tune on it: {exc}") from None
        elif optics is None:
            optics = stack_optics
            try:
                region = region_for(optics, tile)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        elif stack_optics.to_dict() != optics.to_dict():
            raise ConfigError(f"{path}: its optics differ from {pairs[0][0].name}'s — train one model per microscope")
        incoherent = read_stack(companion, pixel_size_um=pixel_size) if companion is not None else None
        if incoherent is None and stack.focus_z_um is None:
            stem, suffix = _stem(path)
            raise ConfigError(f"{path}: no ground-truth focus — put its incoherent (DPC/brightfield) stack beside it "
                              f"as {stem}.incoherent{suffix}, or store focus_z_um in its metadata")
        try:
            parts.append(examples_from_stacks(stack, region, incoherent=incoherent, field_id=field_id))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        parts[-1].fields[0]["file"] = path.name
        progress(field_id + 1, len(pairs))
    if len(parts) < 2:
        raise ConfigError(f"{data}: found {len(parts)} field of view; training needs at least two "
                          "(one is held out for validation)")
    return DefocusExamples.concatenate(parts), region, optics, notes


@contextmanager
def _training_bar(enabled: bool) -> Iterator[Callable[[int, int, float], None]]:
    if not enabled:
        yield lambda step, total, rmse: None
        return
    with Progress(TextColumn("training"), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
                  TextColumn("val RMSE {task.fields[rmse]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("training", total=None, rmse="—")

        def update(step: int, total: int, rmse: float) -> None:
            bar.update(task, completed=step, total=total, rmse=f"{rmse:.3f} µm")

        yield update


@defocus_app.command()
@friendly_errors
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write")],
    data: Annotated[Optional[Path], typer.Option(help="Folder of coherent LED focal stacks (+ <stem>.incoherent.<ext> companions)")] = None,
    simulate: Annotated[Optional[int], typer.Option(help="Train on N simulated fields of view instead")] = None,
    finetune: Annotated[Optional[str], typer.Option(help="Start from this model (folder or builtin:NAME); keeps its features and optics")] = None,
    preset: Annotated[str, typer.Option(help="Microscope for --simulate (and for stacks without optics)")] = "fcfnn-20x-led",
    steps: Annotated[int, typer.Option(help="Most training steps")] = 4000,
    tile: Annotated[Optional[int], typer.Option(help="Tile size in pixels (default 1024, or the fine-tuned model's)")] = None,
    validation: Annotated[float, typer.Option(help="Fraction of fields held out for validation")] = 0.15,
    width: Annotated[int, typer.Option(help="Units per hidden layer")] = 100,
    depth: Annotated[int, typer.Option(help="Hidden layers")] = 10,
    batch_size: Annotated[int, typer.Option(help="Examples per step")] = 64,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    eval_every: Annotated[int, typer.Option(help="Validate every this many steps")] = 100,
    z_range: Annotated[Optional[tuple[float, float]], typer.Option(help="--simulate: first and last z (µm)")] = None,
    z_step: Annotated[Optional[float], typer.Option(help="--simulate: z step (µm)")] = None,
    pixel_size: Annotated[Optional[float], typer.Option(help="--data: pixel size (µm) for stacks that lack it")] = None,
    workers: Annotated[int, typer.Option(help="--simulate: processes rendering fields")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the simulation, the split and the training")] = 0,
    checkpoint_dir: Annotated[Optional[Path], typer.Option(help="Save a checkpoint here at each validation")] = None,
    resume: Annotated[bool, typer.Option(help="Resume from the checkpoint in --checkpoint-dir")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training summary as JSON")] = False,
) -> None:
    """Train a single-shot defocus model (or fine-tune one) and save it as a model folder."""
    from focuskit.optics import get_preset, z_range as make_z
    from focuskit.train import DefocusModel, TrainConfig, fit_fcfnn, region_for, simulate_examples, split_by_field

    # Everything that can be refused is refused before minutes of work.
    if (data is None) == (simulate is None):
        raise ConfigError("give exactly one of --data DIR or --simulate N")
    if output.exists() and not overwrite:
        raise ConfigError(f"{output}: already exists — pass --overwrite or choose another -o")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: folder {output.parent} does not exist — create it first")
    if data is not None and output.resolve() == data.resolve():
        raise ConfigError(f"{output}: is the --data folder; write the model elsewhere")
    if simulate is not None and simulate < 2:
        raise ConfigError(f"--simulate needs at least 2 fields (one is held out for validation), got {simulate}")
    if not 0 < validation < 1:
        raise ConfigError(f"--validation must be a fraction in (0, 1), got {validation}")
    if resume and checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir (where the checkpoint is)")
    config = TrainConfig(width=width, depth=depth, batch_size=batch_size, learning_rate=learning_rate,
                         max_steps=steps, eval_every=eval_every, seed=seed)
    base = _load_model(finetune) if finetune is not None else None
    if base is not None:
        if tile is not None and tile != base.region.tile:
            raise ConfigError(f"--tile {tile} ≠ the fine-tuned model's tile {base.region.tile}; leave --tile out")
        tile = base.region.tile
    tile = 1024 if tile is None else tile
    p = get_preset(preset)

    t0 = time.perf_counter()
    notes: list[str] = []
    if simulate is not None:
        if base is not None:
            ill = base.optics.illumination
            if not math.isclose(base.optics.pixel_size_um, p.optics.pixel_size_um, rel_tol=0.01) or \
                    not math.isclose(base.optics.na, p.optics.na, rel_tol=0.01):
                raise ConfigError(f"the fine-tuned model's optics are not preset {p.name}'s — pass its --preset")
        else:
            ill = None
        z = None
        if z_range is not None or z_step is not None:
            lo, hi = z_range if z_range is not None else (p.z_min_um, p.z_max_um)
            z = make_z(lo, hi, z_step if z_step is not None else p.z_step_um)
        with progress_bar(f"simulating {simulate} fields", enabled=not as_json) as update:
            examples = simulate_examples(simulate, preset=p, size=tile, tile=tile, z_um=z, illumination=ill,
                                         seed=seed, workers=workers, progress=update)
        optics = base.optics if base is not None else (p.optics if ill is None else p.optics.with_illumination(ill))
        region = base.region if base is not None else region_for(optics, tile)
        zs = np.asarray(z if z is not None else p.z_positions(), dtype=float)
        source: dict[str, Any] = {"simulated_fields": simulate, "preset": p.name, "seed": seed,
                                  "z_um": [float(zs.min()), float(zs.max())], "planes": int(zs.size)}
    else:
        assert data is not None
        with progress_bar("reading focal stacks", enabled=not as_json) as update:
            examples, region, optics, notes = _examples_from_folder(data, tile, preset, base, pixel_size, update)
        source = {"folder": str(data), "stacks": [f.get("file") for f in examples.fields]}
    t_data = time.perf_counter() - t0
    train_set, val_set = split_by_field(examples, validation, seed=seed)

    t1 = time.perf_counter()
    with _training_bar(enabled=not as_json) as update_train:
        net, history = fit_fcfnn(train_set, val_set, config, init=base.net if base is not None else None,
                                 checkpoint_dir=checkpoint_dir, resume=resume, progress=update_train)
    t_train = time.perf_counter() - t1
    training: dict[str, Any] = {"config": config.to_dict(), "history": history.to_dict(),
                                "data_seconds": t_data, "train_seconds": t_train}
    if base is not None:
        training["finetuned_from"] = str(base.info.get("path", finetune))
    model = DefocusModel.from_training(
        net, region, optics, train_set,
        info={"preset": p.name if simulate is not None else base.info.get("preset") if base is not None else None,
              "training": training,
              "data": {**source, "train": train_set.summary(), "validation": val_set.summary()}},
    )
    written = model.save(output, overwrite=overwrite)
    summary = {
        "output": str(written),
        "best_val_rmse_um": history.best_val_rmse_um,
        "best_step": history.best_step,
        "steps": history.steps[-1] if history.steps else 0,
        "stopped_early": history.stopped_early,
        "examples": {"train": len(train_set), "validation": len(val_set)},
        "fields": {"train": int(np.unique(train_set.field).size), "validation": int(np.unique(val_set.field).size)},
        "tile": region.tile,
        "features": region.n_features,
        "parameters": net.parameter_count(),
        "z_range_um": list(model.z_range_um),
        "seconds": {"data": t_data, "train": t_train},
        "finetuned_from": training.get("finetuned_from"),
        "notes": notes,
    }
    if as_json:
        _print_json(summary)
        return
    console.print(
        f"wrote [cyan]{written}[/]: best validation RMSE [bold]{history.best_val_rmse_um:.3f} µm[/] at step "
        f"{history.best_step} ({len(train_set)} train / {len(val_set)} validation examples, "
        f"{summary['fields']['train']} / {summary['fields']['validation']} fields); "
        f"data {t_data:.1f} s + training {t_train:.1f} s"
    )
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"try: [green]focuskit defocus predict IMG --model {written}[/]")


# --- info --------------------------------------------------------------------------------


def model_summary(spec: str) -> dict[str, Any]:
    """What a model folder says about itself (no weights needed beyond reading them)."""
    from focuskit.train import load_model_folder

    path, config, _ = load_model_folder(spec)
    if config.get("kind") != "fcfnn-defocus":
        raise ConfigError(f"{path}: not a single-shot defocus model (kind {config.get('kind')!r})")
    training = config.get("training") or {}
    history = training.get("history") or {}
    features = config.get("features") or {}
    return {
        "model": spec,
        "path": str(path),
        "kind": config.get("kind"),
        "focuskit_version": config.get("focuskit_version"),
        "preset": config.get("preset"),
        "architecture": config.get("architecture"),
        "parameters": config.get("parameters"),
        "training_bytes_per_example": config.get("training_bytes_per_example"),
        "features": features,
        "optics": config.get("optics"),
        "z_range_um": config.get("z_range_um"),
        "ood": config.get("ood"),
        "training": {
            "best_val_rmse_um": history.get("best_val_rmse_um"),
            "best_step": history.get("best_step"),
            "steps": (history.get("steps") or [None])[-1],
            "stopped_early": history.get("stopped_early"),
            "seconds": training.get("train_seconds", history.get("seconds")),
            "config": training.get("config"),
            "finetuned_from": training.get("finetuned_from"),
            "command": training.get("command"),
        },
        "data": config.get("data"),
    }


@defocus_app.command()
@friendly_errors
def info(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Describe a defocus model: architecture, size, optics, z range, how it was trained."""
    s = model_summary(model)
    if as_json:
        _print_json(s)
        return
    table = Table(title=f"{model} ({s['path']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    arch = s["architecture"] or {}
    table.add_row("architecture", f"FCFNN: {arch.get('n_features')} Fourier features → {arch.get('depth')} × "
                                  f"{arch.get('width')} ReLU → z{' + log σ' if arch.get('predict_sigma') else ''}")
    table.add_row("parameters", f"{s['parameters']:,}" if s["parameters"] is not None else "?")
    if s["training_bytes_per_example"] is not None:
        table.add_row("training memory", f"{s['training_bytes_per_example']:,} bytes / example (activations)")
    f = s["features"]
    table.add_row("tiles", f"{f.get('tile')}² px at {f.get('pixel_size_um')} µm, {f.get('bin')}×{f.get('bin')} bins")
    o = s["optics"] or {}
    obj, ill = o.get("objective", {}), o.get("illumination", {})
    table.add_row("optics", f"{obj.get('magnification', '?')}×/{obj.get('na', '?')}, λ {o.get('wavelength_um')} µm, "
                            f"{ill.get('kind')} at ({ill.get('sx')}, {ill.get('sy')})" + (f" — preset {s['preset']}" if s["preset"] else ""))
    z = s["z_range_um"] or [math.nan, math.nan]
    table.add_row("z range", f"{z[0]:+g} … {z[1]:+g} µm (outside: in_range = false)")
    t = s["training"]
    if t["best_val_rmse_um"] is not None:
        secs = f", {t['seconds']:.0f} s" if t["seconds"] is not None else ""
        table.add_row("training", f"best validation RMSE {t['best_val_rmse_um']:.3f} µm at step {t['best_step']} "
                                  f"of {t['steps']}{secs}" + (f"; fine-tuned from {t['finetuned_from']}" if t["finetuned_from"] else ""))
    d = s["data"] or {}
    if "train" in d and isinstance(d["train"], dict):
        table.add_row("data", f"{d['train'].get('examples')} train / {(d.get('validation') or {}).get('examples')} "
                              f"validation examples from {d['train'].get('fields')} / {(d.get('validation') or {}).get('fields')} fields")
    console.print(table)
