"""A simulated microscope: a preset's optics looking at one generated sample.

The image at stage position ``z`` is the sample rendered at defocus ``z − true_focus``
(OPTICS.md sign: ``z`` is the focal plane relative to the in-focus plane) plus fresh
camera noise. The sample is generated once, with a margin wide enough for the largest
defocus the stage can reach; noise-free renders are cached per defocus (to 1 nm), so a
search that comes back to a z it has seen costs only the noise.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Illumination, Preset, get_preset
from focuskit.scopes._base import (
    DEFAULT_EXPOSURE_TIME_S,
    DEFAULT_MOVE_OVERHEAD_S,
    DEFAULT_STAGE_SPEED_UM_S,
    BaseScope,
)
from focuskit.simulate import (
    Sample,
    apply_camera,
    check_sample_matches,
    make_sample,
    oversampling,
    plan_render,
    render_stack,
)

# Renders are cached per defocus rounded to this step (µm): 1 nm, far below any DOF.
CACHE_QUANTUM_UM = 1e-3
# With drift the true focus moves without bound; render the sample at the largest
# padded field the renderer allows (padded_shape caps it) so any defocus has margin.
_UNBOUNDED_DEFOCUS_UM = 1e6


class SimulatedScope(BaseScope):
    """A virtual microscope of a named preset, rendering on demand.

    Parameters
    ----------
    preset : str or Preset, optional
        Preset name (``focuskit.optics.PRESETS``) or a :class:`Preset` (default
        ``"fcfnn-20x-led"``).
    sample : str or Sample, optional
        Generator name (default: the preset's) or a ready :class:`Sample` at the image
        pixel or its render sub-pixel. ``sample_options`` go to the generator.
    sample_options : dict, optional
        Further parameters of the sample generator.
    size : int or tuple of int, optional
        Image size in pixels (int or (ny, nx)), at least 16 (default 256).
    focus_z_um : float, optional
        Hidden stage position of the sample's in-focus plane at time 0, in µm. None draws it
        uniformly from ``[z_min/2, z_max/2]`` of the preset's z range with ``seed``.
    start_z_um : float, optional
        Stage position at start, in µm (default 0).
    z_limits_um : tuple of float, optional
        Stage travel limits, in µm; default: the preset's z range around 0 extended to hold the
        same range around the focus, ``[min(z_min, f + z_min), max(z_max, f + z_max)]``.
    drift_um_per_s : float, optional
        Focus drift, in µm/s: the true focus is ``focus_z_um + drift_um_per_s · clock_s``
        where ``clock_s`` is the simulated time (moves, travel and exposures; see
        ``elapsed_s``) at the start of each exposure.
    photons : float or None, optional
        Mean photo-electrons per pixel of the in-focus image (default 1000); the exposure is
        fixed, so an image that loses light with defocus is darker. None: noise-free float32.
    seed : int, optional
        Seeds the focus draw, the sample and the camera noise (fresh per exposure, from
        the seed and the number of exposures since construction).
    illumination : Illumination, optional
        Overrides the preset's illumination (e.g. its DPC ``ground_truth_illumination``).
    max_step_um, exposure_time_s, move_overhead_s, stage_speed_um_s, stage_resolution_um : float
        Stage safety and timing model (:class:`BaseScope`; µm, s, s, µm/s, µm).
    cache_mb : float, optional
        Bound on the cache of noise-free renders, in MiB (least recently used evicted).

    Raises
    ------
    ConfigError
        If the preset, sample, size, seed, photons, drift or stage settings are invalid, or
        the sample is empty or does not fit the illumination.
    """

    def __init__(
        self,
        preset: str | Preset = "fcfnn-20x-led",
        *,
        sample: str | Sample | None = None,
        sample_options: dict[str, Any] | None = None,
        size: int | tuple[int, int] = 256,
        focus_z_um: float | None = None,
        start_z_um: float = 0.0,
        z_limits_um: tuple[float, float] | None = None,
        drift_um_per_s: float = 0.0,
        photons: float | None = 1000.0,
        seed: int = 0,
        illumination: Illumination | None = None,
        max_step_um: float | None = None,
        exposure_time_s: float = DEFAULT_EXPOSURE_TIME_S,
        move_overhead_s: float = DEFAULT_MOVE_OVERHEAD_S,
        stage_speed_um_s: float = DEFAULT_STAGE_SPEED_UM_S,
        stage_resolution_um: float | None = None,
        cache_mb: float = 256.0,
    ) -> None:
        p = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(p, Preset):
            raise ConfigError(
                f"preset must be a preset name or a Preset, got {type(preset).__name__}"
            )
        optics = p.optics if illumination is None else p.optics.with_illumination(illumination)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        if isinstance(size, (int, np.integer)):
            shape = (int(size), int(size))
        else:
            shape = (int(size[0]), int(size[1]))
        if min(shape) < 16:
            raise ConfigError(f"image size must be at least 16 pixels, got {shape}")
        self.shape = shape
        if photons is not None and not (math.isfinite(photons) and photons > 0):
            raise ConfigError(f"photons must be > 0 or None (noise-free), got {photons!r}")
        self.photons = None if photons is None else float(photons)
        if not math.isfinite(drift_um_per_s):
            raise ConfigError(f"drift_um_per_s must be finite, got {drift_um_per_s!r}")
        self.drift_um_per_s = float(drift_um_per_s)

        focus_ss, sample_ss = np.random.SeedSequence(self.seed).spawn(2)
        if focus_z_um is None:
            focus = float(np.random.default_rng(focus_ss).uniform(p.z_min_um / 2, p.z_max_um / 2))
        else:
            focus = float(focus_z_um)
            if not math.isfinite(focus):
                raise ConfigError(f"focus_z_um must be finite, got {focus_z_um!r}")
        self._focus0 = focus
        if z_limits_um is None:
            z_limits_um = (min(p.z_min_um, focus + p.z_min_um), max(p.z_max_um, focus + p.z_max_um))
        super().__init__(
            z_limits_um=z_limits_um,
            start_z_um=start_z_um,
            pixel_size_um=optics.pixel_size_um,
            optics=optics,
            max_step_um=max_step_um,
            exposure_time_s=exposure_time_s,
            move_overhead_s=move_overhead_s,
            stage_speed_um_s=stage_speed_um_s,
            stage_resolution_um=stage_resolution_um,
        )
        self.preset = p
        self._render_optics = optics  # the same as .optics, typed as never None

        lo, hi = self.z_limits_um
        max_defocus = max(abs(lo - focus), abs(hi - focus))
        if self.drift_um_per_s:
            max_defocus = _UNBOUNDED_DEFOCUS_UM
        dx = optics.pixel_size_um
        if sample is None or isinstance(sample, str):
            name = p.default_sample if sample is None else sample
            options = dict(sample_options or {})
            if str(name).strip().lower() == "beads" and "as_" not in options:
                options["as_"] = "fluorescence" if optics.is_fluorescence else "absorption"
            plan = plan_render(optics, np.array([max_defocus]), shape, focus_z_um=0.0)
            sample_seed = int(sample_ss.generate_state(1)[0])
            sample_obj = make_sample(
                name,
                plan.render_shape,
                dx / plan.oversampling,
                seed=sample_seed,
                wavelength_um=optics.wavelength_um,
                **options,
            )
        elif isinstance(sample, Sample):
            if sample_options:
                raise ConfigError("sample_options apply to a generated sample, not a ready Sample")
            k = oversampling(optics)
            px = sample.pixel_size_um
            if not (math.isclose(px, dx) or math.isclose(px * k, dx)):
                raise ConfigError(
                    f"sample pixel {sample.pixel_size_um} µm must be the image pixel {dx} µm "
                    f"or its render pixel {dx / k} µm"
                )
            sample_obj = sample
        else:
            raise ConfigError(
                f"sample must be a generator name or a Sample, got {type(sample).__name__}"
            )
        check_sample_matches(sample_obj, optics)
        if not np.any(sample_obj.values != (0 if sample_obj.kind == "fluorescence" else 1)):
            raise ConfigError("the sample is empty (nothing to image); use another seed or density")
        self.sample = sample_obj

        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        image_bytes = shape[0] * shape[1] * 4
        self._cache_entries = max(4, int(cache_mb * 2**20 // image_bytes))
        self._reference_mean: float | None = None
        self.renders = 0  # noise-free renders computed (cache misses)
        self.cache_hits = 0

    # Hidden truth -----------------------------------------------------------------------
    def true_focus_um(self) -> float:
        """Stage z of the in-focus plane now (µm).

        For benchmarks and tests only: an autofocus method must not call it.

        Returns
        -------
        z_um : float
            ``focus_z_um + drift_um_per_s · clock_s``, in µm.
        """
        return self._focus0 + self.drift_um_per_s * self.clock_s

    def defocus_um(self) -> float:
        """Defocus of the current stage position now (``z − true focus``). Benchmarks/tests only.

        Returns
        -------
        defocus_um : float
            Defocus, in µm.
        """
        return self._z - self.true_focus_um()

    # Rendering --------------------------------------------------------------------------
    def render(self, defocus_um: float) -> np.ndarray:
        """Noise-free float32 image at ``defocus_um`` (cached to 1 nm; do not modify it).

        Parameters
        ----------
        defocus_um : float
            Defocus ``z − true focus``, in µm.

        Returns
        -------
        image : (Y, X) ndarray of float32
            The read-only noise-free image.
        """
        key = round(float(defocus_um) / CACHE_QUANTUM_UM)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return cached
        stack = render_stack(
            self.sample.values,
            self._render_optics,
            [key * CACHE_QUANTUM_UM],
            shape=self.shape,
            sample_pixel_size_um=self.sample.pixel_size_um,
            photons=None,
        )
        image = np.asarray(stack.data[0])
        image.flags.writeable = False
        self.renders += 1
        self._cache[key] = image
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
        return image

    def clear_cache(self) -> None:
        """Drop the cached renders."""
        self._cache.clear()

    def _image_at(self, z_um: float) -> np.ndarray:
        image = self.render(z_um - self.true_focus_um())
        if self.photons is None:
            return image.copy()
        if self._reference_mean is None:
            # Fixed exposure: `photons` e⁻/pixel on average in focus, whatever the z.
            self._reference_mean = float(self.render(0.0).mean(dtype=np.float64))
        mean = float(image.mean(dtype=np.float64))
        rng = np.random.default_rng([self.seed, 0x5C09E, self._total_exposures])
        if not (mean > 0 and self._reference_mean > 0):
            raise ConfigError("the rendered image is black; cannot expose it (check the sample)")
        photons = self.photons * mean / self._reference_mean
        return apply_camera(image, self._render_optics.camera, photons, seed=rng)

    def __repr__(self) -> str:
        lo, hi = self.z_limits_um
        return (
            f"SimulatedScope(preset={self.preset.name!r}, shape={self.shape}, z_um={self._z:g}, "
            f"z_limits_um=({lo:g}, {hi:g}), exposures={self.exposures}, moves={self.moves})"
        )
