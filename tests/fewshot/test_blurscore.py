"""DeepFocus blur score: training patches, the CNN, training, model folders, the score map."""

from __future__ import annotations

import math

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.fewshot import (
    BlurDataConfig,
    BlurPatches,
    BlurScorer,
    BlurTrainConfig,
    blur_patches_from_stack,
    defocus_otf,
    fit_blur_cnn,
    simulate_blur_patches,
    split_patches_by_field,
    waves_per_um,
)
from focuskit.nn import augment_d4, builtin_models, patch_origins
from focuskit.optics import get_preset

torch = pytest.importorskip("torch")

TINY = BlurDataConfig(n_fields=12, waves_per_field=3, field_size=256, seed=3)


@pytest.fixture(scope="module")
def tiny_patches() -> BlurPatches:
    return simulate_blur_patches(TINY)


@pytest.fixture(scope="module")
def tiny_model(tiny_patches: BlurPatches):  # type: ignore[no-untyped-def]
    train, val = split_patches_by_field(tiny_patches, 0.25, seed=0)
    config = BlurTrainConfig(
        channels=(4, 8, 8),
        max_steps=60,
        eval_every=10,
        batch_size=16,
        patience=100,
        num_threads=1,
        learning_rate=3e-3,
    )
    return fit_blur_cnn(train, val, config)


def test_waves_per_um_has_the_paraxial_limit() -> None:
    # dW/dz = (n − √(n² − NA²))/λ → NA²/(2nλ) for small NA.
    assert waves_per_um(0.05, 0.5) == pytest.approx(0.05**2 / (2 * 0.5), rel=1e-3)
    assert waves_per_um(0.3, 0.52) == pytest.approx((1 - math.sqrt(1 - 0.09)) / 0.52)


def test_otf_is_normalized_band_limited_and_symmetric_in_defocus_sign() -> None:
    n, c = 128, 0.2
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    for w in (0.0, 1.5):
        otf = defocus_otf(n, c, w)
        assert otf[0, 0] == pytest.approx(1.0)
        # The incoherent OTF is the pupil autocorrelation: nothing beyond 2·NA/λ.
        assert np.abs(otf[f > 2 * c + 2 / n]).max() < 1e-9
    # Intensity PSF at ±z is identical for a pupil with no other aberration (OPTICS.md).
    np.testing.assert_allclose(defocus_otf(n, c, 2.0), defocus_otf(n, c, -2.0), atol=1e-12)
    # Defocus only lowers the modulation transfer.
    assert np.all(np.abs(defocus_otf(n, c, 2.0)) <= np.abs(defocus_otf(n, c, 0.0)) + 1e-9)


def test_patches_are_standardized_reproducible_and_lose_detail_with_defocus(
    tiny_patches: BlurPatches,
) -> None:
    x = tiny_patches.images.astype(np.float32)
    assert x.shape[1:] == (128, 128) and len(tiny_patches) == 12 * 3 * 4
    np.testing.assert_allclose(x.mean(axis=(1, 2)), 0, atol=2e-3)
    np.testing.assert_allclose(x.std(axis=(1, 2)), 1, atol=2e-3)
    again = simulate_blur_patches(TINY)
    np.testing.assert_array_equal(again.images, tiny_patches.images)
    np.testing.assert_array_equal(again.waves, tiny_patches.waves)


def test_without_noise_a_blurrier_patch_of_the_same_field_has_less_fine_detail() -> None:
    config = BlurDataConfig(
        n_fields=8,
        waves_per_field=3,
        field_size=256,
        seed=4,
        photons_range=(1e9, 1e9),
        read_noise_e=0.0,
    )
    p = simulate_blur_patches(config)
    x = p.images.astype(np.float32)
    gradient = (np.diff(x, axis=2) ** 2).mean(axis=(1, 2))
    for fid in np.unique(p.field):
        for tile in range(4):
            sel = np.flatnonzero(p.field == fid)[tile::4]
            order = np.argsort(p.waves[sel])
            w, g = p.waves[sel][order], gradient[sel][order]
            if w[-1] - w[0] > 0.5:  # pupils differ by ≥ ½ wave
                assert g[0] > g[-1], (fid, w, g)


def test_patches_from_a_stack_label_defocus_in_waves() -> None:
    stack = np.random.default_rng(0).random((3, 140, 300)).astype(np.float32)
    p = blur_patches_from_stack(
        stack, np.array([-10.0, 0.0, 5.0]), 0.0, na=0.3, wavelength_um=0.52, pixel_size_um=0.65
    )
    assert len(p) == 3 * 2
    np.testing.assert_allclose(
        p.waves[::2], np.array([10, 0, 5]) * waves_per_um(0.3, 0.52), rtol=1e-6
    )
    with pytest.raises(ConfigError, match="one z per plane"):
        blur_patches_from_stack(
            stack, np.zeros(2), 0.0, na=0.3, wavelength_um=0.52, pixel_size_um=0.65
        )


def test_d4_augmentation_gives_the_eight_symmetries() -> None:
    x = torch.arange(16.0).reshape(1, 4, 4)
    seen = {tuple(augment_d4(x, k).flatten().tolist()) for k in range(8)}
    assert len(seen) == 8


def test_training_loss_falls_and_the_split_is_by_field(tiny_patches, tiny_model) -> None:  # type: ignore[no-untyped-def]
    train, val = split_patches_by_field(tiny_patches, 0.25, seed=0)
    assert not set(train.field) & set(val.field)
    _, history = tiny_model
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_val_mae_waves == min(history.val_mae_waves)


def test_model_folder_round_trip_gives_identical_scores(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    net, _ = tiny_model
    scorer = BlurScorer(net, num_threads=1)
    image = np.random.default_rng(1).random((200, 300)).astype(np.float32) * 100
    folder = scorer.save(tmp_path / "m")
    again = BlurScorer.load(folder, num_threads=1)
    np.testing.assert_array_equal(again.score_map(image), scorer.score_map(image))
    with pytest.raises(ConfigError, match="already exists"):
        scorer.save(folder)


def test_score_map_grid_and_bad_images(tiny_model) -> None:  # type: ignore[no-untyped-def]
    scorer = BlurScorer(tiny_model[0], num_threads=1)
    assert list(patch_origins(300, 128)) == [0, 86, 172]
    assert list(patch_origins(128, 128)) == [0]
    assert scorer.score_map(np.ones((256, 384)) + np.eye(256, 384)).shape == (2, 3)
    assert scorer.score_map(np.random.default_rng(1).random((256, 256)), stride=64).shape == (3, 3)
    image = np.random.default_rng(2).random((256, 384))
    assert scorer.score(image, roi=(0, 128, 128, 256)) == pytest.approx(
        float(scorer.score_map(image)[0, 1])
    )
    with pytest.raises(ConfigError, match="roi"):
        scorer.score(image, roi=(10, 5, 0, 200))
    for bad, match in [
        (np.zeros((100, 300)), "≥ 128"),
        (np.zeros((2, 200, 200)), "2-D"),
        (np.full((200, 200), np.nan), "NaN"),
    ]:
        with pytest.raises(ConfigError, match=match):
            scorer.score_map(bad)


def test_a_model_of_another_kind_is_refused(tmp_path) -> None:
    from focuskit.nn import write_model_folder as save_model_folder

    save_model_folder(tmp_path / "x", {"kind": "fcfnn-defocus"}, {"w": np.zeros(1, np.float32)})
    with pytest.raises(ConfigError, match="not a blur-score CNN"):
        BlurScorer.load(tmp_path / "x")


# ------------------------------------------------------------------ the bundled model

needs_builtin = pytest.mark.skipif(
    "fewshot-widefield" not in builtin_models(), reason="builtin:fewshot-widefield not trained"
)
DF = get_preset("deepfocus-10x").optics


def _held_out_scores(z: list[float]) -> tuple[np.ndarray, list[str]]:
    """Blur scores of held-out fields (other seeds; scikit-image pictures never used in
    training) on the deepfocus-10x microscope: (samples, z)."""
    from focuskit.fewshot.analyses import invariance_samples, render_invariance_stack

    scorer = BlurScorer.load("builtin:fewshot-widefield")
    scores, labels = [], []
    for i, (label, sample) in enumerate(invariance_samples(12, seed=7, size=256)):
        stack = render_invariance_stack(sample, DF, np.array(z), 256, photons=500, seed=i)
        scores.append([scorer.score(plane) for plane in stack])
        labels.append(label)
    return np.array(scores), labels


@needs_builtin
def test_builtin_score_rises_with_defocus_and_barely_depends_on_the_sample() -> None:
    """Microscopy samples (fluorescent tissue, beads; unseen seeds): every score rises with
    |z| out to 60 µm, and at each z their spread is below the rise to the next z.
    Natural pictures only rise within ±30 µm: smooth content (retina) reaches the plateau
    sooner and reads as blur even in focus (cell), so they are not part of the
    invariance claim (issue 6's closing note)."""
    scores, labels = _held_out_scores([0.0, 15.0, 30.0, 60.0])
    micro = scores[[not label.startswith("image") for label in labels]]
    pictures = scores[[label.startswith("image") for label in labels]]
    assert len(micro) == 8 and len(pictures) == 4
    assert np.all(np.diff(micro, axis=1) > 0), micro
    assert np.all(np.diff(pictures[:, :3], axis=1) > 0), pictures
    spread = micro.max(axis=0) - micro.min(axis=0)
    rise = np.diff(micro.mean(axis=0))
    assert np.all(spread[:-1] < rise), (spread, rise)


@needs_builtin
def test_bfloat16_inference_scores_as_float32_does_and_the_precision_is_checked() -> None:
    """The fused network in bfloat16 (the default where the CPU has it) reads the builtin's
    blur scores to within 1 % of float32 over 0–8 waves of defocus; an unknown precision is
    refused in one line."""
    import torch

    from focuskit.simulate import simulate_stack

    scorer = BlurScorer.load("builtin:fewshot-widefield", num_threads=1)
    stack = simulate_stack(
        "deepfocus-10x",
        sample="fluorescent-tissue",
        size=256,
        z_um=np.linspace(0, 90, 7),
        photons=500,
        seed=3,
    )
    patches = np.concatenate([scorer.patches(plane, None)[0] for plane in stack.data])
    scorer.precision = "float32"
    assert scorer.inference_dtype() == torch.float32
    exact = scorer.score_patches(patches)
    scorer.precision = "bfloat16"
    assert scorer.inference_dtype() == torch.bfloat16
    half = scorer.score_patches(patches)
    assert next(scorer._inference_net().parameters()).dtype == torch.bfloat16
    assert np.ptp(exact) > 2.0  # the patches span a range of defocus
    np.testing.assert_allclose(half, exact, rtol=0.01, atol=0.01)
    # Training is untouched: the trained network stays float32.
    assert next(scorer.net.parameters()).dtype == torch.float32
    scorer.precision = "half"
    with pytest.raises(ConfigError, match="precision must be"):
        scorer.score_patches(patches[:1])


def test_checkpoint_resume_continues_where_it_stopped(tiny_patches: BlurPatches, tmp_path) -> None:  # type: ignore[no-untyped-def]
    train, val = split_patches_by_field(tiny_patches, 0.25, seed=0)
    cfg = BlurTrainConfig(channels=(4, 8), max_steps=30, eval_every=10, batch_size=8, num_threads=1)
    short = BlurTrainConfig(**{**cfg.to_dict(), "channels": (4, 8), "max_steps": 20})
    _, first = fit_blur_cnn(train, val, short, checkpoint_dir=tmp_path)
    _, resumed = fit_blur_cnn(train, val, cfg, checkpoint_dir=tmp_path, resume=True)
    assert resumed.steps == [10, 20, 30] and resumed.val_mae_waves[:2] == first.val_mae_waves
    with pytest.raises(ConfigError, match="resume"):
        fit_blur_cnn(train, val, cfg, checkpoint_dir=tmp_path / "none", resume=True)
