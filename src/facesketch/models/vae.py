"""A convolutional conditional VAE for paired translation (input image x -> target y).

The study's VAE encoded the input into one latent vector and decoded the image
from it alone; it fell back to (nearly) the mean image. This one cannot: the
decoder is a U-Net conditioned on the input itself, and the latent only adds
what the input does not determine.

Every hidden layer is a 3x3 conv -> normalisation (``norm``; GroupNormalization
by default: per-image statistics, so training and the saved predictor behave
alike; without it the sigmoid output saturated at white early in training and
the model stalled near the mean image) -> LeakyReLU.

- condition encoder E(x): two conv layers per level, one full-resolution level and
  ``len(filters) - 1`` stride-2 levels; every level's features are skips, the
  last level (image_size / 2**(len(filters)-1)) is the bottleneck h.
- posterior q(z | x, y): a small strided conv encoder of the concatenated pair
  down to the bottleneck resolution, giving the mean and log-variance of a
  spatial latent z (``latent_channels`` channels per bottleneck position).
- decoder D(skips, h + P(z)): P is a bias-free 1x1 convolution, so z = 0 adds
  exactly nothing; then upsample + 3x3 conv, concatenate the skip, 3x3 conv,
  per level, and the study's sigmoid 3x3 output conv.

Training (keras-io VAE style ``train_step``) minimises

    recon(y, D(E(x), z ~ q)) + predictor_weight * recon(y, D(E(x), z = 0))
        + beta * KL(q(z | x, y) || N(0, I))

with ``recon`` the params.yaml ``loss`` (mae | bce | mse, a mean over target
values) and KL in nats per image divided by the number of target values
(image_size**2 * 3), so both are per target value (``kl_loss`` reports the KL
in nats per image). ``beta`` rises linearly from 0 to ``kl_weight`` over the
first ``kl_warmup_steps`` optimizer steps (counted by the optimizer, so a
resumed run continues the schedule). The second term is
Sohn et al.'s (2015) hybrid CVAE objective with the prior mean: it trains the
deterministic path that inference uses. Metrics: ``loss``,
``reconstruction_loss``, ``kl_loss``, ``predictor_loss`` (the z = 0 term).

Inference (``predictor()``): the functional model x -> D(E(x)), i.e. z = 0,
the prior's mean; deterministic, standard layers only. ``sample(x)`` draws
z ~ N(0, I) for varied outputs.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from facesketch.core.errors import ParamError
from facesketch.models import stateless
from facesketch.models.blocks import conv_lrelu, image_input, image_output, replica_share
from facesketch.models.settings import Vae
from facesketch.models.spec import ModelSpec

def _condition_encoder(image_size: int, filters: list[int], alpha: float, norm: str) -> keras.Model:
    x = inputs = image_input(image_size)
    feats = []
    for i, f in enumerate(filters):
        if i:
            x = conv_lrelu(x, f, strides=2, alpha=alpha, norm=norm, name=f"enc{i}_down")
        x = conv_lrelu(x, f, alpha=alpha, norm=norm, name=f"enc{i}")
        feats.append(x)
    return keras.Model(inputs, feats, name="condition_encoder")


def _posterior(image_size: int, filters: list[int], width: int, latent: int, alpha: float,
               norm: str) -> keras.Model:
    x_in = keras.Input((image_size, image_size, 3), name="image")
    y_in = keras.Input((image_size, image_size, 3), name="target")
    x = layers.Concatenate(name="pair")([x_in, y_in])
    x = conv_lrelu(x, width, alpha=alpha, norm=norm, name="q0")
    for i in range(1, len(filters)):
        x = conv_lrelu(x, width, strides=2, alpha=alpha, norm=norm, name=f"q{i}")
    mean = layers.Conv2D(latent, 3, padding="same", name="z_mean")(x)
    log_var = layers.Conv2D(latent, 3, padding="same", name="z_log_var")(x)
    return keras.Model([x_in, y_in], [mean, log_var], name="posterior")


def _decoder(image_size: int, filters: list[int], alpha: float, norm: str) -> keras.Model:
    sizes = [image_size // 2 ** i for i in range(len(filters))]
    feats = [keras.Input((s, s, f), name=f"skip{i}") for i, (s, f) in enumerate(zip(sizes, filters))]
    x = conv_lrelu(feats[-1], filters[-1], alpha=alpha, norm=norm, name="bottleneck")
    for i in range(len(filters) - 2, -1, -1):
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)
        x = conv_lrelu(x, filters[i], alpha=alpha, norm=norm, name=f"dec{i}_upconv")
        x = layers.Concatenate(name=f"dec{i}_skip")([x, feats[i]])
        x = conv_lrelu(x, filters[i], alpha=alpha, norm=norm, name=f"dec{i}")
    return keras.Model(feats, image_output(x), name="decoder")


class ConditionalVAE(keras.Model):
    """See the module doc. ``call(x)`` is the deterministic predictor (z = 0).
    ``cfg``: checked settings (``facesketch.models.config``)."""

    def __init__(self, image_size: int, cfg: dict, **kwargs):
        super().__init__(name="vae", **kwargs)
        filters, alpha, norm = cfg["filters"], cfg["alpha"], cfg["norm"]
        if image_size % 2 ** (len(filters) - 1):
            raise ParamError(f"params.yaml: vae.filters has {len(filters)} levels, too many for image_size={image_size}")
        self.image_size = image_size
        self.kl_weight = cfg["kl_weight"]
        self.kl_warmup_steps = cfg["kl_warmup_steps"]
        self.predictor_weight = cfg["predictor_weight"]
        self.condition_encoder = _condition_encoder(image_size, filters, alpha, norm)
        self.posterior = _posterior(image_size, filters, cfg["posterior_filters"], cfg["latent_channels"], alpha, norm)
        self.decoder = _decoder(image_size, filters, alpha, norm)
        b = image_size // 2 ** (len(filters) - 1)
        self.z_projection = layers.Conv2D(filters[-1], 1, use_bias=False, name="z_projection")
        self.z_projection.build((None, b, b, cfg["latent_channels"]))
        self.seed_generator = keras.random.SeedGenerator()
        image = image_input(image_size)
        self.inference = keras.Model(image, self.decoder(self.condition_encoder(image)), name="vae_predictor")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.predictor_tracker = keras.metrics.Mean(name="predictor_loss")
        self.reconstruction = keras.losses.mean_absolute_error
        self.built = True

    # --- keras plumbing ---------------------------------------------------
    def compile(self, optimizer="adam", loss="mae", **kwargs):
        """``loss`` is the reconstruction loss (the KL term is added in ``train_step``).

        Kept as Keras' plain loss function (per-image values, no reduction): a
        ``keras.losses.Loss`` object would also divide by the number of
        tf.distribute replicas, which ``train_step`` does once for the total.
        """
        super().compile(optimizer=optimizer, **kwargs)
        self.reconstruction = keras.losses.get(loss.name if isinstance(loss, keras.losses.Loss) else loss)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker, self.predictor_tracker]

    def call(self, x, training=False):
        return self.inference(x, training=training)

    def predictor(self) -> keras.Model:
        return self.inference

    def training_passes(self):
        """Forward passes of one training step (facesketch.training.flops): the decoder runs on z and on z = 0."""
        return [(self.condition_encoder, 1), (self.posterior, 1), (self.decoder, 2)]

    # --- the model ----------------------------------------------------------
    def beta(self):
        """The KL weight now: linear warm-up over ``kl_warmup_steps`` optimizer steps."""
        if not self.kl_warmup_steps:
            return ops.convert_to_tensor(self.kl_weight, "float32")
        step = ops.cast(self.optimizer.iterations, "float32") + 1.0
        return self.kl_weight * ops.minimum(1.0, step / float(self.kl_warmup_steps))

    def decode(self, feats, z=None, training=False):
        if z is not None:
            feats = [*feats[:-1], feats[-1] + self.z_projection(z)]
        return self.decoder(feats, training=training)

    def sample(self, x, seed=None):
        """Outputs with z drawn from the prior N(0, I): the model's variation for one input."""
        feats = self.condition_encoder(x)
        b = self.image_size // 2 ** (len(feats) - 1)
        z = keras.random.normal((ops.shape(x)[0], b, b, self.posterior.outputs[0].shape[-1]), seed=seed)
        return self.decode(feats, z)

    def _vae_losses(self, x, y, training: bool):
        feats = self.condition_encoder(x, training=training)
        mean, log_var = self.posterior([x, y], training=training)
        mean, log_var = ops.cast(mean, "float32"), ops.clip(ops.cast(log_var, "float32"), -20.0, 20.0)
        if training:
            eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            z = mean + ops.exp(0.5 * log_var) * eps
        else:
            z = mean
        recon = ops.mean(self.reconstruction(y, self.decode(feats, z, training)))
        # KL(q(z|x,y) || N(0, I)) in nats per image; weighted per target value, like ``recon``
        kl = -0.5 * (1.0 + log_var - ops.square(mean) - ops.exp(log_var))
        kl = ops.mean(ops.sum(kl, axis=(1, 2, 3)))
        total = recon + self.beta() * kl / float(self.image_size * self.image_size * 3)
        pred = ops.mean(self.reconstruction(y, self.decode(feats, None, training)))
        total = total + self.predictor_weight * pred
        return total, recon, kl, pred

    def _track(self, total, recon, kl, pred):
        for tracker, value in zip(self.metrics, (total, recon, kl, pred)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, *args):
        """One optimizer step: ``(data)`` under TensorFlow, ``(state, data)`` under JAX (stateless)."""
        if keras.backend.backend() == "jax":
            return self._train_step_jax(*args)
        return self._train_step_tf(*args)

    def _train_step_tf(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            total, recon, kl, pred = self._vae_losses(x, y, training=True)
            scaled = self.optimizer.scale_loss(replica_share(total))  # loss scaling under mixed_float16
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._track(total, recon, kl, pred)

    def _train_step_jax(self, state, data):
        """The TensorFlow step's arithmetic on ``state``'s values (see facesketch.models.stateless).

        The optimizer's variables are mapped too: ``beta()`` reads ``optimizer.iterations``, which a
        plain JAX ``compute_loss`` would not see, so the KL warm-up advances as under TensorFlow.
        """
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y = data[0], data[1]
        opt_mapping = list(zip(self.optimizer.variables, optimizer_values))

        def loss(trainable):
            losses, after = stateless.run(self, lambda: self._vae_losses(x, y, training=True), trainable,
                                          non_trainable, opt_mapping)
            return stateless.scale_loss(self.optimizer, losses[0], optimizer_values), (losses, after)

        (_, (losses, non_trainable)), grads = jax.value_and_grad(loss, has_aux=True)(trainable)
        trainable, optimizer_values = self.optimizer.stateless_apply(optimizer_values, grads, trainable)
        logs, metrics_values = stateless.record(self, metrics_values, lambda: self._track(*losses))
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def test_step(self, *args):
        if keras.backend.backend() == "jax":
            (trainable, non_trainable, metrics_values), data = args
            losses, non_trainable = stateless.run(self, lambda: self._vae_losses(data[0], data[1], training=False),
                                                  trainable, non_trainable)
            logs, metrics_values = stateless.record(self, metrics_values, lambda: self._track(*losses))
            return logs, (trainable, non_trainable, metrics_values)
        x, y = args[0][0], args[0][1]
        return self._track(*self._vae_losses(x, y, training=False))


def build(image_size: int, cfg: dict) -> keras.Model:
    return ConditionalVAE(image_size, cfg)


SPEC = ModelSpec(build=build, settings=Vae)
