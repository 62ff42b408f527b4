"""Building blocks shared by the models."""

from __future__ import annotations

import keras
from keras import layers


def image_input(image_size: int) -> keras.KerasTensor:
    return keras.Input(shape=(image_size, image_size, 3), name="image")


def conv(x, filters: int, *, strides: int = 1, activation: str | None = "relu", name: str | None = None):
    """3x3 'same' convolution, the study's only kernel size."""
    return layers.Conv2D(filters, 3, strides=strides, padding="same", activation=activation, name=name)(x)


def conv_bn_lrelu(x, filters: int, *, strides: int = 1, alpha: float = 0.2, name: str | None = None,
                  momentum: float = 0.99):
    """Conv -> BatchNorm -> LeakyReLU (the study's "conv + BN" variant).

    ``momentum``: of BatchNorm's moving statistics (Keras' default 0.99).
    """
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      name=None if name is None else f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=momentum, name=None if name is None else f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=alpha, name=None if name is None else f"{name}_lrelu")(x)


def init_output_bias(model: keras.Model, targets, how: str) -> None:
    """Start the sigmoid output at the training targets' mean colour ('target_mean') or at 0.5 ('zero').

    Why: with Keras' zero bias every output starts at 0.5 while CUHK sketches are
    mostly near-white; the first large MAE steps then drive the study's ReLU
    stack dead and the conv AE collapses to one constant image (loss flat at
    0.1846 on synthetic 32 px, test MAE 0.181 against the mean image's 0.088).
    Starting at the mean (logit of the per-channel mean) avoids that
    (test MAE 0.060 there). The architecture and parameter count are unchanged.
    """
    import numpy as np

    if how == "zero":
        return
    layer = next((l for l in reversed(model.layers)
                  if getattr(l, "activation", None) is keras.activations.sigmoid and getattr(l, "bias", None) is not None),
                 None)
    if layer is None:
        raise ValueError(f"model {model.name!r} has no sigmoid output layer with a bias")
    mean = np.clip(np.asarray(targets, np.float64).mean(axis=(0, 1, 2)), 1e-3, 1 - 1e-3)
    logit = np.log(mean / (1 - mean))
    size = int(np.prod(layer.bias.shape))
    layer.bias.assign(np.tile(logit, size // logit.size).astype("float32"))  # dense: flattened HWC, channel last


def image_output(x, name: str = "output"):
    """Final 3-channel 3x3 conv with a sigmoid, so outputs lie in the data's [0, 1] range.

    Computed in float32 whatever the dtype policy, so under mixed precision the
    outputs and the losses on them keep float32's range and resolution.
    """
    return layers.Conv2D(3, 3, padding="same", activation="sigmoid", name=name, dtype=OUTPUT_DTYPE)(x)


OUTPUT_DTYPE = "float32"


def replica_share(loss):
    """A loss averaged over the global batch, as this replica's share of it.

    Under ``tf.distribute`` each replica sees part of the batch and the
    optimizer sums the replicas' gradients, so each replica's loss is divided
    by the number of replicas (what Keras' own train step does); on one
    device this is the loss itself.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return loss  # JAX's data parallelism averages over the global batch itself
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss * (1.0 / replicas)


def normalization(kind: str, name: str | None = None, channels: int | None = None):
    """A normalisation layer, or None for 'none' (the caller skips it). ``kind`` is one of
    :data:`.spec.NORMS`, checked with the model's settings (registry ``config``).

    'batch': BatchNormalization (batch statistics in training, moving ones at inference);
    'instance': GroupNormalization with one group per channel; 'group': GroupNormalization
    with up to 8 groups (needs ``channels``). Both per-image: the same in training and inference.
    """
    import math

    if kind == "batch":
        return layers.BatchNormalization(name=name)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, name=name)
    if kind == "group":
        if channels is None:
            raise ValueError("normalization('group') needs the number of channels")
        return layers.GroupNormalization(groups=math.gcd(8, channels), name=name)
    if kind == "none":
        return None
    raise ValueError(f"normalization kind {kind!r} unknown (the model's settings were not checked)")


def conv_lrelu(x, filters: int, *, strides: int = 1, alpha: float = 0.2, norm: str = "none",
               name: str | None = None):
    """3x3 'same' convolution -> optional normalisation (see ``normalization``) -> LeakyReLU."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=norm == "none", name=name)(x)
    layer = normalization(norm, name=None if name is None else f"{name}_norm", channels=filters)
    if layer is not None:
        x = layer(x)
    return layers.LeakyReLU(negative_slope=alpha, name=None if name is None else f"{name}_lrelu")(x)


def to_signed(x, name: str | None = None):
    """[0, 1] -> [-1, 1] (a standard Rescaling layer, so saved models need no custom objects)."""
    return layers.Rescaling(2.0, offset=-1.0, name=name)(x)


def to_unit(x, name: str | None = None):
    """[-1, 1] (e.g. a tanh output) -> [0, 1]."""
    return layers.Rescaling(0.5, offset=0.5, name=name, dtype=OUTPUT_DTYPE)(x)

