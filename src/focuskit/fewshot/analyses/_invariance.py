"""Shajkofci & Liebling (DeepFocus) §3.1–3.2, Table 1 and Fig. 3, on simulated stacks.

How sample-invariant and how depth-informative is a focus score? Many different in-focus
fluorescence fields (:func:`invariance_samples`) are each rendered once as a noisy stack
over ±120 µm (132 planes, the paper's synthetic set) with the ``deepfocus-10x`` preset
(10×/0.3, :func:`render_invariance_stack`); every scorer scores every plane.

Scores are *blur* scores (lower = sharper), the DeepFocus convention; a classic focus
measure (larger = sharper) is negated (:func:`classic_scorers`). Per sample and scorer the
curve ``b(z)`` is normalized to [0, 1] with 0 the sharpest and 1 the blurriest value of
that curve (the paper's scale, §3.1) and referred to the true focus (z = 0 here: curves
are *not* shifted to their own minimum, so a scorer whose minimum wanders pays for it).
From the N normalized curves (:func:`invariance_statistics`):

- ``sigma`` (Table 1's σ): the across-sample SD (population, ddof = 0) at each plane,
  averaged over the planes with |z| ≤ ``sd_range_um`` (50 µm: the paper's "100 µm range").
- ``entropy`` (Table 1's H): the paper's formula over all planes (§3.2)
  ``H = −Σ_{b∈B, z∈Z} p(b|z) · ln( p(b|z) / Σ_{z_i} p(b|z_i) )``, with ``p(b|z)`` the
  fraction of samples whose normalized score at plane z falls in bin b of ``bins`` equal
  bins on [0, 1] (natural log, 0·ln 0 = 0). With z uniform this is ``|Z| · H(Z|B)``: it
  is 0 when the bin determines the plane and ``|Z|·ln|Z|`` (its maximum) when the score
  says nothing about z. ``entropy_rel = H / (|Z| ln|Z|)`` ∈ [0, 1] is comparable across
  grids. A blur score is even in z (it cannot tell above from below focus), so over
  signed z ``H(Z|B) ≥ ln 2`` for any scorer whose curve is symmetric;
  ``entropy_dist_rel`` is the same relative entropy with Z the distance |z| (planes at ±z
  pooled), the reading of "axial distances" in §3.2.
- ``informative_um`` / ``informative_dof``: the depth-informative range (§3.2, "retained
  depth information for a range of 120 µm … 11 times the DOF"; "they reach a value that
  does no longer vary as the position is increased further"): the widest interval around
  focus over which the mean normalized score can still be told from its value at the far
  end of that side of the range — the band mean ± SD at z does not overlap the band at the
  end, ``m_end − m(z) > s(z) + s_end``. On each side the interval runs outward through
  consecutive passing planes from the first plane at |z| ≥ DOF/2 (inside the DOF the
  image is in focus anyway); a side whose first plane fails contributes 0. DOF from
  ``Optics.depth_of_field_um`` (7.9 µm for 10×/0.3 at 520 nm with the preset's camera;
  the paper quotes 10.7 µm).
- ``min_z_um``: mean (over samples) z of each curve's minimum — the bias of the score's
  best plane from the true focus.

The paper's H values (1.6–44 for 132 planes) are far below the ln 2·132 ≈ 91 floor that
its formula has for any symmetric curve over signed z, so it must have binned or counted
differently (not stated); compare rankings, not values. The CNN scorer was trained on
other images: the skimage fields used here (coins, cell, retina, hubble_deep_field,
clock, page) are held out from its training.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.fewshot._data import HELD_OUT_IMAGES  # the skimage images the blur CNN never saw
from focuskit.optics import Optics, get_preset
from focuskit.report import finish_figure, pyplot
from focuskit.simulate import (
    Sample,
    beads,
    fluorescent_tissue,
    from_image,
    picture,
    plan_render,
    render_stack,
)

PRESET = "deepfocus-10x"
FIGURE = "Shajkofci & Liebling 2020, Table 1 and Fig. 3 (§3.1–3.2)"
DEFAULT_CLASSIC = ("hpf", "tenengrad", "lapv", "ewc", "sml", "ws")
SAMPLE_KINDS = ("fluorescent-tissue", "beads", "image")

Scorer = Callable[[np.ndarray], float]
StackProgress = Callable[[int, int], None]


def default_z_um(planes: int = 132, z_max_um: float = 120.0) -> np.ndarray:
    """The paper's synthetic grid: ``planes`` points evenly over [−z_max, +z_max] µm.

    Parameters
    ----------
    planes : int
        Number of planes (≥ 3; the paper's synthetic set has 132).
    z_max_um : float
        Half range (µm, > 0).

    Returns
    -------
    z_um : ndarray
        (planes,) z from focus (µm).

    Raises
    ------
    ConfigError
        When ``planes`` < 3 or ``z_max_um`` is not a positive distance.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    if planes < 3:
        raise ConfigError(f"need at least 3 planes, got {planes} — give more planes")
    if not (math.isfinite(z_max_um) and z_max_um > 0):
        raise ConfigError(f"z max must be a positive distance in µm, got {z_max_um} — e.g. 120")
    return np.linspace(-z_max_um, z_max_um, int(planes))


# --------------------------------------------------------------------------- samples


@functools.lru_cache(maxsize=len(HELD_OUT_IMAGES))
def _skimage_image(name: str) -> np.ndarray:
    """A held-out skimage.data image as grey float32 in [0, 1] (retina: green channel)."""
    if name not in HELD_OUT_IMAGES:
        raise ConfigError(
            f"image {name!r} is not one of the held-out images: {', '.join(HELD_OUT_IMAGES)}"
        )
    img = picture(name, channel=1 if name == "retina" else None)
    if name == "retina":
        h, w = img.shape
        img = img[
            int(h * 0.2) : int(h * 0.8), int(w * 0.2) : int(w * 0.8)
        ]  # inside the black border
    lo, hi = float(img.min()), float(img.max())
    out = ((img - lo) / (hi - lo)).astype(np.float32)
    out.flags.writeable = False
    return out


def _image_density(
    name: str, shape: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """A random view of a held-out image: rotation, flip, zoom, crop,
    inversion, gamma, background."""
    from scipy import ndimage

    src = _skimage_image(name)
    need = max(shape) / min(src.shape)  # zoom at which the view's side fits in the image
    zmin, zmax = max(0.5, need), max(2.0, 1.5 * need)
    zoom = float(np.exp(rng.uniform(np.log(zmin), np.log(zmax))))
    angle = float(rng.uniform(0, 360))
    flip = bool(rng.integers(2))
    invert = bool(rng.integers(2))
    gamma = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    background = float(rng.uniform(0.0, 0.1))
    if zoom < 1:  # anti-alias before shrinking
        src = ndimage.gaussian_filter(src, 0.5 / zoom)
    half = np.array(shape, dtype=np.float64) / zoom / 2  # the view's half-size in source pixels
    spare = np.maximum(np.array(src.shape) / 2 - half, 0)
    centre = np.array(src.shape, dtype=np.float64) / 2 + rng.uniform(-1, 1, 2) * spare
    th = math.radians(angle)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]) / zoom
    if flip:
        rot = rot @ np.diag([1.0, -1.0])
    out_centre = (np.array(shape, dtype=np.float64) - 1) / 2
    offset = centre - rot @ out_centre
    view = ndimage.affine_transform(
        src, rot, offset=offset, output_shape=shape, order=3, mode="reflect"
    )
    view = np.clip(view, 0.0, 1.0)
    if invert:
        view = 1.0 - view
    density = background + (1.0 - background) * view**gamma
    params = {
        "image": name,
        "zoom": round(zoom, 4),
        "rotation_deg": round(angle, 2),
        "flip": flip,
        "invert": invert,
        "gamma": round(gamma, 3),
        "background": round(background, 4),
    }
    return density.astype(np.float32), params


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def invariance_sample(
    kind: str, index: int, shape: tuple[int, int], px: float, seed: int
) -> tuple[str, Sample]:
    """In-focus fluorescence sample ``index`` of kind ``kind``, reproducible from ``(seed, index)``.

    Fluorescent tissue of random density and content, beads of random size and density, or a
    random view of a picture the blur CNN never saw; returns (label, sample).

    Parameters
    ----------
    kind : str
        ``"fluorescent-tissue"``, ``"beads"`` or ``"image"``.
    index : int
        Sample number (also picks the held-out picture of an ``image`` sample).
    shape : (int, int)
        Sample grid (pixels).
    px : float
        Sample pixel size (µm).
    seed : int
        Seed; the sample depends only on ``(seed, index)``.

    Returns
    -------
    label : str
        ``kind``, or ``"image:<name>"`` for a picture.
    sample : Sample
        The in-focus fluorescence sample.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    rng = np.random.default_rng([int(seed), int(index), 0xDF])
    sub_seed = int(rng.integers(0, 2**31 - 1))
    if kind == "fluorescent-tissue":
        s = fluorescent_tissue(
            shape,
            px,
            density=float(rng.uniform(0.2, 0.85)),
            filament_um_per_100um2=float(rng.uniform(0.0, 30.0)),
            puncta_per_100um2=float(rng.uniform(0.0, 10.0)),
            background=float(rng.uniform(0.0, 0.1)),
            seed=sub_seed,
        )
        return kind, s
    if kind == "beads":
        s = beads(
            shape,
            px,
            density_per_100um2=_log_uniform(rng, 0.2, 5.0),
            diameter_um=_log_uniform(rng, 0.1, 1.0),
            seed=sub_seed,
        )
        if not np.any(s.values > 0):  # a field without a bead: add one more bead's worth
            s = beads(shape, px, density_per_100um2=5.0, seed=sub_seed)
        return kind, s
    name = HELD_OUT_IMAGES[(index // len(SAMPLE_KINDS)) % len(HELD_OUT_IMAGES)]
    density, params = _image_density(name, shape, rng)
    s = from_image(density, px, as_="fluorescence", description={**params, "seed": sub_seed})
    return f"image:{name}", s


def invariance_samples(
    n: int,
    *,
    seed: int = 0,
    size: int = 256,
    z_um: Sequence[float] | np.ndarray | None = None,
    preset: str = PRESET,
) -> Iterator[tuple[str, Sample]]:
    """``n`` diverse in-focus fluorescence samples, lazily: ``(label, Sample)``.

    In turn fluorescent tissue (random density, filaments, puncta, background), beads
    (random density 0.2–5 per 100 µm², diameter 0.1–1 µm) and a random view of a held-out
    skimage image (:data:`HELD_OUT_IMAGES`, cycled) used as emitter density: random
    rotation, flip, zoom (log-uniform; never smaller than the image allows), crop,
    inversion, gamma 0.6–1.6 and background 0–10 %. Sample ``i`` depends only on
    ``(seed, i)``. Each is generated on the padded render grid of a ``size``² field over
    ``z_um`` (default :func:`default_z_um`), so :func:`render_invariance_stack` needs no
    padding.

    Parameters
    ----------
    n : int
        Number of samples (≥ 1).
    seed : int
        Seed.
    size : int
        Image side of the field (pixels).
    z_um : array_like, optional
        Planes the samples will be imaged at (µm from focus).
    preset : str
        A fluorescence microscope preset.

    Returns
    -------
    samples : iterator of (str, Sample)
        ``(label, sample)`` pairs, made one at a time.

    Raises
    ------
    ConfigError
        When ``n`` is not a positive integer or the preset is not fluorescence.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    optics = get_preset(preset).optics
    if not optics.is_fluorescence:
        raise ConfigError(f"preset {preset!r} is not a fluorescence microscope — use {PRESET!r}")
    z = default_z_um() if z_um is None else np.asarray(z_um, dtype=np.float64)
    plan = plan_render(optics, z, (int(size), int(size)))
    px = optics.pixel_size_um / plan.oversampling
    for i in range(int(n)):
        yield invariance_sample(
            SAMPLE_KINDS[i % len(SAMPLE_KINDS)], i, plan.render_shape, px, int(seed)
        )


def render_invariance_stack(
    sample: Sample,
    optics: Optics,
    z_um: Sequence[float] | np.ndarray | None = None,
    size: int = 256,
    *,
    photons: float | None = 1000.0,
    seed: int | None = 0,
) -> np.ndarray:
    """The sample, in focus at z = 0, imaged at ``z_um``: float32 (Z, size, size).

    Camera counts (ADU, offset included) of ``optics.camera`` at ``photons`` mean
    photo-electrons per pixel over the stack (Poisson + read noise, ``apply_camera``);
    ``photons=None``: noise-free intensities. Default z: :func:`default_z_um`.

    Parameters
    ----------
    sample : Sample
        A fluorescence sample (e.g. from :func:`invariance_samples`).
    optics : Optics
        The microscope.
    z_um : array_like, optional
        Planes (µm from focus).
    size : int
        Image side (pixels, ≥ 16).
    photons : float or None
        Mean photo-electrons per pixel; None: no noise.
    seed : int or None
        Noise seed.

    Returns
    -------
    stack : ndarray
        (Z, size, size) float32 camera counts (ADU) or intensities.

    Raises
    ------
    ConfigError
        When the sample is not fluorescence or ``size`` < 16.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    if sample.kind != "fluorescence":
        raise ConfigError("the invariance analysis images fluorescence; give a fluorescence sample")
    z = default_z_um() if z_um is None else np.asarray(z_um, dtype=np.float64)
    if size < 16:
        raise ConfigError(f"image size must be ≥ 16 pixels, got {size}")
    stack = render_stack(
        sample.values,
        optics,
        z,
        shape=(int(size), int(size)),
        sample_pixel_size_um=sample.pixel_size_um,
        photons=photons,
        seed=seed,
    )
    return np.asarray(stack.data, dtype=np.float32)


# --------------------------------------------------------------------------- scorers


class MeasureBlur:
    """A classic focus measure as a blur score: ``−focuskit.measures.score(image, name)``.

    Callable on one image (→ float); :meth:`score_stack` scores a (Z, Y, X) stack at once.

    Parameters
    ----------
    name : str
        A focus measure that needs no optics (e.g. one of :data:`DEFAULT_CLASSIC`).

    Raises
    ------
    ConfigError
        When the measure needs the optics.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """

    def __init__(self, name: str) -> None:
        from focuskit.measures import get_measure

        measure = get_measure(name)
        if measure.needs_optics:
            raise ConfigError(
                f"measure {name!r} needs the optics; choose one of {', '.join(DEFAULT_CLASSIC)}"
            )
        self.name = name

    def __call__(self, image: np.ndarray) -> float:
        from focuskit.measures import score

        return -float(score(image, self.name))

    def score_stack(self, stack: np.ndarray) -> np.ndarray:
        """The blur score of every plane of a stack.

        Parameters
        ----------
        stack : ndarray
            (Z, Y, X) images.

        Returns
        -------
        scores : ndarray
            (Z,) negated focus measure (lower = sharper).
        """
        from focuskit.measures import score

        return -np.asarray(score(stack, self.name), dtype=np.float64)

    def __repr__(self) -> str:
        return f"MeasureBlur({self.name!r})"


class ModelBlur:
    """A patch blur model (:class:`focuskit.fewshot.BlurScorer`-like) as a whole-image blur score.

    Callable on one image: ``model.score(image)`` (mean over its patches).
    :meth:`score_stack` cuts the patches of every plane (``model.patches``) and scores
    them in one batched call (``model.score_patches``): the same numbers, fewer calls.

    Parameters
    ----------
    model : BlurScorer
        Anything with ``score``, ``patches`` and ``score_patches`` methods.

    Raises
    ------
    ConfigError
        When one of those methods is missing.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """

    def __init__(self, model: Any) -> None:
        for attr in ("score", "patches", "score_patches"):
            if not callable(getattr(model, attr, None)):
                raise ConfigError(
                    f"the blur model has no {attr}() — give a focuskit.fewshot.BlurScorer"
                )
        self.model = model

    def __call__(self, image: np.ndarray) -> float:
        return float(self.model.score(image))

    def score_stack(self, stack: np.ndarray) -> np.ndarray:
        """The mean patch blur score of every plane of a stack, in one batched call.

        Parameters
        ----------
        stack : ndarray
            (Z, Y, X) images, each at least one model patch.

        Returns
        -------
        scores : ndarray
            (Z,) mean ``W`` over each plane's patches (waves, lower = sharper).

        Raises
        ------
        ConfigError
            When an image is smaller than one model patch.
        """
        cut = [self.model.patches(plane)[0] for plane in stack]
        counts = [len(c) for c in cut]
        if not all(counts):
            raise ConfigError("an image is smaller than one model patch — use larger images")
        values = np.asarray(self.model.score_patches(np.concatenate(cut)), dtype=np.float64).ravel()
        return np.array([part.mean() for part in np.split(values, np.cumsum(counts)[:-1])])

    def __repr__(self) -> str:
        return f"ModelBlur({self.model!r})"


def classic_scorers(names: Sequence[str] = DEFAULT_CLASSIC) -> dict[str, MeasureBlur]:
    """Classic focus measures (Table 1's rows) as blur scores (lower = sharper), by name.

    Parameters
    ----------
    names : sequence of str or str
        Focus measure names (default :data:`DEFAULT_CLASSIC`).

    Returns
    -------
    scorers : dict of str to MeasureBlur

    Raises
    ------
    ConfigError
        When no name is given or a measure needs the optics.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ConfigError("give at least one focus measure name, e.g. tenengrad")
    return {name: MeasureBlur(name) for name in names}


def _score_stack(name: str, scorer: Scorer, stack: np.ndarray) -> np.ndarray:
    batch = getattr(scorer, "score_stack", None)
    values = (
        np.asarray(batch(stack), dtype=np.float64)
        if callable(batch)
        else np.array([float(scorer(plane)) for plane in stack])
    )
    if values.shape != (len(stack),) or not np.all(np.isfinite(values)):
        raise ConfigError(
            f"scorer {name!r} returned non-finite or misshaped scores — check it on a plain image"
        )
    return values


# --------------------------------------------------------------------------- statistics


def normalize_curves(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row min–max scaled to [0, 1], 0 = sharpest (lowest blur), 1 = blurriest.

    Returns ``(normalized, flat)``; a flat row (max = min: no information) becomes all 1,
    and ``flat`` marks it.

    Parameters
    ----------
    curves : ndarray
        (samples, planes) raw blur scores, finite, ≥ 2 planes.

    Returns
    -------
    normalized : ndarray
        (samples, planes) curves scaled to [0, 1].
    flat : ndarray
        (samples,) bool: rows without information.

    Raises
    ------
    ConfigError
        When ``curves`` is not 2-D with ≥ 2 planes or holds NaN/inf.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1 (normalized scores).
    """
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] < 2:
        raise ConfigError(f"curves must be (samples, planes) with ≥ 2 planes, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ConfigError("curves contain NaN or inf — check the scorer")
    lo, hi = c.min(axis=1, keepdims=True), c.max(axis=1, keepdims=True)
    span = hi - lo
    flat = span[:, 0] <= 1e-12 * np.maximum(np.abs(hi[:, 0]), 1.0)
    out = np.where(flat[:, None], 1.0, (c - lo) / np.where(flat[:, None], 1.0, span))
    return out, flat


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ConfigError(f"bins must be an integer ≥ 2, got {bins!r}")
    return int(bins)


def conditional_entropy(
    normalized: np.ndarray, bins: int = 20, *, groups: np.ndarray | None = None
) -> float:
    """The paper's H(B|Z) (§3.2) of normalized scores (samples, planes), natural log.

    ``H = −Σ_{b,z} p(b|z)·ln( p(b|z) / Σ_{z_i} p(b|z_i) )`` with ``p(b|z)`` the fraction of
    samples in bin ``b`` of ``bins`` equal bins on [0, 1] at plane ``z`` (1.0 in the last
    bin). ``groups`` (one label per plane) pools planes into one z value each (e.g. |z|).
    Range [0, |Z|·ln|Z|].

    Parameters
    ----------
    normalized : ndarray
        (samples, planes) scores in [0, 1] (:func:`normalize_curves`).
    bins : int
        Number of equal bins on [0, 1] (≥ 2).
    groups : ndarray, optional
        One label per plane; planes with one label count as one z.

    Returns
    -------
    entropy : float
        H (nats), ≥ 0.

    Raises
    ------
    ConfigError
        When ``normalized`` is not 2-D, ``bins`` < 2, or there is not one group per plane.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.2 and Table 1 (H).
    """
    v = np.asarray(normalized, dtype=np.float64)
    if v.ndim != 2 or v.size == 0:
        raise ConfigError(f"normalized scores must be (samples, planes), got shape {v.shape}")
    nb = _check_bins(bins)
    idx = np.clip(np.floor(v * nb).astype(np.int64), 0, nb - 1)
    if groups is None:
        keys = np.arange(v.shape[1])
    else:
        keys = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
        if keys.size != v.shape[1]:
            raise ConfigError(f"need one group per plane: {v.shape[1]} planes, {keys.size} groups")
    nz = int(keys.max()) + 1
    counts = np.zeros((nz, nb))
    np.add.at(counts, (np.broadcast_to(keys, v.shape).ravel(), idx.ravel()), 1.0)
    p = counts / counts.sum(axis=1, keepdims=True)  # p(b|z)
    total = p.sum(axis=0, keepdims=True)  # Σ_zi p(b|zi)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / total), 0.0)
    return float(max(-terms.sum(), 0.0))


def informative_range(
    z_um: np.ndarray, mean: np.ndarray, sd: np.ndarray, dof_um: float
) -> tuple[float, float]:
    """(lo, hi) µm around focus where the mean score is still distinguishable from its plateau.

    ``m_end − m(z) > s(z) + s_end`` with ``end`` that side's outermost plane.

    On each side: from the first plane at |z| ≥ DOF/2 outwards, the last plane of the
    unbroken run of passing planes (0 if the first fails).

    Parameters
    ----------
    z_um : ndarray
        (planes,) z from focus, strictly increasing (µm).
    mean : ndarray
        (planes,) mean normalized score.
    sd : ndarray
        (planes,) its SD across samples.
    dof_um : float
        Depth of field (µm, > 0).

    Returns
    -------
    lo : float
        Lower edge of the informative range (µm, ≤ 0).
    hi : float
        Upper edge (µm, ≥ 0).

    Raises
    ------
    ConfigError
        On mismatched or too short arrays, z not increasing, or a DOF that is not positive.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.2 (depth-informative range).
    """
    z = np.asarray(z_um, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(sd, dtype=np.float64)
    if not (z.ndim == 1 and z.shape == m.shape == s.shape and z.size >= 3):
        raise ConfigError("z, mean and SD must be 1-D arrays of the same length (≥ 3)")
    if np.any(np.diff(z) <= 0):
        raise ConfigError("z positions must increase strictly")
    if not (math.isfinite(dof_um) and dof_um > 0):
        raise ConfigError(f"DOF must be a positive length in µm, got {dof_um}")
    half = dof_um / 2

    def edge(order: np.ndarray) -> float:
        if order.size == 0:
            return 0.0
        end = order[-1]
        last = 0.0
        for j in order:
            if not m[end] - m[j] > s[j] + s[end]:
                break
            last = float(z[j])
        return last

    hi = edge(np.flatnonzero(z >= half))
    lo = edge(np.flatnonzero(z <= -half)[::-1])
    return lo, hi


def invariance_statistics(
    z_um: Sequence[float] | np.ndarray,
    curves: np.ndarray,
    *,
    dof_um: float,
    sd_range_um: float = 50.0,
    bins: int = 20,
) -> dict[str, Any]:
    """Table 1's numbers from raw blur-score curves (samples, planes), z relative to focus.

    Returns ``sigma``, ``entropy`` (+ ``entropy_max``, ``entropy_rel``,
    ``entropy_dist_rel``), ``informative_lo_um``/``hi_um``/``um``/``dof``, ``min_z_um``,
    ``min_z_sd_um``, ``flat`` (count) and the arrays ``normalized``, ``mean``, ``sd``.
    See the module docstring for the definitions.

    Parameters
    ----------
    z_um : array_like
        (planes,) z from the true focus (µm).
    curves : ndarray
        (samples, planes) raw blur scores (lower = sharper).
    dof_um : float
        Depth of field (µm).
    sd_range_um : float
        ``sigma`` averages the SD over |z| ≤ this (µm; the paper's 100 µm range).
    bins : int
        Bins of the conditional entropy.

    Returns
    -------
    stats : dict
        The numbers above (lengths in µm, entropies in nats) and the arrays.

    Raises
    ------
    ConfigError
        When ``curves`` does not match ``z_um``, or no plane lies within ``sd_range_um``.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    z = np.asarray(z_um, dtype=np.float64)
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != z.size:
        raise ConfigError(f"curves must be (samples, {z.size} planes), got shape {c.shape}")
    if not (math.isfinite(sd_range_um) and sd_range_um >= 0):
        raise ConfigError(f"SD range must be ≥ 0 µm, got {sd_range_um}")
    window = np.abs(z) <= sd_range_um + 1e-9
    if not window.any():
        raise ConfigError(f"no plane within ±{sd_range_um} µm of focus — widen the SD range")
    norm, flat = normalize_curves(c)
    mean, sd = norm.mean(axis=0), norm.std(axis=0)
    nz = z.size
    h = conditional_entropy(norm, bins)
    h_max = nz * math.log(nz)
    dist = np.round(np.abs(z), 6)
    nd = np.unique(dist).size
    h_dist = conditional_entropy(norm, bins, groups=dist)
    lo, hi = informative_range(z, mean, sd, dof_um)
    zmin = z[np.argmin(c, axis=1)]
    return {
        "sigma": float(sd[window].mean()),
        "entropy": h,
        "entropy_max": h_max,
        "entropy_rel": h / h_max,
        "entropy_dist_rel": h_dist / (nd * math.log(nd)) if nd > 1 else 0.0,
        "informative_lo_um": lo,
        "informative_hi_um": hi,
        "informative_um": hi - lo,
        "informative_dof": (hi - lo) / dof_um,
        "min_z_um": float(zmin.mean()),
        "min_z_sd_um": float(zmin.std()),
        "flat": int(flat.sum()),
        "normalized": norm,
        "mean": mean,
        "sd": sd,
    }


# --------------------------------------------------------------------------- analysis


def _photon_draw(
    photons: float | tuple[float, float] | None, rng: np.random.Generator
) -> float | None:
    if photons is None:
        return None
    if isinstance(photons, (int, float)):
        return float(photons)
    lo, hi = (float(p) for p in photons)
    return _log_uniform(rng, lo, hi) if hi > lo else lo


def _check_photons(photons: Any) -> None:
    if photons is None:
        return
    values = [photons] if isinstance(photons, (int, float)) else list(photons)
    if not (
        1 <= len(values) <= 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)
        and values[0] <= values[-1]
    ):
        raise ConfigError(f"photons must be a number > 0 or a (min, max) range, got {photons!r}")


COLUMNS = [
    "score",
    "sigma",
    "entropy",
    "entropy_rel",
    "entropy_dist_rel",
    "informative_um",
    "informative_dof",
    "min_z_um",
]


def analyze_score_invariance(
    scorers: Mapping[str, Scorer],
    *,
    n_samples: int = 100,
    z_um: Sequence[float] | np.ndarray | None = None,
    size: int = 256,
    seed: int = 0,
    photons: float | tuple[float, float] | None = (200.0, 2000.0),
    sd_range_um: float = 50.0,
    bins: int = 20,
    examples: int = 6,
    preset: str = PRESET,
    progress: StackProgress | None = None,
) -> dict[str, Any]:
    """Table 1 and Fig. 3: SD, conditional entropy and informative range of each blur score.

    Every sample of :func:`invariance_samples` is rendered once
    (:func:`render_invariance_stack`, ``photons`` per pixel — a number, or a (min, max)
    range drawn log-uniformly per sample; the noise seed depends on ``(seed, i)``) and
    every scorer (image → float, lower = sharper; one with a ``score_stack(stack)`` method
    scores the stack at once) scores every plane. Statistics per scorer:
    :func:`invariance_statistics`. ``progress(done, total)`` after each sample.
    Returns the same JSON-able shape as the other analyses (``analysis``, ``figure``,
    ``note``, ``config``, ``columns``, ``rows``, ``seconds``) plus ``z_um``, ``dof_um``,
    ``samples`` (labels) and ``curves`` (per scorer: ``mean``, ``sd``, ``examples`` — the
    first ``examples`` normalized curves).

    Parameters
    ----------
    scorers : mapping of str to callable
        Name → image → blur score (e.g. :func:`classic_scorers`, :class:`ModelBlur`).
    n_samples : int
        Number of samples (≥ 1).
    z_um : array_like, optional
        Planes, ≥ 3, strictly increasing, spanning 0 (µm from focus; default
        :func:`default_z_um`).
    size : int
        Image side (pixels).
    seed : int
        Seed of the samples and the noise.
    photons : float or (float, float) or None
        Mean photo-electrons per pixel, a (min, max) range, or None for no noise.
    sd_range_um : float
        ``sigma`` over |z| ≤ this (µm).
    bins : int
        Bins of the conditional entropy (≥ 2).
    examples : int
        Normalized curves kept per scorer for the figure.
    preset : str
        A fluorescence microscope preset.
    progress : callable, optional
        ``progress(done, total)`` after each sample.

    Returns
    -------
    result : dict
        The analysis result described above (``analysis`` = "blur-invariance").

    Raises
    ------
    ConfigError
        On no scorer, a scorer that is not callable or returns non-finite scores, or an
        invalid number of samples, photons, bins or z grid.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1–3.2, Table 1 and Fig. 3 (sample invariance).
    """
    t0 = time.perf_counter()
    if not scorers:
        raise ConfigError("give at least one scorer (name → image → blur score)")
    for name, fn in scorers.items():
        if not callable(fn):
            raise ConfigError(f"scorer {name!r} is not callable — give a function image → float")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ConfigError(f"n_samples must be a positive integer, got {n_samples!r}")
    _check_photons(photons)
    bins = _check_bins(bins)
    z = default_z_um() if z_um is None else np.asarray(z_um, dtype=np.float64).ravel()
    if z.size < 3 or np.any(np.diff(z) <= 0) or not np.all(np.isfinite(z)):
        raise ConfigError(
            "z positions must be ≥ 3 finite values increasing strictly (µm from focus)"
        )
    if not (z[0] < 0 < z[-1]):
        raise ConfigError(
            f"the z range {z[0]:g}…{z[-1]:g} µm must span the focus (0) — e.g. −120…120"
        )
    p = get_preset(preset)
    optics = p.optics
    dof = optics.depth_of_field_um
    names = list(scorers)
    curves = {name: np.empty((n_samples, z.size)) for name in names}
    labels: list[str] = []
    exposure: list[float | None] = []
    for i, (label, sample) in enumerate(
        invariance_samples(n_samples, seed=seed, size=size, z_um=z, preset=preset)
    ):
        rng = np.random.default_rng([int(seed), i, 0x5C])
        ph = _photon_draw(photons, rng)
        stack = render_invariance_stack(
            sample, optics, z, size, photons=ph, seed=int(rng.integers(0, 2**31 - 1))
        )
        for name in names:
            curves[name][i] = _score_stack(name, scorers[name], stack)
        labels.append(label)
        exposure.append(None if ph is None else round(ph, 1))
        if progress is not None:
            progress(i + 1, n_samples)
    rows, out_curves = [], {}
    k = max(0, min(int(examples), n_samples))
    for name in names:
        st = invariance_statistics(z, curves[name], dof_um=dof, sd_range_um=sd_range_um, bins=bins)
        rows.append(
            {
                "score": name,
                **{c: st[c] for c in COLUMNS[1:]},
                "min_z_sd_um": st["min_z_sd_um"],
                "entropy_max": st["entropy_max"],
                "informative_lo_um": st["informative_lo_um"],
                "informative_hi_um": st["informative_hi_um"],
                "flat_curves": st["flat"],
            }
        )
        out_curves[name] = {
            "mean": _r(st["mean"]),
            "sd": _r(st["sd"]),
            "examples": [_r(c) for c in st["normalized"][:k]],
        }
    counts = {
        kind: sum(1 for lab in labels if lab == kind or lab.startswith(kind + ":"))
        for kind in SAMPLE_KINDS
    }
    photons_text = (
        "noise-free"
        if photons is None
        else f"{photons:g} e⁻/pixel"
        if isinstance(photons, (int, float))
        else f"{photons[0]:g}–{photons[-1]:g} e⁻/pixel (log-uniform per sample)"
    )
    note = (
        f"simulated {p.name} ({optics.objective.magnification:g}×/{optics.na:g}, λ "
        f"{optics.wavelength_um:g} µm, DOF {dof:.2f} µm): {n_samples} in-focus fluorescence fields "
        f"({counts['fluorescent-tissue']} tissue, {counts['beads']} beads, {counts['image']} "
        f"held-out skimage images), {size}² pixels, {z.size} planes {z[0]:g}…{z[-1]:g} µm, "
        f"{photons_text}; curves normalized per sample (0 sharpest, 1 blurriest), z from the true "
        f"focus; sigma: mean across-sample SD for |z| ≤ {sd_range_um:g} µm; entropy: the paper's "
        f"H(B|Z) (natural log, {bins} bins; max |Z|·ln|Z| = {z.size * math.log(z.size):.0f}), "
        "entropy_rel = H/max, entropy_dist_rel the same over |z|; informative: width where the "
        "mean ± SD band stays clear of its band at the end of the range. The paper used 1000 "
        "Gaussian-blurred images: compare rankings, not values"
    )
    config = {
        "preset": p.name,
        "n_samples": n_samples,
        "size": size,
        "planes": int(z.size),
        "z_min_um": float(z[0]),
        "z_max_um": float(z[-1]),
        "seed": seed,
        "photons": photons
        if photons is None or isinstance(photons, (int, float))
        else list(photons),
        "sd_range_um": sd_range_um,
        "bins": bins,
        "scorers": {n: _describe(s) for n, s in scorers.items()},
    }
    return {
        "analysis": "blur-invariance",
        "figure": FIGURE,
        "note": note,
        "config": config,
        "columns": list(COLUMNS),
        "rows": [{k2: _round(v) for k2, v in r.items()} for r in rows],
        "seconds": round(time.perf_counter() - t0, 1),
        "z_um": _r(z),
        "dof_um": dof,
        "samples": [
            {"label": lab, "photons": ph} for lab, ph in zip(labels, exposure, strict=True)
        ],
        "curves": out_curves,
    }


def _describe(scorer: Any) -> str:
    text = (
        repr(scorer)
        if isinstance(scorer, (MeasureBlur, ModelBlur))
        else getattr(scorer, "__qualname__", type(scorer).__name__)
    )
    return str(text)[:200]


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 5) for v in np.asarray(a).ravel()]


def _round(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


# --------------------------------------------------------------------------- figure


def score_invariance_plot(result: dict[str, Any], path: str | Path) -> Path:
    """Fig. 3: per scorer, mean ± SD of the normalized curves vs z, a few samples faint.

    Parameters
    ----------
    result : dict
        The output of :func:`analyze_score_invariance`.
    path : str or Path
        Image file to write.

    Returns
    -------
    path : Path
        The file written.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §3.1 and Fig. 3.
    """
    plt = pyplot()
    z = np.asarray(result["z_um"])
    rows = {r["score"]: r for r in result["rows"]}
    names = list(result["curves"])
    cols = min(4, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(3.4 * cols, 2.8 * nrows), squeeze=False, sharex=True, sharey=True
    )
    sd_range = result["config"]["sd_range_um"]
    for ax, name in zip(axes.ravel(), names, strict=False):
        c, r = result["curves"][name], rows[name]
        mean, sd = np.asarray(c["mean"]), np.asarray(c["sd"])
        for ex in c["examples"]:
            ax.plot(z, ex, color="0.55", linewidth=0.6, alpha=0.5)
        ax.fill_between(
            z, mean - sd, mean + sd, color="tab:blue", alpha=0.25, linewidth=0, label="mean ± SD"
        )
        ax.plot(z, mean, color="tab:blue", linewidth=1.4)
        ax.axvspan(-sd_range, sd_range, color="tab:orange", alpha=0.06, linewidth=0)
        for edge in (r["informative_lo_um"], r["informative_hi_um"]):
            if edge:
                ax.axvline(edge, color="tab:red", linestyle="--", linewidth=0.8)
        ax.set_title(
            f"{name}\nσ {r['sigma']:.3f}  H {r['entropy']:.0f} ({r['entropy_rel']:.2f})  "
            f"range {r['informative_dof']:.1f} DOF",
            fontsize=8,
        )
        ax.set_ylim(-0.15, 1.15)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("z from focus (µm)")
    for ax in axes[:, 0]:
        ax.set_ylabel("normalized blur (0 sharpest)")
    fig.suptitle(
        f"Blur-score invariance (cf. DeepFocus Fig. 3): {result['config']['n_samples']} samples; "
        f"grey: individual samples; red dashes: informative range; shaded: |z| ≤ {sd_range:g} µm",
        fontsize=9,
    )
    fig.tight_layout()
    return finish_figure(fig, result, path)


__all__ = [
    "DEFAULT_CLASSIC",
    "HELD_OUT_IMAGES",
    "MeasureBlur",
    "ModelBlur",
    "analyze_score_invariance",
    "classic_scorers",
    "conditional_entropy",
    "default_z_um",
    "informative_range",
    "invariance_sample",
    "invariance_samples",
    "invariance_statistics",
    "normalize_curves",
    "render_invariance_stack",
    "score_invariance_plot",
]
