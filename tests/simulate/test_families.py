"""Sample families: registry, determinism, parameter checks, and the physics of each family."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from focuskit import ConfigError
from focuskit.optics import Brightfield, get_preset
from focuskit.simulate import (
    FAMILIES,
    UNSEEN_FAMILIES,
    draw_conditions,
    family_statistics,
    family_views,
    get_family,
    make_sample,
    render_stack,
    sample_families,
    simulate_stack,
)
from focuskit.simulate._zoo_blocks import SPHERE_SIGMA_PER_DIAMETER, periodic_component, spots
from focuskit.simulate._zoo_transmitted import hematoxylin_eosin_od, od_at_wavelength

NAMES = list(FAMILIES)


def _primary(modality: str) -> list[str]:
    return [n for n, f in FAMILIES.items() if f.modality[0] == modality]


# --------------------------------------------------------------------------- registry


def test_the_zoo_has_the_families_the_issue_asks_for() -> None:
    assert len(_primary("fluorescence")) >= 8
    assert len(_primary("phase")) >= 6
    assert len(_primary("absorption")) >= 4
    for fam in FAMILIES.values():
        assert fam.modality and set(fam.modality) <= {"fluorescence", "phase", "absorption"}
        assert fam.description and fam.name == fam.name.lower()


def test_unseen_split_is_registered_and_filtered() -> None:
    assert set(UNSEEN_FAMILIES) <= set(FAMILIES)
    train = sample_families(split="train")
    unseen = sample_families(split="unseen")
    assert set(unseen) == set(UNSEEN_FAMILIES)
    assert not set(train) & set(unseen)
    assert set(train) | set(unseen) == set(FAMILIES)
    # every modality keeps at least one unseen family to report on
    for mod in ("fluorescence", "phase", "absorption"):
        assert set(sample_families(mod, split="unseen")), mod
    assert set(sample_families("transmitted")) == {
        n for n, f in FAMILIES.items() if f.kind == "transmittance"
    }


def test_unknown_family_modality_or_split_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown sample family 'beeds'.*point-emitters"):
        get_family("beeds")
    with pytest.raises(ConfigError, match="modality"):
        sample_families("darkfield")
    with pytest.raises(ConfigError, match="split"):
        sample_families(split="test")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- every family


@pytest.mark.parametrize("name", NAMES)
def test_family_is_deterministic_for_a_seed_and_valid(name: str) -> None:
    fam = FAMILIES[name]
    a = fam((80, 96), 0.3, 11)
    b = fam((80, 96), 0.3, np.random.default_rng(11))
    c = fam((80, 96), 0.3, 12)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    assert a.values.shape == (80, 96)
    assert np.isfinite(a.values).all()
    if fam.kind == "fluorescence":
        assert a.kind == "fluorescence" and float(a.values.min()) >= 0
        assert float(a.values.max()) > 0
    else:
        assert a.kind == "transmittance" and float(np.abs(a.values).max()) <= 1 + 1e-6
    desc = json.loads(json.dumps(a.description))
    assert desc["family"] == name and desc["modality"] == list(fam.modality)
    assert set(fam.parameters) <= set(desc)
    for pname, spec in fam.parameters.items():  # every drawn value lies in its range
        v = desc[pname]
        if spec.is_flag:
            assert isinstance(v, bool)
        else:
            assert spec.lo <= v <= spec.hi, (pname, v)


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.pure_phase])
def test_pure_phase_families_transmit_all_light(name: str) -> None:
    """|t| = 1: an incoherent image (of |t|²) of a pure phase object is flat."""
    t = FAMILIES[name]((64, 64), 0.3, 5).values
    np.testing.assert_allclose(np.abs(t), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    [n for n, f in FAMILIES.items() if "absorption" in f.modality and f.kind != "fluorescence"],
)
def test_absorbing_families_absorb(name: str) -> None:
    t = FAMILIES[name]((128, 128), 0.3, 2).values
    assert float((1 - np.abs(t) ** 2).max()) > 0.01


def test_fixing_one_parameter_leaves_the_other_draws_unchanged() -> None:
    fam = get_family("nuclei")
    a = fam((64, 64), 0.3, 3).description
    b = fam((64, 64), 0.3, 3, texture=0.1).description
    assert b["texture"] == 0.1
    for k in ("diameter_um", "coverage", "clustering", "brightness_spread", "background"):
        assert a[k] == b[k]


def test_peak_phase_is_the_phase_maximum() -> None:
    s = get_family("cells-sparse")((128, 128), 0.3, 4, peak_phase=0.5)
    np.testing.assert_allclose(float(np.angle(s.values).max()), 0.5, rtol=1e-3)
    # above π the phase wraps: the transmittance is still a unit phasor
    s = get_family("cells-confluent")((128, 128), 0.3, 4, peak_phase=6.0)
    assert float(np.angle(s.values).min()) < -1.0


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"diameter_um": 5.0}, ["point-emitters", "diameter_um", "[0.05, 2] µm", "5"]),
        ({"density_per_100um2": -1}, ["density_per_100um2", "[0.02, 30]"]),
        ({"saturate": "maybe"}, ["saturate", "true or false"]),
        ({"diameter_um": "big"}, ["diameter_um", "number"]),
        ({"diameter": 0.2}, ["no parameter diameter", "diameter_um"]),
    ],
)
def test_bad_parameters_name_family_parameter_and_range(kwargs: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        get_family("point-emitters")((32, 32), 0.3, 0, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg


def test_integer_parameters_refuse_fractions_and_flags_accept_words() -> None:
    with pytest.raises(ConfigError, match=r"picture must be a whole number"):
        get_family("natural-phase")((32, 32), 0.3, 0, picture=1.5)
    s = get_family("point-emitters")((32, 32), 0.3, 0, saturate="yes")
    assert s.description["saturate"] is True


@pytest.mark.parametrize("bad", [{"shape": (2, 64)}, {"pixel_size_um": 0}, {"wavelength_um": 5}])
def test_bad_shape_pixel_or_wavelength(bad: dict) -> None:
    kw = {"shape": (32, 32), "pixel_size_um": 0.3, **bad}
    with pytest.raises(ConfigError):
        get_family("filaments")(kw.pop("shape"), kw.pop("pixel_size_um"), 0, **kw)


def test_make_sample_and_simulate_accept_family_names() -> None:
    a = make_sample("Point_Emitters", (48, 48), 0.2, seed=3, diameter_um=0.3)
    b = get_family("point-emitters")((48, 48), 0.2, 3, diameter_um=0.3)
    np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(ConfigError, match=r"choose a generator .* or a family"):
        make_sample("spheroids", (32, 32), 0.3)
    sim = simulate_stack("deepr-40x-fluor", sample="filaments", size=32, z_um=[0.0], seed=1)
    assert sim.metadata["sample"]["family"] == "filaments"
    with pytest.raises(ConfigError, match="fluorescence family"):
        simulate_stack("deepr-40x-fluor", sample="cells-sparse", size=32, z_um=[0.0])


# --------------------------------------------------------------------------- physics


def _contrast(img: np.ndarray) -> float:
    return float(img.std() / img.mean())


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.pure_phase])
def test_weak_pure_phase_is_invisible_in_focus_under_matched_brightfield(name: str) -> None:
    """A symmetric source with σ = 1 has no phase transfer at focus (only φ² terms remain);
    defocus converts phase into intensity contrast."""
    optics = get_preset("deepr-20x-bf").optics
    optics = optics.with_illumination(Brightfield(na_condenser=optics.na, source_step_na=0.15))
    fam = FAMILIES[name]
    peak = {"peak_phase": 0.25} if "peak_phase" in fam.parameters else {}
    s = fam((192, 192), optics.pixel_size_um, 7, **peak)
    dof = optics.depth_of_field_um
    stack = render_stack(s.values, optics, [0.0, 3 * dof], shape=(128, 128)).data
    assert _contrast(stack[0]) < 0.35 * _contrast(stack[1])


def test_absorbers_show_contrast_in_focus_and_emitters_are_sharpest_there() -> None:
    views = {v.family: v for v in family_views(size=64, seed=2)}
    for name, view in views.items():
        fam = FAMILIES[name]
        img = view.images
        assert np.isfinite(img).all()
        if fam.kind == "fluorescence":
            assert float(img.min()) >= -1e-6  # incoherent images of emitters are ≥ 0
            sharp = [float(np.mean(ndimage.sobel(p) ** 2 + ndimage.sobel(p, 0) ** 2)) for p in img]
            assert sharp[1] > max(sharp[0], sharp[2]), name
        elif fam.modality[0] == "absorption":
            assert _contrast(img[1]) > 0.01, name


def test_saturating_emitters_reach_full_well_at_focus() -> None:
    sim = simulate_stack(
        "deepr-40x-fluor",
        sample="point-emitters",
        sample_options={
            "saturate": True,
            "overexposure": 3.0,
            "density_per_100um2": 1.0,
            "diameter_um": 0.1,
            "size_spread": 0.0,
        },
        size=64,
        z_um=[-2.0, 0.0, 2.0],
        photons=500.0,
        seed=4,
    )
    top = sim.optics.camera.max_adu
    assert int(sim.data[1].max()) == top
    assert int(sim.data[0].max()) < top and int(sim.data[2].max()) < top
    assert sim.metadata["render"]["overexposure"] == 3.0


# --------------------------------------------------------------------------- blocks


def test_a_spot_has_the_second_moment_of_its_sphere() -> None:
    """The projection of a uniform sphere of diameter d has per-axis variance d²/20."""
    px, d = 0.05, 2.0
    img = spots((128, 128), px, np.array([64 * px]), np.array([64 * px]), np.array([d]), np.ones(1))
    assert math.isclose(float(img.sum()), 1.0, rel_tol=1e-6)
    y = (np.arange(128) - 64) * px
    var_y = float((img.sum(axis=1) * y**2).sum())
    assert math.isclose(var_y, (d * SPHERE_SIGMA_PER_DIAMETER) ** 2, rel_tol=0.02)
    assert math.isclose((d * SPHERE_SIGMA_PER_DIAMETER) ** 2, d**2 / 20, rel_tol=1e-12)


def test_periodic_component_removes_the_wraparound_jump_only() -> None:
    yy, xx = np.mgrid[0:64, 0:80].astype(float)
    u = xx / 80 + 0.5 * yy / 64 + 0.05 * np.sin(xx / 3.0)  # a ramp: big jump at the wrap
    p = periodic_component(u)
    s = u - p
    # the smooth part is harmonic inside: its periodic Laplacian vanishes off the border
    lap = sum(np.roll(s, k, axis=a) for k in (1, -1) for a in (0, 1)) - 4 * s
    assert float(np.abs(lap[1:-1, 1:-1]).max()) < 1e-9
    jump_u = np.abs(u[:, 0] - u[:, -1]).mean()
    jump_p = np.abs(p[:, 0] - p[:, -1]).mean()
    assert jump_p < 0.1 * jump_u
    # interior detail is kept: the high-frequency sine survives untouched
    assert np.allclose(
        np.diff(p, 2, axis=1)[20:40, 20:60], np.diff(u, 2, axis=1)[20:40, 20:60], atol=2e-3
    )


def test_stain_spectra_peak_where_published_and_rgb_collapse_interpolates() -> None:
    lam = np.linspace(0.4, 0.7, 601)
    h = [hematoxylin_eosin_od(v)[0] for v in lam]
    e = [hematoxylin_eosin_od(v)[1] for v in lam]
    assert abs(lam[int(np.argmax(h))] - 0.585) < 1e-3
    assert abs(lam[int(np.argmax(e))] - 0.525) < 1e-3
    od = np.stack([np.full((2, 2), 3.0), np.full((2, 2), 2.0), np.full((2, 2), 1.0)])  # R, G, B
    assert float(od_at_wavelength(od, 0.54)[0, 0]) == 2.0
    assert float(od_at_wavelength(od, 0.40)[0, 0]) == 1.0
    assert float(od_at_wavelength(od, 0.70)[0, 0]) == 3.0
    assert math.isclose(float(od_at_wavelength(od, 0.50)[0, 0]), 1.5)


def test_conditions_draw_in_range_and_saturate_on_request() -> None:
    rng = np.random.default_rng(0)
    draws = [draw_conditions(rng, saturate_probability=0.5) for _ in range(200)]
    assert all(100 <= c.photons <= 20_000 and 0 <= c.offset_adu <= 500 for c in draws)
    assert 60 < sum(c.saturate for c in draws) < 140
    cam = get_preset("deepr-40x-fluor").optics.camera
    img = np.ones((32, 32), np.float32)
    img[16, 16] = 50.0
    sat = next(c for c in draws if c.saturate)
    assert int(sat.expose(img, cam, 1).max()) == cam.max_adu
    calm = next(c for c in draws if not c.saturate and c.photons < 1000)
    assert int(calm.expose(img, cam, 1).max()) < cam.max_adu
    with pytest.raises(ConfigError, match="photons"):
        draw_conditions(rng, photons=(0, 10))


def test_statistics_describe_the_content() -> None:
    st = family_statistics("cells-sparse", draws=2, size=128)
    assert st["absorbed_fraction"] == [0.0, 0.0, 0.0]
    assert 0 < st["coverage"][1] < 0.5
    st = family_statistics("opaque-particles", draws=2, size=128)
    assert st["absorbed_fraction"][0] > 0 and st["phase_span_rad"][2] == 0
    st = family_statistics("natural-emitters", draws=2, size=128)
    assert 0 < st["coverage"][0] <= st["coverage"][2] <= 1 and st["peak_to_mean"][0] >= 1
