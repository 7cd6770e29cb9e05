"""A trained blur-score CNN as a tool: image → blur-score map (one W per 128² patch).

``BlurScorer.load("builtin:blur-cnn" | folder)`` reads a model folder (config.json +
weights.safetensors). ``score_map`` tiles the image with 128² patches on a regular grid
(stride 128 by default; the grid is spread evenly so it spans the whole image),
standardizes each patch and runs the CNN in batches on one or two threads. Scores are
the defocus wavefront ``W`` in waves: lower is sharper.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.fewshot._calibration import BlurCalibration
from focuskit.fewshot._data import CUTOFF_RANGE, PATCH
from focuskit.fewshot._search import DEFAULT_MAX_IMAGES, deepfocus_search
from focuskit.measures import standardize
from focuskit.nn import (
    Number,
    Numbers,
    Section,
    Text,
    TrainedModel,
    build_entry,
    patch_origins,
    torch_threads,
)
from focuskit.optics import OPTICS_TOLERANCE, Optics
from focuskit.scopes import Microscope
from focuskit.search import SearchResult

# What a blur-CNN model folder's config.json holds (checked before anything is built).
SCHEMA = Section(
    required={
        "architecture": Section(
            required={
                "channels": Numbers(item=Number(lo=1, hi=4096, whole=True), max_length=16),
                "waves_scale": Number(lo=0, lo_open=True),
            }
        )
    },
    optional={
        "patch": Number(lo=PATCH, hi=PATCH, whole=True),
        "score": Text(),
        "cutoff_range": Numbers(item=Number(lo=0, lo_open=True), length=2, increasing=True),
    },
)
SCORE = "defocus wavefront at the pupil edge W = z·(n − √(n² − NA²))/λ, in waves (lower is sharper)"


def _cut_patches(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The standardized 128² patches of ``image`` at row/column origins ``ys``×``xs``,
    (len(ys)·len(xs), 128, 128) float32; ConfigError on NaN/inf."""
    img = np.asarray(image).astype(np.float32, copy=False)
    if not np.isfinite(img).all():
        raise ConfigError("the image contains NaN or inf; replace them before scoring")
    view = np.lib.stride_tricks.sliding_window_view(img, (PATCH, PATCH))
    return standardize(view[ys[:, None], xs[None, :]].reshape(-1, PATCH, PATCH))


def _native_bf16() -> bool:
    """Whether this CPU computes bfloat16 convolutions natively (oneDNN: AVX512-BF16, AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


class BlurScorer(TrainedModel):
    """The DeepFocus blur score (Shajkofci & Liebling §2.2) from a trained :class:`BlurCNN`.

    ``score_map(image)`` gives the defocus wavefront ``W`` (waves, lower = sharper) of every
    128² patch; one network serves any objective whose cutoff ``NA·p/λ`` lies in
    ``cutoff_range``, since a calibration stack per objective (:class:`BlurCalibration`)
    sets the axial scale. ``autofocus(scope, calibration)`` runs the few-image search.

    Parameters
    ----------
    net : BlurCNN
        The trained network: (N, 1, 128, 128) standardized patches → (N,) ``W`` (waves).
    cutoff_range : (float, float)
        The objectives' ``NA·pixel/λ`` the network was trained for (cycles per pixel).
    metadata : dict, optional
        How it was trained (saved in config.json).
    num_threads : int
        torch threads for inference.
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of inference (the attribute may be changed later). ``"auto"``: bfloat16
        where the CPU computes it natively (AVX512-BF16 or AMX: about 1.6× faster for a
        2048² map, scores within 1 % of float32's: 0.8 % at most on a noise image),
        else float32. Training is always float32.

    References
    ----------
    .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
           using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
           §2.2.
    """

    kind = "blur-cnn"
    title = "blur-score CNN"
    cli = "fewshot"
    schema = SCHEMA

    def __init__(
        self,
        net: Any,
        *,
        cutoff_range: tuple[float, float] = CUTOFF_RANGE,
        metadata: dict[str, Any] | None = None,
        num_threads: int = 2,
        precision: str = "auto",
    ) -> None:
        self.net = net
        self.cutoff_range = (float(cutoff_range[0]), float(cutoff_range[1]))
        self.metadata = dict(metadata or {})
        self.num_threads = num_threads
        self.precision = precision
        self.optics = None  # any objective: the calibration stack sets the scale
        self.source = ""
        # (net, weights version, dtype, fused network)
        self._inference: tuple[Any, int, Any, Any] | None = None

    # --------------------------------------------------------------------------- files
    def networks(self) -> dict[str, Any]:
        return {"net": self.net}

    def config(self) -> dict[str, Any]:
        return {
            "architecture": self.net.config.to_dict(),
            "patch": PATCH,
            "score": SCORE,
            "cutoff_range": list(self.cutoff_range),
        }

    @classmethod
    def from_folder(
        cls,
        path: Path,
        config: dict[str, Any],
        tensors: dict[str, dict[str, np.ndarray]],
        *,
        num_threads: int = 2,
    ) -> BlurScorer:
        import torch

        from focuskit.fewshot._network import BlurCNN, BlurCNNConfig

        arch = build_entry(config, "architecture", BlurCNNConfig.from_dict)
        # Folders saved before focuskit 0.2 kept the network's parameters unprefixed.
        if "net" not in tensors:
            tensors = {
                "net": {f"{k}.{n}": v for k, group in tensors.items() for n, v in group.items()}
            }
        net = cls.load_network(lambda: BlurCNN(arch), tensors, "net", path)
        net = net.eval().to(memory_format=torch.channels_last)
        skip = {"kind", "focuskit_version", "architecture", "patch", "score", "cutoff_range"}
        return cls(
            net,
            cutoff_range=tuple(config.get("cutoff_range", CUTOFF_RANGE)),  # type: ignore[arg-type]
            metadata={k: v for k, v in config.items() if k not in skip},
            num_threads=num_threads,
        )

    # ------------------------------------------------------------------------- checks
    def check_optics(
        self,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        *,
        force: bool = False,
    ) -> list[str]:
        """Notes when the objective is outside what the CNN was trained on.

        Notes (never a refusal: any objective works once calibrated) when the objective
        is outside what the CNN was trained on: its cutoff ``NA·p/λ`` should lie in
        ``cutoff_range``; outside it the score is less sample-invariant.

        Parameters
        ----------
        optics : Optics, optional
            The objective and camera (None: one note saying the score is used as is).
        pixel_size_um : float, optional
            Camera pixel size (µm; default the optics').
        force : bool
            Accepted for the common model interface; there is nothing to override here.

        Returns
        -------
        notes : list of str
            Empty when the cutoff is inside ``cutoff_range``.

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2 and Table 1 (sample invariance).
        """
        if optics is None:
            return [
                "no optics given: the score is used as is (the calibration stack sets its scale)"
            ]
        p = pixel_size_um if pixel_size_um is not None else optics.pixel_size_um
        c = optics.na * p / optics.wavelength_um
        lo, hi = self.cutoff_range
        if not lo <= c <= hi:
            return [
                f"NA·pixel/λ = {c:.3f} is outside the trained range [{lo:g}, {hi:g}]: expect a "
                "less sample-invariant score (bin the image, "
                "or fine-tune with `focuskit fewshot train`)"
            ]
        return []

    # ---------------------------------------------------------------------- inference
    def patches(
        self, image: np.ndarray, stride: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardized patches (ny·nx, 128, 128) and their row/column origins.

        The grid of 128² patches is spread evenly so it spans the whole image.

        Parameters
        ----------
        image : ndarray
            One 2-D real image, at least 128² pixels, finite.
        stride : int, optional
            Step between patch origins (pixels, ≥ 1; default 128).

        Returns
        -------
        tiles : ndarray
            (ny·nx, 128, 128) float32 patches, each zero mean / unit SD.
        ys : ndarray
            (ny,) row origins (pixels).
        xs : ndarray
            (nx,) column origins (pixels).

        Raises
        ------
        ConfigError
            When the image is not 2-D, not real, holds NaN/inf, or ``stride`` < 1.
        """
        img = np.asarray(image)
        if img.ndim != 2:
            raise ConfigError(
                f"blur score needs one 2-D image, got shape {img.shape}; "
                "pick a plane or convert RGB to grey"
            )
        if not np.issubdtype(img.dtype, np.number) or np.iscomplexobj(img):
            raise ConfigError(f"blur score needs real-valued pixels, got dtype {img.dtype}")
        stride = PATCH if stride is None else int(stride)
        if stride < 1:
            raise ConfigError(f"stride must be ≥ 1 pixel, got {stride}")
        ys, xs = (
            patch_origins(img.shape[0], stride, PATCH),
            patch_origins(img.shape[1], stride, PATCH),
        )
        return _cut_patches(img, ys, xs), ys, xs

    def score_map_blocks(
        self, plane: Any, stride: int | None = None, block_patches: int = 16
    ) -> np.ndarray:
        """:meth:`score_map` of a plane too large to hold: the same patches, read region by
        region.

        The patch grid is the whole plane's (:meth:`patches`); it is cut into groups of
        ``block_patches`` × ``block_patches`` patches, and each group's region (about
        2048² pixels at the defaults) is read, cut into its patches and scored as one Dask
        task — on the scheduler that is active (``focuskit.io.compute_context``). The map
        equals :meth:`score_map` of the whole plane; memory holds a few regions.

        Parameters
        ----------
        plane : array_like
            One 2-D plane that slices lazily (a ``dask.array.Array``, a zarr array, …).
        stride : int, optional
            Step between patch origins (pixels; default 128).
        block_patches : int
            Patches per region along each axis (≥ 1).

        Returns
        -------
        score_map : ndarray
            (n_rows, n_cols) float64 ``W`` per patch (waves).

        Raises
        ------
        ConfigError
            When the plane is not 2-D, ``stride`` or ``block_patches`` < 1, or a region
            holds NaN/inf.
        """
        import dask

        shape = tuple(int(n) for n in np.shape(plane))
        if len(shape) != 2:
            raise ConfigError(f"blur score needs one 2-D image, got shape {shape}")
        stride = PATCH if stride is None else int(stride)
        if stride < 1 or block_patches < 1:
            raise ConfigError(
                f"stride and block_patches must be ≥ 1, got {stride} and {block_patches}"
            )
        ys, xs = patch_origins(shape[0], stride, PATCH), patch_origins(shape[1], stride, PATCH)

        def group(gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
            y0, x0 = int(gy[0]), int(gx[0])
            region = np.asarray(plane[y0 : int(gy[-1]) + PATCH, x0 : int(gx[-1]) + PATCH])
            tiles = _cut_patches(region, gy - y0, gx - x0)
            return self.score_patches(tiles).reshape(gy.size, gx.size)

        rows = [ys[i : i + block_patches] for i in range(0, ys.size, block_patches)]
        cols = [xs[j : j + block_patches] for j in range(0, xs.size, block_patches)]
        tasks = [[dask.delayed(group)(gy, gx) for gx in cols] for gy in rows]
        (blocks,) = dask.compute(tasks)
        return np.block(blocks)

    def score_patches(self, patches: np.ndarray, batch: int = 256) -> np.ndarray:
        """The blur score of standardized patches, run through the CNN in batches.

        Parameters
        ----------
        patches : ndarray
            (N, 128, 128) standardized patches (as :meth:`patches` cuts them).
        batch : int
            Patches per forward pass.

        Returns
        -------
        w : ndarray
            (N,) float64 defocus wavefront ``W`` (waves, lower = sharper).

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2.
        """
        import torch

        x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))
        with torch_threads(self.num_threads), torch.inference_mode():
            net = self._inference_net()
            dtype = next(net.parameters()).dtype
            out = [
                net(
                    x[i : i + batch]
                    .unsqueeze(1)
                    .to(dtype)
                    .contiguous(memory_format=torch.channels_last)
                )
                for i in range(0, len(x), batch)
            ]
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def inference_dtype(self) -> Any:
        """The torch dtype :attr:`precision` resolves to on this CPU.

        Returns
        -------
        dtype : torch.dtype
            ``torch.bfloat16`` or ``torch.float32``.

        Raises
        ------
        ConfigError
            When ``precision`` is not "auto", "float32" or "bfloat16".
        """
        import torch

        if self.precision not in ("auto", "float32", "bfloat16"):
            raise ConfigError(
                f"precision must be 'auto', 'float32' or 'bfloat16', got {self.precision!r}"
            )
        if self.precision == "auto":
            return torch.bfloat16 if _native_bf16() else torch.float32
        return getattr(torch, self.precision)

    def _inference_net(self) -> Any:
        """The network for inference: batch norms folded into the convolutions before them
        (``w' = w·γ/√(σ² + ε)``, ``b' = β − μ·γ/√(σ² + ε)``) and weights in channels-last
        layout, about 1.5× faster on a CPU than the network as trained, same outputs to
        float rounding; in bfloat16 where :meth:`inference_dtype` says so (another 2×).
        Rebuilt when the network, its weights (fine-tuning) or the precision change."""
        import copy

        import torch

        version = sum(t._version for t in (*self.net.parameters(), *self.net.buffers()))
        dtype = self.inference_dtype()
        cached = self._inference
        if cached is not None and cached[:3] == (self.net, version, dtype):
            return cached[3]
        try:
            with warnings.catch_warnings():  # torch.fx's import touches deprecated torch.jit
                warnings.simplefilter("ignore", DeprecationWarning)
                from torch.fx.experimental.optimization import fuse

                with torch.no_grad():
                    fused = fuse(copy.deepcopy(self.net).eval())
            fused = fused.to(memory_format=torch.channels_last)
        except Exception:  # an architecture fx cannot trace: the network as it is
            fused = copy.deepcopy(self.net).eval()
        fused = fused.to(dtype)
        self._inference = (self.net, version, dtype, fused)
        return fused

    def score_map(self, image: np.ndarray, stride: int | None = None) -> np.ndarray:
        """Blur score per patch, shape (n_rows, n_cols); W in waves, lower = sharper.

        Parameters
        ----------
        image : ndarray
            One 2-D real image, at least 128² pixels.
        stride : int, optional
            Step between patch origins (pixels; default 128).

        Returns
        -------
        score_map : ndarray
            (n_rows, n_cols) float64 ``W`` per patch (waves).

        Raises
        ------
        ConfigError
            When the image is not a finite real 2-D image.

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2.
        """
        tiles, ys, xs = self.patches(image, stride)
        return self.score_patches(tiles).reshape(len(ys), len(xs))

    def score(
        self,
        image: np.ndarray,
        stride: int | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> float:
        """Mean blur score over a region of interest.

        Mean blur score over the region of interest ``(y0, y1, x0, x1)`` in pixels
        (default: the whole image; the ROI must hold at least one 128² patch).

        Parameters
        ----------
        image : ndarray
            One 2-D real image.
        stride : int, optional
            Step between patch origins (pixels; default 128).
        roi : (int, int, int, int), optional
            ``(y0, y1, x0, x1)`` in pixels, ``y0 < y1`` and ``x0 < x1``.

        Returns
        -------
        score : float
            Mean ``W`` over the patches (waves, lower = sharper).

        Raises
        ------
        ConfigError
            When the ROI is malformed or the image is not a finite real 2-D image.
        """
        if roi is not None:
            y0, y1, x0, x1 = (int(v) for v in roi)
            if not (0 <= y0 < y1 and 0 <= x0 < x1):
                raise ConfigError(
                    f"roi {roi} must be (y0, y1, x0, x1) with y0 < y1 and x0 < x1, in pixels"
                )
            image = np.asarray(image)[y0:y1, x0:x1]
        return float(self.score_map(image, stride).mean())

    def predict(
        self,
        image: np.ndarray,
        *,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        force: bool = False,
        stride: int | None = None,
    ) -> np.ndarray:
        """The blur-score map of one image (:meth:`score_map`) — every model's ``predict``.

        The optics only give notes here (see :meth:`check_optics`).

        Parameters
        ----------
        image : ndarray
            One 2-D real image.
        optics : Optics, optional
            Not used: any objective works once calibrated.
        pixel_size_um : float, optional
            Not used (µm).
        force : bool
            Not used.
        stride : int, optional
            Step between patch origins (pixels; default 128).

        Returns
        -------
        score_map : ndarray
            (n_rows, n_cols) ``W`` per patch (waves, lower = sharper).
        """
        return self.score_map(image, stride)

    def autofocus(
        self,
        scope: Microscope,
        calibration: BlurCalibration | str | os.PathLike[str],
        *,
        max_images: int = DEFAULT_MAX_IMAGES,
        **settings: Any,
    ) -> SearchResult:
        """Few-shot autofocus on ``scope`` with this score and an objective's calibration.

        Parameters
        ----------
        scope : Microscope
            The microscope to focus (stage z in µm).
        calibration : BlurCalibration or path
            The objective's calibration (``focuskit fewshot calibrate``).
        max_images : int
            Image budget (default 8: three for the estimate, the rest to verify it
            by bracketing the sharpest position; see :func:`deepfocus_search`).
        **settings
            Passed to :func:`deepfocus_search` (``range_um``, ``roi``, ``spread_fwhm`` …;
            ``PAPER_SETTINGS`` gives the paper's choices).

        Returns
        -------
        SearchResult
            Its ``notes`` say when the objective is outside the CNN's training range or the
            calibration was made at another pixel size.

        Raises
        ------
        ConfigError
            When the calibration file cannot be read or a setting is invalid.

        References
        ----------
        .. [1] Shajkofci, A. & Liebling, M. DeepFocus: a few-shot microscope slide auto-focus
               using a sample invariant CNN-based sharpness function. arXiv:2001.00667 (2020),
               §2.2 (steps 1–7) and Fig. 4.
        """
        if isinstance(calibration, str) and calibration == "physical":
            pass  # deepfocus_search builds it from the scope's optics
        elif not isinstance(calibration, BlurCalibration):
            calibration = BlurCalibration.load(calibration)
        notes = (
            self.check_optics(scope.optics, scope.pixel_size_um) if scope.optics is not None else []
        )
        if (
            isinstance(calibration, BlurCalibration)
            and calibration.pixel_size_um
            and not math.isclose(
                calibration.pixel_size_um, scope.pixel_size_um, rel_tol=OPTICS_TOLERANCE
            )
        ):
            notes.append(
                f"the calibration was made at {calibration.pixel_size_um:g} µm pixels, this scope "
                f"has {scope.pixel_size_um:g} µm: calibrate on this objective"
            )
        result = deepfocus_search(
            scope,
            score_map=self.score_map,
            calibration=calibration,
            max_images=max_images,
            **settings,
        )
        result.notes = notes + result.notes
        return result
