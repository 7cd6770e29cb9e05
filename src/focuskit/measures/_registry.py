"""The registry of scalar focus measures, by CLI name, and ``score``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.measures._common import Score, iter_chunks
from focuskit.measures._saturation import (
    MaskedFn,
    Saturation,
    masked_brenner,
    masked_laplacian_variance,
    masked_nvar,
    masked_sml,
    masked_std,
    masked_tenengrad,
    masked_vollath4,
    masked_vollath5,
    saturation_level,
    valid_positions,
)
from focuskit.measures._spatial import (
    brenner,
    high_pass_filter,
    laplacian_variance,
    normalized_variance,
    std,
    sum_modified_laplacian,
    tenengrad,
    vollath_f4,
    vollath_f5,
)
from focuskit.measures._spectral import spectral_highband, spectral_midband
from focuskit.measures._wavelet import wavelet_energy, wavelet_sum


@dataclass(frozen=True)
class FocusMeasure:
    """A scalar focus measure and what a caller needs to know to use it.

    ``maximize``: True when a sharper image gives a larger value (every measure here);
    ``score`` negates those with ``maximize=False`` so that its output is always
    larger = sharper. ``brightness_power``: ``k`` with ``f(c·I) = c**k · f(I)`` for
    ``c > 0`` (0 = invariant), with the function's default parameters.
    ``needs_optics``: the function takes ``pixel_size_um``, ``na`` and ``wavelength_um``.
    ``masked``/``mask_radius``: the measure's form that averages its per-pixel terms only
    where the ``(2r+1)²`` footprint holds no saturated pixel (None: it cannot, because its
    kernel is global or decimated — the spectral and wavelet measures).

    Attributes
    ----------
    name : str
        Registry (CLI) name, e.g. ``"vollath4"``.
    function : callable
        ``function(image, **params)``: float for a (Y, X) image, (Z,) float64 for a stack.
    maximize : bool
        True when a sharper image gives a larger value.
    brightness_power : int
        ``k`` with ``f(c·I) = c**k · f(I)`` (0 = invariant).
    needs_optics : bool
        The function needs ``pixel_size_um`` (µm), ``na`` and ``wavelength_um`` (µm).
    description : str
        One-line description.
    reference : str
        The paper (and equation) it comes from.
    masked : callable or None, optional
        ``masked(planes, valid) -> (n,)`` on float64 planes (n, Y, X) and the valid
        positions (n, Y−2r, X−2r); None if the measure cannot exclude pixels.
    mask_radius : int, optional
        ``r``: half-width of the kernel footprint, in pixels.
    """

    name: str
    function: Callable[..., Score]
    maximize: bool
    brightness_power: int
    needs_optics: bool
    description: str
    reference: str
    masked: MaskedFn | None = None
    mask_radius: int = 1


_DEEPR = "Luo et al., ACS Photonics 8:625 (2021) (Deep-R)"
_DEEPFOCUS = "Shajkofci & Liebling, ISBI 2020 (DeepFocus), Table 1"

_ALL = (
    FocusMeasure(
        "vollath4",
        vollath_f4,
        True,
        2,
        False,
        "Vollath F4: lag-1 minus lag-2 autocorrelation along x, per pixel pair",
        f"Vollath, J. Microsc. 151:133 (1988); {_DEEPR} eq. 9",
        masked_vollath4,
        1,
    ),
    FocusMeasure(
        "vollath5",
        vollath_f5,
        True,
        2,
        False,
        "Vollath F5: lag-1 autocorrelation along x minus mean², per pixel pair",
        f"Vollath, J. Microsc. 151:133 (1988); {_DEEPR} eq. 10",
        masked_vollath5,
        1,
    ),
    FocusMeasure(
        "std",
        std,
        True,
        1,
        False,
        "standard deviation of the intensity",
        f"{_DEEPR} eq. 11",
        masked_std,
        0,
    ),
    FocusMeasure(
        "nvar",
        normalized_variance,
        True,
        1,
        False,
        "normalized variance: variance / mean intensity",
        f"Groen et al., Cytometry 6:81 (1985); {_DEEPR} eq. 12",
        masked_nvar,
        0,
    ),
    FocusMeasure(
        "brenner",
        brenner,
        True,
        2,
        False,
        "Brenner gradient: mean (I(x+2) − I(x))² along x",
        "Brenner et al., J. Histochem. Cytochem. 24:100 (1976)",
        masked_brenner,
        1,
    ),
    FocusMeasure(
        "tenengrad",
        tenengrad,
        True,
        2,
        False,
        "Tenengrad: mean squared Sobel gradient magnitude (Sobel / 8)",
        f"Tenenbaum (1970); Krotkov, IJCV 1:223 (1988); {_DEEPFOCUS} [13]",
        masked_tenengrad,
        1,
    ),
    FocusMeasure(
        "lapv",
        laplacian_variance,
        True,
        2,
        False,
        "variance of the 4-neighbour Laplacian",
        f"Pech-Pacheco et al., ICPR 2000; {_DEEPFOCUS}",
        masked_laplacian_variance,
        1,
    ),
    FocusMeasure(
        "sml",
        sum_modified_laplacian,
        True,
        1,
        False,
        "sum-modified Laplacian (step 1), per pixel",
        f"Nayar & Nakagawa, IEEE TPAMI 16:824 (1994); {_DEEPFOCUS}",
        masked_sml,
        1,
    ),
    FocusMeasure(
        "ws",
        wavelet_sum,
        True,
        1,
        False,
        "wavelet sum: mean |detail coefficient| of a level-1 Haar DWT",
        f"Yang & Nelson, IROS 2003 (M_W1); {_DEEPFOCUS} [15]",
    ),
    FocusMeasure(
        "ewc",
        wavelet_energy,
        True,
        2,
        False,
        "energy of the level-1 Haar detail coefficients, per pixel",
        f"{_DEEPFOCUS} [14]; Wu, Merchant & Castleman, Microscope Image Processing "
        "(2008) eq. 16.11",
    ),
    FocusMeasure(
        "hpf",
        high_pass_filter,
        True,
        2,
        False,
        "high-pass [1, 0, −1] along x, squared, per pixel (DeepFocus code; ≈ Brenner)",
        f"{_DEEPFOCUS}; idiap/deepfocus calibration_fit.get_hpf_image",
        masked_brenner,
        1,
    ),
    FocusMeasure(
        "spectral-highband",
        spectral_highband,
        True,
        0,
        False,
        "mean radially averaged log power spectrum, 0.25–1 × Nyquist, relative to mean²",
        "Pinkard et al., Optica 6:794 (2019) (ground-truth focus); "
        "Waller-Lab/DeepAutofocus calc_focal_plane",
    ),
    FocusMeasure(
        "spectral-midband",
        spectral_midband,
        True,
        0,
        True,
        "mean power / mean² in 0.25–0.75 × the incoherent cut-off 2NA/λ (≤ Nyquist)",
        "focuskit (optics-aware band power)",
    ),
)

#: The scalar focus measures by CLI name, in a stable order.
MEASURES: dict[str, FocusMeasure] = {m.name: m for m in _ALL}


#: The measure ``find_focus``, the classic searches and the few-shot search's verification
#: use when the optics (NA, λ, pixel size) are known: the winner of the measure table of
#: ``bench/classic_af.py`` on the sample families (smallest worst-family median find-focus
#: error, saturating sparse beads included). See :func:`default_measure` and the README.
DEFAULT_MEASURE = "spectral-midband"
#: The default when the optics are unknown (``DEFAULT_MEASURE`` needs them): the measure
#: that needs no optics and meets the find-focus target on every real stack and its coarse
#: uneven subsets (``bench/classic_af.py``).
DEFAULT_MEASURE_WITHOUT_OPTICS = "tenengrad"


def default_measure(optics: Any = None) -> str:
    """The default focus measure for a microscope or stack with these optics.

    :data:`DEFAULT_MEASURE` (``spectral-midband``: band power 0.25–0.75 × 2NA/λ relative
    to mean², brightness-invariant, and single-peaked where gradient measures are not —
    sparse beads saturating at focus) when ``optics`` is given; it needs NA, λ and the
    pixel size, so :data:`DEFAULT_MEASURE_WITHOUT_OPTICS` otherwise. One function, so that
    ``find_focus``, the classic searches and the few-shot verification agree.

    Parameters
    ----------
    optics : Optics or None, optional
        The optics of the scope or stack (None: unknown).

    Returns
    -------
    name : str
        A key of :data:`MEASURES`.
    """
    return DEFAULT_MEASURE if optics is not None else DEFAULT_MEASURE_WITHOUT_OPTICS


def get_measure(name: str) -> FocusMeasure:
    """The registry entry for ``name``; ConfigError listing the valid names otherwise.

    Parameters
    ----------
    name : str
        A key of :data:`MEASURES` (e.g. ``"brenner"``, ``"spectral-highband"``).

    Returns
    -------
    measure : FocusMeasure
        The registry entry.

    Raises
    ------
    ConfigError
        If the name is unknown.
    """
    try:
        return MEASURES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown focus measure {name!r} — choose one of: {', '.join(MEASURES)}"
        ) from None


def score(
    image_or_stack: Any,
    name: str,
    *,
    pixel_size_um: float | None = None,
    na: float | None = None,
    wavelength_um: float | None = None,
    saturation: Saturation = None,
) -> Score:
    """Score an image (→ float) or every plane of a (Z, Y, X) stack (→ float64 array (Z,)).

    Always oriented so that larger = sharper: measures registered with
    ``maximize=False`` are negated (none is, today). The optics (``pixel_size_um``,
    ``na``, ``wavelength_um``) are passed only to measures with ``needs_optics``; they
    are ignored for the others, and missing ones raise ConfigError for those that need
    them. Each measure runs with its default parameters; call its function directly for
    others.

    Saturated pixels: with a saturation level (a number, or ``"auto"``: the dtype's maximum
    of an integer image), a plane holding a pixel at or above it is scored by the measure's
    masked form — the mean of its per-pixel terms over positions whose ``(2r+1)²``
    footprint is unsaturated,

        ``F = Σ_p t(p)·v(p) / Σ_p v(p)``,  ``v(p) = [max over the footprint of p < level]``

    because a clipped pixel's differences measure the clip, not the focus. Planes with no
    saturated pixel are scored exactly as without masking. Masking is off by default: on
    the sample families (``bench/classic_af.py``) it made every gradient measure *worse*
    on beads saturating at focus — it removes the clipped in-focus cores and keeps the
    sharp rims of the still-saturated defocused discs. Measures with no masked form
    (spectral, wavelet: global or decimated kernels) are not masked under ``"auto"``, and
    raise ConfigError when a level is given explicitly.

    Parameters
    ----------
    image_or_stack : array_like
        A (Y, X) image or a (Z, Y, X) stack of real numbers.
    name : str
        Registry name of the measure (see :data:`MEASURES`).
    pixel_size_um : float, optional
        Pixel size at the sample, in µm (measures with ``needs_optics``).
    na : float, optional
        Numerical aperture (measures with ``needs_optics``).
    wavelength_um : float, optional
        Wavelength, in µm (measures with ``needs_optics``).
    saturation : float, 'auto' or None, optional
        Saturation level in intensity units, ``"auto"`` (an integer image's dtype maximum,
        none for float images) or None (default: no masking).

    Returns
    -------
    score : float or (Z,) ndarray of float64
        One value per image; larger = sharper.

    Raises
    ------
    ConfigError
        If the name is unknown, the optics a measure needs are missing, the image is
        invalid for the measure, or a saturation level is given for a measure that cannot
        mask.
    """
    measure = get_measure(name)
    kwargs: dict[str, Any] = {}
    if measure.needs_optics:
        given = {"pixel_size_um": pixel_size_um, "na": na, "wavelength_um": wavelength_um}
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise ConfigError(
                f"focus measure {name!r} needs the optics: give {', '.join(missing)} "
                "(or choose a measure that does not need them)"
            )
        kwargs = given
    if not isinstance(saturation, str) and saturation is not None and measure.masked is None:
        saturation_level(np.float64, saturation)  # a bad value is refused first
        maskable = ", ".join(n for n, m in MEASURES.items() if m.masked is not None)
        raise ConfigError(
            f"focus measure {name!r} cannot exclude saturated pixels (its kernel is global or "
            f"decimated); use one of {maskable}, or no saturation level"
        )
    if not hasattr(image_or_stack, "dtype"):
        image_or_stack = np.asarray(image_or_stack)
    level = saturation_level(image_or_stack.dtype, saturation)
    if level is None or measure.masked is None:
        value = measure.function(image_or_stack, **kwargs)
    else:
        value = _masked_score(image_or_stack, measure, level)
    if measure.maximize:
        return value
    return -value if isinstance(value, np.ndarray) else -float(value)


def _masked_score(image: Any, measure: FocusMeasure, level: float) -> Score:
    """Score plane by plane: the masked form where a pixel saturates, the plain one elsewhere."""
    assert measure.masked is not None
    single = len(image.shape) == 2
    parts = []
    for _start, chunk in iter_chunks(image, measure.function.__name__, work_itemsize=8):
        out = np.asarray(measure.function(chunk), dtype=np.float64).reshape(-1)
        hit = np.flatnonzero((chunk >= level).any(axis=(-2, -1)))
        if hit.size:
            planes = np.asarray(chunk[hit], dtype=np.float64)
            out[hit] = measure.masked(planes, valid_positions(planes, level, measure.mask_radius))
        parts.append(out)
    values = np.concatenate(parts) if parts else np.empty(0)
    return float(values[0]) if single else values
