"""Deep-R (Luo et al. 2021): loss curves (Fig. S8) and the refocusing analyses (Fig. 2b, 4b, 5,
7, 8, S1c, S4, S5), on simulated held-out fields.

Held-out data: fields the model never saw (seeds ≥ 10 000; training uses small seeds), the
sample in focus at z = 0 exactly, rendered with the training camera (mean 2000 e⁻/pixel,
lowered where the brightest pixel would clip — :func:`focuskit.simulate.expose`) and no
stage drift (the truth is pixel-aligned with the input, as after the paper's registration).
The ground truth is the z = 0 plane of the *same noisy* stack (the paper's acquired
in-focus image); the noise-free z = 0 image is reported too (``*_clean``).

Image quality (Methods, "Image quality analysis"): :func:`focuskit.measures.ssim_to_truth`
and :func:`~focuskit.measures.rmse_to_truth` — both images cropped by 10 pixels (the
deconvolution edge artefacts) and standardized (zero mean, unit SD); RMSE is in units of
the truth's SD. Baselines (Fig. 5): Richardson–Lucy and Landweber (100 iterations, step
0.1) given the true PSF at the true defocus (:func:`focuskit.restore.defocus_psf`) on the
camera counts minus the camera offset.

Each ``analyze_*`` returns the standard result dict (``analysis``, ``figure``, ``note``,
``config``, ``columns``, ``rows``, ``seconds`` + arrays for the plot); ``PLOTS[name]``
draws it, and :func:`focuskit.report.save_analysis` writes ``<name>.json`` and ``<name>.png``.
Images kept for the plots are small 8-bit thumbnails or crops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.focus import fitted_tilt
from focuskit.measures import (
    find_beads,
    gaussian_fwhm,
    mip_reference,
    relative_sharpness,
    rmse_to_truth,
    ssim_to_truth,
    standardize,
)
from focuskit.optics import Optics, get_preset
from focuskit.refocus._data import (
    BRIGHTFIELD_SAMPLES,
    FLUORESCENCE_SAMPLES,
    field_sample,
    simulate_refocus_tiles,
    split_tiles_by_field,
)
from focuskit.refocus._model import Refocuser
from focuskit.refocus._train import RefocusTrainConfig, fit_deepr
from focuskit.report import finish_figure, pyplot
from focuskit.restore import defocus_psf, landweber, richardson_lucy
from focuskit.simulate import (
    Sample,
    check_sample_names,
    defocus_map,
    expose,
    make_sample,
    plan_render,
    render_stack,
)

Progress = Callable[[str], None]

PRESET = "deepr-40x-fluor"
BORDER_PX = 10  # the paper crops 10 px of every edge before SSIM / RMSE
METHODS = {"input": "input", "deep-r": "deepr", "rl": "rl", "landweber": "lw"}  # label → column key
_FIG = "Luo et al. 2021"


# --------------------------------------------------------------------------- checks


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def _size(size: Any) -> int:
    n = _positive_int(size, "size")
    if n < 64:
        raise ConfigError(f"size must be ≥ 64 pixels (10 px are cropped from each edge), got {n}")
    return n


def _z_grid(z_um: Sequence[float] | np.ndarray | None, default: np.ndarray) -> np.ndarray:
    z = default if z_um is None else np.asarray(z_um, dtype=np.float64).ravel()
    if z.size == 0 or not np.all(np.isfinite(z)):
        raise ConfigError("z positions must be a non-empty list of finite numbers (µm from focus)")
    return np.unique(np.round(z, 6))


def _photons(photons: float) -> float:
    if not (isinstance(photons, (int, float)) and math.isfinite(photons) and photons > 0):
        raise ConfigError(f"photons must be a number > 0 (mean e⁻ per pixel), got {photons!r}")
    return float(photons)


def _optics_for(model: Any | None, preset: str) -> tuple[Any, Optics]:
    """The preset's optics, checked against the model's microscope."""
    p = get_preset(preset)
    if model is not None:
        for attr in ("refocus", "defocus_map", "check_optics"):
            if not callable(getattr(model, attr, None)):
                raise ConfigError(
                    f"the model has no {attr}() — give a focuskit.refocus.Refocuser "
                    "(e.g. Refocuser.load('builtin:refocus-40x-fluor'))"
                )
        model.check_optics(p.optics, p.optics.pixel_size_um)
    return p, p.optics


def _sample_kinds(samples: Sequence[str] | None, optics: Optics) -> list[str]:
    valid = FLUORESCENCE_SAMPLES if optics.is_fluorescence else BRIGHTFIELD_SAMPLES
    if isinstance(samples, str):
        samples = [samples]
    mode = "fluorescence" if optics.is_fluorescence else optics.illumination.kind
    kinds = check_sample_names(
        valid if samples is None else samples,
        fluorescence=optics.is_fluorescence,
        generators=valid,
        what=f"samples for a {mode} microscope",
    )
    return kinds


# --------------------------------------------------------------------------- held-out fields


def _field_rng(seed: int, index: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), int(tag)])


def _make_sample(
    kind: str,
    optics: Optics,
    render_shape: tuple[int, int],
    px: float,
    rng: np.random.Generator,
    *,
    bead_density: float | None = None,
) -> Any:
    """The in-focus object, drawn like the training fields' (``_field_sample``); sparse 300 nm
    beads when ``bead_density`` (per 100 µm²) is given."""
    seed = int(rng.integers(0, 2**31 - 1))
    if kind == "beads" and bead_density is not None and optics.is_fluorescence:
        s = make_sample(
            "beads",
            render_shape,
            px,
            seed=seed,
            as_="fluorescence",
            density_per_100um2=float(bead_density),
            diameter_um=0.3,
        )
        bg = float(rng.uniform(0.005, 0.03)) * float(s.values.max())
        return Sample(
            "fluorescence", s.values + np.float32(bg), px, {**s.description, "background": bg}
        )
    return field_sample(kind, optics, render_shape, px, seed, rng)


def _plan(
    optics: Optics, z: np.ndarray, size: int, defocus_map_um: np.ndarray | None = None
) -> Any:
    return plan_render(optics, z, (size, size), focus_z_um=0.0, defocus_map_um=defocus_map_um)


def _centred(values: np.ndarray, work: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """Crop ``values`` to ``work`` so that render_stack's final centre crop to ``out`` keeps
    the same sample pixels whatever the padded size (odd paddings would shift them by one)."""
    sl = []
    for n_in, w, o in zip(values.shape, work, out, strict=True):
        start = (n_in - o) // 2 - (w - o) // 2
        if start < 0 or start + w > n_in:
            raise ConfigError("internal: the sample is smaller than a render's padded field")
        sl.append(slice(start, start + w))
    return values[tuple(sl)]


@dataclass
class _Field:
    """One held-out field: the object and how to image it."""

    kind: str
    sample: Any
    index: int
    seed: int


def _new_field(
    kind: str,
    optics: Optics,
    size: int,
    plans: Sequence[Any],
    seed: int,
    index: int,
    *,
    bead_density: float | None = None,
) -> _Field:
    shape = tuple(int(max(p.render_shape[a] for p in plans)) for a in (0, 1))
    k = plans[0].oversampling
    rng = _field_rng(seed, index, 0x5A)
    sample = _make_sample(
        kind, optics, shape, optics.pixel_size_um / k, rng, bead_density=bead_density
    )
    return _Field(kind, sample, index, seed)


def _render(
    field: _Field,
    optics: Optics,
    z: np.ndarray,
    size: int,
    *,
    photons: float | None,
    tag: int,
    defocus_map_um: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(noise-free intensities, camera counts as float32 or None) of the field at focal
    positions ``z`` (µm; in focus at 0), optionally non-uniformly defocused by a map."""
    plan = _plan(optics, z, size, defocus_map_um)
    k = plan.oversampling
    values = _centred(field.sample.values, plan.render_shape, (size * k, size * k))
    sim = render_stack(
        values,
        optics,
        z,
        shape=(size, size),
        sample_pixel_size_um=field.sample.pixel_size_um,
        focus_z_um=0.0,
        defocus_map_um=defocus_map_um,
        photons=None,
    )
    clean = np.asarray(sim.data, dtype=np.float32)
    if photons is None:
        return clean, None
    noisy, _ = expose(
        clean, optics.camera, photons, headroom=0.8, seed=_field_rng(field.seed, field.index, tag)
    )
    return clean, noisy.astype(np.float32)


# --------------------------------------------------------------------------- numbers


def _stats(values: Sequence[float] | np.ndarray) -> tuple[float, float, int]:
    """(mean, SD with ddof = 1, n) over the finite values; NaN when none."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def _round(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return None if not math.isfinite(x) else round(x, 4)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _round(v) for k, v in r.items()} for r in rows]


def _floats(a: np.ndarray, digits: int = 4) -> list[Any]:
    return [
        None if not math.isfinite(float(v)) else round(float(v), digits)
        for v in np.asarray(a).ravel()
    ]


def _grid(a: np.ndarray, digits: int = 3) -> list[list[Any]]:
    return [_floats(row, digits) for row in np.asarray(a, dtype=np.float64)]


def _binned(image: np.ndarray, side: int = 128) -> np.ndarray:
    """Block means so the longer side is ≤ ``side`` (a thumbnail of the whole field)."""
    a = np.asarray(image, dtype=np.float64)
    f = max(1, math.ceil(max(a.shape) / side))
    h, w = a.shape[0] // f * f, a.shape[1] // f * f
    return a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _centre_crop(image: np.ndarray, side: int = 128) -> np.ndarray:
    a = np.asarray(image)
    h, w = min(side, a.shape[0]), min(side, a.shape[1])
    y0, x0 = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[y0 : y0 + h, x0 : x0 + w]


def _u8(images: Mapping[str, np.ndarray], reference: str) -> dict[str, dict[str, Any]]:
    """Images standardized each, then shown on the reference's 0.5–99.5 % range as 8-bit
    grey (the paper normalizes input, output and truth to one scale), stored compactly:
    ``{"shape": [h, w], "uint8_base64": …}`` (:func:`image_from_json` reads one back)."""
    import base64

    ref = standardize(images[reference], dtype=np.float64, floor=1e-12)
    lo, hi = (float(v) for v in np.percentile(ref, [0.5, 99.5]))
    hi = hi if hi > lo else lo + 1.0
    out = {}
    for name, img in images.items():
        s = standardize(img, dtype=np.float64, floor=1e-12)
        grey = np.clip(np.rint((s - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
        out[name] = {
            "shape": list(grey.shape),
            "uint8_base64": base64.b64encode(grey.tobytes()).decode("ascii"),
        }
    return out


def image_from_json(image: Any) -> np.ndarray:
    """An image kept in a result, back as an array.

    An 8-bit ``{"shape", "uint8_base64"}`` record → uint8 (Y, X), or a nested list of
    numbers (None = NaN) → float64.

    Parameters
    ----------
    image : dict or list of list
        A record as the analyses store thumbnails, or nested lists of numbers.

    Returns
    -------
    image : ndarray
        uint8 (Y, X) for a record, float64 (Y, X) for nested lists.
    """
    import base64

    if isinstance(image, Mapping):
        data = np.frombuffer(base64.b64decode(image["uint8_base64"]), dtype=np.uint8)
        return data.reshape(image["shape"])
    return np.array([[np.nan if v is None else v for v in row] for row in image], dtype=np.float64)


def _quality(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return ssim_to_truth(image, truth, border_px=BORDER_PX), rmse_to_truth(
        image, truth, border_px=BORDER_PX
    )


def _trimmed_psf(optics: Optics, z_um: float, energy: float) -> np.ndarray:
    """:func:`focuskit.restore.defocus_psf` cut to the centred square holding ``energy`` of
    it (renormalized): the outer rings of a large defocus PSF only cost FFT size."""
    psf = defocus_psf(optics, float(z_um))
    if energy >= 1.0:
        return psf
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    for h in range(min(cy, cx) + 1):
        part = psf[cy - h : cy + h + 1, cx - h : cx + h + 1]
        if part.sum() >= energy:
            return part / part.sum()
    return psf


def _refocus(model: Any, image: np.ndarray) -> np.ndarray:
    return np.asarray(model.refocus(image), dtype=np.float32)


# --------------------------------------------------------------------------- Fig. 2b, 5, S4


def analyze_refocus_quality(
    model: Any,
    *,
    preset: str = PRESET,
    samples: Sequence[str] | None = None,
    fields_per_sample: int = 2,
    z_um: Sequence[float] | np.ndarray | None = None,
    size: int = 512,
    iterations: int = 100,
    baselines: bool = True,
    photons: float = 2000.0,
    psf_energy: float = 0.995,
    seed: int = 10_000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """SSIM and RMSE to the in-focus truth vs defocus, Deep-R against the input and baselines.

    Deep-R against the input and against Richardson–Lucy and Landweber with the true PSF
    (Fig. 2b, 5; Fig. S4 for a brightfield preset with ``baselines=False``).

    ``fields_per_sample`` held-out fields of each sample kind (``samples``; None: all the
    preset's kinds), each a noisy stack at ``z_um`` (default −5…+5 µm every 1 µm) plus z = 0;
    every plane is refocused by ``model`` and, with ``baselines``, deconvolved by RL and
    Landweber (``iterations`` each; Landweber step 0.1) with ``defocus_psf(optics, z)``
    trimmed to ``psf_energy`` of its energy. Rows per z: mean ± SD over fields of SSIM and
    RMSE per method, then one row averaging |z| ≤ the model's training range; ``by_sample``
    gives the in-range means per sample kind.

    Parameters
    ----------
    model : Refocuser
        The Deep-R model under test (``refocus``; ``z_range_um`` its training range, µm).
    preset : str
        Microscope preset of the held-out fields.
    samples : sequence of str, optional
        Sample kinds (None: all the preset's).
    fields_per_sample : int
        Held-out fields per sample kind (≥ 1).
    z_um : array_like, optional
        Defocus of the input planes (µm).
    size : int
        Field side (pixels).
    iterations : int
        Richardson–Lucy and Landweber iterations (≥ 0).
    baselines : bool
        Also run the deconvolution baselines (fluorescence only).
    photons : float
        Mean photo-electrons per pixel.
    psf_energy : float
        Fraction of the PSF's energy kept for the baselines, in [0.9, 1].
    seed : int
        Seed of the held-out fields (≥ 10 000 keeps them apart from training).
    progress : callable, optional
        ``progress(message)`` with a line of news at each stage.

    Returns
    -------
    result : dict
        The standard analysis result: ``analysis`` ("refocus-quality"), ``figure``, ``note``,
        ``config``, ``columns``, ``rows``, ``seconds``; ``rows`` hold ``ssim_<method>``,
        ``rmse_<method>`` (in units of the truth's SD) with their ``_sd`` and
        ``ssim_clean_<method>``, plus ``methods``, ``method_seconds``, ``z_range_um``,
        ``by_sample``, ``per_field`` and a ``montage`` of thumbnails.

    Raises
    ------
    ConfigError
        On invalid counts, an unknown sample, ``psf_energy`` outside [0.9, 1], or baselines
        asked of a brightfield preset.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 2b, Fig. 5 and Fig. S4; Methods "Image quality analysis".
    """
    t0 = time.perf_counter()
    p, optics = _optics_for(model, preset)
    kinds = _sample_kinds(samples, optics)
    n_fields = _positive_int(fields_per_sample, "fields_per_sample")
    size = _size(size)
    photons = _photons(photons)
    z = _z_grid(z_um, np.arange(-5.0, 5.01, 1.0))
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, (int, np.integer))
        or iterations < 0
    ):
        raise ConfigError(f"iterations must be an integer ≥ 0, got {iterations!r}")
    if not 0.9 <= psf_energy <= 1.0:
        raise ConfigError(f"psf_energy must be in [0.9, 1], got {psf_energy!r}")
    if baselines and not optics.is_fluorescence:
        raise ConfigError(
            f"RL and Landweber need a fluorescence PSF; preset {preset!r} is "
            f"{optics.illumination.kind}: pass baselines=False (--no-baselines)"
        )
    methods = ["input", "deep-r", *(["rl", "landweber"] if baselines else [])]
    z_render = np.union1d(z, [0.0])
    i0 = int(np.flatnonzero(z_render == 0.0)[0])
    z_range = float(getattr(model, "z_range_um", 5.0))
    offset = float(optics.camera.offset_adu)

    psfs: dict[float, np.ndarray] = {}
    if baselines:
        psfs = {float(zi): _trimmed_psf(optics, float(zi), psf_energy) for zi in z}
    plan = _plan(optics, z_render, size)
    ssim = {m: np.full((len(kinds) * n_fields, z.size), np.nan) for m in methods}
    rmse = {m: np.full_like(ssim[m], np.nan) for m in methods}
    ssim_clean = {m: np.full_like(ssim[m], np.nan) for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    field_kinds: list[str] = []
    montage: dict[str, Any] | None = None
    z_show = float(z[np.argmin(np.abs(z - 3.0))])
    show_kind = (
        "fluorescent-tissue"
        if "fluorescent-tissue" in kinds
        else ("tissue" if "tissue" in kinds else kinds[0])
    )
    row = 0
    for _j in range(n_fields):
        for kind in kinds:
            index = row
            field = _new_field(kind, optics, size, [plan], seed, index)
            clean, noisy = _render(field, optics, z_render, size, photons=photons, tag=1)
            assert noisy is not None
            truth, truth_clean = noisy[i0], clean[i0]
            inner = truth_clean[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX]
            clean_has_structure = bool(inner.max() > inner.min())
            for col, zi in enumerate(z):
                k = int(np.flatnonzero(z_render == zi)[0])
                image = noisy[k]
                outputs: dict[str, np.ndarray] = {"input": image}
                t = time.perf_counter()
                outputs["deep-r"] = _refocus(model, image)
                seconds["deep-r"] += time.perf_counter() - t
                if baselines:
                    psf = psfs[float(zi)]
                    t = time.perf_counter()
                    outputs["rl"] = richardson_lucy(image - offset, psf, iterations)
                    seconds["rl"] += time.perf_counter() - t
                    t = time.perf_counter()
                    outputs["landweber"] = landweber(image - offset, psf, iterations, 0.1)
                    seconds["landweber"] += time.perf_counter() - t
                for m in methods:
                    ssim[m][row, col], rmse[m][row, col] = _quality(outputs[m], truth)
                    if clean_has_structure:  # a field with nothing in it has no noise-free SSIM
                        ssim_clean[m][row, col] = _quality(outputs[m], truth_clean)[0]
                if montage is None and kind == show_kind and zi == z_show:
                    crops = {
                        "truth": _centre_crop(truth),
                        **{m: _centre_crop(outputs[m]) for m in methods},
                    }
                    montage = {
                        "z_um": z_show,
                        "sample": kind,
                        "ssim": {m: round(float(ssim[m][row, col]), 4) for m in methods},
                        "images": _u8(crops, "truth"),
                    }
            field_kinds.append(kind)
            row += 1
            _say(
                progress,
                f"  field {row}/{len(kinds) * n_fields} ({kind}): Deep-R SSIM "
                f"{np.nanmean(ssim['deep-r'][row - 1]):.3f}, input "
                f"{np.nanmean(ssim['input'][row - 1]):.3f}",
            )
    rows: list[dict[str, Any]] = []
    for col, zi in enumerate(z):
        r: dict[str, Any] = {"z_um": float(zi), "fields": len(field_kinds)}
        for m in methods:
            key = METHODS[m]
            r[f"ssim_{key}"], r[f"ssim_{key}_sd"], _ = _stats(ssim[m][:, col])
        for m in methods:
            key = METHODS[m]
            r[f"rmse_{key}"], r[f"rmse_{key}_sd"], _ = _stats(rmse[m][:, col])
        for m in methods:
            r[f"ssim_clean_{METHODS[m]}"] = _stats(ssim_clean[m][:, col])[0]
        rows.append(r)
    inside = np.abs(z) <= z_range + 1e-9
    summary: dict[str, Any] = {"z_um": f"|z| ≤ {z_range:g}", "fields": len(field_kinds)}
    for m in methods:
        key = METHODS[m]
        summary[f"ssim_{key}"], summary[f"ssim_{key}_sd"], _ = _stats(ssim[m][:, inside])
        summary[f"rmse_{key}"], summary[f"rmse_{key}_sd"], _ = _stats(rmse[m][:, inside])
        summary[f"ssim_clean_{key}"] = _stats(ssim_clean[m][:, inside])[0]
    rows.append(summary)
    kinds_arr = np.asarray(field_kinds)
    by_sample = {
        kind: {
            m: {
                "ssim": _round(_stats(ssim[m][kinds_arr == kind][:, inside])[0]),
                "rmse": _round(_stats(rmse[m][kinds_arr == kind][:, inside])[0]),
            }
            for m in methods
        }
        for kind in kinds
    }
    columns = [
        "z_um",
        *[f"ssim_{METHODS[m]}{s}" for m in methods for s in ("", "_sd")],
        *[f"rmse_{METHODS[m]}" for m in methods],
    ]
    base = (
        f"; RL and Landweber ({iterations} iterations, Landweber step 0.1) given the true PSF at "
        f"the true defocus (defocus_psf, trimmed to {psf_energy:.1%} of its energy) on counts "
        "minus the camera offset"
        if baselines
        else ""
    )
    note = (
        f"{_FIG}: {len(field_kinds)} held-out simulated {p.name} fields ({n_fields} per sample "
        f"kind: {', '.join(kinds)}), {size}² pixels, {photons:g} e⁻/pixel, in focus at z = 0; each "
        f"plane at z = {z[0]:g}…{z[-1]:g} µm refocused by Deep-R{base}. SSIM (Gaussian σ 1.5) and "
        "RMSE (in units of the truth's SD) against the noisy z = 0 plane of the same stack, both "
        f"images cropped by {BORDER_PX} px and standardized; mean ± SD over fields; the last row "
        f"averages |z| ≤ {z_range:g} µm (the model's training range)"
    )
    config = {
        "preset": p.name,
        "samples": kinds,
        "fields_per_sample": n_fields,
        "z_um": _floats(z),
        "size": size,
        "iterations": iterations,
        "baselines": baselines,
        "photons": photons,
        "psf_energy": psf_energy,
        "seed": seed,
        "model": getattr(model, "source", "") or repr(model),
    }
    return {
        "analysis": "refocus-quality",
        "figure": f"{_FIG}, Fig. 2b and Fig. 5 (Fig. S4 for brightfield)",
        "note": note,
        "config": config,
        "columns": columns,
        "rows": _rows(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "method_seconds": {m: round(s, 1) for m, s in seconds.items()},
        "methods": methods,
        "z_range_um": z_range,
        "by_sample": by_sample,
        "per_field": {
            "kinds": field_kinds,
            "ssim": {m: _grid(ssim[m], 4) for m in methods},
            "rmse": {m: _grid(rmse[m], 4) for m in methods},
        },
        "montage": montage,
    }


# --------------------------------------------------------------------------- Fig. S5


def analyze_training_range(
    *,
    preset: str = PRESET,
    ranges_um: Sequence[float] = (2.0, 5.0, 10.0),
    fields: int = 16,
    steps: int = 600,
    channels: Sequence[int] = (8, 16, 32, 48, 64, 96),
    samples: Sequence[str] | None = None,
    size: int = 256,
    crop: int = 128,
    batch_size: int = 4,
    z_step_um: float = 0.5,
    eval_z_um: Sequence[float] | np.ndarray | None = None,
    test_fields: int = 3,
    photons: float = 2000.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fig. S5: one small Deep-R per training range, same data and budget, SSIM / RMSE vs z.

    ``fields`` fields (``samples`` in turn; default the preset's tissue, as the paper's
    immunofluorescence tissue) are
    simulated once over ±(max range + 1 µm) at ``z_step_um`` (:func:`simulate_refocus_tiles`,
    ``size``² tiles), split 85 : 15 by field; each network (``channels``) trains ``steps``
    generator updates on ``crop``² windows of the pairs within its ±range. All are scored on
    ``test_fields`` held-out fields (seeds ≥ 10 000) at ``eval_z_um`` (default −10…+10 µm
    every 1 µm). A scaled-down reproduction: far smaller networks and data than the paper's.

    Parameters
    ----------
    preset : str
        Microscope preset.
    ranges_um : sequence of float
        Training ranges, one network each (± µm, > 0).
    fields : int
        Simulated training fields (≥ 2).
    steps : int
        Generator updates per network.
    channels : sequence of int
        U-Net widths of every network (6 entries).
    samples : sequence of str, optional
        Sample kinds (default the preset's tissue).
    size : int
        Field and tile side (pixels).
    crop : int
        Training window side (pixels, a multiple of 32).
    batch_size : int
        Pairs per generator update.
    z_step_um : float
        Plane spacing of the training stacks (µm).
    eval_z_um : array_like, optional
        Defocus of the test planes (µm).
    test_fields : int
        Held-out test fields.
    photons : float
        Mean photo-electrons per pixel.
    seed : int
        Seed of the training data and networks.
    progress : callable, optional
        ``progress(message)`` with a line of news at each stage.

    Returns
    -------
    result : dict
        The standard analysis result: ``analysis`` ("training-range"), ``figure``, ``note``,
        ``config``, ``columns``, ``rows``, ``seconds``; ``rows`` hold ``ssim_<model>`` and
        ``rmse_<model>`` (with ``_sd``) per z, then one row per range window; plus
        ``models`` and ``training`` (each network's history).

    Raises
    ------
    ConfigError
        On a non-positive range, fewer than 2 fields, or an invalid count or sample.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. S5.
    """
    t0 = time.perf_counter()
    p, optics = _optics_for(None, preset)
    kinds = _sample_kinds(
        samples
        if samples is not None
        else ["fluorescent-tissue" if optics.is_fluorescence else "tissue"],
        optics,
    )
    r_list = sorted({float(r) for r in ranges_um})
    if not r_list or min(r_list) <= 0 or not all(math.isfinite(r) for r in r_list):
        raise ConfigError(
            f"ranges_um must be distances > 0 µm, e.g. 2,5,10; got {list(ranges_um)!r}"
        )
    n_fields = _positive_int(fields, "fields")
    if n_fields < 2:
        raise ConfigError("fields must be ≥ 2 (one at least is held out for validation)")
    n_steps = _positive_int(steps, "steps")
    n_test = _positive_int(test_fields, "test_fields")
    size = _size(size)
    photons = _photons(photons)
    z = _z_grid(eval_z_um, np.arange(-10.0, 10.01, 1.0))
    _say(
        progress,
        f"simulating {n_fields} training fields over ±{max(r_list) + 1:g} µm "
        f"every {z_step_um:g} µm",
    )
    tiles = simulate_refocus_tiles(
        p.name,
        n_fields,
        samples=kinds,
        z_range_um=max(r_list),
        z_step_um=z_step_um,
        size=size,
        tile=size,
        photons=photons,
        seed=seed,
    )
    train, val = split_tiles_by_field(tiles, 0.15, seed=seed)
    models: dict[float, Any] = {}
    training: dict[str, Any] = {}
    for r in r_list:
        config = RefocusTrainConfig(
            generator_channels=tuple(int(c) for c in channels),
            discriminator_channels=(8, 16, 32, 48),
            z_range_um=r,
            crop=int(crop),
            batch_size=int(batch_size),
            max_steps=n_steps,
            warmup_steps=max(1, n_steps // 4),
            eval_every=max(1, n_steps // 6),
            validation_pairs=16,
            seed=seed,
        )
        t = time.perf_counter()
        gen, _, history = fit_deepr(train, val, config)
        models[r] = Refocuser(gen, optics=optics, z_range_um=r)
        training[f"{r:g}"] = {
            "pairs": len(train.pairs(r)),
            "best_step": history.best_step,
            "best_val_berhu": _round(history.best_val_berhu),
            "seconds": round(time.perf_counter() - t, 1),
        }
        _say(
            progress,
            f"  ±{r:g} µm: {training[f'{r:g}']['pairs']} pairs, best validation BerHu "
            f"{history.best_val_berhu:.3f} at step {history.best_step} "
            f"({time.perf_counter() - t:.0f} s)",
        )
    z_render = np.union1d(z, [0.0])
    i0 = int(np.flatnonzero(z_render == 0.0)[0])
    plan = _plan(optics, z_render, size)
    names = ["input", *[f"{r:g}um" for r in r_list]]
    ssim = {n: np.full((n_test, z.size), np.nan) for n in names}
    rmse = {n: np.full_like(ssim[n], np.nan) for n in names}
    for i in range(n_test):
        kind = kinds[i % len(kinds)]
        field = _new_field(kind, optics, size, [plan], 10_000 + seed, i)
        _, noisy = _render(field, optics, z_render, size, photons=photons, tag=1)
        assert noisy is not None
        truth = noisy[i0]
        for col, zi in enumerate(z):
            image = noisy[int(np.flatnonzero(z_render == zi)[0])]
            ssim["input"][i, col], rmse["input"][i, col] = _quality(image, truth)
            for r in r_list:
                ssim[f"{r:g}um"][i, col], rmse[f"{r:g}um"][i, col] = _quality(
                    _refocus(models[r], image), truth
                )
        _say(progress, f"  test field {i + 1}/{n_test} scored")
    rows: list[dict[str, Any]] = []
    for col, zi in enumerate(z):
        row: dict[str, Any] = {"z_um": float(zi)}
        for n in names:
            row[f"ssim_{n}"], row[f"ssim_{n}_sd"], _ = _stats(ssim[n][:, col])
        for n in names:
            row[f"rmse_{n}"], row[f"rmse_{n}_sd"], _ = _stats(rmse[n][:, col])
        rows.append(row)
    for w in r_list:  # each model's quality inside each window: the range / quality trade-off
        inside = np.abs(z) <= w + 1e-9
        row = {"z_um": f"|z| ≤ {w:g}"}
        for n in names:
            row[f"ssim_{n}"], row[f"ssim_{n}_sd"], _ = _stats(ssim[n][:, inside])
            row[f"rmse_{n}"], row[f"rmse_{n}_sd"], _ = _stats(rmse[n][:, inside])
        rows.append(row)
    columns = [
        "z_um",
        *[f"ssim_{n}{s}" for n in names for s in ("", "_sd")],
        *[f"rmse_{n}" for n in names],
    ]
    note = (
        f"{_FIG} Fig. S5, scaled down: {len(r_list)} Deep-R generators (widths {list(channels)}) "
        f"trained with the same budget ({n_steps} steps, batch {batch_size} of {crop}² windows) on "
        f"the same {n_fields} simulated {p.name} fields ({', '.join(kinds)}, {size}², "
        f"±{max(r_list) + 1:g} µm every {z_step_um:g} µm, {photons:g} e⁻/pixel), each on the pairs "
        f"within its ±range ({', '.join(f'{r:g}' for r in r_list)} µm); SSIM / RMSE to the noisy z "
        f"= 0 plane ({BORDER_PX}-px border cropped, standardized) on {n_test} held-out fields, "
        "mean ± SD; the last rows average each column over |z| ≤ each range. The paper's networks "
        "are far larger and trained far longer"
    )
    config = {
        "preset": p.name,
        "ranges_um": r_list,
        "fields": n_fields,
        "steps": n_steps,
        "channels": [int(c) for c in channels],
        "samples": kinds,
        "size": size,
        "crop": int(crop),
        "batch_size": int(batch_size),
        "z_step_um": z_step_um,
        "eval_z_um": _floats(z),
        "test_fields": n_test,
        "photons": photons,
        "seed": seed,
    }
    return {
        "analysis": "training-range",
        "figure": f"{_FIG}, Fig. S5",
        "note": note,
        "config": config,
        "columns": columns,
        "rows": _rows(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "models": names,
        "training": training,
    }


# --------------------------------------------------------------------------- Fig. 4b


def analyze_bead_fwhm(
    model: Any,
    *,
    preset: str = PRESET,
    fields: int = 2,
    z_um: Sequence[float] | np.ndarray | None = None,
    size: int = 512,
    density_per_100um2: float = 1.0,
    box_px: int = 31,
    photons: float = 2000.0,
    seed: int = 10_100,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fig. 4b: lateral FWHM of isolated beads in the input and in Deep-R's output vs defocus.

    Lateral FWHM of isolated 300 nm beads in the input stack and in Deep-R's output, against
    defocus.

    ``fields`` sparse bead fields (``density_per_100um2``) as noisy stacks at ``z_um``
    (default −5…+5 µm every 0.5 µm) plus z = 0. Beads are found on the in-focus plane
    (:func:`focuskit.restore.find_beads`: Otsu, isolated by ≥ ``box_px``, clusters
    dropped); on every plane and its refocused image a 2-D Gaussian is fitted in a
    ``box_px`` box around each (the paper: 30 × 30 px), FWHM = 2√(2 ln 2)·(σx + σy)/2.
    Rows per z: mean ± SD over beads (fits that failed or outgrew the box are left out, and
    counted), and the output/in-focus FWHM ratio. ``xz``: the x–z section of one bead
    through both stacks (Fig. 4a).

    Parameters
    ----------
    model : Refocuser
        The Deep-R model under test (``refocus``; ``z_range_um`` its training range, µm).
    preset : str
        A fluorescence microscope preset.
    fields : int
        Bead fields (≥ 1).
    z_um : array_like, optional
        Defocus of the input planes (µm).
    size : int
        Field side (pixels).
    density_per_100um2 : float
        Bead density (per 100 µm², > 0).
    box_px : int
        Side of the fitting box, and the least distance between beads kept (pixels).
    photons : float
        Mean photo-electrons per pixel.
    seed : int
        Seed of the held-out fields.
    progress : callable, optional
        ``progress(message)`` with a line of news at each stage.

    Returns
    -------
    result : dict
        The standard analysis result: ``analysis`` ("bead-fwhm"), ``figure``, ``note``,
        ``config``, ``columns``, ``rows``, ``seconds``; ``rows`` hold ``fwhm_input_um``,
        ``fwhm_output_um`` (µm, with SD and fit counts) and ``output_to_focus``; plus
        ``beads``, ``in_focus_fwhm_um``, ``diffraction_fwhm_um``, ``z_range_um`` and ``xz``.

    Raises
    ------
    ConfigError
        When the preset is not fluorescence, or on an invalid count or density.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 4.
    """
    t0 = time.perf_counter()
    p, optics = _optics_for(model, preset)
    if not optics.is_fluorescence:
        raise ConfigError(
            f"the bead PSF analysis images fluorescent beads; preset {preset!r} is not fluorescence"
        )
    n_fields = _positive_int(fields, "fields")
    size = _size(size)
    photons = _photons(photons)
    if not (math.isfinite(density_per_100um2) and density_per_100um2 > 0):
        raise ConfigError(f"density_per_100um2 must be > 0, got {density_per_100um2!r}")
    z = _z_grid(z_um, np.arange(-5.0, 5.01, 0.5))
    z_render = np.union1d(z, [0.0])
    i0 = int(np.flatnonzero(z_render == 0.0)[0])
    px = optics.pixel_size_um
    offset = float(optics.camera.offset_adu)
    plan = _plan(optics, z_render, size)
    fw_in: list[list[np.ndarray]] = [[] for _ in z]
    fw_out: list[list[np.ndarray]] = [[] for _ in z]
    focus_fwhm: list[np.ndarray] = []
    xz: dict[str, Any] | None = None
    n_beads = 0
    for i in range(n_fields):
        field = _new_field("beads", optics, size, [plan], seed, i, bead_density=density_per_100um2)
        _, noisy = _render(field, optics, z_render, size, photons=photons, tag=1)
        assert noisy is not None
        centres = find_beads(noisy[i0] - offset, box_px=int(box_px))
        n_beads += len(centres)
        focus_fwhm.append(gaussian_fwhm(noisy[i0], centres, box_px=int(box_px), pixel_size_um=px))
        sections_in, sections_out = [], []
        for col, zi in enumerate(z):
            image = noisy[int(np.flatnonzero(z_render == zi)[0])]
            out = _refocus(model, image)
            fw_in[col].append(gaussian_fwhm(image, centres, box_px=int(box_px), pixel_size_um=px))
            fw_out[col].append(gaussian_fwhm(out, centres, box_px=int(box_px), pixel_size_um=px))
            if xz is None and len(centres):
                r0, c0 = (round(float(v)) for v in centres[0])
                h = int(box_px) // 2
                sections_in.append(image[r0, c0 - h : c0 + h + 1] - offset)
                sections_out.append(out[r0, c0 - h : c0 + h + 1] - offset)
        if xz is None and sections_in:
            a_in, a_out = np.array(sections_in), np.array(sections_out)
            scale = max(float(a_in.max()), 1e-12)
            xz = {
                "input": _grid(a_in / scale),
                "output": _grid(a_out / max(float(a_out.max()), 1e-12)),
                "x_um": _floats((np.arange(a_in.shape[1]) - a_in.shape[1] // 2) * px),
            }
        _say(progress, f"  field {i + 1}/{n_fields}: {len(centres)} isolated beads")
    if n_beads == 0:
        raise ConfigError(
            "no isolated bead found: raise fields or size, or lower density_per_100um2"
        )
    f_mean, f_sd, f_n = _stats(np.concatenate(focus_fwhm))
    rows = []
    for col, zi in enumerate(z):
        mi, si, ni = _stats(np.concatenate(fw_in[col]))
        mo, so, no = _stats(np.concatenate(fw_out[col]))
        rows.append(
            {
                "z_um": float(zi),
                "fwhm_input_um": mi,
                "fwhm_input_sd_um": si,
                "n_input": ni,
                "fwhm_output_um": mo,
                "fwhm_output_sd_um": so,
                "n_output": no,
                "output_to_focus": mo / f_mean if f_mean > 0 else math.nan,
            }
        )
    dof = optics.depth_of_field_um
    note = (
        f"{_FIG} Fig. 4b: {n_fields} held-out simulated {p.name} fields of 300 nm beads "
        f"({density_per_100um2:g} per 100 µm²), {size}² px, {photons:g} e⁻/pixel; {n_beads} "
        "isolated beads found on the in-focus plane; 2-D Gaussian + offset fitted in a "
        f"{box_px}×{box_px}-px box on every input plane (z = {z[0]:g}…{z[-1]:g} µm) and its Deep-R "
        "output; mean ± SD over the beads whose fit converged inside the box (n_*). In focus: "
        f"{f_mean:.3f} ± {f_sd:.3f} µm (diffraction limit 0.51 λ/NA = "
        f"{0.51 * optics.wavelength_um / optics.na:.3f} µm; DOF {dof:.2f} µm)"
    )
    config = {
        "preset": p.name,
        "fields": n_fields,
        "z_um": _floats(z),
        "size": size,
        "density_per_100um2": density_per_100um2,
        "box_px": int(box_px),
        "photons": photons,
        "seed": seed,
        "model": getattr(model, "source", "") or repr(model),
    }
    return {
        "analysis": "bead-fwhm",
        "figure": f"{_FIG}, Fig. 4",
        "note": note,
        "config": config,
        "columns": [
            "z_um",
            "fwhm_input_um",
            "fwhm_input_sd_um",
            "n_input",
            "fwhm_output_um",
            "fwhm_output_sd_um",
            "n_output",
            "output_to_focus",
        ],
        "rows": _rows(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "beads": n_beads,
        "in_focus_fwhm_um": _round(f_mean),
        "in_focus_fwhm_sd_um": _round(f_sd),
        "in_focus_fits": f_n,
        "diffraction_fwhm_um": round(0.51 * optics.wavelength_um / optics.na, 4),
        "z_range_um": float(getattr(model, "z_range_um", 5.0)),
        "xz": xz,
    }


# --------------------------------------------------------------------------- Fig. S1c, 7c


def _dpm_signed(model: Any) -> bool:
    """Whether the model's defocus map is signed z or its magnitude |z| (Refocuser.dpm_signed)."""
    return bool(getattr(model, "dpm_signed", True))


def _dpm(model: Any, image: np.ndarray) -> np.ndarray | None:
    if getattr(model, "dpm", None) is None:
        return None
    return np.asarray(model.defocus_map(image), dtype=np.float64)


def _crop(a: np.ndarray) -> np.ndarray:
    return a[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX]


def analyze_tilted_sample(
    model: Any,
    *,
    preset: str = PRESET,
    sample: str = "fluorescent-tissue",
    tilt_deg: float = 3.0,
    tilt_azimuth_deg: float = 90.0,
    focal_z_um: Sequence[float] | None = None,
    size: int = 512,
    photons: float = 2000.0,
    seed: int = 10_200,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fig. S1c and Fig. 7c: a tilted sample imaged at a few focal positions.

    The tilt (default 3°, along y) makes the defocus ``z + tan(tilt)·y`` vary across the
    field — δz ≈ 4.4 µm over a 512² field of the 40× preset, the paper's span in Fig. S1.
    Reference (no ground truth in the paper): the MIP of the planes spanning the in-focus
    band (every pixel passes its focus, the preset's z step). Per focal position (default
    0 and −δz/2): row-wise relative sharpness β ± std of the input and of Deep-R's output to
    the reference (eq. 5–8, :func:`focuskit.restore.relative_sharpness`); SSIM / RMSE of both
    to the flat in-focus truth (simulation has one); with a DPM decoder, the fitted plane of
    the predicted defocus map (:func:`focuskit.focus.fitted_tilt`) vs the true tilt and
    azimuth, and the DPM RMSE vs the true map (10-px border cropped).

    Parameters
    ----------
    model : Refocuser
        The Deep-R model under test (``refocus``; ``z_range_um`` its training range, µm).
    preset : str
        Microscope preset.
    sample : str
        Sample kind.
    tilt_deg : float
        Tilt of the sample (degrees, non-zero, within ±45°).
    tilt_azimuth_deg : float
        Direction of the tilt (degrees; 90: along y).
    focal_z_um : sequence of float, optional
        Focal positions (µm; default 0 and −δz/2).
    size : int
        Field side (pixels).
    photons : float
        Mean photo-electrons per pixel.
    seed : int
        Seed of the held-out field.
    progress : callable, optional
        ``progress(message)`` with a line of news at each stage.

    Returns
    -------
    result : dict
        The standard analysis result: ``analysis`` ("tilted-sample"), ``figure``, ``note``,
        ``config``, ``columns``, ``rows``, ``seconds``; one row per focal position (β, SSIM, RMSE,
        fitted tilt); plus ``true_tilt_deg``, ``true_azimuth_deg``, ``defocus_span_um``,
        ``reference_planes``, ``reference_ssim``, ``pixel_size_um`` (µm) and ``panels``.

    Raises
    ------
    ConfigError
        On an invalid tilt, no focal position, or an unknown sample.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. S1c and Fig. 7c.
    """
    t0 = time.perf_counter()
    p, optics = _optics_for(model, preset)
    kind = _sample_kinds([sample], optics)[0]
    size = _size(size)
    photons = _photons(photons)
    if not (math.isfinite(tilt_deg) and 0 < abs(tilt_deg) < 45):
        raise ConfigError(f"tilt_deg must be a non-zero angle within ±45°, got {tilt_deg!r}")
    px = optics.pixel_size_um
    dz = defocus_map((size, size), px, tilt_deg=tilt_deg, tilt_azimuth_deg=tilt_azimuth_deg)
    assert dz is not None
    dz = dz.astype(np.float64)
    span = float(dz.max() - dz.min())
    focal = [0.0, round(-span / 2, 3)] if focal_z_um is None else [float(v) for v in focal_z_um]
    if not focal or not all(math.isfinite(v) for v in focal):
        raise ConfigError("focal_z_um must be a non-empty list of focal positions (µm)")
    step = p.z_step_um
    band = np.round(np.arange(-float(dz.max()), -float(dz.min()) + step / 2, step), 6)
    dz32 = dz.astype(np.float32)
    # Band and focal planes rendered apart: a focal plane between band planes would make the
    # renderer's interpolation grid (step ≤ the closest plane spacing) needlessly fine.
    plans = [
        _plan(optics, band, size, dz32),
        *(_plan(optics, np.array([zf]), size, dz32) for zf in focal),
        _plan(optics, np.array([0.0]), size),
    ]
    field = _new_field(kind, optics, size, plans, seed, 0)
    _say(
        progress,
        f"rendering the tilted sample ({band.size} reference planes, {len(focal)} focal positions) "
        "and the flat truth",
    )
    _, band_planes = _render(field, optics, band, size, photons=photons, tag=1, defocus_map_um=dz32)
    _, noisy_flat = _render(field, optics, np.array([0.0]), size, photons=photons, tag=2)
    assert band_planes is not None and noisy_flat is not None
    truth = noisy_flat[0]
    reference = mip_reference(band_planes)
    true_tilt, true_az, _ = fitted_tilt(dz, px)
    ssim_ref, _ = _quality(reference, truth)
    rows, panels = [], []
    for j, zf in enumerate(focal):
        _, noisy = _render(
            field, optics, np.array([zf]), size, photons=photons, tag=10 + j, defocus_map_um=dz32
        )
        assert noisy is not None
        image = noisy[0]
        out = _refocus(model, image)
        b_in, s_in = relative_sharpness(image, reference)
        b_out, s_out = relative_sharpness(out, reference)
        q_in, q_out = _quality(image, truth), _quality(out, truth)
        true_map = zf + dz
        row: dict[str, Any] = {
            "focal_z_um": zf,
            "defocus_min_um": float(true_map.min()),
            "defocus_max_um": float(true_map.max()),
            "beta_input": float(np.nanmean(b_in)),
            "beta_input_sd": float(np.nanstd(b_in)),
            "beta_output": float(np.nanmean(b_out)),
            "beta_output_sd": float(np.nanstd(b_out)),
            "ssim_input": q_in[0],
            "ssim_output": q_out[0],
            "rmse_input": q_in[1],
            "rmse_output": q_out[1],
            "dpm_tilt_deg": None,
            "dpm_azimuth_deg": None,
            "dpm_rmse_um": None,
            "dpm_mean_um": None,
        }
        dpm = _dpm(model, image)
        panel: dict[str, Any] = {
            "focal_z_um": zf,
            "beta_input": _floats(b_in),
            "beta_input_std": _floats(s_in),
            "beta_output": _floats(b_out),
            "beta_output_std": _floats(s_out),
            "images": _u8(
                {"input": _binned(image), "output": _binned(out), "reference": _binned(reference)},
                "reference",
            ),
        }
        if dpm is not None:
            signed = _dpm_signed(model)
            tilt, az, _ = fitted_tilt(_crop(dpm), px, unsigned=not signed)
            err = _crop(dpm) - _crop(true_map if signed else np.abs(true_map))
            row.update(
                {
                    "dpm_tilt_deg": tilt,
                    "dpm_azimuth_deg": az,
                    "dpm_rmse_um": float(np.sqrt(np.mean(err**2))),
                    "dpm_mean_um": float(_crop(dpm).mean()),
                }
            )
            phi = math.radians(tilt_azimuth_deg)
            along = 0 if abs(math.sin(phi)) >= abs(math.cos(phi)) else 1  # 0: the tilt runs along y
            panel.update(
                {
                    "dpm": _grid(_binned(dpm, 64)),
                    "dpm_profile_axis": "y" if along == 0 else "x",
                    "dpm_profile_mean": _floats(dpm.mean(axis=1 - along)),
                    "dpm_profile_sd": _floats(dpm.std(axis=1 - along)),
                    "true_profile": _floats(
                        (true_map if signed else np.abs(true_map)).mean(axis=1 - along)
                    ),
                    "dpm_signed": signed,
                }
            )
        rows.append(row)
        panels.append(panel)
        _say(
            progress,
            f"  focal z {zf:+g} µm: β input {row['beta_input']:.3f}, output "
            f"{row['beta_output']:.3f}",
        )
    has_dpm = getattr(model, "dpm", None) is not None
    note = (
        f"{_FIG} Fig. S1c / 7c: one held-out simulated {p.name} {kind} field ({size}² px, "
        f"{size * px:.0f} µm), tilted {tilt_deg:g}° (azimuth {tilt_azimuth_deg:g}°: defocus spans "
        f"{span:.2f} µm), {photons:g} e⁻/pixel; reference = MIP of the {band.size} planes of the "
        f"in-focus band (SSIM {ssim_ref:.3f} to the flat truth); β: row-wise OLS slope of the "
        "Sobel sharpness of the image on the reference's (eq. 5–8), mean and SD over rows; SSIM / "
        "RMSE against the same sample rendered flat at z = 0 "
        + (
            "; DPM: least-squares plane through the predicted defocus map (|plane| when the map is "
            "unsigned, |z|), RMSE to the true map (its magnitude when unsigned)"
            if has_dpm
            else "; the model has no DPM decoder: no defocus map"
        )
    )
    columns = [
        "focal_z_um",
        "defocus_min_um",
        "defocus_max_um",
        "beta_input",
        "beta_output",
        "ssim_input",
        "ssim_output",
    ] + (["dpm_tilt_deg", "dpm_azimuth_deg", "dpm_rmse_um"] if has_dpm else [])
    config = {
        "preset": p.name,
        "sample": kind,
        "tilt_deg": tilt_deg,
        "tilt_azimuth_deg": tilt_azimuth_deg,
        "focal_z_um": focal,
        "size": size,
        "photons": photons,
        "seed": seed,
        "model": getattr(model, "source", "") or repr(model),
    }
    return {
        "analysis": "tilted-sample",
        "figure": f"{_FIG}, Fig. S1c and Fig. 7c",
        "note": note,
        "config": config,
        "columns": columns,
        "rows": _rows(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "true_tilt_deg": round(true_tilt, 4),
        "true_azimuth_deg": round(true_az, 4),
        "defocus_span_um": round(span, 4),
        "reference_planes": int(band.size),
        "reference_ssim": round(ssim_ref, 4),
        "pixel_size_um": px,
        "panels": panels,
    }


# --------------------------------------------------------------------------- Fig. 8


def default_shapes(
    size: int = 512, pixel_size_um: float = 0.1625, *, amplitude_um: float = 4.0
) -> dict[str, dict[str, float]]:
    """Tilted, cylindrical and spherical surfaces (Fig. 8), about ``amplitude_um`` of defocus.

    Surfaces whose defocus spans about ``amplitude_um`` over a ``size``² field, centred on the
    focal plane (``z_um`` = the focal position, the rest :func:`focuskit.simulate.defocus_map`
    keywords).

    Parameters
    ----------
    size : int
        Field side (pixels).
    pixel_size_um : float
        Pixel size (µm).
    amplitude_um : float
        Defocus span across the field (µm).

    Returns
    -------
    shapes : dict of str to dict
        ``"tilt"``, ``"cylinder"`` and ``"sphere"`` → keywords (angles in degrees, radii and
        ``z_um`` in µm).

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 8.
    """
    half = (size - 1) / 2 * pixel_size_um
    a = float(amplitude_um)
    corner = math.hypot(half, half)
    return {
        "tilt": {
            "tilt_deg": round(math.degrees(math.atan(a / (2 * half))), 4),
            "tilt_azimuth_deg": 90.0,
            "z_um": 0.0,
        },
        "cylinder": {"cylinder_radius_um": round((half**2 + a**2) / (2 * a), 2), "z_um": -a / 2},
        "sphere": {"sphere_radius_um": round((corner**2 + a**2) / (2 * a), 2), "z_um": -a / 2},
    }


def analyze_nonuniform_defocus(
    model: Any,
    *,
    preset: str = PRESET,
    sample: str = "fluorescent-tissue",
    shapes: Mapping[str, Mapping[str, float]] | None = None,
    size: int = 512,
    photons: float = 2000.0,
    seed: int = 10_300,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fig. 8: one field non-uniformly defocused by tilted, cylindrical and spherical maps.

    ``shapes`` maps a name to :func:`focuskit.simulate.defocus_map` keywords plus ``z_um``
    (the focal position; default :func:`default_shapes`: ≈ 4 µm of defocus across the field,
    centred on focus). A pixel's defocus is ``z + dz(y, x)``. Per shape: SSIM / RMSE of the
    input and of Deep-R's output against the same sample rendered flat in focus, and with a
    DPM decoder the defocus-map RMSE against the true map (10-px border cropped).

    Parameters
    ----------
    model : Refocuser
        The Deep-R model under test (``refocus``; ``z_range_um`` its training range, µm).
    preset : str
        Microscope preset.
    sample : str
        Sample kind.
    shapes : mapping of str to mapping, optional
        Name → :func:`focuskit.simulate.defocus_map` keywords plus ``z_um`` (µm).
    size : int
        Field side (pixels).
    photons : float
        Mean photo-electrons per pixel.
    seed : int
        Seed of the held-out field.
    progress : callable, optional
        ``progress(message)`` with a line of news at each stage.

    Returns
    -------
    result : dict
        The standard analysis result: ``analysis`` ("nonuniform-defocus"), ``figure``, ``note``,
        ``config``, ``columns``, ``rows``, ``seconds``; one row per shape (focal z and
        defocus span in µm, SSIM and RMSE of input and output, DPM RMSE in µm); plus
        ``panels``.

    Raises
    ------
    ConfigError
        On no shape, unknown shape keywords, or an unknown sample.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 8.
    """
    t0 = time.perf_counter()
    p, optics = _optics_for(model, preset)
    kind = _sample_kinds([sample], optics)[0]
    size = _size(size)
    photons = _photons(photons)
    px = optics.pixel_size_um
    spec = (
        default_shapes(size, px) if shapes is None else {str(k): dict(v) for k, v in shapes.items()}
    )
    if not spec:
        raise ConfigError(
            "give at least one shape (name → defocus_map keywords, e.g. {'tilt': {'tilt_deg': 3}})"
        )
    maps: dict[str, tuple[float, np.ndarray]] = {}
    for name, kw in spec.items():
        kw = dict(kw)
        zf = float(kw.pop("z_um", 0.0))
        try:
            m = defocus_map((size, size), px, **kw)
        except TypeError as exc:
            raise ConfigError(
                f"shape {name!r}: {exc} — use tilt_deg, tilt_azimuth_deg, cylinder_radius_um, "
                "cylinder_azimuth_deg, sphere_radius_um and z_um"
            ) from None
        if m is None:
            raise ConfigError(
                f"shape {name!r} defines no defocus map — give e.g. tilt_deg or sphere_radius_um"
            )
        maps[name] = (zf, m.astype(np.float32))
    plans = [_plan(optics, np.array([zf]), size, m) for zf, m in maps.values()]
    plans.append(_plan(optics, np.array([0.0]), size))
    field = _new_field(kind, optics, size, plans, seed, 0)
    _, flat = _render(field, optics, np.array([0.0]), size, photons=photons, tag=1)
    assert flat is not None
    truth = flat[0]
    has_dpm = getattr(model, "dpm", None) is not None
    rows, panels = [], {}
    for j, (name, (zf, m)) in enumerate(maps.items()):
        _, noisy = _render(
            field, optics, np.array([zf]), size, photons=photons, tag=10 + j, defocus_map_um=m
        )
        assert noisy is not None
        image = noisy[0]
        out = _refocus(model, image)
        true_map = zf + m.astype(np.float64)
        q_in, q_out = _quality(image, truth), _quality(out, truth)
        row: dict[str, Any] = {
            "shape": name,
            "focal_z_um": zf,
            "defocus_min_um": float(true_map.min()),
            "defocus_max_um": float(true_map.max()),
            "ssim_input": q_in[0],
            "ssim_output": q_out[0],
            "rmse_input": q_in[1],
            "rmse_output": q_out[1],
            "dpm_rmse_um": None,
        }
        images = _u8(
            {"truth": _binned(truth), "input": _binned(image), "output": _binned(out)}, "truth"
        )
        shown = (
            true_map
            if _dpm_signed(model) or getattr(model, "dpm", None) is None
            else np.abs(true_map)
        )
        panel: dict[str, Any] = {
            "images": images,
            "true_map": _grid(_binned(shown, 64)),
            "unsigned": shown is not true_map,
        }
        dpm = _dpm(model, image)
        if dpm is not None:
            target = true_map if _dpm_signed(model) else np.abs(true_map)
            row["dpm_rmse_um"] = float(np.sqrt(np.mean((_crop(dpm) - _crop(target)) ** 2)))
            panel["dpm"] = _grid(_binned(dpm, 64))
        rows.append(row)
        panels[name] = panel
        _say(progress, f"  {name}: SSIM input {q_in[0]:.3f} → output {q_out[0]:.3f}")
    note = (
        f"{_FIG} Fig. 8: one held-out simulated {p.name} {kind} field ({size}² px), {photons:g} "
        "e⁻/pixel, imaged with non-uniform defocus z + dz(y, x) (the paper generated these with "
        "Deep-Z; here they are rendered: every pixel interpolated between uniformly defocused "
        f"planes); SSIM / RMSE against the same sample rendered flat at z = 0, {BORDER_PX}-px "
        "border cropped, standardized"
        + (
            "; DPM RMSE against the true defocus map"
            if has_dpm
            else "; the model has no DPM decoder"
        )
    )
    columns = [
        "shape",
        "focal_z_um",
        "defocus_min_um",
        "defocus_max_um",
        "ssim_input",
        "ssim_output",
        "rmse_input",
        "rmse_output",
    ] + (["dpm_rmse_um"] if has_dpm else [])
    config = {
        "preset": p.name,
        "sample": kind,
        "shapes": spec,
        "size": size,
        "photons": photons,
        "seed": seed,
        "model": getattr(model, "source", "") or repr(model),
    }
    return {
        "analysis": "nonuniform-defocus",
        "figure": f"{_FIG}, Fig. 8",
        "note": note,
        "config": config,
        "columns": columns,
        "rows": _rows(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "panels": panels,
    }


# --------------------------------------------------------------------------- Fig. 7b


def analyze_dpm_uniform(
    model: Any,
    *,
    preset: str = PRESET,
    samples: Sequence[str] | None = None,
    fields_per_sample: int = 1,
    z_um: Sequence[float] | np.ndarray | None = None,
    size: int = 512,
    photons: float = 2000.0,
    seed: int = 10_400,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fig. 7b: the DPM decoder on uniformly defocused held-out fields.

    ``fields_per_sample`` fields of each kind in ``samples`` (None: all the preset's). Per z
    (default −7…+7 µm every 1 µm, beyond the training range to show where it saturates):
    the predicted defocus over all pixels of all fields (10-px border cropped) — mean, SD
    over pixels, bias and RMSE to the true z; plus one row over |z| ≤ the model's training
    range.

    Parameters
    ----------
    model : Refocuser
        A Deep-R model with a DPM decoder.
    preset : str
        Microscope preset.
    samples : sequence of str, optional
        Sample kinds (None: all the preset's).
    fields_per_sample : int
        Held-out fields per sample kind.
    z_um : array_like, optional
        Defocus of the input planes (µm).
    size : int
        Field side (pixels).
    photons : float
        Mean photo-electrons per pixel.
    seed : int
        Seed of the held-out fields.
    progress : callable, optional
        ``progress(message)`` with a line of news at each stage.

    Returns
    -------
    result : dict
        The standard analysis result: ``analysis`` ("dpm-uniform"), ``figure``, ``note``,
        ``config``, ``columns``, ``rows``, ``seconds``; ``rows`` hold ``dpm_mean_um``,
        ``dpm_sd_um``, ``bias_um``, ``rmse_um`` and ``field_mean_sd_um`` (µm); plus
        ``rmse_in_range_um``, ``z_range_um``, ``example`` and ``signed``.

    Raises
    ------
    ConfigError
        When the model has no DPM decoder, or on an invalid count or sample.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Fig. 7b.
    """
    t0 = time.perf_counter()
    p, optics = _optics_for(model, preset)
    if getattr(model, "dpm", None) is None:
        raise ConfigError(
            "this model has no defocus-map decoder — train one with `focuskit refocus train --dpm`"
        )
    kinds = _sample_kinds(samples, optics)
    n_fields = _positive_int(fields_per_sample, "fields_per_sample")
    size = _size(size)
    photons = _photons(photons)
    z = _z_grid(z_um, np.arange(-7.0, 7.01, 1.0))
    z_range = float(getattr(model, "z_range_um", 5.0))
    plan = _plan(optics, z, size)
    sums = np.zeros((z.size, 3))  # Σ pred, Σ pred², n
    field_means: list[list[float]] = [[] for _ in z]
    example: dict[str, Any] | None = None
    index = 0
    for _ in range(n_fields):
        for kind in kinds:
            field = _new_field(kind, optics, size, [plan], seed, index)
            _, noisy = _render(field, optics, z, size, photons=photons, tag=1)
            assert noisy is not None
            for col, zi in enumerate(z):
                dpm = _crop(np.asarray(model.defocus_map(noisy[col]), dtype=np.float64))
                sums[col] += (dpm.sum(), (dpm**2).sum(), dpm.size)
                field_means[col].append(float(dpm.mean()))
                if example is None and zi == z[np.argmin(np.abs(z - 3.0))]:
                    example = {"z_um": float(zi), "sample": kind, "dpm": _grid(_binned(dpm, 64))}
            index += 1
            _say(progress, f"  field {index}/{n_fields * len(kinds)} ({kind})")
    rows = []
    sq_err_in, n_in = 0.0, 0.0
    signed = _dpm_signed(model)
    for col, zi in enumerate(z):
        s, s2, n = sums[col]
        zi = zi if signed else abs(zi)  # an unsigned map is compared with |z|
        mean = s / n
        sd = math.sqrt(max(s2 / n - mean**2, 0.0))
        mse = s2 / n - 2 * zi * mean + zi**2
        rows.append(
            {
                "z_um": float(z[col]),
                "dpm_mean_um": mean,
                "dpm_sd_um": sd,
                "bias_um": mean - zi,
                "rmse_um": math.sqrt(max(mse, 0.0)),
                "field_mean_sd_um": _stats(field_means[col])[1],
            }
        )
        if abs(zi) <= z_range + 1e-9:
            sq_err_in += max(mse, 0.0) * n
            n_in += n
    overall = math.sqrt(sq_err_in / n_in) if n_in else math.nan
    rows.append({"z_um": f"|z| ≤ {z_range:g}", "rmse_um": overall})
    note = (
        f"{_FIG} Fig. 7b: DPM decoder on {n_fields * len(kinds)} held-out simulated {p.name} "
        f"fields ({', '.join(kinds)}), {size}² px, {photons:g} e⁻/pixel, uniformly defocused at z "
        f"= {z[0]:g}…{z[-1]:g} µm; per z the predicted defocus over all pixels ({BORDER_PX}-px "
        "border cropped): mean, SD over pixels, bias and RMSE to the true z; field_mean_sd: SD of "
        f"the per-field means; the last row: RMSE over |z| ≤ {z_range:g} µm (the training range)"
    )
    config = {
        "preset": p.name,
        "samples": kinds,
        "fields_per_sample": n_fields,
        "z_um": _floats(z),
        "size": size,
        "photons": photons,
        "seed": seed,
        "model": getattr(model, "source", "") or repr(model),
    }
    return {
        "analysis": "dpm-uniform",
        "figure": f"{_FIG}, Fig. 7b",
        "note": note,
        "config": config,
        "columns": ["z_um", "dpm_mean_um", "dpm_sd_um", "bias_um", "rmse_um", "field_mean_sd_um"],
        "rows": _rows(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "rmse_in_range_um": _round(overall),
        "z_range_um": z_range,
        "example": example,
        "signed": signed,
    }


# --------------------------------------------------------------------------- plots


def _numeric_rows(result: dict[str, Any], key: str = "z_um") -> list[dict[str, Any]]:
    return [r for r in result["rows"] if isinstance(r.get(key), (int, float))]


def _col(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=np.float64)


def _shade_range(ax: Any, z_range: float, z: np.ndarray) -> None:
    """The model's training range (the paper's green zone), within the plotted z."""
    lo, hi = max(-z_range, float(np.nanmin(z))), min(z_range, float(np.nanmax(z)))
    if hi > lo:
        ax.axvspan(lo, hi, color="tab:green", alpha=0.07, linewidth=0)


def _show(
    ax: Any,
    image: Any,
    title: str,
    *,
    cmap: str = "gray",
    vmin: float | None = 0,
    vmax: float | None = 255,
    colorbar: bool = False,
    fig: Any = None,
) -> None:
    shown = ax.imshow(
        image_from_json(image), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar and fig is not None:
        fig.colorbar(shown, ax=ax, fraction=0.046)


LABELS = {"input": "input", "deep-r": "Deep-R", "rl": "Richardson–Lucy", "landweber": "Landweber"}


def _plot_refocus_quality(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = _numeric_rows(result)
    z = _col(rows, "z_um")
    montage = result.get("montage")
    methods = result["methods"]
    fig = plt.figure(figsize=(12, 7.2 if montage else 3.8))
    grid = fig.add_gridspec(
        2 if montage else 1, max(len(methods) + 1, 2), height_ratios=[1.2, 1] if montage else [1]
    )
    half = (len(methods) + 1) // 2 if montage else 1
    ax_s = fig.add_subplot(grid[0, :half])
    ax_r = fig.add_subplot(grid[0, half:])
    for k, m in enumerate(methods):
        key = METHODS[m]
        for ax, q in ((ax_s, "ssim"), (ax_r, "rmse")):
            mean, sd = _col(rows, f"{q}_{key}"), _col(rows, f"{q}_{key}_sd")
            ax.plot(z, mean, "o-", ms=3, color=f"C{k}", label=LABELS[m])
            ax.fill_between(z, mean - sd, mean + sd, color=f"C{k}", alpha=0.15, linewidth=0)
    for ax, label in ((ax_s, "SSIM to the in-focus truth"), (ax_r, "RMSE (truth SD units)")):
        _shade_range(ax, result["z_range_um"], z)
        ax.set_xlabel("defocus z (µm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_s.legend(fontsize=8)
    ax_s.set_title("green: the model's training range", fontsize=8)
    if montage:
        names = ["truth", *methods]
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[1, k])
            title = (
                "truth (z = 0)"
                if name == "truth"
                else f"{LABELS[name]}\nSSIM {montage['ssim'][name]:.3f}"
            )
            _show(ax, montage["images"][name], title)
        fig.text(
            0.01,
            0.02,
            f"{montage['sample']}, z = {montage['z_um']:+g} µm (central crop)",
            fontsize=8,
        )
    fig.suptitle(f"Deep-R refocusing quality vs defocus ({result['figure']})", fontsize=10)
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_training_range(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = _numeric_rows(result)
    z = _col(rows, "z_um")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, name in enumerate(result["models"]):
        label = "input" if name == "input" else f"trained ±{name[:-2]} µm"
        for ax, q in ((axes[0], "rmse"), (axes[1], "ssim")):
            mean, sd = _col(rows, f"{q}_{name}"), _col(rows, f"{q}_{name}_sd")
            ax.plot(z, mean, "o-", ms=3, color="0.4" if name == "input" else f"C{k}", label=label)
            ax.fill_between(
                z,
                mean - sd,
                mean + sd,
                color="0.4" if name == "input" else f"C{k}",
                alpha=0.12,
                linewidth=0,
            )
    for ax, label in ((axes[0], "a) RMSE (truth SD units)"), (axes[1], "b) SSIM")):
        ax.set_xlabel("defocus z (µm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Training range vs quality ({result['figure']}, scaled down)", fontsize=10)
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_bead_fwhm(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = result["rows"]
    z = _col(rows, "z_um")
    xz = result.get("xz")
    fig, axes = plt.subplots(
        1,
        3 if xz else 1,
        figsize=(13 if xz else 6, 4),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.6, 1, 1] if xz else [1]},
    )
    ax = axes[0, 0]
    for key, color, label in (
        ("input", "tab:green", "input (scanned stack)"),
        ("output", "tab:red", "Deep-R output"),
    ):
        mean, sd = _col(rows, f"fwhm_{key}_um"), _col(rows, f"fwhm_{key}_sd_um")
        ax.plot(z, mean, "o-", ms=3, color=color, label=label)
        ax.fill_between(z, mean - sd, mean + sd, color=color, alpha=0.15, linewidth=0)
    if result.get("in_focus_fwhm_um") is not None:
        ax.axhline(
            result["in_focus_fwhm_um"],
            color="k",
            ls="--",
            lw=0.8,
            label=f"in focus {result['in_focus_fwhm_um']:.3f} µm",
        )
    _shade_range(ax, result["z_range_um"], z)
    ax.set_xlabel("defocus z (µm)")
    ax.set_ylabel("lateral FWHM (µm), mean ± SD over beads")
    ax.set_title(f"{result['beads']} isolated beads", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if xz:
        x = np.asarray(xz["x_um"])
        extent = (x[0], x[-1], z[-1], z[0])
        for ax, key in ((axes[0, 1], "input"), (axes[0, 2], "output")):
            a = np.asarray(xz[key], dtype=np.float64)
            ax.imshow(a, cmap="magma", aspect="auto", extent=extent, vmin=0)
            ax.set_xlabel("x (µm)")
            ax.set_ylabel("z (µm)")
            ax.set_title(f"x–z section of one bead: {key}", fontsize=9)
    fig.suptitle(f"Bead PSF through focus ({result['figure']})", fontsize=10)
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_tilted(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    panels = result["panels"]
    has_dpm = "dpm" in panels[0]
    cols = 5 if has_dpm else 4
    fig, axes = plt.subplots(
        len(panels), cols, figsize=(3.1 * cols, 3.0 * len(panels)), squeeze=False
    )
    for r, panel in enumerate(panels):
        row = result["rows"][r]
        im = panel["images"]
        _show(axes[r, 0], im["input"], f"input, focal z {panel['focal_z_um']:+g} µm")
        _show(axes[r, 1], im["output"], "Deep-R output")
        _show(axes[r, 2], im["reference"], f"reference: MIP of {result['reference_planes']} planes")
        ax = axes[r, 3]
        y = np.arange(len(panel["beta_input"]))
        for key, color, label in (("input", "tab:blue", "input"), ("output", "tab:red", "Deep-R")):
            b = np.asarray([np.nan if v is None else v for v in panel[f"beta_{key}"]])
            s = np.asarray([np.nan if v is None else v for v in panel[f"beta_{key}_std"]])
            ax.plot(b, y, color=color, lw=0.8, label=f"{label} (mean {np.nanmean(b):.2f})")
            ax.fill_betweenx(y, b - s, b + s, color=color, alpha=0.2, linewidth=0)
        ax.axvline(1.0, color="k", lw=0.6, ls=":")
        ax.invert_yaxis()
        ax.set_xlabel("relative sharpness β")
        ax.set_ylabel("row")
        ax.legend(fontsize=7)
        if has_dpm:
            ax = axes[r, 4]
            along = panel["dpm_profile_axis"]
            pos = np.arange(len(panel["dpm_profile_mean"])) * result["pixel_size_um"]
            mean = np.asarray([np.nan if v is None else v for v in panel["dpm_profile_mean"]])
            sd = np.asarray([np.nan if v is None else v for v in panel["dpm_profile_sd"]])
            ax.plot(
                pos,
                mean,
                color="tab:blue",
                label="DPM mean per " + ("row" if along == "y" else "column"),
            )
            ax.fill_between(pos, mean - sd, mean + sd, color="tab:blue", alpha=0.2, linewidth=0)
            ax.plot(
                pos,
                panel["true_profile"],
                color="tab:orange",
                label="true defocus" if panel.get("dpm_signed", True) else "true |defocus|",
            )
            ax.set_xlabel(f"{along} (µm)")
            ax.set_ylabel("dz (µm)")
            ax.set_title(
                f"fitted tilt {row['dpm_tilt_deg']:.2f}° (true {result['true_tilt_deg']:.2f}°), "
                f"RMSE {row['dpm_rmse_um']:.2f} µm",
                fontsize=8,
            )
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
    fig.suptitle(
        f"Tilted sample, {result['config']['tilt_deg']:g}° ({result['figure']})", fontsize=10
    )
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_nonuniform(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    panels = result["panels"]
    has_dpm = all("dpm" in p for p in panels.values())
    cols = 5 if has_dpm else 4
    fig, axes = plt.subplots(
        len(panels), cols, figsize=(2.9 * cols, 2.9 * len(panels)), squeeze=False
    )
    lo = min(r["defocus_min_um"] for r in result["rows"])
    hi = max(r["defocus_max_um"] for r in result["rows"])
    for r, (name, panel) in enumerate(panels.items()):
        row = result["rows"][r]
        _show(
            axes[r, 0],
            panel["true_map"],
            f"{name}: true {'|defocus|' if panel.get('unsigned') else 'defocus'} (µm)",
            cmap="coolwarm",
            vmin=lo,
            vmax=hi,
            colorbar=True,
            fig=fig,
        )
        c = 1
        if has_dpm:
            _show(
                axes[r, 1],
                panel["dpm"],
                f"DPM, RMSE {row['dpm_rmse_um']:.2f} µm",
                cmap="coolwarm",
                vmin=lo,
                vmax=hi,
                colorbar=True,
                fig=fig,
            )
            c = 2
        _show(axes[r, c], panel["images"]["input"], f"input, SSIM {row['ssim_input']:.3f}")
        _show(axes[r, c + 1], panel["images"]["output"], f"Deep-R, SSIM {row['ssim_output']:.3f}")
        _show(axes[r, c + 2], panel["images"]["truth"], "flat in-focus truth")
    fig.suptitle(f"Non-uniform defocus ({result['figure']})", fontsize=10)
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_dpm_uniform(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = _numeric_rows(result)
    z = _col(rows, "z_um")
    example = result.get("example")
    fig, axes = plt.subplots(1, 3 if example else 2, figsize=(13 if example else 9, 4))
    ax = axes[0]
    mean, sd = _col(rows, "dpm_mean_um"), _col(rows, "dpm_sd_um")
    ax.plot(z, mean, "o-", ms=3, label="predicted (mean over pixels)")
    ax.fill_between(z, mean - sd, mean + sd, alpha=0.2, linewidth=0, label="± SD over pixels")
    lim = float(np.nanmax(np.abs(z))) * 1.1
    ideal = np.linspace(-lim, lim, 101)
    ax.plot(
        ideal,
        ideal if result.get("signed", True) else np.abs(ideal),
        color="k",
        lw=0.8,
        label="ideal" if result.get("signed", True) else "ideal |z| (the map is unsigned)",
    )
    _shade_range(ax, result["z_range_um"], z)
    ax.set_xlabel("true defocus (µm)")
    ax.set_ylabel("DPM (µm)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    ax.plot(z, _col(rows, "rmse_um"), "o-", ms=3, label="RMSE")
    ax.plot(z, _col(rows, "bias_um"), "s--", ms=3, label="bias")
    ax.axhline(0, color="k", lw=0.6)
    _shade_range(ax, result["z_range_um"], z)
    ax.set_xlabel("true defocus (µm)")
    ax.set_ylabel("µm")
    rmse_in = result.get("rmse_in_range_um")
    ax.set_title(
        f"RMSE over the training range: {rmse_in:.2f} µm" if rmse_in is not None else "", fontsize=9
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if example:
        _show(
            axes[2],
            example["dpm"],
            f"DPM of a {example['sample']} field at z = {example['z_um']:+g} µm",
            cmap="coolwarm",
            vmin=None,
            vmax=None,
            colorbar=True,
            fig=fig,
        )
    fig.suptitle(f"Defocus maps of uniformly defocused fields ({result['figure']})", fontsize=10)
    fig.tight_layout()
    finish_figure(fig, result, path)


# The figure of each analysis, by its name (focuskit.report.save_analysis draws it).
PLOTS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "refocus-quality": _plot_refocus_quality,
    "training-range": _plot_training_range,
    "bead-fwhm": _plot_bead_fwhm,
    "tilted-sample": _plot_tilted,
    "nonuniform-defocus": _plot_nonuniform,
    "dpm-uniform": _plot_dpm_uniform,
}

__all__ = [
    "PLOTS",
    "analyze_bead_fwhm",
    "analyze_dpm_uniform",
    "analyze_nonuniform_defocus",
    "analyze_refocus_quality",
    "analyze_tilted_sample",
    "analyze_training_range",
    "default_shapes",
    "image_from_json",
]
