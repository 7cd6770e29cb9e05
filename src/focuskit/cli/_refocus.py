"""`focuskit refocus`: Deep-R offline refocusing — apply a model to images,
train one, inspect it."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from focuskit._errors import ConfigError, StackFileError
from focuskit.cli._common import (
    GrayOpt,
    PixelSizeOpt,
    ResumeOpt,
    SchedulerOpt,
    WorkersOpt,
    ZStepOpt,
    check_outputs,
    console,
    err_console,
    friendly_errors,
    model_input,
    print_json,
    progress_bar,
    sub_app,
    training_bar,
)
from focuskit.io import PLAIN_IMAGE_SUFFIXES
from focuskit.refocus import DEFAULT_MODEL

refocus_app = sub_app(
    "Deep-R refocusing (Luo et al.): one defocused image → an in-focus image and a per-pixel "
    "defocus map, without knowing the defocus or the PSF."
)

ModelOpt = Annotated[str, typer.Option(help="Refocusing model folder or builtin:NAME")]
_OUT_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".ome.zarr", ".zarr", ".npy")
# An OME-Zarr output of an image with planes larger than this is written chunk by chunk
# (in memory, an 8192² plane needs about 1.6 GB for the blending sums alone).
_CHUNKED_ABOVE_PIXELS = 4096 * 4096
_LAZY_SUFFIXES = (".ome.zarr", ".zarr", ".ome.tif", ".ome.tiff", ".tif", ".tiff")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (
        ".ome.tiff",
        ".ome.tif",
        ".ome.zarr",
        *PLAIN_IMAGE_SUFFIXES,
        ".tiff",
        ".tif",
        ".zarr",
        ".npy",
    ):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_folder(path: Path) -> bool:
    """A folder to write into, not an OME-Zarr stack (itself a folder) to write or replace."""
    return path.is_dir() and not (
        path.name.lower().endswith(".zarr")
        or any((path / n).exists() for n in (".zgroup", ".zarray", "zarr.json"))
    )


def _targets(
    inputs: list[Path],
    output: Path,
    extra: Path | None,
    *,
    option: str = "--defocus-map",
    kind: str = "dpm",
) -> list[tuple[Path, Path | None]]:
    """One output (and companion: defocus map, consistency map) path per input: the paths
    themselves for one input, or ``<stem>.ome.tif`` / ``<stem>.<kind>.ome.tif`` inside
    folders for several."""
    if len(inputs) == 1 and not _is_folder(output):
        return [(output, extra)]
    if not _is_folder(output):
        raise ConfigError(
            f"{output}: with {len(inputs)} inputs, -o must be an existing folder — create it first"
        )
    if extra is not None and not _is_folder(extra):
        raise ConfigError(
            f"{extra}: with several inputs, {option} must be an existing folder — create it first"
        )
    stems = [_stem(p) for p in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError("two inputs share a file name; refocus them into different folders")
    return [
        (output / f"{s}.ome.tif", (extra / f"{s}.{kind}.ome.tif") if extra is not None else None)
        for s in stems
    ]


# --- apply -------------------------------------------------------------------------------


@refocus_app.command(
    help=(
        "Refocus images: float32 output (or --dtype input) in the input's intensity scale, "
        "never negative, metadata carried over.\n\n"
        "--method auto (default) re-blurs Deep-R's output tile by tile to the defocus estimated "
        "from the image and keeps it only where it explains the measurement as well as the "
        "physics output (Richardson-Lucy + TV with the estimated PSF) does; other tiles fall "
        "back to physics and are reported. --consistency writes the per-tile χ².\n\n"
        "A stack is refocused plane by plane. Outputs are written whole or not at all.\n\n"
        "Whole slides: with an OME-Zarr -o and a plane larger than 4096² (or --chunked, "
        "--resume, --workers, --scheduler), the image is read lazily and refocused block by "
        "block (--block pixels a side) into the OME-Zarr, each block written once, in place; "
        "a killed run is finished with --resume. The result is the in-memory one (same tiles "
        "and blending; no seams)."
    ),
)
@friendly_errors
def apply(
    images: Annotated[
        list[Path],
        typer.Argument(help="Image(s) or stack(s) to refocus (TIFF/OME-TIFF/OME-Zarr/NPY/PNG)"),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Output file (one input) or existing folder (several)"),
    ],
    model: ModelOpt = DEFAULT_MODEL,
    defocus_map: Annotated[
        Path | None,
        typer.Option(
            "--defocus-map",
            help=(
                "Also write the per-pixel defocus map (µm) "
                "here (file, or folder for several inputs)"
            ),
        ),
    ] = None,
    pixel_size: PixelSizeOpt = None,
    tile: Annotated[int, typer.Option(help="Tile size (pixels, multiple of 32)")] = 512,
    overlap: Annotated[
        int | None,
        typer.Option(
            help=(
                "Tile overlap blended with a raised-cosine window (pixels; default min(64, tile/4))"
            )
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Refocus even if the pixel size / optics differ from the model's")
    ] = False,
    gray: GrayOpt = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing outputs (never an input)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary")] = False,
    chunked: Annotated[
        bool,
        typer.Option("--chunked", help="Refocus block by block into an OME-Zarr -o (see above)"),
    ] = False,
    block: Annotated[
        int,
        typer.Option(
            min=64, help="Chunk-wise: block side (pixels): the unit of work, writing and resuming"
        ),
    ] = 2048,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    resume: ResumeOpt = False,
    method: Annotated[
        str | None,
        typer.Option(
            help=(
                "auto: Deep-R on the tiles whose output, re-blurred to the estimated defocus, "
                "explains the measurement as well as physics does, physics elsewhere; deepr: "
                "the learned model only; physics: Richardson-Lucy + TV with the PSF at the "
                "estimated (or --z) defocus. Default: auto in memory, deepr chunk-wise"
            ),
            show_default=False,
        ),
    ] = None,
    z: Annotated[
        float | None,
        typer.Option(
            "--z", help="The defocus if you know it (µm; sign ignored): no estimate for physics"
        ),
    ] = None,
    psf: Annotated[
        Path | None,
        typer.Option(
            help="A measured bead focal stack (with z) as the PSF family, instead of the optics"
        ),
    ] = None,
    psf_z_step: Annotated[
        float | None,
        typer.Option(help="z step of the bead stack (µm), if its file lacks z positions"),
    ] = None,
    psf_pixel_size: Annotated[
        float | None,
        typer.Option(help="pixel size of the bead stack (µm), if its file lacks it"),
    ] = None,
    consistency: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Also write the per-tile re-blur χ² (≈1: explained by the measurement) as an "
                "image here (file, or folder for several inputs)"
            )
        ),
    ] = None,
    dtype: Annotated[
        str,
        typer.Option(
            help="float32, or input: the input's integer type, clipped to its range (reported)"
        ),
    ] = "float32",
) -> None:
    from focuskit.focus import fitted_tilt
    from focuskit.io import FocalStack, read_images, read_stack, write_stack
    from focuskit.refocus import METHODS, Refocuser, refocus_checked

    if method is not None and method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if dtype not in ("float32", "input"):
        raise ConfigError(f"--dtype must be float32 or input, got {dtype!r}")
    if _use_chunked(images, output, chunked or resume or workers is not None or bool(scheduler)):
        if method not in (None, "deepr") or any(v is not None for v in (z, psf, consistency)):
            raise ConfigError(
                "chunk-wise refocusing (large OME-Zarr, --chunked/--resume/--workers/"
                "--scheduler) runs the learned model only (--method deepr); --method "
                "auto/physics, --z, --psf and --consistency work in memory — crop the slide"
            )
        _apply_chunked(
            images,
            output,
            model=model,
            defocus_map=defocus_map,
            pixel_size=pixel_size,
            tile=tile,
            overlap=overlap,
            force=force,
            gray=gray,
            overwrite=overwrite,
            as_json=as_json,
            block=block,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
        )
        return
    method = method or "auto"
    plan = _targets(list(images), output, defocus_map)
    cmaps = [
        c
        for _, c in _targets(list(images), output, consistency, option="--consistency", kind="chi2")
    ]
    for (out, dpm), cmap in zip(plan, cmaps, strict=True):  # fail before any work
        for target in (out, dpm, cmap):
            if target is not None and not target.name.lower().endswith(_OUT_SUFFIXES):
                raise StackFileError(
                    target, "unsupported output format", "use .ome.tif, .ome.zarr or .npy"
                )
    check_outputs(
        [
            (label, p)
            for (out, dpm), cmap in zip(plan, cmaps, strict=True)
            for label, p in (("-o", out), ("--defocus-map", dpm), ("--consistency", cmap))
        ],
        overwrite=overwrite,
        inputs=[*images, model_input(model), psf],
    )
    refocuser = Refocuser.load(model)
    psf_stack = None
    if psf is not None:
        if not psf.exists():
            raise StackFileError(psf, "file not found", "check the path of the bead stack")
        psf_stack = read_stack(psf, pixel_size_um=psf_pixel_size, z_step_um=psf_z_step)
    if defocus_map is not None and refocuser.dpm is None:
        raise ConfigError(
            f"{model} has no defocus-map decoder — drop --defocus-map or train one "
            "with `refocus train`"
        )
    summary = []
    t0 = time.perf_counter()
    for path, (out, dpm), cmap in zip(images, plan, cmaps, strict=True):
        if not path.exists():
            raise StackFileError(path, "file not found", "check the path")
        # A single image or a stack without z: z does not matter for refocusing.
        stack = read_images(
            path, pixel_size_um=pixel_size, rgb="gray" if gray else "error"
        ).as_stack()
        notes = refocuser.check_optics(stack.optics, stack.pixel_size_um, force=force)
        for note in notes:
            err_console.print(f"[yellow]note:[/] {path.name}: {note}", highlight=False)
        family = _psf_family(stack, refocuser, psf_stack)
        n = len(stack)
        planes, maps, checks, reports = [], [], [], []
        with progress_bar(f"refocusing {path.name}", n > 1) as update:
            for k in range(n):
                plane = np.asarray(stack.plane(k))
                result = refocus_checked(
                    plane,
                    method=method,  # type: ignore[arg-type]
                    refocuser=refocuser,
                    family=family,
                    z_um=z,
                    tile=tile,
                    overlap=overlap,
                )
                planes.append(result.image)
                checks.append(result.consistency_map())
                reports.append(result.to_dict())
                if dpm is not None:
                    maps.append(refocuser.defocus_map(plane, tile=tile, overlap=overlap))
                update(k + 1, n)
        for k, rep in enumerate(reports):
            for note in rep["notes"]:
                where = f" plane {k}" if n > 1 else ""
                err_console.print(f"[yellow]note:[/] {path.name}{where}: {note}", highlight=False)
        data, clip_note = _output_dtype(np.stack(planes), stack.data.dtype, dtype)
        if clip_note:
            err_console.print(f"[yellow]note:[/] {path.name}: {clip_note}", highlight=False)
        provenance = {
            "model": model,
            "method": method,
            "input": str(path),
            "tile": tile,
            "overlap": overlap,
            "z_um": z,
            "psf": None if psf is None else str(psf),
            "notes": notes + ([clip_note] if clip_note else []),
        }
        meta = {**stack.metadata, "refocused": provenance}
        write_stack(
            FocalStack(data, stack.z_um, stack.pixel_size_um, stack.optics, None, meta),
            out,
            overwrite=overwrite,
            protect=images,
        )
        row: dict[str, Any] = {
            "input": str(path),
            "output": str(out),
            "planes": n,
            "shape": list(stack.shape[1:]),
            "method": method,
            "dtype": str(data.dtype),
            "clipped": clip_note,
            "refocus": reports if n > 1 else reports[0],
        }
        # The companion images (same z, pixel and optics): the χ² map and the defocus map.
        for key, extra, target, label in (
            ("reblur_chi2", checks, cmap, "consistency"),
            ("defocus_map_um", maps, dpm, "defocus_map"),
        ):
            if target is None:
                continue
            meta_ = {**stack.metadata, key: provenance}
            write_stack(
                FocalStack(
                    np.stack(extra), stack.z_um, stack.pixel_size_um, stack.optics, None, meta_
                ),
                target,
                overwrite=overwrite,
                protect=images,
            )
            row[label] = str(target)
        if dpm is not None:
            row["mean_defocus_um"] = float(np.mean(maps))
            tilt, azimuth, rms = fitted_tilt(
                maps[0], stack.pixel_size_um, unsigned=not refocuser.dpm_signed
            )
            row.update(
                {"fitted_tilt_deg": tilt, "tilt_azimuth_deg": azimuth, "plane_fit_rms_um": rms}
            )
        summary.append(row)
    seconds = time.perf_counter() - t0
    if as_json:
        print_json({"model": model, "method": method, "seconds": seconds, "images": summary})
        return
    for row in summary:
        reps = row["refocus"] if isinstance(row["refocus"], list) else [row["refocus"]]
        src = {k: sum(r["tile_sources"][k] for r in reps) for k in ("deepr", "physics", "input")}
        extra = (
            f" [{method}: tiles from Deep-R {src['deepr']}, physics {src['physics']}, "
            f"unchanged {src['input']}]"
        )
        if "consistency" in row:
            extra += f"; re-blur χ² map → {row['consistency']}"
        if "defocus_map" in row:
            extra += (
                f"; defocus map → {row['defocus_map']} (mean {row['mean_defocus_um']:+.2f} µm, "
                f"plane fit: tilt {row['fitted_tilt_deg']:.2f}° at {row['tilt_azimuth_deg']:.0f}°, "
                f"rms {row['plane_fit_rms_um']:.2f} µm)"
            )
        console.print(f"{row['input']} → {row['output']}{extra}", highlight=False)
    console.print(
        f"refocused {sum(r['planes'] for r in summary)} image(s) in {seconds:.1f} s",
        highlight=False,
    )


def _psf_family(stack: Any, refocuser: Any, psf_stack: Any | None) -> Any:
    """The PSFs of the physics path and the check: a bead stack (on the image's pixel), else
    the file's fluorescence optics, else the model's."""
    from focuskit.refocus import psf_family_for

    if psf_stack is not None and not math.isclose(
        psf_stack.pixel_size_um, stack.pixel_size_um, rel_tol=0.02
    ):
        raise ConfigError(
            f"the bead stack's pixel ({psf_stack.pixel_size_um:g} µm) differs from the "
            f"image's ({stack.pixel_size_um:g} µm): record the beads with the same camera "
            "and objective, or give the right --psf-pixel-size / --pixel-size"
        )

    optics = stack.optics if stack.optics is not None and stack.optics.is_fluorescence else None
    return psf_family_for(optics or refocuser.optics, psf_stack=psf_stack)


def _output_dtype(data: np.ndarray, input_dtype: Any, dtype: str) -> tuple[np.ndarray, str]:
    """float32, or the input's integer type clipped to its range (and a note saying so)."""
    if dtype == "float32" or not np.issubdtype(np.dtype(input_dtype), np.integer):
        return data.astype(np.float32), ""
    info = np.iinfo(np.dtype(input_dtype))
    low, high = int(np.sum(data < info.min)), int(np.sum(data > info.max))
    out = np.clip(np.rint(data), info.min, info.max).astype(input_dtype)
    note = (
        f"written as {np.dtype(input_dtype).name}: {low + high} pixel(s) clipped to its range "
        f"[{info.min}, {info.max}] ({high} above)"
        if low + high
        else ""
    )
    return out, note


def _use_chunked(images: list[Path], output: Path, asked: bool) -> bool:
    """Chunk-wise when asked, or for one large OME-Zarr / TIFF image written to OME-Zarr."""
    if asked:
        if len(images) != 1:
            raise ConfigError(
                "chunk-wise refocusing (--chunked, --resume, --workers, --scheduler) takes one "
                "image at a time; run it once per slide"
            )
        return True
    if len(images) != 1 or not output.name.lower().endswith((".ome.zarr", ".zarr")):
        return False
    path = images[0]
    if not path.name.lower().endswith(_LAZY_SUFFIXES) or not path.exists():
        return False
    from focuskit.io import open_lazy

    try:
        shape = open_lazy(path, need_pixel_size=False).planes.shape
    except Exception:  # the in-memory path reads it again and says what is wrong
        return False
    return int(shape[-1]) * int(shape[-2]) > _CHUNKED_ABOVE_PIXELS


def _apply_chunked(
    images: list[Path],
    output: Path,
    *,
    model: str,
    defocus_map: Path | None,
    pixel_size: float | None,
    tile: int,
    overlap: int | None,
    force: bool,
    gray: bool,
    overwrite: bool,
    as_json: bool,
    block: int,
    workers: int | None,
    scheduler: str | None,
    resume: bool,
) -> None:
    """`refocus apply` on a whole slide: lazily read, refocused block by block into an
    OME-Zarr that a killed run can finish with --resume."""
    from focuskit.io import compute_context, open_lazy, write_chunked
    from focuskit.refocus import refocus_lazy, worker_refocuser

    path = images[0]
    if not output.name.lower().endswith((".ome.zarr", ".zarr")):
        raise StackFileError(
            output,
            "chunk-wise refocusing writes OME-Zarr",
            "give -o a .ome.zarr path (convert it afterwards if you need TIFF)",
        )
    if defocus_map is not None:
        raise ConfigError(
            "--defocus-map is not available chunk-wise yet; run it on a crop, "
            "or without --chunked on an image that fits in memory"
        )
    if resume and overwrite:
        raise ConfigError("give either --resume (finish a run) or --overwrite (start again)")
    if not path.exists():
        raise StackFileError(path, "file not found", "check the path")
    if not (resume and output.exists()):  # refuse a taken output before any work
        check_outputs({"-o": output}, overwrite=overwrite, inputs=[path, model_input(model)])
    t0 = time.perf_counter()
    images_ = open_lazy(path, pixel_size_um=pixel_size, rgb="gray" if gray else "error")
    planes = images_.planes
    assert images_.pixel_size_um is not None  # open_lazy refuses a missing pixel size
    with compute_context(workers, scheduler) as compute:
        threads = compute.threads_per_task
        refocuser = worker_refocuser(model, threads)
        notes = refocuser.check_optics(images_.optics, images_.pixel_size_um, force=force)
        for note in notes:
            err_console.print(f"[yellow]note:[/] {path.name}: {note}", highlight=False)
        result = refocus_lazy(
            planes, model, tile=tile, overlap=overlap, block=block, threads=threads
        )
        provenance = {
            "model": model,
            "input": str(path),
            "tile": tile,
            "overlap": overlap,
            "block": block,
            "notes": notes,
        }
        job = {
            "command": "refocus apply",
            "input": str(path.resolve()),
            "shape": list(planes.shape),
            "dtype": str(planes.dtype),
            "model": model,
            "tile": tile,
            "overlap": overlap,
            "block": block,
            "gray": gray,
        }
        try:
            with progress_bar(f"refocusing {path.name} (chunks)") as update:
                done = write_chunked(
                    result,
                    output,
                    pixel_size_um=images_.pixel_size_um,
                    z_um=images_.z_um,
                    optics=images_.optics,
                    metadata={**images_.metadata, "refocused": provenance},
                    job=job,
                    resume=resume,
                    overwrite=overwrite,
                    protect=images,
                    progress=update,
                )
        except KeyboardInterrupt:
            if not output.exists():
                raise
            raise StackFileError(
                output,
                "interrupted; the chunks written so far are kept, marked incomplete",
                "rerun the same command with --resume to finish it",
            ) from None
    seconds = time.perf_counter() - t0
    row: dict[str, Any] = {
        "input": str(path),
        "output": str(output),
        "planes": int(planes.shape[0]),
        "shape": [int(s) for s in planes.shape[1:]],
        "chunked": {
            "chunks": done.chunks,
            "skipped": done.skipped,
            "written": done.written,
            "workers": compute.workers,
            "scheduler": scheduler,
        },
    }
    if as_json:
        print_json({"model": model, "seconds": seconds, "images": [row]})
        return
    resumed = f" ({done.skipped} done before, resumed)" if done.skipped else ""
    console.print(
        f"{path} → {output}: {done.written} of {done.chunks} chunks refocused{resumed} "
        f"on {compute.workers} worker(s) in {seconds:.1f} s",
        highlight=False,
    )


# --- train -------------------------------------------------------------------------------


@refocus_app.command(
    help=(
        "Train a Deep-R model (GAN, eq. 1–4) and its defocus-map decoder, on your stacks or "
        "simulated ones.\n\n"
        "Writes the model folder and <output>/loss_curves.png (Fig. S8).\n\n"
        "On several processes: torchrun --nproc_per_node N -m focuskit refocus train … (the "
        'README\'s "Training on several processes / nodes"; --batch-size is the global batch).'
    ),
)
@friendly_errors
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write")],
    stack: Annotated[
        list[Path] | None,
        typer.Option(
            "--stack",
            help=(
                "Your own focal stack(s) (repeat); each is registered, "
                "its focus found by SSIM to the EDOF image"
            ),
        ),
    ] = None,
    simulate: Annotated[
        int | None,
        typer.Option(help="Train on N simulated fields of --preset (default when no --stack)"),
    ] = None,
    preset: Annotated[str, typer.Option(help="Microscope for --simulate")] = "deepr-40x-fluor",
    sample: Annotated[
        list[str] | None,
        typer.Option(
            help="--simulate: a sample family of the preset's modality or built-in kind "
            "(repeatable; see `focuskit samples`)"
        ),
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="Fine-tune this model (folder or builtin:NAME)")
    ] = None,
    steps: Annotated[int, typer.Option(help="Generator updates")] = 2000,
    dpm_steps: Annotated[
        int, typer.Option(help="Defocus-map decoder updates (0: no decoder)")
    ] = 500,
    dpm_signed: Annotated[
        bool,
        typer.Option(
            help=(
                "Train the defocus map on signed z (only if your PSF differs at ±z, e.g. with "
                "spherical aberration); default |z|"
            )
        ),
    ] = False,
    z_range: Annotated[
        float, typer.Option(help="Train on planes within ±this of focus (µm)")
    ] = 5.0,
    tile: Annotated[int, typer.Option(help="Tile size cut from each field (pixels)")] = 512,
    field_size: Annotated[int, typer.Option(help="--simulate: field size (pixels, ≥ tile)")] = 512,
    channels: Annotated[
        str | None,
        typer.Option(help="Generator widths, 6 comma-separated (default 16,32,64,96,128,192)"),
    ] = None,
    crop: Annotated[
        int, typer.Option(help="Training window (pixels, multiple of 32, ≤ tile)")
    ] = 256,
    validation: Annotated[float, typer.Option(help="Fraction of fields held out")] = 0.15,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the simulation, the split and the training")
    ] = 0,
    workers: Annotated[int, typer.Option(help="--simulate: processes rendering fields")] = 2,
    threads: Annotated[
        int, typer.Option(help="torch threads for training (1 on a busy machine)")
    ] = 2,
    batch_size: Annotated[
        int,
        typer.Option(help="Pairs per step of the GAN and the decoder (under torchrun: global)"),
    ] = 4,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint folder; --resume continues from it")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder")] = False,
) -> None:
    from focuskit.io import read_stack
    from focuskit.nn import check_model_output, process_rank
    from focuskit.refocus import train as train_model

    check_model_output(output, overwrite, [*(stack or []), model_input(init)], checkpoint)
    widths = None
    if channels is not None:
        try:
            widths = tuple(int(c) for c in channels.split(","))
        except ValueError:
            raise ConfigError(
                f"--channels must be 6 comma-separated integers, got {channels!r}"
            ) from None
        if len(widths) != 6 or min(widths) < 1:
            raise ConfigError(
                f"--channels must be 6 positive integers (stem + 5 levels), got {channels!r}"
            )
    stacks = [read_stack(path, pixel_size_um=pixel_size, z_step_um=z_step) for path in stack or []]
    main = process_rank() == 0  # under torchrun only rank 0 reports
    with ExitStack() as bars, progress_bar("preparing training tiles", enabled=main) as update:
        model = train_model(
            output,
            stacks=stacks,
            simulate=simulate,
            samples=sample,
            preset=preset,
            init=init,
            steps=steps,
            dpm_steps=dpm_steps,
            dpm_signed=dpm_signed,
            z_range_um=z_range,
            tile=tile,
            field_size=field_size,
            generator_channels=widths,
            crop=crop,
            validation=validation,
            seed=seed,
            workers=workers,
            threads=threads,
            batch_size=batch_size,
            checkpoint_dir=checkpoint,
            resume=resume,
            overwrite=overwrite,
            metadata={"stacks": [str(p) for p in stack or []]},
            data_progress=lambda what, done, total: update(done, total),
            progress=lambda label: bars.enter_context(training_bar(label, enabled=main)),
        )
    if not main:
        return
    t = model.metadata["training"]
    dpm_text = (
        f", DPM RMSE {t['dpm_validation_rmse_um']:.2f} µm"
        if t.get("dpm_validation_rmse_um") is not None
        else ""
    )
    console.print(
        f"trained on {t['tiles']['train']} tiles in {t['seconds']:.0f} s: validation BerHu "
        f"[bold]{t['validation_berhu']:.3f}[/] (step {t['best_step']}){dpm_text}; wrote {output} "
        f"and {output / 'loss_curves.png'}"
    )


# --- info --------------------------------------------------------------------------------


@refocus_app.command()
@friendly_errors
def info(
    model: Annotated[str, typer.Argument(help="Model folder or builtin:NAME")] = DEFAULT_MODEL,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What a refocusing model is, what microscope it is for and how it was trained."""
    from focuskit.refocus import Refocuser

    r = Refocuser.load(model)
    o = r.optics
    summary = {
        **{k: v for k, v in r.metadata.items() if k != "training"},  # what the model is wins
        "model": model,
        "parameters": r.parameter_counts(),
        "architecture": r.generator.config.to_dict(),
        "optics": o.to_dict() if o is not None else None,
        "pixel_size_um": r.pixel_size_um,
        "z_range_um": r.z_range_um,
        "defocus_map": r.dpm is not None,
        "focuskit_version": r.saved_by,
    }
    training = r.metadata.get("training")
    t = dict(training) if isinstance(training, dict) else {}
    for key in ("history", "dpm_history"):
        t.pop(key, None)
    summary["training"] = t
    if as_json:
        print_json(summary)
        return
    scope = (
        f"{o.objective.magnification:g}×/{o.na:g}, λ {o.wavelength_um:g} µm, {o.illumination.kind}"
        if o is not None
        else "optics unknown"
    )
    counts = ", ".join(f"{k} {v:,}" for k, v in summary["parameters"].items())
    console.print(
        f"[bold]{model}[/]: Deep-R U-Net ({counts} parameters), channels "
        f"{summary['architecture']['channels']}; {scope}, pixel {r.pixel_size_um:g} µm; "
        f"trained on ±{r.z_range_um:g} µm; defocus map: {'yes' if r.dpm is not None else 'no'}",
        highlight=False,
    )
    if t:
        keys = (
            "command",
            "best_step",
            "validation_berhu",
            "validation_ms_ssim",
            "dpm_validation_rmse_um",
            "seconds",
        )
        console.print(
            "training: " + "; ".join(f"{k} {t[k]}" for k in keys if k in t), highlight=False
        )
