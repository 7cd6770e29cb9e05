"""Single-shot defocus prediction: features, model, training, model folders, prediction."""

from __future__ import annotations

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.optics import LED, get_preset
from focuskit.simulate import make_sample, render_stack
from focuskit.singleshot import (
    DefocusModel,
    FourierRegion,
    OODReference,
    TrainConfig,
    fit_fcfnn,
    fourier_features,
    region_for,
    simulate_examples,
    split_by_field,
    split_tiles,
)

torch = pytest.importorskip("torch")

OPTICS = get_preset("fcfnn-20x-led").optics
TILE = 256


def _image(
    z: float, seed: int = 99, size: int = TILE, sample: str = "cells", photons: float | None = 2000
) -> np.ndarray:
    s = make_sample(
        sample, (size + 256, size + 256), OPTICS.pixel_size_um, seed=seed, wavelength_um=0.53
    )
    return render_stack(s.values, OPTICS, [z], shape=(size, size), photons=photons, seed=seed).data[
        0
    ]


@pytest.fixture(scope="module")
def trained() -> tuple[DefocusModel, object, object]:
    """A small model on 30 simulated 256² fields: seconds, not minutes. Trained on ±30 µm,
    trusting ±20 µm, as the bundled model is trained on ±45 and trusts ±30."""
    torch.manual_seed(0)
    ex = simulate_examples(
        30, size=TILE, tile=TILE, z_um=np.arange(-30.0, 30.1, 2.0), seed=5, incoherent_every=0
    )
    train, val = split_by_field(ex, 0.25, seed=1)
    net, history = fit_fcfnn(
        train,
        val,
        TrainConfig(
            width=64, depth=3, max_steps=900, eval_every=100, patience=20, z_scale_um=30.0, seed=0
        ),
    )
    model = DefocusModel.from_training(
        net, region_for(OPTICS, TILE), OPTICS, train, validation=val, trusted_range_um=(-20.0, 20.0)
    )
    return model, history, val


def test_feature_mask_is_the_two_pupil_discs() -> None:
    region = FourierRegion(
        tile=512, pixel_size_um=0.325, na=0.5, wavelength_um=0.53, sx=0.407, bin=4
    )
    fy, fx = region.frequencies()
    r = 0.5 / 0.53
    d_plus = np.hypot(fx - 0.407 / 0.53, fy)
    d_minus = np.hypot(fx + 0.407 / 0.53, fy)
    mask = region.mask()
    np.testing.assert_array_equal(mask, (d_plus <= r) | (d_minus <= r))
    assert mask.sum() == region.n_features
    # Half of the two discs (Hermitian symmetry): only fx ≥ 0 cells exist in the rfft half-plane.
    assert np.all(fx >= 0)
    # The +s disc is complete up to Nyquist, the −s disc contributes only its fx ≥ 0 sliver.
    assert (mask & (d_plus <= r)).sum() > 4 * (mask & (d_minus <= r) & (d_plus > r)).sum()


def test_features_hold_the_single_scattering_energy_of_an_led_image() -> None:
    """A weak phase object's cross terms live in the discs (Fig. S2): almost all spectral
    energy of the image outside the origin lies on masked cells."""
    rng = np.random.default_rng(3)
    import scipy.ndimage

    phi = scipy.ndimage.gaussian_filter(rng.normal(size=(768, 768)), 2)
    t = np.exp(1j * 0.05 * phi / phi.std()).astype(np.complex64)
    image = render_stack(t, OPTICS, [4.0], shape=(TILE, TILE)).data[0]
    region = FourierRegion(
        tile=TILE, pixel_size_um=0.325, na=0.5, wavelength_um=0.53, sx=0.407, bin=1
    )
    power = np.fft.fftshift(np.abs(np.fft.rfft2(image - image.mean())) ** 2, axes=0)
    fy, fx = region.frequencies()
    dc = np.hypot(fx, fy) < 3 / (TILE * 0.325)
    assert power[region.mask()].sum() > 0.97 * power[~dc].sum()


def test_features_have_unit_mean_and_refuse_bad_images() -> None:
    region = region_for(OPTICS, TILE)
    f = fourier_features(_image(5.0), region)
    assert f.shape == (1, region.n_features)
    assert f.mean() == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ConfigError, match="NaN"):
        fourier_features(np.full((TILE, TILE), np.nan), region)
    with pytest.raises(ConfigError, match="constant"):
        fourier_features(np.ones((TILE, TILE)), region)
    with pytest.raises(ConfigError, match="smaller than one"):
        split_tiles(np.ones((100, 300)), TILE)


def test_tiles_cover_the_centred_grid() -> None:
    image = np.arange(600 * 520, dtype=np.float32).reshape(600, 520)
    tiles = split_tiles(image, 256)
    assert tiles.shape == (4, 256, 256)
    np.testing.assert_array_equal(tiles[0], image[44:300, 4:260])
    np.testing.assert_array_equal(tiles[3], image[300:556, 260:516])


def test_training_loss_falls_and_validation_beats_guessing(trained) -> None:  # type: ignore[no-untyped-def]
    _model, history, val = trained
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    # The constant predictor (the mean label) scores the labels' standard deviation (~18 µm);
    # 83 µm fields hold few cells, so a tiny model beats it but not by much — the bundled
    # 1024² model's accuracy is tested below and measured in bench/singleshot.py.
    assert history.best_val_rmse_um < float(np.std(val.z_um))


def test_model_folder_round_trip_keeps_predictions_and_statistics(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, _, val = trained
    path = model.save(tmp_path / "m")
    assert {p.name for p in path.iterdir()} == {"config.json", "weights.safetensors"}
    again = DefocusModel.load(path)
    for name in ("feature_mean", "feature_std"):
        np.testing.assert_array_equal(
            getattr(again.net, name).numpy(), getattr(model.net, name).numpy()
        )
    a = model.predict_features(val.features[:20])
    b = again.predict_features(val.features[:20])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ConfigError, match="exists"):
        model.save(tmp_path / "m")


def test_mismatched_microscopes_are_refused_unless_forced(trained) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = trained
    image = _image(3.0)
    with pytest.raises(ConfigError, match="pixel size"):
        model.predict(image, pixel_size_um=0.65)
    with pytest.raises(ConfigError, match="illumination"):
        model.predict(image, optics=OPTICS.with_illumination(LED(sx=0.2)))
    with pytest.raises(ConfigError, match="--pixel-size"):
        model.predict(image)
    forced = model.predict(image, pixel_size_um=0.65, force=True)
    assert any("forced" in n for n in forced.notes)
    assumed = model.predict(image, pixel_size_um=0.325)
    assert any("assumed" in n for n in assumed.notes)


def test_sigma_recalibration_is_exact_on_the_calibration_fields(trained) -> None:  # type: ignore[no-untyped-def]
    """After recalibration, the validation fields' mean (error/σ)² is 1 by construction
    (the error of |z| for a |z| + sign model: the sign has its own probability)."""
    model, _, val = trained
    z, sigma, _ = model.predict_features(val.features)
    truth = val.z_um
    if model.net.config.magnitude:
        z, truth = np.abs(z), np.abs(truth)
    assert np.mean(((z - truth) / sigma) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert np.all(sigma > 0) and model.sigma_scale > 0


# --- The bundled model (ships in the package; trained by scripts/train_fcfnn.py) -----------


@pytest.fixture(scope="module")
def builtin() -> DefocusModel:
    return DefocusModel.load("builtin:singleshot-20x-led")


def _field(z: float, seed: int, sample: str = "cells", density: float = 0.35) -> np.ndarray:
    options = {"density": density} if sample == "cells" else {}
    s = make_sample(
        sample, (1400, 1400), OPTICS.pixel_size_um, seed=seed, wavelength_um=0.53, **options
    )
    return render_stack(s.values, OPTICS, [z], shape=(1024, 1024), photons=1000, seed=seed).data[0]


def test_builtin_model_sign_follows_optics_md(builtin: DefocusModel) -> None:
    """Trained on the simulator, the model says + for an image taken at +z (focal plane
    above the sample) and − below: the focus drive then moves by −z."""
    for z in (-12.0, 12.0):
        pred = [builtin.predict(_field(z, seed), pixel_size_um=0.325).z_um for seed in (31, 32)]
        assert np.sign(np.median(pred)) == np.sign(z)
        assert abs(np.median(pred) - z) < 3.0


def test_builtin_model_flags_images_beyond_its_range(builtin: DefocusModel) -> None:
    assert builtin.z_range_um == (-30.0, 30.0)
    inside = builtin.predict(_field(8.0, 41), pixel_size_um=0.325)
    beyond = [builtin.predict(_field(z, 41), pixel_size_um=0.325) for z in (-40.0, 40.0)]
    assert inside.in_range
    assert not any(p.in_range for p in beyond)


def test_builtin_model_flags_an_unfamiliar_sample(builtin: DefocusModel) -> None:
    stained = builtin.predict(
        _field(5.0, 43, sample="tissue"), pixel_size_um=0.325
    )  # an absorber, not cells
    assert not stained.in_range
    assert any("unlike the training data" in n for n in stained.notes)


def test_builtin_model_uncertainty_covers_held_out_errors(builtin: DefocusModel) -> None:
    z_true = np.arange(-27.0, 28.0, 6.0)
    errors, sigmas = [], []
    for seed in (51, 52, 53):
        for z in z_true:
            p = builtin.predict(_field(float(z), seed), pixel_size_um=0.325)
            errors.append(p.z_um - z)
            sigmas.append(p.sigma_um)
    coverage = np.mean(np.abs(errors) <= 2 * np.asarray(sigmas))
    assert coverage >= 0.8  # 2σ of a Gaussian: 0.95


def test_ood_reference_separates_a_shifted_cluster() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(2000, 40)).astype(np.float32)
    ref = OODReference.fit(train)
    assert ref.familiar(rng.normal(size=(500, 40)).astype(np.float32)).mean() > 0.95
    assert ref.familiar(rng.normal(loc=3.0, size=(500, 40)).astype(np.float32)).mean() < 0.05


def test_fine_tuning_starts_from_the_given_model(trained) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = trained
    ex = simulate_examples(
        4,
        size=TILE,
        tile=TILE,
        z_um=np.arange(-20.0, 20.1, 4.0),
        seed=8,
        density_range=(0.8, 0.9),
        incoherent_every=0,
    )
    train, val = split_by_field(ex, 0.25, seed=0)
    before = model.net.feature_mean.clone()
    import copy

    net, history = fit_fcfnn(
        train,
        val,
        TrainConfig(width=64, depth=3, max_steps=100, eval_every=50, z_scale_um=30.0),
        init=copy.deepcopy(model.net),
    )
    assert net is not model.net and torch.equal(net.feature_mean, before)  # input convention kept
    assert history.steps[-1] == 100


def test_checkpoint_resume_continues_where_it_stopped(tmp_path) -> None:
    ex = simulate_examples(
        4, size=128, tile=128, z_um=np.arange(-10.0, 10.1, 5.0), seed=3, incoherent_every=0
    )
    train, val = split_by_field(ex, 0.25, seed=0)
    cfg = TrainConfig(width=16, depth=2, max_steps=60, eval_every=20, z_scale_um=10.0)
    _, first = fit_fcfnn(
        train, val, TrainConfig(**{**cfg.to_dict(), "max_steps": 40}), checkpoint_dir=tmp_path
    )
    _, resumed = fit_fcfnn(train, val, cfg, checkpoint_dir=tmp_path, resume=True)
    assert resumed.steps == [20, 40, 60] and resumed.val_rmse_um[:2] == first.val_rmse_um
    with pytest.raises(ConfigError, match="resume"):
        fit_fcfnn(train, val, cfg, checkpoint_dir=tmp_path / "none", resume=True)


def test_a_model_folder_from_another_architecture_is_refused_in_one_line(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    model, _, _ = trained
    path = model.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["architecture"]["width"] = 7
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="retrain"):
        DefocusModel.load(path)


def test_log_features_on_the_overlap_cells() -> None:
    """The content-invariant options: log-standardized magnitudes, and the overlap of the
    two discs (a subset of them) where one LED's image holds the defocus."""
    discs = region_for(OPTICS, TILE)
    overlap = region_for(OPTICS, TILE, transform="log", cells="overlap")
    assert np.all(discs.mask()[overlap.mask()])
    assert 0 < overlap.n_features < 0.1 * discs.n_features
    fy, fx = overlap.frequencies()
    r, c = 0.5 / 0.53, 0.407 / 0.53
    inside = overlap.mask()
    assert np.all(np.hypot(fx - c, fy)[inside] <= r) and np.all(np.hypot(fx + c, fy)[inside] <= r)
    image = _image(8.0)
    f = fourier_features(split_tiles(image, TILE), overlap)
    assert f.shape == (1, overlap.n_features)
    assert abs(float(f.mean())) < 1e-4 and float(f.std()) == pytest.approx(1.0, rel=1e-3)
    # Scale-free: a brighter exposure of the same image gives the same features.
    np.testing.assert_allclose(fourier_features(3 * image + 100.0, overlap), f, atol=1e-4)
    with pytest.raises(ConfigError, match="cells"):
        region_for(OPTICS, TILE, cells="ring")
    with pytest.raises(ConfigError, match="transform"):
        region_for(OPTICS, TILE, transform="sqrt")
