"""Transmitted-light sample families: phase objects and absorbers (complex transmittance).

``t = 10^(−OD/2)·exp(iφ)``: an optical density OD transmits ``|t|² = 10^(−OD)`` of the
light; the phase φ wraps freely (peak phases up to 6 rad are allowed).
"""

from __future__ import annotations

import math

import numpy as np

from focuskit.simulate import _zoo_blocks as zb
from focuskit.simulate._families import FAMILIES, Param, register
from focuskit.simulate._samples import _smoothstep, _transmittance

Shape = tuple[int, int]

PEAK_PHASE = Param(0.2, 6.0, "rad", "Peak phase of the content (wraps above π)", log=True)

#: Centre wavelengths (µm) of the blue, green and red channels of an RGB picture.
RGB_WAVELENGTHS_UM = (0.46, 0.54, 0.61)

_MIXABLE = ("cells-sparse", "cells-clustered", "natural-phase")
_COLOUR_PICTURES = ("immunohistochemistry", "astronaut", "rocket")


def _complex(phase: np.ndarray | float, od: np.ndarray | float, shape: Shape) -> np.ndarray:
    amp = np.power(np.float32(10.0), np.float32(-0.5) * np.asarray(od, np.float32))
    return _transmittance(amp, phase, shape)


def _scaled(a: np.ndarray, peak: float) -> np.ndarray:
    """``a`` scaled so that its maximum is ``peak`` (float32)."""
    m = float(a.max())
    return (a * (peak / m) if m > 0 else a).astype(np.float32)


def hematoxylin_eosin_od(wavelength_um: float) -> tuple[float, float]:
    """Relative absorbance of haematoxylin and eosin at a wavelength (peak 1).

    Gaussian bands approximating the published spectra: haematoxylin (broad, peak
    ≈ 585 nm) ``0.2 + 0.8·exp(−((λ−0.585)/0.075)²)``; eosin Y (peak ≈ 525 nm)
    ``0.05 + 0.95·exp(−((λ−0.525)/0.035)²)``.

    Parameters
    ----------
    wavelength_um : float
        Wavelength λ, in µm.

    Returns
    -------
    eps_h, eps_e : float
        Relative absorbance of each stain, in (0, 1].
    """
    lam = float(wavelength_um)
    eps_h = 0.2 + 0.8 * math.exp(-(((lam - 0.585) / 0.075) ** 2))
    eps_e = 0.05 + 0.95 * math.exp(-(((lam - 0.525) / 0.035) ** 2))
    return eps_h, eps_e


def od_at_wavelength(od_rgb: np.ndarray, wavelength_um: float) -> np.ndarray:
    """Collapse per-channel optical densities (red, green, blue) to one wavelength.

    Linear interpolation between the channel centre wavelengths
    :data:`RGB_WAVELENGTHS_UM` (B 0.46, G 0.54, R 0.61 µm), held constant outside.

    Parameters
    ----------
    od_rgb : (3, Y, X) ndarray
        Optical density of the red, green and blue channels, in that order.
    wavelength_um : float
        Wavelength λ, in µm.

    Returns
    -------
    od : (Y, X) ndarray
        Optical density at λ.
    """
    b, g, r = RGB_WAVELENGTHS_UM
    lam = float(wavelength_um)
    red, green, blue = od_rgb
    if lam <= b:
        return blue
    if lam <= g:
        f = (lam - b) / (g - b)
        return (1 - f) * blue + f * green
    if lam <= r:
        f = (lam - g) / (r - g)
        return (1 - f) * green + f * red
    return red


def _cells_phase(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    diameter_um: float,
    coverage: float,
    clustering: float = 0.0,
    irregularity: float = 1.0,
    spread: float = 0.3,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Dome-shaped cells (optical path ∝ thickness); returns the map and the outlines."""
    n = max(1, zb.count_for_coverage(rng, shape, px, coverage, zb.disc_area_um2(diameter_um)))
    d = diameter_um * np.exp(rng.normal(0, spread, n))
    cy, cx = zb.positions(
        rng,
        (shape[0] * px, shape[1] * px),
        n,
        clustering=clustering,
        cluster_radius_um=2.5 * diameter_um,
    )
    a, b, ang, harm = zb.random_outlines(rng, n, d, irregularity=irregularity)
    height = rng.uniform(0.6, 1.0, n)
    opd = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="dome", weight=height)
    return opd, (cy, cx, a, b, ang, harm)


def _register_cells(name: str, description: str, coverage: tuple[float, float], **extra: Param):
    params = {
        "diameter_um": Param(2.0, 30.0, "µm", "Mean cell diameter", log=True),
        "coverage": Param(*coverage, "", "Fraction of the field covered"),
        "peak_phase": PEAK_PHASE,
        **extra,
    }
    return register(name, modality=("phase",), description=description, parameters=params)


@_register_cells("cells-sparse", "Sparse unstained cells 2–30 µm", (0.02, 0.15))
def _cells_sparse(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    peak_phase: float,
) -> np.ndarray:
    opd, _ = _cells_phase(shape, px, rng, diameter_um=diameter_um, coverage=coverage)
    return _complex(_scaled(opd, peak_phase), 0.0, shape)


@_register_cells("cells-confluent", "A confluent monolayer of unstained cells", (0.6, 0.95))
def _cells_confluent(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    peak_phase: float,
) -> np.ndarray:
    opd, _ = _cells_phase(shape, px, rng, diameter_um=diameter_um, coverage=coverage, spread=0.2)
    return _complex(_scaled(opd, peak_phase), 0.0, shape)


@_register_cells(
    "cells-clustered",
    "Colonies: unstained cells gathered in clusters with empty space between",
    (0.1, 0.5),
    clustering=Param(0.6, 1.0, "", "Fraction of cells in colonies"),
)
def _cells_clustered(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    peak_phase: float,
    clustering: float,
) -> np.ndarray:
    opd, _ = _cells_phase(
        shape, px, rng, diameter_um=diameter_um, coverage=coverage, clustering=clustering
    )
    return _complex(_scaled(opd, peak_phase), 0.0, shape)


@_register_cells(
    "cells-textured",
    "Unstained cells with nuclei, nucleoli and vesicle granules",
    (0.1, 0.6),
    nucleus_contrast=Param(0.1, 0.6, "", "Extra optical path of the nucleus (relative)"),
    granularity=Param(0.0, 0.4, "", "Amplitude of granular cytoplasm texture"),
)
def _cells_textured(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    peak_phase: float,
    nucleus_contrast: float,
    granularity: float,
) -> np.ndarray:
    opd, (cy, cx, a, b, ang, _) = _cells_phase(
        shape, px, rng, diameter_um=diameter_um, coverage=coverage
    )
    frac = rng.uniform(0.3, 0.45, len(cy))
    nuc = zb.outlined(shape, px, cy, cx, a * frac, b * frac, ang, profile="dome")
    n_nl = 2 * len(cy)
    owner = np.repeat(np.arange(len(cy)), 2)
    r = rng.uniform(0, 0.5, n_nl) * (a * frac)[owner]
    t = rng.uniform(0, 2 * np.pi, n_nl)
    nl = zb.spots(
        shape,
        px,
        (cy[owner] + r * np.sin(t)) % (shape[0] * px),
        (cx[owner] + r * np.cos(t)) % (shape[1] * px),
        rng.uniform(0.8, 1.6, n_nl),
        np.ones(n_nl),
    )
    nl *= 0.3 / max(float(nl.max()), 1e-12)
    grain = zb.texture(rng, shape, px, 0.2, 0.8)
    total = opd * (1 + granularity * grain) + nucleus_contrast * (np.minimum(nuc, 1) + nl)
    return _complex(_scaled(np.maximum(total, 0), peak_phase), 0.0, shape)


@register(
    "rods",
    modality=("phase",),
    description="Bacteria-like rods 1–6 µm long, 0.5–1.2 µm wide, scattered or in colonies",
    parameters={
        "length_um": Param(1.0, 6.0, "µm", "Mean rod length"),
        "width_um": Param(0.5, 1.2, "µm", "Rod width"),
        "density_per_100um2": Param(0.3, 30.0, "per 100 µm²", "Rods per area", log=True),
        "clustering": Param(0.0, 1.0, "", "Fraction in colonies"),
        "peak_phase": Param(0.2, 2.0, "rad", "Peak phase of a rod", log=True),
    },
)
def _rods(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    length_um: float,
    width_um: float,
    density_per_100um2: float,
    clustering: float,
    peak_phase: float,
) -> np.ndarray:
    extent = (shape[0] * px, shape[1] * px)
    n = max(1, zb.count_per_area(rng, shape, px, density_per_100um2))
    cy, cx = zb.positions(rng, extent, n, clustering=clustering, cluster_radius_um=10.0)
    length = length_um * rng.uniform(0.7, 1.3, n)
    a = np.maximum(length / 2, width_um / 2)
    b = np.full(n, width_um / 2)
    ang = rng.uniform(0, np.pi, n)
    opd = zb.outlined(shape, px, cy, cx, a, b, ang, profile="dome")
    return _complex(_scaled(opd, peak_phase), 0.0, shape)


@register(
    "tissue-unstained",
    modality=("phase",),
    description="Unstained tissue section: fibrous stroma and nuclei as phase",
    parameters={
        "fibre_um": Param(5.0, 40.0, "µm", "Fibre length scale"),
        "cellularity": Param(0.05, 0.5, "", "Fraction covered by nuclei"),
        "peak_phase": PEAK_PHASE,
    },
)
def _tissue_unstained(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    fibre_um: float,
    cellularity: float,
    peak_phase: float,
) -> np.ndarray:
    theta = rng.uniform(0, np.pi)
    fib = zb.oriented(rng, shape, px, fibre_um, 0.5, theta)
    fib += 0.6 * zb.texture(rng, shape, px, 0.5, 3.0)
    n = zb.count_for_coverage(rng, shape, px, cellularity, zb.disc_area_um2(7.0))
    cy, cx = zb.positions(rng, (shape[0] * px, shape[1] * px), n, clustering=0.4)
    a, b, ang, harm = zb.random_outlines(rng, n, rng.uniform(4, 10, n), elongation=0.8)
    nuc = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="dome")
    holes = _smoothstep(2.0 + zb.smooth(rng, shape, px, 3 * fibre_um))
    opd = (1.0 + 0.35 * fib + 0.8 * np.minimum(nuc, 1)) * holes
    return _complex(_scaled(np.maximum(opd, 0), peak_phase), 0.0, shape)


@register(
    "debris",
    modality=("phase", "absorption"),
    description="Dust and debris: sparse irregular particles 0.5–20 µm, refractive and dark",
    parameters={
        "coverage": Param(0.005, 0.15, "", "Fraction of the field covered", log=True),
        "peak_phase": PEAK_PHASE,
        "absorbance": Param(0.0, 1.0, "OD", "Optical density of the darkest particle"),
    },
)
def _debris(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    coverage: float,
    peak_phase: float,
    absorbance: float,
) -> np.ndarray:
    extent = (shape[0] * px, shape[1] * px)
    # log-uniform diameters on [0.5, 20] µm: mean area π/4·E[d²] = π/4·(20² − 0.5²)/(2 ln 40)
    mean_area = math.pi / 4 * (20.0**2 - 0.5**2) / (2 * math.log(40.0))
    n = max(1, zb.count_for_coverage(rng, shape, px, coverage, mean_area))
    cy, cx = zb.positions(rng, extent, n)
    d = np.exp(rng.uniform(math.log(0.5), math.log(20.0), n))
    a, b, ang, harm = zb.random_outlines(rng, n, d, elongation=1.0, irregularity=2.0)
    body = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="dome")
    dark = zb.outlined(
        shape,
        px,
        cy,
        cx,
        a,
        b,
        ang,
        harmonics=harm,
        profile="flat",
        weight=rng.uniform(0.2, 1.0, n),
    )
    return _complex(_scaled(body, peak_phase), absorbance * dark, shape)


@register(
    "natural-phase",
    modality=("phase",),
    description="Real pictures shipped with scikit-image used as phase maps",
    parameters={
        "picture": Param(0, len(zb.PICTURES["phase"]) - 1, "", "Picture index", integer=True),
        "source_pixel_um": Param(0.1, 2.0, "µm", "Size of one picture pixel", log=True),
        "peak_phase": PEAK_PHASE,
    },
)
def _natural_phase(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    picture: int,
    source_pixel_um: float,
    peak_phase: float,
) -> np.ndarray:
    img = zb.picture_field(zb.PICTURES["phase"][picture], shape, px, rng, source_pixel_um)
    return _complex(np.float32(peak_phase) * img.astype(np.float32), 0.0, shape)


@register(
    "phase-mixture",
    modality=("phase", "absorption"),
    description="Two phase families overlaid, with weak absorption (OD ≤ 0.1)",
    parameters={
        "absorbance": Param(0.0, 0.1, "OD", "Optical density at the peak phase"),
        "peak_phase": PEAK_PHASE,
    },
)
def _phase_mixture(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    absorbance: float,
    peak_phase: float,
) -> np.ndarray:
    phase = np.zeros(shape, np.float32)
    for name in rng.choice(_MIXABLE, size=2, replace=False):
        fam = FAMILIES[str(name)]
        params = fam.resolve(rng, {})
        params["peak_phase"] = 1.0
        t = fam.render(shape, px, rng, wavelength_um=wavelength_um, **params)
        phase += np.float32(rng.uniform(0.3, 1.0)) * np.angle(t).clip(0, None)
    phase = _scaled(phase, peak_phase)
    return _complex(phase, absorbance * phase / max(peak_phase, 1e-9), shape)


# --------------------------------------------------------------------------- absorbers


@register(
    "stained-tissue",
    modality=("absorption",),
    description="H&E-stained tissue: haematoxylin nuclei, eosin stroma, per-wavelength density",
    parameters={
        "od": Param(0.2, 1.5, "OD", "Optical density of a nucleus at its stain's peak"),
        "cellularity": Param(0.05, 0.5, "", "Fraction covered by nuclei"),
        "eosin": Param(0.1, 0.8, "", "Stroma (eosin) density relative to nuclei"),
        "fibre_um": Param(5.0, 40.0, "µm", "Fibre length scale"),
    },
)
def _stained_tissue(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    od: float,
    cellularity: float,
    eosin: float,
    fibre_um: float,
) -> np.ndarray:
    n = zb.count_for_coverage(rng, shape, px, cellularity, zb.disc_area_um2(7.0))
    cy, cx = zb.positions(rng, (shape[0] * px, shape[1] * px), n, clustering=0.5)
    a, b, ang, harm = zb.random_outlines(rng, n, rng.uniform(4, 11, n), elongation=0.6)
    nuc = (
        np.minimum(zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="dome"), 1)
        ** 0.4
    )
    nuc *= np.clip(1 + 0.3 * zb.texture(rng, shape, px, 0.3, 1.5), 0, None)
    theta = rng.uniform(0, np.pi)
    fib = np.clip(0.6 + 0.4 * zb.oriented(rng, shape, px, fibre_um, 0.6, theta), 0, None)
    holes = _smoothstep(1.8 + zb.smooth(rng, shape, px, 3 * fibre_um))
    eps_h, eps_e = hematoxylin_eosin_od(wavelength_um)
    density = od * (eps_h * nuc + eps_e * eosin * fib) * holes
    return _complex(0.0, density, shape)


@register(
    "stained-cells",
    modality=("absorption", "phase"),
    description="Stained cultured cells: dark nuclei, light cytoplasm, with their phase",
    parameters={
        "diameter_um": Param(8.0, 40.0, "µm", "Mean cell diameter"),
        "coverage": Param(0.1, 0.8, "", "Fraction of the field covered"),
        "od": Param(0.1, 1.2, "OD", "Optical density of a nucleus"),
        "peak_phase": Param(0.2, 3.0, "rad", "Peak phase of a cell", log=True),
    },
)
def _stained_cells(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    od: float,
    peak_phase: float,
) -> np.ndarray:
    opd, (cy, cx, a, b, ang, harm) = _cells_phase(
        shape, px, rng, diameter_um=diameter_um, coverage=coverage
    )
    frac = rng.uniform(0.3, 0.45, len(cy))
    nuc = zb.outlined(shape, px, cy, cx, a * frac, b * frac, ang, profile="flat")
    cyto = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="flat")
    density = od * (np.clip(nuc, 0, 1) + 0.2 * np.clip(cyto, 0, 1))
    return _complex(_scaled(opd, peak_phase), density, shape)


@register(
    "opaque-particles",
    modality=("absorption",),
    description="Nearly opaque particles (pigment, metal, soot) 0.5–20 µm",
    parameters={
        "diameter_um": Param(0.5, 20.0, "µm", "Median particle diameter", log=True),
        "coverage": Param(0.005, 0.3, "", "Fraction of the field covered", log=True),
        "od": Param(0.5, 3.0, "OD", "Optical density of a particle"),
    },
)
def _opaque_particles(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    od: float,
) -> np.ndarray:
    extent = (shape[0] * px, shape[1] * px)
    # ln d ~ Normal(ln D, 0.5): E[d²] = D²·e^{2·0.5²}
    mean_area = math.pi / 4 * diameter_um**2 * math.exp(0.5)
    n = max(1, zb.count_for_coverage(rng, shape, px, coverage, mean_area))
    cy, cx = zb.positions(rng, extent, n)
    d = diameter_um * np.exp(rng.normal(0, 0.5, n))
    a, b, ang, harm = zb.random_outlines(rng, n, d, elongation=0.5, irregularity=1.0)
    mask = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="flat")
    return _complex(0.0, od * np.clip(mask, 0, 1), shape)


@register(
    "printed-target",
    modality=("absorption",),
    description="Chrome-on-glass test targets: bar groups, checkerboards, printed text",
    parameters={
        "pattern": Param(0, 2, "", "0 bar groups, 1 checkerboard, 2 text", integer=True),
        "period_um": Param(1.0, 20.0, "µm", "Bar / square period", log=True),
        "od": Param(0.5, 3.0, "OD", "Optical density of the chrome"),
    },
)
def _printed_target(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    pattern: int,
    period_um: float,
    od: float,
) -> np.ndarray:
    ny, nx = shape
    ey, ex = ny * px, nx * px
    y = (np.arange(ny) + 0.5) * px
    x = (np.arange(nx) + 0.5) * px
    if pattern == 2:
        text = zb.picture_field("text", shape, px, rng, period_um / 8)
        mask = _smoothstep((text - 0.5) * 8 + 0.5)
    elif pattern == 1:
        ky, kx = max(1, round(ey / period_um)), max(1, round(ex / period_um))
        sy = np.sin(2 * np.pi * ky * y / ey)[:, None]
        sx = np.sin(2 * np.pi * kx * x / ex)[None, :]
        # Anti-aliased sign of the product (edges one pixel wide).
        edge = np.float32(period_um / (2 * np.pi * px))
        mask = _smoothstep(sy * sx * edge + 0.5)
    else:  # a grid of cells, each with a three-bar group of its own period and direction
        cells_y, cells_x = max(1, round(ey / (8 * period_um))), max(1, round(ex / (8 * period_um)))
        cy = np.minimum((y / (ey / cells_y)).astype(int), cells_y - 1)
        cx = np.minimum((x / (ex / cells_x)).astype(int), cells_x - 1)
        scale = np.exp(rng.uniform(-0.7, 0.7, (cells_y, cells_x)))
        vertical = rng.random((cells_y, cells_x)) < 0.5
        uy = (y % (ey / cells_y)) / (ey / cells_y)
        ux = (x % (ex / cells_x)) / (ex / cells_x)
        cell_um = ey / cells_y
        s = scale[cy[:, None], cx[None, :]]
        along = np.where(vertical[cy[:, None], cx[None, :]], ux[None, :], uy[:, None])
        across = np.where(vertical[cy[:, None], cx[None, :]], uy[:, None], ux[None, :])
        # Three bars of width p/2 centred in the cell, 5 periods long.
        p_frac = period_um * s / cell_um
        k = (along - 0.5) / p_frac + 1.5
        bar = (k > 0) & (k < 3) & ((k % 1) < 0.5) & (np.abs(across - 0.5) < 2.5 * p_frac)
        mask = bar.astype(np.float32)
    return _complex(0.0, od * np.clip(mask, 0, 1), shape)


@register(
    "natural-absorbance",
    modality=("absorption",),
    description="Real pictures shipped with scikit-image used as absorbance (colour per λ)",
    parameters={
        "picture": Param(0, len(zb.PICTURES["absorption"]) - 1, "", "Picture index", integer=True),
        "source_pixel_um": Param(0.1, 2.0, "µm", "Size of one picture pixel", log=True),
        "od": Param(0.1, 1.5, "OD", "Optical density of the darkest part"),
    },
)
def _natural_absorbance(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    picture: int,
    source_pixel_um: float,
    od: float,
) -> np.ndarray:
    name = zb.PICTURES["absorption"][picture]
    if name in _COLOUR_PICTURES:  # colour: each channel's density, collapsed at λ
        d = zb.picture_density_field(
            name, shape, px, rng, source_pixel_um, lambda od: od_at_wavelength(od, wavelength_um)
        )
    else:
        d = 1 - zb.picture_field(name, shape, px, rng, source_pixel_um)
    return _complex(0.0, od * np.clip(d, 0, 1), shape)
