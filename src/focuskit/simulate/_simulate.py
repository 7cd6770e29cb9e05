"""One call from a preset name to a rendered focal stack (what `focuskit simulate` runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.optics import Illumination, Optics, Preset, ProgressCallback, get_preset
from focuskit.simulate._render import (
    Drift,
    SimulatedStack,
    plan_render,
    render_stack,
)
from focuskit.simulate._samples import Sample, make_sample
from focuskit.simulate._zmap import cylinder_map, sphere_map, tilt_map


def defocus_map(
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    tilt_deg: float = 0.0,
    tilt_azimuth_deg: float = 90.0,
    cylinder_radius_um: float | None = None,
    cylinder_azimuth_deg: float = 0.0,
    sphere_radius_um: float | None = None,
) -> np.ndarray | None:
    """Sum of the requested tilt / cylinder / sphere maps, or None for a flat sample.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) in pixels.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    tilt_deg : float, optional
        Tilt angle, in degrees (0, the default: no tilt); see :func:`tilt_map`.
    tilt_azimuth_deg : float, optional
        Direction of the tilt, in degrees from +x (default 90: along y).
    cylinder_radius_um : float, optional
        Radius of a cylindrical bend, in µm (< 0: concave); see :func:`cylinder_map`.
    cylinder_azimuth_deg : float, optional
        Direction across which the cylinder bends, in degrees from +x (default 0).
    sphere_radius_um : float, optional
        Radius of a spherical cap, in µm (< 0: concave); see :func:`sphere_map`.

    Returns
    -------
    dz : (Y, X) ndarray of float32 or None
        Defocus per pixel, in µm, or None when no map is requested.

    Raises
    ------
    ConfigError
        If the tilt exceeds ±45° or a radius is smaller than the field of view.
    """
    parts = []
    if tilt_deg:
        parts.append(tilt_map(shape, pixel_size_um, tilt_deg, tilt_azimuth_deg))
    if cylinder_radius_um is not None:
        parts.append(cylinder_map(shape, pixel_size_um, cylinder_radius_um, cylinder_azimuth_deg))
    if sphere_radius_um is not None:
        parts.append(sphere_map(shape, pixel_size_um, sphere_radius_um))
    return np.sum(parts, axis=0).astype(np.float32) if parts else None


def check_sample_matches(sample: Sample, optics: Optics) -> None:
    """Refuse a sample the illumination cannot image (emitters vs a transmittance).

    Parameters
    ----------
    sample : Sample
        The sample to check.
    optics : Optics
        The microscope that will image it.

    Raises
    ------
    ConfigError
        If a fluorescence microscope gets a transmittance, or transmitted light an emitter map.
    """
    if optics.is_fluorescence and sample.kind != "fluorescence":
        raise ConfigError(
            "a fluorescence microscope needs a fluorescent sample (a fluorescence family — "
            "`focuskit samples --modality fluorescence` —, beads, fluorescent-tissue, or an "
            "image used as fluorescence); or override the illumination"
        )
    if not optics.is_fluorescence and sample.kind == "fluorescence":
        raise ConfigError(
            f"{optics.illumination.kind} illumination needs a transmitted-light sample "
            "(a phase or absorption family — `focuskit samples --modality phase` —, cells, "
            "tissue, beads, or an image used as phase or absorption)"
        )


def simulate_stack(
    preset: str | Preset = "fcfnn-20x-led",
    *,
    sample: str | Sample | None = None,
    sample_options: dict[str, Any] | None = None,
    size: int | tuple[int, int] | None = None,
    z_um: Sequence[float] | np.ndarray | None = None,
    illumination: Illumination | None = None,
    focus_z_um: float = 0.0,
    tilt_deg: float = 0.0,
    tilt_azimuth_deg: float = 90.0,
    cylinder_radius_um: float | None = None,
    sphere_radius_um: float | None = None,
    drift: Drift | None = None,
    photons: float | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> SimulatedStack:
    """Simulate a focal stack of ``preset``'s microscope.

    ``sample`` is a generator name (default: the preset's), or a ready :class:`Sample`
    (e.g. from ``load_sample_image``, whose field of view is kept unless ``size`` is
    given). A generated sample fills the padded field, so the margin holds real structure
    rather than a reflection. ``photons=None`` gives
    noise-free float32 intensities; a number gives camera counts at that mean exposure.

    Parameters
    ----------
    preset : str or Preset, optional
        Preset name or object (default ``"fcfnn-20x-led"``).
    sample : str or Sample, optional
        Generator name or ready sample; default the preset's sample.
    sample_options : dict, optional
        Further parameters of the generator.
    size : int or tuple of int, optional
        Image side or (Y, X) in pixels, at least 16; default the preset's size (or a ready
        sample's own shape).
    z_um : sequence of float or ndarray, optional
        Focal-plane positions, in µm; default the preset's.
    illumination : Illumination, optional
        Illumination replacing the preset's.
    focus_z_um : float, optional
        z of the in-focus plane, in µm (default 0).
    tilt_deg : float, optional
        Sample tilt, in degrees (default 0).
    tilt_azimuth_deg : float, optional
        Direction of the tilt, in degrees from +x (default 90).
    cylinder_radius_um : float, optional
        Radius of a cylindrical bend, in µm.
    sphere_radius_um : float, optional
        Radius of a spherical cap, in µm.
    drift : Drift, optional
        Lateral drift and rotation between planes.
    photons : float, optional
        Mean photo-electrons per pixel; None (default) for noise-free intensities.
    seed : int, optional
        Seed of sample, drift and noise (default 0).
    progress : callable, optional
        Called as ``progress(done, total)``.

    Returns
    -------
    stack : SimulatedStack
        The stack, its z positions (µm), pixel size (µm), focus and metadata (preset, sample,
        seed, render settings, defocus map).

    Raises
    ------
    ConfigError
        If the preset is unknown, the size is below 16 pixels, the sample does not fit the
        illumination, or another setting is out of range.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    optics = p.optics if illumination is None else p.optics.with_illumination(illumination)
    dx = optics.pixel_size_um
    if size is None and isinstance(sample, Sample):
        shape = sample.shape  # a user's image keeps its own field of view
    elif size is None:
        shape = (p.size, p.size)
    elif isinstance(size, int):
        shape = (size, size)
    else:
        shape = (int(size[0]), int(size[1]))
    if min(shape) < 16:
        raise ConfigError(f"image size must be at least 16 pixels, got {shape}")
    z = p.z_positions() if z_um is None else np.asarray(z_um, dtype=np.float64)

    dz_map = defocus_map(
        shape,
        dx,
        tilt_deg=tilt_deg,
        tilt_azimuth_deg=tilt_azimuth_deg,
        cylinder_radius_um=cylinder_radius_um,
        sphere_radius_um=sphere_radius_um,
    )
    sample_seed, render_seed = (
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2)
    )
    if sample is None or isinstance(sample, str):
        name = p.default_sample if sample is None else sample
        options = dict(sample_options or {})
        if name == "beads" and "as_" not in options:
            options["as_"] = "fluorescence" if optics.is_fluorescence else "absorption"
        plan = plan_render(
            optics,
            z,
            shape,
            focus_z_um=focus_z_um,
            defocus_map_um=dz_map,
            drift=drift,
            seed=render_seed,
        )
        sample_obj = make_sample(
            name,
            plan.render_shape,
            dx / plan.oversampling,
            seed=sample_seed,
            wavelength_um=optics.wavelength_um,
            **options,
        )
    else:
        sample_obj = sample
    check_sample_matches(sample_obj, optics)

    desc = sample_obj.description
    over = float(desc["overexposure"]) if desc.get("saturate") and "overexposure" in desc else None
    stack = render_stack(
        sample_obj.values,
        optics,
        z,
        shape=shape,
        sample_pixel_size_um=sample_obj.pixel_size_um,
        focus_z_um=focus_z_um,
        defocus_map_um=dz_map,
        drift=drift,
        photons=photons,
        overexposure=over,
        seed=render_seed,
        progress=progress,
    )
    stack.metadata = {
        "preset": p.name,
        "sample": sample_obj.description,
        "seed": seed,
        **stack.metadata,
    }
    if dz_map is not None:
        stack.metadata["defocus_map"] = {
            "tilt_deg": tilt_deg,
            "tilt_azimuth_deg": tilt_azimuth_deg,
            "cylinder_radius_um": cylinder_radius_um,
            "sphere_radius_um": sphere_radius_um,
        }
    return stack
