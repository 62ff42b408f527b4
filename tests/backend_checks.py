"""The checks behind tests/test_backends.py, run in a process of their own (Keras fixes its
backend per process: KERAS_BACKEND=tensorflow or jax).

    python tests/backend_checks.py run  DIR   # train (VAE warm-up), EMA, SSIM, GAN step, save predictors
    python tests/backend_checks.py load DIR   # load the other backend's predictors, predict

Results go to DIR/<backend>-<mode>.json; the GAN's starting weights and inputs are shared
through DIR/gan_start.npz (written by the first run, read by the second), the saved
predictors through DIR/<backend>-<model>/model.keras and their outputs through DIR/<backend>-outputs.npz.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import facesketch  # noqa: E402,F401  (quiet TensorFlow first)
from conftest import make_pairs, tiny_params  # noqa: E402
from facesketch.core import backend  # noqa: E402

SMALL = {"vae": {"filters": [8, 16], "posterior_filters": 8, "latent_channels": 2},
         "unet_gan": {"filters": 4, "max_filters": 8, "dropout": 0.0},
         "cycle_gan": {"filters": 4, "max_filters": 8, "dropout": 0.0}}
SAVED = ("conv_bn", "vae", "unet_gan")


def small_params(**overrides) -> dict:
    params = tiny_params(**overrides)
    for name, cfg in SMALL.items():
        params[name] = {**params[name], **cfg}
    return params


def data(n: int = 8):
    photos, sketches = make_pairs(n, 32)
    return photos, sketches, photos.astype("float32") / 255, sketches.astype("float32") / 255


def built(name: str, params: dict, seed: int = 1):
    import keras

    from facesketch import models
    from facesketch.training.factories import compile_model

    keras.utils.set_random_seed(seed)
    model = models.build(name, 32, params)
    cfg = models.config(name, params)
    return model, cfg, (models.spec(name).compile_model or compile_model)


def fit_losses(name: str) -> dict:
    """A few steps of each model through this backend's input path (8 pairs, one batch an epoch):
    the loss per step (pix2pix: its L1 term, the GAN term need not fall); for the VAE also the KL
    weight each step's loss used, solved from its logged terms (kl_warmup_steps 4)."""
    from facesketch import models
    from facesketch.core.params import training
    from facesketch.training.inputs import training_inputs

    photos, sketches, x, y = data()
    params = small_params(learning_rate=0.002)
    params["vae"]["kl_warmup_steps"], params["vae"]["kl_weight"] = 4, 1.0
    model, cfg, compile_fn = built(name, params)
    models.spec(name).prepare(model, x, y, cfg)
    compile_fn(model, training(params), cfg)
    inputs = training_inputs(backend.name(), photos, sketches, 8, shuffle_seed=1)
    hist = model.fit(inputs, steps_per_epoch=1, epochs=5, verbose=0, shuffle=False).history
    result = {"losses": [float(v) for v in (hist.get("g_l1_loss") or hist["loss"])],
              "iterations": int(np.asarray(model.optimizer.iterations.value))}
    if name in ("unet_gan", "cycle_gan"):
        result["restored"] = restored(model, lambda: built(name, params), training(params), cfg)
    if name == "vae":
        size = 32 * 32 * 3
        result["betas"] = [(t - r - p) * size / k for t, r, p, k in zip(
            hist["loss"], hist["reconstruction_loss"], hist["predictor_loss"], hist["kl_loss"])]
    return result


def restored(model, rebuild, training_params: dict, cfg: dict) -> dict:
    """``model``'s weights and optimizers saved as a checkpoint does, restored into a fresh model by
    ``EpochCheckpoint.restore``: the largest difference, and how many optimizer variables there are."""
    import tempfile

    from facesketch.training.checkpoints import epoch_checkpoint_class, optimizers

    with tempfile.TemporaryDirectory() as folder:
        ckpt = epoch_checkpoint_class()(Path(folder), {"epochs_done": 1}, [], None)
        model.save_weights(ckpt.weights_file)
        fresh, _, compile_fn = rebuild()
        compile_fn(fresh, training_params, cfg)
        assert ckpt.restore(fresh) == 1
    pairs = [*zip(model.weights, fresh.weights, strict=True),
             *[(a, b) for o, p in zip(optimizers(model), optimizers(fresh), strict=True)
               for a, b in zip(o.variables, p.variables, strict=True)]]
    return {"optimizer_variables": sum(len(o.variables) for o in optimizers(fresh)),
            "max_difference": max(float(np.max(np.abs(np.asarray(a.value, "float64") - np.asarray(b.value, "float64"))))
                                   for a, b in pairs),
            "iterations": [int(np.asarray(o.iterations.value)) for o in optimizers(fresh)]}


def ema() -> dict:
    """The weight-average callback's result and the weights after every step, to recompute in NumPy."""
    import keras

    from facesketch.training import weight_average

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")
    start = [np.array(w.value) for w in model.weights]
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            getattr(self.model, "jax_state_sync", lambda: None)()  # its own sync: not relying on the average's
            seen.append([np.array(w.value) for w in self.model.weights])

    average = weight_average.callback(model, 0.9)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[average, Recorder()])
    expected = start
    for t, weights in enumerate(seen, start=1):
        d = min(0.9, (1 + t) / (10 + t))
        expected = [d * a + (1 - d) * w for a, w in zip(expected, weights)]
    state = average.state()
    got = [state[f"a{i}"] for i in range(len(expected))]
    return {"steps": int(state["steps"]), "seen": len(seen),
            "max_error": max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected)),
            "lag": max(float(np.max(np.abs(e - w))) for e, w in zip(expected, seen[-1]))}


def ssim_pairs() -> dict:
    """Two sets of pairs for SSIM: photos and near-flat sketches, each against a noisy copy."""
    _, _, x, y = data(4)
    noise = np.random.default_rng(0).normal(0, 0.1, y.shape)
    return {name: (a, np.clip(a + noise, 0, 1).astype("float32")) for name, a in (("photos", x), ("sketches", y))}


def ssim_values(out: Path) -> dict:
    """``losses.ssim`` (keras.ops) on fixed pairs; under TensorFlow also ``tf.image.ssim``."""
    from keras import ops

    from facesketch.training import losses

    result = {}
    for name, (a, b) in ssim_pairs().items():
        value = losses.ssim(ops.convert_to_tensor(a), ops.convert_to_tensor(b))
        result[name] = {"ops": np.asarray(ops.convert_to_numpy(value)).tolist()}
        if backend.name() == "tensorflow":
            import tensorflow as tf

            result[name]["tf"] = tf.image.ssim(a, b, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01,
                                               k2=0.03).numpy().tolist()
    return result


def edge_values(out: Path) -> dict:
    """``losses.edge_difference`` (keras.ops) on the SSIM check's pairs."""
    from keras import ops

    from facesketch.training import losses

    return {name: np.asarray(ops.convert_to_numpy(losses.edge_difference(ops.convert_to_tensor(a),
                                                                         ops.convert_to_tensor(b)))).tolist()
            for name, (a, b) in ssim_pairs().items()}


def gan_step(out: Path) -> dict:
    """One pix2pix training step with plain SGD(1): the weight changes are the two players' gradients.
    Both backends start from the weights and batch in gan_start.npz (the first run writes it)."""
    import keras

    params = small_params()
    model, cfg, _ = built("unet_gan", params)
    start = out / "gan_start.npz"
    if not start.exists():
        _, _, x, y = data(4)
        np.savez(start, x=x, y=y, **{f"w{i}": np.array(w.value) for i, w in enumerate(model.weights)})
    with np.load(start) as arrays:
        x, y = arrays["x"], arrays["y"]
        model.set_weights([arrays[f"w{i}"] for i in range(len(model.weights))])
    g_opt, d_opt = keras.optimizers.SGD(1.0), keras.optimizers.SGD(1.0)
    g_opt.build(model.generator.trainable_variables)
    d_opt.build(model.discriminator.trainable_variables)
    model.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    before = [np.array(w.value) for w in model.trainable_variables]
    logs = model.train_on_batch(x, y, return_dict=True)
    grads = [b - np.array(w.value) for b, w in zip(before, model.trainable_variables)]
    np.savez(out / f"{backend.name()}-gan_grads.npz", *grads)
    return {k: float(v) for k, v in logs.items()}


def save_predictors(out: Path) -> None:
    """Each SAVED model's predictor (untrained, its weights nudged off the start), saved with its outputs."""
    from facesketch import models

    _, _, x, _ = data(4)
    outputs = {}
    for name in SAVED:
        model, _, _ = built(name, small_params(), seed=3)
        predictor = models.predictor(model)
        rng = np.random.default_rng(0)  # non-trivial normalisation statistics and biases
        predictor.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.dtype.kind == "f" else w
                               for w in predictor.get_weights()])
        (out / f"{backend.name()}-{name}").mkdir(exist_ok=True)
        predictor.save(out / f"{backend.name()}-{name}" / "model.keras")  # the layout core.saved reads
        outputs[name] = np.asarray(predictor.predict(x, verbose=0))
    np.savez(out / f"{backend.name()}-outputs.npz", **outputs)


def load_predictors(out: Path) -> dict:
    """The other backend's saved predictors here: their largest difference from the outputs saved there."""
    from facesketch.core.saved import load_predictor

    other = "jax" if backend.name() == "tensorflow" else "tensorflow"
    _, _, x, _ = data(4)
    diffs = {}
    with np.load(out / f"{other}-outputs.npz") as saved:
        for name in SAVED:
            model = load_predictor(out / f"{other}-{name}")
            diffs[name] = float(np.max(np.abs(np.asarray(model.predict(x, verbose=0)) - saved[name])))
    return {"from": other, "max_difference": diffs}


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    backend.init(0)
    result: dict = {"backend": backend.name()}
    if mode == "run":
        result["fit"] = {name: fit_losses(name) for name in ("dense", "conv", "conv_bn", "vae", "unet_gan", "cycle_gan")}
        result["ema"] = ema()
        result["ssim"] = ssim_values(out)
        result["edge"] = edge_values(out)
        result["gan_step"] = gan_step(out)
        save_predictors(out)
    other = "jax" if backend.name() == "tensorflow" else "tensorflow"
    if mode == "load" or (out / f"{other}-outputs.npz").exists():
        result["loaded"] = load_predictors(out)
    (out / f"{backend.name()}-{mode}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
