"""Focal-stack rendering: uniform defocus, defocus maps, drift between planes, camera.

The field of view is rendered inside a margin wide enough for the most defocused
blur (and the lateral walk of an off-axis LED image with z), then cropped, so FFT
wrap-around never reaches the pixels returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage

from focuskit._errors import ConfigError
from focuskit.optics import (
    DPC,
    LED,
    Brightfield,
    LEDPattern,
    Optics,
    ProgressCallback,
    image_stack,
)
from focuskit.simulate._camera import apply_camera

Shape2D = tuple[int, int]


@dataclass(frozen=True)
class Drift:
    """Lateral drift and rotation of the sample between consecutive planes.

    Plane ``k`` is displaced by ``k · step + random walk(jitter)`` (µm, (dy, dx)) and
    rotated by ``k · rotation_deg_per_plane`` about the field centre (counter-clockwise
    as displayed with y down, as ``skimage.transform.rotate``). Plane 0 is the reference.

    Attributes
    ----------
    step_um : tuple of float, optional
        Steady (dy, dx) displacement per plane, in µm (default (0, 0)).
    jitter_um : float, optional
        Standard deviation of each step of the random walk, in µm, >= 0 (default 0).
    rotation_deg_per_plane : float, optional
        Rotation per plane, in degrees, within ±5 (default 0).

    Raises
    ------
    ConfigError
        If ``jitter_um`` is negative or the rotation exceeds ±5° per plane.
    """

    step_um: tuple[float, float] = (0.0, 0.0)
    jitter_um: float = 0.0
    rotation_deg_per_plane: float = 0.0

    def __post_init__(self) -> None:
        if self.jitter_um < 0:
            raise ConfigError(f"drift jitter must be >= 0 µm, got {self.jitter_um}")
        if abs(self.rotation_deg_per_plane) > 5:
            raise ConfigError(
                "drift rotation per plane must be within ±5° (it is meant to be small)"
            )

    def offsets(self, n_planes: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Per-plane ``(dy_um, dx_um, rotation_deg)``, shape (n_planes, 3).

        Parameters
        ----------
        n_planes : int
            Number of planes.
        seed : int or numpy.random.Generator, optional
            Seed or generator of the random walk.

        Returns
        -------
        offsets : (n_planes, 3) ndarray
            Displacement (dy, dx) in µm and rotation in degrees of each plane; row 0 is zero.
        """
        rng = np.random.default_rng(seed)
        k = np.arange(n_planes, dtype=np.float64)[:, None]
        walk = np.cumsum(rng.normal(0.0, self.jitter_um, size=(n_planes, 2)), axis=0)
        walk -= walk[0]
        shift = k * np.asarray(self.step_um, dtype=np.float64)[None, :] + walk
        rot = k[:, 0] * self.rotation_deg_per_plane
        return np.column_stack([shift, rot])


@dataclass
class SimulatedStack:
    """A rendered focal stack and everything known about it (becomes an io.FocalStack).

    Attributes
    ----------
    data : (Z, Y, X) ndarray
        Noise-free float32 intensities, or camera counts (uint8 / uint16).
    z_um : (Z,) ndarray
        Focal-plane position of each plane, in µm.
    pixel_size_um : float
        Pixel size at the sample, in µm.
    optics : Optics
        The microscope that imaged it.
    focus_z_um : float or None
        z of the in-focus plane, in µm (with a defocus map: where the field's median pixel
        is in focus).
    metadata : dict
        Render settings (``render``), drift offsets (``drift``) and other provenance.
    """

    data: np.ndarray
    z_um: np.ndarray
    pixel_size_um: float
    optics: Optics
    focus_z_um: float | None
    metadata: dict[str, Any] = field(default_factory=dict)


def max_illumination_na(optics: Optics) -> float:
    """Largest illumination NA of the source (0 for fluorescence)."""
    ill = optics.illumination
    if isinstance(ill, LED):
        return math.hypot(ill.sx, ill.sy)
    if isinstance(ill, LEDPattern):
        return max(math.hypot(sx, sy) for sx, sy, _ in ill.leds)
    if isinstance(ill, DPC):
        return ill.na_outer
    if isinstance(ill, Brightfield):
        return ill.na_condenser
    return 0.0


def blur_margin_um(optics: Optics, max_abs_defocus_um: float) -> float:
    """How far light from outside the field can reach it at a given defocus (µm).

    Geometric cone radius ``|z|·tan(asin(NA/n))`` plus the lateral walk of an oblique
    source ``|z|·tan(asin(s/n))`` plus four Airy radii of diffraction ringing.

    Parameters
    ----------
    optics : Optics
        The microscope (NA, immersion index, wavelength, illumination NA ``s``).
    max_abs_defocus_um : float
        Largest ``|z|`` rendered, in µm.

    Returns
    -------
    margin : float
        Margin, in µm, to pad on every side of the field.
    """
    n = optics.n
    cone = max_abs_defocus_um * math.tan(math.asin(min(optics.na / n, 0.999)))
    walk = max_abs_defocus_um * math.tan(math.asin(min(max_illumination_na(optics) / n, 0.999)))
    return cone + walk + 4 * optics.wavelength_um / optics.na


def padded_shape(
    shape: Shape2D, pixel_size_um: float, margin_um: float, *, max_factor: float = 3.0
) -> Shape2D:
    """FFT-friendly shape holding ``shape`` plus ``margin_um`` on every side (capped).

    Parameters
    ----------
    shape : tuple of int
        (Y, X) shape of the field of view.
    pixel_size_um : float
        Pixel size, in µm.
    margin_um : float
        Margin to add on every side, in µm.
    max_factor : float, optional
        Cap: no side grows beyond ``max_factor`` × its size (default 3).

    Returns
    -------
    shape : tuple of int
        Padded (Y, X) shape, each side a fast FFT length.
    """
    out = []
    for n in shape:
        m = min(math.ceil(margin_um / pixel_size_um), int(n * (max_factor - 1) / 2))
        out.append(scipy.fft.next_fast_len(n + 2 * m))
    return out[0], out[1]


def oversampling(optics: Optics, pixel_size_um: float | None = None) -> int:
    """Sub-pixels per camera pixel (per axis) needed to sample the pupil NA/λ.

    A camera pixel coarser than λ/(2·NA) cannot hold the coherent field; we then render
    on pixels ``k`` times finer and integrate each camera pixel over its k × k sub-pixels
    (which also gives the camera's pixel-integration blur and its aliasing).

    Parameters
    ----------
    optics : Optics
        The microscope.
    pixel_size_um : float, optional
        Image pixel at the sample, in µm; default ``optics.pixel_size_um``.

    Returns
    -------
    k : int
        Sub-pixels per pixel along each axis, >= 1.
    """
    dx = optics.pixel_size_um if pixel_size_um is None else pixel_size_um
    return max(1, math.ceil(optics.na / optics.wavelength_um * 2 * dx / 0.98))


def _bin(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return a
    z, y, x = a.shape
    return a.reshape(z, y // k, k, x // k, k).mean(axis=(2, 4), dtype=np.float32)


def _fit_to(values: np.ndarray, shape: Shape2D) -> np.ndarray:
    """Centre-crop or reflect-pad a 2-D array to ``shape``."""
    for axis, n in enumerate(shape):
        size = values.shape[axis]
        if size > n:
            start = (size - n) // 2
            values = np.take(values, np.arange(start, start + n), axis=axis)
        elif size < n:
            before = (n - size) // 2
            pad = [(0, 0), (0, 0)]
            pad[axis] = (before, n - size - before)
            values = np.pad(values, pad, mode="symmetric")
    return values


def _crop(a: np.ndarray, shape: Shape2D) -> np.ndarray:
    y0 = (a.shape[-2] - shape[0]) // 2
    x0 = (a.shape[-1] - shape[1]) // 2
    return a[..., y0 : y0 + shape[0], x0 : x0 + shape[1]]


def move_image(
    image: np.ndarray, dy_px: float, dx_px: float, rotation_deg: float, *, order: int = 3
) -> np.ndarray:
    """Rotate the content about the image centre, then move it by ``(dy, dx)`` pixels.

    Content rotated by ``rotation_deg`` about the image centre (counter-clockwise on
    screen, as ``skimage.transform.rotate``), then moved by ``(dy, dx)`` pixels; a spline
    of ``order`` (3: cubic) with mirrored edges. The convention of :class:`Drift`.

    Parameters
    ----------
    image : (Y, X) array
        The image to move.
    dy_px, dx_px : float
        Shift of the content, pixels (rows down, columns right).
    rotation_deg : float
        Rotation about ``((Y − 1)/2, (X − 1)/2)``, degrees.
    order : int
        Spline order of the resampling (``scipy.ndimage.affine_transform``).

    Returns
    -------
    moved : (Y, X) array
        The moved image, the image's dtype.
    """
    c = (np.asarray(image.shape, dtype=np.float64) - 1) / 2
    th = math.radians(rotation_deg)
    # affine_transform maps output (row, col) q to input p = inv·q + offset, with
    # p = R(−θ)(q − c − shift) + c; in (row, col) with rows pointing down this turns the
    # content counter-clockwise on screen, as skimage.transform.rotate does.
    inv = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
    offset = c - inv @ (c + np.array([dy_px, dx_px]))
    return scipy.ndimage.affine_transform(image, inv, offset=offset, order=order, mode="reflect")


@dataclass
class RenderPlan:
    """What a render needs, decided before any light is computed.

    ``grid`` holds the uniform defocus planes to render (the stack's own defocus, or a
    fine grid to interpolate a defocus map from); ``render_shape`` is the padded field at
    the render pixel, which a generated sample should fill.

    Attributes
    ----------
    defocus : (Z,) ndarray
        Defocus ``z − focus_z`` of each plane of the stack, in µm.
    grid : ndarray
        Uniform defocus planes to render, in µm.
    offsets : (Z, 3) ndarray or None
        Drift per plane, ``(dy_um, dx_um, rotation_deg)`` (see :meth:`Drift.offsets`).
    defocus_map_um : (Y, X) ndarray of float32 or None
        Extra defocus per pixel, in µm.
    oversampling : int
        Sub-pixels per camera pixel per axis (:func:`oversampling`).
    work_shape : tuple of int
        Padded (Y, X) field at the image pixel.
    render_shape : tuple of int
        Padded (Y, X) field at the render pixel, ``work_shape × oversampling``.
    noise_rng : numpy.random.Generator
        Generator of the camera noise.
    """

    defocus: np.ndarray
    grid: np.ndarray
    offsets: np.ndarray | None
    defocus_map_um: np.ndarray | None
    oversampling: int
    work_shape: Shape2D
    render_shape: Shape2D
    noise_rng: np.random.Generator


def plan_render(
    optics: Optics,
    z_um: np.ndarray,
    shape: Shape2D,
    *,
    pixel_size_um: float | None = None,
    focus_z_um: float = 0.0,
    defocus_map_um: np.ndarray | None = None,
    drift: Drift | None = None,
    seed: int | None = 0,
) -> RenderPlan:
    """Decide the defocus grid, drift offsets, margin and render shape of a stack.

    With a defocus map the grid spans every pixel's defocus with a step ≤ DOF/4 and ≤ the
    stack step; the margin is :func:`blur_margin_um` of the largest defocus plus the drift.

    Parameters
    ----------
    optics : Optics
        The microscope.
    z_um : ndarray
        Focal-plane positions, in µm.
    shape : tuple of int
        (Y, X) shape of the output images.
    pixel_size_um : float, optional
        Image pixel at the sample, in µm; default ``optics.pixel_size_um``.
    focus_z_um : float, optional
        z of the in-focus plane, in µm (default 0).
    defocus_map_um : (Y, X) ndarray, optional
        Extra defocus per pixel, in µm.
    drift : Drift, optional
        Drift between planes.
    seed : int or None, optional
        Seed of the drift and noise generators (default 0).

    Returns
    -------
    plan : RenderPlan
        The render plan.

    Raises
    ------
    ConfigError
        If the defocus map's shape differs from ``shape``.
    """
    z = np.asarray(z_um, dtype=np.float64).ravel()
    dx = optics.pixel_size_um if pixel_size_um is None else float(pixel_size_um)
    k = oversampling(optics, dx)
    defocus = z - focus_z_um
    drift_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)

    offsets = drift.offsets(z.size, np.random.default_rng(drift_seed)) if drift else None
    drift_um = 0.0
    if offsets is not None:
        half_diag = math.hypot(*shape) / 2 * dx
        drift_um = float(
            np.abs(offsets[:, :2]).max() + np.radians(np.abs(offsets[:, 2]).max()) * half_diag
        )

    dz_map = None
    grid = defocus
    if defocus_map_um is not None:
        dz_map = np.asarray(defocus_map_um, dtype=np.float32)
        if dz_map.shape != tuple(shape):
            raise ConfigError(
                f"defocus map shape {dz_map.shape} must equal the image shape {tuple(shape)}"
            )
        lo, hi = defocus.min() + float(dz_map.min()), defocus.max() + float(dz_map.max())
        step = optics.depth_of_field_um / 4
        if z.size > 1:
            step = min(step, float(np.min(np.abs(np.diff(z)))))
        count = max(2, math.ceil((hi - lo) / step) + 1)
        grid = np.linspace(lo, hi, count) if hi > lo else np.array([lo, lo + step])

    work = padded_shape(shape, dx, blur_margin_um(optics, float(np.max(np.abs(grid)))) + drift_um)
    return RenderPlan(
        defocus=defocus,
        grid=grid,
        offsets=offsets,
        defocus_map_um=dz_map,
        oversampling=k,
        work_shape=work,
        render_shape=(work[0] * k, work[1] * k),
        noise_rng=np.random.default_rng(noise_seed),
    )


def render_stack(
    sample_values: np.ndarray,
    optics: Optics,
    z_um: Sequence[float] | np.ndarray,
    *,
    shape: Shape2D | None = None,
    pixel_size_um: float | None = None,
    sample_pixel_size_um: float | None = None,
    focus_z_um: float = 0.0,
    defocus_map_um: np.ndarray | None = None,
    drift: Drift | None = None,
    photons: float | None = None,
    overexposure: float | None = None,
    seed: int | None = 0,
    progress: ProgressCallback | None = None,
) -> SimulatedStack:
    """Render a focal stack of a thin sample.

    Pixel ``(y, x)`` of plane ``k`` is defocused by ``z_k − focus_z + dz(y, x)``. With a
    defocus map, uniform planes are rendered on a fine z grid (step ≤ DOF/4 and ≤ the
    stack step) and each pixel is interpolated between its two nearest planes (OPTICS.md,
    "Samples"). ``sample_values`` larger than the padded field is centre-cropped, smaller
    is reflect-padded. When the camera pixel undersamples the pupil the stack is rendered
    on finer sub-pixels and binned (:func:`oversampling`); the sample may then be given at
    the camera pixel or, with ``sample_pixel_size_um``, at the render pixel.
    ``photons=None`` returns noise-free float32 intensities;
    otherwise camera counts (``apply_camera``).

    Parameters
    ----------
    sample_values : (Y, X) ndarray
        Emitter map (fluorescence) or complex transmittance (transmitted light).
    optics : Optics
        The microscope.
    z_um : sequence of float or ndarray
        Focal-plane positions, in µm; non-empty and finite.
    shape : tuple of int, optional
        (Y, X) shape of the output; default the sample's shape at the image pixel.
    pixel_size_um : float, optional
        Image pixel at the sample, in µm; default ``optics.pixel_size_um``.
    sample_pixel_size_um : float, optional
        Pixel of ``sample_values``, in µm: the image pixel or the render pixel.
    focus_z_um : float, optional
        z of the in-focus plane, in µm (default 0).
    defocus_map_um : (Y, X) ndarray, optional
        Extra defocus per pixel, in µm (see :mod:`focuskit.simulate` z-maps).
    drift : Drift, optional
        Drift between planes.
    photons : float, optional
        Mean photo-electrons per pixel; None (default) for noise-free intensities.
    overexposure : float, optional
        With ``photons``: expose instead so that the brightest pixel of the stack collects
        this many times the camera's full well (> 1 saturates it, as sparse bright beads
        do at focus).
    seed : int or None, optional
        Seed of drift and noise (default 0).
    progress : callable, optional
        Called as ``progress(done, total)``.

    Returns
    -------
    stack : SimulatedStack
        The rendered stack with its z positions (µm), pixel size (µm), focus and metadata.

    Raises
    ------
    ConfigError
        If the z positions are empty or not finite, the sample pixel is neither the image
        nor the render pixel, or the defocus map has the wrong shape.
    """
    z = np.asarray(z_um, dtype=np.float64).ravel()
    if z.size == 0 or not np.all(np.isfinite(z)):
        raise ConfigError("z positions must be a non-empty list of finite numbers (µm)")
    dx = optics.pixel_size_um if pixel_size_um is None else float(pixel_size_um)
    k = oversampling(optics, dx)
    values = np.asarray(sample_values)
    if sample_pixel_size_um is not None and not math.isclose(sample_pixel_size_um, dx):
        if not math.isclose(sample_pixel_size_um * k, dx, rel_tol=1e-6):
            raise ConfigError(
                f"sample pixel {sample_pixel_size_um} µm must be the image pixel {dx} µm "
                f"or its render pixel {dx / k} µm"
            )
    elif k > 1:  # a sample given at the camera pixel is piecewise constant on sub-pixels
        values = np.repeat(np.repeat(values, k, axis=0), k, axis=1)
    out_shape: Shape2D = (
        tuple(shape) if shape is not None else (values.shape[0] // k, values.shape[1] // k)  # type: ignore[assignment]
    )
    plan = plan_render(
        optics,
        z,
        out_shape,
        pixel_size_um=dx,
        focus_z_um=focus_z_um,
        defocus_map_um=defocus_map_um,
        drift=drift,
        seed=seed,
    )
    defocus, grid, offsets, dz_map = plan.defocus, plan.grid, plan.offsets, plan.defocus_map_um
    work_shape, fine_shape = plan.work_shape, plan.render_shape
    fine_out: Shape2D = (out_shape[0] * k, out_shape[1] * k)
    values = _fit_to(values, fine_shape)
    # Keep only the field of view unless drift needs the margin to move content in from.
    keep = fine_shape if offsets is not None else fine_out
    rendered = image_stack(values, optics, grid, pixel_size_um=dx / k, crop=keep, progress=progress)

    if dz_map is not None:
        if k > 1:
            dz_map = np.repeat(np.repeat(dz_map, k, axis=0), k, axis=1)
        pad = [((w - o) // 2, w - o - (w - o) // 2) for w, o in zip(keep, fine_out, strict=True)]
        # Odd reflection extrapolates a tilt linearly into the margin.
        dz_work = np.pad(dz_map, pad, mode="reflect", reflect_type="odd")
        g0, gstep = grid[0], (grid[-1] - grid[0]) / (grid.size - 1)
        planes = np.empty((z.size, *keep), dtype=np.float32)
        for plane, d in enumerate(defocus):
            pos = np.clip((d + dz_work - g0) / gstep, 0, grid.size - 1)
            i0 = np.minimum(pos.astype(np.intp), grid.size - 2)
            w = (pos - i0).astype(np.float32)
            a = np.take_along_axis(rendered, i0[None], axis=0)[0]
            b = np.take_along_axis(rendered, i0[None] + 1, axis=0)[0]
            planes[plane] = a * (1 - w) + b * w
        rendered = planes

    if offsets is not None:
        for i, (dy, dxu, rot) in enumerate(offsets):
            if dy == dxu == rot == 0:
                continue  # the reference plane stays exactly as rendered
            rendered[i] = move_image(rendered[i], dy * k / dx, dxu * k / dx, rot)

    data = np.ascontiguousarray(_bin(_crop(rendered, fine_out), k))
    if overexposure is not None and not (np.isfinite(overexposure) and overexposure > 0):
        raise ConfigError(f"overexposure must be a number > 0, got {overexposure!r}")
    if photons is not None:
        if overexposure is not None:
            # The brightest pixel (in focus) collects `overexposure` × the full well.
            cam = optics.camera
            full_well = (cam.max_adu - cam.offset_adu) / cam.gain_adu_per_e
            peak = max(float(data.max()), 1e-30)
            photons = overexposure * full_well * float(data.mean(dtype=np.float64)) / peak
        data = apply_camera(data, optics.camera, photons, seed=plan.noise_rng)

    metadata: dict[str, Any] = {
        "render": {
            "focus_z_um": focus_z_um,
            "photons": photons,
            "seed": seed,
            "padded_shape": list(work_shape),
            "oversampling": k,
            "noise": photons is not None,
            "overexposure": overexposure,
        }
    }
    if offsets is not None:
        metadata["drift"] = [
            {"dy_um": float(a), "dx_um": float(b), "rotation_deg": float(c)} for a, b, c in offsets
        ]
    focus = focus_z_um
    if dz_map is not None:
        # The field's median pixel is in focus where z − focus + dz = 0.
        focus = float(focus_z_um - np.median(dz_map))
        metadata["render"]["defocus_map_range_um"] = [float(dz_map.min()), float(dz_map.max())]
    return SimulatedStack(
        data=data,
        z_um=z,
        pixel_size_um=dx,
        optics=optics,
        focus_z_um=focus,
        metadata=metadata,
    )
