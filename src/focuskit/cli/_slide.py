"""`focuskit convert` and `focuskit focus-map`: whole slides, chunk by chunk.

``convert`` streams a stack between OME-TIFF / TIFF, OME-Zarr and NPY; ``focus-map`` is
slide QC: a per-tile focus estimate over the whole slide (a Dask task per tile), a robust
focal surface through it and the tiles out of focus, before a slide is rescanned.
"""

from __future__ import annotations

import csv
import math
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from focuskit._errors import ConfigError, FocuskitError
from focuskit.cli._common import (
    GrayOpt,
    PixelSizeOpt,
    ZStartOpt,
    ZStepOpt,
    check_outputs,
    check_png,
    console,
    model_input,
    print_json,
    print_notes,
    progress_bar,
)

WorkersOpt = Annotated[
    int | None,
    typer.Option(help="Local threads computing tiles (default: one per core)"),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(help="Address of a dask.distributed scheduler (tcp://HOST:8786) to run on"),
]


def _chunks(text: str | None) -> tuple[int, int, int] | None:
    """``"1,512,512"`` → (1, 512, 512); a bad value is refused in one line."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) == 2:
        values = (1, *values)
    if len(values) != 3 or min(values) < 1:
        raise ConfigError(
            f"--chunks {text!r}: give Z,Y,X (or Y,X) as whole numbers ≥ 1, e.g. 1,512,512"
        )
    return values  # type: ignore[return-value]


# --- convert ------------------------------------------------------------------------------


def convert(
    source: Annotated[
        Path, typer.Argument(metavar="IN", help="OME-TIFF, TIFF, OME-Zarr or NPY stack / image")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output: .ome.zarr, .ome.tif or .npy")
    ],
    chunks: Annotated[
        str | None,
        typer.Option(
            help="Output chunks Z,Y,X (Zarr chunks; TIFF tiles, multiples of 16). "
            "Default 1,1024,1024 (Zarr), 1,512,512 (TIFF)"
        ),
    ] = None,
    compression: Annotated[
        bool, typer.Option("--compression/--no-compression", help="zlib-compress TIFF and Zarr")
    ] = True,
    pixel_size: PixelSizeOpt = None,
    z_step: ZStepOpt = None,
    z_start: ZStartOpt = 0.0,
    gray: GrayOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Convert a stack or slide between OME-TIFF/TIFF, OME-Zarr and NPY, chunk by chunk,
    keeping pixel size, z positions, optics and metadata."""
    from focuskit.io import compute_context, convert_stack

    shape = _chunks(chunks)
    with compute_context(workers, scheduler):
        stack, notes = convert_stack(
            source,
            output,
            chunks=shape,
            overwrite=overwrite,
            compression="zlib" if compression else None,
            pixel_size_um=pixel_size,
            z_step_um=z_step,
            z_start_um=z_start,
            rgb="gray" if gray else "error",
        )
    print_notes(notes)
    info = {"file": str(output), "source": str(source), **stack.info()}
    if as_json:
        print_json(info)
        return
    z, y, x = stack.shape
    console.print(
        f"wrote [bold]{output}[/]: {z} × {y} × {x} {stack.dtype}, pixel "
        f"{stack.pixel_size_um:g} µm, z {stack.z_um[0]:+g} … {stack.z_um[-1]:+g} µm"
    )


# --- focus-map estimators -----------------------------------------------------------------

# Models loaded once per worker process (threads share them), keyed by spec.
_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def _model(kind: str, spec: str) -> Any:
    with _MODELS_LOCK:
        if (kind, spec) not in _MODELS:
            if kind == "blur":
                from focuskit.fewshot import BlurScorer

                # One torch thread: Dask runs tiles in parallel (N workers, not N × cores).
                _MODELS[kind, spec] = BlurScorer.load(spec, num_threads=1)
            else:
                from focuskit.singleshot import DefocusModel

                _MODELS[kind, spec] = DefocusModel.load(spec)
        return _MODELS[kind, spec]


@dataclass(frozen=True)
class BlurTileEstimator:
    """DeepFocus blur score per tile (mean over its 128² patches; lower = sharper), and
    |z| read off a calibration when one is given (:meth:`BlurCalibration.abs_defocus_um`).

    Holds the model spec and the calibration as plain data, so it pickles to any worker;
    each worker loads the model once.
    """

    model: str
    calibration: dict[str, Any] | None = None
    lower_is_sharper: bool = True

    @property
    def kind(self) -> str:
        return "abs-z" if self.calibration is not None else "score"

    def __call__(self, tile: np.ndarray) -> tuple[float, float]:
        pixels = np.asarray(tile, dtype=np.float32)
        if float(pixels.max()) == float(pixels.min()):
            return math.nan, math.nan
        try:
            value = float(_model("blur", self.model).score_map(pixels).mean())
        except FocuskitError:
            return math.nan, math.nan
        if self.calibration is None:
            return value, math.nan
        from focuskit.fewshot import BlurCalibration

        calib = BlurCalibration.from_dict(self.calibration)
        return value, float(calib.abs_defocus_um(value))


@dataclass(frozen=True)
class SingleShotTileEstimator:
    """Single-shot defocus per tile (FCFNN, LED images; median over the model's tiles):
    signed z in µm, OPTICS.md sign."""

    model: str
    pixel_size_um: float
    optics: dict[str, Any] | None = None
    force: bool = False
    kind: str = "signed-z"
    lower_is_sharper: bool = True

    def __call__(self, tile: np.ndarray) -> tuple[float, float]:
        from focuskit.optics import Optics

        optics = Optics.from_dict(self.optics) if self.optics is not None else None
        try:
            p = _model("singleshot", self.model).predict(
                np.asarray(tile), pixel_size_um=self.pixel_size_um, optics=optics, force=self.force
            )
        except FocuskitError:  # a blank tile: nothing to predict from
            return math.nan, math.nan
        return p.z_um, p.z_um


class Method(str, Enum):
    measure = "measure"
    blur = "blur"
    singleshot = "singleshot"


def _nan(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _write_csv(path: Path, rows: list[dict[str, Any]], overwrite: bool) -> None:
    from focuskit.io import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:  # NaN (no signal, no z) as an empty cell
            writer.writerow({k: "" if _nan(v) else v for k, v in row.items()})


def focus_map(
    slide: Annotated[
        Path, typer.Argument(metavar="SLIDE", help="OME-Zarr, OME-TIFF/TIFF or NPY slide")
    ],
    tile: Annotated[int, typer.Option(help="Tile side (pixels)")] = 512,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Per-tile CSV to write")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="PNG: per-tile estimate, flags and the fitted surface")
    ] = None,
    method: Annotated[
        Method,
        typer.Option(
            help="measure: a classic focus measure (model-free); blur: the DeepFocus blur "
            "CNN (|z| with --calibration); singleshot: signed z from one LED image"
        ),
    ] = Method.measure,
    measure: Annotated[
        str, typer.Option(help="--method measure: the focus measure (see `focuskit measures`)")
    ] = "tenengrad",
    model: Annotated[
        str | None,
        typer.Option(help="Model folder or builtin:NAME (default: the method's bundled model)"),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="--method blur: calibration JSON (`focuskit fewshot calibrate`)"),
    ] = None,
    max_defocus: Annotated[
        float | None,
        typer.Option(help="Flag tiles with |z| above this (µm; default DOF/2 of the optics)"),
    ] = None,
    order: Annotated[int, typer.Option(help="Focal surface: 1 plane, 2 or 3 polynomial order")] = 1,
    outlier_sigma: Annotated[
        float, typer.Option(help="Flag tiles this many robust σ off the surface")
    ] = 3.0,
    plane: Annotated[int, typer.Option(help="Plane of a stack to map")] = 0,
    pixel_size: PixelSizeOpt = None,
    gray: GrayOpt = False,
    force: Annotated[
        bool, typer.Option(help="singleshot: predict even if the optics differ from the model's")
    ] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing -o and --plot files")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Slide QC: per-tile focus over a whole slide (chunk-wise), a robust focal surface,
    and the tiles out of focus."""
    from focuskit.focus import MeasureTileEstimator, slide_focus_map
    from focuskit.io import compute_context, read_images
    from focuskit.measures import get_measure

    if output is not None and output.suffix.lower() != ".csv":
        raise ConfigError(f"{output}: the tile table is written as CSV — use a .csv name")
    check_png(plot)
    if method is not Method.blur and calibration is not None:
        raise ConfigError("--calibration applies to --method blur only")
    if method is Method.measure and model is not None:
        raise ConfigError("--model applies to --method blur or singleshot")
    if method is not Method.measure and measure != "tenengrad":
        raise ConfigError("--measure applies to --method measure only")
    check_outputs(
        {"-o": output, "--plot": plot},
        overwrite=overwrite,
        inputs=[slide, calibration, model_input(model)],
    )
    found = read_images(
        slide,
        pixel_size_um=pixel_size,
        rgb="gray" if gray else "error",
        lazy=True,
    )
    if not 0 <= plane < len(found):
        raise ConfigError(f"--plane {plane}: {slide} has planes 0 … {len(found) - 1}")
    assert found.pixel_size_um is not None
    image = found.planes[plane]
    notes: list[str] = []
    optics = found.optics
    estimator: Any
    if method is Method.measure:
        m = get_measure(measure)
        kwargs: tuple[tuple[str, float], ...] = ()
        if m.needs_optics:
            if optics is None:
                raise ConfigError(
                    f"measure {m.name!r} needs the optics (NA, λ); {slide} has none — "
                    "choose another --measure"
                )
            kwargs = (
                ("pixel_size_um", found.pixel_size_um),
                ("na", optics.na),
                ("wavelength_um", optics.wavelength_um),
            )
        estimator = MeasureTileEstimator(m.name, kwargs)
    elif method is Method.blur:
        from focuskit.fewshot import DEFAULT_MODEL, BlurCalibration

        calib = BlurCalibration.load(calibration) if calibration is not None else None
        spec = model or (calib.model if calib is not None and calib.model else DEFAULT_MODEL)
        scorer = _model("blur", spec)  # loaded (and checked) before any tile
        if tile < 128:
            raise ConfigError(f"--tile {tile}: the blur CNN reads 128² patches — use ≥ 128")
        notes += scorer.check_optics(optics, found.pixel_size_um) if optics is not None else []
        if calib is None:
            notes.append("no --calibration: the raw blur score (waves) is mapped, not |z|")
        elif optics is None and calib.optics is not None:
            from focuskit.optics import Optics

            optics = Optics.from_dict(calib.optics)
        estimator = BlurTileEstimator(spec, calib.to_dict() if calib is not None else None)
    else:
        from focuskit.singleshot import DEFAULT_MODEL as DEFOCUS_MODEL

        spec = model or DEFOCUS_MODEL
        defocus = _model("singleshot", spec)
        if tile < defocus.region.tile:
            raise ConfigError(
                f"--tile {tile}: the single-shot model reads {defocus.region.tile}² tiles — "
                f"use --tile {defocus.region.tile} or more"
            )
        notes += defocus.check_optics(optics, found.pixel_size_um, force=force)
        optics = optics if optics is not None else defocus.optics
        estimator = SingleShotTileEstimator(
            spec, found.pixel_size_um, None if optics is None else optics.to_dict(), force
        )
    if max_defocus is None and estimator.kind != "score" and optics is not None:
        max_defocus = optics.depth_of_field_um / 2
    elif max_defocus is None and estimator.kind != "score":
        notes.append("no optics: no |z| threshold (pass --max-defocus UM)")
    with (
        compute_context(workers, scheduler),
        progress_bar("focus map (tiles)", enabled=not as_json) as update,
    ):
        fmap = slide_focus_map(
            image,
            tile,
            estimator,
            pixel_size_um=found.pixel_size_um,
            order=order,
            max_defocus_um=max_defocus,
            outlier_sigma=outlier_sigma,
            progress=update,
        )
    notes += fmap.notes
    if output is not None:
        _write_csv(output, fmap.rows(), overwrite)
    if plot is not None:
        from focuskit.report import slide_focus_map_plot

        label = {"measure": measure, "blur": "blur score", "singleshot": "z"}[method.value]
        slide_focus_map_plot(fmap, plot, title=f"{slide.name}: {label}, {tile}² tiles")
    summary = {
        "slide": str(slide),
        "method": method.value,
        "estimator": measure if method is Method.measure else spec,
        **fmap.summary(),
        "csv": None if output is None else str(output),
        "plot": None if plot is None else str(plot),
    }
    summary["notes"] = list(dict.fromkeys(notes))
    if as_json:
        print_json(summary)
        return
    s = fmap.surface
    terms = ", ".join(f"{k} {v:+.4g}" for k, v in s.coefficients.items())
    what = "z (µm)" if fmap.kind != "score" else "value"
    console.print(
        f"[bold]{slide.name}[/]: {fmap.shape[0]} × {fmap.shape[1]} tiles of {tile}² px; "
        f"surface of {what} (order {s.order}): {terms}; residual RMS {s.rms:.4g}"
        + (f"; tilt {s.tilt_deg:.3f}°" if fmap.kind != "score" else "")
    )
    n = fmap.value.size
    k = int(fmap.flagged.sum())
    by = summary["by_flag"]
    console.print(
        f"flagged {k} of {n} tiles ({100 * k / n:.1f} %): {by['defocus']} defocused, "
        f"{by['off-surface']} off the surface; {by['no-signal']} without signal"
    )
    print_notes(summary["notes"])


__all__ = ["convert", "focus_map"]
