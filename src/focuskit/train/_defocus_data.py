"""Training examples for single-shot defocus prediction (Pinkard et al., Fig. 1a, Note S3).

Each field of view gives two stacks over the same z positions: a coherent one (one LED,
the network's input) and an incoherent one (DPC half annulus) whose high-frequency
power-spectrum maximum is the ground-truth focus. Every tile of every coherent plane is
one example labelled ``z_plane − z_focus``. Train/validation splits are by field.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focuskit._errors import ConfigError
from focuskit.focus import find_focus
from focuskit.io import FocalStack
from focuskit.measures import FourierRegion, fourier_features, split_tiles
from focuskit.optics import DPC, LED, Optics, Preset, get_preset, z_range
from focuskit.simulate import make_sample, plan_render, render_stack


@dataclass
class DefocusExamples:
    """Feature vectors, defocus labels (µm) and the field each came from."""

    features: np.ndarray  # (N, F) float32
    z_um: np.ndarray  # (N,) float32
    field: np.ndarray  # (N,) int64
    fields: list[dict[str, Any]] = field(default_factory=list)  # one record per field

    def __len__(self) -> int:
        return int(self.z_um.size)

    def subset(self, mask: np.ndarray) -> DefocusExamples:
        keep = set(np.unique(self.field[mask]).tolist())
        return DefocusExamples(self.features[mask], self.z_um[mask], self.field[mask],
                               [f for f in self.fields if f["field"] in keep])

    @staticmethod
    def concatenate(parts: Sequence[DefocusExamples]) -> DefocusExamples:
        if not parts:
            raise ConfigError("no examples to concatenate")
        return DefocusExamples(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.z_um for p in parts]),
            np.concatenate([p.field for p in parts]),
            [f for p in parts for f in p.fields],
        )

    def save(self, path: str | Path) -> None:
        """Arrays in an ``.npz`` (no pickles) plus the field records as JSON inside it."""
        np.savez(path, features=self.features, z_um=self.z_um, field=self.field,
                 fields=np.array(json.dumps(self.fields)))

    @classmethod
    def load(cls, path: str | Path) -> DefocusExamples:
        with np.load(path, allow_pickle=False) as d:
            return cls(d["features"], d["z_um"], d["field"], json.loads(str(d["fields"])))

    def summary(self) -> dict[str, Any]:
        gt = [f for f in self.fields if f.get("true_focus_um") is not None and f.get("incoherent_focus_um") is not None]
        out: dict[str, Any] = {
            "examples": len(self),
            "fields": len(np.unique(self.field)),
            "z_range_um": [float(self.z_um.min()), float(self.z_um.max())] if len(self) else None,
        }
        if gt:
            err = np.array([f["incoherent_focus_um"] - f["true_focus_um"] for f in gt])
            out["incoherent_focus_bias_um"] = {"fields": len(gt), "median": float(np.median(err)),
                                               "max_abs": float(np.max(np.abs(err)))}
        return out


def split_by_field(
    examples: DefocusExamples, validation_fraction: float = 0.15, seed: int = 0
) -> tuple[DefocusExamples, DefocusExamples]:
    """Train/validation split by field of view, never by plane (no leakage between them)."""
    fields = np.unique(examples.field)
    if fields.size < 2:
        raise ConfigError("need at least two fields of view to split training from validation")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(validation_fraction * fields.size)))
    val_fields = rng.choice(fields, size=n_val, replace=False)
    is_val = np.isin(examples.field, val_fields)
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
    sub-step refined), else from ``coherent.focus_z_um`` when known.
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
    for z, plane in zip(coherent.z_um, data):
        tiles = split_tiles(plane, region.tile)
        feats.append(fourier_features(tiles, region))
        labels.append(np.full(len(tiles), z - focus, dtype=np.float32))
    features = np.concatenate(feats)
    return DefocusExamples(
        features, np.concatenate(labels), np.full(len(features), field_id, dtype=np.int64),
        [{"field": field_id, "focus_um": float(focus),
          "true_focus_um": None if coherent.focus_z_um is None else float(coherent.focus_z_um)}],
    )


def region_for(optics: Optics, tile: int, *, bin: int = 4) -> FourierRegion:
    """The feature region of a single-LED microscope."""
    ill = optics.illumination
    if not isinstance(ill, LED):
        raise ConfigError(
            f"single-shot features need one coherent LED (got {ill.kind}); Pinkard et al. use one LED"
        )
    return FourierRegion(tile=tile, pixel_size_um=optics.pixel_size_um, na=optics.na,
                         wavelength_um=optics.wavelength_um, sx=ill.sx, sy=ill.sy, bin=bin)


@dataclass(frozen=True)
class FieldSpec:
    """One simulated field of view (what varies between fields, Note S3)."""

    field: int
    seed: int
    density: float
    photons: float
    focus_um: float
    sample: str


def _simulate_field(args: tuple[FieldSpec, str, int, int, float, tuple[float, ...], Any, int, str, bool]) -> DefocusExamples:
    spec, preset_name, size, gt_size, gt_source_step, z, illumination, tile, labels, with_incoherent = args
    preset = get_preset(preset_name)
    optics = preset.optics if illumination is None else preset.optics.with_illumination(illumination)
    gt_ill = preset.ground_truth_illumination or DPC(0.35, 0.48)
    gt_optics = optics.with_illumination(DPC(gt_ill.na_inner, gt_ill.na_outer, gt_ill.side,  # type: ignore[union-attr]
                                             source_step_na=gt_source_step))
    z_arr = np.asarray(z)
    plans = [plan_render(o, z_arr, (s, s), focus_z_um=spec.focus_um)
             for o, s in ((optics, size), (gt_optics, gt_size))]
    shape = tuple(max(p.render_shape[i] for p in plans) for i in range(2))
    options: dict[str, Any] = {"density": spec.density} if spec.sample == "cells" else {}
    sample = make_sample(spec.sample, shape, optics.pixel_size_um, seed=spec.seed,
                         wavelength_um=optics.wavelength_um, **options)
    coherent = render_stack(sample.values, optics, z_arr, shape=(size, size), focus_z_um=spec.focus_um,
                            photons=spec.photons, seed=spec.seed + 1)
    coherent_stack = FocalStack(coherent.data, coherent.z_um, coherent.pixel_size_um, coherent.optics, coherent.focus_z_um)
    incoherent_stack = None
    if with_incoherent or labels == "incoherent":
        inc = render_stack(sample.values, gt_optics, z_arr, shape=(gt_size, gt_size),
                           focus_z_um=spec.focus_um, photons=spec.photons, seed=spec.seed + 2)
        incoherent_stack = FocalStack(inc.data, inc.z_um, inc.pixel_size_um, inc.optics, inc.focus_z_um)
    region = region_for(optics, tile)
    ex = examples_from_stacks(coherent_stack, region, field_id=spec.field,
                              incoherent=incoherent_stack if labels == "incoherent" else None)
    record = ex.fields[0]
    if incoherent_stack is not None:
        record["incoherent_focus_um"] = find_focus(incoherent_stack, "spectral-highband").z_focus_um
    record.update({"density": spec.density, "photons": spec.photons, "sample": spec.sample,
                   "seed": spec.seed, "labels": labels})
    return ex


def simulate_examples(
    n_fields: int,
    *,
    preset: str | Preset = "fcfnn-20x-led",
    size: int = 1024,
    tile: int = 1024,
    z_um: Sequence[float] | None = None,
    sample: str = "cells",
    density_range: tuple[float, float] = (0.1, 0.6),
    photons_range: tuple[float, float] = (200.0, 3000.0),
    focus_range_um: tuple[float, float] = (-5.0, 5.0),
    illumination: LED | None = None,
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
    Note S3 recommends. ``labels="truth"`` labels planes with the simulator's sample
    plane, the ``z`` of OPTICS.md; ``labels="incoherent"`` with the spectral maximum of a
    DPC companion stack, as Pinkard et al. do on real data. That proxy is biased for
    weakly absorbing phase cells (their absorption × defocus-phase cross term shifts the
    high-frequency power peak by about +1 µm at 20×/0.5), so the companion is rendered
    for every ``incoherent_every``-th field to measure the bias, on the central
    ``gt_size``² of the same field (enough for a focus curve, far cheaper than 1024²).
    """
    if labels not in ("truth", "incoherent"):
        raise ConfigError(f"labels must be 'truth' or 'incoherent', got {labels!r}")
    p = get_preset(preset) if isinstance(preset, str) else preset
    z = tuple(float(v) for v in (p.z_positions() if z_um is None else z_um))
    rng = np.random.default_rng(seed)
    specs = [
        FieldSpec(
            field=first_field + i,
            seed=int(rng.integers(0, 2**31 - 1)),
            density=float(rng.uniform(*density_range)),
            photons=float(np.exp(rng.uniform(np.log(photons_range[0]), np.log(photons_range[1])))),
            focus_um=float(rng.uniform(*focus_range_um)),
            sample=sample,
        )
        for i in range(n_fields)
    ]
    jobs = [(s, p.name, size, gt_size, gt_source_step, z, illumination, tile, labels,
             incoherent_every > 0 and i % incoherent_every == 0) for i, s in enumerate(specs)]
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


__all__ = [
    "DefocusExamples",
    "FieldSpec",
    "examples_from_stacks",
    "region_for",
    "simulate_examples",
    "split_by_field",
    "z_range",
]
