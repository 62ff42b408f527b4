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


def test_the_record_in_a_metrics_file_reads_back_and_names_an_unknown_lever():
    for mirror in (False, True):
        for smooth in (False, True):
            options = {"mirror": mirror, "bilateral": smooth}
            summary = {test_time.RECORD_KEY: test_time.describe(options)} if mirror or smooth else {}
            assert test_time.recorded(summary) == options
    assert test_time.recorded(None) == {"mirror": False, "bilateral": False}
    assert test_time.recorded({"test_time": "none"}) == {"mirror": False, "bilateral": False}
    with pytest.raises(ValueError, match="'sharpen' is not known"):
        test_time.recorded({"test_time": "mirror, sharpen"})


def test_params_yaml_has_one_switch_per_task_and_lever_and_refuses_a_typo():
    from facesketch import TASKS
    from facesketch.core.errors import ParamError
    from facesketch.core.params import section
    from facesketch.core.schema import OutputLevers, OutputLeversPerTask

    assert tuple(OutputLeversPerTask.model_fields) == tuple(TASKS)
    assert tuple(OutputLevers.model_fields) == test_time.OPTIONS
    levers = section({"test_time": {"s2f": {"mirror": True}}}, "test_time")
    assert levers.s2f.model_dump() == {"mirror": True, "bilateral": False}
    assert levers.f2s.model_dump() == {"mirror": False, "bilateral": False}
    with pytest.raises(ParamError, match=r"test_time\.s2f\.mirorr is not a known setting; did you mean "
                                         r"test_time\.s2f\.mirror\?"):
        section({"test_time": {"s2f": {"mirorr": True}}}, "test_time")
    with pytest.raises(ParamError, match=r"test_time\.f2s\.bilateral='yes' is not valid; expected true or false"):
        section({"test_time": {"f2s": {"bilateral": "yes"}}}, "test_time")


def test_a_predictor_applies_the_levers_its_scores_include(tmp_path):
    """What `facesketch predict` and the web page output is what evaluate scored."""
    import keras

    from facesketch.core.errors import FacesketchError
    from facesketch.data.dataset import to_uint8
    from facesketch.use.catalog import ModelEntry
    from facesketch.use.predictor import Predictor

    kernel = np.zeros((3, 3, 3, 3), np.float32)
    for c in range(3):
        kernel[1, 0, c, c] = 1.0  # each channel shifted right: not mirror-symmetric
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(3, 3, padding="same", use_bias=False)])
    model.layers[0].set_weights([kernel])
    x = np.random.default_rng(2).random((3, 32, 32, 3)).astype(np.float32)

    def entry(metrics, stale=None):
        return ModelEntry(name="conv-s2f", model="conv", task="s2f", path=tmp_path, info={"image_size": 32},
                          metrics=metrics, metrics_file=tmp_path / "conv-s2f.json", stale=stale)

    plain = to_uint8(test_time.predict(model, x))
    both = Predictor(entry({"ssim": 0.5, "test_time": "mirror, bilateral"}), model, batch_size=2).run_batch(x)
    assert np.array_equal(both, test_time.bilateral(to_uint8(test_time.predict(model, x, mirror=True))))
    assert not np.array_equal(both, plain)
    assert np.array_equal(Predictor(entry({"ssim": 0.5}), model, batch_size=2).run_batch(x), plain)
    # scores of another model file describe nothing: no levers taken from them
    stale = entry({"test_time": "mirror"}, stale="it scored another model file")
    assert np.array_equal(Predictor(stale, model, batch_size=2).run_batch(x), plain)
    with pytest.raises(FacesketchError, match=r"conv-s2f\.json: .*'sharpen' is not known"):
        Predictor(entry({"test_time": "sharpen"}), model)
