"""Test-time levers: mirroring averages the two views exactly; the bilateral filter smooths noise
and keeps edges; unknown options are refused."""

import numpy as np
import pytest

from facesketch.evaluation import test_time


def _conv_model(kernel: np.ndarray):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3, padding="same", use_bias=False)])
    model.layers[0].set_weights([kernel.reshape(3, 3, 1, 1).astype(np.float32)])
    return model


def test_mirroring_averages_the_output_with_the_mirrored_output_of_the_mirrored_input():
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    asymmetric = _conv_model(np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0]], np.float32))  # shifts right
    plain = test_time.predict(asymmetric, x)
    mirrored = test_time.predict(asymmetric, x, mirror=True)
    other_view = asymmetric.predict(x[:, :, ::-1], verbose=0)[:, :, ::-1]
    np.testing.assert_allclose(mirrored, (plain + other_view) / 2, atol=1e-6)
    assert np.abs(mirrored - plain).max() > 0.1  # a model that is not mirror-symmetric changes
    symmetric = _conv_model(np.array([[0, 1, 0], [1, 2, 1], [0, 1, 0]], np.float32) / 6)
    np.testing.assert_allclose(test_time.predict(symmetric, x, mirror=True), test_time.predict(symmetric, x),
                               atol=1e-6)  # one that is: the same answer


def test_the_bilateral_filter_smooths_noise_and_keeps_an_edge():
    rng = np.random.default_rng(1)
    step = np.zeros((1, 64, 64, 1), np.uint8)
    step[:, :, 32:] = 200
    noisy = np.clip(step.astype(int) + rng.integers(-6, 7, step.shape), 0, 255).astype(np.uint8)
    out = test_time.bilateral(noisy)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    flat = (slice(None), slice(4, 60), slice(4, 28))
    assert out[flat].std() < noisy[flat].std() / 2          # the noise is smoothed
    assert out[0, :, 30].mean() < 20 and out[0, :, 33].mean() > 180  # the edge stays sharp
    assert np.array_equal(test_time.bilateral(step), step)    # a clean image stays as it is


def test_options_are_checked():
    assert test_time.check(None) == {"mirror": False, "bilateral": False}
    assert test_time.check({"mirror": True}) == {"mirror": True, "bilateral": False}
    with pytest.raises(ValueError, match="'mirrror' is not known; expected: mirror, bilateral"):
        test_time.check({"mirrror": True})
    with pytest.raises(ValueError, match="mirror='yes' is not valid"):
        test_time.check({"mirror": "yes"})
    assert test_time.describe({"mirror": True, "bilateral": True}) == "mirror, bilateral"
