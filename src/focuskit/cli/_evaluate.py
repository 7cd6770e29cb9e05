"""`focuskit evaluate …`: the papers' analyses, scaled down, on simulated data.

Pinkard et al.'s FCFNN analyses (each command builds a
:class:`~focuskit.singleshot.analyses.Setup`),
DeepFocus' blur-score invariance (``blur-invariance``, Table 1 / Fig. 3) and few-shot
autofocus (``fewshot-af``), and Deep-R's refocusing analyses (``refocus-quality``,
``training-range``, ``bead-fwhm``, ``tilted-sample``, ``nonuniform-defocus``,
``dpm-uniform``). Thin: each command calls one ``analyze_*`` function, prints its table and
writes ``<name>.json`` + ``<name>.png``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from focuskit._errors import ConfigError
from focuskit.cli._common import check_outputs, console, friendly_errors, progress_bar, sub_app
from focuskit.fewshot import DEFAULT_MODEL as BLUR_MODEL
from focuskit.refocus import DEFAULT_MODEL as REFOCUS_MODEL

evaluate_app = sub_app(
    "Reproduce the autofocus papers' analyses (Pinkard et al. 2019; DeepFocus, Shajkofci & "
    "Liebling 2020; Deep-R, Luo et al. 2021) on simulated data, scaled down to run in minutes on a "
    "laptop CPU. Each command prints a table and writes <name>.json and <name>.png into -o DIR."
)


OutputOpt = Annotated[
    Path, typer.Option("-o", "--output", help="Folder for <name>.json and <name>.png (created)")
]
TileOpt = Annotated[
    int, typer.Option(help="Tile = image size in pixels (the paper: 1024² tiles of 2048² images)")
]
StepsOpt = Annotated[
    int, typer.Option(help="Training steps per network (early stopping may end sooner)")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the simulated fields and the training")]
ZStepOpt = Annotated[float, typer.Option(help="z step of the stacks (µm), over −30…+30 µm")]
WidthOpt = Annotated[int, typer.Option(help="Units per fully connected layer (paper: 100)")]
DepthOpt = Annotated[int, typer.Option(help="Fully connected layers (paper: 10)")]
BinOpt = Annotated[
    int | None, typer.Option(help="Frequency cell size in FFT samples (default tile/64)")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines on stderr")]
OverwriteOpt = Annotated[
    bool, typer.Option(help="Replace an existing <name>.json and <name>.png in -o")
]
RepeatsOpt = Annotated[
    int, typer.Option(help="Train each network this many times (different seeds): mean ± sd")
]


def _setup(
    tile: int,
    z_step: float,
    width: int,
    depth: int,
    steps: int,
    seed: int,
    bin: int | None,
    repeats: int,
) -> Any:
    from focuskit.singleshot.analyses import Setup

    if tile < 64:
        raise ConfigError(f"--tile must be ≥ 64 pixels, got {tile}")
    return Setup(
        tile=tile,
        z_step_um=z_step,
        width=width,
        depth=depth,
        steps=steps,
        seed=seed,
        bin=bin,
        repeats=repeats,
    )


def _progress(quiet: bool) -> Callable[[str], None]:
    if quiet:
        return lambda message: None
    return lambda message: typer.echo(message, err=True)


def _check_output(output: Path, name: str, overwrite: bool) -> None:
    """Refuse, before minutes of work, a folder or result files that cannot be written."""
    check_outputs(
        [("-o", output / f"{name}.json"), ("-o", output / f"{name}.png")],
        overwrite=overwrite,
        make_parents=True,
    )


def _report(result: dict[str, Any], output: Path, started: float, plots: dict[str, Any]) -> None:
    """Print the result's table and write ``<name>.json`` + ``<name>.png``
    (drawn by ``plots[name]``)."""
    from focuskit.report import analysis_table, save_analysis

    json_path, png_path = save_analysis(result, output, plots[result["analysis"]])
    console.print(f"[bold]{result['analysis']}[/] — {result['figure']}", highlight=False)
    console.print(result["note"], highlight=False, markup=False, style="dim")
    console.print(analysis_table(result), highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"wrote {json_path} and {png_path} ({time.perf_counter() - started:.0f} s)",
        highlight=False,
        markup=False,
    )


@evaluate_app.command("training-size")
@friendly_errors
def training_size(
    output: OutputOpt,
    fields: Annotated[
        int, typer.Option(help="Largest training set (fields); the sweep doubles from 2 up to it")
    ] = 64,
    test_fields: Annotated[int, typer.Option(help="Held-out fields the RMSE is measured on")] = 8,
    tile: TileOpt = 512,
    steps: StepsOpt = 2000,
    seed: SeedOpt = 0,
    z_step: ZStepOpt = 2.0,
    width: WidthOpt = 100,
    depth: DepthOpt = 4,
    bin: BinOpt = None,
    repeats: RepeatsOpt = 3,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Held-out RMSE vs number of training focal stacks (Fig. 2)."""
    from focuskit.singleshot.analyses import PLOTS, analyze_training_size

    if fields < 1:
        raise ConfigError(f"--fields must be ≥ 1, got {fields}")
    t0 = time.perf_counter()
    counts = sorted(
        {min(2**k, fields) for k in range(1, max(1, fields).bit_length() + 1)} | {fields}
    )
    _check_output(output, "training-size", overwrite)
    result = analyze_training_size(
        _setup(tile, z_step, width, depth, steps, seed, bin, repeats),
        field_counts=counts,
        test_fields=test_fields,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


class Target(str, Enum):
    tissue = "tissue"
    stained_tissue = "stained-tissue"
    dense_cells = "dense-cells"


@evaluate_app.command(
    help=(
        "Trained on cells, tested on a new sample type, "
        "then fine-tuned with a few of its fields (Fig. 3)."
    ),
)
@friendly_errors
def generalization(
    output: OutputOpt,
    fields: Annotated[int, typer.Option(help="Training fields of cells")] = 48,
    target: Annotated[Target, typer.Option(help="The new sample type")] = Target.tissue,
    finetune_fields: Annotated[
        int, typer.Option(help="Fields of the new sample type added for fine-tuning")
    ] = 16,
    test_fields: Annotated[int, typer.Option(help="Held-out fields of each sample type")] = 6,
    tile: TileOpt = 512,
    steps: StepsOpt = 2000,
    seed: SeedOpt = 0,
    z_step: ZStepOpt = 2.0,
    width: WidthOpt = 100,
    depth: DepthOpt = 4,
    bin: BinOpt = None,
    repeats: RepeatsOpt = 3,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from focuskit.singleshot.analyses import PLOTS, analyze_generalization

    t0 = time.perf_counter()
    _check_output(output, "generalization", overwrite)
    result = analyze_generalization(
        _setup(tile, z_step, width, depth, steps, seed, bin, repeats),
        train_fields=fields,
        target=target.value,
        finetune_fields=finetune_fields,
        test_fields=test_fields,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command("magnitude-vs-phase")
@friendly_errors
def magnitude_vs_phase(
    output: OutputOpt,
    fields: Annotated[int, typer.Option(help="Training fields")] = 48,
    test_fields: Annotated[int, typer.Option(help="Held-out fields")] = 8,
    tile: TileOpt = 512,
    steps: StepsOpt = 2000,
    seed: SeedOpt = 0,
    z_step: ZStepOpt = 2.0,
    width: WidthOpt = 100,
    depth: DepthOpt = 4,
    bin: BinOpt = None,
    repeats: RepeatsOpt = 3,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """|FFT| vs FFT phase of the same images as network input (Fig. 4a)."""
    from focuskit.singleshot.analyses import PLOTS, analyze_magnitude_vs_phase

    t0 = time.perf_counter()
    _check_output(output, "magnitude-vs-phase", overwrite)
    result = analyze_magnitude_vs_phase(
        _setup(tile, z_step, width, depth, steps, seed, bin, repeats),
        train_fields=fields,
        test_fields=test_fields,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command()
@friendly_errors
def saliency(
    output: OutputOpt,
    fields: Annotated[int, typer.Option(help="Training fields")] = 48,
    test_fields: Annotated[
        int, typer.Option(help="Held-out fields the saliency is averaged over")
    ] = 8,
    full_plane: Annotated[
        bool,
        typer.Option(
            "--full-plane/--discs",
            help="Train on the whole |FFT| half-plane (the paper's saliency network) "
            "or only on the two pupil discs",
        ),
    ] = True,
    tile: TileOpt = 512,
    steps: StepsOpt = 2000,
    seed: SeedOpt = 0,
    z_step: ZStepOpt = 2.0,
    width: WidthOpt = 100,
    depth: DepthOpt = 4,
    bin: BinOpt = None,
    repeats: RepeatsOpt = 3,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Saliency of the prediction on the Fourier plane (Fig. 4b)."""
    from focuskit.singleshot.analyses import PLOTS, analyze_saliency

    t0 = time.perf_counter()
    _check_output(output, "saliency", overwrite)
    result = analyze_saliency(
        _setup(tile, z_step, width, depth, steps, seed, bin, repeats),
        train_fields=fields,
        test_fields=test_fields,
        full_plane=full_plane,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"{what} must be numbers separated by commas, got {text!r}") from None
    return values


@evaluate_app.command("led-angle")
@friendly_errors
def led_angle(
    output: OutputOpt,
    fields: Annotated[
        int, typer.Option(help="Training fields (each rendered under every LED)")
    ] = 20,
    test_fields: Annotated[int, typer.Option(help="Held-out fields")] = 5,
    angles: Annotated[
        str,
        typer.Option(
            help="Single-LED illumination NAs along x, comma-separated "
            "(objective NA 0.5: above it is darkfield)"
        ),
    ] = "0.1,0.2,0.3,0.4,0.55,0.65",
    patterns: Annotated[
        bool,
        typer.Option(
            "--patterns/--no-patterns",
            help="Also the multi-LED patterns (synthesized from single-LED images)",
        ),
    ] = True,
    oversample: Annotated[
        int,
        typer.Option(
            help=(
                "Render on pixels this many times finer, "
                "then bin (2: exact for darkfield; 4× slower)"
            )
        ),
    ] = 1,
    tile: TileOpt = 512,
    steps: StepsOpt = 2000,
    seed: SeedOpt = 0,
    z_step: ZStepOpt = 2.0,
    width: WidthOpt = 100,
    depth: DepthOpt = 4,
    bin: BinOpt = None,
    repeats: RepeatsOpt = 2,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Single-LED illumination angle and multi-LED patterns (Fig. S1)."""
    from focuskit.singleshot.analyses import DEFAULT_PATTERNS, PLOTS, analyze_led_angle

    t0 = time.perf_counter()
    values = _floats(angles, "--angles")
    for a in values:
        if not 0 <= a < 1:
            raise ConfigError(f"--angles are illumination NAs in [0, 1), got {a}")
    _check_output(output, "led-angle", overwrite)
    result = analyze_led_angle(
        _setup(tile, z_step, width, depth, steps, seed, bin, repeats),
        train_fields=fields,
        test_fields=test_fields,
        angles=values,
        patterns=DEFAULT_PATTERNS if patterns else {},
        oversample=oversample,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


def _photons(text: str) -> float | tuple[float, float] | None:
    if text.strip().lower() in ("none", "off", "0"):
        return None
    values = _floats(text, "--photons")
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(v > 0 for v in values) or values[0] > values[1]:
        raise ConfigError(
            f"--photons must be one number > 0 or min,max (e.g. 200,2000), got {text!r}"
        )
    return (values[0], values[1]) if values[1] > values[0] else values[0]


def _blur_model(spec: str) -> Any:
    """The blur CNN's whole-image score (lower = sharper; a ``ModelBlur``), loaded lazily."""
    from focuskit.fewshot import BlurScorer
    from focuskit.fewshot.analyses import ModelBlur

    return ModelBlur(BlurScorer.load(spec))


@evaluate_app.command("blur-invariance")
@friendly_errors
def blur_invariance(
    output: OutputOpt,
    samples: Annotated[
        int,
        typer.Option(
            help="In-focus fluorescence fields (tissue, beads, held-out images); the paper: 1000"
        ),
    ] = 100,
    planes: Annotated[
        int, typer.Option(help="Planes per stack, evenly over ±--z-max (the paper: 132)")
    ] = 132,
    z_max: Annotated[
        float, typer.Option(help="Half-range of the stacks (µm) around the true focus")
    ] = 120.0,
    size: Annotated[int, typer.Option(help="Image size in pixels (0.65 µm each)")] = 256,
    seed: Annotated[
        int, typer.Option(help="Seed of the simulated fields and their camera noise")
    ] = 0,
    model: Annotated[
        str, typer.Option(help="Blur CNN: a model folder or builtin:NAME")
    ] = BLUR_MODEL,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="Only the classic measures (no CNN)")
    ] = False,
    measures: Annotated[
        str, typer.Option(help="Classic focus measures, comma-separated (negated into blur scores)")
    ] = "hpf,tenengrad,lapv,ewc,sml,ws",
    photons: Annotated[
        str,
        typer.Option(
            help="Mean photo-electrons per pixel: a number, or min,max drawn "
            "log-uniformly per sample, or none (noise-free)"
        ),
    ] = "200,2000",
    sd_range: Annotated[
        float, typer.Option(help="σ averages the across-sample SD over |z| ≤ this (µm)")
    ] = 50.0,
    bins: Annotated[
        int, typer.Option(help="Score bins on [0, 1] for the conditional entropy")
    ] = 20,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """How sample-invariant and depth-informative each blur score is (DeepFocus Table 1, Fig. 3)."""
    from focuskit.fewshot.analyses import (
        PLOTS,
        analyze_score_invariance,
        classic_scorers,
        default_z_um,
    )

    t0 = time.perf_counter()
    if samples < 1:
        raise ConfigError(f"--samples must be ≥ 1, got {samples}")
    if size < 32:
        raise ConfigError(f"--size must be ≥ 32 pixels, got {size}")
    z = default_z_um(planes, z_max)
    names = [m for m in measures.replace(" ", "").split(",") if m]
    scorers: dict[str, Any] = {}
    if not no_model:
        scorers["blur-cnn"] = _blur_model(model)
    scorers.update(classic_scorers(names) if names else {})
    if not scorers:
        raise ConfigError("nothing to score: give --measures or drop --no-model")
    _check_output(output, "blur-invariance", overwrite)
    with progress_bar(f"rendering and scoring {samples} stacks", enabled=not quiet) as update:
        result = analyze_score_invariance(
            scorers,
            n_samples=samples,
            z_um=z,
            size=size,
            seed=seed,
            photons=_photons(photons),
            sd_range_um=sd_range,
            bins=bins,
            progress=update,
        )
    if not no_model:
        result["config"]["model"] = model
    _report(result, output, t0, PLOTS)


@evaluate_app.command(
    "fewshot-af",
    help=(
        "Autofocus error vs number of images: DeepFocus vs Brent(Tenengrad), "
        "Brent(HPF) (DeepFocus Fig. 4)."
    ),
)
@friendly_errors
def fewshot_af(
    output: OutputOpt,
    trials: Annotated[int, typer.Option(help="Samples with hidden focus (the paper: 100)")] = 20,
    size: Annotated[int, typer.Option(help="Image size in pixels (0.65 µm each)")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the samples, focus and starts")] = 0,
    model: Annotated[
        str, typer.Option(help="Blur CNN: a model folder or builtin:NAME")
    ] = BLUR_MODEL,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from focuskit.fewshot import BlurScorer
    from focuskit.fewshot.analyses import PLOTS, analyze_fewshot_af

    if size < 128:
        raise ConfigError(f"--size must be ≥ 128 pixels (one blur-score patch), got {size}")
    started = time.perf_counter()
    scorer = BlurScorer.load(model)
    _check_output(output, "fewshot-af", overwrite)
    with progress_bar("trials", not quiet) as update:
        result = analyze_fewshot_af(
            scorer.score_map, trials=trials, size=size, seed=seed, model=model, progress=update
        )
    _report(result, output, started, PLOTS)


# ------------------------------------------------------------------------- Deep-R (Luo et al. 2021)

DeepRModelOpt = Annotated[
    str, typer.Option("--model", help="Deep-R model: a folder or builtin:NAME")
]
DeepRPresetOpt = Annotated[
    str, typer.Option(help="Microscope preset of the held-out fields (must match the model)")
]
SizeOpt = Annotated[int, typer.Option(help="Image size in pixels")]


def _refocuser(spec: str) -> Any:
    from focuskit.refocus import Refocuser

    return Refocuser.load(spec)


def _z_steps(z_max: float, z_step: float) -> list[float]:
    """−z_max…+z_max every z_step (µm)."""
    import math

    if not (math.isfinite(z_max) and z_max > 0 and math.isfinite(z_step) and z_step > 0):
        raise ConfigError(f"--z-max and --z-step must be > 0 µm, got {z_max} and {z_step}")
    n = math.floor(z_max / z_step + 1e-9)
    return [round(k * z_step, 6) for k in range(-n, n + 1)]


def _names(text: str) -> list[str]:
    return [v for v in text.replace(" ", "").split(",") if v]


@evaluate_app.command(
    "refocus-quality",
    help=(
        "SSIM / RMSE vs defocus: Deep-R, the input, RL and Landweber "
        "(Deep-R Fig. 2b, 5; S4 with --no-baselines)."
    ),
)
@friendly_errors
def refocus_quality(
    output: OutputOpt,
    model: DeepRModelOpt = REFOCUS_MODEL,
    preset: DeepRPresetOpt = "deepr-40x-fluor",
    samples: Annotated[
        str, typer.Option(help="Sample kinds, comma-separated (default: all the preset's)")
    ] = "",
    fields_per_sample: Annotated[int, typer.Option(help="Held-out fields of each sample kind")] = 2,
    z_max: Annotated[float, typer.Option(help="Defocus from −z-max to +z-max (µm)")] = 5.0,
    z_step: Annotated[float, typer.Option(help="Defocus step (µm)")] = 1.0,
    size: SizeOpt = 512,
    iterations: Annotated[
        int, typer.Option(help="RL and Landweber iterations (the paper: 100)")
    ] = 100,
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines/--no-baselines",
            help="Also Richardson–Lucy and Landweber with the true PSF (fluorescence only)",
        ),
    ] = True,
    seed: Annotated[
        int, typer.Option(help="Seed of the held-out fields (≥ 10000: never trained on)")
    ] = 10_000,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from focuskit.refocus.analyses import PLOTS, analyze_refocus_quality

    t0 = time.perf_counter()
    _check_output(output, "refocus-quality", overwrite)
    result = analyze_refocus_quality(
        _refocuser(model),
        preset=preset,
        samples=_names(samples) or None,
        fields_per_sample=fields_per_sample,
        z_um=_z_steps(z_max, z_step),
        size=size,
        iterations=iterations,
        baselines=baselines,
        seed=seed,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command(
    "training-range",
    help=(
        "One small Deep-R per training range, same data and budget: "
        "quality vs defocus (Deep-R Fig. S5)."
    ),
)
@friendly_errors
def training_range(
    output: OutputOpt,
    preset: DeepRPresetOpt = "deepr-40x-fluor",
    ranges: Annotated[
        str, typer.Option(help="Training ranges ±µm, comma-separated (the paper: 2,5,10)")
    ] = "2,5,10",
    fields: Annotated[
        int, typer.Option(help="Simulated training fields (shared by all ranges)")
    ] = 16,
    steps: Annotated[
        int, typer.Option(help="Generator updates per network (the same budget for every range)")
    ] = 600,
    samples: Annotated[
        str, typer.Option(help="Sample kinds, comma-separated (default: the preset's tissue)")
    ] = "",
    size: SizeOpt = 256,
    crop: Annotated[int, typer.Option(help="Training window (pixels, multiple of 32)")] = 128,
    test_fields: Annotated[int, typer.Option(help="Held-out fields scored")] = 3,
    z_max: Annotated[float, typer.Option(help="Scored defocus from −z-max to +z-max (µm)")] = 10.0,
    z_step: Annotated[float, typer.Option(help="Scored defocus step (µm)")] = 1.0,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from focuskit.refocus.analyses import PLOTS, analyze_training_range

    t0 = time.perf_counter()
    _check_output(output, "training-range", overwrite)
    result = analyze_training_range(
        preset=preset,
        ranges_um=_floats(ranges, "--ranges"),
        fields=fields,
        steps=steps,
        samples=_names(samples) or None,
        size=size,
        crop=crop,
        test_fields=test_fields,
        eval_z_um=_z_steps(z_max, z_step),
        seed=seed,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command("bead-fwhm")
@friendly_errors
def bead_fwhm(
    output: OutputOpt,
    model: DeepRModelOpt = REFOCUS_MODEL,
    preset: DeepRPresetOpt = "deepr-40x-fluor",
    fields: Annotated[int, typer.Option(help="Held-out bead fields")] = 2,
    density: Annotated[
        float, typer.Option(help="300 nm beads per 100 µm² (sparse: isolated beads)")
    ] = 1.0,
    z_max: Annotated[float, typer.Option(help="Defocus from −z-max to +z-max (µm)")] = 5.0,
    z_step: Annotated[float, typer.Option(help="Defocus step (µm)")] = 0.5,
    size: SizeOpt = 512,
    seed: Annotated[int, typer.Option(help="Seed of the held-out fields")] = 10_100,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Lateral FWHM of isolated beads vs defocus, input and Deep-R output (Deep-R Fig. 4b)."""
    from focuskit.refocus.analyses import PLOTS, analyze_bead_fwhm

    t0 = time.perf_counter()
    _check_output(output, "bead-fwhm", overwrite)
    result = analyze_bead_fwhm(
        _refocuser(model),
        preset=preset,
        fields=fields,
        z_um=_z_steps(z_max, z_step),
        size=size,
        density_per_100um2=density,
        seed=seed,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command(
    "tilted-sample",
    help=(
        "A tilted sample: row-wise relative sharpness vs a MIP reference, and the DPM's tilt "
        "(Deep-R Fig. S1c, 7c)."
    ),
)
@friendly_errors
def tilted_sample(
    output: OutputOpt,
    model: DeepRModelOpt = REFOCUS_MODEL,
    preset: DeepRPresetOpt = "deepr-40x-fluor",
    sample: Annotated[str, typer.Option(help="Sample kind")] = "fluorescent-tissue",
    tilt: Annotated[
        float, typer.Option(help="Tilt (degrees); 3° spans ≈ 4.4 µm over 512 px at 40×")
    ] = 3.0,
    azimuth: Annotated[float, typer.Option(help="Tilt direction (degrees; 90 = along y)")] = 90.0,
    focal: Annotated[
        str, typer.Option(help="Focal positions (µm), comma-separated; default 0 and −span/2")
    ] = "",
    size: SizeOpt = 512,
    seed: Annotated[int, typer.Option(help="Seed of the held-out field")] = 10_200,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from focuskit.refocus.analyses import PLOTS, analyze_tilted_sample

    t0 = time.perf_counter()
    _check_output(output, "tilted-sample", overwrite)
    result = analyze_tilted_sample(
        _refocuser(model),
        preset=preset,
        sample=sample,
        tilt_deg=tilt,
        tilt_azimuth_deg=azimuth,
        focal_z_um=_floats(focal, "--focal") or None,
        size=size,
        seed=seed,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command("nonuniform-defocus")
@friendly_errors
def nonuniform_defocus(
    output: OutputOpt,
    model: DeepRModelOpt = REFOCUS_MODEL,
    preset: DeepRPresetOpt = "deepr-40x-fluor",
    sample: Annotated[str, typer.Option(help="Sample kind")] = "fluorescent-tissue",
    amplitude: Annotated[
        float, typer.Option(help="Defocus span of each surface across the field (µm)")
    ] = 4.0,
    size: SizeOpt = 512,
    seed: Annotated[int, typer.Option(help="Seed of the held-out field")] = 10_300,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Tilted, cylindrical and spherical defocus maps, refocused in one pass (Deep-R Fig. 8)."""
    from focuskit.optics import get_preset
    from focuskit.refocus.analyses import PLOTS, analyze_nonuniform_defocus, default_shapes

    if not amplitude > 0:
        raise ConfigError(f"--amplitude must be > 0 µm, got {amplitude}")
    t0 = time.perf_counter()
    shapes = default_shapes(size, get_preset(preset).optics.pixel_size_um, amplitude_um=amplitude)
    _check_output(output, "nonuniform-defocus", overwrite)
    result = analyze_nonuniform_defocus(
        _refocuser(model),
        preset=preset,
        sample=sample,
        shapes=shapes,
        size=size,
        seed=seed,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


@evaluate_app.command(
    "dpm-uniform",
    help=(
        "The defocus-map decoder on uniformly defocused fields: "
        "predicted vs true defocus (Deep-R Fig. 7b)."
    ),
)
@friendly_errors
def dpm_uniform(
    output: OutputOpt,
    model: DeepRModelOpt = REFOCUS_MODEL,
    preset: DeepRPresetOpt = "deepr-40x-fluor",
    samples: Annotated[
        str, typer.Option(help="Sample kinds, comma-separated (default: all the preset's)")
    ] = "",
    fields_per_sample: Annotated[int, typer.Option(help="Held-out fields of each sample kind")] = 1,
    z_max: Annotated[float, typer.Option(help="Defocus from −z-max to +z-max (µm)")] = 7.0,
    z_step: Annotated[float, typer.Option(help="Defocus step (µm)")] = 1.0,
    size: SizeOpt = 512,
    seed: Annotated[int, typer.Option(help="Seed of the held-out fields")] = 10_400,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from focuskit.refocus.analyses import PLOTS, analyze_dpm_uniform

    t0 = time.perf_counter()
    _check_output(output, "dpm-uniform", overwrite)
    result = analyze_dpm_uniform(
        _refocuser(model),
        preset=preset,
        samples=_names(samples) or None,
        fields_per_sample=fields_per_sample,
        z_um=_z_steps(z_max, z_step),
        size=size,
        seed=seed,
        progress=_progress(quiet),
    )
    _report(result, output, t0, PLOTS)


__all__ = ["evaluate_app"]
