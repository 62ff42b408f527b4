"""The training levers beyond the study: paired augmentation, learning-rate schedules, the SSIM and edge
terms, the pixel loss in CIELAB."""

import csv

import numpy as np
import pytest

from facesketch.training import losses
from facesketch.core import backend, schema
from facesketch.data.dataset import to_float
from facesketch.training.fit import make_dataset, train
from conftest import make_pairs, tiny_params

backend.init(0)


def _epoch(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_augmentation_moves_input_and_target_together_and_differs_per_epoch():
    photos, _ = make_pairs(6, 32)
    ds = make_dataset(photos, photos.copy(), 4, shuffle_seed=1, augment={"jitter": 0.12, "flip": True})
    first, second = _epoch(ds), _epoch(ds)
    for x, y in (first, second):
        assert x.shape == (6, 32, 32, 3) and x.dtype == np.float32
        np.testing.assert_array_equal(x, y)  # one crop and one mirror for both images of a pair
        assert 0.0 <= x.min() and x.max() <= 1.0
    assert not np.array_equal(first[0], second[0])  # new draws every epoch
    plain = to_float(photos)
    assert not any(np.array_equal(img, p) for img in first[0] for p in plain)  # every pair jittered


def test_flip_alone_gives_the_image_or_its_mirror():
    photos, sketches = make_pairs(8, 32)
    x, y = _epoch(make_dataset(photos, sketches, 8, augment={"jitter": 0.0, "flip": True}))
    px, py = to_float(photos), to_float(sketches)
    mirrored = [bool(np.array_equal(x[i], px[i][:, ::-1])) for i in range(8)]
    for i in range(8):
        assert mirrored[i] or np.array_equal(x[i], px[i])
        np.testing.assert_array_equal(y[i], py[i][:, ::-1] if mirrored[i] else py[i])
    assert 0 < sum(mirrored) < 8  # both outcomes occur (seeded draw)


def test_schedules():
    assert losses.learning_rate(1e-3, "constant", 100) == 1e-3
    lin = losses.learning_rate(1e-3, "linear_decay", 100)
    assert [float(lin(s)) for s in (0, 50, 75, 100)] == pytest.approx([1e-3, 1e-3, 5e-4, 0.0])
    cos = losses.learning_rate(1e-3, "cosine", 100)
    assert float(cos(0)) == pytest.approx(1e-3) and float(cos(50)) == pytest.approx(5e-4, rel=1e-3)
    assert losses.steps_per_epoch(63, 4) == 16 and losses.steps_per_epoch(63, 4, replicas=2) == 15


def test_ssim_term_is_zero_for_a_perfect_output_and_adds_to_the_pixel_loss():
    photos, sketches = make_pairs(2, 32)
    y, p = to_float(sketches), to_float(photos)
    plain, with_ssim = losses.reconstruction("mae", 0.0), losses.reconstruction("mae", 0.5)
    assert np.allclose(np.asarray(with_ssim(y, y)), 0.0, atol=1e-6)
    a, b = np.asarray(plain(y, p)), np.asarray(with_ssim(y, p))
    assert a.shape == (2,) and np.allclose(a, np.abs(y - p).mean(axis=(1, 2, 3)), rtol=1e-5)
    assert (b > a + 0.05).all()


def test_gradient_magnitude_of_a_step_edge_is_one_beside_the_step_and_zero_elsewhere():
    """A vertical white/black step (luminance 0 -> 1): Scharr / 16 gives magnitude 1 on the two
    interior columns whose 3x3 window straddles it, and (up to the square root's 1e-4) 0 elsewhere."""
    img = np.zeros((1, 8, 8, 3), np.float32)
    img[:, :, 4:] = 1.0
    magnitude = np.asarray(losses.gradient_magnitude(img))
    assert magnitude.shape == (1, 6, 6)
    np.testing.assert_allclose(magnitude[0, :, 2:4], 1.0, atol=1e-4)
    np.testing.assert_allclose(np.delete(magnitude[0], [2, 3], axis=1), 0.0, atol=2e-4)


def test_edge_term_is_zero_for_a_perfect_output_and_adds_to_the_pixel_loss():
    photos, sketches = make_pairs(2, 32)
    y, p = to_float(sketches), to_float(photos)
    plain, with_edge = losses.reconstruction("mae", 0.0), losses.reconstruction("mae", 0.0, 2.0)
    both = losses.reconstruction("mae", 0.5, 2.0)
    assert np.allclose(np.asarray(with_edge(y, y)), 0.0, atol=1e-6)
    a, b, c = np.asarray(plain(y, p)), np.asarray(with_edge(y, p)), np.asarray(both(y, p))
    np.testing.assert_allclose(b - a, 2.0 * np.asarray(losses.edge_difference(y, p)), rtol=1e-5)
    assert (b > a + 0.01).all() and (c > b).all()
    assert with_edge.__name__ == "mae_plus_2_edge" and both.__name__ == "mae_plus_0.5_ssim_plus_2_edge"


def test_lab_matches_scikit_image_and_has_a_finite_gradient_everywhere():
    import keras
    from skimage.color import rgb2lab

    rng = np.random.default_rng(3)
    edge = np.array([0.0, 0.001, 0.04045, 0.0405, 0.5, 0.999, 1.0], np.float32)
    colours = np.stack(np.meshgrid(edge, edge, edge, indexing="ij"), -1).reshape(1, -1, 1, 3)
    for images in (rng.random((2, 8, 8, 3)).astype(np.float32), colours):
        np.testing.assert_allclose(np.asarray(losses.lab(images)), rgb2lab(images.astype(np.float64)),
                                   atol=2e-3)  # float32 against scikit-image's float64
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(colours)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(losses.lab(x))
        assert np.isfinite(tape.gradient(total, x).numpy()).all()
    assert losses.SPACES == schema.LOSS_SPACES


def test_the_pixel_loss_in_lab_is_the_mean_lab_difference_over_100():
    photos, sketches = make_pairs(2, 32)
    y, p = to_float(photos), to_float(sketches)
    in_lab = losses.reconstruction("mae", 0.0, 0.0, "lab")
    expected = np.abs(np.asarray(losses.lab(y)) - np.asarray(losses.lab(p))).mean(axis=(1, 2, 3)) / 100
    np.testing.assert_allclose(np.asarray(in_lab(y, p)), expected, rtol=1e-5)
    assert np.allclose(np.asarray(in_lab(y, y)), 0.0, atol=1e-6)
    assert in_lab.__name__ == "mae_in_lab" and losses.reconstruction("mse", 0.5, 0, "lab").__name__ == \
        "mse_in_lab_plus_0.5_ssim"
    with pytest.raises(ValueError, match="loss_space=lab needs loss mae or mse"):
        losses.reconstruction("bce", 0.0, 0.0, "lab")
    with pytest.raises(ValueError, match="loss_space='hsv' is not valid; expected one of: rgb, lab"):
        losses.reconstruction("mae", 0.0, 0.0, "hsv")


def test_params_refuse_lab_with_cross_entropy_and_an_unknown_space():
    from facesketch.core.errors import ParamError
    from facesketch.core.params import training

    base = {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 1, "batch_size": 2, "loss": "mae", "seed": 0,
            "image_size": 32}
    assert training({**base, "loss_space": "lab"})["loss_space"] == "lab"
    assert training(base)["loss_space"] == "rgb"
    with pytest.raises(ParamError, match="loss_space=lab needs loss mae or mse"):
        training({**base, "loss": "bce", "loss_space": "lab"})
    with pytest.raises(ParamError, match="loss_space='Lab' is not valid; expected one of: rgb, lab"):
        training({**base, "loss_space": "Lab"})


@pytest.mark.parametrize("model", ["conv_bn", "vae", "unet_gan"])  # shared compile, the VAE's and the GAN's steps
def test_training_with_every_lever_on(tmp_path, tiny_data, monkeypatch, model):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    processed, split_file = tiny_data
    params = tiny_params(epochs=2, augment={"jitter": 0.12, "flip": True}, lr_schedule="linear_decay",
                         ssim_weight=0.5, edge_weight=1.0, loss_space="lab")
    info = train(model, "f2s", params, processed_file=processed, split_file=split_file,
                 models_dir=tmp_path / "models", history_dir=tmp_path / "history", checkpoint_root=tmp_path / "ckpt",
                 verbose=0)
    assert info["training"]["ssim_weight"] == 0.5 and info["training"]["edge_weight"] == 1.0
    assert info["training"]["loss_space"] == "lab"
    assert info["training"]["augment"]["flip"] is True
    rows = list(csv.DictReader(open(tmp_path / "history" / f"{model}-f2s.csv")))
    assert len(rows) == 2 and all(np.isfinite(float(r["loss"])) for r in rows)
