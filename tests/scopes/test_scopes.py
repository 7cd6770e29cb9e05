"""focuskit.scopes: stage safety, counters and timing, the simulated and the replay scope,
the real stacks, failure recovery and scope specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from focuskit import ConfigError, FocuskitError, StackFileError
from focuskit.io import FocalStack, write_stack
from focuskit.optics import Optics, get_preset
from focuskit.scopes import (
    REAL_STACKS,
    FaultyScope,
    Microscope,
    ScopeError,
    SimulatedScope,
    StackScope,
    StageLimitError,
    move_in_steps,
    open_scope,
    real_data_dir,
    real_stack,
    restore_on_failure,
)


def laplacian_variance(image: np.ndarray) -> float:
    return float(ndimage.laplace(image.astype(np.float64)).var())


def synthetic_stack(z: list[float], shape: tuple[int, int] = (8, 6), seed: int = 0) -> FocalStack:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 1000, size=(len(z), *shape)).astype(np.uint16)
    return FocalStack(data, z, 0.5, focus_z_um=z[len(z) // 2])


@pytest.fixture
def stack_scope() -> StackScope:
    return StackScope(synthetic_stack([0.0, 1.0, 2.0, 4.0, 8.0]), start_z_um=2.0, max_step_um=3.0)


# --- Stage safety -------------------------------------------------------------------------


def test_scopes_implement_the_protocol(stack_scope: StackScope) -> None:
    sim = SimulatedScope("deepfocus-10x", size=32, photons=None)
    for scope in (stack_scope, sim, FaultyScope(sim)):
        assert isinstance(scope, Microscope)
    assert sim.pixel_size_um == pytest.approx(0.65)
    assert isinstance(sim.optics, Optics)


@pytest.mark.parametrize(
    "target, why",
    [
        (-0.5, "outside"),
        (8.5, "outside"),
        (5.5, "largest step"),
        (float("nan"), "not finite"),
        (float("inf"), "not finite"),
        ("two", "must be a number"),
    ],
)
def test_refused_moves_leave_the_stage_and_counters_unchanged(
    stack_scope: StackScope, target: object, why: str
) -> None:
    with pytest.raises(StageLimitError, match=why) as info:
        stack_scope.move_to(target)
    assert isinstance(info.value, FocuskitError)
    assert "stays at z=2" in str(info.value)
    assert stack_scope.z_um == 2.0
    assert (stack_scope.moves, stack_scope.travel_um, stack_scope.elapsed_s) == (0, 0.0, 0.0)


def test_moves_at_the_limits_and_at_max_step_are_allowed(stack_scope: StackScope) -> None:
    stack_scope.move_to(5.0)  # exactly max_step
    stack_scope.move_to(8.0)  # upper limit
    assert stack_scope.z_um == 8.0
    with pytest.raises(StageLimitError):
        stack_scope.move_to(0.0)  # in limits but 8 µm away
    assert move_in_steps(stack_scope, 0.0) == 3  # 8 µm in steps of ≤ 3 µm
    assert stack_scope.z_um == 0.0


def test_counters_and_elapsed_time_follow_the_timing_model() -> None:
    scope = StackScope(
        synthetic_stack([0.0, 10.0, 20.0]),
        start_z_um=0.0,
        exposure_time_s=0.1,
        move_overhead_s=0.5,
        stage_speed_um_s=4.0,
    )
    scope.snap()
    scope.move_to(12.0)
    scope.snap()
    scope.snap()
    scope.move_to(4.0)
    scope.move_to(4.0)  # a zero-length move still costs its overhead
    assert (scope.exposures, scope.moves) == (3, 3)
    assert scope.travel_um == pytest.approx(20.0)
    assert scope.elapsed_s == pytest.approx(3 * 0.1 + 3 * 0.5 + 20.0 / 4.0)
    scope.reset_counters()
    assert (scope.exposures, scope.moves, scope.travel_um, scope.elapsed_s) == (0, 0, 0.0, 0.0)
    assert scope.clock_s == pytest.approx(6.8)  # the simulated clock keeps running
    assert scope.z_um == 4.0


def test_default_timing_model() -> None:
    scope = StackScope(synthetic_stack([0.0, 500.0]), start_z_um=0.0)
    scope.move_to(500.0)
    scope.snap()
    assert scope.elapsed_s == pytest.approx(0.05 + 0.02 + 500 / 1000)


def test_bad_scope_parameters_are_config_errors() -> None:
    stack = synthetic_stack([0.0, 1.0])
    with pytest.raises(ConfigError, match="outside the z limits"):
        StackScope(stack, start_z_um=3.0)
    with pytest.raises(ConfigError, match="max_step_um"):
        StackScope(stack, max_step_um=0)
    with pytest.raises(ConfigError, match="stage_speed_um_s"):
        StackScope(stack, stage_speed_um_s=-1)
    with pytest.raises(ConfigError, match="unknown preset"):
        SimulatedScope("no-such-scope")
    with pytest.raises(ConfigError, match="transmitted-light"):
        SimulatedScope("fcfnn-20x-led", sample="fluorescent-tissue")


# --- SimulatedScope -------------------------------------------------------------------------


def test_simulated_scope_is_reproducible_for_a_seed() -> None:
    def run(seed: int) -> list[np.ndarray]:
        scope = SimulatedScope("deepfocus-10x", size=48, seed=seed)
        images = [scope.snap()]
        scope.move_to(5.0)
        images += [scope.snap(), scope.snap()]
        return images

    a, b, c = run(3), run(3), run(4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a[0].dtype == np.uint16
    assert not np.array_equal(a[1], a[2])  # fresh noise per exposure
    assert not np.array_equal(a[0], c[0])
    assert SimulatedScope("deepfocus-10x", size=32, seed=3).true_focus_um() == pytest.approx(
        SimulatedScope("deepfocus-10x", size=32, seed=3).true_focus_um()
    )


def test_hidden_focus_is_drawn_within_half_the_preset_range() -> None:
    p = get_preset("deepfocus-10x")
    foci = [SimulatedScope(p, size=16, seed=s, photons=None).true_focus_um() for s in range(8)]
    assert all(p.z_min_um / 2 <= f <= p.z_max_um / 2 for f in foci)
    assert len(set(foci)) == 8
    scope = SimulatedScope(p, size=16, focus_z_um=50.0, photons=None)
    assert scope.z_limits_um == (p.z_min_um, 50.0 + p.z_max_um)  # range kept around the focus


@pytest.mark.parametrize(
    "preset, options",
    [
        # Unstained (phase) cells are almost invisible in focus under one LED or a
        # symmetric condenser; the DPC half annulus of the paper's ground truth shows them.
        (
            "fcfnn-20x-led",
            {"illumination": get_preset("fcfnn-20x-led").ground_truth_illumination, "photons": 1e4},
        ),
        ("deepr-20x-fluor", {}),
        ("deepfocus-10x", {}),
    ],
)
def test_image_at_the_true_focus_is_sharpest(preset: str, options: dict) -> None:
    scope = SimulatedScope(preset, size=128, seed=2, **options)
    focus = scope.true_focus_um()
    dof = scope.optics.depth_of_field_um
    sharpness = {}
    for dz in (-3 * dof, 0.0, 3 * dof):
        scope.move_to(focus + dz)
        sharpness[dz] = laplacian_variance(scope.snap())
    assert sharpness[0.0] > 1.5 * max(sharpness[-3 * dof], sharpness[3 * dof])


def test_repeated_z_reuses_the_cached_render() -> None:
    scope = SimulatedScope("deepr-20x-fluor", size=64, focus_z_um=1.0, seed=0)
    scope.move_to(1.0)  # the true focus: the exposure reference is this same render
    first = scope.snap()
    assert scope.renders == 1
    second = scope.snap()
    assert scope.renders == 1 and scope.cache_hits >= 1
    assert not np.array_equal(first, second)  # same render, fresh noise
    scope.move_to(1.0 + 0.0004)  # within the 1 nm cache quantum
    scope.snap()
    assert scope.renders == 1
    scope.move_to(3.0)
    scope.snap()
    assert scope.renders == 2


def test_noise_free_snaps_are_the_render_at_the_defocus() -> None:
    scope = SimulatedScope("deepfocus-10x", size=48, focus_z_um=-7.0, photons=None)
    scope.move_to(3.0)
    image = scope.snap()
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, scope.render(10.0))
    image[:] = 0  # a snap is the caller's copy; the cache is untouched
    assert scope.render(10.0).any()


def test_fixed_exposure_sets_the_in_focus_photon_count() -> None:
    scope = SimulatedScope("deepfocus-10x", size=64, seed=1, photons=500.0)
    scope.move_to(scope.true_focus_um())
    offset = scope.optics.camera.offset_adu
    assert scope.snap().mean() - offset == pytest.approx(500.0, rel=0.02)


def test_drift_moves_the_true_focus_with_simulated_time() -> None:
    scope = SimulatedScope(
        "deepfocus-10x",
        size=48,
        focus_z_um=0.0,
        photons=None,
        drift_um_per_s=2.0,
        exposure_time_s=0.5,
        move_overhead_s=0.0,
    )
    assert scope.true_focus_um() == 0.0
    first = scope.snap()  # exposed at t = 0: in focus
    np.testing.assert_array_equal(first, scope.render(0.0))
    second = scope.snap()  # exposed at t = 0.5 s: the focus is now at +1 µm
    np.testing.assert_array_equal(second, scope.render(-1.0))
    assert scope.true_focus_um() == pytest.approx(2.0)
    scope.move_to(10.0)  # travel takes time too: 10 µm at 1000 µm/s
    assert scope.true_focus_um() == pytest.approx(2.0 * (1.0 + 0.01))
    scope.reset_counters()  # the clock, and so the drift, does not go back
    assert scope.true_focus_um() == pytest.approx(2.02)


# --- StackScope ----------------------------------------------------------------------------


@pytest.mark.parametrize("z", [[0.0, 1.0, 3.0, 6.0], [6.0, 3.0, 1.0, 0.0]])
def test_stack_scope_nearest_and_interpolated_planes(z: list[float]) -> None:
    stack = synthetic_stack(z)
    plane = {zi: stack.data[i].astype(np.float32) for i, zi in enumerate(z)}
    nearest = StackScope(stack, interpolate=False)
    linear = StackScope(stack, interpolate=True)
    assert nearest.z_limits_um == linear.z_limits_um == (0.0, 6.0)
    assert nearest.z_um == 3.0  # default start: the middle of the z range

    cases = [(0.0, 0.0), (0.4, 0.0), (0.6, 1.0), (2.2, 3.0), (5.0, 6.0), (6.0, 6.0)]
    for target, expected in cases:
        nearest.move_to(target)
        image = nearest.snap()
        assert image.dtype == np.uint16
        np.testing.assert_array_equal(image, stack.data[z.index(expected)])

    for target in z:
        linear.move_to(target)
        np.testing.assert_array_equal(linear.snap(), plane[target])
    linear.move_to(2.0)  # midpoint of the uneven 1 → 3 µm interval
    np.testing.assert_allclose(linear.snap(), (plane[1.0] + plane[3.0]) / 2, rtol=1e-6)
    linear.move_to(3.75)  # a quarter of the way from 3 to 6 µm
    np.testing.assert_allclose(linear.snap(), 0.75 * plane[3.0] + 0.25 * plane[6.0], rtol=1e-6)
    assert linear.true_focus_um() == stack.focus_z_um


def test_stack_scope_adds_fresh_seeded_noise() -> None:
    stack = FocalStack(np.full((2, 64, 64), 100, np.uint16), [0.0, 1.0], 0.5)
    a = StackScope(stack, noise=5.0, seed=1)
    b = StackScope(stack, noise=5.0, seed=1)
    x, y = a.snap(), a.snap()
    np.testing.assert_array_equal(x, b.snap())
    assert not np.array_equal(x, y)
    assert float((x - 100).std()) == pytest.approx(5.0, rel=0.1)


def test_stack_scope_reads_a_path_with_read_options(tmp_path) -> None:
    path = tmp_path / "plain.npy"
    np.save(path, np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5))
    scope = StackScope(path, pixel_size_um=0.2, z_step_um=0.5, interpolate=False)
    assert scope.z_limits_um == (0.0, 1.0) and scope.pixel_size_um == 0.2
    assert scope.true_focus_um() is None
    with pytest.raises(ConfigError, match="apply when reading"):
        StackScope(synthetic_stack([0.0, 1.0]), pixel_size_um=0.2)


# --- Real stacks -------------------------------------------------------------------------


def _real_data_available() -> bool:
    try:
        real_data_dir()
    except StackFileError:
        return False
    return True


needs_real_data = pytest.mark.skipif(
    not _real_data_available(), reason="shared/data/real not found (set FOCUSKIT_REAL_DATA)"
)

# name: (z range documented in SOURCE.md (µm), documented in-focus plane, its z)
REAL_EXPECTED = {
    # "Defocus range: −0.95 … +0.70 µm"; "plane index 19, defocus 0.0 µm"
    "llsm_mitochondria_defocus": ((-0.95, 0.70), 19, 0.0),
    # "pseudo-random within ±50 µm" (z_positions.csv: −37.81 … 49.77); "z = 0 (plane 4)"
    "wafer_reflected_brightfield": ((-37.812299231626135, 49.772876856006555), 4, 0.0),
    # "z-step: 0.3 µm. Planes: 25 (span 7.2 µm)"; "maximum intensity at plane 12"
    "bead_psf_na085": ((0.0, 7.2), 12, 3.6),
}


@needs_real_data
@pytest.mark.parametrize("name", sorted(REAL_EXPECTED))
def test_real_stack_replays_the_documented_focus(name: str) -> None:
    (z_lo, z_hi), focus_plane, focus_z = REAL_EXPECTED[name]
    stack = real_stack(name)
    assert stack.focus_z_um == pytest.approx(focus_z)
    assert stack.metadata["real"]["focus_plane"] == focus_plane
    assert stack.metadata["real"]["documented_focus_plane"] == focus_plane
    for interpolate in (False, True):
        scope = StackScope(stack, interpolate=interpolate)
        assert scope.z_limits_um == pytest.approx((z_lo, z_hi))
        move_in_steps(scope, scope.true_focus_um())
        image = scope.snap()
        assert image.ndim == 2
        np.testing.assert_array_equal(image, stack.data[focus_plane].astype(image.dtype))


@needs_real_data
def test_real_stack_metadata() -> None:
    assert set(REAL_STACKS) == set(REAL_EXPECTED)
    wafer = real_stack("wafer_reflected_brightfield")
    assert wafer.shape == (11, 1200, 1920) and wafer.dtype == np.float32  # RGB → luminance
    assert wafer.pixel_size_um == pytest.approx(0.286, abs=1e-3)
    assert not np.all(np.diff(np.diff(wafer.z_um)) == 0)  # non-uniform z
    bead = real_stack("bead_psf_na085")
    assert bead.pixel_size_um == 0.13 and bead.z_step_um == pytest.approx(0.3)
    llsm = real_stack("llsm_mitochondria_defocus", pixel_size_um=0.104)
    assert llsm.pixel_size_um == 0.104 and llsm.metadata["real"]["pixel_size_known"]
    assert not real_stack("llsm_mitochondria_defocus").metadata["real"]["pixel_size_known"]
    with pytest.raises(ConfigError, match="unknown real stack"):
        real_stack("nope")


def test_real_data_dir_errors_name_the_fix(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FOCUSKIT_REAL_DATA", str(tmp_path / "missing"))
    with pytest.raises(StackFileError, match="FOCUSKIT_REAL_DATA"):
        real_data_dir()
    monkeypatch.setenv("FOCUSKIT_REAL_DATA", str(tmp_path))
    assert real_data_dir() == tmp_path


# --- Failure recovery ----------------------------------------------------------------------


def test_camera_failure_mid_run_returns_the_stage_to_its_start() -> None:
    scope = FaultyScope(
        StackScope(synthetic_stack([0.0, 10.0, 20.0]), start_z_um=10.0, max_step_um=4.0),
        fail_after_snaps=2,
    )
    with (
        pytest.raises(ScopeError, match=r"camera failed.*returned to z=10 µm") as info,
        restore_on_failure(scope),
    ):
        for z in (13.0, 16.0, 19.0):
            scope.move_to(z)
            scope.snap()
    assert scope.z_um == 10.0
    assert isinstance(info.value.__cause__, ScopeError)
    assert "camera failed on exposure 3" in str(info.value.__cause__)
    assert scope.moves == 3 + 3  # 9 µm back in steps of ≤ 4 µm


def test_any_error_in_the_body_is_wrapped_and_the_stage_restored() -> None:
    scope = StackScope(synthetic_stack([0.0, 10.0]), start_z_um=2.0)
    with (
        pytest.raises(ScopeError, match=r"ZeroDivisionError.*returned to z=2 µm"),
        restore_on_failure(scope),
    ):
        scope.move_to(7.5)
        1 / 0  # noqa: B018
    assert scope.z_um == 2.0
    with restore_on_failure(scope):  # success: the stage stays where the body left it
        scope.move_to(6.0)
    assert scope.z_um == 6.0
    # propagates unchanged, stage restored
    with pytest.raises(KeyboardInterrupt), restore_on_failure(scope):
        scope.move_to(9.0)
        raise KeyboardInterrupt
    assert scope.z_um == 6.0


def test_stage_failures_persistent_and_transient() -> None:
    broken = FaultyScope(
        StackScope(synthetic_stack([0.0, 10.0]), start_z_um=0.0), fail_after_moves=1
    )
    with (
        pytest.raises(ScopeError, match=r"could NOT be returned to z=0 µm.*it is at z=5 µm"),
        restore_on_failure(broken),
    ):
        broken.move_to(5.0)
        broken.move_to(6.0)  # stage failed: stays at 5, and cannot go back either
    assert broken.z_um == 5.0

    flaky = FaultyScope(
        StackScope(synthetic_stack([0.0, 10.0]), start_z_um=0.0), fail_after_moves=1, transient=True
    )
    with (
        pytest.raises(ScopeError, match=r"stage failed on move 2.*returned to z=0 µm"),
        restore_on_failure(flaky),
    ):
        flaky.move_to(5.0)
        flaky.move_to(6.0)
    assert flaky.z_um == 0.0


# --- open_scope ----------------------------------------------------------------------------


def test_open_scope_parses_specs(tmp_path) -> None:
    sim = open_scope("sim:deepfocus-10x", size=32, photons=None, focus_z_um=1.0)
    assert isinstance(sim, SimulatedScope) and sim.preset.name == "deepfocus-10x"
    assert sim.true_focus_um() == 1.0
    path = tmp_path / "s.ome.tif"
    write_stack(synthetic_stack([-1.0, 0.0, 1.0]), path)
    replay = open_scope(f"stack:{path}", interpolate=False)
    assert isinstance(replay, StackScope) and replay.z_limits_um == (-1.0, 1.0)
    assert replay.true_focus_um() == 0.0


@needs_real_data
def test_open_scope_real() -> None:
    scope = open_scope("real:bead_psf_na085", max_step_um=1.0)
    assert isinstance(scope, StackScope) and scope.max_step_um == 1.0
    assert scope.true_focus_um() == pytest.approx(3.6)


@pytest.mark.parametrize("spec", ["mmcore", "foo:bar", "sim:", "", "simulated:fcfnn-20x-led"])
def test_open_scope_rejects_unknown_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"sim:PRESET.*stack:PATH"):
        open_scope(spec)


def test_open_scope_passes_on_specific_errors() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        open_scope("sim:nope")
    with pytest.raises(StackFileError, match="not found"):
        open_scope("stack:/no/such/file.ome.tif")
    assert math.isfinite(open_scope("sim:deepr-40x-fluor", size=128, photons=None).true_focus_um())


def test_stage_resolution_snaps_targets_within_limits() -> None:
    import numpy as np

    from focuskit.io import FocalStack
    from focuskit.scopes import StackScope

    stack = FocalStack(np.zeros((5, 8, 8), np.float32), np.linspace(-1.0, 1.0, 5), 0.1)
    scope = StackScope(stack, stage_resolution_um=0.3, start_z_um=0.0)
    scope.move_to(0.41)
    assert scope.z_um == pytest.approx(0.3)
    scope.move_to(1.0)  # 0.9 or 1.2 on the grid: 1.2 is out of limits, so 0.9
    assert scope.z_um == pytest.approx(0.9)
    scope.move_to(-1.0)
    assert scope.z_um == pytest.approx(-0.9)
