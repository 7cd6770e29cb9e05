"""The focal surface of a defocus map: a plane through it (tilted samples, Deep-R Fig. 7c),
and a robust low-order polynomial through the tiles of a slide (slide QC)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focuskit._errors import ConfigError


def fitted_tilt(
    defocus_map_um: np.ndarray, pixel_size_um: float, *, unsigned: bool = False
) -> tuple[float, float, float]:
    """Least-squares plane ``z = a·y + b·x + c`` through a defocus map.

    Returns (tilt in degrees = atan(|∇z|), azimuth in degrees = atan2(a, b), RMS residual in
    µm).

    ``unsigned``: the map holds |z| (a V where a tilted sample crosses focus), so
    ``|a·y + b·x + c|`` is fitted instead, from several starts; the azimuth is then known
    modulo 180° and is reported in [0°, 180°).

    Parameters
    ----------
    defocus_map_um : (Y, X) array_like
        Defocus per pixel, in µm.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    unsigned : bool, optional
        The map holds ``|z|`` (default False).

    Returns
    -------
    tilt_deg : float
        Tilt angle ``atan(|∇z|)``, in degrees.
    azimuth_deg : float
        Direction of the slope ``atan2(a, b)``, in degrees from +x (in [0, 180) when
        ``unsigned``).
    rms_um : float
        RMS residual of the fit, in µm.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Fig. 7c.
    """
    dz = np.asarray(defocus_map_um, dtype=np.float64)
    yy, xx = np.mgrid[0 : dz.shape[0], 0 : dz.shape[1]] * pixel_size_um
    a = np.column_stack([yy.ravel(), xx.ravel(), np.ones(dz.size)])
    coef, *_ = np.linalg.lstsq(a, dz.ravel(), rcond=None)
    if unsigned:
        from scipy.optimize import least_squares

        step = max(1, int(np.sqrt(dz.size / 20000)))  # ~20 k pixels are plenty for three numbers
        sub = a.reshape(*dz.shape, 3)[::step, ::step].reshape(-1, 3)
        target = dz[::step, ::step].ravel()
        span = float(np.ptp(sub[:, 0]) + np.ptp(sub[:, 1])) or 1.0
        slope = max(float(np.ptp(target)) / span, 1e-6)
        starts = [coef, coef * [2, 2, 1], coef * [1, 1, -1]]
        for phi in np.radians(
            np.arange(0, 180, 30)
        ):  # a V along each direction, crossing the centre
            g = np.array([np.sin(phi), np.cos(phi)]) * 2 * slope
            starts.append(np.array([g[0], g[1], -g @ sub[:, :2].mean(axis=0)]))
        fits = [least_squares(lambda c: np.abs(sub @ c) - target, c0) for c0 in starts]
        coef = min(fits, key=lambda f: f.cost).x
        resid = dz.ravel() - np.abs(a @ coef)
        azimuth = math.degrees(math.atan2(coef[0], coef[1])) % 180.0
        return (
            math.degrees(math.atan(math.hypot(coef[0], coef[1]))),
            azimuth,
            float(np.sqrt(np.mean(resid**2))),
        )
    resid = dz.ravel() - a @ coef
    slope = math.hypot(coef[0], coef[1])
    return (
        math.degrees(math.atan(slope)),
        math.degrees(math.atan2(coef[0], coef[1])),
        float(np.sqrt(np.mean(resid**2))),
    )


# --- Focal surface of a tiled slide ------------------------------------------------------

# Tukey's biweight constant: 95 % efficiency at Gaussian residuals.
_TUKEY_C = 4.685
# MAD → σ for Gaussian residuals.
_MAD_TO_SIGMA = 1.4826


def surface_terms(order: int) -> list[tuple[int, int]]:
    """The monomials ``y^i·x^j`` (``i + j ≤ order``) of a polynomial surface, as (i, j).

    Parameters
    ----------
    order : int
        Polynomial order: 1 a plane, 2 a quadric (bowed slides), at most 3.

    Returns
    -------
    terms : list of (int, int)
        ``(0, 0)`` first, then by degree.

    Raises
    ------
    ConfigError
        If ``order`` is not 1, 2 or 3.
    """
    if isinstance(order, bool) or order not in (1, 2, 3):
        raise ConfigError(f"surface order must be 1 (plane), 2 or 3, got {order!r}")
    return [(d - j, j) for d in range(order + 1) for j in range(d + 1)]


def _term_name(i: int, j: int) -> str:
    parts = [f"y^{i}" if i > 1 else "y"] * (i > 0) + [f"x^{j}" if j > 1 else "x"] * (j > 0)
    return "*".join(parts) or "1"


@dataclass
class FocalSurface:
    """A low-order polynomial surface ``v(y, x) = Σ c_ij · y^i · x^j`` fitted through tiles.

    ``y`` and ``x`` are in µm from the slide's top-left corner; ``v`` is what was fitted (a
    defocus in µm, or a focus score in its own units).

    Attributes
    ----------
    order : int
        1 (plane), 2 or 3.
    coefficients : dict of str to float
        ``c_ij`` by monomial name (``"1"``, ``"y"``, ``"x"``, ``"y^2"``, ``"y*x"``, …), in
        units of ``v`` per µm^(i+j).
    rms : float
        RMS residual over the inlier tiles (units of ``v``).
    sigma : float
        Robust residual scale over all fitted tiles, ``1.4826·MAD`` (units of ``v``).
    inliers : (rows, cols) ndarray of bool
        Tiles that kept a non-zero weight in the robust fit.
    """

    order: int
    coefficients: dict[str, float]
    rms: float
    sigma: float
    inliers: np.ndarray = field(repr=False)

    def __call__(self, y_um: Any, x_um: Any) -> np.ndarray:
        """The surface at (``y_um``, ``x_um``) (broadcast together).

        Parameters
        ----------
        y_um, x_um : array_like
            Positions from the top-left corner, in µm.

        Returns
        -------
        v : ndarray
            The surface there.
        """
        y = np.asarray(y_um, dtype=np.float64)
        x = np.asarray(x_um, dtype=np.float64)
        out = np.zeros(np.broadcast(y, x).shape)
        for i, j in surface_terms(self.order):
            out = out + self.coefficients[_term_name(i, j)] * y**i * x**j
        return out

    @property
    def tilt_deg(self) -> float:
        """``atan(|∇v|)`` of the plane part, in degrees (meaningful when ``v`` is µm of z)."""
        return math.degrees(math.atan(math.hypot(self.coefficients["y"], self.coefficients["x"])))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``order``, ``coefficients``, ``rms``, ``sigma``, ``inlier_tiles``."""
        return {
            "order": self.order,
            "coefficients": dict(self.coefficients),
            "rms": self.rms,
            "sigma": self.sigma,
            "inlier_tiles": int(self.inliers.sum()),
        }


def fit_focal_surface(
    values: Any,
    y_um: Any,
    x_um: Any,
    *,
    order: int = 1,
    iterations: int = 30,
) -> FocalSurface:
    """Fit a polynomial surface through per-tile values, robust to outlier tiles.

    Iteratively reweighted least squares: a few L1 steps (weights ``1/|r|``, the least
    absolute deviations fit, which a third of gross outliers does not move) give the start;
    then Tukey's biweight ``w = (1 − (r/cσ)²)²`` for ``|r| < cσ``, else 0, with
    ``c = 4.685`` and ``σ = 1.4826·MAD(r)`` re-estimated each step. A tile whose weight
    ends at 0 (a fold, debris, an empty tile) does not pull the surface; NaN tiles are left
    out. Coordinates are scaled to [−1, 1] for the solve, so a slide 100 mm wide is as well
    conditioned as one 1 mm wide.

    Parameters
    ----------
    values : (rows, cols) array_like
        The per-tile values (defocus in µm, or a focus score); NaN where unknown.
    y_um, x_um : (rows, cols) array_like
        Tile centres from the top-left corner, in µm.
    order : int, optional
        1 (plane, default), 2 (quadric) or 3.
    iterations : int, optional
        Most IRLS steps of each kind (default 30).

    Returns
    -------
    surface : FocalSurface
        Coefficients about the top-left corner, RMS over inliers, robust σ, inlier mask.

    Raises
    ------
    ConfigError
        If the shapes differ, ``order`` is invalid, or fewer finite tiles than the surface
        has coefficients (3 for a plane, 6 for order 2).

    References
    ----------
    .. [1] P. W. Holland and R. E. Welsch, "Robust regression using iteratively reweighted
           least-squares", Commun. Stat. Theory Methods 6, 813 (1977).
    """
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    x = np.asarray(x_um, dtype=np.float64)
    if not (v.shape == y.shape == x.shape):
        raise ConfigError(
            f"values {v.shape}, y {y.shape} and x {x.shape} must have one shape (rows, cols)"
        )
    terms = surface_terms(order)
    ok = np.isfinite(v) & np.isfinite(y) & np.isfinite(x)
    if int(ok.sum()) < len(terms):
        raise ConfigError(
            f"{int(ok.sum())} tiles with a value; a surface of order {order} needs at least "
            f"{len(terms)} — use smaller tiles or --order 1"
        )
    y0, x0 = float(y[ok].mean()), float(x[ok].mean())
    sy = float(np.max(np.abs(y[ok] - y0))) or 1.0
    sx = float(np.max(np.abs(x[ok] - x0))) or 1.0
    u, w = (y[ok] - y0) / sy, (x[ok] - x0) / sx
    design = np.column_stack([u**i * w**j for i, j in terms])
    target = v[ok]
    scale = float(np.max(np.abs(target))) or 1.0

    def solve(weights: np.ndarray) -> np.ndarray:
        sw = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)
        return coef

    coef = solve(np.ones(len(target)))
    for _ in range(iterations):  # L1 start
        r = np.abs(target - design @ coef)
        new = solve(1.0 / np.maximum(r, 1e-9 * scale))
        if np.allclose(new, coef, rtol=1e-9, atol=1e-12 * scale):
            break
        coef = new
    weights = np.ones(len(target))
    sigma = 0.0
    for _ in range(iterations):  # Tukey biweight
        r = target - design @ coef
        sigma = _MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r))))
        if sigma <= 1e-12 * scale:
            weights = (np.abs(r) <= 1e-9 * scale).astype(np.float64)
            break
        t = r / (_TUKEY_C * sigma)
        weights = np.where(np.abs(t) < 1, (1 - t**2) ** 2, 0.0)
        if int((weights > 0).sum()) < len(terms):
            break
        new = solve(weights)
        if np.allclose(new, coef, rtol=1e-9, atol=1e-12 * scale):
            coef = new
            break
        coef = new
    r = target - design @ coef
    keep = weights > 0
    rms = float(np.sqrt(np.mean(r[keep] ** 2))) if keep.any() else float("nan")
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r))))
    inliers = np.zeros(v.shape, dtype=bool)
    inliers[ok] = keep
    # Back to monomials of (y, x) about the corner: expand Σ a_ij ((y−y0)/sy)^i ((x−x0)/sx)^j.
    out = {_term_name(i, j): 0.0 for i, j in terms}
    for a, (i, j) in zip(coef, terms, strict=True):
        for p in range(i + 1):
            for q in range(j + 1):
                c = (
                    a
                    * math.comb(i, p)
                    * math.comb(j, q)
                    * (-y0) ** (i - p)
                    * (-x0) ** (j - q)
                    / (sy**i * sx**j)
                )
                out[_term_name(p, q)] += float(c)
    return FocalSurface(order, out, rms, sigma, inliers)
