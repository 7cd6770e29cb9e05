"""Sample families: registered content generators with randomized parameters.

A *family* is a kind of content (point emitters, confluent cells, stained tissue, …), not
one scene. Each is a function ``family(shape, pixel_size_um, rng, **params) -> Sample``;
every parameter a caller leaves out is drawn from the family's declared range with
``rng``, so one family yields a whole population of scenes. Families are registered with
the contrast mechanisms (*modalities*) their content carries:

- ``fluorescence``: a non-negative emitter map (imaged incoherently);
- ``phase``: a transmittance ``t = exp(iφ)`` whose phase carries the contrast;
- ``absorption``: a transmittance whose amplitude ``|t| = sqrt(1 − a)`` carries it.

Families are the unit of generalization: a learned model is measured on families it was
not trained on (:func:`focuskit.report.leave_one_family_out`), and the families in
:data:`UNSEEN_FAMILIES` are never used to train a bundled model, only to report on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Camera
from focuskit.simulate._camera import apply_camera
from focuskit.simulate._samples import Sample, _check_pixel_size, _check_shape

Modality = Literal["fluorescence", "phase", "absorption"]
MODALITIES: tuple[str, ...] = ("fluorescence", "phase", "absorption")

__all__ = [
    "FAMILIES",
    "MODALITIES",
    "UNSEEN_FAMILIES",
    "Conditions",
    "Family",
    "Param",
    "check_sample_names",
    "draw_conditions",
    "family_statistics",
    "get_family",
    "sample_families",
    "sample_key",
]


@dataclass(frozen=True)
class Param:
    """One randomized parameter of a family: its valid range and how it is drawn.

    Attributes
    ----------
    lo, hi : float
        Valid range ``[lo, hi]`` (inclusive); a random draw lies in it.
    unit : str
        Unit shown to users (``"µm"``, ``"rad"``, ``"per 100 µm²"``; ``""`` if none).
    doc : str
        One-line meaning.
    log : bool
        Draw log-uniformly (parameters spanning decades), else uniformly.
    integer : bool
        Round to an integer.
    probability : float or None
        For a yes/no parameter (``lo=0, hi=1, probability=p``): drawn True with
        probability ``p``; a given value must be a bool (or 0/1).
    """

    lo: float
    hi: float
    unit: str = ""
    doc: str = ""
    log: bool = False
    integer: bool = False
    probability: float | None = None

    @property
    def is_flag(self) -> bool:
        """True for a yes/no parameter."""
        return self.probability is not None

    def draw(self, rng: np.random.Generator) -> float | bool:
        """A random value in the range (log-uniform if ``log``)."""
        if self.is_flag:
            return bool(rng.random() < float(self.probability))  # type: ignore[arg-type]
        if self.log:
            v = math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))
        else:
            v = float(rng.uniform(self.lo, self.hi))
        return round(v) if self.integer else min(max(v, self.lo), self.hi)

    def range_text(self) -> str:
        """``[lo, hi] unit`` or ``yes/no``."""
        if self.is_flag:
            return "true or false"
        unit = f" {self.unit}" if self.unit else ""
        return f"[{self.lo:g}, {self.hi:g}]{unit}"

    def check(self, family: str, name: str, value: Any) -> float | bool:
        """``value`` if valid, else a one-line :class:`ConfigError` naming family and range."""
        where = f"sample family {family!r}: {name}"
        if self.is_flag:
            if isinstance(value, (bool, np.bool_)) or value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
                return value.lower() in ("true", "yes")
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where} must be a number in {self.range_text()}, got {value!r}"
            ) from None
        if not (math.isfinite(v) and self.lo <= v <= self.hi):
            raise ConfigError(f"{where} must be in {self.range_text()}, got {value!r}")
        if self.integer:
            if v != int(v):
                raise ConfigError(f"{where} must be a whole number in {self.range_text()}")
            return int(v)
        return v

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for ``focuskit samples --json``)."""
        if self.is_flag:
            return {"type": "bool", "probability": self.probability, "description": self.doc}
        return {
            "type": "int" if self.integer else "float",
            "range": [self.lo, self.hi],
            "unit": self.unit,
            "draw": "log-uniform" if self.log else "uniform",
            "description": self.doc,
        }


Renderer = Callable[..., np.ndarray]

#: Added to every fluorescence family: a smooth, uneven background (autofluorescence,
#: out-of-focus haze), as a multiple of the mean emitter signal (so sparse beads stay bright
#: spots over a dim background, and dense tissue gets a proportionate haze).
BACKGROUND = Param(0.0, 1.0, "× mean signal", "Uneven background relative to the mean emitter")


@dataclass(frozen=True)
class Family:
    """A registered content family (see the module docstring).

    Attributes
    ----------
    name : str
        Registry key (lower case, ``-`` separated).
    modality : tuple of str
        Contrast mechanisms of the content: ``fluorescence``, ``phase``, ``absorption``.
    description : str
        One line for ``focuskit samples``.
    parameters : dict of str to Param
        Randomized parameters, in drawing order.
    render : callable
        ``render(shape, pixel_size_um, rng, *, wavelength_um, **params) -> ndarray``:
        float emitter map scaled to a peak of 1 (fluorescence), or complex transmittance.
    split : {'train', 'unseen'}
        ``unseen`` families are never used to train a bundled model.
    """

    name: str
    modality: tuple[str, ...]
    description: str
    parameters: dict[str, Param]
    render: Renderer = field(repr=False)
    split: Literal["train", "unseen"] = "train"

    @property
    def kind(self) -> Literal["fluorescence", "transmittance"]:
        """The :class:`Sample` kind the family yields."""
        return "fluorescence" if "fluorescence" in self.modality else "transmittance"

    @property
    def pure_phase(self) -> bool:
        """True if the content only retards light (``|t| = 1``)."""
        return self.modality == ("phase",)

    def resolve(self, rng: np.random.Generator, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check the given parameters and draw the others (in declared order).

        Parameters
        ----------
        rng : numpy.random.Generator
            Draws the parameters not given.
        params : mapping
            Parameters fixed by the caller.

        Returns
        -------
        params : dict
            Every parameter of the family, given or drawn.

        Raises
        ------
        ConfigError
            If a parameter is unknown or out of its range (one line naming the family,
            the parameter and the valid range).
        """
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ConfigError(
                f"sample family {self.name!r} has no parameter {', '.join(unknown)}; "
                f"it takes: {', '.join(self.parameters) or '(none)'}"
            )
        out: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            drawn = spec.draw(rng)  # always drawn: a fixed value does not shift the stream
            out[name] = spec.check(self.name, name, params[name]) if name in params else drawn
        return out

    def __call__(
        self,
        shape: tuple[int, int],
        pixel_size_um: float,
        rng: np.random.Generator | int | None = None,
        *,
        wavelength_um: float = 0.53,
        **params: Any,
    ) -> Sample:
        """Render one random scene of the family.

        Parameters
        ----------
        shape : tuple of int
            (Y, X) in pixels, each ≥ 4.
        pixel_size_um : float
            Pixel size at the sample, in µm.
        rng : numpy.random.Generator or int or None, optional
            Source of randomness (a seed makes a generator); the same seed gives the same
            scene.
        wavelength_um : float, optional
            Illumination or emission wavelength λ, in µm, for families whose contrast
            depends on it (stain spectra); default 0.53.
        **params
            Fixed values for any of the family's :attr:`parameters`; the rest are drawn.

        Returns
        -------
        sample : Sample
            A fluorescence or transmittance sample whose description records the family,
            its modalities and every parameter used.

        Raises
        ------
        ConfigError
            If the shape, pixel size, wavelength or a parameter is invalid.
        """
        shape = _check_shape(shape)
        px = _check_pixel_size(pixel_size_um)
        lam = float(wavelength_um)
        if not (math.isfinite(lam) and 0.2 <= lam <= 2.0):
            raise ConfigError(
                f"sample family {self.name!r}: wavelength_um must be in [0.2, 2] µm, "
                f"got {wavelength_um!r}"
            )
        seed = int(rng) if isinstance(rng, (int, np.integer)) else None
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        resolved = self.resolve(gen, params)
        own = {k: v for k, v in resolved.items() if k != "background"}
        values = self.render(shape, px, gen, wavelength_um=lam, **own)
        if self.kind == "fluorescence":
            values = _finish_emitters(values, float(resolved.get("background", 0.0)), gen, px)
        else:
            values = np.asarray(values, np.complex64)
        desc = {
            "generator": self.name,
            "family": self.name,
            "modality": list(self.modality),
            "seed": seed,
            "wavelength_um": lam,
            **{k: (v if isinstance(v, (bool, int)) else float(v)) for k, v in resolved.items()},
        }
        return Sample(self.kind, values, px, desc)

    def to_dict(self) -> dict[str, Any]:
        """The registry entry as JSON (name, modality, description, parameters, split)."""
        return {
            "name": self.name,
            "modality": list(self.modality),
            "description": self.description,
            "split": self.split,
            "parameters": {k: p.to_dict() for k, p in self.parameters.items()},
        }


def _finish_emitters(
    emit: np.ndarray, background: float, rng: np.random.Generator, px: float
) -> np.ndarray:
    """Scale an emitter map to a peak of 1 and add ``background`` × its mean, unevenly (≥ 0)."""
    from focuskit.simulate._samples import _Noise

    e = np.maximum(np.asarray(emit, np.float32), 0)
    peak = float(e.max())
    if peak > 0:
        e *= np.float32(1.0 / peak)
    if background > 0:
        noise = _Noise(rng, e.shape, px)
        uneven = noise.field(noise.gauss(0.15 * max(e.shape) * px))
        level = np.float32(background * float(e.mean(dtype=np.float64)))
        e += level * np.clip(1 + 0.3 * uneven, 0.2, None)
    return e


#: name -> Family, filled by :func:`register` as the family modules load.
FAMILIES: dict[str, Family] = {}

#: Families no bundled model is trained on: used only to report generalization.
UNSEEN_FAMILIES: tuple[str, ...] = (
    "mitochondria",
    "tissue-section",
    "rods",
    "debris",
    "printed-target",
)


def register(
    name: str,
    *,
    modality: Iterable[str],
    description: str,
    parameters: Mapping[str, Param] | None = None,
) -> Callable[[Renderer], Renderer]:
    """Decorator registering a renderer as a family (see :class:`Family`).

    Parameters
    ----------
    name : str
        Registry key.
    modality : iterable of str
        Contrast mechanisms; a subset of :data:`MODALITIES`.
    description : str
        One line for users.
    parameters : mapping of str to Param, optional
        The randomized parameters; fluorescence families also get ``background``.

    Returns
    -------
    decorator : callable
        Registers and returns the renderer unchanged.
    """
    mods = tuple(modality)
    if not mods or any(m not in MODALITIES for m in mods):
        raise ValueError(f"family {name}: modality must be a subset of {MODALITIES}")
    params = dict(parameters or {})
    if "fluorescence" in mods:
        params["background"] = BACKGROUND

    def deco(fn: Renderer) -> Renderer:
        if name in FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        split: Literal["train", "unseen"] = "unseen" if name in UNSEEN_FAMILIES else "train"
        FAMILIES[name] = Family(name, mods, description, params, fn, split)
        return fn

    return deco


def sample_key(name: str) -> str:
    """A sample or family name as the registries spell it (lower case, ``-`` separated).

    Parameters
    ----------
    name : str
        Name as a user typed it (``Point_Emitters``).

    Returns
    -------
    key : str
        The registry spelling (``point-emitters``).
    """
    return str(name).strip().lower().replace("_", "-")


_key = sample_key


def get_family(name: str) -> Family:
    """The registered family called ``name`` (case and ``_``/``-`` ignored).

    Parameters
    ----------
    name : str
        Family name (see ``focuskit samples``).

    Returns
    -------
    family : Family
        The family.

    Raises
    ------
    ConfigError
        If no family has that name; the message lists them.
    """
    _load()
    key = _key(name)
    if key not in FAMILIES:
        raise ConfigError(
            f"unknown sample family {name!r}; choose one of: {', '.join(FAMILIES)} "
            "(see `focuskit samples`)"
        )
    return FAMILIES[key]


def sample_families(
    modality: str | None = None,
    *,
    split: Literal["train", "unseen", "all"] = "all",
    exclude: Iterable[str] = (),
) -> list[str]:
    """Names of the registered families, filtered by modality and split.

    Parameters
    ----------
    modality : str, optional
        Keep families whose content carries this contrast (``fluorescence``, ``phase``,
        ``absorption``); ``transmitted`` keeps phase and absorption families.
    split : {'all', 'train', 'unseen'}, optional
        ``train`` leaves out :data:`UNSEEN_FAMILIES`; ``unseen`` keeps only them.
    exclude : iterable of str, optional
        Names to leave out (e.g. mixtures, which contain the other families).

    Returns
    -------
    names : list of str
        Family names in registry order.

    Raises
    ------
    ConfigError
        If the modality or split is unknown.
    """
    _load()
    if modality is not None and modality not in (*MODALITIES, "transmitted"):
        raise ConfigError(
            f"unknown modality {modality!r}; use one of: {', '.join(MODALITIES)}, transmitted"
        )
    if split not in ("all", "train", "unseen"):
        raise ConfigError(f"split must be 'all', 'train' or 'unseen', got {split!r}")
    skip = {_key(e) for e in exclude}
    out = []
    for name, fam in FAMILIES.items():
        if name in skip or (split != "all" and fam.split != split):
            continue
        if modality == "transmitted":
            if fam.kind != "transmittance":
                continue
        elif modality is not None and modality not in fam.modality:
            continue
        out.append(name)
    return out


def _load() -> None:
    """Import the family modules (they register themselves)."""
    from focuskit.simulate import _zoo_fluorescence, _zoo_transmitted  # noqa: F401


# --------------------------------------------------------------------------- exposure


@dataclass(frozen=True)
class Conditions:
    """Randomized imaging conditions to pair with a family's scene.

    Attributes
    ----------
    photons : float
        Mean photo-electrons per pixel (100–20,000 when drawn).
    offset_adu : float
        Camera offset (ADU).
    saturate : bool
        Expose so that the brightest pixel exceeds the full well (``overexposure``×).
    overexposure : float
        Peak signal over full well when ``saturate`` (1.5–6 when drawn).
    """

    photons: float
    offset_adu: float
    saturate: bool = False
    overexposure: float = 1.0

    def camera(self, camera: Camera) -> Camera:
        """``camera`` with this offset."""
        from dataclasses import replace

        return replace(camera, offset_adu=self.offset_adu)

    def expose(
        self, intensity: np.ndarray, camera: Camera, rng: np.random.Generator | int | None
    ) -> np.ndarray:
        """Camera counts of a noise-free intensity (image or stack) under these conditions.

        Parameters
        ----------
        intensity : ndarray
            Noise-free intensity; for saturation, its brightest pixel is the one that
            saturates (render the in-focus plane in the stack).
        camera : Camera
            The camera; its offset is replaced by :attr:`offset_adu`.
        rng : numpy.random.Generator or int or None
            Noise source.

        Returns
        -------
        counts : ndarray
            uint8/uint16 counts, clipped at the camera's maximum.
        """
        cam = self.camera(camera)
        level = self.photons
        if self.saturate:
            i = np.maximum(intensity, 0)
            full_well = (cam.max_adu - cam.offset_adu) / cam.gain_adu_per_e
            level = self.overexposure * full_well * float(i.mean()) / max(float(i.max()), 1e-30)
        return apply_camera(intensity, cam, level, seed=rng)


def draw_conditions(
    rng: np.random.Generator,
    *,
    photons: tuple[float, float] = (100.0, 20_000.0),
    offset_adu: tuple[float, float] = (0.0, 500.0),
    saturate_probability: float = 0.0,
) -> Conditions:
    """Random imaging conditions: photons log-uniform, offset uniform, optional saturation.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    photons : tuple of float, optional
        (min, max) mean photo-electrons per pixel (default 100–20,000).
    offset_adu : tuple of float, optional
        (min, max) camera offset in ADU (default 0–500).
    saturate_probability : float, optional
        Chance of overexposing the brightest pixel 1.5–6× past the full well.

    Returns
    -------
    conditions : Conditions
        The drawn conditions.

    Raises
    ------
    ConfigError
        If a range is invalid.
    """
    lo, hi = (float(v) for v in photons)
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ConfigError(f"photons must be (min, max) with 0 < min ≤ max, got {photons!r}")
    olo, ohi = (float(v) for v in offset_adu)
    if not (0 <= olo <= ohi and math.isfinite(ohi)):
        raise ConfigError(f"offset_adu must be (min, max) with 0 ≤ min ≤ max, got {offset_adu!r}")
    if not 0 <= saturate_probability <= 1:
        raise ConfigError(f"saturate_probability must be in [0, 1], got {saturate_probability}")
    p = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    off = float(rng.uniform(olo, ohi))
    sat = bool(rng.random() < saturate_probability)
    over = float(rng.uniform(1.5, 6.0))
    return Conditions(p, off, sat, over if sat else 1.0)


# --------------------------------------------------------------------------- statistics


def family_statistics(
    name: str,
    *,
    draws: int = 4,
    size: int = 256,
    pixel_size_um: float = 0.325,
    seed: int = 0,
) -> dict[str, Any]:
    """Measured statistics of a family over a few random scenes: what its content is like.

    ``coverage``: fraction of pixels with content (fluorescence: emitter > 10 % of the peak
    over the background; transmitted: phase beyond 0.05 rad from the background or more
    than 2 % absorbed). ``phase_span_rad``: 1st–99th percentile span of the (wrapped) phase.
    ``absorbed_fraction``: mean ``1 − |t|²``. ``peak_to_mean``: emitter peak over mean.
    Each is ``[min, median, max]`` over the draws.

    Parameters
    ----------
    name : str
        Family name.
    draws : int, optional
        Random scenes measured (default 4).
    size : int, optional
        Scene side in pixels (default 256).
    pixel_size_um : float, optional
        Pixel size, in µm (default 0.325, a 20× objective).
    seed : int, optional
        Seed of the first scene (default 0).

    Returns
    -------
    statistics : dict
        Statistic name → ``[min, median, max]``, plus ``field_um``.

    Raises
    ------
    ConfigError
        If the family is unknown.
    """
    fam = get_family(name)
    rows: dict[str, list[float]] = {}
    for k in range(draws):
        s = fam((size, size), pixel_size_um, seed + k)
        v = s.values
        if fam.kind == "fluorescence":
            base = float(np.percentile(v, 5))
            stats = {
                "coverage": float(np.mean(v - base > 0.1 * (float(v.max()) - base))),
                "peak_to_mean": float(v.max() / max(float(v.mean()), 1e-12)),
            }
        else:
            phase = np.angle(v)
            ref = float(np.median(phase))
            wrapped = np.angle(np.exp(1j * (phase - ref)))
            absorbed = 1 - np.abs(v) ** 2
            content = (np.abs(wrapped) > 0.05) | (absorbed > 0.02)
            lo, hi = np.percentile(phase, [1, 99])
            stats = {
                "coverage": float(content.mean()),
                "phase_span_rad": float(hi - lo),
                "absorbed_fraction": float(absorbed.mean()),
            }
        for key, val in stats.items():
            rows.setdefault(key, []).append(val)
    out: dict[str, Any] = {
        key: [round(float(np.min(x)), 4), round(float(np.median(x)), 4), round(float(np.max(x)), 4)]
        for key, x in rows.items()
    }
    out["field_um"] = round(size * pixel_size_um, 2)
    return out


def check_sample_names(
    names: Iterable[str],
    *,
    fluorescence: bool,
    generators: Iterable[str] = (),
    what: str = "samples",
) -> list[str]:
    """Normalized sample names a microscope can image: given generators, or matching families.

    Parameters
    ----------
    names : iterable of str
        Requested samples (case and ``_``/``-`` ignored); at least one.
    fluorescence : bool
        True for a fluorescence microscope (needs fluorescence families), False for
        transmitted light (phase or absorption families).
    generators : iterable of str, optional
        Other names the caller accepts (its own generators or contents).
    what : str, optional
        What the names are for, in messages.

    Returns
    -------
    names : list of str
        The normalized names, in order.

    Raises
    ------
    ConfigError
        If none is given, or a name is neither an accepted generator nor a family the
        microscope can image (the message lists the valid ones).
    """
    _load()
    if isinstance(names, str):
        names = [names]
    out = [_key(n) for n in names]
    extra = [_key(g) for g in generators]
    fams = [n for n, f in FAMILIES.items() if (f.kind == "fluorescence") == fluorescence]
    if not out:
        raise ConfigError(f"{what}: give at least one sample")
    for n in out:
        if n in extra or n in fams:
            continue
        light = "a fluorescence" if fluorescence else "a transmitted-light"
        why = (
            f"{n!r} is a {FAMILIES[n].kind} family, which {light} microscope cannot image"
            if n in FAMILIES
            else f"unknown sample {n!r}"
        )
        raise ConfigError(f"{what}: {why}; use one of: {', '.join(extra + fams)}")
    return out
