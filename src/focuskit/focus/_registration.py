"""Registration and extended depth of field of a focal stack (Luo et al. 2021, Methods
"Data pre-processing": ImageJ's StackReg and "Extended Depth of Field"), and the in-focus
plane as the one most similar to the EDOF image.

A focal stack of one field of view is registered plane to plane for rigid stage shifts
and rotations, summarized by an EDOF image, and its in-focus plane chosen by SSIM to it
(per tile, for the pairs Deep-R trains on). numpy / scipy / scikit-image only.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from focuskit._errors import ConfigError
from focuskit.simulate import move_image

# ------------------------------------------------------------------------------ checks


def check_stack(data: Any, what: str = "stack") -> np.ndarray:
    """A finite real (Z, Y, X) array as float32, or a one-line ConfigError naming the problem.

    Parameters
    ----------
    data : array_like
        The stack.
    what : str, optional
        Name of the array in error messages (default ``"stack"``).

    Returns
    -------
    stack : (Z, Y, X) ndarray of float32
        The data (not copied when already float32).

    Raises
    ------
    ConfigError
        If the data is not 3-D, empty, not real numeric, or holds NaN/Inf.
    """
    a = np.asarray(data)
    if a.ndim != 3:
        raise ConfigError(
            f"{what} must be 3-D (Z, Y, X), got shape {a.shape}; stack the planes first"
        )
    if min(a.shape) < 1:
        raise ConfigError(f"{what} is empty (shape {a.shape})")
    if a.dtype.kind not in "uif":
        raise ConfigError(f"{what} must be real numeric, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ConfigError(
            f"{what} contains NaN or inf; replace them (e.g. np.nan_to_num) before use"
        )
    return a


# ------------------------------------------------------------------------ registration


@lru_cache(maxsize=8)
def _hann(shape: tuple[int, int]) -> np.ndarray:
    from skimage.filters import window

    return window("hann", shape).astype(np.float32)


def _shift_between(reference: np.ndarray, moving: np.ndarray, upsample: int) -> np.ndarray:
    """Shift (dy, dx) px that brings ``moving`` onto ``reference``: subpixel cross-correlation
    (``skimage.registration.phase_cross_correlation``, unwhitened, which blurred planes need)
    of the mean-free, Hann-windowed images."""
    w = _hann(reference.shape)  # type: ignore[arg-type]
    a, b = (reference - reference.mean()) * w, (moving - moving.mean()) * w
    if upsample > 1:
        from skimage.registration import phase_cross_correlation

        shift, _, _ = phase_cross_correlation(a, b, upsample_factor=upsample, normalization=None)
        return np.asarray(shift, dtype=np.float64)
    # Whole pixels only (the least-squares refinement follows):
    # the same peak, at a third of the cost.
    cc = np.fft.irfft2(np.fft.rfft2(a) * np.conj(np.fft.rfft2(b)), s=a.shape)
    peak = np.array(np.unravel_index(int(np.argmax(cc)), cc.shape), dtype=np.float64)
    size = np.array(cc.shape, dtype=np.float64)
    return np.where(peak > size // 2, peak - size, peak)


def _refine_rigid(
    target: np.ndarray,
    moving: np.ndarray,
    t: np.ndarray,
    *,
    iterations: int = 5,
    sigma_px: float = 3.0,
) -> np.ndarray:
    """Gauss–Newton refinement of the rigid transform ``t``
    (full pixels) of ``moving`` onto ``target``.

    Minimizes ``Σ (T − a·W_t − b)²`` over the central 90 % (``W_t``: ``moving`` warped by ``t``;
    both smoothed by a σ = ``sigma_px`` Gaussian, which keeps the fit in its capture range and
    stops the changing shape of a defocused spot from biasing it, then binned 2 × 2 on large
    planes; gain ``a`` and offset ``b`` absorb the contrast change between neighbouring planes).
    A content displacement ``d(r) = θ·(−r_x, r_y) + s`` (``r`` from the centre) changes ``W`` by
    ``−∇W·d``.
    """
    b = 2 if min(target.shape) >= 256 else 1

    def prepare(image: np.ndarray) -> np.ndarray:
        sm = ndimage.gaussian_filter(image, sigma_px)
        if b == 1:
            return sm
        h, w = sm.shape[0] // b * b, sm.shape[1] // b * b
        return sm[:h, :w].reshape(h // b, b, w // b, b).mean(axis=(1, 3))

    ref, smooth = prepare(target), prepare(moving)
    ny, nx = ref.shape
    my, mx = ny // 20, nx // 20
    inner = (slice(my, ny - my), slice(mx, nx - mx))
    ry = (np.arange(ny, dtype=np.float32) - (ny - 1) / 2)[inner[0], None]
    rx = (np.arange(nx, dtype=np.float32) - (nx - 1) / 2)[None, inner[1]]
    ref = ref[inner].ravel()
    tb = np.array([t[0] / b, t[1] / b, t[2]])
    for _ in range(iterations):
        w = _warp(smooth, tb, order=1)
        gy, gx = np.gradient(w)
        gy, gx, w = gy[inner], gx[inner], w[inner]
        cols = np.stack(
            [
                -gy.ravel(),
                -gx.ravel(),
                -(gy * -rx + gx * ry).ravel(),
                w.ravel(),
                np.ones(w.size, np.float32),
            ],
            axis=1,
        )
        rhs = ref - w.ravel()
        hess = (cols.T @ cols).astype(np.float64)
        step = np.linalg.solve(hess, (cols.T @ rhs).astype(np.float64))
        tb = _compose(tb, np.array([step[0], step[1], math.degrees(step[2])]))
        if abs(step[0]) + abs(step[1]) < 1e-3 and abs(step[2]) < 1e-5:
            break
    return np.array([tb[0] * b, tb[1] * b, tb[2]])


def _compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """(dy, dx, deg) of ``then`` after ``first`` (each: rotate about the centre, then shift)."""
    th = math.radians(then[2])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    shift = rot @ first[:2] + then[:2]
    return np.array([shift[0], shift[1], first[2] + then[2]])


def _warp(image: np.ndarray, t: np.ndarray, order: int = 3) -> np.ndarray:
    if not t.any():
        return image
    return move_image(image, float(t[0]), float(t[1]), float(t[2]), order=order)


def register_stack(
    data: np.ndarray, *, reference: int | None = None, rotation: bool = True, upsample: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Rigid registration (translation + rotation) of every plane onto plane ``reference``.

    As StackReg, planes are registered one after the other outwards from the reference
    (default the middle plane), each onto its already registered neighbour, so a distant, very
    blurred plane is compared with a similarly blurred one. Plane ``k`` starts from its
    neighbour's transform; the residual translation is the subpixel cross-correlation shift
    (``skimage.registration.phase_cross_correlation``, ``1/upsample`` px) and, with
    ``rotation``, translation and rotation are then refined together by Gauss–Newton least
    squares on the smoothed planes (StackReg's "rigid body" criterion). Each plane is resampled
    once (cubic spline, mirrored edges).

    Returns ``(registered float32 (Z, Y, X), transforms (Z, 3))``; row ``k`` is
    ``(dy_px, dx_px, rotation_deg)``: plane k is rotated by ``rotation_deg`` about the image
    centre (counter-clockwise on screen, as ``skimage.transform.rotate``), then shifted by
    ``(dy, dx)`` — the convention of :class:`focuskit.simulate.Drift`.

    Parameters
    ----------
    data : (Z, Y, X) ndarray
        The stack, real and finite, planes at least 48×48 pixels.
    reference : int, optional
        Index of the reference plane (default the middle plane).
    rotation : bool, optional
        Also estimate rotation (default True); False registers translations only.
    upsample : int, optional
        Subpixel precision ``1/upsample`` px of the cross-correlation, ≥ 1 (default 10).

    Returns
    -------
    registered : (Z, Y, X) ndarray of float32
        The registered planes.
    transforms : (Z, 3) ndarray of float64
        ``(dy_px, dx_px, rotation_deg)`` of each plane; zero for the reference.

    Raises
    ------
    ConfigError
        If the stack is invalid, the reference is out of range, ``upsample`` < 1, or the
        planes are smaller than 48×48.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Data
           pre-processing".
    .. [2] P. Thévenaz, U. E. Ruttimann and M. Unser, "A pyramid approach to subpixel
           registration based on intensity", IEEE Trans. Image Process. 7, 27 (1998) (StackReg).
    .. [3] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient subpixel image
           registration algorithms", Opt. Lett. 33, 156 (2008).
    """
    stack = check_stack(data)
    n = stack.shape[0]
    ref = n // 2 if reference is None else int(reference)
    if not 0 <= ref < n:
        raise ConfigError(
            f"reference plane {reference} is outside the stack's {n} planes; use 0…{n - 1}"
        )
    if int(upsample) < 1:
        raise ConfigError(f"upsample must be ≥ 1 (1/upsample px precision), got {upsample}")
    if min(stack.shape[1:]) < 48:
        raise ConfigError(
            f"planes must be at least 48×48 pixels to register, got {stack.shape[1:]}"
        )
    out = np.empty_like(stack)
    out[ref] = stack[ref]
    transforms = np.zeros((n, 3), dtype=np.float64)
    for order in (range(ref + 1, n), range(ref - 1, -1, -1)):
        for k in order:
            near = k - 1 if k > ref else k + 1
            target, t = out[near], transforms[near].copy()
            # With rotation the least-squares refinement gives the subpixel part.
            shift = _shift_between(target, _warp(stack[k], t, order=1), 1 if rotation else upsample)
            t = _compose(t, np.array([shift[0], shift[1], 0.0]))
            if rotation:
                t = _refine_rigid(target, stack[k], t)
            transforms[k] = t
            out[k] = _warp(stack[k], t)
    return out, transforms


# ------------------------------------------------------------------------ EDOF & focus


def _sharpness_depth(stack: np.ndarray, window_px: int) -> np.ndarray:
    """Per pixel, the index of the sharpest plane, median-smoothed (int (Y, X))."""
    best = np.full(stack.shape[1:], -np.inf, dtype=np.float32)
    depth = np.zeros(stack.shape[1:], dtype=np.int32)
    for k, plane in enumerate(stack):
        # Laplacian of a σ = 1 px Gaussian: the pixel noise alone would otherwise pick planes.
        r = ndimage.gaussian_laplace(plane, 1.0)
        mean = ndimage.uniform_filter(r, window_px)
        var = ndimage.uniform_filter(r * r, window_px) - mean * mean
        better = var > best
        best[better] = var[better]
        depth[better] = k
    return ndimage.median_filter(depth, size=window_px, mode="nearest")


def edof_image(data: np.ndarray, *, window_px: int = 5) -> np.ndarray:
    """Extended-depth-of-field image by sharpness selection (as ImageJ's "Extended Depth of Field").

    Per pixel the plane of highest local sharpness, the variance of the Laplacian of Gaussian
    (σ = 1 px) in a ``window_px`` square; the depth map is median-filtered over the same
    window (no salt-and-pepper), and each pixel takes its value from its plane. float32 (Y, X).

    Parameters
    ----------
    data : (Z, Y, X) ndarray
        The (registered) stack, real and finite.
    window_px : int, optional
        Side of the sharpness and median window, in pixels, ≥ 1 (default 5).

    Returns
    -------
    edof : (Y, X) ndarray of float32
        The extended-depth-of-field image.

    Raises
    ------
    ConfigError
        If the stack is invalid or ``window_px`` < 1.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Data
           pre-processing".
    """
    stack = check_stack(data)
    if int(window_px) < 1:
        raise ConfigError(f"window_px must be ≥ 1 pixel, got {window_px}")
    depth = _sharpness_depth(stack, int(window_px))
    return np.take_along_axis(stack, depth[None], axis=0)[0]


def focus_plane_by_ssim(data: np.ndarray, edof: np.ndarray) -> int:
    """Index of the plane with the highest SSIM to the EDOF image (Luo et al., Methods).

    ``skimage.metrics.structural_similarity`` with ``data_range = max − min`` of the EDOF image.

    Parameters
    ----------
    data : (Z, Y, X) ndarray
        The (registered) stack, real and finite.
    edof : (Y, X) ndarray
        The EDOF image (:func:`edof_image`), the plane shape, at least 7×7.

    Returns
    -------
    plane : int
        Index of the in-focus plane.

    Raises
    ------
    ConfigError
        If the stack is invalid, the EDOF shape differs from the planes', or the planes are
        smaller than 7×7.

    References
    ----------
    .. [1] Y. Luo, L. Huang, Y. Rivenson and A. Ozcan, "Single-shot autofocusing of microscopy
           images using deep learning", ACS Photonics 8, 625 (2021), Methods, "Data
           pre-processing".
    .. [2] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
           from error visibility to structural similarity", IEEE Trans. Image Process. 13,
           600 (2004).
    """
    from skimage.metrics import structural_similarity

    stack = check_stack(data)
    ref = np.asarray(edof, dtype=np.float32)
    if ref.shape != stack.shape[1:]:
        raise ConfigError(
            f"EDOF image shape {ref.shape} must equal the plane shape {stack.shape[1:]}"
        )
    if min(ref.shape) < 7:
        raise ConfigError(f"planes must be at least 7×7 pixels for SSIM, got {ref.shape}")
    data_range = float(ref.max() - ref.min()) or 1.0
    scores = [structural_similarity(plane, ref, data_range=data_range) for plane in stack]
    return int(np.argmax(scores))
