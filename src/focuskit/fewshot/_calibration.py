"""DeepFocus calibration: the depth-blurriness response curve of one objective, and the
shift that matches a few blur scores to it (Shajkofci & Liebling, DeepFocus, §2.2).

A blur score ``b(z)`` (lower = sharper, e.g. the CNN's defocus coefficient) measured over
a full stack of a planar textured sample gives ``b_calib(z)``, centred with its minimum
at the origin. Its width comes from an inverted Moffat fit (step 1); a few images
``(z_i, b_i)`` of another sample are focused by the shift ``f`` that best aligns them with
the curve (step 6): ``f = argmin_f Σ_i (b_i − b_calib(z_i − f))²``. Step 2's convexity
check decides when those few images carry enough information.

numpy/scipy only: the blur scorer itself is :class:`focuskit.fewshot.BlurScorer`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.focus import parabola_vertex
from focuskit.io import FocalStack, atomic_output

KIND = "deepfocus-calibration"
VERSION = 1
BETA_BOUNDS = (0.2, 20.0)
# At most this many candidate shifts (× images) are compared with one chunk of patches.
_CHUNK_ELEMENTS = 4_000_000
_MAX_SHIFTS = 1_000_000


def moffat_profile(
    z: np.ndarray | float, top: float, amplitude: float, z0: float, alpha: float, beta: float
) -> np.ndarray:
    """Inverted Moffat profile: a blur score with a single minimum at ``z0``.

    ``top − amplitude·(1 + ((z − z0)/alpha)²)^(−beta)``: a blur score with its minimum
    ``top − amplitude`` at ``z0`` (DeepFocus §2.2 step 1, Moffat 1969).

    Parameters
    ----------
    z : float or ndarray
        Axial positions (µm, or any unit shared with ``z0`` and ``alpha``).
    top : float
        The plateau far from focus (score units).
    amplitude : float
        Depth of the dip: the profile is ``top − amplitude`` at ``z0``.
    z0 : float
        Position of the minimum (same unit as ``z``).
    alpha : float
        Width parameter (same unit as ``z``), non-zero.
    beta : float
        Moffat exponent: how fast the profile returns to ``top``.

    Returns
    -------
    profile : ndarray
        The profile at ``z`` (float64, the shape of ``z``).

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    .. [2] Moffat, A. F. J. A theoretical investigation of focal stellar images in the
           photographic emulsion and application to photographic photometry. Astron.
           Astrophys. 3, 455–461 (1969).
    """
    x = (np.asarray(z, dtype=np.float64) - z0) / alpha
    return top - amplitude * (1.0 + x * x) ** (-beta)


def moffat_fwhm(alpha: float, beta: float) -> float:
    """Full width at half depth of the Moffat profile.

    ``2·alpha·sqrt(2^(1/beta) − 1)``.

    Parameters
    ----------
    alpha : float
        Width parameter of :func:`moffat_profile` (µm).
    beta : float
        Moffat exponent (> 0).

    Returns
    -------
    fwhm : float
        Full width at half depth, in the unit of ``alpha`` (µm).

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    .. [2] Moffat, A. F. J. A theoretical investigation of focal stellar images in the
           photographic emulsion and application to photographic photometry. Astron.
           Astrophys. 3, 455–461 (1969).
    """
    return float(2.0 * alpha * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


@dataclass(frozen=True)
class MoffatFit:
    """An inverted Moffat fitted to a blur curve (see :func:`moffat_profile`).

    Made by :func:`fit_moffat`; calling it evaluates the fitted profile.

    Attributes
    ----------
    top : float
        Plateau of the blur score far from focus (score units; waves for a BlurScorer).
    amplitude : float
        Depth of the dip: the lowest score is ``top − amplitude``.
    z0_um : float
        Position of the minimum (µm).
    alpha_um : float
        Moffat width parameter (µm).
    beta : float
        Moffat exponent (bounded to [0.2, 20] by :func:`fit_moffat`).
    fwhm_um : float
        Full width at half depth, ``moffat_fwhm(alpha_um, beta)`` (µm).
    r2 : float
        Coefficient of determination of the fit.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    """

    top: float
    amplitude: float
    z0_um: float
    alpha_um: float
    beta: float
    fwhm_um: float
    r2: float

    def __call__(self, z: np.ndarray | float) -> np.ndarray:
        """The fitted profile at ``z`` (µm).

        Parameters
        ----------
        z : float or ndarray
            Axial positions (µm).

        Returns
        -------
        profile : ndarray
            Blur score of the fit at ``z`` (score units).
        """
        return moffat_profile(z, self.top, self.amplitude, self.z0_um, self.alpha_um, self.beta)

    def to_dict(self) -> dict[str, float]:
        """The fit as a plain dict, for JSON.

        Returns
        -------
        fit : dict of str to float
            ``top``, ``amplitude``, ``z0_um``, ``alpha_um``, ``beta``, ``fwhm_um`` and ``r2``.
        """
        return {
            "top": self.top,
            "amplitude": self.amplitude,
            "z0_um": self.z0_um,
            "alpha_um": self.alpha_um,
            "beta": self.beta,
            "fwhm_um": self.fwhm_um,
            "r2": self.r2,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MoffatFit:
        """A fit from :meth:`to_dict`'s form (``fwhm_um`` is recomputed from alpha and beta).

        Parameters
        ----------
        d : dict
            ``top``, ``amplitude``, ``z0_um``, ``alpha_um`` (µm), ``beta`` and ``r2``.

        Returns
        -------
        fit : MoffatFit

        Raises
        ------
        ConfigError
            When a key is missing or a value is not a number.
        """
        try:
            alpha, beta = float(d["alpha_um"]), float(d["beta"])
            return cls(
                top=float(d["top"]),
                amplitude=float(d["amplitude"]),
                z0_um=float(d["z0_um"]),
                alpha_um=alpha,
                beta=beta,
                fwhm_um=moffat_fwhm(alpha, beta),
                r2=float(d["r2"]),
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise ConfigError(
                f"not a Moffat fit: {d!r} — give top, amplitude, z0_um, alpha_um, beta and r2"
            ) from None


def _curve_arrays(
    z_um: Any, scores: Any, what: str, min_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """(z, b) as 1-D float arrays of equal length, finite, with distinct z."""
    z = np.asarray(z_um, dtype=np.float64)
    b = np.asarray(scores, dtype=np.float64)
    if z.ndim != 1 or b.shape != z.shape:
        raise ConfigError(
            f"{what}: z and scores must be 1-D of the same length, "
            f"got shapes {z.shape} and {b.shape}"
        )
    if z.size < min_points:
        raise ConfigError(
            f"{what} needs at least {min_points} points, got {z.size} — image more z positions"
        )
    if not (np.isfinite(z).all() and np.isfinite(b).all()):
        raise ConfigError(f"{what}: z or scores contain NaN/Inf — drop those points first")
    if np.unique(z).size != z.size:
        raise ConfigError(
            f"{what}: z positions repeat — give each z once (average repeated images first)"
        )
    return z, b


def fit_moffat(z_um: Any, scores: Any) -> MoffatFit:
    """Least-squares inverted Moffat fit of a blur curve (§2.2 step 1).

    ``scipy.optimize.curve_fit`` (trust-region, bounded: amplitude ≥ 0, alpha > 0, beta in
    [0.2, 20], z0 within one span of the data) from several starts (beta 1, 2.5, 6; z0 at
    the lowest sample; alpha from the width below half depth), on z and scores scaled to
    unit range; the best fit wins.

    Parameters
    ----------
    z_um : array_like
        Axial positions, 1-D and distinct, at least 5 (µm).
    scores : array_like
        Blur score at each position (lower = sharper), same length as ``z_um``.

    Returns
    -------
    fit : MoffatFit
        The best fit in the units of the input (z in µm, scores as given), with its R².

    Raises
    ------
    ConfigError
        On < 5 points, NaN, repeated z, a flat curve or no fit.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    .. [2] Moffat, A. F. J. A theoretical investigation of focal stellar images in the
           photographic emulsion and application to photographic photometry. Astron.
           Astrophys. 3, 455–461 (1969).
    """
    import scipy.optimize

    z, b = _curve_arrays(z_um, scores, "a Moffat fit", 5)
    span = float(z.max() - z.min())
    depth = float(b.max() - b.min())
    if not depth > 1e-12 * max(1.0, float(np.abs(b).max())):
        raise ConfigError("a Moffat fit: the blur curve is flat — the scores do not change with z")
    zc, bmin = float(z.mean()), float(b.min())
    x, y = (z - zc) / span, (b - bmin) / depth  # unit scales: well-conditioned for any units
    below = x[y < 0.5]
    width = max(float(below.max() - below.min()), float(np.min(np.diff(np.sort(x)))))
    x0 = float(x[np.argmin(y)])
    lower = [-1.0, 0.0, float(x.min()) - 1.0, 1e-6, BETA_BOUNDS[0]]
    upper = [100.0, 1000.0, float(x.max()) + 1.0, 10.0, BETA_BOUNDS[1]]
    best: tuple[float, np.ndarray] | None = None
    for beta0 in (1.0, 2.5, 6.0):
        alpha0 = float(np.clip(width / moffat_fwhm(1.0, beta0), 1e-3, 9.0))
        start = [1.0 + 0.2 / beta0, 1.0 + 0.2 / beta0, x0, alpha0, beta0]
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
                p, _ = scipy.optimize.curve_fit(
                    moffat_profile, x, y, p0=start, bounds=(lower, upper), method="trf", maxfev=4000
                )
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((moffat_profile(x, *p) - y) ** 2))
        if math.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, p)
    if best is None:
        raise ConfigError(
            "a Moffat fit did not converge from any start — check that the blur "
            "curve has one minimum"
        )
    sse, (top, amplitude, x0, alpha, beta) = best
    sst = float(np.sum((y - y.mean()) ** 2))
    alpha_um = float(alpha) * span
    return MoffatFit(
        top=bmin + depth * float(top),
        amplitude=depth * float(amplitude),
        z0_um=zc + span * float(x0),
        alpha_um=alpha_um,
        beta=float(beta),
        fwhm_um=moffat_fwhm(alpha_um, float(beta)),
        r2=1.0 - sse / sst,
    )


def _empirical_fwhm(z: np.ndarray, b: np.ndarray) -> float:
    """Width of the curve below half depth (linear interpolation of the crossings); a side
    that never crosses counts as wide as the other, and both as the full span."""
    i = int(np.argmin(b))
    level = (float(b.min()) + float(b.max())) / 2
    half: list[float] = []
    for side in (range(i, -1, -1), range(i, z.size)):
        idx = list(side)
        for j, k in itertools.pairwise(idx):
            if b[k] >= level:
                t = (level - b[j]) / (b[k] - b[j])
                half.append(abs(float(z[j] + t * (z[k] - z[j]) - z[i])))
                break
    if not half:
        return float(z.max() - z.min())
    return 2 * max(half) if len(half) == 1 else float(sum(half))


# Where the physical calibration stops rising (waves of edge defocus).
PHYSICAL_CAP_WAVES = 4.0


@dataclass(eq=False)
class BlurCalibration:
    """The depth-blurriness response ``b_calib(z)`` of one objective (§2.2).

    ``z_um`` is centred (0 at the minimum), increasing; ``score`` the mean blur score
    there (``score_sd`` its SD over patches, optional); ``moffat`` the inverted Moffat
    fitted to the centred curve (None when the fit failed: the FWHM is then measured
    from the curve); ``focus_z_um`` the stack z of the minimum. ``model``, ``optics``,
    ``pixel_size_um`` and ``source`` say what was calibrated; ``created`` when (ISO 8601).
    Made by :meth:`from_scores` or :func:`calibrate`; written and read by :meth:`save` and
    :meth:`load`.

    Attributes
    ----------
    z_um : ndarray
        Centred axial positions, increasing, 0 at the curve's minimum (µm).
    score : ndarray
        Mean blur score at each position (score units; lower = sharper).
    moffat : MoffatFit or None
        Inverted Moffat fitted to the centred curve (``z0_um`` = 0), or None.
    focus_z_um : float
        Stack z of the minimum: the offset between stack z and ``z_um`` (µm).
    score_sd : ndarray or None
        SD of the score over patches at each position (score units).
    model : str
        The scorer that made the scores (e.g. ``builtin:fewshot-widefield``).
    optics : dict or None
        The calibrated objective's optics (``Optics.to_dict`` form).
    pixel_size_um : float or None
        Camera pixel size of the calibration stack (µm).
    source : dict
        Provenance (stack shape, z range, patches per plane, …).
    created : str
        Creation time, ISO 8601 (UTC).

    Raises
    ------
    ConfigError
        When z and score differ in length, hold NaN, repeat a z or have < 3 points, or when
        ``score_sd`` or ``moffat`` are malformed.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    """

    z_um: np.ndarray
    score: np.ndarray
    moffat: MoffatFit | None
    focus_z_um: float
    score_sd: np.ndarray | None = None
    model: str = ""
    optics: dict[str, Any] | None = None
    pixel_size_um: float | None = None
    source: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        z, b = _curve_arrays(self.z_um, self.score, "a blur calibration", 3)
        order = np.argsort(z)
        self.z_um, self.score = z[order], b[order]
        if self.score_sd is not None:
            sd = np.asarray(self.score_sd, dtype=np.float64)
            if sd.shape != z.shape or not np.isfinite(sd).all():
                raise ConfigError(
                    "a blur calibration: score_sd must be finite and of shape "
                    f"{z.shape}, got {sd.shape}"
                )
            self.score_sd = sd[order]
        if self.moffat is not None and not isinstance(self.moffat, MoffatFit):
            raise ConfigError(
                "a blur calibration: moffat must be a MoffatFit or None, got "
                f"{type(self.moffat).__name__}"
            )
        self.focus_z_um = float(self.focus_z_um)
        if self.pixel_size_um is not None:
            self.pixel_size_um = float(self.pixel_size_um)
        self.source = dict(self.source or {})

    @classmethod
    def from_scores(
        cls,
        z_um: Any,
        scores: Any,
        *,
        score_sd: Any = None,
        model: str = "",
        optics: dict[str, Any] | None = None,
        pixel_size_um: float | None = None,
        source: dict[str, Any] | None = None,
    ) -> BlurCalibration:
        """Calibrate from the blur scores of a stack through focus (§2.2).

        ``scores`` is (N,) — the mean score of each plane — or (N, P), the scores of P
        patches per plane (mean and, unless given, SD over patches are taken here). Fits
        the inverted Moffat to the raw ``(z, b)``, centres z on its ``z0`` — or on the vertex
        of the parabola through the lowest sample and its neighbours when the fit fails
        (no convergence, R² < 0.5, z0 outside the stack, FWHM wider than twice the stack).

        Parameters
        ----------
        z_um : array_like
            Stack z of each plane, (N,), N ≥ 5, distinct (µm).
        scores : array_like
            (N,) mean blur score per plane, or (N, P) per-patch scores (lower = sharper).
        score_sd : array_like, optional
            (N,) SD of the score over patches (default: from ``scores`` when 2-D).
        model : str
            Which scorer made the scores (recorded).
        optics : dict, optional
            The objective's optics (``Optics.to_dict`` form), recorded.
        pixel_size_um : float, optional
            Camera pixel size of the stack (µm), recorded.
        source : dict, optional
            Extra provenance, recorded.

        Returns
        -------
        calibration : BlurCalibration
            With z centred on the fitted minimum and ``focus_z_um`` the stack z of it (µm).

        Raises
        ------
        ConfigError
            On < 5 planes, NaN, repeated z, a mis-shaped ``score_sd``, or when the lowest score
            is at an end of the stack (the stack does not pass through focus).

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2, step 1.
        """
        b = np.asarray(scores, dtype=np.float64)
        if b.ndim == 2:
            if score_sd is None and b.shape[1] > 1:
                score_sd = b.std(axis=1)
            b = b.mean(axis=1)
        z, b = _curve_arrays(z_um, b, "a blur calibration", 5)
        order = np.argsort(z)
        z, b = z[order], b[order]
        if score_sd is not None:
            score_sd = np.asarray(score_sd, dtype=np.float64)
            if score_sd.shape != z.shape:
                raise ConfigError(
                    f"a blur calibration: score_sd must have shape {z.shape}, got {score_sd.shape}"
                )
            score_sd = score_sd[order]
        i = int(np.argmin(b))
        if i in (0, z.size - 1):
            raise ConfigError(
                f"the blur score is lowest at the end of the calibration stack (z = {z[i]:g} µm) — "
                "record a stack that passes through focus"
            )
        fit: MoffatFit | None
        try:
            fit = fit_moffat(z, b)
        except ConfigError:
            fit = None
        span = float(z[-1] - z[0])
        if fit is not None and (
            fit.r2 < 0.5 or not z[0] <= fit.z0_um <= z[-1] or not 0 < fit.fwhm_um <= 2 * span
        ):
            fit = None
        if fit is not None:
            centre = fit.z0_um
            fit = replace(fit, z0_um=0.0)
        else:
            vertex = parabola_vertex(z[i - 1 : i + 2], -b[i - 1 : i + 2])
            centre = float(z[i]) if vertex is None else float(np.clip(vertex, z[i - 1], z[i + 1]))
        return cls(
            z_um=z - centre,
            score=b,
            moffat=fit,
            focus_z_um=centre,
            score_sd=score_sd,
            model=str(model),
            optics=None if optics is None else dict(optics),
            pixel_size_um=pixel_size_um,
            source=dict(source or {}),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    # The curve ---------------------------------------------------------------------------
    @classmethod
    def from_optics(
        cls,
        optics: Any,
        *,
        pixel_size_um: float | None = None,
        z_um: Any = None,
        cap_waves: float = PHYSICAL_CAP_WAVES,
        model: str = "",
    ) -> BlurCalibration:
        """The calibration the blur CNN was trained to follow, from the optics alone.

        The CNN is trained to read the edge defocus wavefront of each patch,
        ``W(z) = |z|·(n − √(n² − NA²))/λ`` (waves), up to the largest ``W`` it saw at this
        objective's cutoff ``c = NA·p/λ`` (:func:`max_waves`), so
        ``b(z) = min(|z|·dW/dz, W_max)`` is its calibration on any sample it reads
        correctly — no calibration stack needed. A sample whose score climbs faster or
        slower is absorbed by the search's gain fit (``gain_range``). The curve is held
        flat beyond ``cap_waves``: far from focus the CNN's reading depends on the sample
        (it climbs more slowly on some), and the width at half depth, which sets where
        the search's first images go (``spread_fwhm`` × FWHM), becomes ``cap/(dW/dz)``.

        Parameters
        ----------
        optics : Optics
            The objective and camera.
        pixel_size_um : float, optional
            Pixel size at the sample (µm; default the optics').
        z_um : array_like, optional
            Positions to tabulate (µm; default ±1.25 × the z of the cap, step ≤ DOF/8).
        cap_waves : float
            Where the tabulated curve stops rising (waves, > 0; default 4, at most
            ``W_max``).
        model : str
            The scorer it is for (recorded).

        Returns
        -------
        calibration : BlurCalibration
            Minimum at 0, ``moffat`` None, ``source["physical"]`` True.

        Raises
        ------
        ConfigError
            When ``optics`` is not an :class:`~focuskit.optics.Optics` or a z is not finite.

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide
               auto-focus using a sample invariant CNN-based sharpness function.
               arXiv:2001.00667 (2020), §2.2 and its ref. [10] (the defocus coefficient
               of the local PSF as blur score).
        """
        from focuskit.fewshot._data import max_waves, waves_per_um
        from focuskit.optics import Optics

        if not isinstance(optics, Optics):
            raise ConfigError(
                "a physical blur calibration needs the microscope's optics "
                f"(an Optics), got {type(optics).__name__}"
            )
        pixel = float(optics.pixel_size_um if pixel_size_um is None else pixel_size_um)
        na, lam = optics.objective.na, optics.wavelength_um
        rate = waves_per_um(na, lam, optics.objective.immersion_index)
        if not (math.isfinite(cap_waves) and cap_waves > 0):
            raise ConfigError(f"cap_waves must be > 0, got {cap_waves!r}")
        w_max = min(max_waves(na * pixel / lam), float(cap_waves))
        if z_um is None:
            reach = 1.25 * w_max / rate
            step = min(0.5, optics.depth_of_field_um / 8)
            half = np.arange(0.0, reach + step / 2, step)
            z = np.concatenate([-half[:0:-1], half])
        else:
            z = np.asarray(z_um, dtype=np.float64)
        return cls(
            z_um=z,
            score=np.minimum(np.abs(z) * rate, w_max),
            moffat=None,
            focus_z_um=0.0,
            model=model,
            optics=optics.to_dict(),
            pixel_size_um=pixel,
            source={"physical": True, "waves_per_um": rate, "cap_waves": w_max},
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def curve(self, z_um: Any) -> np.ndarray:
        """``b_calib`` at centred z.

        Linear interpolation of the measured curve, holding the edge values beyond the
        calibrated range.

        Parameters
        ----------
        z_um : float or array_like
            Centred axial positions, 0 at the calibration's minimum (µm).

        Returns
        -------
        b : ndarray
            Calibrated blur score at ``z_um`` (score units).

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2, step 6.
        """
        return np.interp(np.asarray(z_um, dtype=np.float64), self.z_um, self.score)

    def abs_defocus_um(self, score: Any) -> np.ndarray:
        """|z| (µm) that a blur score means on this objective: ``b_calib`` inverted.

        Each branch of the curve (z ≥ 0 and z ≤ 0) is made monotone (running maximum
        outward from the minimum) and inverted by linear interpolation; the two |z| are
        averaged. A score below the minimum gives 0; one above a branch's top gives that
        branch's end (the calibration cannot tell farther). NaN stays NaN.

        Parameters
        ----------
        score : float or array_like
            Mean blur score of a region (score units, as :meth:`BlurScorer.score`).

        Returns
        -------
        abs_z : ndarray
            Unsigned defocus, in µm.

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2 (the calibration curve read backwards).
        """
        b = np.asarray(score, dtype=np.float64)
        out = []
        for side in (self.z_um >= 0, self.z_um <= 0):
            z = np.abs(self.z_um[side])
            order = np.argsort(z)
            z, curve = z[order], np.maximum.accumulate(self.score[side][order])
            if len(z) < 2:
                continue
            keep = np.concatenate([[True], np.diff(curve) > 0])  # np.interp needs rising x
            out.append(np.interp(b, curve[keep], z[keep]))
        if not out:
            return np.full(b.shape, np.nan)
        result = np.mean(out, axis=0)
        return np.where(np.isfinite(b), result, np.nan)

    @property
    def fwhm_um(self) -> float:
        """FWHM of the blur curve (µm): the Moffat fit's, else measured from the curve.

        Returns
        -------
        float
            Full width at half depth (µm).
        """
        if self.moffat is not None:
            return self.moffat.fwhm_um
        return _empirical_fwhm(self.z_um, self.score)

    @property
    def depth_ratio(self) -> float:
        """How much the curve rises against the spread of the score across patches.

        ``(max b − min b) / median SD``; below ~2 the score does not see this stack's
        defocus (NaN without ``score_sd``).

        Returns
        -------
        float
            The ratio (dimensionless; inf when the SD is 0).
        """
        if self.score_sd is None:
            return math.nan
        spread = float(np.median(self.score_sd))
        rise = float(np.max(self.score) - np.min(self.score))
        return rise / spread if spread > 0 else math.inf

    @property
    def half_range_um(self) -> float:
        """How far the calibration reaches from its minimum: ``max(−z_min, z_max)`` (µm).

        Returns
        -------
        float
            Half range (µm).
        """
        return float(max(-self.z_um[0], self.z_um[-1]))

    @property
    def step_um(self) -> float:
        """Median z step of the calibration (µm).

        Returns
        -------
        float
            Median spacing of ``z_um`` (µm).
        """
        return float(np.median(np.diff(self.z_um)))

    # Files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The calibration as a JSON-able dict (what :meth:`save` writes).

        Returns
        -------
        d : dict
            ``kind``, ``version``, ``z_um``, ``score``, ``score_sd`` (lists), ``moffat``,
            ``fwhm_um``, ``focus_z_um`` (µm), ``model``, ``optics``, ``pixel_size_um``, ``source``
            and ``created``.
        """
        return {
            "kind": KIND,
            "version": VERSION,
            "z_um": [float(v) for v in self.z_um],
            "score": [float(v) for v in self.score],
            "score_sd": None if self.score_sd is None else [float(v) for v in self.score_sd],
            "moffat": None if self.moffat is None else self.moffat.to_dict(),
            "fwhm_um": self.fwhm_um,
            "focus_z_um": self.focus_z_um,
            "model": self.model,
            "optics": self.optics,
            "pixel_size_um": self.pixel_size_um,
            "source": self.source,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: Any) -> BlurCalibration:
        """From :meth:`to_dict`'s form; ConfigError when it is not a calibration.

        Parameters
        ----------
        d : dict
            A dict as written by :meth:`to_dict`.

        Returns
        -------
        calibration : BlurCalibration

        Raises
        ------
        ConfigError
            When ``d`` is not a calibration, is of a newer version, or is damaged.
        """
        return cls._from_dict(d, "")

    @classmethod
    def _from_dict(cls, d: Any, where: str) -> BlurCalibration:
        prefix = f"{where}: " if where else ""
        if not isinstance(d, dict) or d.get("kind") != KIND:
            kind = d.get("kind") if isinstance(d, dict) else type(d).__name__
            raise ConfigError(
                f"{prefix}not a DeepFocus calibration (kind {kind!r}, expected {KIND!r}) — "
                "give a file written by BlurCalibration.save"
            )
        version = d.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise ConfigError(
                f"{prefix}calibration version {version!r} is not one this focuskit reads "
                f"(≤ {VERSION}) — upgrade focuskit or recalibrate"
            )
        try:
            moffat = None if d.get("moffat") is None else MoffatFit.from_dict(d["moffat"])
            return cls(
                z_um=np.asarray(d["z_um"], dtype=np.float64),
                score=np.asarray(d["score"], dtype=np.float64),
                moffat=moffat,
                focus_z_um=float(d["focus_z_um"]),
                score_sd=None
                if d.get("score_sd") is None
                else np.asarray(d["score_sd"], dtype=np.float64),
                model=str(d.get("model", "")),
                optics=d.get("optics"),
                pixel_size_um=d.get("pixel_size_um"),
                source=d.get("source") or {},
                created=str(d.get("created", "")),
            )
        except KeyError as missing:
            raise ConfigError(f"{prefix}damaged calibration (no {missing}) — recalibrate") from None
        except (TypeError, ValueError) as problem:
            raise ConfigError(f"{prefix}damaged calibration ({problem}) — recalibrate") from None

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the calibration as JSON, atomically (a temporary sibling, then rename).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write; its folder must exist.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        path : Path
            The file written.

        Raises
        ------
        ConfigError
            When the file exists without ``overwrite``, its folder does not exist, or the
            calibration holds values JSON cannot store (e.g. non-finite optics).
        """

        target = Path(path)
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise ConfigError(f"{target}: already exists — pass --overwrite or choose another -o")
        if not target.parent.is_dir():
            raise ConfigError(f"{target}: folder {target.parent} does not exist — create it first")
        try:
            text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        except (TypeError, ValueError) as problem:
            raise ConfigError(
                f"{target}: the calibration cannot be written as JSON ({problem}) — "
                "give optics/source as plain, finite values"
            ) from None
        with atomic_output(target, overwrite=overwrite) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BlurCalibration:
        """Read a calibration written by :meth:`save`; ConfigError naming the file otherwise.

        Parameters
        ----------
        path : str or os.PathLike
            A JSON file written by :meth:`save` (``focuskit fewshot calibrate``).

        Returns
        -------
        calibration : BlurCalibration

        Raises
        ------
        ConfigError
            When the file is missing, unreadable, not JSON, not a calibration, of a newer
            version or damaged.
        """
        source = Path(path)
        if not source.is_file():
            raise ConfigError(
                f"{source}: calibration file not found — calibrate first or give its path"
            )
        try:
            d = json.loads(source.read_text(encoding="utf-8"))
        except json.JSONDecodeError as problem:
            raise ConfigError(
                f"{source}: not a DeepFocus calibration (invalid JSON: {problem.msg}, "
                f"line {problem.lineno}) — give a file written by BlurCalibration.save"
            ) from None
        except (OSError, UnicodeDecodeError) as problem:
            raise ConfigError(
                f"{source}: cannot read the calibration ({problem}) — check the file"
            ) from None
        return cls._from_dict(d, str(source))


def calibrate(
    stack: FocalStack,
    score_map: Callable[[np.ndarray], Any],
    *,
    model: str = "",
    source: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BlurCalibration:
    """Calibrate an objective from a stack through focus (§2.2 step 1).

    The blur-score map of every plane of a stack of a flat textured object through focus →
    ``b_calib(z)`` (mean over patches, with their SD) → Moffat fit
    (:meth:`BlurCalibration.from_scores`).

    Parameters
    ----------
    stack : FocalStack
        At least 5 planes, passing through focus (z in µm).
    score_map : callable
        image → 2-D blur map, lower = sharper (e.g. ``BlurScorer.score_map``).
    model : str
        Which scorer made it (recorded; ``autofocus`` loads it by default).
    source : dict, optional
        Extra provenance recorded with the calibration (merged over shape and z range).
    progress : callable, optional
        ``progress(done, total)`` per plane.

    Returns
    -------
    calibration : BlurCalibration
        Centred on the minimum, with the stack's optics and pixel size (µm) recorded.

    Raises
    ------
    ConfigError
        With fewer than 5 planes, or when :meth:`BlurCalibration.from_scores` refuses the
        curve (e.g. the lowest score is at an end of the stack).

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 1.
    """
    n = len(stack)
    if n < 5:
        raise ConfigError(f"{n} planes — a calibration needs ≥ 5 (a full stack through focus)")
    maps = []
    for i in range(n):
        maps.append(
            np.asarray(score_map(np.asarray(stack.data[i], dtype=np.float32)), dtype=np.float64)
        )
        if progress is not None:
            progress(i + 1, n)
    flat = np.stack([m.ravel() for m in maps])
    z = np.asarray(stack.z_um, dtype=np.float64)
    return BlurCalibration.from_scores(
        z,
        flat.mean(axis=1),
        score_sd=flat.std(axis=1),
        model=model,
        optics=stack.optics.to_dict() if stack.optics is not None else None,
        pixel_size_um=stack.pixel_size_um,
        source={
            "shape": list(stack.shape),
            "z_range_um": [float(z.min()), float(z.max())],
            "patches_per_plane": int(flat.shape[1]),
            **(source or {}),
        },
    )


def shift_by_correlation(
    z_um: Any,
    scores: Any,
    calibration: BlurCalibration,
    *,
    shifts_um: Any = None,
    step_um: float | None = None,
    gain_range: tuple[float, float] | None = None,
) -> tuple[Any, Any]:
    """The focus position that best aligns a few blur scores with the calibration (§2.2 step 6).

    ``f = argmin_f Σ_i (b_i − b_calib(z_i − f))²`` over candidates ``shifts_um`` (default:
    a grid from ``min(z_i) − R`` to ``max(z_i) + R``, R the calibration's half range, step
    ``step_um`` or ``min(0.05 µm, calibration step / 10)``, at most 20 000 candidates),
    then refined by a golden-section search of the exact cost between the best
    candidate's neighbours (kept when its cost is lower; the cost is piecewise quadratic
    with kinks at the calibration's z, where a parabola would be off). ``scores`` is (M,)
    or (M, P…) — one column per patch — and the result ``(f, cost)`` has shape () or
    (P…); a patch with a non-finite score gets NaN.
    ``f`` is the stack z of focus: the move is ``f − z_current``.

    ``gain_range=(lo, hi)`` (beyond the paper) also fits a per-column gain ``α`` on the
    calibration's rise above its minimum, ``b_i ≈ b₀ + α·(b_calib(z_i − f) − b₀)`` with
    ``b₀ = min b_calib`` and ``α`` clipped to the range: a sample whose blur score climbs
    faster or slower than the calibration sample's no longer pulls the estimate toward
    the side with more images.

    Parameters
    ----------
    z_um : array_like
        Stack z of the M ≥ 2 images, (M,), finite (µm).
    scores : array_like
        Blur scores, (M,) or (M, P…): one column per patch (lower = sharper).
    calibration : BlurCalibration
        The objective's calibration.
    shifts_um : array_like, optional
        Candidate focus positions (µm); default the grid above.
    step_um : float, optional
        Step of the default grid (µm, > 0).
    gain_range : (float, float), optional
        ``(lo, hi)`` with 0 < lo ≤ 1 ≤ hi: fit the gain ``α`` within it; None (default, the
        paper) a plain shift.

    Returns
    -------
    f : float or ndarray
        Stack z of focus per column (µm), shape () or (P…); NaN for a non-finite column.
    cost : float or ndarray
        The residual sum of squares at ``f`` (score units squared), same shape.

    Raises
    ------
    ConfigError
        When z and scores disagree in shape, fewer than 2 finite z are given, the
        calibration is not a BlurCalibration, ``gain_range`` or ``step_um`` are invalid, or
        the grid would exceed 1 000 000 candidates.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 6.
    """
    if gain_range is not None:
        g_lo, g_hi = (float(v) for v in gain_range)
        if not (0 < g_lo <= 1 <= g_hi and math.isfinite(g_hi)):
            raise ConfigError(
                f"gain_range must be (lo, hi) with 0 < lo ≤ 1 ≤ hi, got {gain_range!r}"
            )
    if not isinstance(calibration, BlurCalibration):
        raise ConfigError(
            f"calibration must be a BlurCalibration, got {type(calibration).__name__}"
        )
    z = np.asarray(z_um, dtype=np.float64)
    b = np.asarray(scores, dtype=np.float64)
    if z.ndim != 1 or b.ndim < 1 or b.shape[0] != z.size:
        raise ConfigError(
            "shift_by_correlation: z (M,) and scores (M, …) must agree, "
            f"got {z.shape} and {b.shape}"
        )
    if z.size < 2 or not np.isfinite(z).all():
        raise ConfigError(
            "shift_by_correlation needs ≥ 2 finite z positions, "
            f"got {z.tolist()} — image more planes"
        )
    out_shape = b.shape[1:]
    b = b.reshape(z.size, -1)
    grid = _candidate_shifts(z, calibration, shifts_um, step_um)
    zc, bc = calibration.z_um, calibration.score
    base = float(np.min(bc)) if gain_range is not None else 0.0
    model = np.interp(z[:, None] - grid[None, :], zc, bc) - base  # (M, G): b_calib(z_i − f) − b₀
    model_sq = np.sum(model * model, axis=0)
    ok = np.isfinite(b).all(axis=0)
    b0 = np.where(ok, b, 0.0) - base
    f = np.full(b0.shape[1], np.nan)
    cost = np.full(b0.shape[1], np.nan)
    chunk = max(1, _CHUNK_ELEMENTS // grid.size)
    for s in range(0, b0.shape[1], chunk):
        bs = b0[:, s : s + chunk]
        # Σ_i (b_i − α·m_i)² = Σ b² − 2α Σ b·m + α² Σ m², all candidates at once: (G, p)
        cross = model.T @ bs
        gain = (
            1.0
            if gain_range is None
            else np.clip(cross / np.maximum(model_sq[:, None], 1e-12), g_lo, g_hi)
        )
        c = np.sum(bs * bs, axis=0)[None, :] - 2.0 * gain * cross + gain * gain * model_sq[:, None]
        k = np.argmin(c, axis=0)
        best = grid[k]
        refined = _golden_refine(
            z,
            bs,
            calibration,
            grid[np.maximum(k - 1, 0)],
            grid[np.minimum(k + 1, grid.size - 1)],
            base=base,
            gain_range=gain_range,
        )
        c_best = _exact_cost(z, bs, best, calibration, base=base, gain_range=gain_range)
        c_ref = _exact_cost(z, bs, refined, calibration, base=base, gain_range=gain_range)
        better = c_ref < c_best
        f[s : s + chunk] = np.where(better, refined, best)
        cost[s : s + chunk] = np.where(better, c_ref, c_best)
    f[~ok] = np.nan
    cost[~ok] = np.nan
    return f.reshape(out_shape)[()], cost.reshape(out_shape)[()]


def _exact_cost(
    z: np.ndarray,
    b: np.ndarray,
    shift: np.ndarray,
    calibration: BlurCalibration,
    *,
    base: float = 0.0,
    gain_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Σ_i (b_i − α·(b_calib(z_i − f) − b₀))² of each column at its own shift f (``b`` already
    minus b₀; α = 1 without ``gain_range``, else its clipped least-squares value)."""
    m = calibration.curve(z[:, None] - shift[None, :]) - base
    if gain_range is None:
        return np.sum((b - m) ** 2, axis=0)
    gain = np.clip(np.sum(b * m, axis=0) / np.maximum(np.sum(m * m, axis=0), 1e-12), *gain_range)
    return np.sum((b - gain * m) ** 2, axis=0)


def _candidate_shifts(
    z: np.ndarray, calibration: BlurCalibration, shifts_um: Any, step_um: float | None
) -> np.ndarray:
    if shifts_um is not None:
        grid = np.unique(np.asarray(shifts_um, dtype=np.float64).ravel())
        if grid.size < 1 or not np.isfinite(grid).all():
            raise ConfigError(
                "shifts_um must hold at least one finite candidate focus position (µm)"
            )
        return grid
    reach = calibration.half_range_um
    f_lo, f_hi = float(z.min()) - reach, float(z.max()) + reach
    if step_um is None:
        step = max(min(0.05, calibration.step_um / 10), (f_hi - f_lo) / 20_000)
    else:
        if not (math.isfinite(step_um) and step_um > 0):
            raise ConfigError(f"step_um must be > 0 µm, got {step_um!r}")
        step = float(step_um)
    n = math.ceil((f_hi - f_lo) / step) + 1
    if n > _MAX_SHIFTS:
        raise ConfigError(f"step_um = {step:g} µm gives {n} candidate shifts — use a coarser step")
    return np.linspace(f_lo, f_hi, max(n, 2))


def _golden_refine(
    z: np.ndarray,
    b: np.ndarray,
    calibration: BlurCalibration,
    lo: np.ndarray,
    hi: np.ndarray,
    iterations: int = 40,
    **cost_options: Any,
) -> np.ndarray:
    """Golden-section minimum of each column's exact cost within [lo, hi] (vectorized)."""
    g = (math.sqrt(5) - 1) / 2
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = (
        _exact_cost(z, b, c, calibration, **cost_options),
        _exact_cost(z, b, d, calibration, **cost_options),
    )
    for _ in range(iterations):
        left = fc <= fd  # the minimum lies in [lo, d]
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        # Left: the old c becomes d and a new c is needed; right: the old d becomes c.
        kept, f_kept = np.where(left, c, d), np.where(left, fc, fd)
        fresh_z = np.where(left, hi - g * (hi - lo), lo + g * (hi - lo))
        fresh = _exact_cost(z, b, fresh_z, calibration, **cost_options)
        c, d = np.where(left, fresh_z, kept), np.where(left, kept, fresh_z)
        fc, fd = np.where(left, fresh, f_kept), np.where(left, f_kept, fresh)
    return (lo + hi) / 2


def convexity(
    z_um: Any, scores: Any, *, min_gain: float = 0.05
) -> tuple[bool, float, float, float]:
    """Is the blur curve sampled so far convex around a minimum? (§2.2 step 2)

    Least-squares quadratic and linear fits of ``b(z)``; returns ``(is_convex,
    r2_quadratic, r2_linear, curvature)`` with ``curvature = b''`` of the quadratic
    (score/µm²). Convex iff ``curvature > 0`` and ``r2_quadratic − r2_linear > min_gain``
    (the paper: R² quadratic > R² linear). With 3 points R²_quadratic is 1, so this reads
    "not on a straight line and opening upwards". A flat curve is not convex.

    Parameters
    ----------
    z_um : array_like
        Axial positions, 1-D, distinct, at least 3 (µm).
    scores : array_like
        Blur score at each position, same length (lower = sharper).
    min_gain : float
        How much R² the quadratic must gain over the line (≥ 0).

    Returns
    -------
    is_convex : bool
        Whether the curve opens upwards and is better fitted by the quadratic.
    r2_quadratic : float
        R² of the quadratic fit.
    r2_linear : float
        R² of the linear fit.
    curvature : float
        Second derivative ``b''`` of the quadratic (score/µm²).

    Raises
    ------
    ConfigError
        On < 3 points, NaN, repeated z or a negative ``min_gain``.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2, step 2.
    """
    z, b = _curve_arrays(z_um, scores, "a convexity check", 3)
    if not (math.isfinite(min_gain) and min_gain >= 0):
        raise ConfigError(f"min_gain must be ≥ 0, got {min_gain!r}")
    scale = float(z.max() - z.min())
    x = (z - z.mean()) / scale
    sst = float(np.sum((b - b.mean()) ** 2))
    if not sst > 1e-24 * max(1.0, float(np.sum(b * b))):
        return False, 0.0, 0.0, 0.0
    r2: list[float] = []
    coefficients: list[np.ndarray] = []
    for degree in (1, 2):
        design = np.vander(x, degree + 1)
        coef, _, rank, _ = np.linalg.lstsq(design, b, rcond=None)
        sse = float(np.sum((design @ coef - b) ** 2))
        r2.append(1.0 - sse / sst)
        coefficients.append(coef if rank == degree + 1 else np.zeros(degree + 1))
    curvature = 2.0 * float(coefficients[1][0]) / scale**2
    r2_linear, r2_quadratic = r2
    return (
        bool(curvature > 0 and r2_quadratic - r2_linear > min_gain),
        r2_quadratic,
        r2_linear,
        curvature,
    )
