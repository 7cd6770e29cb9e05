"""Pinkard et al.'s analyses of the FCFNN, reproduced (scaled down) on simulated data.

- :func:`analyze_training_size` — Fig. 2: validation RMSE vs number of training fields.
- :func:`analyze_generalization` — Fig. 3: trained on cells, tested on another sample
  type, then fine-tuned with a few fields of it (Fig. 3d).
- :func:`analyze_magnitude_vs_phase` — Fig. 4a: |FFT| vs FFT-phase features.
- :func:`analyze_saliency` — Fig. 4b: mean |∂z/∂feature| drawn on the Fourier plane.
- :func:`analyze_led_angle` — Fig. S1: single-LED angle sweep and multi-LED patterns
  synthesized by adding single-LED images (Abbe, OPTICS.md "Illumination").

Every field of view is rendered here (not through ``simulate_examples``) so one noisy
stack can give several feature sets (magnitude and phase; several LEDs of one sample).
Fields vary as the bundled model's data do (cell density 0.1–0.6, 200–3000 photons per
pixel, focus ±5 µm). The defaults are small — 512² images (one 512² tile each; the
paper uses 2048² images of four 1024² tiles), z every 2 µm from −30 to +30 µm, tens of
fields, 4 layers × 100 units, each network trained 3× with different seeds — so each
analysis runs in a few minutes on 2 CPU cores. Each result dict says so in ``note``;
its numbers show trends, not the paper's values.

Why 512², not 256²: an 83 µm field holds a handful of cells, and with 64 training
fields its held-out RMSE stayed at 6–10 µm (no finer or coarser frequency cells helped),
so trends drowned in noise; 512² tiles reach 1.3–2 µm with 48–64 fields. The frequency
cells scale with the tile (``bin = tile/64``: cells ≈ 0.048 cycles/µm wide, ~1100
features): at 512² cells of 4² samples gave 5.6 µm against 1.3 µm for 8², and at 1024²
(24 fields) cells of 4² (17,649 features) gave 6.1 µm against 1.1 µm for 16².

Each ``analyze_*`` returns a JSON-able dict with ``analysis``, ``figure``, ``note``,
``config``, ``columns`` and ``rows`` (the table), plus analysis-specific entries;
:func:`focuskit.report.save_analysis` writes ``<name>.json`` and ``<name>.png`` (drawn by
``PLOTS[name]``), :func:`focuskit.report.analysis_table` formats the table as markdown.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import LED, Optics, get_preset, image_stack, z_range
from focuskit.report import finish_figure, pyplot
from focuskit.simulate import blur_margin_um, expose, make_sample, padded_shape
from focuskit.singleshot._data import DefocusExamples, FieldSpec, draw_fields
from focuskit.singleshot._features import FourierRegion, fourier_features, split_tiles
from focuskit.singleshot._train import TrainConfig, fit_fcfnn

Progress = Callable[[str], None]

PRESET = "fcfnn-20x-led"
SCALED_NOTE = (
    "scaled-down reproduction on simulated data: {size}² images ({tiles} tile(s) of {tile}², "
    "frequency cells of {bin}²), z every {z_step:g} µm over ±{z_half:g} µm, {depth} layers × "
    "{width} units, ≤ {steps} steps; the paper uses 2048² images (four 1024² tiles), 1 µm steps, "
    "10 layers × 100 units and 440 stacks — compare trends, not values"
)
DEFAULT_ANGLES = (0.1, 0.2, 0.3, 0.4, 0.55, 0.65)
DEFAULT_PATTERNS: dict[str, tuple[tuple[float, float], ...]] = {
    "line x 0.2-0.4": ((0.2, 0.0), (0.3, 0.0), (0.4, 0.0)),
    "line y at x 0.3": ((0.3, -0.1), (0.3, 0.0), (0.3, 0.1)),
    "pair ±x 0.4": ((-0.4, 0.0), (0.4, 0.0)),
}


def _quiet(message: str) -> None:
    pass


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class LEDRegion(FourierRegion):
    """A feature region for one or several LEDs (or the whole half-plane).

    For each LED inside the objective NA (brightfield) the cells of the two pupil discs
    at ±s/λ (Fig. S2); for a darkfield LED (|s| > NA) there is no unscattered light to
    interfere with, so the spectrum is the scattered light's autocorrelation: the disc
    of radius 2·NA/λ around the origin. Several LEDs: the union. ``full_plane``: every
    cell of the binned half-plane (the paper's saliency network, Fig. 4b).
    ``sx``/``sy`` (the base class's) are ignored when ``leds`` is given.

    Attributes
    ----------
    leds : tuple of (float, float)
        The LEDs' illumination NA ``(sx, sy)``; empty: the single LED ``(sx, sy)``.
    full_plane : bool
        Every cell of the binned half-plane is a feature.
    tile, pixel_size_um, na, wavelength_um, sx, sy, bin, margin
        As in :class:`~focuskit.singleshot.FourierRegion` (lengths in µm).

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. S2, Fig. S1 and Fig. 4b.
    """

    leds: tuple[tuple[float, float], ...] = ()
    full_plane: bool = False

    def led_list(self) -> tuple[tuple[float, float], ...]:
        """The LEDs: ``leds``, or the single ``(sx, sy)`` when it is empty.

        Returns
        -------
        leds : tuple of (float, float)
            Illumination NA ``(sx, sy)`` of each LED.
        """
        return self.leds or ((self.sx, self.sy),)

    def mask(self) -> np.ndarray:
        """Boolean (binned) mask of the feature cells: the union over the LEDs.

        Returns
        -------
        mask : bool array of shape ``binned_shape``
            The two discs of radius margin·NA/λ at ±s/λ of each brightfield LED, the disc
            of radius 2·margin·NA/λ around the origin for a darkfield one, or every cell
            (``full_plane``).
        """
        if self.full_plane:
            return np.ones(self.binned_shape, dtype=bool)
        fy, fx = self.frequencies()
        r = self.margin * self.na / self.wavelength_um
        out = np.zeros(self.binned_shape, dtype=bool)
        for sx, sy in self.led_list():
            if math.hypot(sx, sy) <= self.na:
                cx, cy = sx / self.wavelength_um, sy / self.wavelength_um
                out |= ((fx - cx) ** 2 + (fy - cy) ** 2 <= r**2) | (
                    (fx + cx) ** 2 + (fy + cy) ** 2 <= r**2
                )
            else:
                out |= fx**2 + fy**2 <= (2 * r) ** 2
        return out


def led_region(
    optics: Optics,
    tile: int,
    leds: Sequence[tuple[float, float]] | None = None,
    *,
    full_plane: bool = False,
    bin: int = 4,
) -> LEDRegion:
    """The feature region of ``optics`` for the given LEDs (default: its own single LED).

    Parameters
    ----------
    optics : Optics
        The microscope (its pixel size in µm, NA and wavelength in µm).
    tile : int
        Tile side (pixels).
    leds : sequence of (float, float), optional
        Illumination NA ``(sx, sy)`` of each LED. Default: the optics' own LED.
    full_plane : bool, optional
        Every cell of the binned half-plane (Fig. 4b). Default False.
    bin : int, optional
        Frequency cells of ``bin × bin`` FFT samples. Default 4.

    Returns
    -------
    region : LEDRegion
        The region.

    Raises
    ------
    ConfigError
        No ``leds`` and the optics' illumination is not one LED.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. S2, Fig. S1 and Fig. 4b.
    """
    if leds is None:
        ill = optics.illumination
        if not isinstance(ill, LED):
            raise ConfigError(f"give the LEDs: the optics' illumination is {ill.kind}, not one LED")
        leds = ((ill.sx, ill.sy),)
    leds = tuple((float(a), float(b)) for a, b in leds)
    return LEDRegion(
        tile=tile,
        pixel_size_um=optics.pixel_size_um,
        na=optics.na,
        wavelength_um=optics.wavelength_um,
        sx=leds[0][0],
        sy=leds[0][1],
        bin=bin,
        leds=leds,
        full_plane=full_plane,
    )


# --------------------------------------------------------------------------- rendering


def field_specs(
    n: int,
    *,
    seed: int,
    role: int = 0,
    sample: str = "cells",
    first_field: int = 0,
    density_range: tuple[float, float] = (0.1, 0.6),
    photons_range: tuple[float, float] = (200.0, 3000.0),
    focus_range_um: tuple[float, float] = (-5.0, 5.0),
) -> list[FieldSpec]:
    """``n`` random fields (:func:`~focuskit.singleshot.draw_fields`).

    The generator is seeded with ``(seed, role)``, which keeps training, validation and
    test fields disjoint.

    Parameters
    ----------
    n : int
        Number of fields.
    seed : int
        The analysis' seed.
    role : int, optional
        0 training, 1 validation, 2 test … (a different stream each). Default 0.
    sample : str, optional
        The sample generator. Default ``"cells"``.
    first_field : int, optional
        Field id of the first field. Default 0.
    density_range, photons_range : (float, float), optional
        Ranges of cell density (uniform) and photons per pixel (log-uniform).
    focus_range_um : (float, float), optional
        Range of the focus offset (µm, uniform). Default (−5, 5).

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
    return draw_fields(
        n,
        np.random.default_rng([int(seed), int(role)]),
        sample=sample,
        first_field=first_field,
        density_range=density_range,
        photons_range=photons_range,
        focus_range_um=focus_range_um,
    )


def _bin_planes(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return a
    z, y, x = a.shape
    return a.reshape(z, y // k, k, x // k, k).mean(axis=(2, 4), dtype=np.float32)


def render_led_images(
    spec: FieldSpec,
    optics: Optics,
    leds: Sequence[tuple[float, float]],
    z_um: Sequence[float] | np.ndarray,
    *,
    size: int,
    oversample: int = 1,
    sample_options: dict[str, Any] | None = None,
) -> np.ndarray:
    """Noise-free images of one field under each LED alone: float32 (n_leds, Z, size, size).

    One sample on one padded grid (wide enough for the most oblique LED at the largest
    defocus) serves every LED, so single-LED images can be summed into any pattern
    (:func:`synthesize_led_pattern`). Plane ``k`` is at defocus ``z_k − focus``.
    ``oversample`` renders on pixels that many times finer and bins (the camera's pixel
    integration), for oblique LEDs whose scattered light reaches beyond the sampling.

    Parameters
    ----------
    spec : FieldSpec
        The field (sample, seed, density, focus offset in µm).
    optics : Optics
        The microscope; its illumination is replaced by each LED in turn.
    leds : sequence of (float, float)
        Illumination NA ``(sx, sy)`` of each LED (at least one).
    z_um : sequence of float or ndarray
        Plane positions (µm).
    size : int
        Image side (camera pixels).
    oversample : int, optional
        Render on pixels this many times finer, then bin (≥ 1). Default 1.
    sample_options : dict, optional
        Extra options of the sample generator.

    Returns
    -------
    images : (n_leds, Z, size, size) float32 array
        Noise-free intensity of each plane under each LED alone.

    Raises
    ------
    ConfigError
        No LED, ``oversample`` below 1, or a fluorescent sample.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S2 and Fig. S1.
    """
    if not leds:
        raise ConfigError("give at least one LED (sx, sy)")
    k = int(oversample)
    if k < 1:
        raise ConfigError(f"oversample must be ≥ 1, got {oversample}")
    values, dx, defocus, crop = field_transmittance(
        spec, optics, leds, z_um, size, k, sample_options
    )
    out = np.empty((len(leds), defocus.size, size, size), dtype=np.float32)
    for i, (sx, sy) in enumerate(leds):
        stack = image_stack(
            values, optics.with_illumination(LED(sx, sy)), defocus, pixel_size_um=dx, crop=crop
        )
        out[i] = _bin_planes(stack, k)
    return out


def field_transmittance(
    spec: FieldSpec,
    optics: Optics,
    leds: Sequence[tuple[float, float]],
    z_um: Sequence[float] | np.ndarray,
    size: int,
    k: int = 1,
    sample_options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, float, np.ndarray, tuple[int, int]]:
    """The sample of one field on the grid :func:`render_led_images` renders it on.

    Gives (transmittance on the padded render grid, render pixel µm, defocus per plane µm,
    crop), the grid wide enough for the most oblique LED at the largest defocus, pixels ``k``×
    finer than the camera's.

    Parameters
    ----------
    spec : FieldSpec
        The field.
    optics : Optics
        The microscope.
    leds : sequence of (float, float)
        Illumination NA ``(sx, sy)`` of each LED (the most oblique sets the padding).
    z_um : sequence of float or ndarray
        Plane positions (µm).
    size : int
        Image side (camera pixels).
    k : int, optional
        Oversampling factor. Default 1.
    sample_options : dict, optional
        Extra options of the sample generator.

    Returns
    -------
    transmittance : 2-D complex array
        The sample on the padded render grid.
    pixel_size_um : float
        The render pixel (µm): the camera pixel / ``k``.
    defocus : (Z,) float64 array
        Defocus of each plane, ``z − focus`` (µm).
    crop : (int, int)
        The rendered region, ``(size · k, size · k)``.

    Raises
    ------
    ConfigError
        The sample is fluorescent (LED illumination needs a transmitted-light sample).
    """
    dx = optics.pixel_size_um / k
    defocus = np.asarray(z_um, dtype=np.float64) - spec.focus_um
    widest = max(leds, key=lambda s: math.hypot(*s))
    margin = blur_margin_um(optics.with_illumination(LED(*widest)), float(np.max(np.abs(defocus))))
    work = padded_shape((size * k, size * k), dx, margin)
    options = dict(sample_options or {})
    if spec.sample == "cells":
        options.setdefault("density", spec.density)
    sample = make_sample(
        spec.sample, work, dx, seed=spec.seed, wavelength_um=optics.wavelength_um, **options
    )
    if sample.kind != "transmittance":
        raise ConfigError(
            f"sample {spec.sample!r} is fluorescent; LED illumination needs a "
            "transmitted-light sample"
        )
    return sample.values, dx, defocus, (size * k, size * k)


def synthesize_led_pattern(
    single_images: np.ndarray, weights: Sequence[float] | None = None
) -> np.ndarray:
    """``Σ w_i · I_i`` over the first axis: the image under all LEDs at once (Abbe).

    LEDs are mutually incoherent, so recorded single-LED images add in intensity
    (Pinkard et al. Note S2) [1]_. A :class:`~focuskit.optics.LEDPattern` normalizes its
    weights to sum 1: its render equals this divided by ``Σ w``.

    Parameters
    ----------
    single_images : (n, ...) array
        The image (or stack) under each LED alone.
    weights : sequence of float, optional
        One weight per LED. Default: all 1.

    Returns
    -------
    image : (...) float32 array
        The weighted sum.

    Raises
    ------
    ConfigError
        Not one weight per image.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S2 and Fig. S1c.
    """
    images = np.asarray(single_images, dtype=np.float32)
    w = np.ones(len(images)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(images),):
        raise ConfigError(f"need one weight per image: {len(images)} images, {w.size} weights")
    return np.tensordot(w.astype(np.float32), images, axes=(0, 0))


@dataclass
class FeatureSet:
    """Feature vectors, labels (defocus, µm) and field ids of some fields.

    Attributes
    ----------
    features : (N, F) array
        One feature vector per example.
    z_um : (N,) array
        Defocus label of each example (µm).
    field : (N,) int array
        The field each example came from.
    """

    features: np.ndarray
    z_um: np.ndarray
    field: np.ndarray

    def __len__(self) -> int:
        return int(self.z_um.size)

    def examples(self):  # type: ignore[no-untyped-def]
        """The set as :class:`~focuskit.singleshot.DefocusExamples` (for :func:`fit_fcfnn`).

        Returns
        -------
        examples : DefocusExamples
            The same arrays, with one ``{"field": id}`` record per field.
        """
        return DefocusExamples(
            self.features, self.z_um, self.field, [{"field": int(f)} for f in np.unique(self.field)]
        )

    @staticmethod
    def concatenate(parts: Sequence[FeatureSet]) -> FeatureSet:
        """Join feature sets.

        Parameters
        ----------
        parts : sequence of FeatureSet
            The sets, in order.

        Returns
        -------
        features : FeatureSet
            All their examples.
        """
        return FeatureSet(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.z_um for p in parts]),
            np.concatenate([p.field for p in parts]),
        )


def stack_features(
    stack: np.ndarray,
    defocus: np.ndarray,
    region: FourierRegion,
    field_id: int,
    *,
    phase: bool = False,
) -> FeatureSet:
    """Every tile of every plane: features, labels ``defocus`` and field id.

    Parameters
    ----------
    stack : (Z, Y, X) array
        The images.
    defocus : (Z,) array
        Defocus of each plane (µm), the label of its tiles.
    region : FourierRegion
        Tile size and feature cells.
    field_id : int
        The field id of every example.
    phase : bool, optional
        FFT phase instead of magnitude (Fig. 4a). Default False.

    Returns
    -------
    features : FeatureSet
        One example per tile and plane.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Note S3 and Fig. 4a.
    """
    feats, labels = [], []
    for d, plane in zip(defocus, stack, strict=True):
        tiles = split_tiles(plane, region.tile)
        feats.append(fourier_features(tiles, region, phase=phase))
        labels.append(np.full(len(tiles), d, dtype=np.float32))
    f = np.concatenate(feats)
    return FeatureSet(f, np.concatenate(labels), np.full(len(f), field_id, dtype=np.int64))


@dataclass(frozen=True)
class Setup:
    """What every analysis shares: microscope, stack geometry, network and training.

    The microscope is always the ``fcfnn-20x-led`` preset.

    Attributes
    ----------
    tile : int
        Tile side (pixels, ≥ 32). Default 512.
    size : int or None
        Image side (pixels, a multiple of ``tile``); default one tile.
    bin : int or None
        Frequency cells of ``bin × bin`` samples; default tile / 64.
    z_step_um : float
        Plane spacing (µm). Default 2.
    z_half_um : float
        Planes from ``−z_half_um`` to ``+z_half_um`` (µm). Default 30.
    width : int
        Units per hidden layer. Default 100.
    depth : int
        Hidden layers. Default 4.
    steps : int
        Training steps per network. Default 2000.
    seed : int
        Seed of fields and training. Default 0.
    repeats : int
        Trainings per network, different seeds, same data. Default 3.

    Raises
    ------
    ConfigError
        A setting outside its range, or sizes that are not multiples of each other.
    """

    tile: int = 512
    size: int | None = None  # image size; default one tile
    bin: int | None = None  # frequency cells of bin × bin samples; default tile / 64
    z_step_um: float = 2.0
    z_half_um: float = 30.0
    width: int = 100
    depth: int = 4
    steps: int = 2000
    seed: int = 0
    repeats: int = 3  # trainings per network, different seeds, same data

    def __post_init__(self) -> None:
        if self.tile < 32:
            raise ConfigError(f"tile must be ≥ 32 pixels, got {self.tile}")
        if self.image_size % self.tile:
            raise ConfigError(
                f"image size {self.image_size} must be a multiple of the tile {self.tile}"
            )
        if not (self.z_step_um > 0 and self.z_half_um > 0):
            raise ConfigError("z step and z range must be > 0 µm")
        if self.steps < 1 or self.width < 1 or self.depth < 1 or self.repeats < 1:
            raise ConfigError("steps, width, depth and repeats must be ≥ 1")
        if self.tile % self.feature_bin:
            raise ConfigError(
                f"tile {self.tile} must be a multiple of the feature bin {self.feature_bin}"
            )

    @property
    def feature_bin(self) -> int:
        """Frequency cells of ``bin × bin`` FFT samples: by default tile/64, so a cell is
        always 1/(64·pixel) ≈ 0.048 cycles/µm wide and the feature count (~1100) does
        not grow with the tile."""
        return max(1, self.tile // 64) if self.bin is None else int(self.bin)

    def region(
        self, leds: Sequence[tuple[float, float]] | None = None, *, full_plane: bool = False
    ) -> LEDRegion:
        """The feature region of this setup for ``leds`` (default: the preset's LED).

        Parameters
        ----------
        leds : sequence of (float, float), optional
            Illumination NA ``(sx, sy)`` of each LED.
        full_plane : bool, optional
            Every cell of the binned half-plane. Default False.

        Returns
        -------
        region : LEDRegion
            At ``tile`` and ``feature_bin``.
        """
        return led_region(self.optics, self.tile, leds, full_plane=full_plane, bin=self.feature_bin)

    @property
    def image_size(self) -> int:
        """Image side (pixels): ``size``, or one tile."""
        return self.tile if self.size is None else int(self.size)

    @property
    def optics(self) -> Optics:
        """The microscope: the ``fcfnn-20x-led`` preset's optics."""
        return get_preset(PRESET).optics

    def z_um(self) -> np.ndarray:
        """The plane positions (µm).

        Returns
        -------
        z_um : (Z,) array
            From ``−z_half_um`` to ``+z_half_um`` every ``z_step_um``.
        """
        return z_range(-self.z_half_um, self.z_half_um, self.z_step_um)

    def train_config(self, seed_offset: int = 0):  # type: ignore[no-untyped-def]
        """The :class:`~focuskit.singleshot.TrainConfig` of one training.

        Parameters
        ----------
        seed_offset : int, optional
            Added to ``seed`` (one per repeat). Default 0.

        Returns
        -------
        config : TrainConfig
            ``width``, ``depth``, ``steps``; validation every ``min(100, steps // 10)``
            steps, patience 8.
        """
        return TrainConfig(
            width=self.width,
            depth=self.depth,
            max_steps=self.steps,
            eval_every=max(1, min(100, self.steps // 10)),
            patience=8,
            seed=self.seed + seed_offset,
        )

    def note(self) -> str:
        """How this setup scales the paper down, for the result's ``note``.

        Returns
        -------
        note : str
            Image and tile sizes, frequency cells, z range (µm), network and steps, against
            the paper's.
        """
        return SCALED_NOTE.format(
            size=self.image_size,
            tiles=(self.image_size // self.tile) ** 2,
            tile=self.tile,
            bin=self.feature_bin,
            z_step=self.z_step_um,
            z_half=self.z_half_um,
            width=self.width,
            depth=self.depth,
            steps=self.steps,
        )

    def to_dict(self) -> dict[str, Any]:
        """The setup as a JSON-able dict (the result's ``config``).

        Returns
        -------
        data : dict
            The preset and every setting (with ``image_size`` and ``feature_bin``).
        """
        return {
            "preset": PRESET,
            "tile": self.tile,
            "image_size": self.image_size,
            "z_step_um": self.z_step_um,
            "z_half_um": self.z_half_um,
            "feature_bin": self.feature_bin,
            "width": self.width,
            "depth": self.depth,
            "steps": self.steps,
            "seed": self.seed,
            "repeats": self.repeats,
        }


def _simulate(
    setup: Setup,
    specs: Sequence[FieldSpec],
    regions: dict[str, FourierRegion],
    *,
    phase: dict[str, bool] | None = None,
    sample_options: dict[str, Any] | None = None,
    progress: Progress = _quiet,
    label: str = "",
) -> dict[str, FeatureSet]:
    """Render each field under the preset's LED once, expose it once, and take every
    feature set in ``regions`` from the same noisy images (``phase[name]``: FFT phase)."""
    optics = setup.optics
    led = optics.illumination
    assert isinstance(led, LED)
    z = setup.z_um()
    parts: dict[str, list[FeatureSet]] = {name: [] for name in regions}
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        clean = render_led_images(
            spec,
            optics,
            [(led.sx, led.sy)],
            z,
            size=setup.image_size,
            sample_options=sample_options,
        )[0]
        noisy = expose(clean, optics.camera, spec.photons, unscattered=1.0, seed=spec.seed + 1)[
            0
        ].astype(np.float32)
        defocus = z - spec.focus_um
        for name, region in regions.items():
            parts[name].append(
                stack_features(
                    noisy, defocus, region, spec.field, phase=bool(phase and phase.get(name))
                )
            )
        progress(
            f"  {label}simulated field {i + 1}/{len(specs)} ({spec.sample}, "
            f"{time.perf_counter() - t0:.0f} s)"
        )
    return {name: FeatureSet.concatenate(p) for name, p in parts.items()}


# --------------------------------------------------------------------------- training


def _train(
    setup: Setup,
    train: FeatureSet,
    val: FeatureSet,
    *,
    init: Any = None,
    seed_offset: int = 0,
    steps: int | None = None,
) -> tuple[Any, Any]:
    from dataclasses import replace

    config = setup.train_config(seed_offset)
    if steps is not None:
        config = replace(config, max_steps=steps, eval_every=max(1, min(100, steps // 10)))
    return fit_fcfnn(train.examples(), val.examples(), config, init=init)


def _predict(net: Any, features: np.ndarray) -> np.ndarray:
    import torch

    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    with torch.no_grad():
        z = torch.cat([net(x[i : i + 4096])[0] for i in range(0, len(x), 4096)])
    return z.double().numpy()


def _errors(net: Any, data: FeatureSet) -> dict[str, float]:
    err = _predict(net, data.features) - data.z_um
    return {
        "rmse_um": float(np.sqrt(np.mean(err**2))),
        "p90_abs_um": float(np.percentile(np.abs(err), 90)),
        "examples": len(data),
    }


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 4)
    return x


def _result(
    name: str,
    figure: str,
    setup: Setup,
    columns: list[str],
    rows: list[dict[str, Any]],
    seconds: float,
    **extra: Any,
) -> dict[str, Any]:
    note = setup.note()
    if setup.repeats > 1:
        note += (
            f"; every network trained {setup.repeats}× with different seeds on the same data: "
            "RMSE columns are the mean, *_sd the standard deviation between them"
        )
    return {
        "analysis": name,
        "figure": figure,
        "note": note,
        "config": setup.to_dict(),
        "columns": columns,
        "rows": [{k: _round(v) for k, v in r.items()} for r in rows],
        "seconds": round(seconds, 1),
        **extra,
    }


# --------------------------------------------------------------------------- Fig. 2


def analyze_training_size(
    setup: Setup = Setup(),
    *,
    field_counts: Sequence[int] = (2, 4, 8, 16, 32, 64),
    val_fields: int = 4,
    test_fields: int = 8,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Held-out RMSE vs number of training fields (Pinkard et al. Fig. 2) [1]_.

    Training sets are nested (the first n of one list of fields); validation fields
    (early stopping) and test fields (reported) are fixed and disjoint from them.

    Parameters
    ----------
    setup : Setup, optional
        Microscope, stack geometry, network and training (default: ``Setup()``).
    field_counts : sequence of int, optional
        Training-set sizes (fields, each ≥ 1). Default (2, 4, 8, 16, 32, 64).
    val_fields : int, optional
        Validation fields (early stopping). Default 4.
    test_fields : int, optional
        Test fields (reported). Default 8.
    progress : callable, optional
        ``progress(message)`` after every simulated field and trained configuration.

    Returns
    -------
    result : dict
        JSON-able: ``analysis``, ``figure``, ``note`` (how it was scaled down), ``config``
        (``setup.to_dict()``), ``columns``, ``rows`` (the table; RMSE columns are the mean
        over ``setup.repeats`` trainings, ``*_sd`` their standard deviation) and
        ``seconds``, plus ``test_fields``, ``val_fields``, ``features``
        and ``dof_um`` (µm). One row per training-set size: training fields and examples,
        training and test RMSE (µm), the 90th percentile of the test |error| (µm) and the
        best step of each training.

    Raises
    ------
    ConfigError
        No field count, or one below 1.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 2.
    """
    t0 = time.perf_counter()
    counts = sorted({int(c) for c in field_counts})
    if not counts or counts[0] < 1:
        raise ConfigError("field counts must be ≥ 1")
    region = setup.region()
    regions = {"mag": region}
    train_all = _simulate(
        setup,
        field_specs(counts[-1], seed=setup.seed, role=0),
        regions,
        progress=progress,
        label="train ",
    )["mag"]
    val = _simulate(
        setup,
        field_specs(val_fields, seed=setup.seed, role=1, first_field=10_000),
        regions,
        progress=progress,
        label="validation ",
    )["mag"]
    test = _simulate(
        setup,
        field_specs(test_fields, seed=setup.seed, role=2, first_field=20_000),
        regions,
        progress=progress,
        label="test ",
    )["mag"]
    rows = []
    for n in counts:
        keep = train_all.field < n
        train = FeatureSet(train_all.features[keep], train_all.z_um[keep], train_all.field[keep])
        runs = []
        for r in range(setup.repeats):
            net, history = _train(setup, train, val, seed_offset=r)
            runs.append((_errors(net, test), _errors(net, train), history.best_step))
        test_mean, test_sd = _mean_sd([e["rmse_um"] for e, _, _ in runs])
        rows.append(
            {
                "train_fields": n,
                "train_examples": len(train),
                "train_rmse_um": _mean_sd([t["rmse_um"] for _, t, _ in runs])[0],
                "test_rmse_um": test_mean,
                "test_rmse_sd_um": test_sd,
                "test_p90_abs_um": _mean_sd([e["p90_abs_um"] for e, _, _ in runs])[0],
                "best_steps": "/".join(str(s) for _, _, s in runs),
            }
        )
        progress(f"  {n} training fields: test RMSE {test_mean:.2f} ± {test_sd:.2f} µm")
    return _result(
        "training-size",
        "Pinkard et al. Fig. 2",
        setup,
        [
            "train_fields",
            "train_examples",
            "train_rmse_um",
            "test_rmse_um",
            "test_rmse_sd_um",
            "test_p90_abs_um",
            "best_steps",
        ],
        rows,
        time.perf_counter() - t0,
        test_fields=test_fields,
        val_fields=val_fields,
        features=region.n_features,
        dof_um=setup.optics.depth_of_field_um,
    )


# --------------------------------------------------------------------------- Fig. 3


UNSTAINED_TISSUE = {"stain_strength": 0.05, "index_contrast": 0.25, "thickness_um": 5.0}
TARGETS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (generator, options, description)
    "tissue": (
        "tissue",
        UNSTAINED_TISSUE,
        "unstained 5 µm tissue section (the tissue generator as a phase object: ≤ 9 % absorbed, "
        "0.2–1.4 rad), as in the paper",
    ),
    "stained-tissue": ("tissue", {}, "H&E-stained tissue section (mainly an absorber)"),
    "dense-cells": ("cells", {"density": 0.9}, "confluent phase cells (density 0.9)"),
}


def analyze_generalization(
    setup: Setup = Setup(),
    *,
    train_fields: int = 48,
    target: str = "tissue",
    finetune_fields: int = 16,
    val_fields: int = 3,
    test_fields: int = 6,
    finetune_steps: int | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Train on cells, test on cells and on ``target`` (Fig. 3b, c); then fine-tune each
    network (``fit_fcfnn(init=net)``) on the cell fields plus ``finetune_fields`` target
    fields and test both again (Fig. 3d: 130 tissue stacks added to 440 of cells, the
    cell data kept). The default 16 target fields to 48 of cells is the paper's ratio [1]_.

    Parameters
    ----------
    setup : Setup, optional
        Microscope, stack geometry, network and training (default: ``Setup()``).
    train_fields : int, optional
        Cell fields to train on. Default 48.
    target : str, optional
        The other sample, a key of :data:`TARGETS` (``"tissue"``, ``"stained-tissue"``,
        ``"dense-cells"``). Default ``"tissue"``.
    finetune_fields : int, optional
        Target fields added for fine-tuning. Default 16.
    val_fields : int, optional
        Validation fields of each sample. Default 3.
    test_fields : int, optional
        Test fields of each sample. Default 6.
    finetune_steps : int, optional
        Fine-tuning steps (default: ``setup.steps``).
    progress : callable, optional
        ``progress(message)`` after every simulated field and trained configuration.

    Returns
    -------
    result : dict
        JSON-able: ``analysis``, ``figure``, ``note`` (how it was scaled down), ``config``
        (``setup.to_dict()``), ``columns``, ``rows`` (the table; RMSE columns are the mean
        over ``setup.repeats`` trainings, ``*_sd`` their standard deviation) and
        ``seconds``, plus ``target``, ``target_description``,
        ``target_options``, ``train_fields``, ``finetune_fields`` and ``scatter`` (the
        test labels and the first training's predictions, µm). One row per model (before /
        after fine-tuning) and test sample: RMSE and the 90th percentile of |error| (µm).

    Raises
    ------
    ConfigError
        An unknown ``target``.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 3.
    """
    if target not in TARGETS:
        raise ConfigError(f"unknown target sample {target!r}; choose one of {', '.join(TARGETS)}")
    t0 = time.perf_counter()
    generator, options, description = TARGETS[target]
    regions = {"mag": setup.region()}

    def sim(
        n: int, role: int, first: int, sample: str, opts: dict[str, Any] | None, label: str
    ) -> FeatureSet:
        specs = field_specs(n, seed=setup.seed, role=role, sample=sample, first_field=first)
        return _simulate(
            setup, specs, regions, sample_options=opts, progress=progress, label=label
        )["mag"]

    cells_train = sim(train_fields, 0, 0, "cells", None, "cells train ")
    cells_val = sim(val_fields, 1, 10_000, "cells", None, "cells validation ")
    cells_test = sim(test_fields, 2, 20_000, "cells", None, "cells test ")
    new_train = sim(finetune_fields, 3, 30_000, generator, options, f"{target} fine-tune ")
    new_val = sim(val_fields, 4, 40_000, generator, options, f"{target} validation ")
    new_test = sim(test_fields, 5, 50_000, generator, options, f"{target} test ")
    tests = {"cells": cells_test, target: new_test}
    both_train = FeatureSet.concatenate([cells_train, new_train])
    both_val = FeatureSet.concatenate([cells_val, new_val])

    errors: dict[str, dict[str, list[dict[str, float]]]] = {
        "before": {k: [] for k in tests},
        "after": {k: [] for k in tests},
    }
    scatter: dict[str, Any] = {
        "cells_z": cells_test.z_um.tolist(),
        "target_z": new_test.z_um.tolist(),
    }
    for r in range(setup.repeats):
        net, _ = _train(setup, cells_train, cells_val, seed_offset=r)
        tuned, _ = _train(
            setup,
            both_train,
            both_val,
            init=copy.deepcopy(net),
            seed_offset=100 + r,
            steps=finetune_steps,
        )
        for stage, model in (("before", net), ("after", tuned)):
            for k, data in tests.items():
                errors[stage][k].append(_errors(model, data))
            if r == 0:
                scatter[stage] = {
                    k: _predict(model, data.features).tolist() for k, data in tests.items()
                }
        progress(
            f"  run {r + 1}/{setup.repeats}: cells only → cells "
            f"{errors['before']['cells'][-1]['rmse_um']:.2f}, {target} "
            f"{errors['before'][target][-1]['rmse_um']:.2f} µm; fine-tuned → cells "
            f"{errors['after']['cells'][-1]['rmse_um']:.2f}, {target} "
            f"{errors['after'][target][-1]['rmse_um']:.2f} µm"
        )
    rows = []
    for stage, model_name in (
        ("before", "cells only"),
        ("after", f"cells + {finetune_fields} {target} fields (fine-tuned)"),
    ):
        for k in tests:
            mean, sd = _mean_sd([e["rmse_um"] for e in errors[stage][k]])
            rows.append(
                {
                    "model": model_name,
                    "test_sample": k,
                    "rmse_um": mean,
                    "rmse_sd_um": sd,
                    "p90_abs_um": _mean_sd([e["p90_abs_um"] for e in errors[stage][k]])[0],
                    "examples": errors[stage][k][0]["examples"],
                }
            )
    return _result(
        "generalization",
        "Pinkard et al. Fig. 3",
        setup,
        ["model", "test_sample", "rmse_um", "rmse_sd_um", "p90_abs_um", "examples"],
        rows,
        time.perf_counter() - t0,
        target=target,
        target_description=description,
        target_options=options,
        train_fields=train_fields,
        finetune_fields=finetune_fields,
        scatter=scatter,
    )


# --------------------------------------------------------------------------- Fig. 4a


def analyze_magnitude_vs_phase(
    setup: Setup = Setup(),
    *,
    train_fields: int = 48,
    val_fields: int = 4,
    test_fields: int = 8,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """The same images, the same cells of the spectrum: |FFT| vs FFT phase as input (Fig. 4a).

    Both feature sets are taken from the same noisy images [1]_.

    Parameters
    ----------
    setup : Setup, optional
        Microscope, stack geometry, network and training (default: ``Setup()``).
    train_fields : int, optional
        Training fields. Default 48.
    val_fields : int, optional
        Validation fields. Default 4.
    test_fields : int, optional
        Test fields. Default 8.
    progress : callable, optional
        ``progress(message)`` after every simulated field and trained configuration.

    Returns
    -------
    result : dict
        JSON-able: ``analysis``, ``figure``, ``note`` (how it was scaled down), ``config``
        (``setup.to_dict()``), ``columns``, ``rows`` (the table; RMSE columns are the mean
        over ``setup.repeats`` trainings, ``*_sd`` their standard deviation) and
        ``seconds``, plus ``features``, ``curves`` (validation RMSE in
        µm per step of the first training of each input) and ``scatter`` (test labels and
        predictions, µm). One row per input: training and test RMSE and the test 90th
        percentile of |error| (µm).

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 4a.
    """
    t0 = time.perf_counter()
    region = setup.region()
    regions = {"magnitude": region, "phase": region}
    phase = {"phase": True}
    train = _simulate(
        setup,
        field_specs(train_fields, seed=setup.seed, role=0),
        regions,
        phase=phase,
        progress=progress,
        label="train ",
    )
    val = _simulate(
        setup,
        field_specs(val_fields, seed=setup.seed, role=1, first_field=10_000),
        regions,
        phase=phase,
        progress=progress,
        label="validation ",
    )
    test = _simulate(
        setup,
        field_specs(test_fields, seed=setup.seed, role=2, first_field=20_000),
        regions,
        phase=phase,
        progress=progress,
        label="test ",
    )
    rows, curves, scatter = [], {}, {"z": test["magnitude"].z_um.tolist()}
    for name in ("magnitude", "phase"):
        runs = []
        for r in range(setup.repeats):
            net, history = _train(setup, train[name], val[name], seed_offset=r)
            runs.append((_errors(net, train[name]), _errors(net, test[name])))
            if r == 0:
                curves[name] = {"steps": history.steps, "val_rmse_um": history.val_rmse_um}
                scatter[name] = _predict(net, test[name].features).tolist()
        test_mean, test_sd = _mean_sd([te["rmse_um"] for _, te in runs])
        train_mean, train_sd = _mean_sd([tr["rmse_um"] for tr, _ in runs])
        rows.append(
            {
                "input": f"FFT {name}",
                "train_rmse_um": train_mean,
                "train_rmse_sd_um": train_sd,
                "test_rmse_um": test_mean,
                "test_rmse_sd_um": test_sd,
                "test_p90_abs_um": _mean_sd([te["p90_abs_um"] for _, te in runs])[0],
            }
        )
        progress(
            f"  {name}: train RMSE {train_mean:.2f} µm, "
            f"test RMSE {test_mean:.2f} ± {test_sd:.2f} µm"
        )
    return _result(
        "magnitude-vs-phase",
        "Pinkard et al. Fig. 4a",
        setup,
        [
            "input",
            "train_rmse_um",
            "train_rmse_sd_um",
            "test_rmse_um",
            "test_rmse_sd_um",
            "test_p90_abs_um",
        ],
        rows,
        time.perf_counter() - t0,
        features=region.n_features,
        curves=curves,
        scatter=scatter,
    )


# --------------------------------------------------------------------------- Fig. 4b


def saliency_map(
    net: Any, features: np.ndarray, region: FourierRegion
) -> tuple[np.ndarray, np.ndarray]:
    """Mean |∂z/∂input| over examples, scattered onto the binned Fourier half-plane.

    Returns ``(per standardized feature, per raw feature)`` maps of shape
    ``region.binned_shape`` (zero outside ``region.mask()``). The first is the gradient
    with respect to the network's standardized input (= raw gradient × the feature's
    spread across training images): how much a typical change of that |FFT| cell moves
    the prediction. The second is the paper's literal gradient with respect to |FFT|.

    Parameters
    ----------
    net : FCFNN
        A trained network (put in eval mode).
    features : (N, F) array
        Raw feature vectors of ``region``.
    region : FourierRegion
        Where the features lie on the binned half-plane.

    Returns
    -------
    standardized : array of shape ``region.binned_shape``
        Mean |∂z/∂x| with respect to the standardized input (µm per standard deviation).
    raw : array of shape ``region.binned_shape``
        Mean |∂z/∂|FFT|| with respect to the raw features (the paper's).

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 4b.
    """
    import torch

    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).requires_grad_(True)
    z = net(x)[0]
    (grad,) = torch.autograd.grad(z.sum(), x)
    raw = grad.abs().mean(0).double().numpy()
    std = net.feature_std.detach().double().numpy()
    mask = region.mask()
    maps = []
    for values in (raw * std, raw):
        image = np.zeros(region.binned_shape, dtype=np.float64)
        image[mask] = values
        maps.append(image)
    return maps[0], maps[1]


def _disc_radius_maps(region: FourierRegion) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each binned cell to the nearer and the farther pupil disc centre ±s/λ,
    in units of NA/λ."""
    fy, fx = region.frequencies()
    cx, cy = region.sx / region.wavelength_um, region.sy / region.wavelength_um
    r = region.na / region.wavelength_um
    a, b = np.hypot(fx - cx, fy - cy) / r, np.hypot(fx + cx, fy + cy) / r
    return np.minimum(a, b), np.maximum(a, b)


def analyze_saliency(
    setup: Setup = Setup(),
    *,
    train_fields: int = 48,
    val_fields: int = 4,
    test_fields: int = 8,
    full_plane: bool = True,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Where in the Fourier plane the network looks (Fig. 4b).

    As in the paper the network is trained on the whole (binned, half-plane) |FFT|
    (``full_plane=False``: on the two-disc features only); saliency is averaged over the
    test examples (and over the repeated trainings). Reported: the share of saliency
    inside the two pupil discs, in their outer rims (0.8–1 of the radius: the highest
    scattering angles) and where they overlap (both scattered copies interfere there:
    for a weak phase object the |FFT| elsewhere in the discs does not depend on z at
    all), each against the share of the plane's area it covers [1]_.

    Parameters
    ----------
    setup : Setup, optional
        Microscope, stack geometry, network and training (default: ``Setup()``).
    train_fields : int, optional
        Training fields. Default 48.
    val_fields : int, optional
        Validation fields. Default 4.
    test_fields : int, optional
        Test fields (saliency is averaged over their examples). Default 8.
    full_plane : bool, optional
        Train on the whole binned half-plane, as the paper does. Default True.
    progress : callable, optional
        ``progress(message)`` after every simulated field and trained configuration.

    Returns
    -------
    result : dict
        JSON-able: ``analysis``, ``figure``, ``note`` (how it was scaled down), ``config``
        (``setup.to_dict()``), ``columns``, ``rows`` (the table; RMSE columns are the mean
        over ``setup.repeats`` trainings, ``*_sd`` their standard deviation) and
        ``seconds``, plus ``full_plane``, ``test_rmse_um``,
        ``test_rmse_sd_um``, ``features``, the maps ``saliency``, ``saliency_raw``,
        ``mean_log10_input`` and ``mask`` on the binned half-plane, its frequencies ``fy``
        and ``fx`` (cycles/µm), ``led``, ``na`` and ``wavelength_um`` (µm). One row per
        gradient: the shares of saliency and of area in the discs, rims and overlap.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. 4b.
    """
    t0 = time.perf_counter()
    region = setup.region(full_plane=full_plane)
    regions = {"mag": region}
    train = _simulate(
        setup,
        field_specs(train_fields, seed=setup.seed, role=0),
        regions,
        progress=progress,
        label="train ",
    )["mag"]
    val = _simulate(
        setup,
        field_specs(val_fields, seed=setup.seed, role=1, first_field=10_000),
        regions,
        progress=progress,
        label="validation ",
    )["mag"]
    test = _simulate(
        setup,
        field_specs(test_fields, seed=setup.seed, role=2, first_field=20_000),
        regions,
        progress=progress,
        label="test ",
    )["mag"]
    sal = np.zeros(region.binned_shape)
    sal_raw = np.zeros(region.binned_shape)
    rmse = []
    for r in range(setup.repeats):
        net, _ = _train(setup, train, val, seed_offset=r)
        rmse.append(_errors(net, test)["rmse_um"])
        a, b = saliency_map(net, test.features, region)
        sal += a / setup.repeats
        sal_raw += b / setup.repeats
    mean_input = np.zeros(region.binned_shape)
    mean_input[region.mask()] = np.log10(np.maximum(test.features.mean(0), 1e-6))
    rnorm, rfar = _disc_radius_maps(region)
    mask = region.mask()
    inside, rim = (rnorm <= 1) & mask, (rnorm > 0.8) & (rnorm <= 1) & mask
    overlap = (rfar <= 1) & mask  # inside both discs: where the two scattered copies interfere
    rows = []
    for name, m in (("standardized input", sal), ("raw FFT magnitude (paper)", sal_raw)):
        total = float(m[mask].sum())
        rows.append(
            {
                "gradient_wrt": name,
                "share_in_discs": float(m[inside].sum() / total),
                "area_share_discs": float(inside.sum() / mask.sum()),
                "share_in_rims": float(m[rim].sum() / total),
                "area_share_rims": float(rim.sum() / mask.sum()),
                "share_in_overlap": float(m[overlap].sum() / total),
                "area_share_overlap": float(overlap.sum() / mask.sum()),
            }
        )
    rmse_mean, rmse_sd = _mean_sd(rmse)
    progress(
        f"  test RMSE {rmse_mean:.2f} µm; saliency in discs {rows[0]['share_in_discs']:.0%} "
        f"of the total on {rows[0]['area_share_discs']:.0%} of the area"
    )
    fy, fx = region.frequencies()
    return _result(
        "saliency",
        "Pinkard et al. Fig. 4b",
        setup,
        [
            "gradient_wrt",
            "share_in_discs",
            "area_share_discs",
            "share_in_rims",
            "area_share_rims",
            "share_in_overlap",
            "area_share_overlap",
        ],
        rows,
        time.perf_counter() - t0,
        full_plane=full_plane,
        test_rmse_um=rmse_mean,
        test_rmse_sd_um=rmse_sd,
        features=region.n_features,
        saliency=sal.tolist(),
        saliency_raw=sal_raw.tolist(),
        mean_log10_input=mean_input.tolist(),
        mask=mask.astype(int).tolist(),
        fy=fy.ravel().tolist(),
        fx=fx.ravel().tolist(),
        led=[region.sx, region.sy],
        na=region.na,
        wavelength_um=region.wavelength_um,
    )


# --------------------------------------------------------------------------- Fig. S1


def analyze_led_angle(
    setup: Setup = Setup(),
    *,
    train_fields: int = 20,
    val_fields: int = 3,
    test_fields: int = 5,
    angles: Sequence[float] = DEFAULT_ANGLES,
    patterns: dict[str, Sequence[tuple[float, float]]] | None = None,
    oversample: int = 1,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Single-LED angle sweep along x (Fig. S1a) and multi-LED patterns (Fig. S1c).

    Each field is rendered once per distinct LED (one sample, one padded grid, no
    noise); a pattern's image is the sum of its LEDs' images (Note S2). Then the camera
    adds noise at a fixed exposure per LED: darkfield images (|s| > NA) are dim, and a
    pattern of n LEDs collects n× the light. Each illumination gets its own network on
    its own feature region (:class:`LEDRegion`). ``oversample=2`` renders on pixels
    twice finer (then bins), for the most oblique LEDs whose scattered light reaches
    past the camera pixel's Nyquist frequency; checked at sx 0.65, z −20…+10 µm, the
    camera-pixel render correlates ≥ 0.97 with it (≥ 0.997 at sx ≤ 0.55), at ¼ the cost.

    Parameters
    ----------
    setup : Setup, optional
        Microscope, stack geometry, network and training (default: ``Setup()``).
    train_fields : int, optional
        Training fields. Default 20.
    val_fields : int, optional
        Validation fields. Default 3.
    test_fields : int, optional
        Test fields. Default 5.
    angles : sequence of float, optional
        Illumination NA ``sx`` of the single LEDs (``sy`` = 0). Default
        :data:`DEFAULT_ANGLES`.
    patterns : dict of str to sequence of (float, float), optional
        Multi-LED patterns by name, each LED's illumination NA ``(sx, sy)``. Default
        :data:`DEFAULT_PATTERNS`.
    oversample : int, optional
        Render on pixels this many times finer, then bin. Default 1.
    progress : callable, optional
        ``progress(message)`` after every simulated field and trained configuration.

    Returns
    -------
    result : dict
        JSON-able: ``analysis``, ``figure``, ``note`` (how it was scaled down), ``config``
        (``setup.to_dict()``), ``columns``, ``rows`` (the table; RMSE columns are the mean
        over ``setup.repeats`` trainings, ``*_sd`` their standard deviation) and
        ``seconds``, plus ``objective_na``, ``oversample`` and
        ``patterns`` (the LEDs of every illumination). One row per illumination: LEDs,
        largest illumination NA, darkfield or not, features, test RMSE and the 90th
        percentile of |error| (µm).

    Raises
    ------
    ConfigError
        No angle and no pattern.

    References
    ----------
    .. [1] Pinkard, H., Phillips, Z., Babakhani, A., Fletcher, D. A. & Waller, L. Deep
       learning for single-shot autofocus microscopy. Optica 6, 794–797 (2019),
       Fig. S1 and Note S2.
    """
    t0 = time.perf_counter()
    patterns = dict(DEFAULT_PATTERNS if patterns is None else patterns)
    configs: dict[str, tuple[tuple[float, float], ...]] = {
        f"single sx {a:g}": ((float(a), 0.0),) for a in angles
    }
    configs.update(
        {f"pattern: {k}": tuple((float(a), float(b)) for a, b in v) for k, v in patterns.items()}
    )
    if not configs:
        raise ConfigError("give at least one angle or pattern")
    leds = sorted({led for v in configs.values() for led in v})
    optics = setup.optics
    z = setup.z_um()
    regions = {name: setup.region(v) for name, v in configs.items()}
    data: dict[str, dict[str, list[FeatureSet]]] = {
        name: {"train": [], "val": [], "test": []} for name in configs
    }
    plan = [
        ("train", field_specs(train_fields, seed=setup.seed, role=0)),
        ("val", field_specs(val_fields, seed=setup.seed, role=1, first_field=10_000)),
        ("test", field_specs(test_fields, seed=setup.seed, role=2, first_field=20_000)),
    ]
    done, total = 0, train_fields + val_fields + test_fields
    for part, specs in plan:
        for spec in specs:
            singles = render_led_images(
                spec, optics, leds, z, size=setup.image_size, oversample=oversample
            )
            defocus = z - spec.focus_um
            for j, (name, members) in enumerate(configs.items()):
                idx = [leds.index(m) for m in members]
                clean = synthesize_led_pattern(singles[idx])
                noisy = expose(
                    clean,
                    optics.camera,
                    spec.photons,
                    unscattered=float(len(idx)),
                    seed=spec.seed + 1 + j,
                )[0].astype(np.float32)
                data[name][part].append(stack_features(noisy, defocus, regions[name], spec.field))
            done += 1
            progress(
                f"  simulated field {done}/{total} under {len(leds)} LEDs "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    rows = []
    for name, members in configs.items():
        sets = {p: FeatureSet.concatenate(v) for p, v in data[name].items()}
        runs = []
        for r in range(setup.repeats):
            net, _ = _train(setup, sets["train"], sets["val"], seed_offset=r)
            runs.append(_errors(net, sets["test"]))
        mean, sd = _mean_sd([e["rmse_um"] for e in runs])
        na_max = max(math.hypot(*m) for m in members)
        rows.append(
            {
                "illumination": name,
                "leds": len(members),
                "max_illumination_na": na_max,
                "darkfield": any(math.hypot(*m) > optics.na for m in members),
                "features": regions[name].n_features,
                "test_rmse_um": mean,
                "test_rmse_sd_um": sd,
                "test_p90_abs_um": _mean_sd([e["p90_abs_um"] for e in runs])[0],
            }
        )
        progress(f"  {name}: test RMSE {mean:.2f} ± {sd:.2f} µm")
    return _result(
        "led-angle",
        "Pinkard et al. Fig. S1",
        setup,
        [
            "illumination",
            "leds",
            "max_illumination_na",
            "darkfield",
            "features",
            "test_rmse_um",
            "test_rmse_sd_um",
            "test_p90_abs_um",
        ],
        rows,
        time.perf_counter() - t0,
        objective_na=optics.na,
        oversample=oversample,
        patterns={k: [list(m) for m in v] for k, v in configs.items()},
    )


# --------------------------------------------------------------------------- output


def _plot_training_size(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = result["rows"]
    n = [r["train_fields"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.errorbar(
        n,
        [r["test_rmse_um"] for r in rows],
        yerr=[r["test_rmse_sd_um"] for r in rows],
        fmt="o-",
        capsize=3,
        label=f"held-out RMSE (mean ± sd of {result['config']['repeats']} trainings)",
    )
    ax.plot(n, [r["train_rmse_um"] for r in rows], "s--", color="0.5", label="training RMSE")
    ax.axhline(
        result["dof_um"], color="tab:orange", linestyle=":", label=f"DOF {result['dof_um']:.2f} µm"
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(n)
    ax.set_xticklabels([str(v) for v in n])
    ax.set_xlabel("training fields (focal stacks)")
    ax.set_ylabel("RMSE (µm)")
    ax.set_ylim(bottom=0)
    ax.set_title(
        f"Performance vs training data (cf. Fig. 2); {result['test_fields']} held-out fields"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    finish_figure(fig, result, path)


def _scatter(
    ax: Any,
    z: Sequence[float],
    pred: Sequence[float],
    title: str,
    color: str = "tab:blue",
    label: str | None = None,
) -> None:
    z_a, p_a = np.asarray(z), np.asarray(pred)
    ax.scatter(z_a, p_a, s=6, alpha=0.5, color=color, label=label)
    lim = float(max(np.abs(z_a).max(), 1.0)) * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="k", linewidth=0.8)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim * 1.3, lim * 1.3)
    ax.set_xlabel("true defocus (µm)")
    ax.set_ylabel("predicted (µm)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _plot_generalization(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    s, t = result["scatter"], result["target"]
    rmse = {
        (r["model"].startswith("cells only"), r["test_sample"]): r["rmse_um"]
        for r in result["rows"]
    }
    # the scatter shows the first training; the RMSE quoted is the mean over all of them
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    _scatter(
        axes[0],
        s["cells_z"],
        s["before"]["cells"],
        f"b) trained on cells, tested on cells\nRMSE {rmse[(True, 'cells')]:.2f} µm",
    )
    _scatter(
        axes[1],
        s["target_z"],
        s["before"][t],
        f"c) trained on cells, tested on {t}\nRMSE {rmse[(True, t)]:.2f} µm",
        color="tab:red",
    )
    _scatter(
        axes[2],
        s["cells_z"],
        s["after"]["cells"],
        "",
        label=f"cells ({rmse[(False, 'cells')]:.2f} µm)",
    )
    _scatter(
        axes[2],
        s["target_z"],
        s["after"][t],
        f"d) + {result['finetune_fields']} {t} fields (fine-tuned)",
        color="tab:red",
        label=f"{t} ({rmse[(False, t)]:.2f} µm)",
    )
    axes[2].legend(fontsize=8, title="test RMSE", title_fontsize=8)
    n = result["config"]["repeats"]
    fig.suptitle(
        f"Generalization to a new sample type (cf. Fig. 3): {result['target_description']}"
        + (f"\npoints: the first of {n} trainings; RMSE: the mean over all {n}" if n > 1 else ""),
        fontsize=10,
    )
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_magnitude_vs_phase(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9))
    rows = {r["input"]: r for r in result["rows"]}
    for ax, name, color in ((axes[0], "magnitude", "tab:blue"), (axes[1], "phase", "tab:red")):
        r = rows[f"FFT {name}"]
        _scatter(
            ax,
            result["scatter"]["z"],
            result["scatter"][name],
            f"input: FFT {name}\ntest RMSE {r['test_rmse_um']:.2f} ± {r['test_rmse_sd_um']:.2f} µm "
            f"(train {r['train_rmse_um']:.2f})",
            color=color,
        )
        c = result["curves"][name]
        axes[2].plot(c["steps"], c["val_rmse_um"], label=f"FFT {name}", color=color)
    axes[2].set_xlabel("training step")
    axes[2].set_ylabel("validation RMSE (µm)")
    axes[2].set_ylim(bottom=0)
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    axes[2].set_title("training curves", fontsize=9)
    n = result["config"]["repeats"]
    fig.suptitle(
        "Fourier magnitude vs phase as network input (cf. Fig. 4a)"
        + (
            f" — points and curves: the first of {n} trainings; RMSE: mean ± sd over all {n}"
            if n > 1
            else ""
        ),
        fontsize=10,
    )
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_saliency(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    from matplotlib.patches import Circle

    fy, fx = np.asarray(result["fy"]), np.asarray(result["fx"])
    dfy, dfx = (fy[1] - fy[0]) / 2, (fx[1] - fx[0]) / 2
    extent = (fx[0] - dfx, fx[-1] + dfx, fy[-1] + dfy, fy[0] - dfy)
    mask = np.asarray(result["mask"], dtype=bool)
    sx, sy = result["led"]
    lam, na = result["wavelength_um"], result["na"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.6))
    panels = [
        (np.asarray(result["mean_log10_input"]), "mean log₁₀ |FFT| input (test images)", "gray"),
        (np.asarray(result["saliency"]), "saliency: mean |∂z/∂x|, standardized input", "inferno"),
        (
            np.asarray(result["saliency_raw"]),
            "saliency: mean |∂z/∂|FFT||, raw input (paper)",
            "inferno",
        ),
    ]
    for ax, (image, title, cmap) in zip(axes, panels, strict=True):
        shown = np.where(mask, image, np.nan)
        finite = shown[np.isfinite(shown)]
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        vmin = float(np.percentile(finite, 1)) if cmap == "gray" and finite.size else 0.0
        im = ax.imshow(
            shown,
            extent=extent,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
            aspect="equal",
        )
        for sign in (1, -1):
            ax.add_patch(
                Circle(
                    (sign * sx / lam, sign * sy / lam),
                    na / lam,
                    fill=False,
                    color="tab:cyan",
                    linewidth=1,
                    linestyle="--",
                )
            )
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel("fx (cycles/µm)")
        ax.set_ylabel("fy (cycles/µm)")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.05)
    r = result["rows"][0]
    fig.suptitle(
        "Where the network looks (cf. Fig. 4b) — "
        f"{'whole half-plane' if result['full_plane'] else 'two-disc'} input; dashed: pupil discs "
        f"at ±s/λ; test RMSE {result['test_rmse_um']:.2f} ± {result['test_rmse_sd_um']:.2f} µm\n"
        f"{r['share_in_discs']:.0%} of the saliency lies in the discs ({r['area_share_discs']:.0%} "
        f"of the area), {r['share_in_rims']:.0%} in their outer rims ({r['area_share_rims']:.0%} "
        f"of the area), {r['share_in_overlap']:.0%} where the discs overlap "
        f"({r['area_share_overlap']:.0%} of the area) — standardized-input saliency",
        fontsize=9,
    )
    fig.tight_layout()
    finish_figure(fig, result, path)


def _plot_led_angle(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = result["rows"]
    singles = [r for r in rows if r["illumination"].startswith("single")]
    pats = [r for r in rows if r["illumination"].startswith("pattern")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [1.1, 0.9, 1.2]})
    ax = axes[0]
    if singles:
        ax.errorbar(
            [r["max_illumination_na"] for r in singles],
            [r["test_rmse_um"] for r in singles],
            yerr=[r["test_rmse_sd_um"] for r in singles],
            fmt="o-",
            capsize=3,
        )
    ax.axvline(
        result["objective_na"],
        color="tab:orange",
        linestyle=":",
        label=f"objective NA {result['objective_na']:g}",
    )
    ax.set_xlabel("single-LED illumination NA (sx)")
    ax.set_ylabel("test RMSE (µm)")
    ax.set_ylim(bottom=0)
    ax.text(0.02, 0.02, "brightfield", transform=ax.transAxes, fontsize=8)
    ax.text(0.98, 0.02, "darkfield", transform=ax.transAxes, fontsize=8, ha="right")
    ax.set_title("a) single-LED angle", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    from matplotlib.patches import Circle

    ax.add_patch(
        Circle((0, 0), result["objective_na"], fill=False, color="tab:orange", linestyle=":")
    )
    colors = plt.cm.tab10(np.arange(10))
    for i, r in enumerate(pats):
        m = np.asarray(result["patterns"][r["illumination"]])
        ax.scatter(
            m[:, 0] + 0.012 * i,
            m[:, 1] + 0.012 * i,
            color=colors[i % 10],
            s=30,
            label=r["illumination"][9:],
        )
    for r in singles:
        m = np.asarray(result["patterns"][r["illumination"]])
        ax.scatter(m[:, 0], m[:, 1], facecolor="none", edgecolor="0.4", s=30)
    ax.set_xlim(-0.75, 0.75)
    ax.set_ylim(-0.75, 0.75)
    ax.set_aspect("equal")
    ax.set_xlabel("sx (NA)")
    ax.set_ylabel("sy (NA)")
    ax.set_title("b) LEDs in NA space (open: single-LED sweep)", fontsize=9)
    if pats:
        ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax = axes[2]
    if pats:
        y = np.arange(len(pats))
        ax.barh(
            y,
            [r["test_rmse_um"] for r in pats],
            xerr=[r["test_rmse_sd_um"] for r in pats],
            capsize=3,
            color=[colors[i % 10] for i in range(len(pats))],
        )
        ax.set_yticks(y)
        ax.set_yticklabels([r["illumination"][9:] for r in pats], fontsize=8)
        ax.invert_yaxis()
    ref = next((r for r in singles if abs(r["max_illumination_na"] - 0.4) < 1e-9), None)
    if ref is not None and pats:
        ax.axvline(
            ref["test_rmse_um"],
            color="0.3",
            linestyle="--",
            linewidth=1,
            label=f"one LED at sx 0.4: {ref['test_rmse_um']:.2f} µm",
        )
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("test RMSE (µm)")
    ax.set_title("c) LED patterns (single-LED images summed)", fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Illumination design (cf. Fig. S1)", fontsize=10)
    fig.tight_layout()
    finish_figure(fig, result, path)


# The figure of each analysis, by its name (focuskit.report.save_analysis draws it).
PLOTS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "training-size": _plot_training_size,
    "generalization": _plot_generalization,
    "magnitude-vs-phase": _plot_magnitude_vs_phase,
    "saliency": _plot_saliency,
    "led-angle": _plot_led_angle,
}

__all__ = [
    "DEFAULT_ANGLES",
    "DEFAULT_PATTERNS",
    "PLOTS",
    "TARGETS",
    "FeatureSet",
    "LEDRegion",
    "Setup",
    "analyze_generalization",
    "analyze_led_angle",
    "analyze_magnitude_vs_phase",
    "analyze_saliency",
    "analyze_training_size",
    "field_specs",
    "field_transmittance",
    "led_region",
    "render_led_images",
    "saliency_map",
    "stack_features",
    "synthesize_led_pattern",
]
