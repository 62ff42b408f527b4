"""pix2pix (Isola et al. 2017): a U-Net generator trained against a PatchGAN.

Generator: encoder C64-C128-C256-C512-C512-... (4x4 convs, stride 2,
LeakyReLU 0.2, normalisation on all but the first and the innermost layer),
as many levels as the image allows, down to 1x1 (8 at 256 px, 5 at 32 px);
the decoder mirrors it with 4x4 stride-2 transposed convs, normalisation,
ReLU, a skip connection from the encoder level of the same size, and
dropout in its first blocks (pix2pix: 3 of 7 at 256 px; here at most half of
the decoder blocks, so 2 at 32 px). A last transposed conv gives 3 channels,
tanh, rescaled to [0, 1]; inputs are rescaled to [-1, 1] inside the model.

Discriminator: the 70x70 PatchGAN on the concatenated (input, output) pair:
C64 (no norm) - C128 - C256 (stride 2) - C512 (stride 1) - 1-channel logits,
one per patch (30x30 at 256 px).

Weights start from Keras' default (Glorot-uniform) initialisers, seeded by
``keras.utils.set_random_seed``, rather than pix2pix's N(0, 0.02).

Losses: D = 0.5 * (BCE(1, D(x, y)) + BCE(0, D(x, G(x)))) (from logits);
G = BCE(1, D(x, G(x))) + lambda_l1 * |y - G(x)|_1. Two Adam optimizers
(pix2pix: learning rate 2e-4, beta_1 0.5) from this model's own section of
params.yaml: the top-level ``optimizer``, ``learning_rate`` and ``loss`` do
not apply to this model.

``norm``: 'instance' by default. pix2pix trains with batch size 1 and
normalises with the test batch's statistics at inference, which is instance
normalisation; with our batches of 8 and a deterministic saved predictor, a
per-image GroupNormalization(groups=-1) reproduces that. 'batch' gives Keras
BatchNormalization (moving statistics at inference).

Metrics: ``loss`` (the generator's total objective, GAN + lambda_l1 x L1),
``g_gan_loss``, ``g_l1_loss``, ``d_loss``; ``test_step`` reports the same four
on the validation pairs (``val_loss`` etc., no weight updates), so each name
means one thing for training and validation.
``predictor()`` is the generator: a functional model of standard layers.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from facesketch.models import stateless
from facesketch.training.losses import reconstruction
from facesketch.models.blocks import OUTPUT_DTYPE, image_input, normalization, replica_share, to_signed, to_unit
from facesketch.models.settings import UnetGan
from facesketch.models.spec import ModelSpec

def _down(x, filters: int, norm: str, name: str):
    x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=norm == "none",
                      name=f"{name}_conv")(x)
    layer = normalization(norm, name=f"{name}_norm", channels=filters)
    if layer is not None:
        x = layer(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def generator(image_size: int, cfg: dict, name: str = "unet_generator") -> keras.Model:
    """The U-Net: ``image_size`` -> 1x1 and back, with skips; [0, 1] in and out."""
    levels = int(math.log2(image_size))
    widths = [min(cfg["filters"] * 2 ** i, cfg["max_filters"]) for i in range(levels)]
    n_dropout = min(3, (levels - 1) // 2)
    inputs = image_input(image_size)
    x = to_signed(inputs, name="to_signed")
    skips = []
    for i, f in enumerate(widths):
        # no normalisation on the first layer (pix2pix) nor on the 1x1 innermost one
        x = _down(x, f, "none" if i in (0, levels - 1) else cfg["norm"], name=f"down{i}")
        skips.append(x)
    for j, i in enumerate(range(levels - 2, -1, -1)):
        x = layers.Conv2DTranspose(widths[i], 4, strides=2, padding="same", use_bias=cfg["norm"] == "none",
                                   name=f"up{i}_conv")(x)
        layer = normalization(cfg["norm"], name=f"up{i}_norm", channels=widths[i])
        if layer is not None:
            x = layer(x)
        if j < n_dropout and cfg["dropout"] > 0:
            x = layers.Dropout(cfg["dropout"], name=f"up{i}_dropout")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
        x = layers.Concatenate(name=f"up{i}_skip")([x, skips[i]])
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh",
                               name="output_conv")(x)
    return keras.Model(inputs, to_unit(x, name="output"), name=name)


def discriminator(image_size: int, cfg: dict, name: str = "patchgan") -> keras.Model:
    """70x70 PatchGAN on (input, output-or-target): one logit per patch."""
    x_in = keras.Input((image_size, image_size, 3), name="image")
    y_in = keras.Input((image_size, image_size, 3), name="target")
    x = layers.Concatenate(name="pair")([to_signed(x_in, name="image_signed"), to_signed(y_in, name="target_signed")])
    f = cfg["filters"]
    x = _down(x, f, "none", name="d0")
    x = _down(x, min(2 * f, cfg["max_filters"]), cfg["norm"], name="d1")
    x = _down(x, min(4 * f, cfg["max_filters"]), cfg["norm"], name="d2")
    x = layers.ZeroPadding2D(name="d3_pad")(x)
    x = layers.Conv2D(min(8 * f, cfg["max_filters"]), 4, use_bias=cfg["norm"] == "none",
                      name="d3_conv")(x)
    layer = normalization(cfg["norm"], name="d3_norm", channels=min(8 * f, cfg["max_filters"]))
    if layer is not None:
        x = layer(x)
    x = layers.LeakyReLU(negative_slope=0.2, name="d3_lrelu")(x)
    x = layers.ZeroPadding2D(name="logits_pad")(x)
    logits = layers.Conv2D(1, 4, name="logits", dtype=OUTPUT_DTYPE)(x)
    return keras.Model([x_in, y_in], logits, name=name)


class Pix2Pix(keras.Model):
    """Generator + discriminator with the pix2pix ``train_step``. ``call(x)`` = generator.
    ``cfg``: checked settings (``facesketch.models.config``)."""

    def __init__(self, image_size: int, cfg: dict, name: str = "unet_gan", **kwargs):
        super().__init__(name=name, **kwargs)
        self.lambda_l1 = cfg["lambda_l1"]
        self.generator = generator(image_size, cfg)
        self.discriminator = discriminator(image_size, cfg)
        self.d_optimizer = None
        self.ssim_weight = 0.0
        self.edge_weight = 0.0
        self.loss_space = "rgb"
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.g_gan_tracker = keras.metrics.Mean(name="g_gan_loss")
        self.g_l1_tracker = keras.metrics.Mean(name="g_l1_loss")
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.built = True

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """``g_optimizer`` becomes ``model.optimizer`` (so ``optimizer.iterations`` counts steps)."""
        super().compile(optimizer=g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        if keras.backend.backend() == "jax" and d_optimizer is not None:
            # Keras' JAX fit() carries only model.optimizer's state through its steps: the
            # discriminator's Adam travels as non-trainable model variables (count_params leaves them out)
            if not d_optimizer.built:
                d_optimizer.build(self.d_variables)
            self.d_optimizer_state = list(d_optimizer.variables)

    def count_params(self) -> int:
        return sum(net.count_params() for net in self.networks())

    def networks(self) -> list[keras.Model]:
        """Every network of the model: the generator's side first, then the discriminator's."""
        return [self.generator, self.discriminator]

    @property
    def g_variables(self) -> list:
        """What the generators' optimizer updates (``model.optimizer``)."""
        return self.generator.trainable_variables

    @property
    def d_variables(self) -> list:
        """What the discriminators' optimizer (``d_optimizer``) updates."""
        return self.discriminator.trainable_variables

    @property
    def g_optimizer(self):
        return self.optimizer

    @property
    def metrics(self):
        return [self.loss_tracker, self.g_gan_tracker, self.g_l1_tracker, self.d_tracker]

    def call(self, x, training=False):
        return self.generator(x, training=training)

    def predictor(self) -> keras.Model:
        return self.generator

    def training_passes(self):
        """Forward passes of one training step (facesketch.training.flops): G once, D on real and fake pairs."""
        return [(self.generator, 1), (self.discriminator, 2)]

    @staticmethod
    def bce(target, logits):
        """Mean binary cross-entropy on logits (a plain function: no tf.distribute rescaling)."""
        return ops.mean(ops.binary_crossentropy(target, logits, from_logits=True))

    def _gan_losses(self, x, y, training: bool):
        """(generator total, its GAN term, its L1 term, discriminator loss) on one batch."""
        fake = self.generator(x, training=training)
        real_logits = self.discriminator([x, y], training=training)
        fake_logits = self.discriminator([x, fake], training=training)
        g_gan = self.bce(ops.ones_like(fake_logits), fake_logits)
        g_l1 = ops.mean(ops.abs(y - fake))
        g_total = g_gan + self.lambda_l1 * self._reconstruction(y, fake, g_l1)
        d_loss = 0.5 * (self.bce(ops.ones_like(real_logits), real_logits)
                        + self.bce(ops.zeros_like(fake_logits), fake_logits))
        return g_total, g_gan, g_l1, d_loss

    def _reconstruction(self, target, output, l1):
        """The term lambda_l1 weighs: the L1 distance ``l1`` (already computed), or with the levers on,
        L1 in loss_space + ssim_weight x (1 - SSIM) + edge_weight x edges (facesketch.training.losses)."""
        if self.ssim_weight or self.edge_weight or self.loss_space != "rgb":
            return ops.mean(reconstruction("mae", self.ssim_weight, self.edge_weight, self.loss_space)(target, output))
        return l1

    def _record(self, losses) -> dict:
        for tracker, value in zip(self.metrics, losses):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, *args):
        """One step of both players: ``(data)`` under TensorFlow, ``(state, data)`` under JAX (stateless)."""
        if keras.backend.backend() == "jax":
            return self._train_step_jax(*args)
        return self._train_step_tf(*args)

    def _train_step_tf(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            losses = self._gan_losses(x, y, training=True)  # (g_total, g_gan, g_l1, d_loss, ...)
            # scale_loss: loss scaling under mixed_float16 (identity otherwise)
            g_scaled = self.optimizer.scale_loss(replica_share(losses[0]))
            d_scaled = self.d_optimizer.scale_loss(replica_share(losses[3]))
        g_vars, d_vars = self.g_variables, self.d_variables
        self.optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars))
        return self._record(losses)

    def _train_step_jax(self, state, data):
        """The TensorFlow step on ``state``'s values: one forward pass of both players, the generator's
        loss differentiated for the generator and the discriminator's for the discriminator (as the two
        tapes do), one Adam step each. The discriminator's Adam state is among the non-trainable values."""
        import jax

        trainable, non_trainable, g_opt_values, metrics_values = state
        x, y = data[0], data[1]
        gi, di = self._split(self.trainable_variables, self.g_variables, self.d_variables)
        oi, = self._split(self.non_trainable_variables, self.d_optimizer.variables)
        d_opt_values = [non_trainable[i] for i in oi]

        def losses(g_values, d_values):
            values = list(trainable)
            for i, v in zip(gi + di, [*g_values, *d_values]):
                values[i] = v
            out, after = stateless.run(self, lambda: self._gan_losses(x, y, training=True), values, non_trainable)
            scaled = (stateless.scale_loss(self.optimizer, out[0], g_opt_values),
                      stateless.scale_loss(self.d_optimizer, out[3], d_opt_values))
            return scaled, (out, after)

        g_values, d_values = [trainable[i] for i in gi], [trainable[i] for i in di]
        scaled, backward, (out, non_trainable) = jax.vjp(losses, g_values, d_values, has_aux=True)
        g_grads = backward((jax.numpy.ones_like(scaled[0]), jax.numpy.zeros_like(scaled[1])))[0]
        d_grads = backward((jax.numpy.zeros_like(scaled[0]), jax.numpy.ones_like(scaled[1])))[1]
        g_values, g_opt_values = self.optimizer.stateless_apply(g_opt_values, g_grads, g_values)
        d_values, d_opt_values = self.d_optimizer.stateless_apply(d_opt_values, d_grads, d_values)
        trainable, non_trainable = list(trainable), list(non_trainable)
        for i, v in zip(gi + di, [*g_values, *d_values]):
            trainable[i] = v
        for i, v in zip(oi, d_opt_values):
            non_trainable[i] = v
        logs, metrics_values = stateless.record(self, metrics_values, lambda: self._record(out))
        return logs, (trainable, non_trainable, g_opt_values, metrics_values)

    @staticmethod
    def _split(variables, *parts) -> list[list[int]]:
        """The positions in ``variables`` of each part's variables."""
        where = {id(v): i for i, v in enumerate(variables)}
        return [[where[id(v)] for v in part] for part in parts]

    def test_step(self, *args):
        """The training step's four losses on validation pairs (inference mode, no updates)."""
        if keras.backend.backend() == "jax":
            (trainable, non_trainable, metrics_values), data = args
            out, non_trainable = stateless.run(self, lambda: self._gan_losses(data[0], data[1], training=False),
                                               trainable, non_trainable)
            logs, metrics_values = stateless.record(self, metrics_values, lambda: self._record(out))
            return logs, (trainable, non_trainable, metrics_values)
        data = args[0]
        return self._record(self._gan_losses(data[0], data[1], training=False))


def build(image_size: int, cfg: dict) -> keras.Model:
    return Pix2Pix(image_size, cfg)


def compile_model(model: Pix2Pix, training: dict, cfg: dict, jit_compile="auto", total_steps: int = 0) -> None:
    """Two Adams from this model's settings (not the top-level optimizer/learning_rate/loss);
    the shared ``lr_schedule`` applies to both, ``loss_space``, ``ssim_weight`` and ``edge_weight`` to the
    generator's L1 term.

    Both are built on their variables here, so a checkpoint restore
    (``EpochCheckpoint.restore``) finds their slots ready to load into.
    """
    from facesketch.training.losses import learning_rate

    schedule = training.get("lr_schedule", "constant")
    model.ssim_weight = float(training.get("ssim_weight", 0.0))
    model.edge_weight = float(training.get("edge_weight", 0.0))
    model.loss_space = training.get("loss_space", "rgb")
    g_opt = keras.optimizers.Adam(learning_rate=learning_rate(cfg["g_learning_rate"], schedule, total_steps),
                                  beta_1=cfg["beta_1"], name="g_adam")
    d_opt = keras.optimizers.Adam(learning_rate=learning_rate(cfg["d_learning_rate"], schedule, total_steps),
                                  beta_1=cfg["beta_1"], name="d_adam")
    if model.dtype_policy.name == "mixed_float16":  # compile() wraps only model.optimizer
        g_opt = keras.optimizers.LossScaleOptimizer(g_opt, name="g_adam_scaled")
        d_opt = keras.optimizers.LossScaleOptimizer(d_opt, name="d_adam_scaled")
    g_opt.build(model.g_variables)
    d_opt.build(model.d_variables)
    model.compile(g_optimizer=g_opt, d_optimizer=d_opt, jit_compile=jit_compile)


SPEC = ModelSpec(build=build, settings=UnetGan, compile_model=compile_model)
