"""Optics configuration: objective, camera, illumination, validated once at the edge.

All lengths in µm (OPTICS.md "Units and axes"). Every config is a frozen dataclass
that round-trips through a plain JSON-able dict (``to_dict`` / ``from_dict``), which
is what focal-stack files and model folders store.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from focuskit._errors import ConfigError


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _finite_positive(name: str, value: float) -> None:
    _require(
        isinstance(value, (int, float)) and math.isfinite(value) and value > 0,
        f"{name} must be a finite number > 0, got {value!r}",
    )


@dataclass(frozen=True)
class Objective:
    """Microscope objective: numerical aperture, magnification, immersion index.

    Validated on construction.

    Attributes
    ----------
    na : float
        Numerical aperture, finite, > 0 and below ``immersion_index``.
    magnification : float
        Lateral magnification (dimensionless, > 0).
    immersion_index : float, optional
        Refractive index ``n`` of the immersion medium, >= 1 (air = 1.0, the default).

    Raises
    ------
    ConfigError
        If a value is out of range.
    """

    na: float
    magnification: float
    immersion_index: float = 1.0

    def __post_init__(self) -> None:
        _finite_positive("objective.na", self.na)
        _finite_positive("objective.magnification", self.magnification)
        _require(
            self.immersion_index >= 1.0,
            f"objective.immersion_index must be >= 1 (air = 1.0), got {self.immersion_index}",
        )
        _require(
            self.na < self.immersion_index,
            f"objective.na ({self.na}) must be below the immersion index ({self.immersion_index})",
        )


@dataclass(frozen=True)
class Camera:
    """Camera: pixel pitch (µm), bit depth, gain (ADU per e⁻), read noise (e⁻ rms), offset (ADU).

    Attributes
    ----------
    pixel_um : float, optional
        Physical pixel pitch on the sensor, in µm (default 6.5). The pixel at the sample is
        ``pixel_um / magnification`` (see :attr:`Optics.pixel_size_um`).
    bit_depth : int, optional
        Bits per pixel, an integer in 1..16 (default 16).
    gain_adu_per_e : float, optional
        Conversion gain in ADU per photo-electron (e⁻), > 0 (default 1.0).
    read_noise_e : float, optional
        Read noise in e⁻ rms, >= 0 (default 1.5).
    offset_adu : float, optional
        Dark offset in ADU, within ``0 .. 2**bit_depth - 1`` (default 100).

    Raises
    ------
    ConfigError
        If a value is out of range.
    """

    pixel_um: float = 6.5
    bit_depth: int = 16
    gain_adu_per_e: float = 1.0
    read_noise_e: float = 1.5
    offset_adu: float = 100.0

    def __post_init__(self) -> None:
        _finite_positive("camera.pixel_um", self.pixel_um)
        _require(
            isinstance(self.bit_depth, int) and 1 <= self.bit_depth <= 16,
            f"camera.bit_depth must be an integer 1..16, got {self.bit_depth!r}",
        )
        _finite_positive("camera.gain_adu_per_e", self.gain_adu_per_e)
        _require(
            self.read_noise_e >= 0, f"camera.read_noise_e must be >= 0, got {self.read_noise_e}"
        )
        _require(
            0 <= self.offset_adu < 2**self.bit_depth,
            f"camera.offset_adu must be within 0..{2**self.bit_depth - 1}, got {self.offset_adu}",
        )

    @property
    def max_adu(self) -> int:
        """Largest pixel value, ``2**bit_depth - 1`` (ADU)."""
        return 2**self.bit_depth - 1


# --- Illumination -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fluorescence:
    """Incoherent emission: image = emitter map ⊛ |IFFT(P_z)|² (OPTICS.md, Illumination).

    Attributes
    ----------
    kind : {'fluorescence'}
        Tag of the illumination in its dict form.
    psf_model : {'scalar', 'vectorial'}, optional
        PSF used by the simulator: the scalar ``|IFFT(P_z)|²`` (default) or the vectorial
        Richards–Wolf / Aguet PSF of :func:`vectorial_psf`.

    Raises
    ------
    ConfigError
        If ``psf_model`` is not one of the two names.
    """

    kind: Literal["fluorescence"] = "fluorescence"
    psf_model: Literal["scalar", "vectorial"] = "scalar"

    def __post_init__(self) -> None:
        _require(
            self.psf_model in ("scalar", "vectorial"),
            f"fluorescence.psf_model must be 'scalar' or 'vectorial', got {self.psf_model!r}",
        )


@dataclass(frozen=True)
class LED:
    """One spatially coherent LED at illumination NA (sx, sy); sx = sin θ for angle θ in x–z.

    Attributes
    ----------
    sx : float
        Illumination NA along x, ``sin θ`` for the angle θ in the x–z plane (dimensionless).
    sy : float, optional
        Illumination NA along y (default 0). ``sx² + sy²`` must be below 1.
    kind : {'led'}
        Tag of the illumination in its dict form.

    Raises
    ------
    ConfigError
        If ``sx² + sy² >= 1``.
    """

    sx: float
    sy: float = 0.0
    kind: Literal["led"] = "led"

    def __post_init__(self) -> None:
        _require(
            math.hypot(self.sx, self.sy) < 1.0,
            f"led (sx, sy) = ({self.sx}, {self.sy}) must satisfy sx² + sy² < 1 (it is sin θ)",
        )

    @classmethod
    def at_angle(cls, theta_deg: float, azimuth_deg: float = 0.0) -> LED:
        """LED at polar angle θ from the optical axis, azimuth φ from +x.

        Parameters
        ----------
        theta_deg : float
            Polar angle θ from the optical axis, in degrees.
        azimuth_deg : float, optional
            Azimuth φ from +x, in degrees (default 0: the LED lies in the x–z plane).

        Returns
        -------
        led : LED
            The LED with ``sx = sin θ cos φ`` and ``sy = sin θ sin φ``.
        """
        s = math.sin(math.radians(theta_deg))
        phi = math.radians(azimuth_deg)
        return cls(sx=s * math.cos(phi), sy=s * math.sin(phi))


@dataclass(frozen=True)
class LEDPattern:
    """Several mutually incoherent LEDs: I = Σ w_k · I_k (Abbe).

    Attributes
    ----------
    leds : tuple of (float, float, float)
        One ``(sx, sy, weight)`` triple per LED: its illumination NA along x and y
        (``sx² + sy² < 1``) and its weight (>= 0; not all zero). Stored as tuples of floats.
    kind : {'led_pattern'}
        Tag of the illumination in its dict form.

    Raises
    ------
    ConfigError
        If the pattern is empty, an LED lies outside the unit NA disc, or the weights are
        negative or all zero.
    """

    leds: tuple[tuple[float, float, float], ...]  # (sx, sy, weight)
    kind: Literal["led_pattern"] = "led_pattern"

    def __post_init__(self) -> None:
        leds = tuple(tuple(float(v) for v in led) for led in self.leds)
        object.__setattr__(self, "leds", leds)
        _require(len(leds) > 0, "led_pattern needs at least one LED")
        for sx, sy, w in leds:
            _require(
                math.hypot(sx, sy) < 1.0, f"led_pattern LED ({sx}, {sy}) must have sx²+sy² < 1"
            )
            _require(w >= 0 and math.isfinite(w), f"led_pattern weight must be >= 0, got {w}")
        _require(sum(w for *_, w in leds) > 0, "led_pattern weights must not all be zero")


@dataclass(frozen=True)
class DPC:
    """Differential-phase-contrast half annulus of source NAs in [na_inner, na_outer].

    ``side`` is the half-plane that is lit: 'right' (sx > 0), 'left', 'top' (sy > 0), 'bottom'.
    Pinkard et al. use a half annulus of NA 0.35–0.48 for the ground-truth stacks [1]_.

    Attributes
    ----------
    na_inner : float
        Inner illumination NA of the annulus, ``0 <= na_inner < na_outer``.
    na_outer : float
        Outer illumination NA of the annulus, below 1.
    side : {'right', 'left', 'top', 'bottom'}, optional
        The half-plane that is lit (default 'right').
    source_step_na : float, optional
        Pitch, in NA units, of the grid of source points that samples the annulus (default 0.04).
    kind : {'dpc'}
        Tag of the illumination in its dict form.

    Raises
    ------
    ConfigError
        If the NAs or the side are invalid.

    References
    ----------
    .. [1] H. Pinkard, Z. Phillips, A. Babakhani, D. A. Fletcher and L. Waller, "Deep learning
           for single-shot autofocus microscopy", Optica 6, 794 (2019), Fig. 1a.
    """

    na_inner: float
    na_outer: float
    side: Literal["right", "left", "top", "bottom"] = "right"
    source_step_na: float = 0.04
    kind: Literal["dpc"] = "dpc"

    def __post_init__(self) -> None:
        _require(
            0 <= self.na_inner < self.na_outer < 1,
            f"dpc needs 0 <= na_inner < na_outer < 1, got {self.na_inner}, {self.na_outer}",
        )
        _require(
            self.side in ("right", "left", "top", "bottom"), f"dpc.side invalid: {self.side!r}"
        )
        _finite_positive("dpc.source_step_na", self.source_step_na)


@dataclass(frozen=True)
class Brightfield:
    """Köhler brightfield: Abbe sum over source points filling the condenser disc s ≤ NA_c.

    Attributes
    ----------
    na_condenser : float
        Condenser NA ``NA_c``, in [0, 1). ``NA_c → 0`` is coherent on-axis illumination.
    source_step_na : float, optional
        Source grid pitch in NA units (default 0.08: ~150 points fill a 0.55 condenser). Each
        point costs one FFT per plane; finer steps only matter far from focus (ghosting of
        z·Δs/n).
    kind : {'brightfield'}
        Tag of the illumination in its dict form.

    Raises
    ------
    ConfigError
        If ``na_condenser`` is out of range or ``source_step_na`` is not > 0.
    """

    na_condenser: float
    # Source grid pitch in NA units: ~150 points fill a 0.55 condenser. Each point costs
    # one FFT per plane; finer steps only matter far from focus (ghosting of z·Δs/n).
    source_step_na: float = 0.08
    kind: Literal["brightfield"] = "brightfield"

    def __post_init__(self) -> None:
        _require(
            0 <= self.na_condenser < 1,
            f"brightfield.na_condenser must be in [0, 1), got {self.na_condenser}",
        )
        _finite_positive("brightfield.source_step_na", self.source_step_na)


Illumination = Fluorescence | LED | LEDPattern | DPC | Brightfield
_ILLUMINATIONS: dict[str, type] = {
    "fluorescence": Fluorescence,
    "led": LED,
    "led_pattern": LEDPattern,
    "dpc": DPC,
    "brightfield": Brightfield,
}


def illumination_from_dict(d: dict[str, Any]) -> Illumination:
    """Build an illumination from its dict form ``{"kind": ..., ...}``.

    Parameters
    ----------
    d : dict
        The dict form: ``"kind"`` (one of ``fluorescence``, ``led``, ``led_pattern``, ``dpc``,
        ``brightfield``) plus the fields of that class (NAs dimensionless).

    Returns
    -------
    illumination : Fluorescence, LED, LEDPattern, DPC or Brightfield
        The validated illumination.

    Raises
    ------
    ConfigError
        If the kind is unknown or a field is missing, unexpected or out of range.
    """
    kind = d.get("kind")
    cls = _ILLUMINATIONS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ConfigError(
            f"unknown illumination kind {kind!r}; use one of {', '.join(_ILLUMINATIONS)}"
        )
    kwargs = {k: v for k, v in d.items() if k != "kind"}
    if cls is LEDPattern and "leds" in kwargs:
        kwargs["leds"] = tuple(tuple(led) for led in kwargs["leds"])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"illumination {kind!r}: {exc}") from None


# The NA-valued fields of each illumination, compared by Optics.mismatches.
_ILLUMINATION_NAS: dict[str, tuple[str, ...]] = {
    "led": ("sx", "sy"),
    "dpc": ("na_inner", "na_outer"),
    "brightfield": ("na_condenser",),
}
# Relative tolerance of Optics.mismatches: an image and a model agree within 2 %.
OPTICS_TOLERANCE = 0.02


def _same_pattern(a: LEDPattern, b: LEDPattern, na_tolerance: float) -> bool:
    return len(a.leds) == len(b.leds) and all(
        abs(p[0] - q[0]) <= na_tolerance and abs(p[1] - q[1]) <= na_tolerance
        for p, q in zip(a.leds, b.leds, strict=True)
    )


def describe_illumination(illumination: Illumination) -> str:
    """A short human description: ``led at (0.407, 0)``, ``dpc 0.35–0.48 right``, …

    Parameters
    ----------
    illumination : Illumination
        Any illumination config.

    Returns
    -------
    description : str
        One short phrase, as used in :meth:`Optics.mismatches` messages.
    """
    if isinstance(illumination, LED):
        return f"led at ({illumination.sx:g}, {illumination.sy:g})"
    if isinstance(illumination, DPC):
        return f"dpc {illumination.na_inner:g}–{illumination.na_outer:g} {illumination.side}"
    if isinstance(illumination, Brightfield):
        return f"brightfield (condenser NA {illumination.na_condenser:g})"
    if isinstance(illumination, LEDPattern):
        return f"led_pattern of {len(illumination.leds)} LEDs"
    return illumination.kind


# --- Optics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Optics:
    """A microscope: objective + wavelength + camera + illumination.

    ``wavelength_um`` is the emission wavelength for fluorescence, the illumination
    wavelength otherwise.

    Attributes
    ----------
    objective : Objective
        The objective (NA, magnification, immersion index).
    wavelength_um : float
        Wavelength λ in µm (0.53, not 530): finite, > 0 and below 5.
    camera : Camera, optional
        The camera (default ``Camera()``: 6.5 µm pixels, 16 bit).
    illumination : Illumination, optional
        How the sample is lit (default ``Fluorescence()``).

    Raises
    ------
    ConfigError
        If ``wavelength_um`` is not a finite number in (0, 5) µm.
    """

    objective: Objective
    wavelength_um: float
    camera: Camera = field(default_factory=Camera)
    illumination: Illumination = field(default_factory=Fluorescence)

    def __post_init__(self) -> None:
        _finite_positive("wavelength_um", self.wavelength_um)
        _require(
            self.wavelength_um < 5,
            f"wavelength_um is in µm (0.53, not 530); got {self.wavelength_um}",
        )

    # Derived quantities -----------------------------------------------------------------
    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample: camera pixel / magnification."""
        return self.camera.pixel_um / self.objective.magnification

    @property
    def na(self) -> float:
        """Numerical aperture of the objective."""
        return self.objective.na

    @property
    def n(self) -> float:
        """Refractive index of the immersion medium."""
        return self.objective.immersion_index

    @property
    def cutoff_frequency(self) -> float:
        """Coherent cut-off NA/λ (cycles/µm); the incoherent OTF reaches 2·NA/λ."""
        return self.objective.na / self.wavelength_um

    @property
    def depth_of_field_um(self) -> float:
        """DOF = λ·n/NA² + n·e/(M·NA) with e the camera pixel (OPTICS.md)."""
        return depth_of_field_um(
            self.wavelength_um,
            self.objective.na,
            self.objective.immersion_index,
            self.camera.pixel_um,
            self.objective.magnification,
        )

    @property
    def is_fluorescence(self) -> bool:
        """True when the illumination is :class:`Fluorescence`."""
        return isinstance(self.illumination, Fluorescence)

    def with_illumination(self, illumination: Illumination) -> Optics:
        """The same microscope under another illumination.

        Parameters
        ----------
        illumination : Illumination
            The new illumination.

        Returns
        -------
        optics : Optics
            A copy with the same objective, wavelength and camera.
        """
        return Optics(self.objective, self.wavelength_um, self.camera, illumination)

    # Comparison -------------------------------------------------------------------------
    def mismatches(
        self,
        other: Optics,
        *,
        pixel_size_um: float | None = None,
        tolerance: float = OPTICS_TOLERANCE,
    ) -> list[str]:
        """How ``other`` differs from this microscope, beyond ``tolerance`` (empty: a match).

        One rule for every model and check: pixel size, NA and wavelength agree within
        the relative ``tolerance``; the illumination is of the same kind and each of its
        NAs (LED direction, annulus, condenser) agrees within ``tolerance × NA`` of the
        objective (0.01 for an LED at NA 0.5). ``pixel_size_um`` overrides ``other``'s
        (an image's own pixel size). Simulation-only settings (source sampling, PSF model,
        camera noise) are not compared.

        Parameters
        ----------
        other : Optics
            The microscope to compare with this one.
        pixel_size_um : float, optional
            Pixel size at the sample, in µm, to use instead of ``other.pixel_size_um``.
        tolerance : float, optional
            Relative tolerance (default :data:`OPTICS_TOLERANCE`, 2 %).

        Returns
        -------
        differences : list of str
            One phrase per difference, ``"<quantity> <other's> ≠ <this one's>"``.
        """
        out: list[str] = []
        px = other.pixel_size_um if pixel_size_um is None else float(pixel_size_um)
        if not math.isclose(px, self.pixel_size_um, rel_tol=tolerance):
            out.append(f"pixel size {px:g} µm ≠ {self.pixel_size_um:g} µm")
        if not math.isclose(other.na, self.na, rel_tol=tolerance):
            out.append(f"NA {other.na:g} ≠ {self.na:g}")
        if not math.isclose(other.wavelength_um, self.wavelength_um, rel_tol=tolerance):
            out.append(f"λ {other.wavelength_um:g} µm ≠ {self.wavelength_um:g} µm")
        mine, theirs = self.illumination, other.illumination
        if (
            mine.kind != theirs.kind
            or any(
                abs(float(getattr(theirs, name)) - float(getattr(mine, name))) > tolerance * self.na
                for name in _ILLUMINATION_NAS.get(mine.kind, ())
            )
            or (
                isinstance(mine, LEDPattern)
                and isinstance(theirs, LEDPattern)
                and not _same_pattern(mine, theirs, tolerance * self.na)
            )
        ):
            out.append(
                f"illumination {describe_illumination(theirs)} ≠ {describe_illumination(mine)}"
            )
        return out

    def matches(
        self,
        other: Optics,
        *,
        pixel_size_um: float | None = None,
        tolerance: float = OPTICS_TOLERANCE,
    ) -> bool:
        """True when :meth:`mismatches` finds no difference.

        Parameters
        ----------
        other : Optics
            The microscope to compare with this one.
        pixel_size_um : float, optional
            Pixel size at the sample, in µm, to use instead of ``other.pixel_size_um``.
        tolerance : float, optional
            Relative tolerance (default :data:`OPTICS_TOLERANCE`, 2 %).

        Returns
        -------
        match : bool
            True when pixel size, NA, wavelength and illumination all agree.
        """
        return not self.mismatches(other, pixel_size_um=pixel_size_um, tolerance=tolerance)

    # Serialization ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict form stored in focal-stack files and model folders.

        Returns
        -------
        d : dict
            ``objective``, ``wavelength_um`` (µm), ``camera`` and ``illumination`` as nested dicts,
            plus the informative ``pixel_size_um`` (µm at the sample; recomputed on load).
        """
        d = asdict(self)
        if isinstance(self.illumination, LEDPattern):
            d["illumination"]["leds"] = [list(led) for led in self.illumination.leds]
        d["pixel_size_um"] = self.pixel_size_um  # informative; recomputed on load
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Optics:
        """Rebuild optics from :meth:`to_dict`'s form.

        Parameters
        ----------
        d : dict
            Needs ``objective`` and ``wavelength_um`` (µm); ``camera`` and ``illumination``
            default to ``Camera()`` and fluorescence. ``pixel_size_um`` is ignored.

        Returns
        -------
        optics : Optics
            The validated microscope.

        Raises
        ------
        ConfigError
            If a required key is missing or a value is malformed or out of range.
        """
        try:
            return cls(
                objective=Objective(**d["objective"]),
                wavelength_um=float(d["wavelength_um"]),
                camera=Camera(**d.get("camera", {})),
                illumination=illumination_from_dict(
                    d.get("illumination", {"kind": "fluorescence"})
                ),
            )
        except KeyError as exc:
            raise ConfigError(f"optics metadata is missing {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ConfigError(f"optics metadata is malformed: {exc}") from None


def depth_of_field_um(
    wavelength_um: float, na: float, n: float, camera_pixel_um: float, magnification: float
) -> float:
    """Depth of field ``λ·n/NA² + n·e/(M·NA)`` (wave-optical + geometric term).

    Parameters
    ----------
    wavelength_um : float
        Wavelength λ, in µm.
    na : float
        Numerical aperture of the objective.
    n : float
        Refractive index of the immersion medium.
    camera_pixel_um : float
        Physical camera pixel ``e``, in µm (not the pixel at the sample).
    magnification : float
        Objective magnification ``M``.

    Returns
    -------
    dof : float
        Depth of field, in µm.
    """
    return wavelength_um * n / na**2 + n * camera_pixel_um / (magnification * na)
