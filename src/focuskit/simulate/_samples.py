"""Thin samples: complex transmittance (coherent imaging) or emitter maps (fluorescence).

Conventions (OPTICS.md, "Samples (thin)"): a sample's exit field is ``t·illum`` with
``t = A·exp(iφ)``; a phase object of thickness ``h`` and refractive-index contrast ``Δn``
has ``φ = 2π·Δn·h/λ``; an absorber of absorbed fraction ``a`` has ``A = sqrt(1 − a)``.
Fluorescent samples are a non-negative emitter map, imaged incoherently.

Generators place objects in micrometres with ``np.random.default_rng(seed)``, so a
seed gives the same physical scene (object positions, sizes, shapes) at any pixel
size; only the fine pixel-level noise textures are drawn per grid. Scenes are periodic
(objects wrap around the edges) so FFT-based imaging has no edge artefacts. Pixel
``(i, j)`` samples the point ``(y, x) = (i·pixel_size_um, j·pixel_size_um)``.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.fft as sfft
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.special import erf

from focuskit._errors import ConfigError
from focuskit._quiet import image_problem, library_messages

SampleKind = Literal["transmittance", "fluorescence"]

__all__ = [
    "SAMPLE_GENERATORS",
    "Sample",
    "beads",
    "cells",
    "fluorescent_tissue",
    "from_image",
    "load_sample_image",
    "make_sample",
    "picture",
    "stain_density",
    "tissue",
]


# --------------------------------------------------------------------------- Sample


@dataclass(frozen=True)
class Sample:
    """A thin sample on a pixel grid.

    ``kind == "transmittance"``: ``values`` is the complex transmittance ``t = A·exp(iφ)``
    (complex64, ``|t| ≤ 1``) for coherent / partially coherent imaging.
    ``kind == "fluorescence"``: ``values`` is a non-negative emitter map (float32).
    ``description`` is JSON-able (generator, parameters, seed) and goes into file metadata.

    Attributes
    ----------
    kind : {'transmittance', 'fluorescence'}
        What ``values`` holds.
    values : (Y, X) ndarray of complex64 or float32
        Complex transmittance (``|t| ≤ 1``) or non-negative emitter map; finite.
    pixel_size_um : float
        Pixel size at the sample, in µm (> 0).
    description : dict, optional
        JSON-able provenance: generator, parameters, seed.

    Raises
    ------
    ConfigError
        If the kind, shape, dtype, values, pixel size or description is invalid.
    """

    kind: SampleKind
    values: np.ndarray
    pixel_size_um: float
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("transmittance", "fluorescence"):
            raise ConfigError(
                f"sample kind {self.kind!r} is unknown; use 'transmittance' or 'fluorescence'"
            )
        v = self.values
        if not isinstance(v, np.ndarray) or v.ndim != 2:
            got = f"shape {v.shape}" if isinstance(v, np.ndarray) else type(v).__name__
            raise ConfigError(f"sample values must be a 2-D (Y, X) array, got {got}")
        if min(v.shape) < 1:
            raise ConfigError(f"sample values are empty (shape {v.shape}); give at least 1×1")
        want = np.complex64 if self.kind == "transmittance" else np.float32
        if v.dtype != want:
            raise ConfigError(
                f"a {self.kind} sample must be {np.dtype(want).name}, got {v.dtype}; "
                f"convert with values.astype(np.{np.dtype(want).name})"
            )
        if not np.isfinite(v).all():
            raise ConfigError("sample values contain NaN or inf; replace them before use")
        if self.kind == "fluorescence":
            if v.size and float(v.min()) < 0:
                raise ConfigError(
                    f"emitter map has negative values (min {float(v.min()):.3g}); "
                    "clip at 0 — emitters are non-negative"
                )
        elif v.size and float(np.abs(v).max()) > 1 + 1e-6:
            raise ConfigError(
                f"transmittance |t| reaches {float(np.abs(v).max()):.6g} > 1; a passive thin "
                "sample cannot amplify light — scale the amplitude to ≤ 1"
            )
        _check_pixel_size(self.pixel_size_um)
        if not isinstance(self.description, dict):
            raise ConfigError("sample description must be a dict (generator, parameters, seed)")
        try:
            json.dumps(self.description)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"sample description is not JSON-able ({exc}); use plain numbers, strings, lists"
            ) from None

    @property
    def shape(self) -> tuple[int, int]:
        """(Y, X) in pixels."""
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    @property
    def extent_um(self) -> tuple[float, float]:
        """Field of view (Y, X) in µm."""
        return (self.shape[0] * self.pixel_size_um, self.shape[1] * self.pixel_size_um)


# --------------------------------------------------------------------------- validation


def _check_pixel_size(pixel_size_um: float) -> float:
    try:
        p = float(pixel_size_um)
    except (TypeError, ValueError):
        raise ConfigError(f"pixel_size_um must be a number in µm, got {pixel_size_um!r}") from None
    if not (math.isfinite(p) and p > 0):
        raise ConfigError(
            f"pixel_size_um must be a positive size at the sample in µm (e.g. 0.325), got {p}"
        )
    return p


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    try:
        ny, nx = (int(s) for s in shape)
        ok = len(tuple(shape)) == 2 and all(int(s) == s for s in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or ny < 4 or nx < 4:
        raise ConfigError(f"shape must be two integers (Y, X), each ≥ 4, got {shape!r}")
    return ny, nx


def _check_number(
    name: str,
    value: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    bad = not math.isfinite(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v > hi
    if bad:
        left = "(" if lo_open else "["
        rng = f"{left}{'-∞' if lo is None else lo}, {'∞' if hi is None else hi}]"
        raise ConfigError(f"{name} must be in {rng}, got {value!r}")
    return v


def _check_range(name: str, value: tuple[float, float], *, lo: float = 0.0) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (min, max) pair in µm, got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and lo < a <= b):
        raise ConfigError(f"{name} must be (min, max) with {lo} < min ≤ max, got {value!r}")
    return a, b


def _check_seed(seed: int | None) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def _rngs(seed: int | None) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent streams: objects (pixel-size independent) and pixel textures."""
    root = np.random.default_rng(seed)
    objects, texture = root.spawn(2)
    return objects, texture


# --------------------------------------------------------------------------- helpers


class _Noise:
    """Gaussian random fields with a given power spectrum, on the pixel grid (periodic)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], px: float) -> None:
        self.rng = rng
        self.shape = shape
        ny, nx = shape
        self.fy = sfft.fftfreq(ny, d=px).astype(np.float32)[:, None]  # cycles/µm
        self.fx = sfft.rfftfreq(nx, d=px).astype(np.float32)[None, :]
        self.f2 = self.fy**2 + self.fx**2

    def gauss(self, sigma_um: float) -> np.ndarray:
        """Transfer function of a Gaussian blur of standard deviation sigma_um."""
        return np.exp(np.float32(-2 * np.pi**2 * sigma_um**2) * self.f2)

    def band(self, fine_um: float, coarse_um: float) -> np.ndarray:
        """Difference-of-Gaussians band-pass: structure between fine_um and coarse_um."""
        return self.gauss(fine_um) - self.gauss(coarse_um)

    def oriented(self, along_um: float, across_um: float, angle: float) -> np.ndarray:
        """Anisotropic Gaussian low-pass: structures elongated along ``angle`` (rad, from x)."""
        c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        f_along = self.fx * c + self.fy * s
        f_across = -self.fx * s + self.fy * c
        k = np.float32(-2 * np.pi**2)
        return np.exp(k * (along_um**2 * f_along**2 + across_um**2 * f_across**2))

    def field(self, transfer: np.ndarray) -> np.ndarray:
        """White noise filtered by ``transfer``; zero mean, unit standard deviation (float32).

        The white spectrum has independent uniform real and imaginary parts (6× faster to draw
        than normals; each output pixel sums many of them, so the field is Gaussian by the
        central limit theorem). Only the rows/columns where ``transfer`` is non-negligible
        are drawn, so smooth (low-pass) fields cost little.
        """
        half = (self.shape[0], self.shape[1] // 2 + 1)
        transfer = np.broadcast_to(transfer, half)
        significant = transfer > np.float32(1e-4) * transfer.max()
        rows = np.flatnonzero(significant.any(axis=1))
        cols = np.flatnonzero(significant.any(axis=0))
        spec = np.zeros(half, np.complex64)
        if len(rows) and len(cols):
            ncols = int(cols[-1]) + 1
            u = self.rng.random((len(rows), ncols, 2), dtype=np.float32)
            u -= np.float32(0.5)
            spec[rows, :ncols] = u.view(np.complex64)[..., 0] * transfer[rows, :ncols]
        spec[0, 0] = 0
        out = sfft.irfft2(spec, s=self.shape, workers=-1)
        sub = out[:: max(1, self.shape[0] // 512), :: max(1, self.shape[1] // 512)]
        sd = float(sub.std())
        if sd > 0:
            out *= np.float32(1.0 / sd)
        return out.astype(np.float32, copy=False)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C¹ in between (anti-aliased edges)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _splat(
    shape: tuple[int, int], px: float, y_um: np.ndarray, x_um: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Bilinear (periodic) splat of point weights; each point's weights sum to its weight."""
    ny, nx = shape
    y = np.asarray(y_um, np.float64) / px
    x = np.asarray(x_um, np.float64) / px
    y0 = np.floor(y)
    x0 = np.floor(x)
    fy = y - y0
    fx = x - x0
    iy0 = y0.astype(np.int64) % ny
    ix0 = x0.astype(np.int64) % nx
    iy1 = (iy0 + 1) % ny
    ix1 = (ix0 + 1) % nx
    w = np.asarray(weights, np.float64)
    idx = np.concatenate([iy0 * nx + ix0, iy0 * nx + ix1, iy1 * nx + ix0, iy1 * nx + ix1])
    wts = np.concatenate(
        [w * (1 - fy) * (1 - fx), w * (1 - fy) * fx, w * fy * (1 - fx), w * fy * fx]
    )
    # (bincount of no points returns integers)
    return np.bincount(idx, wts, minlength=ny * nx).astype(np.float64, copy=False).reshape(shape)


def _blur_um(image: np.ndarray, px: float, sigma_um: float) -> np.ndarray:
    """Periodic separable blur by a pixel-integrated Gaussian (anti-aliased, ≥ 0, keeps sums)."""
    s = sigma_um / px
    if s < 0.05:
        return image
    r = math.ceil(4 * s + 0.5)
    edges = (np.arange(-r, r + 2) - 0.5) / (s * math.sqrt(2))
    k = np.diff(erf(edges)) / 2
    k /= k.sum()
    out = ndimage.convolve1d(image, k, axis=0, mode="wrap")
    return ndimage.convolve1d(out, k, axis=1, mode="wrap")


def _patches(
    shape: tuple[int, int],
    px: float,
    cy_um: np.ndarray,
    cx_um: np.ndarray,
    radius_um: np.ndarray,
    max_elements: int = 1 << 22,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Square pixel patches around objects, in size-sorted chunks of bounded memory.

    Yields ``(which, dy, dx, flat)``: object indices ``(n,)``, offsets from each centre in µm
    ``(n, Py, 1)`` and ``(n, 1, Px)``, and periodic flat pixel indices ``(n, Py, Px)``. A patch
    never exceeds the image, so an object larger than the field is cut, not wrapped onto itself.
    """
    ny, nx = shape
    order = np.argsort(radius_um, kind="stable")
    sizes = 2 * np.ceil(np.asarray(radius_um)[order] / px).astype(np.int64) + 3
    i = 0
    n_obj = len(order)
    while i < n_obj:
        k = np.arange(i, n_obj)
        cost = (k - i + 1) * sizes[k] ** 2
        n = max(1, int(np.searchsorted(cost, max_elements, side="right")))
        which = order[i : i + n]
        p = int(sizes[i + n - 1])
        py, pxx = min(p, ny), min(p, nx)
        iy = np.floor(cy_um[which] / px).astype(np.int64)[:, None] + (np.arange(py) - py // 2)
        ix = np.floor(cx_um[which] / px).astype(np.int64)[:, None] + (np.arange(pxx) - pxx // 2)
        dy = (iy * px - cy_um[which][:, None]).astype(np.float32)[:, :, None]
        dx = (ix * px - cx_um[which][:, None]).astype(np.float32)[:, None, :]
        flat = (iy % ny)[:, :, None] * nx + (ix % nx)[:, None, :]
        yield which, dy, dx, flat
        i += n


def _accumulate(total: np.ndarray, flat: np.ndarray, values: np.ndarray) -> None:
    """total.flat[flat] += values (repeats add), touching only non-zero values."""
    m = values != 0
    if not m.any():
        return
    total += np.bincount(flat[m], values[m].astype(np.float64), minlength=total.size).reshape(
        total.shape
    )


def _outline_rho(
    dy: np.ndarray,
    dx: np.ndarray,
    semi_a: np.ndarray,
    semi_b: np.ndarray,
    angle: np.ndarray,
    harmonics: np.ndarray,
) -> np.ndarray:
    """Normalized radius ρ of a rounded irregular outline (ρ < 1 inside).

    The outline is an ellipse (semi-axes a along ``angle``, b across) whose radius is
    modulated by low-order harmonics ``1 + Re Σ_k c_k·e^{ikθ}``, k = 2, 3, …
    """
    c = np.cos(angle).astype(np.float32)[:, None, None]
    s = np.sin(angle).astype(np.float32)[:, None, None]
    u = (dx * c + dy * s) / semi_a.astype(np.float32)[:, None, None]
    v = (dy * c - dx * s) / semi_b.astype(np.float32)[:, None, None]
    r = np.sqrt(u * u + v * v)
    if harmonics.shape[1] == 0:
        return r
    inv = 1.0 / np.maximum(r, np.float32(1e-6))
    zr, zi = u * inv, v * inv  # e^{iθ}
    pr, pi = zr, zi
    f = np.ones_like(r)
    for k in range(harmonics.shape[1]):
        pr, pi = pr * zr - pi * zi, pr * zi + pi * zr  # e^{i(k+2)θ}
        ck = harmonics[:, k]
        f += ck.real.astype(np.float32)[:, None, None] * pr
        f -= ck.imag.astype(np.float32)[:, None, None] * pi
    return r / f


def _random_harmonics(
    rng: np.random.Generator, n: int, amplitudes: tuple[float, ...]
) -> np.ndarray:
    """Complex harmonic coefficients c_k (k = 2, 3, …), random phases, |c_k| ≤ amplitude_k."""
    amp = rng.uniform(0.3, 1.0, (n, len(amplitudes))) * np.asarray(amplitudes)
    phase = rng.uniform(0, 2 * np.pi, (n, len(amplitudes)))
    return amp * np.exp(1j * phase)


def _place(
    rng: np.random.Generator,
    extent_um: tuple[float, float],
    n_wanted: int,
    radius_um: Callable[[int], np.ndarray],
    separation: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random sequential placement (periodic) of up to ``n_wanted`` discs.

    A candidate is kept unless its centre lies closer than ``separation·(r_i + r_j)`` to a
    kept one (separation < 1 lets neighbours overlap a little). Pixel-size independent.
    """
    ey, ex = extent_um
    m = 4 * n_wanted + 20
    y = rng.uniform(0, ey, m)
    x = rng.uniform(0, ex, m)
    r = radius_um(m)
    if n_wanted == 0:
        return y[:0], x[:0], r[:0]
    pts = np.stack([y % ey, x % ex], axis=1)
    tree = cKDTree(pts, boxsize=[ey, ex])
    pairs = tree.query_pairs(2 * separation * float(r.max()), output_type="ndarray")
    keep = np.zeros(m, bool)
    if len(pairs):
        d = np.abs(pts[pairs[:, 0]] - pts[pairs[:, 1]])
        d = np.minimum(d, np.array([ey, ex]) - d)
        close = np.hypot(d[:, 0], d[:, 1]) < separation * (r[pairs[:, 0]] + r[pairs[:, 1]])
        pairs = np.sort(pairs[close], axis=1)  # (earlier, later)
        pairs = pairs[np.argsort(pairs[:, 1], kind="stable")]
        starts = np.searchsorted(pairs[:, 1], np.arange(m + 1))
        earlier = pairs[:, 0]
    else:
        starts = np.zeros(m + 1, np.int64)
        earlier = np.zeros(0, np.int64)
    n = 0
    for i in range(m):
        a, b = starts[i], starts[i + 1]
        if a == b or not keep[earlier[a:b]].any():
            keep[i] = True
            n += 1
            if n == n_wanted:
                break
    return y[keep], x[keep], r[keep]


def _cell_count_factor(density: float) -> float:
    """Cells per unit (area / mean cell area) so that about ``density`` of the field is covered.

    Sparse cells barely overlap (count ∝ density); crowded ones overlap like random discs,
    whose coverage is ``1 − exp(−count·area)``: this blends the two (checked empirically).
    """
    return density + 0.5 * (-math.log1p(-density) - density)


def _describe(generator: str, seed: int | None, **params: Any) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = [float(x) for x in v]
        elif isinstance(v, (np.floating, np.integer)):
            v = v.item()
        clean[k] = v
    return {"generator": generator, "seed": seed, **clean}


def _transmittance(
    amplitude: np.ndarray | float, phase: np.ndarray | float, shape: tuple[int, int]
) -> np.ndarray:
    t = np.empty(shape, np.complex64)
    ph = np.broadcast_to(np.asarray(phase, np.float32), shape)
    amp = np.asarray(amplitude, np.float32)
    t.real = amp * np.cos(ph)
    t.imag = amp * np.sin(ph)
    return t


# --------------------------------------------------------------------------- generators


def beads(
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    density_per_100um2: float = 0.5,
    diameter_um: float = 0.1,
    brightness: float = 1.0,
    as_: Literal["fluorescence", "absorption"] = "fluorescence",
    seed: int | None = 0,
) -> Sample:
    """Sub-resolution beads at random sub-pixel positions (Poisson count).

    Each bead's signal is ∝ its volume: its pixels sum to ``brightness·(diameter_um/0.1)³``,
    spread as the anti-aliased projection of a sphere (thickness ∝ sqrt(R² − r²)); a bead
    smaller than a pixel is a bilinear point. ``as_="absorption"`` turns that map into an
    absorbance ``a`` (clipped to ≤ 0.9) and returns ``t = sqrt(1 − a)`` (φ = 0).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels, each ≥ 4.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    density_per_100um2 : float, optional
        Mean number of beads per 100 µm² (default 0.5).
    diameter_um : float, optional
        Bead diameter, in µm (default 0.1).
    brightness : float, optional
        Signal of a 0.1 µm bead (default 1).
    as_ : {'fluorescence', 'absorption'}, optional
        Emitter map (default) or absorbing transmittance.
    seed : int or None, optional
        Seed of the scene (default 0); the same seed gives the same beads at any pixel size.

    Returns
    -------
    sample : Sample
        A fluorescence sample, or a transmittance one with ``as_="absorption"``.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """
    ny, nx = _check_shape(shape)
    px = _check_pixel_size(pixel_size_um)
    density = _check_number("density_per_100um2", density_per_100um2, lo=0)
    d = _check_number("diameter_um", diameter_um, lo=0, lo_open=True)
    bright = _check_number("brightness", brightness, lo=0)
    if as_ not in ("fluorescence", "absorption"):
        raise ConfigError(f"as_ must be 'fluorescence' or 'absorption', got {as_!r}")
    seed = _check_seed(seed)
    rng, _ = _rngs(seed)
    ey, ex = ny * px, nx * px
    n = int(rng.poisson(density * ey * ex / 100.0))
    y = rng.uniform(0, ey, n)
    x = rng.uniform(0, ex, n)
    total = bright * (d / 0.1) ** 3
    if d <= px:
        grid = _splat((ny, nx), px, y, x, np.full(n, total))
    else:
        grid = np.zeros((ny, nx), np.float64)
        ss = 5  # supersampling per pixel axis: anti-aliased disc edge
        sub = ((np.arange(ss) + 0.5) / ss - 0.5).astype(np.float32) * np.float32(px)
        radius = np.full(n, d / 2)
        for which, dy, dx, flat in _patches((ny, nx), px, y, x, radius, 1 << 18):
            m, ky, kx = len(which), dy.shape[1], dx.shape[2]
            yy = (dy[:, :, 0, None] + sub).reshape(m, ky, ss, 1, 1)
            xx = (dx[:, 0, :, None] + sub).reshape(m, 1, 1, kx, ss)
            r2 = yy * yy + xx * xx
            proj = np.sqrt(np.maximum(np.float32((d / 2) ** 2) - r2, 0)).sum(axis=(2, 4))
            proj /= np.maximum(proj.sum(axis=(1, 2), keepdims=True), np.float32(1e-30))
            _accumulate(grid, flat, proj * np.float32(total))
    desc = _describe(
        "beads",
        seed,
        density_per_100um2=density,
        diameter_um=d,
        brightness=bright,
        as_=as_,
        n_beads=n,
    )
    if as_ == "fluorescence":
        return Sample("fluorescence", np.maximum(grid, 0).astype(np.float32), px, desc)
    a = np.clip(grid, 0.0, 0.9)
    return Sample("transmittance", _transmittance(np.sqrt(1 - a), 0.0, (ny, nx)), px, desc)


def cells(
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    wavelength_um: float = 0.53,
    density: float = 0.3,
    diameter_um: tuple[float, float] = (8.0, 20.0),
    absorption: float = 0.02,
    seed: int | None = 0,
) -> Sample:
    """Unstained cultured cells as (nearly pure) phase objects.

    Each cell: a rounded irregular outline (ellipse × low-order radial harmonics), dome
    thickness ``h = h0·sqrt(1 − ρ²)`` with ``h0`` 3–6 µm and index contrast Δn 0.03–0.05;
    a denser ellipsoidal nucleus (extra Δn 0.01–0.02) with nucleoli; granular texture
    (band-passed noise, ~10 % of the optical path). Phase ``φ = 2π·Σ Δn·h / λ`` (overlaps
    add), ~1–3 rad at a cell's peak. Intensity transmission ``|t|² = exp(−absorption·φ)``.
    ``density`` is roughly the fraction of the field covered by cells.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels, each ≥ 4.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    wavelength_um : float, optional
        Illumination wavelength λ, in µm (default 0.53).
    density : float, optional
        Approximate fraction of the field covered by cells (default 0.3).
    diameter_um : tuple of float, optional
        (min, max) cell diameter, in µm (default (8, 20)).
    absorption : float, optional
        Absorption per radian of phase (default 0.02).
    seed : int or None, optional
        Seed of the scene (default 0).

    Returns
    -------
    sample : Sample
        A transmittance sample.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """
    ny, nx = _check_shape(shape)
    px = _check_pixel_size(pixel_size_um)
    lam = _check_number("wavelength_um", wavelength_um, lo=0, lo_open=True)
    dens = _check_number("density", density, lo=0, hi=0.95)
    dmin, dmax = _check_range("diameter_um", diameter_um)
    absorb = _check_number("absorption", absorption, lo=0)
    seed = _check_seed(seed)
    rng, rng_tex = _rngs(seed)
    ey, ex = ny * px, nx * px

    mean_area = math.pi / 4 * (dmin**2 + dmin * dmax + dmax**2) / 3
    n_wanted = int(rng.poisson(_cell_count_factor(dens) * ey * ex / mean_area))
    # Cells touch but barely overlap; crowded cultures (density > 0.3) overlap more.
    sep = 0.8 - 0.6 * max(0.0, dens - 0.3)
    cy, cx, rad = _place(rng, (ey, ex), n_wanted, lambda m: rng.uniform(dmin, dmax, m) / 2, sep)
    n = len(cy)
    diam = 2 * rad
    # Shape parameters for every cell (drawn before any pixel-dependent step).
    aspect = 1.0 + rng.gamma(1.5, 0.35, n)  # mostly rounded, some spindle-shaped
    semi_a = rad * np.sqrt(aspect)
    semi_b = rad / np.sqrt(aspect)
    angle = rng.uniform(0, np.pi, n)
    harm = _random_harmonics(rng, n, (0.15, 0.1, 0.06, 0.04, 0.03))
    size01 = (diam - dmin) / max(dmax - dmin, 1e-9)
    # Bigger cells tend to be thicker; thickness 3–6 µm, skewed towards flat cells.
    h0 = 3.0 + 3.0 * np.clip(0.5 * size01 + 0.5 * rng.uniform(0, 1, n), 0, 1) ** 2
    dn = rng.uniform(0.03, 0.04, n)
    # Nucleus: ellipsoid inside the cell (in the cell's own frame), thinner than the cell.
    nuc_frac = rng.uniform(0.32, 0.45, n)
    nuc_a = semi_a * nuc_frac * rng.uniform(0.9, 1.15, n)
    nuc_b = semi_b * nuc_frac * rng.uniform(0.9, 1.15, n)
    nuc_r = np.sqrt(nuc_a * nuc_b)
    nuc_angle = angle + rng.normal(0, 0.2, n)
    off_r = rng.uniform(0, 0.25, n)
    off_t = rng.uniform(0, 2 * np.pi, n)
    ou, ov = off_r * semi_a * np.cos(off_t), off_r * semi_b * np.sin(off_t)
    nuc_dx = ou * np.cos(angle) - ov * np.sin(angle)
    nuc_dy = ou * np.sin(angle) + ov * np.cos(angle)
    nuc_h = h0 * rng.uniform(0.6, 0.8, n)
    nuc_dn = rng.uniform(0.01, 0.02, n)
    # Two nucleoli (dense spots, σ 0.4–0.8 µm) at random places in the nucleus.
    nl_r = rng.uniform(0, 0.55, (n, 2)) * nuc_r[:, None]
    nl_t = rng.uniform(0, 2 * np.pi, (n, 2))
    nl_dy = nuc_dy[:, None] + nl_r * np.sin(nl_t)
    nl_dx = nuc_dx[:, None] + nl_r * np.cos(nl_t)
    nl_sigma = rng.uniform(0.4, 0.8, (n, 2))
    nl_opd = rng.uniform(0.005, 0.025, (n, 2))  # extra optical path at the nucleolus, µm

    opd = np.zeros((ny, nx), np.float64)  # optical path difference Σ Δn·h, µm
    bound = np.maximum(semi_a, semi_b) * (1 + np.abs(harm).sum(axis=1))
    no_harm = np.zeros((n, 0), complex)
    for w, dy, dx, flat in _patches((ny, nx), px, cy, cx, bound):
        f32 = lambda v, w=w: v[w].astype(np.float32)[:, None, None]  # noqa: E731
        rho = _outline_rho(dy, dx, semi_a[w], semi_b[w], angle[w], harm[w])
        cell = np.sqrt(np.maximum(1 - rho * rho, 0))
        path = f32(dn * h0) * cell
        ndy, ndx = dy - f32(nuc_dy), dx - f32(nuc_dx)
        rho_n = _outline_rho(ndy, ndx, nuc_a[w], nuc_b[w], nuc_angle[w], no_harm[w])
        # A flat-topped nucleus (super-ellipsoid): its rim shows as in real phase images.
        nuc = f32(nuc_h) * np.maximum(1 - rho_n * rho_n, 0) ** 0.3
        path += f32(nuc_dn) * np.minimum(nuc, f32(h0) * cell)
        for j in range(2):
            gy = dy - nl_dy[w, j].astype(np.float32)[:, None, None]
            gx = dx - nl_dx[w, j].astype(np.float32)[:, None, None]
            inv2s2 = (-0.5 / nl_sigma[w, j] ** 2).astype(np.float32)[:, None, None]
            path += (
                nl_opd[w, j].astype(np.float32)[:, None, None]
                * np.exp((gy * gy + gx * gx) * inv2s2)
                * (cell > 0)
            )
        _accumulate(opd, flat, path)

    noise = _Noise(rng_tex, (ny, nx), px)
    granular = 0.7 * noise.field(noise.band(0.25, 0.8)) + 0.3 * noise.field(noise.band(0.8, 2.5))
    phase = (2 * np.pi / lam) * opd.astype(np.float32) * np.maximum(1 + 0.1 * granular, 0)
    t = _transmittance(np.exp(np.float32(-absorb / 2) * phase), phase, (ny, nx))
    desc = _describe(
        "cells",
        seed,
        wavelength_um=lam,
        density=dens,
        diameter_um=(dmin, dmax),
        absorption=absorb,
        n_cells=n,
    )
    return Sample("transmittance", t, px, desc)


def tissue(
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    wavelength_um: float = 0.55,
    stain_strength: float = 0.7,
    thickness_um: float = 4.0,
    index_contrast: float = 0.003,
    seed: int | None = 0,
) -> Sample:
    """A stained (H&E-like) tissue section seen in grayscale: mainly an absorber.

    Glands (crypts: a ring of epithelium with columnar nuclei around a pale lumen) in a
    fibrous stroma (multi-scale, oriented band-passed noise) with elongated fibroblast
    nuclei and small dark lymphocytes; tears/holes where there is no tissue. The absorbed
    fraction ``a ∈ [0, 0.9]`` (nuclei darkest, ≈ ``stain_strength``) gives
    ``A = sqrt(1 − a)``. A mounted section retards slightly: ``φ = 2π·Δn·h·(a/0.9)/λ``
    with ``Δn = index_contrast`` and ``h = thickness_um`` (≈ 0.14 rad at most;
    ``index_contrast=0`` → pure absorber).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels, each ≥ 4.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    wavelength_um : float, optional
        Illumination wavelength λ, in µm (default 0.55).
    stain_strength : float, optional
        Absorbed fraction of the nuclei (default 0.7).
    thickness_um : float, optional
        Section thickness ``h``, in µm (default 4).
    index_contrast : float, optional
        Refractive-index contrast Δn (default 0.003; 0 gives a pure absorber).
    seed : int or None, optional
        Seed of the scene (default 0).

    Returns
    -------
    sample : Sample
        A transmittance sample.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """
    ny, nx = _check_shape(shape)
    px = _check_pixel_size(pixel_size_um)
    lam = _check_number("wavelength_um", wavelength_um, lo=0, lo_open=True)
    stain = _check_number("stain_strength", stain_strength, lo=0, hi=1)
    thick = _check_number("thickness_um", thickness_um, lo=0)
    dn = _check_number("index_contrast", index_contrast, lo=0)
    seed = _check_seed(seed)
    rng, rng_tex = _rngs(seed)
    ey, ex = ny * px, nx * px
    area = ey * ex

    # --- glands (pixel-size independent draws) ---
    n_wanted = int(rng.poisson(0.3 * area / (math.pi * 32.0**2)))
    gy, gx, grad = _place(rng, (ey, ex), n_wanted, lambda m: rng.uniform(20, 45, m), 1.05)
    ng = len(gy)
    g_aspect = rng.uniform(1.0, 1.8, ng)
    g_a, g_b = grad * np.sqrt(g_aspect), grad / np.sqrt(g_aspect)
    g_angle = rng.uniform(0, np.pi, ng)
    g_harm = _random_harmonics(rng, ng, (0.10, 0.06, 0.04))
    g_lumen = rng.uniform(0.3, 0.5, ng)
    # Epithelial nuclei along each gland's ring, ~5 µm apart, long axis radial.
    perim = 2 * np.pi * 0.82 * grad
    counts = np.maximum(np.round(perim / rng.uniform(4.5, 6.0, ng)), 0).astype(np.int64)
    gi = np.repeat(np.arange(ng), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    j = np.arange(len(gi)) - first
    theta = 2 * np.pi * (j + rng.uniform(-0.25, 0.25, len(gi))) / np.maximum(counts[gi], 1)
    kk = np.arange(2, 2 + g_harm.shape[1])
    f = 1 + np.real((g_harm[gi] * np.exp(1j * theta[:, None] * kk)).sum(axis=1))
    rho_n = f * rng.normal(0.8, 0.03, len(gi))
    u, v = rho_n * g_a[gi] * np.cos(theta), rho_n * g_b[gi] * np.sin(theta)
    ca, sa = np.cos(g_angle[gi]), np.sin(g_angle[gi])
    e_dx, e_dy = u * ca - v * sa, u * sa + v * ca
    e_y, e_x = (gy[gi] + e_dy) % ey, (gx[gi] + e_dx) % ex
    e_angle = np.arctan2(e_dy, e_dx) + rng.normal(0, 0.15, len(gi))
    e_a, e_b = rng.uniform(3.0, 4.5, len(gi)), rng.uniform(1.6, 2.3, len(gi))
    e_dark = rng.uniform(0.85, 1.0, len(gi))
    # Stromal cells: fibroblasts (elongated along the fibres) and lymphocytes (small, round).
    nf = int(rng.poisson(area / 250.0))
    f_y, f_x = rng.uniform(0, ey, nf), rng.uniform(0, ex, nf)
    f_a, f_b = rng.uniform(3.5, 7.0, nf), rng.uniform(1.0, 1.7, nf)
    f_jitter = rng.normal(0, 0.2, nf)
    f_dark = rng.uniform(0.75, 0.95, nf)
    nl = int(rng.poisson(area / 700.0))
    l_y, l_x = rng.uniform(0, ey, nl), rng.uniform(0, ex, nl)
    l_r = rng.uniform(1.6, 2.3, nl)
    l_dark = rng.uniform(1.0, 1.1, nl)
    fibre_angles = rng.uniform(0, np.pi, 2)

    # --- pixel-grid textures ---
    noise = _Noise(rng_tex, (ny, nx), px)
    holes = 0.85 * noise.field(noise.gauss(18.0)) + 0.25 * noise.field(noise.gauss(3.0))
    present = _smoothstep((holes + 1.6) / 0.08)  # ~5 % of the field is torn / empty
    mix = _smoothstep((noise.field(noise.gauss(25.0)) + 0.4) / 0.8)
    # Fibres: zero-crossings of oriented noise; adding a smooth isotropic field bends them.
    wave = noise.field(noise.gauss(4.0))
    ridges = []
    for ang in fibre_angles:
        n1 = noise.field(noise.oriented(7.0, 0.9, float(ang))) + 0.8 * wave
        n2 = noise.field(noise.oriented(3.0, 0.4, float(ang))) + 0.5 * wave
        ridges.append(0.65 * np.exp(-((n1 / 0.3) ** 2)) + 0.35 * np.exp(-((n2 / 0.3) ** 2)))
    fibres = mix * ridges[0] + (1 - mix) * ridges[1]
    fine = noise.field(noise.band(0.3, 1.5))
    chromatin = noise.field(noise.band(0.2, 0.7))

    # --- glands: epithelium and lumen coverage ---
    gland = np.zeros((ny, nx), np.float64)
    lumen = np.zeros((ny, nx), np.float64)
    bound = np.maximum(g_a, g_b) * (1 + np.abs(g_harm).sum(axis=1))
    for w, dy, dx, flat in _patches((ny, nx), px, gy, gx, bound):
        rho = _outline_rho(dy, dx, g_a[w], g_b[w], g_angle[w], g_harm[w])
        edge = (0.6 / grad[w]).astype(np.float32)[:, None, None]
        _accumulate(gland, flat, _smoothstep((1 - rho) / edge))
        lum = g_lumen[w].astype(np.float32)[:, None, None]
        _accumulate(lumen, flat, _smoothstep((lum - rho) / edge))
    gland_f = np.minimum(gland, 1).astype(np.float32)
    lumen_f = np.minimum(lumen, 1).astype(np.float32)

    # Stromal nuclei live outside glands, in tissue; they follow the local fibre direction.
    def _at(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return img[(y / px).astype(np.int64) % ny, (x / px).astype(np.int64) % nx]

    f_keep = (_at(gland_f, f_y, f_x) < 0.05) & (_at(present, f_y, f_x) > 0.5)
    f_angle = np.where(_at(mix, f_y, f_x) > 0.5, fibre_angles[0], fibre_angles[1]) + f_jitter
    l_keep = (_at(gland_f, l_y, l_x) < 0.05) & (_at(present, l_y, l_x) > 0.5)
    ny_all = np.concatenate([e_y, f_y[f_keep], l_y[l_keep]])
    nx_all = np.concatenate([e_x, f_x[f_keep], l_x[l_keep]])
    na = np.concatenate([e_a, f_a[f_keep], l_r[l_keep]])
    nb = np.concatenate([e_b, f_b[f_keep], l_r[l_keep]])
    nang = np.concatenate([e_angle, f_angle[f_keep], np.zeros(int(l_keep.sum()))])
    ndark = np.concatenate([e_dark, f_dark[f_keep], l_dark[l_keep]])
    cover = np.zeros((ny, nx), np.float64)
    dark = np.zeros((ny, nx), np.float64)
    no_harm = np.zeros((len(na), 0), complex)
    for w, dy, dx, flat in _patches((ny, nx), px, ny_all, nx_all, na):
        rho = _outline_rho(dy, dx, na[w], nb[w], nang[w], no_harm[w])
        edge = (0.35 / nb[w]).astype(np.float32)[:, None, None]
        m = _smoothstep((1 - rho) / edge)
        _accumulate(cover, flat, m)
        _accumulate(dark, flat, m * ndark[w].astype(np.float32)[:, None, None])
    cover_f = np.minimum(cover, 1).astype(np.float32)
    dark_f = (dark / np.maximum(cover, 1e-6)).astype(np.float32)

    # --- absorbance (fraction of intensity absorbed) ---
    stroma = 0.22 + 0.3 * fibres + 0.04 * fine
    epithelium = 0.42 + 0.05 * fine
    base = (1 - gland_f) * stroma + gland_f * ((1 - lumen_f) * epithelium + lumen_f * 0.05)
    nuclei = dark_f * (1 + 0.15 * chromatin)
    a = stain * present * ((1 - cover_f) * base + cover_f * nuclei) + 0.01
    a = np.clip(a, 0.0, 0.9).astype(np.float32)
    phase = np.float32(2 * np.pi * dn * thick / lam / 0.9) * a
    t = _transmittance(np.sqrt(1 - a), phase, (ny, nx))
    desc = _describe(
        "tissue",
        seed,
        wavelength_um=lam,
        stain_strength=stain,
        thickness_um=thick,
        index_contrast=dn,
        n_glands=ng,
        n_nuclei=len(na),
    )
    return Sample("transmittance", t, px, desc)


def fluorescent_tissue(
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    density: float = 0.55,
    diameter_um: tuple[float, float] = (10.0, 22.0),
    filament_um_per_100um2: float = 15.0,
    puncta_per_100um2: float = 4.0,
    background: float = 0.02,
    seed: int | None = 0,
) -> Sample:
    """Fluorescently labelled tissue: a non-negative emitter map (density per unit area).

    Cell bodies (dim, granular cytoplasm) with brighter textured nuclei, thin curved
    filaments (worm-like chains, persistence length 15–60 µm, ~0.2 µm wide), diffraction-
    limited puncta, and smooth autofluorescence background (``background`` relative to the
    maximum: dynamic range ~1:50). Normalized so the maximum is 1. ``density`` is roughly
    the fraction of the field covered by cells.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels, each ≥ 4.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    density : float, optional
        Approximate fraction of the field covered by cells, in [0, 0.95] (default 0.55).
    diameter_um : tuple of float, optional
        (min, max) cell diameter, in µm (default (10, 22)).
    filament_um_per_100um2 : float, optional
        Filament length, in µm per 100 µm² of field (default 15).
    puncta_per_100um2 : float, optional
        Mean number of puncta per 100 µm² (default 4).
    background : float, optional
        Autofluorescence relative to the maximum, in [0, 1] (default 0.02).
    seed : int or None, optional
        Seed of the scene (default 0).

    Returns
    -------
    sample : Sample
        A fluorescence sample with maximum 1.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """
    ny, nx = _check_shape(shape)
    px = _check_pixel_size(pixel_size_um)
    dens = _check_number("density", density, lo=0, hi=0.95)
    dmin, dmax = _check_range("diameter_um", diameter_um)
    fil = _check_number("filament_um_per_100um2", filament_um_per_100um2, lo=0)
    pun = _check_number("puncta_per_100um2", puncta_per_100um2, lo=0)
    bg = _check_number("background", background, lo=0, hi=1)
    seed = _check_seed(seed)
    rng, rng_tex = _rngs(seed)
    ey, ex = ny * px, nx * px
    area = ey * ex

    # --- cells ---
    mean_area = math.pi / 4 * (dmin**2 + dmin * dmax + dmax**2) / 3
    n_wanted = int(rng.poisson(_cell_count_factor(dens) * area / mean_area))
    cy, cx, rad = _place(rng, (ey, ex), n_wanted, lambda m: rng.uniform(dmin, dmax, m) / 2, 0.75)
    n = len(cy)
    aspect = rng.uniform(1.0, 1.8, n)
    semi_a, semi_b = rad * np.sqrt(aspect), rad / np.sqrt(aspect)
    angle = rng.uniform(0, np.pi, n)
    harm = _random_harmonics(rng, n, (0.14, 0.08, 0.05, 0.03))
    cyto = rng.uniform(0.06, 0.25, n)
    nuc_frac = rng.uniform(0.3, 0.45, n)
    nuc_a = semi_a * nuc_frac * rng.uniform(0.9, 1.15, n)
    nuc_b = semi_b * nuc_frac * rng.uniform(0.9, 1.15, n)
    nuc_angle = angle + rng.normal(0, 0.2, n)
    off_r, off_t = rng.uniform(0, 0.25, n), rng.uniform(0, 2 * np.pi, n)
    ou, ov = off_r * semi_a * np.cos(off_t), off_r * semi_b * np.sin(off_t)
    nuc_dx = ou * np.cos(angle) - ov * np.sin(angle)
    nuc_dy = ou * np.sin(angle) + ov * np.cos(angle)
    nuc_level = rng.uniform(0.35, 0.8, n)

    # --- filaments: worm-like chains sampled every 0.5 µm (pixel-size independent) ---
    step = 0.5
    lengths_range = (8.0, 60.0)
    n_fil = int(rng.poisson(fil * area / 100 / np.mean(lengths_range)))
    f_len = rng.uniform(*lengths_range, n_fil)
    k_max = math.ceil(lengths_range[1] / step)
    from_cell = (rng.uniform(0, 1, n_fil) < 0.6) & (n > 0)
    host = rng.integers(0, max(n, 1), n_fil)
    sy, sx = rng.uniform(0, ey, n_fil), rng.uniform(0, ex, n_fil)
    if n:
        sy = np.where(from_cell, cy[host] + nuc_dy[host], sy)
        sx = np.where(from_cell, cx[host] + nuc_dx[host], sx)
    persistence = rng.uniform(15.0, 60.0, n_fil)
    turns = rng.normal(0, 1, (n_fil, k_max)) * np.sqrt(step / persistence)[:, None]
    heading = rng.uniform(0, 2 * np.pi, n_fil)[:, None] + np.cumsum(turns, axis=1)
    vy = sy[:, None] + np.concatenate(
        [np.zeros((n_fil, 1)), np.cumsum(step * np.sin(heading), axis=1)], axis=1
    )
    vx = sx[:, None] + np.concatenate(
        [np.zeros((n_fil, 1)), np.cumsum(step * np.cos(heading), axis=1)], axis=1
    )
    f_line = rng.uniform(0.04, 0.1, n_fil)  # emitters per µm of filament (density·µm)

    # --- puncta: mostly inside cells ---
    n_p = int(rng.poisson(pun * area / 100))
    in_cell = (rng.uniform(0, 1, n_p) < 0.7) & (n > 0)
    p_host = rng.integers(0, max(n, 1), n_p)
    p_r, p_t = np.sqrt(rng.uniform(0, 1, n_p)) * 0.85, rng.uniform(0, 2 * np.pi, n_p)
    p_y, p_x = rng.uniform(0, ey, n_p), rng.uniform(0, ex, n_p)
    if n:
        pu = p_r * semi_a[p_host] * np.cos(p_t)
        pv = p_r * semi_b[p_host] * np.sin(p_t)
        ang = angle[p_host]
        p_y = np.where(in_cell, cy[p_host] + pu * np.sin(ang) + pv * np.cos(ang), p_y)
        p_x = np.where(in_cell, cx[p_host] + pu * np.cos(ang) - pv * np.sin(ang), p_x)
    p_q = np.clip(rng.lognormal(math.log(0.04), 0.5, n_p), 0.01, 0.1)  # density·µm² per punctum

    # --- render cells ---
    cyto_map = np.zeros((ny, nx), np.float64)
    nuc_map = np.zeros((ny, nx), np.float64)
    bound = np.maximum(semi_a, semi_b) * (1 + np.abs(harm).sum(axis=1))
    no_harm = np.zeros((n, 0), complex)
    for w, dy, dx, flat in _patches((ny, nx), px, cy, cx, bound):
        f32 = lambda v, w=w: v[w].astype(np.float32)[:, None, None]  # noqa: E731
        rho = _outline_rho(dy, dx, semi_a[w], semi_b[w], angle[w], harm[w])
        body = _smoothstep((1 - rho) / f32(0.4 / rad))
        dome = np.sqrt(np.maximum(1 - rho * rho, 0))
        _accumulate(cyto_map, flat, f32(cyto) * body * (0.55 + 0.45 * dome))
        rho_n = _outline_rho(
            dy - f32(nuc_dy), dx - f32(nuc_dx), nuc_a[w], nuc_b[w], nuc_angle[w], no_harm[w]
        )
        _accumulate(nuc_map, flat, f32(nuc_level) * _smoothstep((1 - rho_n) / f32(0.3 / nuc_b)))

    # --- render filaments and puncta: points at ≤ 0.4 px spacing, then a 0.2 µm-wide blur ---
    sub = max(1, math.ceil(step / (0.4 * px)))
    frac = (np.arange(sub) / sub)[None, None, :]
    py_f = (vy[:, :-1, None] + frac * np.diff(vy, axis=1)[:, :, None]).reshape(n_fil, k_max * sub)
    px_f = (vx[:, :-1, None] + frac * np.diff(vx, axis=1)[:, :, None]).reshape(n_fil, k_max * sub)
    along = np.arange(py_f.shape[1]) * (step / sub)
    on = along[None, :] < f_len[:, None]
    ds = step / sub
    wts = np.broadcast_to((f_line * ds / px**2)[:, None], on.shape)
    small = _splat((ny, nx), px, py_f[on], px_f[on], wts[on])
    small += _splat((ny, nx), px, p_y, p_x, p_q / px**2)
    small = _blur_um(small, px, 0.085)

    noise = _Noise(rng_tex, (ny, nx), px)
    granular = noise.field(noise.band(0.25, 1.2))
    chromatin = noise.field(noise.band(0.2, 0.8))
    auto = noise.field(noise.gauss(15.0))
    emit = (
        np.float32(bg) * np.maximum(1 + 0.25 * auto, 0.5)
        + cyto_map.astype(np.float32) * np.maximum(1 + 0.45 * granular, 0)
        + nuc_map.astype(np.float32) * np.maximum(1 + 0.25 * chromatin, 0)
        + small.astype(np.float32)
    )
    emit = np.maximum(emit, 0)
    peak = float(emit.max())
    if peak > 0:
        emit *= np.float32(1.0 / peak)
    desc = _describe(
        "fluorescent-tissue",
        seed,
        density=dens,
        diameter_um=(dmin, dmax),
        filament_um_per_100um2=fil,
        puncta_per_100um2=pun,
        background=bg,
        n_cells=n,
        n_filaments=n_fil,
        n_puncta=n_p,
    )
    return Sample("fluorescence", emit.astype(np.float32, copy=False), px, desc)


# --------------------------------------------------------------------------- user images

_LUMA = np.array([0.2125, 0.7154, 0.0721])  # Rec. 709 luminance (as skimage.color.rgb2gray)


def from_image(
    image: np.ndarray,
    pixel_size_um: float,
    *,
    as_: Literal["phase", "absorption", "fluorescence"] = "phase",
    strength: float = 1.0,
    description: dict[str, Any] | None = None,
) -> Sample:
    """A sample from any 2-D image (RGB/RGBA → luminance), min–max scaled to ``img ∈ [0, 1]``.

    ``as_="phase"``: ``t = exp(i·strength·img)`` (strength in rad);
    ``"absorption"``: ``t = sqrt(1 − strength·img)`` (strength ∈ [0, 1]);
    ``"fluorescence"``: emitters ``= strength·img`` (strength ≥ 0).

    Parameters
    ----------
    image : (Y, X) or (Y, X, 3 or 4) ndarray
        Real-valued image, grey or RGB(A); not constant, finite.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    as_ : {'phase', 'absorption', 'fluorescence'}, optional
        How the image becomes a sample (default 'phase').
    strength : float, optional
        Peak phase (rad), absorbed fraction, or emitter scale (default 1).
    description : dict, optional
        Extra JSON-able provenance merged into the sample's description.

    Returns
    -------
    sample : Sample
        A transmittance sample (phase, absorption) or a fluorescence sample.

    Raises
    ------
    ConfigError
        If the image is not 2-D/RGB, not real, not finite or constant, or ``as_`` or
        ``strength`` is invalid.
    """
    px = _check_pixel_size(pixel_size_um)
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3].astype(np.float64) @ _LUMA
    if img.ndim != 2:
        raise ConfigError(
            f"sample image must be 2-D (Y, X) or RGB (Y, X, 3), got shape {img.shape}; "
            "pick one plane or channel"
        )
    if not (np.issubdtype(img.dtype, np.number) or img.dtype == bool) or np.iscomplexobj(img):
        raise ConfigError(f"sample image must be real numbers, got dtype {img.dtype}")
    img = img.astype(np.float64)
    if not np.isfinite(img).all():
        raise ConfigError("sample image contains NaN or inf; replace them before use")
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        raise ConfigError(
            f"sample image is constant ({lo:g}); it has no structure to image — use a real image"
        )
    img = (img - lo) / (hi - lo)
    if as_ == "phase":
        s = _check_number("strength (phase, rad)", strength)
        sample = Sample("transmittance", np.exp(1j * s * img).astype(np.complex64), px, {})
    elif as_ == "absorption":
        s = _check_number("strength (absorption, fraction absorbed)", strength, lo=0, hi=1)
        sample = Sample("transmittance", np.sqrt(1 - s * img).astype(np.complex64), px, {})
    elif as_ == "fluorescence":
        s = _check_number("strength (fluorescence)", strength, lo=0)
        sample = Sample("fluorescence", (s * img).astype(np.float32), px, {})
    else:
        raise ConfigError(f"as_ must be 'phase', 'absorption' or 'fluorescence', got {as_!r}")
    desc = {"generator": "from_image", "as_": as_, "strength": s, **(description or {})}
    return Sample(sample.kind, sample.values, px, desc)


_TIFF = (".tif", ".tiff")
_RASTER = (".png", ".jpg", ".jpeg")


def load_sample_image(
    path: str | Path,
    pixel_size_um: float,
    as_: Literal["phase", "absorption", "fluorescence"] = "phase",
    strength: float = 1.0,
) -> Sample:
    """Read a TIFF (tifffile) or PNG/JPEG (scikit-image) and make a sample (see ``from_image``).

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.tif``, ``.tiff``, ``.png``, ``.jpg`` or ``.jpeg`` file.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    as_ : {'phase', 'absorption', 'fluorescence'}, optional
        How the image becomes a sample (default 'phase').
    strength : float, optional
        Peak phase (rad), absorbed fraction, or emitter scale (default 1).

    Returns
    -------
    sample : Sample
        The sample; its description records the source path.

    Raises
    ------
    ConfigError
        If the file is missing, of an unsupported type, unreadable, or not a valid image.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise ConfigError(f"{p}: sample image not found — check the path")
    if suffix not in _TIFF + _RASTER:
        raise ConfigError(
            f"{p}: unsupported sample image type {suffix or '(none)'!r} — "
            "convert it to TIFF, PNG or JPEG"
        )
    try:
        with library_messages() as said:  # tifffile / Pillow say more than one error line
            if suffix in _TIFF:
                import tifffile

                image = tifffile.imread(p)
            else:
                from skimage import io as skio

                with open(p, "rb") as f:  # closed even when a plugin fails half-way
                    image = skio.imread(f)
        if said.errors:  # tifffile logs, rather than raises, on broken page chains
            raise ValueError(said.errors[0])
    except Exception as exc:
        raise ConfigError(
            f"{p}: cannot read the sample image ({image_problem(p, exc)}) — re-save it"
        ) from None
    image = np.squeeze(np.asarray(image))
    try:
        return from_image(
            image,
            pixel_size_um,
            as_=as_,
            strength=strength,
            description={"source": str(p)},
        )
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


# --------------------------------------------------------------------------- registry

SAMPLE_GENERATORS: dict[str, Callable[..., Sample]] = {
    "beads": beads,
    "cells": cells,
    "tissue": tissue,
    "fluorescent-tissue": fluorescent_tissue,
}


def stain_density(
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    seed: int | None = 0,
    generator: str = "cells",
    wavelength_um: float = 0.5,
) -> np.ndarray:
    """A phase sample's phase map used as a stain density (an emitter or absorber map).

    ``φ − min φ + 0.02`` of the named transmittance generator (cell bodies, nuclei and
    granules become bright, the background faint but not empty). float64 (Y, X).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    seed : int or None, optional
        Seed of the scene (default 0).
    generator : str, optional
        Name of a transmittance generator in :data:`SAMPLE_GENERATORS` (default 'cells').
    wavelength_um : float, optional
        Wavelength λ given to the generator, in µm (default 0.5).

    Returns
    -------
    density : (Y, X) ndarray of float64
        The stain density, ≥ 0.02.

    Raises
    ------
    ConfigError
        If the generator is unknown or a parameter is out of range.
    """
    t = make_sample(generator, shape, pixel_size_um, seed=seed, wavelength_um=wavelength_um).values
    phase = np.angle(t)
    return phase.astype(np.float64) - float(phase.min()) + 0.02


@functools.lru_cache(maxsize=32)
def _picture(name: str, channel: int | None) -> np.ndarray:
    import skimage.data

    try:
        loader = getattr(skimage.data, name)
    except AttributeError:
        raise ConfigError(f"skimage.data has no image {name!r}") from None
    img = np.asarray(loader(), dtype=np.float64)
    if img.ndim == 3:
        img = (
            img[..., channel]
            if channel is not None
            else img[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
        )
    img.flags.writeable = False
    return img


def picture(name: str, *, channel: int | None = None) -> np.ndarray:
    """A scikit-image example picture (``skimage.data.<name>``) as a grey float64 image.

    Colour images give their BT.709 luminance ``0.2126·R + 0.7152·G + 0.0722·B``, or one
    ``channel``. Read-only (cached); values as stored (0–255 for 8-bit pictures).

    Parameters
    ----------
    name : str
        Name of a loader in ``skimage.data`` (e.g. ``"camera"``).
    channel : int, optional
        Colour channel to take instead of the luminance.

    Returns
    -------
    image : (Y, X) ndarray of float64
        The read-only grey picture.

    Raises
    ------
    ConfigError
        If ``skimage.data`` has no such picture.
    """
    return _picture(str(name), None if channel is None else int(channel))


def make_sample(
    name: str,
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    seed: int | None = 0,
    wavelength_um: float | None = None,
    **kwargs: Any,
) -> Sample:
    """Generate the named sample; ``wavelength_um`` goes only to generators that use it.

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLE_GENERATORS` (``beads``, ``cells``, ``tissue``,
        ``fluorescent-tissue``) or a sample family (``focuskit samples``, e.g.
        ``point-emitters``, whose unset parameters are drawn from the seed); case and
        ``_``/``-`` are ignored.
    shape : tuple of int
        (Y, X) in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    seed : int or None, optional
        Seed of the scene (default 0).
    wavelength_um : float, optional
        Wavelength λ, in µm, for generators that take one.
    **kwargs
        Further parameters of the generator.

    Returns
    -------
    sample : Sample
        The generated sample.

    Raises
    ------
    ConfigError
        If the name is unknown or a parameter is not one the generator takes.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in SAMPLE_GENERATORS:
        from focuskit.simulate._families import FAMILIES, _load

        _load()
        if key in FAMILIES:
            _check_seed(seed)
            lam = {} if wavelength_um is None else {"wavelength_um": wavelength_um}
            return FAMILIES[key](shape, pixel_size_um, seed, **lam, **kwargs)
        raise ConfigError(
            f"unknown sample {name!r}; choose a generator ({', '.join(SAMPLE_GENERATORS)}) "
            f"or a family ({', '.join(FAMILIES)}) — see `focuskit samples`"
        )
    gen = SAMPLE_GENERATORS[key]
    params = inspect.signature(gen).parameters
    allowed = [p for p in params if p not in ("shape", "pixel_size_um", "seed")]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"sample {key!r} has no parameter {', '.join(unknown)}; it takes: {', '.join(allowed)}"
        )
    if wavelength_um is not None and "wavelength_um" in params:
        kwargs["wavelength_um"] = wavelength_um
    return gen(shape, pixel_size_um, seed=seed, **kwargs)
