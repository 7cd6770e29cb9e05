"""Physics refocusing: defocus estimated from the image's own spectrum, the in-focus image
recovered with the estimated PSF, and the re-blur consistency check of any refocused image.

Model (per tile, fluorescence, OPTICS.md units). The measured image is the object ``o``
blurred by the PSF at defocus ``z`` plus white noise, ``y = h_z ∗ o + n``; the in-focus
image we want is ``x₀ = h₀ ∗ o``. With a smooth object spectrum ``S(k)`` (a cubic in
``log k``) and noise power ``N``, the periodogram of the (Hann-windowed) tile has
expectation ``E[P(k)] = S(k)·|H_z(k)|² + N`` and, averaged over a ring of ``m``
frequencies, is Gamma distributed. So

- :func:`estimate_defocus` maximizes the ring likelihood over the optics' (or a measured
  bead stack's) PSF family at candidate ``|z|`` (an aberration-free PSF is the same at
  ±z), and keeps the smallest ``|z|`` the data cannot tell from the best;
- :func:`rl_tv_refocus` is the Richardson–Lucy estimate of ``o`` with a total-variation
  prior (Dey et al. 2006), blurred back to focus by ``h₀``;
- :func:`reblur_consistency` blurs a candidate in-focus image to the measured defocus with
  the relative OTF ``R = H_z / H₀`` (``|R| ≤ 1`` for an aberration-free pupil, where the
  in-focus OTF bounds every defocused one) and compares it with the measurement:
  ``χ² = mean((y − R·x̂)²) / N``, ≈ 1 for an image the measurement supports.

Every tile is processed with a margin of real neighbours (mirror-reflected past the
image's edge) and blended with a raised-cosine window, so no frame artefacts appear.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.fft

from focuskit._errors import ConfigError
from focuskit.optics import Optics

SPECTRUM_DEGREE = 3  # log S(k) is a polynomial of this degree in log k
EVIDENCE_NATS = 2.0  # likelihood a larger |z| must gain to be chosen over a smaller one


# --------------------------------------------------------------------------- PSF family


class PsfFamily:
    """The PSFs of one microscope at candidate defocus, and their OTFs on any FFT grid.

    From the optics (:func:`focuskit.restore.defocus_psf`, as the simulator images a point)
    or from a measured bead stack (:meth:`from_stack`). OTFs are cached per grid.

    Parameters
    ----------
    optics : Optics, optional
        Fluorescence optics (exclusive with ``psfs``).
    z_um : sequence of float, optional
        Candidate defocus |z| (µm, ascending, starting at 0). Default: 0 … ``z_max_um`` in
        steps of DOF/4.
    z_max_um : float, optional
        Largest candidate |z| (µm, default 8 DOF).
    pixel_size_um : float, optional
        Camera pixel at the sample (µm), default the optics'.
    psfs : sequence of ndarray, optional
        Measured PSFs, one per ``z_um`` (each 2-D, ≥ 0).
    """

    def __init__(
        self,
        optics: Optics | None = None,
        z_um: Sequence[float] | None = None,
        *,
        z_max_um: float | None = None,
        pixel_size_um: float | None = None,
        psfs: Sequence[np.ndarray] | None = None,
    ) -> None:
        if (optics is None) == (psfs is None):
            raise ConfigError("a PSF family needs the optics or measured PSFs (one of the two)")
        if optics is not None and not optics.is_fluorescence:
            raise ConfigError(
                f"physics refocusing needs fluorescence optics, got {optics.illumination.kind} "
                "illumination (partially coherent imaging has no intensity PSF); use the "
                "learned model (--method deepr) or a fluorescence preset"
            )
        self.optics = optics
        self.pixel_size_um = (
            float(pixel_size_um)
            if pixel_size_um is not None
            else (optics.pixel_size_um if optics is not None else math.nan)
        )
        if psfs is not None:
            if z_um is None or len(z_um) != len(psfs):
                raise ConfigError("measured PSFs need one z (µm) each")
            z = np.abs(np.asarray(z_um, dtype=np.float64))
            order = np.argsort(z)
            self.z_um = z[order]
            self._psfs: dict[int, np.ndarray] = {
                i: _clean_psf(np.asarray(psfs[j], dtype=np.float64)) for i, j in enumerate(order)
            }
        else:
            assert optics is not None
            dof = optics.depth_of_field_um
            top = 8 * dof if z_max_um is None else float(z_max_um)
            if not (math.isfinite(top) and top > 0):
                raise ConfigError(f"z_max_um must be a finite number > 0, got {z_max_um!r}")
            self.z_um = (
                np.arange(0.0, top + 1e-9, dof / 4)
                if z_um is None
                else np.abs(np.asarray(z_um, dtype=np.float64))
            )
            self._psfs = {}
        if self.z_um.size < 2 or not np.all(np.isfinite(self.z_um)):
            raise ConfigError("a PSF family needs at least two finite candidate z values")
        self._otfs: dict[tuple[int, int, int], np.ndarray] = {}
        self._rings: dict[tuple[int, int], Any] = {}

    @classmethod
    def from_stack(cls, stack: Any) -> PsfFamily:
        """A family from a measured bead stack (a :class:`focuskit.io.FocalStack` with z).

        Each plane is background-subtracted (its median), clipped at 0 and normalized; the
        planes' z are taken relative to the sharpest (highest peak) plane.
        """
        planes = np.asarray(stack.data, dtype=np.float64)
        if planes.ndim != 3 or len(planes) < 2:
            raise ConfigError("a measured PSF needs a focal stack of at least two planes")
        z = np.asarray(stack.z_um, dtype=np.float64)
        peak = int(np.argmax([p.max() - np.median(p) for p in planes]))
        psfs = [np.maximum(p - np.median(p), 0.0) for p in planes]
        return cls(z_um=list(np.abs(z - z[peak])), psfs=psfs, pixel_size_um=stack.pixel_size_um)

    def psf(self, i: int) -> np.ndarray:
        """The PSF at candidate ``z_um[i]`` (centred, sum 1)."""
        if i not in self._psfs:
            from focuskit.restore._deconvolve import defocus_psf

            assert self.optics is not None
            self._psfs[i] = defocus_psf(
                self.optics, float(self.z_um[i]), pixel_size_um=self.pixel_size_um
            )
        return self._psfs[i]

    def otf(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        """The OTF at ``z_um[i]`` on an rfft2 grid of ``shape`` (PSF centre at the origin)."""
        key = (i, int(shape[0]), int(shape[1]))
        if key not in self._otfs:
            self._otfs[key] = _otf(self.psf(i), shape)
        return self._otfs[key]

    def otf_at(self, z_um: float, shape: tuple[int, int]) -> np.ndarray:
        """The OTF at any |z| in the family's range, interpolated linearly between candidates."""
        z = min(abs(float(z_um)), float(self.z_um[-1]))
        j = int(np.clip(np.searchsorted(self.z_um, z), 1, self.z_um.size - 1))
        z0, z1 = self.z_um[j - 1], self.z_um[j]
        t = 0.0 if z1 == z0 else (z - z0) / (z1 - z0)
        if t <= 1e-6:
            return self.otf(j - 1, shape)
        if t >= 1 - 1e-6:
            return self.otf(j, shape)
        return (1 - t) * self.otf(j - 1, shape) + t * self.otf(j, shape)

    @property
    def in_focus_um(self) -> float:
        """|z| under which an image counts as in focus: DOF/2 from the optics, else the
        measured stack's second candidate (its plane spacing)."""
        if self.optics is not None:
            return 0.5 * self.optics.depth_of_field_um
        return float(self.z_um[1])

    def support_px(self, z_um: float) -> int:
        """Half-width (pixels) that holds 99 % of the PSF's energy at |z| (for margins)."""
        i = int(np.argmin(np.abs(self.z_um - abs(z_um))))
        p = self.psf(i)
        cy, cx = p.shape[0] // 2, p.shape[1] // 2
        yy, xx = np.indices(p.shape)
        r = np.maximum(np.abs(yy - cy), np.abs(xx - cx)).ravel()
        order = np.argsort(r)
        cum = np.cumsum(p.ravel()[order])
        return int(r[order][np.searchsorted(cum, 0.99 * cum[-1])]) + 2

    def rings(self, shape: tuple[int, int]) -> Any:
        """Ring index of every rfft2 frequency, ring counts and radii (cycles/pixel)."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._rings:
            fy = np.fft.fftfreq(shape[0])[:, None]
            fx = np.fft.rfftfreq(shape[1])[None, :]
            radius = np.hypot(fy, fx)
            step = 1.0 / min(shape)
            index = np.minimum((radius / step).astype(int), int(0.5 / step))
            count = np.bincount(index.ravel())
            centre = np.bincount(index.ravel(), radius.ravel()) / np.maximum(count, 1)
            self._rings[key] = (index, count, centre, radius)
        return self._rings[key]


def _clean_psf(p: np.ndarray) -> np.ndarray:
    if p.ndim != 2 or not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
        raise ConfigError("a measured PSF plane must be 2-D, finite, ≥ 0 and not all zero")
    p = np.pad(p, ((1 - p.shape[0] % 2, 0), (1 - p.shape[1] % 2, 0)))
    return p / p.sum()


def _otf(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rfft2 of ``psf`` (odd, centred) wrapped onto a grid of ``shape`` (centre at origin)."""
    ny, nx = shape
    py, px = psf.shape
    cy, cx = py // 2, px // 2
    # Crop a PSF wider than the grid (its far wings only), keeping the centre.
    hy, hx = min(cy, (ny - 1) // 2), min(cx, (nx - 1) // 2)
    p = psf[cy - hy : cy + hy + 1, cx - hx : cx + hx + 1]
    p = p / p.sum()
    kernel = np.zeros(shape)
    kernel[: p.shape[0], : p.shape[1]] = p
    kernel = np.roll(kernel, (-hy, -hx), axis=(0, 1))
    return scipy.fft.rfft2(kernel)


# --------------------------------------------------------------------------- estimation


@dataclass
class DefocusFit:
    """The spectrum fit of one tile: estimated |z| and its likelihood curve.

    Attributes
    ----------
    z_um : float
        The estimate (µm): the smallest candidate within ``evidence_nats`` of the maximum.
    z_low_um, z_high_um : float
        The smallest and largest candidates within ``evidence_nats`` of the maximum.
    loglik : ndarray
        ℓ(z) over ``z_grid_um``.
    z_grid_um : ndarray
        The candidates.
    noise : float
        ``N``, the white-noise variance per pixel (image units squared).
    evidence_nats : float
        ``ℓ(z_um) − ℓ(0)``: how much better the estimate explains the tile than focus.
    at_edge : bool
        The maximum sits at the largest candidate: the defocus may be larger still.
    """

    z_um: float
    z_low_um: float
    z_high_um: float
    loglik: np.ndarray
    z_grid_um: np.ndarray
    noise: float
    evidence_nats: float = 0.0
    dispersion: float = 1.0
    at_edge: bool = False


def _periodogram(tile: np.ndarray) -> np.ndarray:
    """Hann-windowed periodogram, normalized so that white noise of variance σ² reads σ²."""
    ny, nx = tile.shape
    w = np.outer(np.hanning(ny + 2)[1:-1], np.hanning(nx + 2)[1:-1])
    a = (tile - tile.mean()) * w
    f = scipy.fft.rfft2(a)
    p = f.real**2 + f.imag**2
    return p / float((w**2).sum())


def noise_level(image: np.ndarray) -> tuple[float, float]:
    """The camera's noise level function ``var(y) = a·y + b`` (Poisson–Gaussian), from the
    image itself.

    The 2×2 difference ``d = (y₀₀ − y₀₁ − y₁₀ + y₁₁)/2`` keeps the noise variance and
    cancels smooth signal; in 20 intensity bins of the 3×3 local mean ``μ`` the robust
    variance ``(MAD(d)/0.6745)²`` is fitted by ``a·μ + b`` (a ≥ 0). The median per bin keeps
    edges and bright spots out of it.

    Parameters
    ----------
    image : (Y, X) ndarray
        A camera image (counts or intensities, offset included).

    Returns
    -------
    a, b : float
        Gain (image units per photo-electron) and the signal-independent variance.
    """
    import scipy.ndimage

    y = np.asarray(image, dtype=np.float64)
    d = (y[:-1, :-1] - y[:-1, 1:] - y[1:, :-1] + y[1:, 1:]) / 2
    mu = scipy.ndimage.uniform_filter(y, 3)[:-1, :-1]
    edges = np.quantile(mu, np.linspace(0, 1, 21))
    xs, vs = [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (mu >= lo) & (mu <= hi)
        if sel.sum() >= 50:
            xs.append(float(mu[sel].mean()))
            vs.append(float(np.median(np.abs(d[sel])) / 0.6745) ** 2)
    if not vs:
        return 0.0, float(np.var(d)) + 1e-12
    x, v = np.asarray(xs), np.asarray(vs)
    if x.size >= 2 and np.ptp(x) > 0:
        a, b = (float(c) for c in np.polyfit(x, v, 1))
        if a <= 0.0:
            a, b = 0.0, float(np.median(v))
    else:
        a, b = 0.0, float(v[0])
    return a, max(b, float(v.min()) - a * float(x[int(np.argmin(v))]), 1e-12)


def noise_power(image: np.ndarray) -> float:
    """White-noise variance per pixel: the mean of :func:`noise_level` over the image,
    ``a·mean(y) + b`` — what the periodogram's white floor reads.

    Parameters
    ----------
    image : (Y, X) ndarray
        A camera image.

    Returns
    -------
    variance : float
        Mean noise variance per pixel (image units squared).
    """
    a, b = noise_level(image)
    return float(max(a * float(np.mean(image)) + b, 1e-12))


def _ring_means(values: np.ndarray, index: np.ndarray, count: np.ndarray) -> np.ndarray:
    return np.bincount(index.ravel(), values.ravel(), minlength=count.size) / np.maximum(count, 1)


def _fit_spectrum(
    t: np.ndarray, pbar: np.ndarray, m: np.ndarray, basis: np.ndarray, noise: float
) -> tuple[np.ndarray, float]:
    """ML fit of the smooth object spectrum ``log S = basis @ c`` in
    ``v = S·T + N`` to ring means ``pbar`` (counts ``m``): Gauss–Newton on the Gamma
    likelihood; returns (c, ℓ)."""
    t = np.maximum(t, 1e-12)
    s = np.maximum(pbar - noise, 0.05 * pbar) / t
    w = m * np.clip(t * s / (t * s + noise), 1e-3, 1.0) ** 2
    sw = np.sqrt(w)
    c = np.linalg.lstsq(basis * sw[:, None], np.log(s) * sw, rcond=None)[0]
    for _ in range(8):
        st = np.exp(np.clip(basis @ c, -700, 700)) * t
        v = st + noise
        grad = m * (1.0 - pbar / v) * (st / v)
        hess = np.maximum(m * (st / v) ** 2, 1e-300)
        step = np.linalg.lstsq(basis * np.sqrt(hess)[:, None], -grad / np.sqrt(hess), rcond=None)
        c = c + np.clip(step[0], -2.0, 2.0)
    v = np.exp(np.clip(basis @ c, -700, 700)) * t + noise
    return c, float(-(m * (np.log(v) + pbar / v)).sum())


def estimate_defocus(
    tile: np.ndarray,
    family: PsfFamily,
    *,
    k_min_rings: int = 2,
    noise: float | None = None,
    evidence_nats: float = EVIDENCE_NATS,
) -> DefocusFit:
    """Maximum-likelihood |z| of one tile over the PSF family, from its spectrum.

    ``ℓ(z) = max_c −Σ_b m_b (log v_b + P̄_b / v_b)`` with ``v_b = S_b(c)·T_b(z) + N``:
    ``P̄_b`` the Hann-windowed periodogram averaged over ring ``b`` (``m_b`` frequencies,
    Gamma distributed about ``v_b``), ``T_b(z)`` the ring mean of ``|H_z|²``, the object
    spectrum ``log S = Σ_j c_j (log k)^j`` a cubic in log frequency (smooth: it cannot make
    the OTF's zero rings), and ``N`` the white-noise variance from :func:`noise_power`.

    A blur that only lowers high frequencies is indistinguishable from a smoother object,
    so the estimate is conservative: the smallest candidate whose likelihood is within
    ``evidence_nats`` of the maximum. Over-estimating the defocus is what harms (a
    deconvolution with too wide a PSF rings); under-estimating it only sharpens less.

    Parameters
    ----------
    tile : (Y, X) ndarray
        One tile of the measured image (≥ 32 pixels a side), real and finite.
    family : PsfFamily
        The candidate PSFs.
    k_min_rings : int, optional
        Rings left out at the lowest frequencies (mean and window leakage; default 2).
    noise : float, optional
        The white-noise variance per pixel if known (default: :func:`noise_power`).
    evidence_nats : float, optional
        Likelihood a larger |z| must gain over a smaller one to be chosen (default 2).

    Returns
    -------
    fit : DefocusFit
        The estimate, its interval, the likelihood curve and the fitted spectrum.

    References
    ----------
    .. [1] Y. Luo et al., ACS Photonics 8, 625 (2021), Methods: Deep-R's defocus-map
           decoder, the learned counterpart of this estimate.
    """
    y = np.asarray(tile, dtype=np.float64)
    if y.ndim != 2 or min(y.shape) < 32:
        raise ConfigError(f"a tile for defocus estimation must be 2-D, ≥ 32² pixels, got {y.shape}")
    shape = (int(y.shape[0]), int(y.shape[1]))
    index, count, centre, _ = family.rings(shape)
    n = noise_power(y) if noise is None else float(noise)
    rings = slice(k_min_rings, count.size - 1)
    pbar = _ring_means(_periodogram(y), index, count)[rings]
    m = count[rings].astype(np.float64)
    u = np.log(centre[rings])
    basis = np.vander(u - u.mean(), SPECTRUM_DEGREE + 1)
    loglik = np.empty(family.z_um.size)
    coefs, powers = [], []
    for i in range(family.z_um.size):
        h = family.otf(i, shape)
        t = _ring_means(h.real**2 + h.imag**2, index, count)[rings]
        c, loglik[i] = _fit_spectrum(t, pbar, m, basis, n)
        coefs.append(c)
        powers.append(t)
    i_top = int(np.argmax(loglik))
    v = np.exp(np.clip(basis @ coefs[i_top], -700, 700)) * np.maximum(powers[i_top], 1e-12) + n
    # Quasi-likelihood: the deviance per degree of freedom measures the misfit of the
    # smooth-spectrum model (1 for a model that explains the rings up to their Gamma
    # scatter); likelihood differences are read in units of it.
    r = pbar / v
    dispersion = max(float(2 * (m * (r - np.log(r) - 1)).sum()) / max(r.size - 5, 1), 1.0)
    near = np.flatnonzero(loglik >= loglik[i_top] - evidence_nats * dispersion)
    i_best = int(near.min())
    return DefocusFit(
        z_um=float(family.z_um[i_best]),
        z_low_um=float(family.z_um[near.min()]),
        z_high_um=float(family.z_um[near.max()]),
        loglik=loglik,
        z_grid_um=family.z_um.copy(),
        noise=n,
        evidence_nats=float(loglik[i_best] - loglik[0]) / dispersion,
        dispersion=dispersion,
        at_edge=int(np.argmax(loglik)) == family.z_um.size - 1,
    )


# --------------------------------------------------------------------------- restoration


def _padded(
    image: np.ndarray, y0: int, x0: int, th: int, tw: int, margin: int, *, apodize: bool = True
) -> np.ndarray:
    """The tile at (y0, x0) with ``margin`` pixels of its real neighbours, mirror-reflected
    past the image's edge, then (``apodize``) the outer half of the margin fades to the mean
    so that the FFT's periodic wrap is smooth."""
    h, w = image.shape
    ys = np.arange(y0 - margin, y0 + th + margin)
    xs = np.arange(x0 - margin, x0 + tw + margin)
    ys = np.abs(ys)
    ys = np.where(ys >= h, 2 * h - 2 - ys, ys).clip(0, h - 1)
    xs = np.abs(xs)
    xs = np.where(xs >= w, 2 * w - 2 - xs, xs).clip(0, w - 1)
    block = image[np.ix_(ys, xs)]
    if apodize and margin > 1:
        fade = max(1, margin // 2)
        ramp_y = _edge_ramp(block.shape[0], fade)
        ramp_x = _edge_ramp(block.shape[1], fade)
        win = np.outer(ramp_y, ramp_x)
        mean = float(block.mean())
        block = mean + (block - mean) * win
    return block


def _edge_ramp(n: int, fade: int) -> np.ndarray:
    r = np.ones(n)
    t = (np.arange(fade) + 0.5) / fade
    r[:fade] = 0.5 - 0.5 * np.cos(np.pi * t)
    r[n - fade :] = r[:fade][::-1]
    return r


def _tv_divergence(x: np.ndarray, eps: float) -> np.ndarray:
    gy = np.diff(x, axis=0, append=x[-1:, :])
    gx = np.diff(x, axis=1, append=x[:, -1:])
    norm = np.sqrt(gx**2 + gy**2 + eps**2)
    ny_, nx_ = gy / norm, gx / norm
    div = np.diff(ny_, axis=0, prepend=0 * ny_[:1, :]) + np.diff(
        nx_, axis=1, prepend=0 * nx_[:, :1]
    )
    return div


def rl_tv_refocus(
    block: np.ndarray,
    z_um: float,
    family: PsfFamily,
    *,
    background: float,
    iterations: int = 30,
    tv_weight: float = 0.002,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Richardson–Lucy with a total-variation prior, then blurred to focus by ``h₀``.

    ``o ← o · Hᵀ(y / (H o + b)) / (1 − λ·div(∇o/|∇o|))`` (Dey et al. 2006) on the block
    minus the background ``b``, scaled to [0, 1]; the in-focus estimate is ``h₀ ∗ o + b``.

    Pixels outside ``valid`` (saturated: their true value is unknown) are left out of the
    data term (``y / Ho`` read as 1 there), the standard treatment of missing data in RL.

    Parameters
    ----------
    block : (Y, X) ndarray
        The tile with its margin (:func:`physics_refocus` pads and apodizes it).
    z_um : float
        Its defocus (µm; sign ignored).
    family : PsfFamily
        The PSFs.
    background : float
        Dark level subtracted before and added back after.
    iterations : int, optional
        RL iterations (default 30).
    tv_weight : float, optional
        TV weight λ on the [0, 1]-scaled block (default 0.002).
    valid : (Y, X) ndarray of bool, optional
        Pixels that are measurements (default all).

    Returns
    -------
    in_focus : (Y, X) ndarray
        The in-focus estimate, the block's intensity scale.
    """
    shape = (int(block.shape[0]), int(block.shape[1]))
    fshape = (scipy.fft.next_fast_len(shape[0], real=True), scipy.fft.next_fast_len(shape[1]))
    pads = ((0, fshape[0] - shape[0]), (0, fshape[1] - shape[1]))
    y = np.maximum(np.pad(block, pads, mode="reflect") - background, 0.0)
    mask = None if valid is None else np.pad(valid, pads, mode="reflect")
    scale = max(float(y.max()), 1e-12)
    y = y / scale
    h = family.otf_at(z_um, fshape)
    h_0 = family.otf(0, fshape)
    floor = 1e-6
    o = np.full(fshape, max(float(y.mean()), floor))
    h_t = np.conj(h)  # the adjoint: correlation with the PSF
    for _ in range(int(iterations)):
        hx = scipy.fft.irfft2(scipy.fft.rfft2(o, workers=-1) * h, s=fshape, workers=-1)
        ratio = y / np.maximum(hx, floor)
        if mask is not None:
            ratio = np.where(mask, ratio, 1.0)
        corr = scipy.fft.irfft2(scipy.fft.rfft2(ratio, workers=-1) * h_t, s=fshape, workers=-1)
        denom = 1.0 - tv_weight * _tv_divergence(o, 1e-3) if tv_weight > 0 else 1.0
        o = np.maximum(o * corr / np.maximum(denom, 0.1), 0.0)
    x0 = scipy.fft.irfft2(scipy.fft.rfft2(o) * h_0, s=fshape)
    return x0[: shape[0], : shape[1]] * scale + background


# --------------------------------------------------------------------------- whole images


@dataclass
class PhysicsResult:
    """A physics-refocused image and what was estimated, tile by tile.

    Attributes
    ----------
    image : ndarray
        The in-focus estimate, float32, the input's intensity scale, ≥ 0.
    z_um : ndarray
        Estimated |z| per tile (tile grid, rows × columns).
    z_low_um, z_high_um : ndarray
        The 2-nat interval per tile.
    at_edge : ndarray of bool
        Tiles whose estimate sits at the largest candidate.
    noise : ndarray
        Fitted white-noise variance per tile.
    restored : ndarray of bool
        Tiles that were deconvolved; the others (in focus, or a defocus the family cannot
        place) pass unchanged.
    variance : ndarray
        The measurement's noise variance per pixel, ``a·ȳ + b`` (:func:`noise_level`,
        ``ȳ`` the 3×3 local mean): what :func:`reblur_consistency` divides by.
    clipped : ndarray of bool or None
        Its saturated pixels (:func:`saturated`).
    tiles : list of tuple
        (y0, x0) of every tile, in grid order (rows of ``z_um``).
    geometry : tuple of int
        (tile_y, tile_x, overlap_y, overlap_x).
    fits : list of DefocusFit
        The per-tile fits.
    """

    image: np.ndarray
    z_um: np.ndarray
    z_low_um: np.ndarray
    z_high_um: np.ndarray
    at_edge: np.ndarray
    noise: np.ndarray
    restored: np.ndarray
    variance: np.ndarray
    clipped: np.ndarray | None
    tiles: list[tuple[int, int]]
    geometry: tuple[int, int, int, int]
    fits: list[DefocusFit]

    @property
    def z_used_um(self) -> np.ndarray:
        """|z| each tile was restored with (0 where it passed unchanged)."""
        return np.where(self.restored, self.z_um, 0.0)


def _geometry(shape: tuple[int, int], tile: int, overlap: int | None) -> tuple[int, int, int, int]:
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 32:
        raise ConfigError(f"tile must be an integer ≥ 32 pixels, got {tile!r}")
    h, w = shape
    th, tw = min(int(tile), h), min(int(tile), w)
    ov = min(64, int(tile) // 4) if overlap is None else int(overlap)
    if ov < 0:
        raise ConfigError(f"overlap must be ≥ 0 pixels, got {overlap!r}")
    return th, tw, (min(ov, th // 2 - 1) if th < h else 0), (min(ov, tw // 2 - 1) if tw < w else 0)


def _check(image: Any) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 2 or np.iscomplexobj(a) or min(a.shape) < 32:
        raise ConfigError(
            f"physics refocusing takes one real 2-D image of ≥ 32² pixels, got shape {a.shape}"
        )
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ConfigError("the image contains NaN or Inf; fill or crop them first")
    return a


def _grid(shape: tuple[int, int], geometry: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    from focuskit.io import tile_starts

    th, tw, ov_y, ov_x = geometry
    return [
        (y0, x0) for y0 in tile_starts(shape[0], th, ov_y) for x0 in tile_starts(shape[1], tw, ov_x)
    ]


def blend(
    shape: tuple[int, int],
    geometry: tuple[int, int, int, int],
    tiles: Sequence[tuple[int, int]],
    pieces: Sequence[np.ndarray],
) -> np.ndarray:
    """Blend per-tile arrays (each ``th × tw``) with the raised-cosine window.

    Parameters
    ----------
    shape : (int, int)
        The image's shape.
    geometry : (int, int, int, int)
        (tile_y, tile_x, overlap_y, overlap_x).
    tiles : sequence of (int, int)
        (y0, x0) of each piece.
    pieces : sequence of ndarray
        One ``tile_y × tile_x`` array per tile.

    Returns
    -------
    image : ndarray
        ``Σ wᵢ·pieceᵢ / Σ wᵢ`` with ``w`` the outer product of two raised-cosine ramps.
    """
    from focuskit.io import blend_ramp

    th, tw, ov_y, ov_x = geometry
    win = np.outer(blend_ramp(th, ov_y), blend_ramp(tw, ov_x))
    total = np.zeros(shape)
    weight = np.zeros(shape)
    for (y0, x0), piece in zip(tiles, pieces, strict=True):
        total[y0 : y0 + th, x0 : x0 + tw] += piece * win
        weight[y0 : y0 + th, x0 : x0 + tw] += win
    return total / weight


def saturated(image: np.ndarray) -> np.ndarray | None:
    """Mask of clipped pixels: the image's maximum where at least 4 pixels share it (a
    camera or dtype limit, not a feature), else None.

    Parameters
    ----------
    image : ndarray
        The measured image.

    Returns
    -------
    mask : ndarray of bool or None
        True where the pixel sits at the clipping level; None when nothing is clipped.
    """
    top = float(image.max())
    mask = image >= top
    return mask if int(mask.sum()) >= 4 else None


def background_level(image: np.ndarray) -> float:
    """The image's dark level: the 0.5th percentile of a σ = 2 px Gaussian-smoothed copy
    (camera offset plus any uniform background; smoothing keeps noise out of it).

    Parameters
    ----------
    image : ndarray
        The measured image.

    Returns
    -------
    level : float
        The dark level, in the image's units.
    """
    import scipy.ndimage

    return float(np.percentile(scipy.ndimage.gaussian_filter(image, 2.0), 0.5))


def physics_refocus(
    image: Any,
    family: PsfFamily,
    *,
    z_um: float | None = None,
    tile: int = 512,
    overlap: int | None = None,
    iterations: int = 30,
    tv_weight: float = 0.002,
    background: float | None = None,
) -> PhysicsResult:
    """Refocus one fluorescence image with the PSF estimated tile by tile (no learned model).

    Each tile's |z| comes from :func:`estimate_defocus` (or is ``z_um`` when the defocus is
    known); the tile plus a margin of its neighbours (the PSF's 99 %-energy radius,
    mirror-reflected past the image's edge and apodized) is restored by
    :func:`rl_tv_refocus`, cropped and blended with a raised-cosine window, so there are no
    frame or seam artefacts. A tile whose |z| is at most DOF/2 is in focus and passes
    unchanged, and so does one whose likelihood peaks at the family's largest |z| (a
    defocus it cannot place). Saturated pixels (:func:`saturated`) are left out of the data
    term. The result is clipped at 0 (fluorescence is non-negative) and keeps the input's
    intensity scale.

    Parameters
    ----------
    image : (Y, X) array_like
        One fluorescence image (counts or intensities), ≥ 32² pixels.
    family : PsfFamily
        The microscope's PSFs at candidate |z| (optics or a measured bead stack).
    z_um : float, optional
        The defocus if known (µm; its sign does not matter for an aberration-free PSF);
        default: estimated per tile.
    tile : int, optional
        Tile side (pixels, default 512); the unit of defocus estimation.
    overlap : int, optional
        Tile overlap (default min(64, tile/4)).
    iterations : int, optional
        RL iterations (default 30).
    tv_weight : float, optional
        RL's TV weight λ on the [0, 1]-scaled image (default 0.002).
    background : float, optional
        Dark level (camera offset + uniform background); default :func:`background_level`.

    Returns
    -------
    result : PhysicsResult
        The image and the per-tile estimates.

    Raises
    ------
    ConfigError
        On an invalid image, tile, overlap or defocus.
    """
    img = _check(image)
    if z_um is not None and not (
        math.isfinite(float(z_um)) and abs(float(z_um)) <= family.z_um[-1]
    ):
        raise ConfigError(
            f"the known defocus must be finite and within the PSF family's ±"
            f"{family.z_um[-1]:.1f} µm, got {z_um!r}"
        )
    geometry = _geometry(img.shape, tile, overlap)
    th, tw = geometry[:2]
    tiles = _grid(img.shape, geometry)
    dark = background_level(img) if background is None else float(background)
    clipped = saturated(img)
    in_focus = family.in_focus_um
    fits, pieces, done = [], [], []
    for y0, x0 in tiles:
        part = img[y0 : y0 + th, x0 : x0 + tw]
        fit = estimate_defocus(part, family)
        if z_um is not None:
            fit = replace(
                fit, z_um=abs(float(z_um)), z_low_um=abs(float(z_um)), z_high_um=abs(float(z_um))
            )
        fits.append(fit)
        if fit.z_um <= in_focus * (1 + 1e-6) or (fit.at_edge and z_um is None):
            pieces.append(part)
            done.append(False)
            continue
        done.append(True)
        margin = family.support_px(fit.z_um)
        block = _padded(img, y0, x0, th, tw, margin)
        valid = (
            None if clipped is None else ~_padded(clipped, y0, x0, th, tw, margin, apodize=False)
        )
        out = rl_tv_refocus(
            block,
            fit.z_um,
            family,
            background=dark,
            iterations=iterations,
            tv_weight=tv_weight,
            valid=valid,
        )
        pieces.append(out[margin : margin + th, margin : margin + tw])
    restored = np.maximum(blend(img.shape, geometry, tiles, pieces), 0.0).astype(np.float32)
    rows = len({t[0] for t in tiles})
    cols = len(tiles) // rows

    def grid(values: list[Any], dtype: Any = np.float64) -> np.ndarray:
        return np.asarray(values, dtype=dtype).reshape(rows, cols)

    return PhysicsResult(
        image=restored,
        z_um=grid([f.z_um for f in fits]),
        z_low_um=grid([f.z_low_um for f in fits]),
        z_high_um=grid([f.z_high_um for f in fits]),
        at_edge=grid([f.at_edge for f in fits], bool),
        noise=grid([f.noise for f in fits]),
        restored=grid(done, bool),
        variance=_variance(img),
        clipped=clipped,
        tiles=tiles,
        geometry=geometry,
        fits=fits,
    )


# --------------------------------------------------------------------------- consistency


def _variance(image: np.ndarray) -> np.ndarray:
    """Per-pixel noise variance ``a·ȳ + b`` of a measurement (``ȳ`` its 3×3 local mean)."""
    import scipy.ndimage

    gain, floor = noise_level(image)
    return np.maximum(gain * scipy.ndimage.uniform_filter(image, 3) + floor, 1e-12)


def reblur(
    candidate: np.ndarray, z_um: float, family: PsfFamily, *, margin: int | None = None
) -> np.ndarray:
    """A candidate in-focus image blurred to defocus |z|: ``F⁻¹(H_z / H₀ · F(x̂))``.

    ``H_z / H₀`` is taken where ``|H₀| > 10⁻³`` and 0 beyond (``|H_z| ≤ |H₀|`` for an
    aberration-free pupil, so the ratio is bounded); the image is mirror-padded by
    ``margin`` (default the PSF's 99 %-energy radius) so its borders do not wrap.

    Parameters
    ----------
    candidate : (Y, X) ndarray
        An in-focus estimate.
    z_um : float
        The defocus to blur it to (µm; sign ignored).
    family : PsfFamily
        The PSFs.
    margin : int, optional
        Mirror padding (pixels).

    Returns
    -------
    blurred : (Y, X) ndarray
        What the microscope would record of ``candidate`` at |z|.
    """
    x = np.asarray(candidate, dtype=np.float64)
    m = family.support_px(z_um) if margin is None else int(margin)
    block = _padded(x, 0, 0, x.shape[0], x.shape[1], m)
    shape = block.shape
    fshape = (scipy.fft.next_fast_len(shape[0], real=True), scipy.fft.next_fast_len(shape[1]))
    padded = np.pad(block, ((0, fshape[0] - shape[0]), (0, fshape[1] - shape[1])), mode="reflect")
    h_z = family.otf_at(z_um, fshape)
    h_0 = family.otf(0, fshape)
    ok = np.abs(h_0) > 1e-3
    ratio = np.zeros_like(h_z)
    ratio[ok] = h_z[ok] / h_0[ok]
    ratio[0, 0] = 1.0
    out = scipy.fft.irfft2(scipy.fft.rfft2(padded) * ratio, s=fshape)
    return out[m : m + x.shape[0], m : m + x.shape[1]]


def reblur_consistency(
    measured: Any, candidate: Any, physics: PhysicsResult, family: PsfFamily
) -> np.ndarray:
    """Per-tile χ² of a refocused image against the measurement it came from.

    For every tile of ``physics`` (its grid and the |z| it was restored with), the
    candidate tile with a margin of its neighbours is re-blurred to that |z|
    (:func:`reblur`) and compared with the measured tile: ``χ² = mean((y − R·x̂)² / σ²)``
    with ``σ² = a·ȳ + b`` the camera's noise variance at each pixel (:func:`noise_level`,
    ``ȳ`` the 3×3 local mean). An image the measurement supports reads
    ≈ 1 (noise only); invented or removed structure reads more.

    Parameters
    ----------
    measured : (Y, X) array_like
        The defocused image.
    candidate : (Y, X) array_like
        Its refocused version (any method), same shape and intensity scale.
    physics : PhysicsResult
        :func:`physics_refocus` on ``measured``: its tile grid, the |z| per tile, the noise
        variance per pixel and the saturated pixels.
    family : PsfFamily
        The PSFs.

    Returns
    -------
    chi2 : ndarray
        χ² per tile (tile grid, rows × columns).
    """
    y = _check(measured)
    x = _check(candidate)
    if physics.variance.shape != y.shape:
        raise ConfigError(
            f"the physics result is of a {physics.variance.shape} image, the measurement is "
            f"{y.shape}: pass physics_refocus of this measurement"
        )
    if x.shape != y.shape:
        raise ConfigError(f"candidate shape {x.shape} differs from the measurement's {y.shape}")
    th, tw = physics.geometry[:2]
    clipped, variance = physics.clipped, physics.variance
    out = []
    for (y0, x0), z in zip(physics.tiles, physics.z_used_um.ravel(), strict=True):
        m = family.support_px(float(z))
        block = _padded(x, y0, x0, th, tw, m)
        blurred = reblur(block, float(z), family, margin=0)[m : m + th, m : m + tw]
        z2 = (y[y0 : y0 + th, x0 : x0 + tw] - blurred) ** 2 / variance[y0 : y0 + th, x0 : x0 + tw]
        if clipped is not None:
            z2 = z2[~clipped[y0 : y0 + th, x0 : x0 + tw]]
        out.append(float(np.mean(z2)) if z2.size else 0.0)
    return np.asarray(out).reshape(physics.z_um.shape)


__all__ = [
    "EVIDENCE_NATS",
    "DefocusFit",
    "PhysicsResult",
    "PsfFamily",
    "background_level",
    "blend",
    "estimate_defocus",
    "noise_level",
    "noise_power",
    "physics_refocus",
    "reblur",
    "reblur_consistency",
    "rl_tv_refocus",
    "saturated",
]
