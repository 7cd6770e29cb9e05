"""Fluorescence sample families: non-negative emitter maps (peak 1 before background)."""

from __future__ import annotations

import math

import numpy as np

from focuskit.simulate import _zoo_blocks as zb
from focuskit.simulate._families import FAMILIES, Param, register
from focuskit.simulate._samples import _smoothstep

Shape = tuple[int, int]

#: Families a mixture draws from (not the mixture itself, not the unseen ones).
_MIXABLE = ("point-emitters", "nuclei", "filaments", "membranes", "smooth-texture")


def _cell_regions(
    rng: np.random.Generator, shape: Shape, px: float, diameter_um: float, coverage: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random cells (centres, semi-axes, angle) covering about ``coverage`` of the field."""
    n = zb.count_for_coverage(rng, shape, px, coverage, zb.disc_area_um2(diameter_um))
    d = diameter_um * rng.uniform(0.7, 1.3, n)
    cy, cx = zb.positions(rng, (shape[0] * px, shape[1] * px), n)
    a, b, ang, _ = zb.random_outlines(rng, n, d)
    return cy, cx, a, b, ang


@register(
    "point-emitters",
    modality=("fluorescence",),
    description="Beads / single emitters 0.05–2 µm, isolated to crowded, optionally saturating",
    parameters={
        "diameter_um": Param(0.05, 2.0, "µm", "Median emitter diameter", log=True),
        "size_spread": Param(0.0, 0.6, "", "SD of ln(diameter) within the field"),
        "density_per_100um2": Param(0.02, 30.0, "per 100 µm²", "Emitters per area", log=True),
        "brightness_spread": Param(0.0, 1.2, "", "SD of ln(brightness per volume)"),
        "saturate": Param(
            0, 1, doc="Expose the brightest emitter past the full well", probability=0.3
        ),
        "overexposure": Param(1.5, 6.0, "× full well", "Peak signal when saturating"),
    },
)
def _point_emitters(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    size_spread: float,
    density_per_100um2: float,
    brightness_spread: float,
    saturate: bool,
    overexposure: float,
) -> np.ndarray:
    """Spheres of uniform dye: signal ∝ volume d³ × a log-normal brightness.

    ``saturate``/``overexposure`` do not change the map: they tell the renderer
    (:func:`simulate_stack`) to expose the brightest pixel past the camera's full well.
    """
    n = max(1, zb.count_per_area(rng, shape, px, density_per_100um2))
    y, x = zb.positions(rng, (shape[0] * px, shape[1] * px), n)
    d = np.clip(diameter_um * np.exp(rng.normal(0, size_spread, n)), 0.05, 2.0)
    w = (d / 0.1) ** 3 * np.exp(rng.normal(0, brightness_spread, n))
    return zb.spots(shape, px, y, x, d, w)


@register(
    "nuclei",
    modality=("fluorescence",),
    description="DNA-stained nuclei: textured chromatin, 4–20 µm, scattered or clustered",
    parameters={
        "diameter_um": Param(4.0, 20.0, "µm", "Mean nucleus diameter"),
        "coverage": Param(0.05, 0.7, "", "Fraction of the field covered"),
        "clustering": Param(0.0, 1.0, "", "Fraction of nuclei gathered in clusters"),
        "texture": Param(0.0, 0.6, "", "Chromatin texture amplitude"),
        "brightness_spread": Param(0.0, 0.5, "", "SD of ln(brightness) between nuclei"),
    },
)
def _nuclei(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    clustering: float,
    texture: float,
    brightness_spread: float,
) -> np.ndarray:
    n = max(1, zb.count_for_coverage(rng, shape, px, coverage, zb.disc_area_um2(diameter_um)))
    d = diameter_um * rng.uniform(0.75, 1.25, n)
    cy, cx = zb.positions(
        rng,
        (shape[0] * px, shape[1] * px),
        n,
        clustering=clustering,
        cluster_radius_um=3 * diameter_um,
    )
    a, b, ang, harm = zb.random_outlines(rng, n, d, elongation=0.2, irregularity=0.6)
    w = np.exp(rng.normal(0, brightness_spread, n))
    body = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="dome", weight=w)
    body = np.minimum(body, 1.5 * float(w.max())) ** 0.5  # flat-topped, overlapping ones add
    chromatin = zb.texture(rng, shape, px, 0.3, 1.5)
    return body * np.clip(1 + texture * chromatin, 0, None)


@register(
    "filaments",
    modality=("fluorescence",),
    description="Microtubule / actin networks: long thin worm-like filaments",
    parameters={
        "length_density": Param(5.0, 150.0, "µm per 100 µm²", "Filament length per area", log=True),
        "persistence_um": Param(5.0, 200.0, "µm", "Persistence length (stiffness)", log=True),
        "width_um": Param(0.025, 0.3, "µm", "Filament width", log=True),
        "length_um": Param(5.0, 80.0, "µm", "Mean filament length", log=True),
    },
)
def _filaments(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    length_density: float,
    persistence_um: float,
    width_um: float,
    length_um: float,
) -> np.ndarray:
    extent = (shape[0] * px, shape[1] * px)
    total = length_density * extent[0] * extent[1] / 100.0
    n = max(1, int(rng.poisson(total / length_um)))
    lengths = rng.exponential(length_um, n) + 1.0
    step = min(px / 2, 0.25)
    y, x, _ = zb.chains(rng, extent, n, lengths, persistence_um, step)
    return zb.lines(shape, px, y, x, 1.0, step, width_um)


@register(
    "membranes",
    modality=("fluorescence",),
    description="Cell outlines (membrane stain) of 8–40 µm cells, sparse to confluent",
    parameters={
        "diameter_um": Param(8.0, 40.0, "µm", "Mean cell diameter"),
        "coverage": Param(0.15, 0.9, "", "Fraction of the field covered by cells"),
        "thickness_um": Param(0.1, 0.8, "µm", "Apparent membrane thickness"),
        "cytoplasm": Param(0.0, 0.2, "", "Dim cytoplasm signal relative to the membrane"),
    },
)
def _membranes(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    coverage: float,
    thickness_um: float,
    cytoplasm: float,
) -> np.ndarray:
    cy, cx, a, b, ang = _cell_regions(rng, shape, px, diameter_um, coverage)
    harm = zb.random_outlines(rng, len(cy), 2 * a)[3]
    ring = zb.outlined(
        shape, px, cy, cx, a, b, ang, harmonics=harm, profile="ring", width_um=thickness_um / 2
    )
    if cytoplasm > 0:
        ring += cytoplasm * zb.outlined(
            shape, px, cy, cx, a, b, ang, harmonics=harm, profile="flat"
        )
    return ring


@register(
    "mitochondria",
    modality=("fluorescence",),
    description="Mitochondria-like tubules 0.5–8 µm long, 0.2–0.5 µm wide, around nuclei",
    parameters={
        "density_per_100um2": Param(2.0, 40.0, "per 100 µm²", "Tubules per area", log=True),
        "length_um": Param(0.5, 8.0, "µm", "Mean tubule length", log=True),
        "width_um": Param(0.2, 0.5, "µm", "Tubule width"),
        "clustering": Param(0.0, 1.0, "", "Fraction gathered around cell centres"),
    },
)
def _mitochondria(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    density_per_100um2: float,
    length_um: float,
    width_um: float,
    clustering: float,
) -> np.ndarray:
    extent = (shape[0] * px, shape[1] * px)
    n = max(1, zb.count_per_area(rng, shape, px, density_per_100um2))
    start = zb.positions(rng, extent, n, clustering=clustering, cluster_radius_um=15.0)
    lengths = rng.gamma(2.0, length_um / 2, n) + 0.3
    step = min(px / 2, 0.1)
    y, x, owner = zb.chains(rng, extent, n, lengths, 2.0, step, start=start)
    bright = np.exp(rng.normal(0, 0.3, n))[owner]
    return zb.lines(shape, px, y, x, bright, step, width_um)


@register(
    "vesicles",
    modality=("fluorescence",),
    description="Vesicle / endosome puncta 0.1–0.8 µm inside cells, over dim cytoplasm",
    parameters={
        "diameter_um": Param(0.1, 0.8, "µm", "Mean punctum diameter", log=True),
        "density_per_100um2": Param(5.0, 150.0, "per 100 µm² of cell", "Puncta per cell area"),
        "cell_diameter_um": Param(10.0, 40.0, "µm", "Mean cell diameter"),
        "cytoplasm": Param(0.0, 0.3, "", "Diffuse cytoplasm relative to a punctum"),
    },
)
def _vesicles(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    diameter_um: float,
    density_per_100um2: float,
    cell_diameter_um: float,
    cytoplasm: float,
) -> np.ndarray:
    extent = (shape[0] * px, shape[1] * px)
    cy, cx, a, b, ang = _cell_regions(rng, shape, px, cell_diameter_um, 0.5)
    n_cells = len(cy)
    per_cell = rng.poisson(density_per_100um2 * np.pi * a * b / 100.0)
    owner = np.repeat(np.arange(n_cells), per_cell)
    r = np.sqrt(rng.uniform(0, 1, owner.size)) * 0.9
    t = rng.uniform(0, 2 * np.pi, owner.size)
    u, v = r * a[owner] * np.cos(t), r * b[owner] * np.sin(t)
    c, s = np.cos(ang[owner]), np.sin(ang[owner])
    y = (cy[owner] + u * s + v * c) % extent[0]
    x = (cx[owner] + u * c - v * s) % extent[1]
    d = diameter_um * np.exp(rng.normal(0, 0.25, owner.size))
    w = (d / 0.1) ** 2 * np.exp(rng.normal(0, 0.4, owner.size))
    puncta = zb.spots(shape, px, y, x, d, w)
    peak = float(puncta.max()) if puncta.size and puncta.max() > 0 else 1.0
    if cytoplasm > 0 and n_cells:
        puncta += cytoplasm * peak * zb.outlined(shape, px, cy, cx, a, b, ang, profile="dome")
    return puncta


@register(
    "tissue-section",
    modality=("fluorescence",),
    description="Fluorescent tissue section: dense nuclei in autofluorescent fibrous stroma",
    parameters={
        "nucleus_diameter_um": Param(4.0, 10.0, "µm", "Nucleus diameter"),
        "cellularity": Param(0.1, 0.6, "", "Fraction of the field covered by nuclei"),
        "fibre_um": Param(5.0, 40.0, "µm", "Fibre length scale"),
        "stroma": Param(0.1, 0.6, "", "Stroma brightness relative to nuclei"),
    },
)
def _tissue_section(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    nucleus_diameter_um: float,
    cellularity: float,
    fibre_um: float,
    stroma: float,
) -> np.ndarray:
    n = zb.count_for_coverage(rng, shape, px, cellularity, zb.disc_area_um2(nucleus_diameter_um))
    d = nucleus_diameter_um * rng.uniform(0.7, 1.3, n)
    cy, cx = zb.positions(rng, (shape[0] * px, shape[1] * px), n, clustering=0.5)
    a, b, ang, harm = zb.random_outlines(rng, n, d, elongation=0.6)
    nuc = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="dome")
    nuc = np.minimum(nuc, 1.0) ** 0.5
    theta = rng.uniform(0, np.pi)
    fibres = zb.oriented(rng, shape, px, fibre_um, 0.4, theta)
    fibres += 0.7 * zb.oriented(rng, shape, px, fibre_um / 2, 0.3, theta + rng.normal(0, 0.6))
    tissue_mask = _smoothstep(1.5 + zb.smooth(rng, shape, px, 4 * fibre_um))
    fib = np.maximum(fibres, 0) * tissue_mask
    return nuc + stroma * fib / max(float(fib.max()), 1e-12)


@register(
    "patterned-substrate",
    modality=("fluorescence",),
    description="Flat bright regions with sharp edges: micropatterns, lithographic pads, wafers",
    parameters={
        "feature_um": Param(2.0, 40.0, "µm", "Feature size", log=True),
        "fill": Param(0.1, 0.6, "", "Fraction of the field that is bright"),
        "regular": Param(0, 1, doc="A regular lattice rather than random shapes", probability=0.5),
        "contrast": Param(0.3, 1.0, "", "1 − (dark level / bright level)"),
    },
)
def _patterned(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    feature_um: float,
    fill: float,
    regular: bool,
    contrast: float,
) -> np.ndarray:
    ey, ex = shape[0] * px, shape[1] * px
    if regular:  # square lattice with a whole number of periods across the field
        period = feature_um / math.sqrt(fill)
        ky, kx = max(1, round(ey / period)), max(1, round(ex / period))
        gy, gx = np.meshgrid((np.arange(ky) + 0.5) * ey / ky, (np.arange(kx) + 0.5) * ex / kx)
        cy, cx = gy.ravel(), gx.ravel()
        if rng.random() < 0.5:  # discs
            n = cy.size
            half = np.full(n, feature_um / 2)
            pads = zb.outlined(shape, px, cy, cx, half, half, np.zeros(n), profile="flat")
        else:  # squares, as the product of two anti-aliased bands
            yy = (np.arange(shape[0]) * px) % (ey / ky)
            xx = (np.arange(shape[1]) * px) % (ex / kx)
            edge_y = _smoothstep((feature_um / 2 - np.abs(yy - ey / ky / 2)) / px + 0.5)
            edge_x = _smoothstep((feature_um / 2 - np.abs(xx - ex / kx / 2)) / px + 0.5)
            pads = edge_y[:, None] * edge_x[None, :]
    else:
        area = ey * ex
        n = max(1, int(rng.poisson(fill * area / feature_um**2)))
        cy, cx = zb.positions(rng, (ey, ex), n)
        d = feature_um * np.exp(rng.normal(0, 0.4, n))
        a, b, ang, harm = zb.random_outlines(rng, n, d, elongation=0.8, irregularity=0.3)
        pads = zb.outlined(shape, px, cy, cx, a, b, ang, harmonics=harm, profile="flat")
    return (1 - contrast) + contrast * np.clip(pads, 0, 1)


@register(
    "natural-emitters",
    modality=("fluorescence",),
    description="Real pictures shipped with scikit-image used as emitter maps",
    parameters={
        "picture": Param(
            0, len(zb.PICTURES["fluorescence"]) - 1, "", "Picture index", integer=True
        ),
        "source_pixel_um": Param(0.05, 1.0, "µm", "Size of one picture pixel", log=True),
        "gamma": Param(0.5, 2.5, "", "Contrast curve exponent", log=True),
        "invert": Param(0, 1, doc="Bright where the picture is dark", probability=0.3),
    },
)
def _natural_emitters(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    picture: int,
    source_pixel_um: float,
    gamma: float,
    invert: bool,
) -> np.ndarray:
    img = zb.picture_field(zb.PICTURES["fluorescence"][picture], shape, px, rng, source_pixel_um)
    if invert:
        img = 1 - img
    return img**gamma


@register(
    "smooth-texture",
    modality=("fluorescence",),
    description="Random smooth textures: log-normal fields with 0.3–20 µm correlation length",
    parameters={
        "correlation_um": Param(0.3, 20.0, "µm", "Correlation length", log=True),
        "contrast": Param(0.2, 2.0, "", "SD of the log intensity", log=True),
        "bandwidth": Param(1.5, 8.0, "", "Coarse / fine scale ratio", log=True),
    },
)
def _smooth_texture(
    shape: Shape,
    px: float,
    rng: np.random.Generator,
    *,
    wavelength_um: float,
    correlation_um: float,
    contrast: float,
    bandwidth: float,
) -> np.ndarray:
    field = zb.texture(rng, shape, px, correlation_um, correlation_um * bandwidth)
    return np.exp(contrast * field)


@register(
    "fluorescence-mixture",
    modality=("fluorescence",),
    description="Two fluorescence families overlaid (multi-label samples)",
    parameters={
        "balance": Param(0.2, 1.0, "", "Brightness of the second label relative to the first"),
    },
)
def _fluorescence_mixture(
    shape: Shape, px: float, rng: np.random.Generator, *, wavelength_um: float, balance: float
) -> np.ndarray:
    out = np.zeros(shape, np.float64)
    for weight, name in zip(
        (1.0, balance), rng.choice(_MIXABLE, size=2, replace=False), strict=True
    ):
        fam = FAMILIES[str(name)]
        params = {k: v for k, v in fam.resolve(rng, {}).items() if k != "background"}
        part = np.asarray(fam.render(shape, px, rng, wavelength_um=wavelength_um, **params))
        out += weight * part / max(float(part.max()), 1e-12)
    return out
