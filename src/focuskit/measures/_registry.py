"""The registry of scalar focus measures, by CLI name, and ``score``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.measures._common import Score
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
    """

    name: str
    function: Callable[..., Score]
    maximize: bool
    brightness_power: int
    needs_optics: bool
    description: str
    reference: str


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
    ),
    FocusMeasure(
        "vollath5",
        vollath_f5,
        True,
        2,
        False,
        "Vollath F5: lag-1 autocorrelation along x minus mean², per pixel pair",
        f"Vollath, J. Microsc. 151:133 (1988); {_DEEPR} eq. 10",
    ),
    FocusMeasure(
        "std", std, True, 1, False, "standard deviation of the intensity", f"{_DEEPR} eq. 11"
    ),
    FocusMeasure(
        "nvar",
        normalized_variance,
        True,
        1,
        False,
        "normalized variance: variance / mean intensity",
        f"Groen et al., Cytometry 6:81 (1985); {_DEEPR} eq. 12",
    ),
    FocusMeasure(
        "brenner",
        brenner,
        True,
        2,
        False,
        "Brenner gradient: mean (I(x+2) − I(x))² along x",
        "Brenner et al., J. Histochem. Cytochem. 24:100 (1976)",
    ),
    FocusMeasure(
        "tenengrad",
        tenengrad,
        True,
        2,
        False,
        "Tenengrad: mean squared Sobel gradient magnitude (Sobel / 8)",
        f"Tenenbaum (1970); Krotkov, IJCV 1:223 (1988); {_DEEPFOCUS} [13]",
    ),
    FocusMeasure(
        "lapv",
        laplacian_variance,
        True,
        2,
        False,
        "variance of the 4-neighbour Laplacian",
        f"Pech-Pacheco et al., ICPR 2000; {_DEEPFOCUS}",
    ),
    FocusMeasure(
        "sml",
        sum_modified_laplacian,
        True,
        1,
        False,
        "sum-modified Laplacian (step 1), per pixel",
        f"Nayar & Nakagawa, IEEE TPAMI 16:824 (1994); {_DEEPFOCUS}",
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
) -> Score:
    """Score an image (→ float) or every plane of a (Z, Y, X) stack (→ float64 array (Z,)).

    Always oriented so that larger = sharper: measures registered with
    ``maximize=False`` are negated (none is, today). The optics (``pixel_size_um``,
    ``na``, ``wavelength_um``) are passed only to measures with ``needs_optics``; they
    are ignored for the others, and missing ones raise ConfigError for those that need
    them. Each measure runs with its default parameters; call its function directly for
    others.

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

    Returns
    -------
    score : float or (Z,) ndarray of float64
        One value per image; larger = sharper.

    Raises
    ------
    ConfigError
        If the name is unknown, the optics a measure needs are missing, or the image is
        invalid for the measure.
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
    value = measure.function(image_or_stack, **kwargs)
    if measure.maximize:
        return value
    return -value if isinstance(value, np.ndarray) else -float(value)
