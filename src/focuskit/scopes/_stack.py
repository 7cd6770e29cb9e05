"""Replay a recorded focal stack as a microscope: the stage moves through its planes."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.io import FocalStack, read_stack
from focuskit.scopes._base import (
    DEFAULT_EXPOSURE_TIME_S,
    DEFAULT_MOVE_OVERHEAD_S,
    DEFAULT_STAGE_SPEED_UM_S,
    BaseScope,
)


class StackScope(BaseScope):
    """A microscope that replays a focal stack (simulated or real).

    The stage's z limits are the stack's z range. ``snap()`` at z returns the plane whose
    z is nearest (``interpolate=False``; native dtype, the lower-index plane on a tie) or
    the linear blend of the two planes bracketing z (``interpolate=True``; float32), for
    any strictly monotonic z, uneven or decreasing.

    Parameters
    ----------
    stack : FocalStack or str or os.PathLike
        A :class:`FocalStack`, or a path read with ``focuskit.io.read_stack``
        (``read_options`` such as ``pixel_size_um``, ``z_um``, ``z_step_um``,
        ``rgb="gray"`` pass through).
    interpolate : bool, optional
        Blend the two bracketing planes (default True) or take the nearest one.
    start_z_um : float, optional
        Start position, in µm; default: the middle of the z range.
    max_step_um : float, optional
        Largest single move, in µm (None: no limit).
    noise : float, optional
        None (replay exactly), or the standard deviation of Gaussian noise added fresh to
        each snap, in the stack's intensity units (the output is then float32); seeded
        from ``seed`` and the exposure count.
    seed : int, optional
        Seed of the noise, ≥ 0 (default 0).
    exposure_time_s, move_overhead_s, stage_speed_um_s, stage_resolution_um : float
        Timing model and drive step (:class:`BaseScope`; s, s, µm/s, µm).
    **read_options
        Options of :func:`focuskit.io.read_stack` when ``stack`` is a path.

    Raises
    ------
    ConfigError
        If ``stack`` is not a FocalStack or a path, read options come with a FocalStack, or
        ``noise``, ``seed`` or a stage setting is invalid.
    StackFileError
        If the stack file cannot be read.
    """

    def __init__(
        self,
        stack: FocalStack | str | os.PathLike[str],
        *,
        interpolate: bool = True,
        start_z_um: float | None = None,
        max_step_um: float | None = None,
        noise: float | None = None,
        seed: int = 0,
        exposure_time_s: float = DEFAULT_EXPOSURE_TIME_S,
        move_overhead_s: float = DEFAULT_MOVE_OVERHEAD_S,
        stage_speed_um_s: float = DEFAULT_STAGE_SPEED_UM_S,
        stage_resolution_um: float | None = None,
        **read_options: Any,
    ) -> None:
        if isinstance(stack, (str, os.PathLike)):
            stack = read_stack(Path(stack), **read_options)
        elif read_options:
            raise ConfigError(
                f"{', '.join(sorted(read_options))} apply when reading a stack from a path, "
                "not to a FocalStack"
            )
        if not isinstance(stack, FocalStack):
            raise ConfigError(f"stack must be a FocalStack or a path, got {type(stack).__name__}")
        if noise is not None and not (math.isfinite(noise) and noise >= 0):
            raise ConfigError(f"noise must be a standard deviation >= 0 or None, got {noise!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        self.stack = stack
        self.interpolate = bool(interpolate)
        self.noise = None if noise is None else float(noise)
        self.seed = int(seed)
        z = np.asarray(stack.z_um, dtype=np.float64)
        lo, hi = float(z.min()), float(z.max())
        super().__init__(
            z_limits_um=(lo, hi),
            start_z_um=(lo + hi) / 2 if start_z_um is None else start_z_um,
            pixel_size_um=stack.pixel_size_um,
            optics=stack.optics,
            max_step_um=max_step_um,
            exposure_time_s=exposure_time_s,
            move_overhead_s=move_overhead_s,
            stage_speed_um_s=stage_speed_um_s,
            stage_resolution_um=stage_resolution_um,
        )
        # Planes sorted by z so bracketing is a searchsorted, whatever the stack's order.
        self._order = np.argsort(z, kind="stable")
        self._z_sorted = z[self._order]

    def true_focus_um(self) -> float | None:
        """The stack's documented in-focus z (``stack.focus_z_um``; may be None).

        For benchmarks and tests only.

        Returns
        -------
        z_um : float or None
            In-focus z, in µm, or None when the stack does not say.
        """
        return self.stack.focus_z_um

    def plane_weights(self, z_um: float) -> list[tuple[int, float]]:
        """The planes (stack indices) and weights that make the image at ``z_um``.

        Parameters
        ----------
        z_um : float
            Focus-drive position, in µm.

        Returns
        -------
        weights : list of (int, float)
            ``(plane index, weight)`` pairs, weights summing to 1 (one pair for the nearest
            plane when ``interpolate`` is False).
        """
        zs = self._z_sorted
        if not self.interpolate or zs.size == 1:
            return [(self.stack.nearest_plane(z_um), 1.0)]
        j = int(np.searchsorted(zs, z_um, side="right"))
        j = min(max(j, 1), zs.size - 1)
        z0, z1 = zs[j - 1], zs[j]
        w = float(np.clip((z_um - z0) / (z1 - z0), 0.0, 1.0))
        i0, i1 = int(self._order[j - 1]), int(self._order[j])
        if w == 0.0:
            return [(i0, 1.0)]
        if w == 1.0:
            return [(i1, 1.0)]
        return [(i0, 1.0 - w), (i1, w)]

    def _image_at(self, z_um: float) -> np.ndarray:
        parts = self.plane_weights(z_um)
        if not self.interpolate and self.noise is None:
            return self.stack.plane(parts[0][0]).copy()
        image = np.zeros(self.stack.shape[1:], dtype=np.float32)
        for i, w in parts:
            image += np.float32(w) * self.stack.plane(i).astype(np.float32, copy=False)
        if self.noise:
            rng = np.random.default_rng([self.seed, 0x57AC, self._total_exposures])
            image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(self.noise)
        return image

    def __repr__(self) -> str:
        lo, hi = self.z_limits_um
        return (
            f"StackScope(planes={len(self.stack)}, z_um={self._z:g}, z_limits_um=({lo:g}, {hi:g}), "
            f"interpolate={self.interpolate}, exposures={self.exposures}, moves={self.moves})"
        )
