"""DeepFocus Fig. 4: autofocus error against the number of images, DeepFocus vs Brent.

Trials: random samples with a known in-focus position on a :class:`SimulatedScope`
(``deepfocus-10x``: fluorescent tissue, beads and pictures the CNN never saw), starts
within ±``start_range_um`` of focus; or :class:`StackScope` replays of a real stack whose
field is split in two — one half calibrates, the other is focused.

- DeepFocus (§2.2) runs once per image budget ``N`` (3, 4, 6, 8): its answer after
  exactly ``N`` scored images.
- Brent (bounded, over ±``range``/2 around the start, with a focus measure) runs once
  per trial with a fine tolerance; its answer after ``N`` images is the best-scoring
  position among its first ``N`` (what it would return if stopped there).

Errors are |final z − true focus| in µm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.fewshot._calibration import BlurCalibration
from focuskit.fewshot._search import deepfocus_search
from focuskit.fewshot.analyses._invariance import SAMPLE_KINDS, invariance_sample
from focuskit.io import FocalStack
from focuskit.optics import get_preset
from focuskit.report import pyplot, save_figure
from focuskit.scopes import SimulatedScope, StackScope
from focuskit.search import brent_search
from focuskit.simulate import plan_render

ScoreMap = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Trial:
    """One autofocus trial on a simulated scope: sample, hidden focus, start.

    Attributes
    ----------
    index : int
        Trial number (also picks the held-out picture of an ``image`` trial).
    kind : str
        Sample kind, one of :data:`SAMPLE_KINDS`.
    focus_z_um : float
        The hidden in-focus stage z (µm).
    start_z_um : float
        Stage z where the search starts (µm).
    seed : int
        Seed of the sample and the camera noise.
    """

    index: int
    kind: str
    focus_z_um: float
    start_z_um: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """The trial as a JSON-able dict of its fields.

        Returns
        -------
        d : dict
        """
        return {
            "index": self.index,
            "kind": self.kind,
            "focus_z_um": self.focus_z_um,
            "start_z_um": self.start_z_um,
            "seed": self.seed,
        }


def simulated_trials(n: int, *, start_range_um: float = 60.0, seed: int = 0) -> list[Trial]:
    """``n`` trials: sample kinds in turn, focus uniform in ±20 µm, start within ±range of it.

    Parameters
    ----------
    n : int
        Number of trials.
    start_range_um : float
        Starts are drawn uniformly within ±this of the focus (µm).
    seed : int
        Seed of the draw.

    Returns
    -------
    trials : list of Trial

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        focus = float(rng.uniform(-20, 20))
        out.append(
            Trial(
                i,
                SAMPLE_KINDS[i % len(SAMPLE_KINDS)],
                focus,
                focus + float(rng.uniform(-start_range_um, start_range_um)),
                int(rng.integers(2**31)),
            )
        )
    return out


def trial_scope(
    trial: Trial,
    *,
    preset: str = "deepfocus-10x",
    size: int = 512,
    photons: float = 500.0,
    z_margin_um: float = 140.0,
) -> SimulatedScope:
    """The simulated microscope of one trial; stage limits ±``z_margin_um`` around focus.

    Parameters
    ----------
    trial : Trial
        Sample kind, focus, start and seed.
    preset : str
        Microscope preset (default the paper's 10×/0.3, ``deepfocus-10x``).
    size : int
        Image side (pixels).
    photons : float
        Mean photo-electrons per pixel.
    z_margin_um : float
        Stage limits around the focus (± µm).

    Returns
    -------
    scope : SimulatedScope
        At ``trial.start_z_um``, stage resolution 0.05 µm.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    p = get_preset(preset)
    limits = (trial.focus_z_um - z_margin_um, trial.focus_z_um + z_margin_um)
    common: dict[str, Any] = {
        "size": size,
        "focus_z_um": trial.focus_z_um,
        "start_z_um": trial.start_z_um,
        "z_limits_um": limits,
        "photons": photons,
        "seed": trial.seed,
        "stage_resolution_um": 0.05,
    }
    if trial.kind == "image":
        plan = plan_render(p.optics, np.array([z_margin_um * 2]), (size, size), focus_z_um=0.0)
        # A random view of a picture the CNN never saw, as in the Table 1 analysis.
        _, sample = invariance_sample(
            "image",
            trial.index,
            plan.render_shape,
            p.optics.pixel_size_um / plan.oversampling,
            trial.seed,
        )
        return SimulatedScope(p, sample=sample, **common)
    options = {"density_per_100um2": 3.0, "diameter_um": 0.5} if trial.kind == "beads" else {}
    return SimulatedScope(p, sample=trial.kind, sample_options=options, **common)


def calibrate_simulated(
    score_map: ScoreMap,
    *,
    preset: str = "deepfocus-10x",
    sample: str = "fluorescent-tissue",
    z_um: np.ndarray | None = None,
    size: int = 512,
    photons: float = 500.0,
    seed: int = 12345,
    model: str = "",
) -> BlurCalibration:
    """b_calib(z) of one simulated flat textured object (a stack through focus at z = 0).

    Parameters
    ----------
    score_map : callable
        image → 2-D blur map, lower = sharper (e.g. ``BlurScorer.score_map``).
    preset : str
        Microscope preset.
    sample : str
        Sample kind of the calibration object.
    z_um : ndarray, optional
        Planes of the calibration stack (µm; default −120…+120 every 2 µm).
    size : int
        Image side (pixels).
    photons : float
        Mean photo-electrons per pixel.
    seed : int
        Seed of the sample and the noise.
    model : str
        Which scorer made it (recorded).

    Returns
    -------
    calibration : BlurCalibration

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    """
    z = np.arange(-120.0, 120.01, 2.0) if z_um is None else np.asarray(z_um, dtype=float)
    scope = SimulatedScope(
        preset,
        sample=sample,
        size=size,
        focus_z_um=0.0,
        start_z_um=float(z[0]),
        z_limits_um=(float(z.min()), float(z.max())),
        photons=photons,
        seed=seed,
    )
    scores, sds = [], []
    for zi in z:
        scope.move_to(float(zi))
        m = np.asarray(score_map(scope.snap()), dtype=float)
        scores.append(float(m.mean()))
        sds.append(float(m.std()))
    return BlurCalibration.from_scores(
        z,
        np.array(scores),
        score_sd=np.array(sds),
        model=model,
        optics=scope.optics.to_dict() if scope.optics else None,
        pixel_size_um=scope.pixel_size_um,
        source={"simulated": preset, "sample": sample, "seed": seed, "size": size},
    )


def _brent_errors(
    trace: Sequence[tuple[float, float]], focus: float, budgets: Sequence[int]
) -> list[float]:
    out = []
    for n in budgets:
        head = list(trace[: max(1, n)])
        best_z = max(head, key=lambda t: t[1])[0]
        out.append(abs(best_z - focus))
    return out


def af_error_vs_images(
    scopes: Sequence[Callable[[], Any]],
    focus_um: Sequence[float],
    score_map: ScoreMap,
    calibration: BlurCalibration,
    *,
    budgets: Sequence[int] = (3, 4, 6, 8),
    measures: Sequence[str] = ("tenengrad", "hpf"),
    brent_range_um: float = 150.0,
    brent_tolerance_um: float = 0.05,
    brent_max_images: int = 40,
    variants: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Errors (µm) of DeepFocus and Brent(measure) after each budget of images.

    ``variants`` names DeepFocus settings to compare (default ``{"deepfocus": {}}``, the
    defaults of :func:`deepfocus_search`), e.g. ``{"deepfocus-paper": PAPER_SETTINGS}``.

    ``scopes[i]()`` makes a fresh scope at its start position (so every method starts alike).
    Returns ``{"errors": {method: (trials, budgets) array}, "images": …, "seconds": …}``.

    Parameters
    ----------
    scopes : sequence of callable
        ``scopes[i]()`` → a fresh scope at trial ``i``'s start.
    focus_um : sequence of float
        True focus of each trial (stage z, µm).
    score_map : callable
        image → 2-D blur map (lower = sharper).
    calibration : BlurCalibration
        The objective's calibration.
    budgets : sequence of int
        Image budgets, each ≥ 3.
    measures : sequence of str
        Focus measures of the Brent baselines.
    brent_range_um : float
        Brent's bracket around the start (µm).
    brent_tolerance_um : float
        Brent's tolerance (µm).
    brent_max_images : int
        Brent's image budget.
    variants : dict, optional
        DeepFocus variants: name → :func:`deepfocus_search` settings.
    progress : callable, optional
        ``progress(done, total)`` after each trial.

    Returns
    -------
    result : dict
        ``budgets``, ``methods``, ``errors`` (method → (trials, budgets) array of |error|,
        µm), ``images`` (images used, same shape), ``seconds`` (per method),
        ``brent_curves`` (method → (trials, brent_max_images) error after each image, µm)
        and ``brent_curve_images``.

    Raises
    ------
    ConfigError
        When there is not one focus per scope (or no scope), or a budget is below 3.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    if len(scopes) != len(focus_um) or not scopes:
        raise ConfigError("give one true focus per scope (and at least one scope)")
    if min(budgets) < 3:
        raise ConfigError("DeepFocus needs at least 3 images: budgets must be ≥ 3")
    variants = {"deepfocus": {}} if variants is None else dict(variants)
    methods = [*variants, *(f"brent-{m}" for m in measures)]
    errors = {m: np.full((len(scopes), len(budgets)), np.nan) for m in methods}
    used = {m: np.zeros((len(scopes), len(budgets))) for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    curve_n = list(range(1, brent_max_images + 1))
    curves = {f"brent-{m}": np.full((len(scopes), len(curve_n)), np.nan) for m in measures}
    for i, (make, focus) in enumerate(zip(scopes, focus_um, strict=True)):
        for name, settings in variants.items():
            for j, n in enumerate(budgets):
                scope = make()
                t0 = time.perf_counter()
                result = deepfocus_search(
                    scope, score_map=score_map, calibration=calibration, max_images=n, **settings
                )
                seconds[name] += time.perf_counter() - t0
                errors[name][i, j] = abs(result.z_final_um - focus)
                used[name][i, j] = result.images
        for measure in measures:
            scope = make()
            t0 = time.perf_counter()
            result = brent_search(
                scope,
                measure,
                range_um=brent_range_um,
                tolerance_um=brent_tolerance_um,
                max_images=brent_max_images,
            )
            seconds[f"brent-{measure}"] += time.perf_counter() - t0
            errors[f"brent-{measure}"][i] = _brent_errors(result.trace, focus, budgets)
            curves[f"brent-{measure}"][i] = _brent_errors(result.trace, focus, curve_n)
            used[f"brent-{measure}"][i] = [min(n, len(result.trace)) for n in budgets]
        if progress is not None:
            progress(i + 1, len(scopes))
    return {
        "budgets": list(budgets),
        "methods": methods,
        "errors": errors,
        "images": used,
        "seconds": seconds,
        "brent_curves": curves,
        "brent_curve_images": curve_n,
    }


def error_table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Median, 90th percentile and mean ± SD of |error| per method and budget.

    Parameters
    ----------
    result : dict
        The output of :func:`af_error_vs_images`.

    Returns
    -------
    rows : list of dict
        One per method and budget: ``method``, ``images``, ``median_um``, ``p90_um``,
        ``mean_um``, ``sd_um`` (µm) and ``trials``.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    rows = []
    for m in result["methods"]:
        e = result["errors"][m]
        for j, n in enumerate(result["budgets"]):
            col = e[:, j]
            rows.append(
                {
                    "method": m,
                    "images": n,
                    "median_um": float(np.median(col)),
                    "p90_um": float(np.percentile(col, 90)),
                    "mean_um": float(col.mean()),
                    "sd_um": float(col.std()),
                    "trials": int(col.size),
                }
            )
    return rows


def images_for_error(result: dict[str, Any], method: str, error_um: float) -> int | None:
    """Fewest images after which the median |error| of ``method`` is ≤ ``error_um``.

    Brent: its whole per-image curve; DeepFocus: its budgets. None: never reached.

    Parameters
    ----------
    result : dict
        The output of :func:`af_error_vs_images`.
    method : str
        One of ``result["methods"]``.
    error_um : float
        Target median |error| (µm).

    Returns
    -------
    images : int or None
        The fewest images, or None when the target is never reached.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    if method in result.get("brent_curves", {}):
        ns, errors = result["brent_curve_images"], result["brent_curves"][method]
    else:
        ns, errors = result["budgets"], result["errors"][method]
    for j, n in enumerate(ns):
        if np.median(errors[:, j]) <= error_um:
            return int(n)
    return None


def split_stack(stack: FocalStack, axis: int = 2) -> tuple[FocalStack, FocalStack]:
    """Two halves of a stack's field (calibrate on one, focus the other).

    Parameters
    ----------
    stack : FocalStack
        The stack; z, pixel size, optics, focus and metadata are shared by both halves.
    axis : int
        Axis of the data split in two (2: columns, 1: rows).

    Returns
    -------
    first : FocalStack
        The first half.
    second : FocalStack
        The second half.
    """
    data = np.asarray(stack.data)
    half = data.shape[axis] // 2
    first = np.take(data, range(half), axis=axis)
    second = np.take(data, range(half, data.shape[axis]), axis=axis)

    def make(d: np.ndarray) -> FocalStack:
        return FocalStack(
            d,
            stack.z_um,
            stack.pixel_size_um,
            optics=stack.optics,
            focus_z_um=stack.focus_z_um,
            metadata=dict(stack.metadata),
        )

    return make(first), make(second)


def stack_trials(
    stack: FocalStack, n: int, *, seed: int = 0
) -> tuple[list[Callable[[], StackScope]], list[float]]:
    """``n`` StackScope replays of ``stack`` from random starts over its z range.

    Parameters
    ----------
    stack : FocalStack
        A stack with a known ``focus_z_um``.
    n : int
        Number of trials.
    seed : int
        Seed of the starts (uniform over the stack's z range).

    Returns
    -------
    makers : list of callable
        ``makers[i]()`` → a fresh :class:`StackScope` at trial ``i``'s start.
    focus : list of float
        The stack's focus for every trial (µm).

    Raises
    ------
    ConfigError
        When the stack's in-focus z is unknown.
    """
    if stack.focus_z_um is None:
        raise ConfigError("the stack's in-focus z is unknown; it cannot score an autofocus")
    rng = np.random.default_rng(seed)
    lo, hi = float(np.min(stack.z_um)), float(np.max(stack.z_um))
    starts = rng.uniform(lo, hi, n)
    makers = [lambda s=float(s): StackScope(stack, start_z_um=s) for s in starts]
    return makers, [float(stack.focus_z_um)] * n


def af_error_plot(result: dict[str, Any], path: Any, *, title: str = "") -> None:
    """Fig. 4: median |error| (and the 25–75 % band) against the number of images.

    Parameters
    ----------
    result : dict
        The output of :func:`af_error_vs_images` (errors as arrays, µm).
    path : str or os.PathLike
        Image file to write.
    title : str
        Figure title.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    n = np.asarray(result["budgets"])
    for k, m in enumerate(result["methods"]):
        e = result["errors"][m]
        med = np.median(e, axis=0)
        ax.plot(n, med, "o-", color=f"C{k}", label=m)
        ax.fill_between(
            n, np.percentile(e, 25, axis=0), np.percentile(e, 75, axis=0), color=f"C{k}", alpha=0.15
        )
    ax.set_yscale("log")
    ax.set_xlabel("images acquired")
    ax.set_ylabel("|z − true focus| (µm), median and 25–75 %")
    ax.set_title(title or "autofocus error vs images (DeepFocus Fig. 4)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


FIGURE = "Shajkofci & Liebling 2020, Fig. 4 (§3.3)"


def analyze_fewshot_af(
    score_map: ScoreMap,
    *,
    trials: int = 20,
    size: int = 256,
    budgets: Sequence[int] = (3, 4, 6, 8),
    measures: Sequence[str] = ("tenengrad", "hpf"),
    start_range_um: float = 60.0,
    seed: int = 0,
    model: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Fig. 4 on the deepfocus-10x SimulatedScope.

    Calibrate once on a flat fluorescent-tissue stack, then ``trials`` samples with hidden
    focus; |error| after each image budget.

    Parameters
    ----------
    score_map : callable
        image → 2-D blur map, lower = sharper (e.g. ``BlurScorer.score_map``).
    trials : int
        Number of samples (≥ 1).
    size : int
        Image side (pixels).
    budgets : sequence of int
        Image budgets of DeepFocus, each ≥ 3.
    measures : sequence of str
        Focus measures of the Brent baselines.
    start_range_um : float
        Starts within ±this of the focus (µm).
    seed : int
        Seed of the trials.
    model : str
        Which scorer it is (recorded).
    progress : callable, optional
        ``progress(done, total)`` after each trial.

    Returns
    -------
    result : dict
        ``analysis`` ("fewshot-af"), ``figure``, ``note``, ``config``, ``columns``, ``rows``
        (:func:`error_table_rows`, µm), ``seconds``, ``errors``, ``budgets``, ``methods``,
        ``brent_images_for_deepfocus_4_error`` and ``calibration``.

    Raises
    ------
    ConfigError
        When ``trials`` < 1.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    if trials < 1:
        raise ConfigError(f"trials must be ≥ 1, got {trials}")
    t0 = time.perf_counter()
    calibration = calibrate_simulated(score_map, size=size, model=model)
    specs = simulated_trials(trials, start_range_um=start_range_um, seed=seed)
    makers, focus = [], []
    for spec in specs:
        scope = trial_scope(spec, size=size)

        def fresh(scope: SimulatedScope = scope, start: float = spec.start_z_um) -> SimulatedScope:
            scope.move_to(start)
            scope.reset_counters()
            return scope

        makers.append(fresh)
        focus.append(spec.focus_z_um)
    result = af_error_vs_images(
        makers, focus, score_map, calibration, budgets=budgets, measures=measures, progress=progress
    )
    rows = [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
        for r in error_table_rows(result)
    ]
    e4 = (
        float(np.median(result["errors"]["deepfocus"][:, list(budgets).index(4)]))
        if 4 in budgets
        else math.nan
    )
    brent_images = {
        m: images_for_error(result, m, e4) for m in result["methods"] if m.startswith("brent")
    }
    return {
        "analysis": "fewshot-af",
        "figure": FIGURE,
        "note": (
            f"deepfocus-10x SimulatedScope, {size}² images, 500 photons/pixel; {trials} samples "
            "(fluorescent tissue, beads, pictures the CNN never saw), focus in ±20 µm, starts "
            f"within ±{start_range_um:g} µm of it; calibration: one fluorescent-tissue stack, "
            f"−120…+120 µm every 2 µm (FWHM {calibration.fwhm_um:.1f} µm); Brent over ±75 µm "
            "around the start, scored after each image"
        ),
        "config": {
            "trials": trials,
            "size": size,
            "budgets": list(budgets),
            "measures": list(measures),
            "start_range_um": start_range_um,
            "seed": seed,
            "model": model,
        },
        "columns": ["method", "images", "median_um", "p90_um", "mean_um", "sd_um", "trials"],
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "errors": {m: result["errors"][m].round(4).tolist() for m in result["methods"]},
        "budgets": list(budgets),
        "methods": result["methods"],
        "brent_images_for_deepfocus_4_error": brent_images,
        "calibration": calibration.to_dict(),
    }


def plot_fewshot_af(result: dict[str, Any], path: Any) -> None:
    """The ``fewshot-af`` analysis' figure (Fig. 4).

    Parameters
    ----------
    result : dict
        The output of :func:`analyze_fewshot_af`.
    path : str or os.PathLike
        Image file to write.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.3 and Fig. 4 (autofocus error against the number of images).
    """
    arrays = {
        **result,
        "errors": {m: np.asarray(v, dtype=float) for m, v in result["errors"].items()},
    }
    af_error_plot(
        arrays, path, title="autofocus error vs images (DeepFocus Fig. 4, simulated 10×/0.3)"
    )
