"""Building blocks shared by the models."""

from __future__ import annotations

import keras
from keras import layers


def image_input(image_size: int) -> keras.KerasTensor:
    return keras.Input(shape=(image_size, image_size, 3), name="image")


def conv(x, filters: int, *, strides: int = 1, activation: str | None = "relu", name: str | None = None):
    """3x3 'same' convolution, the study's only kernel size."""
    return layers.Conv2D(filters, 3, strides=strides, padding="same", activation=activation, name=name)(x)


def conv_bn_lrelu(x, filters: int, *, strides: int = 1, alpha: float = 0.2, name: str | None = None):
    """Conv -> BatchNorm -> LeakyReLU (the study's "conv + BN" variant)."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      name=None if name is None else f"{name}_conv")(x)
    x = layers.BatchNormalization(name=None if name is None else f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=alpha, name=None if name is None else f"{name}_lrelu")(x)


def image_output(x, name: str = "output"):
    """Final 3-channel 3x3 conv with a sigmoid, so outputs lie in the data's [0, 1] range."""
    return layers.Conv2D(3, 3, padding="same", activation="sigmoid", name=name)(x)
