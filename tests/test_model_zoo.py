"""The model zoo beyond the study's models: conv_bn, the conditional VAE, pix2pix (unet_gan).

Small widths (set through each model's params section) keep these fast on CPU;
tests/test_models.py covers every model at its params.yaml defaults.
"""

import csv
import signal

import numpy as np
import pytest

from facesketch import models
from facesketch.core import backend
from facesketch.training import fit
from facesketch.core.saved import load_predictor
from facesketch.core.errors import Interrupted, ParamError
from conftest import make_pairs, tiny_params

backend.init(0)

import keras  # noqa: E402  (after the quiet TensorFlow import)

VAE_TINY = {"filters": [8, 16, 32], "posterior_filters": 8, "latent_channels": 4}
GAN_TINY = {"filters": 8, "max_filters": 32}


def tiny(**overrides) -> dict:
    """tiny_params with small widths for the VAE and the GAN; ``overrides`` replace whole keys."""
    base = tiny_params()
    base.update(vae={**models.config("vae", base), **VAE_TINY},
                unet_gan={**models.config("unet_gan", base), **GAN_TINY},
                cycle_gan={**models.config("cycle_gan", base), **GAN_TINY})
    base.update(overrides)
    return base


def data(n=8, size=32):
    photos, sketches = make_pairs(n, size)
    return photos.astype("float32") / 255, sketches.astype("float32") / 255


def built(name: str, params: dict, size: int = 32, **train_overrides):
    """Build + compile the way fit.train does, seeded."""
    keras.utils.set_random_seed(0)
    model = models.build(name, size, params)
    compile_fn = models.spec(name).compile_model or fit.compile_model
    compile_fn(model, {**training_settings(params), **train_overrides}, models.config(name, params))
    return model


def training_settings(params):
    from facesketch.core.params import training as checked_training

    return checked_training(params)


def snapshot(variables) -> list[np.ndarray]:
    return [np.array(v) for v in variables]


# --- conv_bn ---------------------------------------------------------------

def test_conv_bn_is_the_conv_sequence_with_batchnorm_and_leaky_relu():
    conv, conv_bn = models.build("conv", 32), models.build("conv_bn", 32)
    convs = [l for l in conv.layers if isinstance(l, keras.layers.Conv2D)]
    hidden = convs[:-1]  # the last is the sigmoid output conv, kept as it is
    # conv_bn: hidden convs lose their bias (BN's offset replaces it) and gain BN's
    # gamma, beta, moving mean and moving variance
    expected = conv.count_params() - sum(l.filters for l in hidden) + 4 * sum(l.filters for l in hidden)
    assert conv_bn.count_params() == expected == 5_492_691
    assert models.build("conv_bn", 256).count_params() == 5_492_691

    def skeleton(model):  # the layer sequence with each hidden conv's BN + LeakyReLU folded into it
        out = []
        for layer in model.layers[1:]:
            if isinstance(layer, keras.layers.Conv2D):
                out.append(("conv", layer.filters, layer.strides, layer.kernel_size))
            elif not isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LeakyReLU)):
                out.append(type(layer).__name__)
        return out

    assert skeleton(conv_bn) == skeleton(conv)
    kinds = [type(l).__name__ for l in conv_bn.layers[1:]]
    for i, layer in enumerate(conv_bn.layers[1:-1]):
        if isinstance(layer, keras.layers.Conv2D):
            assert kinds[i + 1:i + 3] == ["BatchNormalization", "LeakyReLU"]
            assert not layer.use_bias
    assert kinds.count("BatchNormalization") == kinds.count("LeakyReLU") == len(hidden)
    assert conv_bn.layers[-1].activation.__name__ == "sigmoid"
    lrelu = next(l for l in conv_bn.layers if isinstance(l, keras.layers.LeakyReLU))
    assert lrelu.negative_slope == pytest.approx(0.2)
    assert {l.momentum for l in conv_bn.layers if isinstance(l, keras.layers.BatchNormalization)} == {0.9}
    other = models.build("conv_bn", 32, {"conv_bn": {"alpha": 0.1, "momentum": 0.99}})
    assert next(l for l in other.layers if isinstance(l, keras.layers.LeakyReLU)).negative_slope == pytest.approx(0.1)
    assert next(l for l in other.layers if isinstance(l, keras.layers.BatchNormalization)).momentum == 0.99


# --- the conditional VAE ----------------------------------------------------

def test_vae_kl_is_finite_and_positive_and_reconstruction_improves():
    x, y = data()
    model = built("vae", tiny(), learning_rate=0.002)
    hist = model.fit(x[:6], y[:6], batch_size=6, epochs=1, verbose=0, validation_data=(x[6:], y[6:])).history
    assert {"loss", "reconstruction_loss", "kl_loss", "predictor_loss"} <= set(hist)
    assert {"val_loss", "val_reconstruction_loss", "val_kl_loss"} <= set(hist)
    assert np.isfinite(hist["kl_loss"][0]) and hist["kl_loss"][0] > 0
    assert np.isfinite(hist["val_loss"][0]) and hist["val_kl_loss"][0] > 0
    hist = model.fit(x, y, batch_size=8, epochs=25, verbose=0).history
    kl = np.array(hist["kl_loss"])
    assert np.all(np.isfinite(kl)) and np.all(kl > 0)
    assert hist["reconstruction_loss"][-1] < 0.7 * hist["reconstruction_loss"][0], hist["reconstruction_loss"]
    assert np.all(np.isfinite(hist["loss"]))


def test_vae_kl_weight_warms_up_linearly():
    params = tiny(vae={**models.config("vae", tiny()), "kl_weight": 0.5, "kl_warmup_steps": 4})
    model = built("vae", params)
    assert float(model.beta()) == pytest.approx(0.5 / 4)
    x, y = data(4)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # two steps
    assert float(model.beta()) == pytest.approx(0.5 * 3 / 4)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0)
    assert float(model.beta()) == pytest.approx(0.5)


def test_vae_predictor_is_deterministic_and_follows_the_input():
    x, y = data()
    model = built("vae", tiny(), learning_rate=0.002)
    model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    pred = models.predictor(model)
    a, b = np.asarray(pred(x, training=False)), np.asarray(pred(x, training=False))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(pred.predict(x, verbose=0)), a, atol=1e-6)
    assert np.abs(a[0] - a[1]).mean() > 1e-3  # different inputs, different outputs
    # the predictor is z = 0, the prior mean; sampling z gives other outputs
    s1 = np.asarray(model.sample(x[:2], seed=1))
    s2 = np.asarray(model.sample(x[:2], seed=2))
    assert s1.shape == a[:2].shape and np.abs(s1 - s2).max() > 0
    assert np.isfinite(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])  # test_step


def test_vae_settings_are_checked():
    with pytest.raises(ParamError, match="vae.kl_weight"):
        models.build("vae", 32, {"vae": {"kl_weight": -1}})
    with pytest.raises(ParamError, match="vae.filters"):
        models.build("vae", 32, {"vae": {"filters": [8]}})
    with pytest.raises(ParamError, match="vae.filters"):
        models.build("vae", 32, {"vae": {"filters": [8] * 7}})  # 32 px halves 5 times at most
    deepest = models.build("vae", 32, {"vae": {"filters": [8] * 6, "latent_channels": 2}})
    assert deepest.posterior.outputs[0].shape[1:] == (1, 1, 2)


# --- pix2pix -----------------------------------------------------------------

def test_gan_one_step_changes_generator_and_discriminator():
    x, y = data(4)
    model = built("unet_gan", tiny())
    g0, d0 = snapshot(model.generator.trainable_variables), snapshot(model.discriminator.trainable_variables)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert {"loss", "g_gan_loss", "g_l1_loss", "d_loss"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values()), logs
    assert logs["loss"] == pytest.approx(logs["g_gan_loss"] + 100 * logs["g_l1_loss"], rel=1e-5)
    g1, d1 = snapshot(model.generator.trainable_variables), snapshot(model.discriminator.trainable_variables)
    assert all(not np.array_equal(a, b) for a, b in zip(g0, g1)), "every generator variable should move"
    assert all(not np.array_equal(a, b) for a, b in zip(d0, d1)), "every discriminator variable should move"
    assert int(model.optimizer.iterations) == int(model.d_optimizer.iterations) == 1
    # test_step: the same four losses as train_step (one meaning per name for loss and val_loss),
    # on the deterministic generator, and no weight moves
    val = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(val) == set(logs)
    expected = np.abs(y - np.asarray(model.generator(x, training=False))).mean()
    assert val["g_l1_loss"] == pytest.approx(expected, rel=1e-5)
    assert val["loss"] == pytest.approx(val["g_gan_loss"] + 100 * val["g_l1_loss"], rel=1e-5)
    assert val["g_gan_loss"] > 0 and val["d_loss"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(g1, snapshot(model.generator.trainable_variables)))


def test_gan_uses_its_own_optimizers_built_on_their_variables():
    params = tiny()
    model = built("unet_gan", params, learning_rate=0.5, optimizer="sgd")  # top-level: ignored
    g, d = model.optimizer, model.d_optimizer
    assert isinstance(g, keras.optimizers.Adam) and isinstance(d, keras.optimizers.Adam)
    assert g.built and d.built
    assert float(g.learning_rate) == pytest.approx(2e-4) and float(d.learning_rate) == pytest.approx(2e-4)
    assert float(g.beta_1) == pytest.approx(0.5)
    # Adam keeps two slots per variable
    assert len(g.variables) - 2 == 2 * len(model.generator.trainable_variables)
    assert len(d.variables) - 2 == 2 * len(model.discriminator.trainable_variables)


def test_gan_generator_levels_follow_the_image_size():
    for size, levels in [(32, 5), (64, 6), (256, 8)]:
        g = models.module("unet_gan").generator(size, {**models.config("unet_gan"), **GAN_TINY})
        downs = [l for l in g.layers if l.name.startswith("down") and l.name.endswith("_conv")]
        assert len(downs) == levels
        assert downs[-1].output.shape[1:3] == (1, 1)
        drops = [l for l in g.layers if isinstance(l, keras.layers.Dropout)]
        assert len(drops) == min(3, (levels - 1) // 2)
    full = models.module("unet_gan").generator(256, models.config("unet_gan"))
    assert [l.filters for l in full.layers if l.name.startswith("down") and l.name.endswith("_conv")] == \
        [64, 128, 256, 512, 512, 512, 512, 512]


NORMED = [name for name in models.REGISTRY if "norm" in models.config(name)]


def every_layer(model):
    """The layers of ``model`` and of the models inside it (a GAN's generator and discriminator)."""
    for layer in model.layers:
        yield from every_layer(layer) if isinstance(layer, keras.Model) else (layer,)


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
@pytest.mark.parametrize("name", NORMED)
def test_every_norm_builds_and_trains_in_every_model_that_has_one(name, norm):
    """Each value params.yaml's schema lets ``norm`` take builds the layers it names, per layer width,
    and the model trains (unet_gan's ``group`` once failed at build: the width was not passed on)."""
    assert {"vae", "unet_gan", "cycle_gan"} <= set(NORMED)
    params = tiny()
    params[name] = {**params[name], "norm": norm}
    model = built(name, params)
    x, y = data(2)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
    layers = list(every_layer(model))
    batch = [l for l in layers if isinstance(l, keras.layers.BatchNormalization)]
    grouped = [l for l in layers if isinstance(l, keras.layers.GroupNormalization)]
    if norm == "none":
        assert not batch and not grouped
    elif norm == "batch":
        assert batch and not grouped
    else:
        assert grouped and not batch
        for layer in grouped:
            channels = layer.input.shape[-1]
            # instance: one group per channel; group: gcd(8, width) groups
            expected = channels if norm == "instance" else int(np.gcd(8, channels))
            assert (channels if layer.groups == -1 else layer.groups) == expected, layer.name


@pytest.mark.parametrize("name", ["vae", "unet_gan", "cycle_gan"])
def test_same_seed_same_training(name):
    x, y = data(4)
    runs = []
    for _ in range(2):
        model = built(name, tiny())
        runs.append(model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False).history)
    assert runs[0] == runs[1]


def test_cycle_gan_losses_are_the_paired_and_cycle_terms_of_both_directions():
    """Recomputed by hand from its four networks: the task's L1, the cycle term, the generators' total;
    each optimizer owns one side's networks, and the saved predictor is the task's generator."""
    from keras import ops

    x, y = data(2)
    model = built("cycle_gan", tiny())
    g, f = model.generator, model.backward_generator
    tx, ty = ops.convert_to_tensor(x), ops.convert_to_tensor(y)  # as fit() hands them over
    total, gan, l1, d_loss, cycle = (float(v) for v in model._gan_losses(tx, ty, training=False))
    gx, fy = np.asarray(g(x, training=False)), np.asarray(f(y, training=False))
    np.testing.assert_allclose(l1, np.abs(y - gx).mean(), rtol=1e-5)
    hand_cycle = (np.abs(np.asarray(f(gx, training=False)) - x).mean()
                  + np.abs(np.asarray(g(fy, training=False)) - y).mean())
    np.testing.assert_allclose(cycle, hand_cycle, rtol=1e-5)

    def fooled(disc, condition, fake):  # BCE(1, logits): the generators' GAN term per discriminator
        logits = disc([ops.convert_to_tensor(condition), ops.convert_to_tensor(fake)], training=False)
        return float(model.bce(ops.ones_like(logits), logits))

    hand_gan = fooled(model.discriminator, x, gx) + fooled(model.backward_discriminator, y, fy)
    np.testing.assert_allclose(gan, hand_gan, rtol=1e-5)
    rec = np.abs(y - gx).mean() + np.abs(x - fy).mean()  # no reconstruction levers: plain L1 both ways
    np.testing.assert_allclose(total, hand_gan + 100.0 * rec + 10.0 * hand_cycle, rtol=1e-4)
    assert d_loss > 0
    ids = lambda vs: {id(v) for v in vs}  # noqa: E731
    assert ids(model.g_variables) == ids(g.trainable_variables) | ids(f.trainable_variables)
    assert ids(model.d_variables) == ids(model.discriminator.trainable_variables) | ids(
        model.backward_discriminator.trainable_variables)
    assert ids(model.g_variables) | ids(model.d_variables) == ids(model.trainable_variables)
    assert models.predictor(model) is g
    assert model.count_params() == sum(n.count_params() for n in (g, f, model.discriminator,
                                                                  model.backward_discriminator))


# --- saving -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vae", "unet_gan", "cycle_gan"])
def test_predictor_save_load_round_trip(name, tmp_path):
    x, y = data(4)
    model = built(name, tiny())
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    pred = models.predictor(model)
    assert type(pred) is keras.Model or type(pred).__name__ == "Functional"
    pred.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)  # no custom objects
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), np.asarray(pred(x, training=False)))
    assert loaded.count_params() == pred.count_params()


# --- end to end through fit.train ---------------------------------------

@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def run_train(tmp_path, tiny_data, name, tag="a", **overrides):
    processed, split_file = tiny_data
    return fit.train(name, "f2s", {**tiny(), **overrides}, processed_file=processed, split_file=split_file,
                          models_dir=tmp_path / tag / "models", history_dir=tmp_path / tag / "history",
                          checkpoint_root=tmp_path / tag / "ckpt", verbose=0)


@pytest.mark.parametrize("name,extra", [("vae", {"kl_loss", "reconstruction_loss"}),
                                        ("unet_gan", {"d_loss", "g_gan_loss", "g_l1_loss"}),
                                        ("cycle_gan", {"d_loss", "g_gan_loss", "g_l1_loss", "cycle_loss"})])
def test_trains_end_to_end(tmp_path, tiny_data, mlflow_store, name, extra, capsys):
    info = run_train(tmp_path, tiny_data, name, epochs=2)
    assert "was not logged" not in capsys.readouterr().err  # MLflow took the run, metrics and model
    assert info["epochs"] == 2 and info["image_size"] == 32
    assert info["predictor_parameters"] < info["parameters"]
    rows = list(csv.DictReader(open(tmp_path / "a" / "history" / f"{name}-f2s.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "val_loss"} | extra | {f"val_{k}" for k in extra} <= set(rows[0])  # each term for both
    assert all(np.isfinite(float(r["val_loss"])) for r in rows)
    x, _ = data(2)
    loaded = load_predictor(tmp_path / "a" / "models" / f"{name}-f2s")
    out = np.asarray(loaded(x, training=False))
    assert out.shape == (2, 32, 32, 3) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("name", ["unet_gan", "vae", "cycle_gan"])
def test_checkpoint_restores_weights_and_every_optimizer(tmp_path, tiny_data, mlflow_store, monkeypatch, name):
    """Interrupt after epoch 2 of 3; a fresh model restores exactly; train() then resumes.

    The GAN has two optimizers (generator: model.optimizer, discriminator: d_optimizer).
    """
    make_class = fit._epoch_checkpoint_class
    seen = {}

    def interrupting_class():
        base = make_class()

        class Interrupting(base):
            def on_epoch_end(self, epoch, logs=None):
                super().on_epoch_end(epoch, logs)
                if epoch + 1 == 2:
                    seen.update(weights=snapshot(self.model.weights),
                                opts=[snapshot(o.variables) for o in fit._optimizers(self.model)])
                    raise Interrupted(signal.SIGTERM, "test")

        return Interrupting

    monkeypatch.setattr(fit, "_epoch_checkpoint_class", interrupting_class)
    with pytest.raises(Interrupted):
        run_train(tmp_path, tiny_data, name, epochs=3)
    monkeypatch.setattr(fit, "_epoch_checkpoint_class", make_class)

    ckpt_dir = tmp_path / "a" / "ckpt" / f"{name}-f2s"
    from facesketch import tracking
    from facesketch.core import fileio

    state = fileio.read_json(ckpt_dir / "state.json")
    assert state["epochs_done"] == 2
    fresh = built(name, tiny())
    opts = fit._optimizers(fresh)
    assert len(opts) == len(seen["opts"]) == (1 if name == "vae" else 2)
    ckpt = make_class()(ckpt_dir, state, list(state["history"]), tracking.Tracker())
    assert ckpt.restore(fresh) == 2
    for a, b in zip(snapshot(fresh.weights), seen["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    for opt, saved in zip(opts, seen["opts"]):
        assert len(opt.variables) == len(saved)
        for a, b in zip(snapshot(opt.variables), saved):
            np.testing.assert_array_equal(a, b)
    steps = {int(o.iterations) for o in opts}
    assert len(steps) == 1 and steps.pop() > 0  # every optimizer at the same, restored step

    info = run_train(tmp_path, tiny_data, name, epochs=3)
    assert info["resumed_from_epoch"] == 2
    rows = list(csv.DictReader(open(tmp_path / "a" / "history" / f"{name}-f2s.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
