"""The fast training path: tf.data input, FLOP counts, the time estimate, runtime settings."""

import numpy as np
import pytest

from facesketch import models
from facesketch.training import estimate
from facesketch.core import params
from facesketch.core import backend
from facesketch.data.dataset import to_float
from facesketch.core.errors import ParamError
from facesketch.training.flops import forward_flops, training_flops
from facesketch.training.fit import make_dataset
from conftest import REPO, make_pairs

backend.init(0)


def test_dataset_gives_every_pair_once_per_epoch_as_the_same_floats():
    photos, sketches = make_pairs(10, 32)
    ds = make_dataset(photos, sketches, 4, shuffle_seed=3)
    epochs = []
    for _ in range(2):
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        assert [len(x) for x in xs] == [4, 4, 2]
        epochs.append((np.concatenate(xs), np.concatenate(ys)))
    for x, y in epochs:
        # the same pairs, as floats bit-identical to to_float, in some order
        order = [int(np.flatnonzero((to_float(photos) == xi).all(axis=(1, 2, 3)))[0]) for xi in x]
        assert sorted(order) == list(range(10))
        np.testing.assert_array_equal(y, to_float(sketches)[order])
    assert not np.array_equal(epochs[0][0], epochs[1][0]), "reshuffled each epoch"
    again = np.concatenate([x.numpy() for x, _ in make_dataset(photos, sketches, 4, shuffle_seed=3)])
    np.testing.assert_array_equal(again, epochs[0][0])  # seeded: the same order again


def test_flops_of_the_study_conv_ae_match_its_layers():
    import keras

    # one 3x3 conv, 8 -> 16 channels on 32x32 'same': 2 * 32*32 * 9 * 8 * 16 FLOPs
    x = keras.Input((32, 32, 8))
    model = keras.Model(x, keras.layers.Conv2D(16, 3, padding="same")(x))
    assert forward_flops(model) == 2 * 32 * 32 * 9 * 8 * 16
    conv = models.build("conv", 128, {})
    # about 19 GFLOP per training image at 128 px (hand count in the speed issue)
    assert 18.5e9 < training_flops(conv) < 19.5e9
    assert training_flops(models.build("conv", 64, {})) * 4 == training_flops(conv)
    gan = models.build("unet_gan", 64, {})
    assert training_flops(gan) == 3 * (forward_flops(gan.generator) + 2 * forward_flops(gan.discriminator))


def test_estimate_message_scales_with_images_epochs_and_other_stages():
    msg = estimate.message("conv-f2s", rate=2.0, images=60, epochs_left=200, epochs=200,
                           others=[("vae-f2s", 2.0), ("conv-s2f", 1.0)], size=256)
    # 60 x 200 / 2 = 6000 s here; the others 3x that
    assert "2.0 images/s" in msg and "about 1 h 40 min more" in msg
    assert "the 2 other train stage(s) still to run about 5 h" in msg
    assert "-S image_size=128" in msg  # a long matrix comes with a cheaper command
    short = estimate.message("conv-f2s", rate=20.0, images=60, epochs_left=3, epochs=3, others=[], size=32)
    assert "9 s more" in short and "Too long" not in short


def test_the_other_stages_are_estimated_from_a_model_with_enough_arithmetic_only():
    """The dense AE is bound by overheads, not arithmetic: its rate says nothing about the
    convolutional models', so it estimates no other stage (nor builds them to count)."""
    dense, conv = (training_flops(models.build(m, 32, {})) for m in ("dense", "conv"))
    assert dense < estimate.MIN_GFLOP_PER_IMAGE * 1e9 <= conv
    assert estimate.relative_flops([("conv", "f2s"), ("vae", "s2f")], "dense", 32, {}) == []
    assert estimate.relative_flops([("dense", "s2f")], "conv", 32, {}) == [("dense-s2f", pytest.approx(dense / conv))]


def test_a_short_run_is_timed_over_its_second_epoch_not_the_compiling_first():
    """Few batches an epoch: the estimate waits for the second epoch and times it alone, so the
    first epoch's compilation (here a 0.5 s pause in its validation pass, after the warm-up batches)
    does not slow it; a one-epoch run still gets one."""
    import io
    import time

    def run(epochs: int, first_epoch_pause: float, batches: int = 2) -> str:
        out = io.StringIO()
        cb = estimate.callback("conv-f2s", images=8, epochs=epochs, initial_epoch=0, size=32,
                               others=lambda: [], batch_size=4, stream=out)
        for epoch in range(epochs):
            cb.on_epoch_begin(epoch)
            for batch in range(batches):
                time.sleep(0.005)
                cb.on_train_batch_end(batch)
            if epoch == 0:
                time.sleep(first_epoch_pause)  # the validation pass compiles its step
            cb.on_epoch_end(epoch)
            if epoch == 0 and epochs > 1:
                assert out.getvalue() == ""  # not after the first of several epochs
        return out.getvalue()

    text = run(epochs=3, first_epoch_pause=0.5)
    rate = float(text.split("conv-f2s: ")[1].split(" images/s")[0])
    assert rate > 100  # 8 images in about 0.01 s; the first epoch's 0.5 s counted: under 16
    assert "(1 of 3 epochs x 8 images)" in text  # printed after the second: one to go
    # one epoch: measured past its two warm-up batches, printed at its end
    assert "(0 of 1 epochs x 8 images)" in run(epochs=1, first_epoch_pause=0.01, batches=4)


def test_runtime_settings_are_checked():
    assert params.runtime({})["checkpoint_seconds"] == 30 and params.runtime({})["jit_compile"] == "auto"
    assert params.runtime({"runtime": {"jit_compile": True}})["jit_compile"] is True
    with pytest.raises(ParamError, match="runtime.precision='half'"):
        params.runtime({"runtime": {"precision": "half"}})
    with pytest.raises(ParamError, match="runtime.jit_compile='yes'.*auto, true or false"):
        params.runtime({"runtime": {"jit_compile": "yes"}})
    with pytest.raises(ParamError, match="runtime.devices is not a known setting"):
        params.runtime({"runtime": {"devices": 2}})
    assert set(params.load_params(REPO / "params.yaml")["runtime"]) == set(params.RUNTIME_DEFAULTS)
    assert backend.precision_policy("auto") == ("mixed_float16" if backend.gpus() else "float32")
