"""The moving average of the predictor's weights (``ema_decay``): its arithmetic, its place in a checkpoint."""

import math

import keras
import numpy as np
import pytest

from facesketch.training import estimate
from facesketch.core import backend
from facesketch.training import weight_average
from facesketch.core.errors import Interrupted
from facesketch.core.layout import MODEL_FILE
from facesketch.training.fit import train
from conftest import tiny_params

backend.init(0)


def _small_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


class _Recorder(keras.callbacks.Callback):
    """The weights after every step, as the average sees them."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append([w.numpy().copy() for w in self.model.weights])


def test_the_average_follows_the_warm_up_rule_and_becomes_the_predictor():
    model = _small_model()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")
    start = [w.numpy().copy() for w in model.weights]
    average, recorder = weight_average.callback(model, 0.9), _Recorder()
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[average, recorder])
    assert len(recorder.seen) == 9 and int(average.steps.numpy()) == 9

    expected = start
    for t, weights in enumerate(recorder.seen, start=1):
        d = min(0.9, (1 + t) / (10 + t))
        expected = [d * a + (1 - d) * w for a, w in zip(expected, weights)]
    last = recorder.seen[-1]
    assert not all(np.allclose(e, w, atol=1e-4) for e, w in zip(expected, last))  # the average lags the weights
    average.apply()
    for got, want in zip(model.weights, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_the_state_round_trips_and_a_foreign_state_is_refused():
    model = _small_model()
    first = weight_average.callback(model, 0.99)
    for _ in range(3):
        first.on_train_batch_end(0)
    model.weights[0].assign(model.weights[0] + 1.0)  # the weights move on; the state keeps the averages
    first.on_train_batch_end(0)
    state = first.state()

    again = weight_average.callback(model, 0.99)
    again.load_state(state)
    assert int(again.steps.numpy()) == 4
    for a, b in zip(first.averages, again.averages):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    other = weight_average.callback(keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)]), 0.99)
    with pytest.raises(ValueError, match=r"ckpt/weight_average\.npz: its weight averages do not fit"):
        other.load_state(state, source="ckpt/weight_average.npz")
    with pytest.raises(ValueError, match=r"ema_decay=1\.0"):
        weight_average.callback(model, 1.0)


def test_an_interrupted_run_keeps_its_averages_and_the_saved_model_is_the_average(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    processed, split_file = tiny_data
    dirs = {"processed_file": processed, "split_file": split_file, "history_dir": tmp_path / "history",
            "checkpoint_root": tmp_path / "ckpt", "verbose": 0}
    params = tiny_params(epochs=2, ema_decay=0.999)

    real_callback = estimate.callback

    class StopAfterFirstEpoch(keras.callbacks.Callback):  # a Ctrl-C after the first epoch's checkpoint
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    monkeypatch.setattr(estimate, "callback", lambda *a, **k: StopAfterFirstEpoch())
    with pytest.raises(Interrupted):
        train("dense", "f2s", params, models_dir=tmp_path / "models", **dirs)
    with np.load(tmp_path / "ckpt" / "dense-f2s" / "weight_average.npz") as saved:
        saved_steps, arrays = int(saved["steps"]), len(saved.files) - 1

    monkeypatch.setattr(estimate, "callback", real_callback)
    info = train("dense", "f2s", params, models_dir=tmp_path / "models", **dirs)
    assert info["resumed_from_epoch"] == 1 and info["training"]["ema_decay"] == 0.999
    assert saved_steps == math.ceil(info["n_train"] / 4)  # one epoch's steps, batch 4
    assert arrays == len(keras.saving.load_model(tmp_path / "models" / "dense-f2s" / MODEL_FILE).weights)
    assert not (tmp_path / "ckpt" / "dense-f2s").exists()

    # the same run without the average saves different weights: the average is what was saved
    plain = train("dense", "f2s", tiny_params(epochs=2), models_dir=tmp_path / "plain", **dirs)
    assert plain["training"]["ema_decay"] == 0.0
    averaged = keras.saving.load_model(tmp_path / "models" / "dense-f2s" / MODEL_FILE)
    raw = keras.saving.load_model(tmp_path / "plain" / "dense-f2s" / MODEL_FILE)
    assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(averaged.weights, raw.weights))
