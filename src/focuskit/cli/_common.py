"""What every `focuskit` command shares: the consoles, one-line errors, progress bars, JSON
output, the options that fill in what a stack file lacks, and output checks."""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from focuskit._errors import ConfigError, FocuskitError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def sub_app(help: str) -> typer.Typer:
    """A command group with focuskit's settings (no shell completion, plain tracebacks)."""
    return typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def fail(message: str) -> None:
    """Print one ``error:`` line on stderr and exit with code 2."""
    # The message is text, not markup: `pip install "focuskit[mm]"` keeps its brackets.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


#: Exit codes: the command ran and did not succeed (a search that did not converge, a stack
#: without a focus signal); refused input or usage; an internal error (a bug: report it).
EXIT_NOT_SUCCEEDED, EXIT_REFUSED, EXIT_INTERNAL = 1, 2, 3


def log_dir() -> Path:
    """Where internal-error tracebacks are written: ``$FOCUSKIT_LOG_DIR`` or
    ``<tmp>/focuskit-logs``."""
    return Path(os.environ.get("FOCUSKIT_LOG_DIR") or Path(tempfile.gettempdir()) / "focuskit-logs")


def _log_internal_error(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to a log file; its path, or None."""
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = folder / f"focuskit-{stamp}-{os.getpid()}.log"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        path.write_text(f"focuskit {' '.join(sys.argv[1:])}\n\n{text}")
        return path
    except OSError:
        return None


def friendly_errors(func: F) -> F:
    """Turn errors into one line on stderr: focuskit's (refused input) exit 2; an interrupt
    (SIGINT, or SIGTERM, handled alike) says what was written before it; anything else is an
    internal error — one line naming where its traceback was logged, exit 3."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from focuskit.io import record_writes

        with _sigterm_interrupts(), record_writes() as written:
            try:
                return func(*args, **kwargs)
            except FocuskitError as exc:
                fail(str(exc))
            except KeyboardInterrupt:
                fail(_interrupted(written))
            except (typer.Exit, typer.Abort, click.exceptions.ClickException):
                raise
            except Exception as exc:  # a bug: never show a traceback, keep it for the report
                where = _log_internal_error(exc)
                kept = f"; the traceback is in {where}" if where else ""
                first = str(exc).splitlines()[0] if str(exc) else ""
                err_console.print(
                    f"[bold red]internal error:[/] {type(exc).__name__}: {first}{kept} — "
                    "please report it with that file",
                    highlight=False,
                    soft_wrap=True,
                )
                raise typer.Exit(code=EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def _interrupted(written: list[Path]) -> str:
    if not written:
        return "interrupted; nothing was written"
    names = ", ".join(str(p) for p in dict.fromkeys(written))
    return f"interrupted after writing {names}; nothing else was written"


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (kill, a batch system's timeout) interrupts like Ctrl-C: writes clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar fed by ``callback(done, total)``
    (on stderr; off when not ``enabled``)."""
    if not enabled:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def training_bar(
    label: str, enabled: bool = True
) -> Iterator[Callable[[int, int, dict[str, float]], None]]:
    """A progress bar for a training loop, showing the latest validation numbers:
    ``callback(step, max_steps, {"val_rmse_um": …})``."""
    if not enabled:
        yield lambda step, total, values: None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("{task.fields[values]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None, values="")

        def update(step: int, total: int, values: dict[str, float]) -> None:
            text = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in values.items())
            bar.update(task, completed=step, total=total, values=text)

        yield update


def json_safe(obj: Any) -> tuple[Any, list[str]]:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN or inf), and
    the paths of the replaced values."""
    where: list[str] = []

    def clean(x: Any, path: str) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            where.append(path or "(root)")
            return None
        if isinstance(x, dict):
            return {k: clean(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy scalars
            return clean(x.item(), path)
        return x

    return clean(obj, ""), where


def print_json(obj: Any) -> None:
    """Print ``obj`` as strict JSON: NaN/inf become null, with a note on stderr naming them."""
    safe, where = json_safe(obj)
    sys.stdout.write(json.dumps(safe, indent=2, allow_nan=False, default=str) + "\n")
    if where:
        shown = ", ".join(where[:5]) + (f" (+{len(where) - 5} more)" if len(where) > 5 else "")
        err_console.print(
            f"[yellow]note:[/] not a number, written as null: {shown}",
            highlight=False,
            soft_wrap=True,
        )


def print_notes(notes: list[str], prefix: str = "") -> None:
    for note in dict.fromkeys(notes):
        err_console.print(f"[yellow]note:[/] {prefix}{note}", highlight=False, soft_wrap=True)


def check_png(path: Path | None) -> None:
    """Refuse a plot target that is not a PNG in an existing folder, before any work."""
    if path is None:
        return
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{path}: plots are written as PNG — use a .png name")
    if not path.parent.exists():
        raise ConfigError(f"{path}: folder {path.parent} does not exist — create it first")


def check_outputs(
    outputs: dict[str, Path | None] | list[tuple[str, Path | None]],
    *,
    overwrite: bool,
    inputs: Iterable[Path | str | None] = (),
    make_parents: bool = False,
) -> None:
    """Refuse, before any work, outputs that collide, touch an input, exist without
    ``--overwrite`` or cannot be written (:func:`focuskit.io.check_outputs`); print what
    was cleaned up from interrupted earlier runs."""
    from focuskit.io import check_outputs as check

    print_notes(check(outputs, overwrite=overwrite, inputs=inputs, make_parents=make_parents))


def model_input(spec: str | Path | None) -> Path | None:
    """The model folder a model option reads, an input to protect: None for ``builtin:NAME``
    or for a path that holds no model (loading it fails with its own message)."""
    if spec is None or str(spec).startswith("builtin:"):
        return None
    folder = Path(spec)
    return folder if (folder / "config.json").is_file() else None


# Options that fill in what a stack file lacks (shared by info, score, find-focus, …).
PixelSizeOpt = Annotated[
    float | None,
    typer.Option("--pixel-size", help="Pixel size at the sample (µm), if the file lacks it"),
]
ZStepOpt = Annotated[
    float | None, typer.Option("--z-step", help="z step (µm), if the file lacks z positions")
]
ZStartOpt = Annotated[
    float, typer.Option("--z-start", help="z of the first plane with --z-step (µm)")
]
ZFileOpt = Annotated[
    Path | None, typer.Option("--z-file", help="CSV/TXT of z positions (µm), one per plane")
]
GrayOpt = Annotated[bool, typer.Option("--gray", help="Convert an RGB stack to luminance")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]

# Options of the commands that work chunk by chunk on whole slides (focuskit.io.compute_context).
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Chunk-wise: local worker threads (default: the CPU count)",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Chunk-wise: run on this dask.distributed scheduler (tcp://HOST:8786); "
        "its workers must see the input, the model and the output",
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Chunk-wise: finish an interrupted run's OME-Zarr output, skipping its "
        "completed chunks (same input and options)",
    ),
]


def read_stack_given(  # type: ignore[no-untyped-def]
    stack_path: Path,
    pixel_size: float | None,
    z_step: float | None,
    z_start: float,
    z_file: Path | None,
    gray: bool = False,
    lazy: bool | None = None,
):
    """Read a stack, filling what the file lacks from the command line (``lazy`` as
    :func:`focuskit.io.read_stack`)."""
    from focuskit.io import read_stack, read_z_file

    return read_stack(
        stack_path,
        pixel_size_um=pixel_size,
        z_um=read_z_file(z_file) if z_file is not None else None,
        z_step_um=z_step,
        z_start_um=z_start,
        rgb="gray" if gray else "error",
        lazy=lazy,
    )


def info_table(stack: Any, name: str) -> Table:
    """A focal stack's summary as a two-column table."""
    info = stack.info()
    table = Table(title=name, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    z = info["z_um"]
    table.add_row(
        "shape (Z, Y, X)", " × ".join(str(s) for s in info["shape"]) + f"  {info['dtype']}"
    )
    table.add_row(
        "z (µm)", f"{z[0]:+g} … {z[-1]:+g}  ({len(z)} planes, step {info.get('z_step_um')})"
    )
    table.add_row("pixel size (µm)", f"{info['pixel_size_um']:g}")
    optics = info.get("optics")
    if optics:
        obj = optics["objective"]
        ill = optics["illumination"]
        table.add_row(
            "optics",
            f"{obj['magnification']:g}×/{obj['na']:g} (n = {obj['immersion_index']:g}), "
            f"λ = {optics['wavelength_um']:g} µm, {ill['kind']}",
        )
    focus = info.get("focus_z_um")
    table.add_row("in focus at", "unknown" if focus is None else f"z = {focus:+.3f} µm")
    return table
