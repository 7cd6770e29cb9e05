"""Training examples for single-shot defocus prediction (Pinkard et al., Fig. 1a, Note S3).

Each field of view gives two stacks over the same z positions: a coherent one (one LED,
the network's input) and an incoherent one (DPC half annulus) whose high-frequency
power-spectrum maximum is the ground-truth focus. Every tile of every coherent plane is
one example labelled ``z_plane − z_focus``. Train/validation splits are by field.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.focus import find_focus
from focuskit.io import SUPPORTED_SUFFIXES, FocalStack, read_stack
from focuskit.nn import split_fields
from focuskit.optics import (
    DPC,
    LED,
    OPTICS_TOLERANCE,
    Optics,
    Preset,
    describe_illumination,
    get_preset,
)
from focuskit.simulate import check_sample_names, make_sample, plan_render, render_stack
from focuskit.singleshot._features import FourierRegion, fourier_features, split_tiles


@dataclass
class DefocusExamples:
    """Feature vectors, defocus labels (µm) and the field each came from.

    Attributes
    ----------
    features : (N, F) float32 array
        One Fourier feature vector per example (:func:`fourier_features`).
    z_um : (N,) float32 array
        The defocus label of each example, ``z_plane − z_focus`` (µm, OPTICS.md sign).
    field : (N,) int64 array
        The field of view each example came from (splits are by field).
    fields : list of dict
        One record per field: ``field``, ``focus_um`` (µm), ``true_focus_um`` (µm or
        None) and, for simulated or read fields, how they were made (``density``,
        ``photons``, ``seed``, ``file`` …).

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 1a and Note S3.
    """

    features: np.ndarray  # (N, F) float32
    z_um: np.ndarray  # (N,) float32
    field: np.ndarray  # (N,) int64
    fields: list[dict[str, Any]] = field(default_factory=list)  # one record per field

    def __len__(self) -> int:
        return int(self.z_um.size)

    def subset(self, mask: np.ndarray) -> DefocusExamples:
        """The examples selected by ``mask``, with the records of their fields.

        Parameters
        ----------
        mask : (N,) bool array
            Which examples to keep.

        Returns
        -------
        examples : DefocusExamples
            The selected examples.
        """
        keep = set(np.unique(self.field[mask]).tolist())
        return DefocusExamples(
            self.features[mask],
            self.z_um[mask],
            self.field[mask],
            [f for f in self.fields if f["field"] in keep],
        )

    @staticmethod
    def concatenate(parts: Sequence[DefocusExamples]) -> DefocusExamples:
        """Join example sets (their field ids are kept as they are).

        Parameters
        ----------
        parts : sequence of DefocusExamples
            At least one set.

        Returns
        -------
        examples : DefocusExamples
            All examples and field records, in order.

        Raises
        ------
        ConfigError
            ``parts`` is empty.
        """
        if not parts:
            raise ConfigError("no examples to concatenate")
        return DefocusExamples(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.z_um for p in parts]),
            np.concatenate([p.field for p in parts]),
            [f for p in parts for f in p.fields],
        )

    def save(self, path: str | Path) -> None:
        """Arrays in an ``.npz`` (no pickles) plus the field records as JSON inside it.

        Parameters
        ----------
        path : str or Path
            The ``.npz`` file to write (numpy adds the suffix if it is missing).
        """
        np.savez(
            path,
            features=self.features,
            z_um=self.z_um,
            field=self.field,
            fields=np.array(json.dumps(self.fields)),
        )

    @classmethod
    def load(cls, path: str | Path) -> DefocusExamples:
        """Read examples written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
            The ``.npz`` file.

        Returns
        -------
        examples : DefocusExamples
            The saved arrays and field records.
        """
        with np.load(path, allow_pickle=False) as d:
            return cls(d["features"], d["z_um"], d["field"], json.loads(str(d["fields"])))

    def summary(self) -> dict[str, Any]:
        """A JSON-able description of the examples (recorded in a model's metadata).

        Returns
        -------
        summary : dict
            ``examples``, ``fields`` and ``z_range_um`` (µm, None when empty); with fields
            whose true and incoherent focus are both known, ``incoherent_focus_bias_um``:
            the median and largest |incoherent − true focus| (µm) over them.
        """
        gt = [
            f
            for f in self.fields
            if f.get("true_focus_um") is not None and f.get("incoherent_focus_um") is not None
        ]
        out: dict[str, Any] = {
            "examples": len(self),
            "fields": len(np.unique(self.field)),
            "z_range_um": [float(self.z_um.min()), float(self.z_um.max())] if len(self) else None,
        }
        if gt:
            err = np.array([f["incoherent_focus_um"] - f["true_focus_um"] for f in gt])
            out["incoherent_focus_bias_um"] = {
                "fields": len(gt),
                "median": float(np.median(err)),
                "max_abs": float(np.max(np.abs(err))),
            }
        return out


def split_by_field(
    examples: DefocusExamples, validation_fraction: float = 0.15, seed: int = 0
) -> tuple[DefocusExamples, DefocusExamples]:
    """Train/validation split by field of view, never by plane.

    There is no leakage between them (:func:`focuskit.nn.split_fields`).

    Parameters
    ----------
    examples : DefocusExamples
        Examples of at least two fields of view.
    validation_fraction : float, optional
        Fraction of fields held out, in (0, 1). Default 0.15.
    seed : int, optional
        Seed of the draw. Default 0.

    Returns
    -------
    train : DefocusExamples
        The examples of the other fields.
    validation : DefocusExamples
        The examples of the held-out fields.

    Raises
    ------
    ConfigError
        A fraction outside (0, 1), or fewer than two fields.
    """
    is_val = split_fields(examples.field, validation_fraction, seed=seed)
    return examples.subset(~is_val), examples.subset(is_val)


def examples_from_stacks(
    coherent: FocalStack,
    region: FourierRegion,
    *,
    incoherent: FocalStack | None = None,
    field_id: int = 0,
    focus_measure: str = "spectral-highband",
) -> DefocusExamples:
    """Examples from one field: every tile of every coherent plane, labelled z − focus.

    Focus comes from the incoherent companion stack (its ``focus_measure`` maximum,
    sub-step refined), else from ``coherent.focus_z_um`` when known [1]_.

    Parameters
    ----------
    coherent : FocalStack
        The field under the model's LED (the network's input).
    region : FourierRegion
        Which tile size and frequency cells are features.
    incoherent : FocalStack, optional
        The DPC / brightfield companion stack over the same z, whose sharpest plane is the
        ground-truth focus.
    field_id : int, optional
        The field id of every example. Default 0.
    focus_measure : str, optional
        The measure maximized on ``incoherent``. Default ``"spectral-highband"``.

    Returns
    -------
    examples : DefocusExamples
        One example per tile and plane, labelled ``z_plane − focus`` (µm), with one field
        record (``focus_um``, ``true_focus_um``).

    Raises
    ------
    ConfigError
        No ground-truth focus, or an image the features cannot use.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 1a and Note S3.
    """
    if incoherent is not None:
        focus = find_focus(incoherent, focus_measure).z_focus_um
    elif coherent.focus_z_um is not None:
        focus = float(coherent.focus_z_um)
    else:
        raise ConfigError(
            "no ground-truth focus: give the incoherent (DPC/brightfield) companion stack, "
            "or a coherent stack with a known focus"
        )
    feats, labels = [], []
    data = np.asarray(coherent.data)
    for z, plane in zip(coherent.z_um, data, strict=True):
        tiles = split_tiles(plane, region.tile)
        feats.append(fourier_features(tiles, region))
        labels.append(np.full(len(tiles), z - focus, dtype=np.float32))
    features = np.concatenate(feats)
    return DefocusExamples(
        features,
        np.concatenate(labels),
        np.full(len(features), field_id, dtype=np.int64),
        [
            {
                "field": field_id,
                "focus_um": float(focus),
                "true_focus_um": None
                if coherent.focus_z_um is None
                else float(coherent.focus_z_um),
            }
        ],
    )


def region_for(
    optics: Optics, tile: int, *, bin: int = 4, transform: str = "mean", cells: str = "discs"
) -> FourierRegion:
    """The feature region of a single-LED microscope.

    The two pupil discs at ±s/λ of its LED [1]_.

    Parameters
    ----------
    optics : Optics
        A microscope under one coherent LED.
    tile : int
        Tile side (pixels).
    bin : int, optional
        Frequency cells of ``bin × bin`` FFT samples. Default 4.
    transform : {"mean", "log"}, optional
        How the magnitudes are normalized (:class:`FourierRegion`). Default "mean".
    cells : {"discs", "overlap"}, optional
        Which cells are features (:class:`FourierRegion`). Default "discs".

    Returns
    -------
    region : FourierRegion
        The region of ``optics``' pixel size (µm), NA, wavelength (µm) and LED.

    Raises
    ------
    ConfigError
        The illumination is not one LED.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3 and Fig. S2.
    """
    ill = optics.illumination
    if not isinstance(ill, LED):
        raise ConfigError(
            f"single-shot features need one coherent LED (got {ill.kind}); "
            "Pinkard et al. use one LED"
        )
    return FourierRegion(
        tile=tile,
        pixel_size_um=optics.pixel_size_um,
        na=optics.na,
        wavelength_um=optics.wavelength_um,
        sx=ill.sx,
        sy=ill.sy,
        bin=bin,
        transform=transform,
        cells=cells,
    )


@dataclass(frozen=True)
class Randomization:
    """What else varies between simulated fields, so that a model learns defocus rather than
    one sample generator (beyond Note S3 [1]_; issue 18).

    Per field: the sample's phase is rescaled to a peak ``φ_peak`` (log-uniform in
    ``phase_rad``; peak = 99.5th percentile of ``|φ − median φ|``), absorption co-located
    with the phase is added, ``A → A·exp(−a·|φ|/φ_peak)`` (``a`` uniform in
    ``absorption``), and the microscope the field is rendered with is jittered: LED angle
    ± ``led_jitter_deg``, NA and λ by a relative ± ``na_jitter`` / ``wavelength_jitter``.
    Features are always taken on the nominal microscope's Fourier region — a real one is
    never exactly its nominal self. Camera offset and gain need no randomizing: the
    features subtract each tile's mean and are divided by their own mean.

    Attributes
    ----------
    phase_rad : (float, float)
        Range of the peak phase (rad), log-uniform. Default (0.2, 6).
    absorption : (float, float)
        Range of the co-located absorption ``a`` (uniform). Default (0, 0.1).
    led_jitter_deg : float
        Largest LED angle error (degrees, uniform). Default 1.
    na_jitter, wavelength_jitter : float
        Largest relative error of NA and λ (uniform). Default 0.02.

    Raises
    ------
    ConfigError
        A range that is not increasing, a negative phase or absorption, or a negative
        jitter.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """

    phase_rad: tuple[float, float] = (0.2, 6.0)
    absorption: tuple[float, float] = (0.0, 0.1)
    led_jitter_deg: float = 1.0
    na_jitter: float = 0.02
    wavelength_jitter: float = 0.02

    def __post_init__(self) -> None:
        lo, hi = self.phase_rad
        if not 0 < lo <= hi:
            raise ConfigError(f"phase_rad must be 0 < low ≤ high (rad), got {self.phase_rad}")
        lo, hi = self.absorption
        if not 0 <= lo <= hi:
            raise ConfigError(f"absorption must be 0 ≤ low ≤ high, got {self.absorption}")
        if min(self.led_jitter_deg, self.na_jitter, self.wavelength_jitter) < 0:
            raise ConfigError("led_jitter_deg, na_jitter and wavelength_jitter must be ≥ 0")

    def to_dict(self) -> dict[str, Any]:
        """The ranges as a JSON-able dict (recorded with a model's data).

        Returns
        -------
        data : dict
            One entry per attribute.
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class FieldSpec:
    """One simulated field of view: what varies between fields (Note S3) [1]_.

    Attributes
    ----------
    field : int
        The field id.
    seed : int
        Seed of the sample (and, offset, of its noise).
    sample : str
        The sample generator (``"cells"``, ``"tissue"`` …).
    density : float
        Cell density (used by ``"cells"``).
    photons : float
        Exposure: mean photons per pixel (hence the noise).
    focus_um : float
        Focus offset of the field (µm): plane ``z`` has defocus ``z − focus_um``.
    phase_rad, absorption : float or None
        With a :class:`Randomization`: the peak phase (rad) and co-located absorption.
    led_deg, na_scale, wavelength_scale : float
        With a :class:`Randomization`: LED angle error (degrees), NA and λ factors.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """

    field: int
    seed: int
    sample: str
    density: float
    photons: float
    focus_um: float
    phase_rad: float | None = None
    absorption: float | None = None
    led_deg: float = 0.0
    na_scale: float = 1.0
    wavelength_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The field as a JSON-able dict.

        Returns
        -------
        data : dict
            One entry per attribute.
        """
        return {
            "field": self.field,
            "seed": self.seed,
            "sample": self.sample,
            "density": self.density,
            "photons": self.photons,
            "focus_um": self.focus_um,
            **(
                {
                    "phase_rad": self.phase_rad,
                    "absorption": self.absorption,
                    "led_deg": self.led_deg,
                    "na_scale": self.na_scale,
                    "wavelength_scale": self.wavelength_scale,
                }
                if self.phase_rad is not None
                else {}
            ),
        }


def draw_fields(
    n: int,
    rng: np.random.Generator,
    *,
    sample: str | Sequence[str] = "cells",
    first_field: int = 0,
    density_range: tuple[float, float] = (0.1, 0.6),
    photons_range: tuple[float, float] = (200.0, 3000.0),
    focus_range_um: tuple[float, float] = (-5.0, 5.0),
    randomization: Randomization | None = None,
) -> list[FieldSpec]:
    """Draw ``n`` random fields of view, varied as Note S3 recommends [1]_.

    Per field a sample seed, a density (uniform), an exposure (log-uniform photons per
    pixel) and a focus offset (uniform), drawn in that order; then, with a
    ``randomization``, its phase, absorption, LED angle, NA and λ.

    Parameters
    ----------
    n : int
        Number of fields.
    rng : numpy.random.Generator
        The generator drawn from.
    sample : str or sequence of str, optional
        The sample generator or family of every field (default ``"cells"``); with several,
        each field draws one at random (families draw their own parameters from the
        field's seed).
    first_field : int, optional
        Field id of the first field (the others follow). Default 0.
    density_range : (float, float), optional
        Range of the uniform cell density. Default (0.1, 0.6).
    photons_range : (float, float), optional
        Range of the log-uniform photons per pixel. Default (200, 3000).
    focus_range_um : (float, float), optional
        Range of the uniform focus offset (µm). Default (−5, 5).
    randomization : Randomization, optional
        What else to vary (default nothing: the fields of earlier versions, unchanged).

    Returns
    -------
    specs : list of FieldSpec
        The ``n`` fields.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """
    names = [sample] if isinstance(sample, str) else list(sample)
    specs = []
    for i in range(n):
        seed = int(rng.integers(0, 2**31 - 1))
        density = float(rng.uniform(*density_range))
        photons = float(np.exp(rng.uniform(np.log(photons_range[0]), np.log(photons_range[1]))))
        focus = float(rng.uniform(*focus_range_um))
        # One name keeps the stream of the single-sample fields (and their seeds) unchanged.
        name = names[0] if len(names) == 1 else str(names[int(rng.integers(len(names)))])
        extra: dict[str, float] = {}
        if randomization is not None:
            r = randomization
            extra = {
                "phase_rad": float(np.exp(rng.uniform(*np.log(r.phase_rad)))),
                "absorption": float(rng.uniform(*r.absorption)),
                "led_deg": float(rng.uniform(-r.led_jitter_deg, r.led_jitter_deg)),
                "na_scale": float(1 + rng.uniform(-r.na_jitter, r.na_jitter)),
                "wavelength_scale": float(
                    1 + rng.uniform(-r.wavelength_jitter, r.wavelength_jitter)
                ),
            }
        specs.append(FieldSpec(first_field + i, seed, name, density, photons, focus, **extra))
    return specs


def restrength(values: np.ndarray, phase_rad: float, absorption: float) -> np.ndarray:
    """A transmittance with its phase rescaled and co-located absorption added.

    ``φ' = (φ − median φ)·φ_peak / P99.5(|φ − median φ|)`` and
    ``A' = A·exp(−a·|φ'|/φ_peak)`` (:class:`Randomization`). The sample's own phase must
    lie within (−π, π] (it is read with ``angle``), as the transmitted-light families' do.

    Parameters
    ----------
    values : (Y, X) complex array
        The transmittance ``t = A·exp(iφ)``.
    phase_rad : float
        The new peak phase φ_peak (rad, > 0).
    absorption : float
        The co-located absorption ``a`` (≥ 0).

    Returns
    -------
    values : (Y, X) complex64 array
        The new transmittance (``|t'| ≤ 1``); unchanged if it had no phase contrast.
    """
    phi = np.angle(values)
    phi = phi - np.median(phi)
    peak = float(np.percentile(np.abs(phi), 99.5))
    if peak <= 0:
        return values.astype(np.complex64)
    phi = phi * (phase_rad / peak)
    amp = np.abs(values) * np.exp(-absorption * np.abs(phi) / phase_rad)
    return (amp * np.exp(1j * phi)).astype(np.complex64)


def _jittered(optics: Optics, spec: FieldSpec) -> Optics:
    """The microscope a randomized field is rendered with (LED angle, NA and λ jittered)."""
    if spec.phase_rad is None:
        return optics
    ill = optics.illumination
    if isinstance(ill, LED) and spec.led_deg:
        theta = math.degrees(math.asin(math.hypot(ill.sx, ill.sy)))
        azimuth = math.degrees(math.atan2(ill.sy, ill.sx))
        ill = LED.at_angle(theta + spec.led_deg, azimuth)
    objective = replace(optics.objective, na=optics.objective.na * spec.na_scale)
    return replace(
        optics,
        objective=objective,
        wavelength_um=optics.wavelength_um * spec.wavelength_scale,
        illumination=ill,
    )


def _simulate_field(
    args: tuple[FieldSpec, str, int, int, float, tuple[float, ...], Any, int, str, bool, str, str],
) -> DefocusExamples:
    (
        spec,
        preset_name,
        size,
        gt_size,
        gt_source_step,
        z,
        illumination,
        tile,
        labels,
        with_incoherent,
        transform,
        cells,
    ) = args
    preset = get_preset(preset_name)
    optics = (
        preset.optics if illumination is None else preset.optics.with_illumination(illumination)
    )
    gt_ill = preset.ground_truth_illumination or DPC(0.35, 0.48)
    gt_optics = optics.with_illumination(
        DPC(
            gt_ill.na_inner,
            gt_ill.na_outer,
            gt_ill.side,  # type: ignore[union-attr]
            source_step_na=gt_source_step,
        )
    )
    z_arr = np.asarray(z)
    seen = _jittered(optics, spec)  # the microscope as it really is; features: the nominal
    plans = [
        plan_render(o, z_arr, (s, s), focus_z_um=spec.focus_um)
        for o, s in ((seen, size), (gt_optics, gt_size))
    ]
    shape = tuple(max(p.render_shape[i] for p in plans) for i in range(2))
    options: dict[str, Any] = {"density": spec.density} if spec.sample == "cells" else {}
    sample = make_sample(
        spec.sample,
        shape,
        optics.pixel_size_um,
        seed=spec.seed,
        wavelength_um=optics.wavelength_um,
        **options,
    )
    values = sample.values
    if spec.phase_rad is not None:
        values = restrength(values, spec.phase_rad, spec.absorption or 0.0)
    coherent = render_stack(
        values,
        seen,
        z_arr,
        shape=(size, size),
        focus_z_um=spec.focus_um,
        photons=spec.photons,
        seed=spec.seed + 1,
    )
    coherent_stack = FocalStack(
        coherent.data, coherent.z_um, coherent.pixel_size_um, optics, coherent.focus_z_um
    )
    incoherent_stack = None
    if with_incoherent or labels == "incoherent":
        inc = render_stack(
            values,
            gt_optics,
            z_arr,
            shape=(gt_size, gt_size),
            focus_z_um=spec.focus_um,
            photons=spec.photons,
            seed=spec.seed + 2,
        )
        incoherent_stack = FocalStack(
            inc.data, inc.z_um, inc.pixel_size_um, inc.optics, inc.focus_z_um
        )
    region = region_for(optics, tile, transform=transform, cells=cells)
    ex = examples_from_stacks(
        coherent_stack,
        region,
        field_id=spec.field,
        incoherent=incoherent_stack if labels == "incoherent" else None,
    )
    record = ex.fields[0]
    if incoherent_stack is not None:
        record["incoherent_focus_um"] = find_focus(incoherent_stack, "spectral-highband").z_focus_um
    record.update(
        {
            "density": spec.density,
            "photons": spec.photons,
            "sample": spec.sample,
            "seed": spec.seed,
            "labels": labels,
        }
    )
    if spec.phase_rad is not None:
        record.update({k: v for k, v in spec.to_dict().items() if k not in record})
    return ex


def simulate_examples(
    n_fields: int,
    *,
    preset: str | Preset = "fcfnn-20x-led",
    size: int = 1024,
    tile: int = 1024,
    z_um: Sequence[float] | None = None,
    sample: str | Sequence[str] = "cells",
    density_range: tuple[float, float] = (0.1, 0.6),
    photons_range: tuple[float, float] = (200.0, 3000.0),
    focus_range_um: tuple[float, float] = (-5.0, 5.0),
    illumination: LED | None = None,
    randomization: Randomization | None = None,
    transform: str = "mean",
    cells: str = "discs",
    labels: str = "truth",
    incoherent_every: int = 10,
    gt_size: int = 256,
    gt_source_step: float = 0.08,
    seed: int = 0,
    first_field: int = 0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> DefocusExamples:
    """Simulate ``n_fields`` random fields and turn them into examples.

    Fields vary in cell density, exposure (photons, hence noise) and focus offset, as
    Note S3 recommends [1]_. ``labels="truth"`` labels planes with the simulator's sample
    plane, the ``z`` of OPTICS.md; ``labels="incoherent"`` with the spectral maximum of a
    DPC companion stack, as Pinkard et al. do on real data. That proxy is biased for
    weakly absorbing phase cells (their absorption × defocus-phase cross term shifts the
    high-frequency power peak by about +1 µm at 20×/0.5), so the companion is rendered
    for every ``incoherent_every``-th field to measure the bias, on the central
    ``gt_size``² of the same field (enough for a focus curve, far cheaper than 1024²).

    Parameters
    ----------
    n_fields : int
        Number of fields of view.
    preset : str or Preset, optional
        The microscope. Default ``"fcfnn-20x-led"``.
    size : int, optional
        Image side (pixels). Default 1024.
    tile : int, optional
        Tile side of the features (pixels). Default 1024.
    z_um : sequence of float, optional
        Plane positions (µm). Default: the preset's z range and step.
    sample : str or sequence of str, optional
        The sample generator or transmitted-light families (``focuskit samples``); with
        several, each field draws one. Default ``"cells"``.
    density_range, photons_range, focus_range_um : (float, float), optional
        Ranges of cell density, photons per pixel and focus offset (µm), as
        :func:`draw_fields` draws them.
    illumination : LED, optional
        Another LED than the preset's.
    randomization : Randomization, optional
        Also vary phase strength, absorption, LED angle, NA and λ per field (default:
        no; the fields of earlier versions).
    transform : {"mean", "log"}, optional
        The features' normalization (:class:`FourierRegion`). Default "mean".
    cells : {"discs", "overlap"}, optional
        Which Fourier cells are features (:class:`FourierRegion`). Default "discs".
    labels : {"truth", "incoherent"}, optional
        Where the labels' focus comes from. Default ``"truth"``.
    incoherent_every : int, optional
        Render the incoherent companion for every this-many-th field (0: never, unless
        ``labels="incoherent"``). Default 10.
    gt_size : int, optional
        Side of the companion stack (pixels). Default 256.
    gt_source_step : float, optional
        Source sampling of the DPC companion (illumination NA). Default 0.08.
    seed : int, optional
        Seed of the fields. Default 0.
    first_field : int, optional
        Field id of the first field. Default 0.
    workers : int, optional
        Processes rendering fields. Default 1.
    progress : callable, optional
        ``progress(done, total)`` after every field.

    Returns
    -------
    examples : DefocusExamples
        Every tile of every plane of every field, labelled ``z − focus`` (µm); the field
        records add ``density``, ``photons``, ``sample``, ``seed``, ``labels`` and, where
        the companion was rendered, ``incoherent_focus_um``.

    Raises
    ------
    ConfigError
        ``labels`` is neither ``"truth"`` nor ``"incoherent"``.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3.
    """
    if labels not in ("truth", "incoherent"):
        raise ConfigError(f"labels must be 'truth' or 'incoherent', got {labels!r}")
    p = get_preset(preset) if isinstance(preset, str) else preset
    sample = check_sample_names(
        [sample] if isinstance(sample, str) else sample,
        fluorescence=False,
        generators=("cells", "tissue", "beads"),
    )
    z = tuple(float(v) for v in (p.z_positions() if z_um is None else z_um))
    specs = draw_fields(
        n_fields,
        np.random.default_rng(seed),
        sample=sample,
        first_field=first_field,
        density_range=density_range,
        photons_range=photons_range,
        focus_range_um=focus_range_um,
        randomization=randomization,
    )
    jobs = [
        (
            s,
            p.name,
            size,
            gt_size,
            gt_source_step,
            z,
            illumination,
            tile,
            labels,
            incoherent_every > 0 and i % incoherent_every == 0,
            transform,
            cells,
        )
        for i, s in enumerate(specs)
    ]
    parts: list[DefocusExamples] = []
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for part in pool.imap(_simulate_field, jobs):
                parts.append(part)
                if progress is not None:
                    progress(len(parts), n_fields)
    else:
        for job in jobs:
            parts.append(_simulate_field(job))
            if progress is not None:
                progress(len(parts), n_fields)
    return DefocusExamples.concatenate(parts)


# ------------------------------------------------------------------------ your stacks


def _stem(path: Path) -> tuple[str, str]:
    """(stem, suffix) with a multi-part suffix (.ome.tif, .ome.zarr) kept whole."""
    name = path.name
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[len(name) - len(suffix) :]
    return path.stem, path.suffix


def stack_pairs(folder: str | Path) -> list[tuple[Path, Path | None]]:
    """The coherent focal stacks in ``folder``, each with its incoherent companion or None.

    The companion is ``<stem>.incoherent.<ext>``: the DPC / brightfield stack whose
    sharpest plane is the ground truth.

    Parameters
    ----------
    folder : str or Path
        A folder of focal stacks (hidden files are skipped).

    Returns
    -------
    pairs : list of (Path, Path or None)
        Each coherent stack with its companion (None when it has none), sorted by name.

    Raises
    ------
    ConfigError
        Not a folder, no stacks in it, or a companion without its coherent stack.
    """
    data = Path(folder)
    if not data.is_dir():
        raise ConfigError(f"{data}: --data must be a folder of focal stacks")
    stacks = sorted(
        p
        for p in data.iterdir()
        if not p.name.startswith(".") and p.name.lower().endswith(SUPPORTED_SUFFIXES)
    )
    by_stem = {_stem(p)[0]: p for p in stacks}
    pairs: list[tuple[Path, Path | None]] = []
    for p in stacks:
        stem, _ = _stem(p)
        if stem.endswith(".incoherent"):
            if stem[: -len(".incoherent")] not in by_stem:
                raise ConfigError(
                    f"{p}: incoherent stack without its coherent stack "
                    f"{stem[: -len('.incoherent')]}.<ext> in {data}"
                )
            continue
        pairs.append((p, by_stem.get(stem + ".incoherent")))
    if not pairs:
        raise ConfigError(f"{data}: no focal stacks ({', '.join(SUPPORTED_SUFFIXES)}) found")
    return pairs


def examples_from_folder(
    folder: str | Path,
    *,
    tile: int = 1024,
    optics: Optics | None = None,
    region: FourierRegion | None = None,
    check: Callable[[float, Optics], None] | None = None,
    pixel_size_um: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    transform: str = "mean",
    cells: str = "discs",
) -> tuple[DefocusExamples, FourierRegion, Optics, list[str]]:
    """Examples from every field of view in ``folder`` (:func:`stack_pairs`), one field id each.

    Parameters
    ----------
    folder : str or Path
        Coherent LED focal stacks with their ground truth: a ``<stem>.incoherent.<ext>``
        companion, or ``focus_z_um`` in their metadata.
    tile : int, optional
        Tile size of a new model's features (pixels). Default 1024.
    optics : Optics, optional
    region : FourierRegion, optional
        A model's optics and features (fine-tuning): every stack is checked against them
        with ``check(pixel_size_um, optics)``; else the first stack's optics define them and
        every other stack must have the same. ``optics`` also stands in for stacks saved
        without optics metadata when their pixel size matches.
    check : callable, optional
        ``check(pixel_size_um, optics)``: raises ConfigError for a stack that does not fit.
    pixel_size_um : float, optional
        For stacks whose files lack it (µm).
    progress : callable, optional
        ``progress(done, total)`` after every stack.
    transform : {"mean", "log"}, optional
        The features' normalization when ``region`` is not given. Default "mean".
    cells : {"discs", "overlap"}, optional
        The feature cells when ``region`` is not given. Default "discs".

    Returns
    -------
    examples : DefocusExamples
        One field id per stack; each field record names its ``file``.
    region : FourierRegion
        The features (``region``, or the first stack's).
    optics : Optics
        The microscope.
    notes : list of str
        What was assumed (e.g. optics of stacks saved without them).

    Raises
    ------
    ConfigError
        A stack without optics or ground truth, of another microscope, or fewer than two.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 1a and Note S3.
    """
    pairs = stack_pairs(folder)
    parts, notes = [], []
    for field_id, (path, companion) in enumerate(pairs):
        stack = read_stack(path, pixel_size_um=pixel_size_um)
        stack_optics = stack.optics
        if stack_optics is None:
            if optics is None:
                raise ConfigError(
                    f"{path}: no optics metadata — save the stack with its optics (focuskit "
                    "simulate / write_stack) or give the microscope's preset"
                )
            if not math.isclose(
                optics.pixel_size_um, stack.pixel_size_um, rel_tol=OPTICS_TOLERANCE
            ):
                raise ConfigError(
                    f"{path}: no optics metadata and its pixel size {stack.pixel_size_um:g} µm is "
                    f"not the expected {optics.pixel_size_um:g} µm — save the stack with its "
                    "optics (focuskit simulate / write_stack)"
                )
            stack_optics = optics
            notes.append(f"{path.name}: no optics metadata; assumed {describe_optics(optics)}")
        if check is not None:
            try:
                check(stack.pixel_size_um, stack_optics)
            except ConfigError as exc:
                raise ConfigError(f"{path}: cannot fine-tune on it: {exc}") from None
        if region is None:
            optics = stack_optics
            try:
                region = region_for(optics, tile, transform=transform, cells=cells)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        elif check is None and optics is not None and stack_optics.to_dict() != optics.to_dict():
            raise ConfigError(
                f"{path}: its optics differ from {pairs[0][0].name}'s — train one "
                "model per microscope"
            )
        incoherent = (
            read_stack(companion, pixel_size_um=pixel_size_um) if companion is not None else None
        )
        if incoherent is None and stack.focus_z_um is None:
            stem, suffix = _stem(path)
            raise ConfigError(
                f"{path}: no ground-truth focus — put its incoherent (DPC/brightfield) stack "
                f"beside it as {stem}.incoherent{suffix}, or store focus_z_um in its metadata"
            )
        try:
            parts.append(
                examples_from_stacks(stack, region, incoherent=incoherent, field_id=field_id)
            )
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        parts[-1].fields[0]["file"] = path.name
        if progress is not None:
            progress(field_id + 1, len(pairs))
    if len(parts) < 2:
        raise ConfigError(
            f"{folder}: found {len(parts)} field of view; training needs at least two "
            "(one is held out for validation)"
        )
    assert region is not None and optics is not None
    return DefocusExamples.concatenate(parts), region, optics, notes


def describe_optics(optics: Optics) -> str:
    """Describe a microscope in one line: ``20×/0.5, λ 0.53 µm, led at (0.407, 0)``.

    Parameters
    ----------
    optics : Optics
        The microscope.

    Returns
    -------
    text : str
        Magnification/NA, wavelength (µm) and illumination.
    """
    return (
        f"{optics.objective.magnification:g}×/{optics.na:g}, λ {optics.wavelength_um:g} µm, "
        f"{describe_illumination(optics.illumination)}"
    )


__all__ = [
    "DefocusExamples",
    "FieldSpec",
    "describe_optics",
    "draw_fields",
    "examples_from_folder",
    "examples_from_stacks",
    "region_for",
    "simulate_examples",
    "split_by_field",
    "stack_pairs",
]
