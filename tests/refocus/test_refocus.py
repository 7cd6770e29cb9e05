"""Deep-R (Luo et al. 2021): losses, networks, training loop, DPM decoder and inference.

One tiny model is trained once per module (the issue's tiny settings, ~3 s) and shared.
Training and inference run on one thread: on a busy 2-core machine two OpenMP threads per
process spin against each other and a 3 s fit takes a minute.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil

import numpy as np
import pytest
import scipy.signal
import torch

from focuskit import ConfigError
from focuskit.focus import fitted_tilt
from focuskit.nn import builtin_models, tile_starts
from focuskit.optics import Brightfield, get_preset
from focuskit.refocus import (
    DeepRConfig,
    DeepRDiscriminator,
    DeepRGenerator,
    DiscriminatorConfig,
    DPMDecoder,
    DPMTrainConfig,
    PairSampler,
    Refocuser,
    RefocusTrainConfig,
    berhu,
    fit_deepr,
    fit_dpm,
    ms_ssim,
    simulate_refocus_tiles,
    split_tiles_by_field,
)
from focuskit.simulate import simulate_stack, tilt_map

PRESET = "deepr-40x-fluor"
TINY = (4, 8, 8, 8, 8, 8)
Z_RANGE = 2.0
TRAIN = RefocusTrainConfig(
    generator_channels=TINY,
    discriminator_channels=(4, 8),
    crop=64,
    batch_size=2,
    max_steps=40,
    warmup_steps=20,
    eval_every=10,
    z_range_um=Z_RANGE,
    num_threads=1,
)
DPM = DPMTrainConfig(
    z_range_um=Z_RANGE,
    crop=64,
    batch_size=2,
    max_steps=40,
    eval_every=10,
    learning_rate=3e-3,
    num_threads=1,
)
IMAGE_Z_UM = 1.5  # defocus of the test image (inside the training range)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tiles():
    """4 simulated 128² fields over ±2 µm (0.5 µm steps): 3 train, 1 validation (by field)."""
    data = simulate_refocus_tiles(PRESET, 4, size=128, tile=128, z_range_um=Z_RANGE, z_step_um=0.5)
    train, val = split_tiles_by_field(data, 0.25)
    assert len(train) == 3 and len(val) == 1
    return train, val


@pytest.fixture(scope="module")
def trained(tiles, tmp_path_factory):
    """(generator, discriminator, history, checkpoint folder) of one uninterrupted tiny run."""
    ckpt = tmp_path_factory.mktemp("deepr_ckpt")
    gen, disc, history = fit_deepr(*tiles, TRAIN, checkpoint_dir=ckpt)
    return gen, disc, history, ckpt


@pytest.fixture(scope="module")
def dpm(trained, tiles):
    """(decoder, history, the generator's encoder weights before fit_dpm)."""
    before = {k: v.clone() for k, v in trained[0].encoder.state_dict().items()}
    decoder, history = fit_dpm(trained[0], *tiles, DPM)
    return decoder, history, before


@pytest.fixture(scope="module")
def optics():
    return get_preset(PRESET).optics


@pytest.fixture(scope="module")
def refocuser(trained, dpm, optics):
    return Refocuser(trained[0], dpm[0], optics=optics, z_range_um=Z_RANGE, num_threads=1)


@pytest.fixture(scope="module")
def image():
    """A 256² fluorescent-tissue field 1.5 µm out of focus, camera counts at 2000 photons,
    and the camera-noise SD of that image (counts)."""
    noisy = simulate_stack(
        PRESET, sample="fluorescent-tissue", size=256, z_um=[IMAGE_Z_UM], photons=2000, seed=5
    )
    clean = simulate_stack(
        PRESET, sample="fluorescent-tissue", size=256, z_um=[IMAGE_Z_UM], photons=None, seed=5
    )
    img, ref = noisy.data[0].astype(np.float64), clean.data[0].astype(np.float64)
    # Noise = what the best affine map of the noise-free rendering leaves unexplained.
    a, b = np.linalg.lstsq(
        np.column_stack([ref.ravel(), np.ones(ref.size)]), img.ravel(), rcond=None
    )[0]
    noise_sd = float((img - (a * ref + b)).std())
    return noisy.data[0].astype(np.float32), noise_sd


def _identity_generator() -> DeepRGenerator:
    """Global residual with a zeroed last layer: G(x) = x exactly."""
    gen = DeepRGenerator(DeepRConfig(channels=TINY, global_residual=True))
    with torch.no_grad():
        gen.decoder.out.weight.zero_()
        gen.decoder.out.bias.zero_()
    return gen.eval()


# -------------------------------------------------------------------------------- BerHu
def test_berhu_matches_eq4_with_given_c():
    # d = pred − target = (0.25, −0.5, 1, −3), c = 0.5:
    # |d| ≤ c → |d|: 0.25, 0.5;  |d| > c → (d² + c²)/(2c): (1 + 0.25)/1 = 1.25, (9 + 0.25)/1 = 9.25
    target = torch.tensor([[0.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    pred = target + torch.tensor([[0.25, -0.5, 1.0, -3.0]], dtype=torch.float64)
    loss = berhu(pred, target, c=0.5)
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx((0.25 + 0.5 + 1.25 + 9.25) / 4, abs=1e-12)  # 2.8125


def test_berhu_default_c_is_a_tenth_of_each_targets_sd():
    # Two images, each with its own c = 0.1·SD(target) (sample SD, n − 1, as torch.std).
    t = np.array([[0.0, 2.0, 4.0, 6.0], [10.0, 10.0, 30.0, 30.0]])
    d = np.array([[0.05, -0.1, 0.5, -2.0], [0.5, -1.0, 5.0, 20.0]])
    expected = []
    for ti, di in zip(t, d, strict=True):
        c = 0.1 * math.sqrt(((ti - ti.mean()) ** 2).sum() / (ti.size - 1))  # 0.2582, 1.1547
        per_pixel = [abs(x) if abs(x) <= c else (x * x + c * c) / (2 * c) for x in di]
        expected.append(sum(per_pixel) / len(per_pixel))
    target = torch.from_numpy(t).reshape(2, 1, 2, 2)
    pred = target + torch.from_numpy(d).reshape(2, 1, 2, 2)
    loss = berhu(pred, target)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    # the branches really are both exercised in each image, and c_fraction scales c
    assert expected[0] != pytest.approx(np.abs(d[0]).mean())
    np.testing.assert_allclose(
        berhu(pred, target, c_fraction=0.2).numpy(),
        berhu(pred, target, c=0.2 * target.flatten(1).std(dim=1)).numpy(),
        rtol=1e-12,
    )
    assert berhu(target, target).abs().max().item() == 0.0


# ------------------------------------------------------------------------------ MS-SSIM
def _gauss_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return np.outer(g, g) / g.sum() ** 2


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """Wang et al.: local statistics under a Gaussian window ('valid' filtering), L = 1."""
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2

    def f(a: np.ndarray) -> np.ndarray:
        return scipy.signal.correlate2d(a, window, mode="valid")

    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return float((lum * cs).mean()), float(cs.mean())


def _ms_ssim_reference(pred: np.ndarray, target: np.ndarray) -> float:
    """MS-SSIM (Wang, Simoncelli & Bovik 2003) written out: both images on the target's
    [min, max] → [0, 1] scale (ms_ssim's documented convention), contrast-structure at
    scales 1–4 and full SSIM at scale 5, 2×2 average pooling between scales."""
    lo, hi = target.min(), target.max()
    x, y = (pred - lo) / (hi - lo), (target - lo) / (hi - lo)
    window = _gauss_window()
    value = 1.0
    for scale, weight in enumerate(MS_SSIM_WEIGHTS):
        ssim, cs = _ssim_and_cs(x, y, window)
        value *= (ssim if scale == len(MS_SSIM_WEIGHTS) - 1 else cs) ** weight
        h, w = x.shape
        x = x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        y = y.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return value


def _texture(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.random.default_rng(seed).normal(size=shape), sigma)


def test_ms_ssim_of_identical_images_is_one():
    for size in (256, 64, 24):  # 11-px window, a smaller window, single-scale SSIM
        t = (
            torch.from_numpy(100 + 50 * _texture((size, size), 2, size))
            .float()
            .reshape(1, 1, size, size)
        )
        assert ms_ssim(t, t).item() == pytest.approx(1.0, abs=1e-5)


def test_ms_ssim_matches_wang_definition_on_256():
    target = 200.0 + 80.0 * _texture((256, 256), 3, 1)
    pred = (
        0.8 * target + 15.0 + 20.0 * _texture((256, 256), 1, 2)
    )  # scaled, offset, fine-noise copy
    expected = _ms_ssim_reference(pred, target)
    assert (
        0.5 < expected < 0.8
    )  # far from 1, so a wrong weight, window or constant shows (seen: 0.6564)
    got = ms_ssim(
        torch.from_numpy(pred).float().reshape(1, 1, 256, 256),
        torch.from_numpy(target).float().reshape(1, 1, 256, 256),
    )
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected, abs=1e-4)


def test_ms_ssim_falls_with_added_noise():
    clean = _texture((128, 128), 2, 3)
    noise = np.random.default_rng(4).normal(size=clean.shape) * clean.std()
    target = torch.from_numpy(clean).float().reshape(1, 1, 128, 128)
    values = [
        ms_ssim(torch.from_numpy(clean + s * noise).float().reshape(1, 1, 128, 128), target).item()
        for s in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
    ]
    assert values[0] == pytest.approx(1.0, abs=1e-5)
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[-1] < 0.95


# ------------------------------------------------------------------------------ networks
def test_network_shapes_and_parameter_counts():
    torch.manual_seed(0)
    gen = DeepRGenerator(DeepRConfig(channels=TINY))
    disc = DeepRDiscriminator(DiscriminatorConfig(channels=(4, 8)))
    decoder = DPMDecoder(TINY)
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        assert gen(x).shape == x.shape
        feats = gen.encoder(x)
        assert [tuple(f.shape) for f in feats] == [
            (2, c, 64 >> i, 96 >> i) for i, c in enumerate(TINY)
        ]
        assert decoder(feats).shape == x.shape
        p = disc(x)
    assert p.shape == (2,) and bool(((p > 0) & (p < 1)).all())
    for net in (gen, disc, decoder):
        assert net.parameter_count() == sum(q.numel() for q in net.parameters()) > 0
    assert (
        DeepRGenerator().parameter_count() > 10 * gen.parameter_count()
    )  # the default is far larger


def test_generator_refuses_sizes_not_multiple_of_32():
    gen = DeepRGenerator(DeepRConfig(channels=TINY))
    for shape in ((1, 1, 64, 80), (1, 1, 50, 64), (1, 1, 16, 16)):
        with pytest.raises(ValueError, match="multiples of 32"):
            gen(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        gen(torch.zeros(1, 2, 64, 64))
    with pytest.raises(ValueError, match="6 positive widths"):
        DeepRConfig(channels=(4, 8, 8))


def test_global_residual_with_zero_last_layer_is_identity():
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(_identity_generator()(x), x)


# ------------------------------------------------------------------------------ training
def _val_berhu(gen, val) -> float:
    x, y, _ = PairSampler(val, TRAIN.z_range_um, TRAIN.crop).fixed(TRAIN.validation_pairs)
    with torch.no_grad():
        out = gen(torch.from_numpy(x).unsqueeze(1))
        return float(
            berhu(out, torch.from_numpy(y).unsqueeze(1), c_fraction=TRAIN.berhu_c_fraction).mean()
        )


def test_fit_deepr_validation_loss_falls_and_best_is_returned(trained, tiles):
    gen, disc, history = trained[:3]
    assert history.steps == [10, 20, 30, 40]
    for curve in (
        history.generator_loss,
        history.discriminator_loss,
        history.berhu,
        history.val_berhu,
        history.val_ms_ssim,
        history.ms_ssim_loss,
        history.adversarial,
    ):
        assert len(curve) == 4 and np.isfinite(curve).all()
    assert history.val_berhu[-1] < history.val_berhu[0], history.val_berhu
    assert history.best_val_berhu == min(history.val_berhu)
    assert history.best_step == history.steps[int(np.argmin(history.val_berhu))]
    # balanced weights set after warm-up: three positive numbers
    assert len(history.weights) == 3 and min(history.weights) > 0
    # the returned generator is the best one (40 steps do not yet beat output = input: 4.69 vs 4.38)
    assert _val_berhu(gen, tiles[1]) == pytest.approx(history.best_val_berhu, rel=1e-4)
    assert not gen.training and not disc.training


class _Stop(Exception):
    pass


def test_checkpoint_resume_continues_the_same_run(trained, tiles, tmp_path):
    """Interrupt at step 20 (the last checkpoint is then step 10), resume: the history grows
    from 1 to 4 evaluations, the step count continues, and the result equals the
    uninterrupted run's (same data order, Adam moments, weights)."""
    gen_full, _, full, ckpt_full = trained

    def stop_at_20(step, total, values):
        if step == 20:
            raise _Stop

    with pytest.raises(_Stop):
        fit_deepr(*tiles, TRAIN, checkpoint_dir=tmp_path, progress=stop_at_20)
    import json

    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 10
    seen = []
    gen, _, history = fit_deepr(
        *tiles, TRAIN, checkpoint_dir=tmp_path, resume=True, progress=lambda s, t, v: seen.append(s)
    )
    assert seen == [20, 30, 40]
    assert history.steps == [10, 20, 30, 40]
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 40
    np.testing.assert_allclose(history.val_berhu, full.val_berhu, rtol=1e-5)
    assert history.weights == pytest.approx(full.weights, rel=1e-5)
    for (name, a), b in zip(gen.state_dict().items(), gen_full.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)

    # a finished run resumed with a larger budget goes on from where it stopped
    more = tmp_path / "more"
    shutil.copytree(ckpt_full, more)
    _, _, longer = fit_deepr(
        *tiles, dataclasses.replace(TRAIN, max_steps=50), checkpoint_dir=more, resume=True
    )
    assert longer.steps == [10, 20, 30, 40, 50]
    assert longer.val_berhu[:4] == full.val_berhu


def test_resume_inside_warmup_gives_the_same_weights(tiles, tmp_path):
    config = dataclasses.replace(TRAIN, max_steps=25, eval_every=5)  # checkpoints at 5, 10, 15, …

    def stop_at_20(step, total, values):
        if step == 20:
            raise _Stop

    _, _, full = fit_deepr(*tiles, config)
    with pytest.raises(_Stop):  # last checkpoint: step 15, inside the averaging half (11–20)
        fit_deepr(*tiles, config, checkpoint_dir=tmp_path, progress=stop_at_20)
    _, _, resumed = fit_deepr(*tiles, config, checkpoint_dir=tmp_path, resume=True)
    assert resumed.weights == pytest.approx(full.weights, rel=1e-4)


def test_resume_without_checkpoint_is_refused(tiles, tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        fit_deepr(*tiles, TRAIN, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        fit_deepr(*tiles, TRAIN, resume=True)


def test_fit_dpm_validation_rmse_falls(dpm, trained, tiles):
    decoder, history, encoder_before = dpm
    assert history.steps == [10, 20, 30, 40]
    assert np.isfinite(history.val_rmse_um).all() and np.isfinite(history.train_mse_um2).all()
    assert history.val_rmse_um[-1] < history.val_rmse_um[0], history.val_rmse_um
    assert history.best_val_rmse_um == min(history.val_rmse_um)
    # the decoder returned is the best one (scored against |z|: unsigned by default);
    # the encoder stayed frozen
    x, _, z = PairSampler(tiles[1], DPM.z_range_um, DPM.crop).fixed(DPM.validation_pairs)
    with torch.no_grad():
        pred = decoder(trained[0].encoder(torch.from_numpy(x).unsqueeze(1)))
    assert pred.shape == (len(x), 1, DPM.crop, DPM.crop)
    rmse = float((pred - torch.from_numpy(np.abs(z)).reshape(-1, 1, 1, 1)).square().mean().sqrt())
    assert rmse == pytest.approx(history.best_val_rmse_um, rel=1e-4)
    for name, value in trained[0].encoder.state_dict().items():
        assert torch.equal(value, encoder_before[name]), name


def test_fit_dpm_leaves_the_generator_trainable(dpm, trained):
    assert all(p.requires_grad for p in trained[0].encoder.parameters())


# ----------------------------------------------------------------------------- inference
def _tile_edges(n: int, tile: int, overlap: int) -> np.ndarray:
    """Positions (between pixel e−1 and e) where a tile starts or ends inside the image."""
    starts = tile_starts(n, tile, overlap)
    return np.array(sorted((set(starts) | {s + tile for s in starts}) - {0, n}))


def test_tiled_equals_whole_image_away_from_tile_borders(refocuser, image):
    img, noise_sd = image
    whole = refocuser.refocus(img, tile=256, overlap=0)
    tiled = refocuser.refocus(img, tile=128, overlap=32)  # tiles start at 0, 96, 128
    # "Away from borders": farther than the defocus blur radius |z|·tan(asin(NA)) of the input
    # (1.5 µm · 3.04 = 4.6 µm = 28 px), the distance over which a pixel's in-focus value is
    # spread in the defocused image — all the information needed to refocus it is in its tile.
    na = refocuser.optics.na
    margin = math.ceil(IMAGE_Z_UM * math.tan(math.asin(na)) / refocuser.pixel_size_um)
    assert 25 <= margin <= 32
    pos = np.arange(256) + 0.5
    dist = np.min(np.abs(pos[:, None] - _tile_edges(256, 128, 32)[None, :]), axis=1)
    keep = dist >= margin
    interior = keep[:, None] & keep[None, :]
    assert interior.sum() > 1500
    diff = np.abs(tiled - whole)[interior]
    # Tolerance: 0.15 × the camera noise SD of this image (45 counts at 2000 photons; image
    # SD 2040 counts): a tiling difference far below the measurement's own noise is physically
    # invisible. Seen with the tiny model: interior max 2.1 counts = 0.046 noise SD (the U-Net's
    # deepest features reach beyond any tile); over all pixels, tile borders included, 11 counts
    # — so the test does tell interior from border, and per-tile standardization would fail it.
    assert 10 < noise_sd < 200
    assert diff.max() < 0.15 * noise_sd, (diff.max(), noise_sd)
    # and the whole image differs from the input (the model does change it)
    assert np.abs(whole - img).mean() > 0.05 * img.std()


def _seam_ratio(out: np.ndarray, edges: np.ndarray) -> float:
    """Mean |horizontal and vertical gradient| on tile-boundary lines ÷ the same elsewhere."""
    out = out.astype(np.float64)
    gx = np.abs(np.diff(out, axis=1)).mean(axis=0)  # gx[c]: between columns c and c+1
    gy = np.abs(np.diff(out, axis=0)).mean(axis=1)
    on = edges - 1
    off = np.setdiff1d(np.arange(out.shape[0] - 1), on)
    return max(gx[on].mean() / gx[off].mean(), gy[on].mean() / gy[off].mean())


def test_tiled_output_has_no_seams(refocuser, image):
    img, _ = image
    edges = _tile_edges(256, 64, 16)  # 5 tiles a side: 8 boundary lines each way
    assert len(edges) == 8
    whole = refocuser.refocus(img, tile=256, overlap=0)
    blended = refocuser.refocus(img, tile=64, overlap=16)
    # the image's own structure gives ~1.1 on these lines (seen: blended 1.095, whole-image
    # output 1.096); a seam adds sharp steps on top
    assert _seam_ratio(blended, edges) < 1.3
    assert _seam_ratio(blended, edges) < 1.05 * _seam_ratio(whole, edges)
    # the measure does see seams: without blending the tile edges step visibly (seen 1.77 vs 1.15)
    hard = refocuser.refocus(img, tile=64, overlap=0)
    hard_edges = _tile_edges(256, 64, 0)
    assert _seam_ratio(hard, hard_edges) > 1.2 * _seam_ratio(whole, hard_edges)


def test_identity_model_returns_the_input_for_any_tiling():
    model = Refocuser(_identity_generator(), num_threads=1)
    img = (500 + 300 * _texture((100, 173), 2, 7)).astype(np.float32)
    for tile, overlap in ((512, 64), (64, 16), (32, 0), (96, 40)):
        out = model.refocus(img, tile=tile, overlap=overlap)
        np.testing.assert_allclose(
            out, img, atol=1e-4 * img.std(), err_msg=f"tile {tile}, overlap {overlap}"
        )


def test_any_image_size_float32_same_shape(refocuser):
    rng = np.random.default_rng(0)
    for shape in ((100, 173), (33, 8), (300, 64)):
        img = rng.poisson(200, size=shape).astype(np.uint16)
        for tile in (512, 64):
            out = refocuser.refocus(img, tile=tile, overlap=16)
            assert out.dtype == np.float32 and out.shape == shape
            assert np.isfinite(out).all()
        dz = refocuser.defocus_map(img)
        assert dz.dtype == np.float32 and dz.shape == shape and np.isfinite(dz).all()


def test_output_follows_affine_intensity_changes(refocuser, image):
    img = image[0][:100, :173]
    out = refocuser.refocus(img, tile=64, overlap=16).astype(np.float64)
    a, b = 3.7, 250.0
    out2 = refocuser.refocus(a * img + b, tile=64, overlap=16)
    np.testing.assert_allclose(out2, a * out + b, atol=1e-4 * a * img.std())
    # in the input's scale: close to the input (a near-identity tiny model), not standardized
    assert abs(out.mean() - img.mean()) < 0.25 * img.std()
    assert out.std() == pytest.approx(img.std(), rel=0.3)


def test_save_load_gives_identical_output(refocuser, image, tmp_path):
    img = image[0][:128, :160]
    model = Refocuser(
        refocuser.generator,
        refocuser.dpm,
        optics=refocuser.optics,
        z_range_um=Z_RANGE,
        metadata={"note": "test"},
        num_threads=1,
    )
    model.save(tmp_path / "model")
    with pytest.raises(ConfigError, match="already exists"):
        model.save(tmp_path / "model")
    loaded = Refocuser.load(tmp_path / "model", num_threads=1)
    assert loaded.pixel_size_um == pytest.approx(model.pixel_size_um)
    assert loaded.optics == model.optics
    assert loaded.z_range_um == Z_RANGE
    assert loaded.metadata["note"] == "test"
    assert loaded.parameter_counts() == model.parameter_counts()
    np.testing.assert_array_equal(
        loaded.refocus(img, tile=64, overlap=16), model.refocus(img, tile=64, overlap=16)
    )
    np.testing.assert_array_equal(
        loaded.defocus_map(img, tile=64, overlap=16), model.defocus_map(img, tile=64, overlap=16)
    )


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_wrong_optics_are_refused(refocuser, optics):
    assert refocuser.check_optics(optics=optics) == []
    assert (
        refocuser.check_optics(pixel_size_um=optics.pixel_size_um) != []
    )  # notes the assumed optics
    with pytest.raises(ConfigError, match=r"pixel size 0\.325 µm ≠ the model's 0\.1625 µm") as exc:
        refocuser.check_optics(pixel_size_um=0.325)
    _one_line(exc)
    other_na = dataclasses.replace(optics, objective=dataclasses.replace(optics.objective, na=0.75))
    with pytest.raises(ConfigError, match=r"NA 0\.75 ≠ the model's 0\.95") as exc:
        refocuser.check_optics(optics=other_na)
    assert "pixel size" not in _one_line(exc)
    brightfield = optics.with_illumination(Brightfield(na_condenser=0.55))
    with pytest.raises(ConfigError, match="illumination") as exc:
        refocuser.check_optics(optics=brightfield)
    assert "--force" in _one_line(exc)
    notes = refocuser.check_optics(optics=brightfield, force=True)
    assert any(n.startswith("forced") for n in notes)
    with pytest.raises(ConfigError, match="no pixel size") as exc:
        refocuser.check_optics()
    assert "0.1625" in _one_line(exc)


def test_bad_images_are_refused(refocuser):
    img = np.ones((64, 64), dtype=np.float32)
    img[3, 5] = np.nan
    with pytest.raises(ConfigError, match="NaN") as exc:
        refocuser.refocus(img)
    _one_line(exc)
    with pytest.raises(ConfigError, match="2-D") as exc:
        refocuser.refocus(np.zeros((3, 64, 64), dtype=np.float32))
    _one_line(exc)
    with pytest.raises(ConfigError, match="multiple of 32"):
        refocuser.refocus(np.zeros((64, 64)), tile=100)
    with pytest.raises(ConfigError, match="overlap"):
        refocuser.refocus(np.zeros((64, 64)), tile=64, overlap=33)
    with pytest.raises(ConfigError, match="no defocus-map decoder"):
        Refocuser(refocuser.generator).defocus_map(np.zeros((64, 64)))


# ----------------------------------------------------------------------------- DPM tilt
@pytest.mark.parametrize(("tilt", "azimuth"), [(1.5, 30.0), (4.0, -120.0), (0.3, 90.0)])
def test_fitted_tilt_recovers_a_known_plane(tilt, azimuth):
    pixel = 0.1625
    slope = math.tan(math.radians(tilt))
    a, b = (
        slope * math.sin(math.radians(azimuth)),
        slope * math.cos(math.radians(azimuth)),
    )  # dz/dy, dz/dx
    yy, xx = np.mgrid[0:90, 0:140] * pixel
    plane = a * yy + b * xx - 0.7
    got_tilt, got_azimuth, rms = fitted_tilt(plane, pixel)
    assert got_tilt == pytest.approx(tilt, abs=1e-9)
    assert got_azimuth == pytest.approx(azimuth, abs=1e-7)
    assert rms < 1e-9
    # the simulator's tilted-sample map uses the same angle and azimuth convention
    got_tilt, got_azimuth, rms = fitted_tilt(tilt_map((90, 140), pixel, tilt, azimuth), pixel)
    assert (got_tilt, got_azimuth) == pytest.approx((tilt, azimuth), abs=1e-4)
    assert rms < 1e-5
    # a bump on top is the residual
    _, _, rms = fitted_tilt(plane + 0.2 * np.sign(np.sin(xx)), pixel)
    assert rms == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize("offset_um", [0.0, -1.2, 2.0])
def test_fitted_tilt_of_an_unsigned_map_recovers_the_tilt(offset_um):
    """A symmetric PSF gives |z|: a sample crossing focus maps as a V; |a·y + b·x + c| is fitted."""
    pixel = 0.1625
    tilted = tilt_map((200, 260), pixel, 3.0, 60.0) + offset_um
    noisy = np.abs(tilted) + np.random.default_rng(1).normal(0, 0.2, tilted.shape)
    tilt, azimuth, rms = fitted_tilt(noisy, pixel, unsigned=True)
    assert tilt == pytest.approx(3.0, abs=0.05)
    assert azimuth == pytest.approx(60.0, abs=1.0)  # known modulo 180°
    assert rms == pytest.approx(0.2, abs=0.02)
    # a signed plane fit to the same V would not find the tilt when it crosses focus
    if offset_um == 0.0:
        assert fitted_tilt(noisy, pixel)[0] < 1.0


def test_dpm_is_unsigned_by_default():
    """An aberration-free PSF is the same at ±z: by default the decoder learns |z|, and a
    Refocuser says its map is unsigned (apply then fits |a·y + b·x + c|)."""
    from focuskit.refocus import DPMTrainConfig

    assert DPMTrainConfig().signed is False
    assert (
        Refocuser(DeepRGenerator(DeepRConfig(channels=(4, 8, 8, 8, 8, 8))), None).dpm_signed
        is False
    )


needs_builtin = pytest.mark.skipif(
    "refocus-40x-fluor" not in builtin_models(),
    reason="builtin:refocus-40x-fluor not trained (python scripts/train_deepr.py)",
)


@needs_builtin
@pytest.mark.parametrize(
    ("sample", "z_um", "seed"), [("beads", 2.0, 31_001), ("fluorescent-tissue", -3.0, 31_002)]
)
def test_builtin_model_refocuses_a_held_out_field_and_reads_its_defocus(sample, z_um, seed):
    """The shipped model on a field it never saw (seeds far from training): sharper than the
    input against the in-focus plane, and the defocus map reads |z| within 1 µm."""
    from focuskit.measures import ssim_to_truth

    model = Refocuser.load("builtin:refocus-40x-fluor", num_threads=1)
    sim = simulate_stack(
        "deepr-40x-fluor", sample=sample, size=256, z_um=[0.0, z_um], photons=2000, seed=seed
    )
    truth, image = sim.data[0].astype(np.float32), sim.data[1].astype(np.float32)
    out = model.refocus(image, tile=256)
    assert ssim_to_truth(out, truth) > ssim_to_truth(image, truth) + 0.05
    dpm = model.defocus_map(image, tile=256)
    assert abs(float(np.median(dpm)) - abs(z_um)) < 1.0
