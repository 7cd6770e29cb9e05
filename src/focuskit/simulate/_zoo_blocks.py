"""Building blocks of the sample families: spots, outlined objects, chains, pictures.

All work in micrometres on a periodic grid (objects wrap around the edges, so FFT imaging
has no seams) and cost little: a 1024² field renders in well under half a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from focuskit.simulate._samples import (
    _accumulate,
    _blur_um,
    _Noise,
    _outline_rho,
    _patches,
    _picture,
    _random_harmonics,
    _smoothstep,
    _splat,
)

#: 2-D projection of a uniform sphere of diameter d has per-axis rms radius d/(2√5).
SPHERE_SIGMA_PER_DIAMETER = 1 / (2 * math.sqrt(5))


def disc_area_um2(diameter_um: float) -> float:
    """Area π·d²/4 of a disc of diameter ``d`` (µm²)."""
    return math.pi / 4 * diameter_um**2


def count_for_coverage(
    rng: np.random.Generator,
    shape: tuple[int, int],
    px: float,
    coverage: float,
    mean_area_um2: float,
) -> int:
    """How many objects of mean area ``mean_area_um2`` cover about ``coverage`` of the field
    (a Poisson draw)."""
    return int(rng.poisson(coverage * shape[0] * shape[1] * px * px / mean_area_um2))


def count_per_area(
    rng: np.random.Generator, shape: tuple[int, int], px: float, per_100um2: float
) -> int:
    """How many objects at ``per_100um2`` per 100 µm² of the field (a Poisson draw)."""
    return count_for_coverage(rng, shape, px, per_100um2, 100.0)


def spots(
    shape: tuple[int, int],
    px: float,
    y_um: np.ndarray,
    x_um: np.ndarray,
    diameter_um: np.ndarray,
    weight: np.ndarray,
) -> np.ndarray:
    """Round emitters of given diameters: each sums to its weight (Gaussian of the sphere's rms).

    Emitters are grouped in size bins 50 % wide; each bin is splatted (bilinear, sub-pixel)
    and blurred in Fourier space by a Gaussian of σ = d/(2√5) (a sphere's projected
    second moment; periodic), so cost does not grow with the number of emitters.
    """
    d = np.asarray(diameter_um, np.float64)
    if d.size == 0:
        return np.zeros(shape, np.float64)
    bins = np.floor(np.log(np.maximum(d, 1e-3)) / math.log(1.5)).astype(np.int64)
    fy = sfft.fftfreq(shape[0], d=px)[:, None]
    fx = sfft.rfftfreq(shape[1], d=px)[None, :]
    f2 = fy * fy + fx * fx
    spectrum = None
    for b in np.unique(bins):
        m = bins == b
        grid = _splat(shape, px, y_um[m], x_um[m], weight[m])
        sigma = float(np.median(d[m])) * SPHERE_SIGMA_PER_DIAMETER
        spec = sfft.rfft2(grid, workers=-1)
        if sigma > 0.1 * px:
            spec *= np.exp(-2 * np.pi**2 * sigma**2 * f2)
        spectrum = spec if spectrum is None else spectrum + spec
    return np.maximum(sfft.irfft2(spectrum, s=shape, workers=-1), 0)


def outlined(
    shape: tuple[int, int],
    px: float,
    cy: np.ndarray,
    cx: np.ndarray,
    semi_a: np.ndarray,
    semi_b: np.ndarray,
    angle: np.ndarray,
    *,
    harmonics: np.ndarray | None = None,
    profile: str = "dome",
    weight: np.ndarray | None = None,
    width_um: float = 0.3,
) -> np.ndarray:
    """Irregular elliptical objects with a height profile, summed (or max) onto the grid.

    ``profile``: ``dome`` ``sqrt(1 − ρ²)`` (cells, nuclei), ``flat`` 1 inside with an
    anti-aliased one-pixel edge (patterned substrates, opaque particles), ``ring`` a
    Gaussian band of σ ``width_um`` on the outline (membranes), ``gauss``
    ``exp(−2ρ²)``. ρ is the normalized radius of :func:`_outline_rho`. Overlaps add (clip
    a ``flat`` map at 1 for the union of masks).
    """
    n = len(cy)
    out = np.zeros(shape, np.float64)
    if n == 0:
        return out
    harm = np.zeros((n, 0), complex) if harmonics is None else harmonics
    w = np.ones(n) if weight is None else np.asarray(weight, np.float64)
    pad = (3 * width_um) if profile == "ring" else px
    bound = np.maximum(semi_a, semi_b) * (1 + np.abs(harm).sum(axis=1)) + pad
    for which, dy, dx, flat in _grouped_patches(shape, px, cy, cx, bound):
        rho = _fast_rho(dy, dx, semi_a[which], semi_b[which], angle[which], harm[which], px)
        r = np.sqrt(semi_a[which] * semi_b[which]).astype(np.float32)[:, None, None]
        if profile == "dome":
            v = np.sqrt(np.maximum(1 - rho * rho, 0))
        elif profile == "flat":
            v = _smoothstep((1 - rho) * r / np.float32(px) + np.float32(0.5))
        elif profile == "ring":
            v = np.exp(-0.5 * (((rho - 1) * r) / np.float32(width_um)) ** 2)
        elif profile == "gauss":
            v = np.exp(np.float32(-2) * rho * rho)
        else:
            raise ValueError(f"unknown profile {profile!r}")
        _accumulate(out, flat, v * w[which].astype(np.float32)[:, None, None])
    return out


def _grouped_patches(
    shape: tuple[int, int], px: float, cy: np.ndarray, cx: np.ndarray, bound: np.ndarray
):
    """:func:`_patches` per size class (bounds within 1.5×), so no small object pays for a
    large patch."""
    groups = np.floor(np.log(np.maximum(bound / px, 1.0)) / math.log(1.5)).astype(np.int64)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        for which, dy, dx, flat in _patches(shape, px, cy[idx], cx[idx], bound[idx], 1 << 20):
            yield idx[which], dy, dx, flat


def _fast_rho(
    dy: np.ndarray,
    dx: np.ndarray,
    semi_a: np.ndarray,
    semi_b: np.ndarray,
    angle: np.ndarray,
    harm: np.ndarray,
    px: float,
) -> np.ndarray:
    """:func:`_outline_rho` on a grid up to 4× coarser, linearly interpolated.

    ρ is smooth (a cone-like ``|r|/R`` modulated by low harmonics), so for objects wider
    than ~8 pixels bilinear interpolation from every k-th pixel (k = R/4 px, at most 4)
    moves an edge by at most ``(k·px)²/(8R)`` ≤ 0.13 px, at a fraction of the cost.
    """
    k = int(np.clip(float(np.min(semi_b)) / px / 4, 1, 4))
    py, pxx = dy.shape[1], dx.shape[2]
    if k == 1 or min(py, pxx) < 3 * k:
        return _outline_rho(dy, dx, semi_a, semi_b, angle, harm)
    iy = np.unique(np.r_[np.arange(0, py, k), py - 1])
    ix = np.unique(np.r_[np.arange(0, pxx, k), pxx - 1])
    coarse = _outline_rho(dy[:, iy], dx[:, :, ix], semi_a, semi_b, angle, harm)

    def weights(idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        j = np.clip(np.searchsorted(idx, np.arange(n), side="right") - 1, 0, len(idx) - 2)
        f = ((np.arange(n) - idx[j]) / (idx[j + 1] - idx[j])).astype(np.float32)
        return j, j + 1, f

    j0, j1, fy = weights(iy, py)
    rows = coarse[:, j0] * (1 - fy)[None, :, None] + coarse[:, j1] * fy[None, :, None]
    i0, i1, fx = weights(ix, pxx)
    return rows[:, :, i0] * (1 - fx) + rows[:, :, i1] * fx


def random_outlines(
    rng: np.random.Generator,
    n: int,
    diameter_um: np.ndarray,
    *,
    elongation: float = 0.35,
    irregularity: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random semi-axes, orientation and outline harmonics for ``n`` objects.

    Aspect ratio ``1 + Gamma(1.5, elongation)``; harmonic amplitudes scaled by
    ``irregularity`` (0 gives ellipses).
    """
    r = np.asarray(diameter_um, np.float64) / 2
    aspect = 1.0 + rng.gamma(1.5, max(elongation, 1e-6), n)
    semi_a = r * np.sqrt(aspect)
    semi_b = r / np.sqrt(aspect)
    angle = rng.uniform(0, np.pi, n)
    harm = _random_harmonics(rng, n, tuple(irregularity * a for a in (0.12, 0.08, 0.05, 0.03)))
    return semi_a, semi_b, angle, harm


def positions(
    rng: np.random.Generator,
    extent_um: tuple[float, float],
    n: int,
    *,
    clustering: float = 0.0,
    cluster_radius_um: float = 20.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions: uniform, or a fraction ``clustering`` gathered around cluster centres.

    Clustered points are Gaussian (σ = ``cluster_radius_um``/2) around a few centres (one
    per ~8 points), wrapped into the field.
    """
    ey, ex = extent_um
    y = rng.uniform(0, ey, n)
    x = rng.uniform(0, ex, n)
    k = round(clustering * n)
    if k > 0:
        n_centres = max(1, k // 8)
        cy = rng.uniform(0, ey, n_centres)
        cx = rng.uniform(0, ex, n_centres)
        which = rng.integers(0, n_centres, k)
        y[:k] = (cy[which] + rng.normal(0, cluster_radius_um / 2, k)) % ey
        x[:k] = (cx[which] + rng.normal(0, cluster_radius_um / 2, k)) % ex
    return y, x


def chains(
    rng: np.random.Generator,
    extent_um: tuple[float, float],
    n: int,
    length_um: np.ndarray,
    persistence_um: float,
    step_um: float,
    *,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worm-like chains: points every ``step_um`` along ``n`` random curves.

    The tangent angle performs a random walk with variance ``step/persistence`` per step
    (a worm-like chain of persistence length ``persistence_um``). Returns the points'
    ``y, x`` (µm, wrapped) and the chain index of each point.
    """
    ey, ex = extent_um
    lengths = np.asarray(length_um, np.float64)
    steps = np.maximum(1, np.ceil(lengths / step_um).astype(np.int64))
    total = int(steps.sum())
    if n == 0 or total == 0:
        z = np.zeros(0)
        return z, z, np.zeros(0, np.int64)
    owner = np.repeat(np.arange(n), steps)
    first = np.concatenate([[0], np.cumsum(steps)[:-1]])
    kick = rng.normal(0, math.sqrt(step_um / persistence_um), total)
    kick[first] = rng.uniform(0, 2 * np.pi, n)
    theta = np.cumsum(kick)
    theta -= np.repeat(np.concatenate([[0], theta[first[1:] - 1]]), steps)
    dy = step_um * np.sin(theta)
    dx = step_um * np.cos(theta)
    sy = np.cumsum(dy)
    sx = np.cumsum(dx)
    base_y = np.repeat(np.concatenate([[0], sy[first[1:] - 1]]), steps)
    base_x = np.repeat(np.concatenate([[0], sx[first[1:] - 1]]), steps)
    if start is None:
        y0, x0 = rng.uniform(0, ey, n), rng.uniform(0, ex, n)
    else:
        y0, x0 = start
    y = (np.repeat(y0, steps) + sy - base_y) % ey
    x = (np.repeat(x0, steps) + sx - base_x) % ex
    return y, x, owner


def lines(
    shape: tuple[int, int],
    px: float,
    y: np.ndarray,
    x: np.ndarray,
    weight_per_um: np.ndarray | float,
    step_um: float,
    width_um: float,
) -> np.ndarray:
    """Rasterize chain points as a line of given linear density and Gaussian width."""
    w = np.broadcast_to(np.asarray(weight_per_um, np.float64) * step_um, y.shape)
    grid = _splat(shape, px, y, x, np.ascontiguousarray(w))
    return _blur_um(grid, px, max(width_um * SPHERE_SIGMA_PER_DIAMETER * 2, 0.0))


def texture(
    rng: np.random.Generator,
    shape: tuple[int, int],
    px: float,
    fine_um: float,
    coarse_um: float,
) -> np.ndarray:
    """Band-passed Gaussian noise (zero mean, unit SD) between ``fine_um`` and ``coarse_um``."""
    noise = _Noise(rng, shape, px)
    return noise.field(noise.band(fine_um, coarse_um))


def smooth(rng: np.random.Generator, shape: tuple[int, int], px: float, sigma_um: float):
    """Low-pass Gaussian noise of correlation length ``sigma_um`` (zero mean, unit SD)."""
    noise = _Noise(rng, shape, px)
    return noise.field(noise.gauss(sigma_um))


def oriented(
    rng: np.random.Generator,
    shape: tuple[int, int],
    px: float,
    along_um: float,
    across_um: float,
    angle: float,
) -> np.ndarray:
    """Noise elongated along ``angle`` (fibres): zero mean, unit SD."""
    noise = _Noise(rng, shape, px)
    return noise.field(noise.oriented(along_um, across_um, angle) - noise.gauss(4 * along_um))


def periodic_component(image: np.ndarray) -> np.ndarray:
    """Periodic part of an image (Moisan's periodic-plus-smooth decomposition).

    ``u = p + s`` with ``s`` the smooth (harmonic inside) image whose boundary jumps match
    those of ``u`` across the wrap-around, so ``p`` tiles seamlessly and keeps every detail.
    ``ŝ(q, r) = v̂(q, r) / (2cos(2πq/M) + 2cos(2πr/N) − 4)``, ``ŝ(0, 0) = 0``, where ``v``
    holds the boundary differences. (L. Moisan, J. Math. Imaging Vis. 39, 2011.)
    """
    u = np.asarray(image, np.float64)
    m, n = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.cos(2 * np.pi * np.arange(m) / m)[:, None]
    r = np.cos(2 * np.pi * np.arange(n // 2 + 1) / n)[None, :]
    den = 2 * q + 2 * r - 4
    den[0, 0] = 1.0
    s_hat = sfft.rfft2(v, workers=-1) / den
    s_hat[0, 0] = 0
    return u - sfft.irfft2(s_hat, s=(m, n), workers=-1)


#: Pictures that ship inside scikit-image (never downloaded).
PICTURES: dict[str, tuple[str, ...]] = {
    "fluorescence": (
        "hubble_deep_field",
        "cell",
        "coins",
        "moon",
        "retina",
        "gravel",
        "camera",
        "brick",
    ),
    "phase": ("camera", "moon", "brick", "grass", "gravel", "cell", "coffee", "chelsea"),
    "absorption": (
        "page",
        "text",
        "coins",
        "horse",
        "immunohistochemistry",
        "astronaut",
        "rocket",
        "shepp_logan_phantom",
    ),
}


def picture_field(
    name: str,
    shape: tuple[int, int],
    px: float,
    rng: np.random.Generator,
    source_pixel_um: float,
    *,
    channel: int | None = None,
) -> np.ndarray:
    """A picture resampled onto the field: random offset, rotation, mirror; periodic; [0, 1].

    One picture pixel spans ``source_pixel_um`` at the sample; pictures smaller than the
    field are mirrored. The result is made periodic (:func:`periodic_component`) and
    min–max scaled.
    """
    pic = _picture(name, channel)
    return _resample(pic, shape, px, rng, source_pixel_um)


def _resample_raw(
    pic: np.ndarray, shape: tuple[int, int], px: float, rng: np.random.Generator, src_um: float
) -> np.ndarray:
    ny, nx = shape
    scale = px / src_um
    ang = rng.uniform(0, 2 * np.pi)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    c, s = math.cos(ang) * scale, math.sin(ang) * scale
    cy0 = rng.uniform(0, pic.shape[0])
    cx0 = rng.uniform(0, pic.shape[1])
    iy = (np.arange(ny) - ny / 2)[:, None]
    ix = (np.arange(nx) - nx / 2)[None, :] * flip
    if scale > 1.5:  # minifying: low-pass first so the picture does not alias
        pic = ndimage.gaussian_filter(pic, 0.5 * scale)
    out = ndimage.map_coordinates(
        pic, [cy0 + c * iy - s * ix, cx0 + s * iy + c * ix], order=1, mode="mirror"
    )
    return periodic_component(out)


def _resample(
    pic: np.ndarray, shape: tuple[int, int], px: float, rng: np.random.Generator, src_um: float
) -> np.ndarray:
    out = _resample_raw(pic, shape, px, rng, src_um)
    ny, nx = shape
    lo, hi = np.percentile(out[:: max(1, ny // 256), :: max(1, nx // 256)], [0.5, 99.5])
    return np.clip((out - lo) / max(hi - lo, 1e-12), 0, 1)


def picture_density_field(
    name: str,
    shape: tuple[int, int],
    px: float,
    rng: np.random.Generator,
    src_um: float,
    collapse: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Optical density of an RGB picture, collapsed to one wavelength, resampled; peak 1.

    ``collapse`` maps the (3, Y, X) red, green, blue densities ``−log10(RGB)`` to one
    plane; density and resampling are both linear, so collapsing first costs one resample.
    """
    import skimage.data

    rgb = np.asarray(getattr(skimage.data, name)(), np.float64)[..., :3] / 255.0
    dens = -np.log10(np.clip(rgb, 1 / 255, 1)).transpose(2, 0, 1)
    plane = collapse(dens)
    out = np.clip(_resample_raw(plane, shape, px, rng, src_um), 0, None)
    return out / max(float(dens.max()), 1e-12)
