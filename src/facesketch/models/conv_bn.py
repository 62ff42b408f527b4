"""The study's convolutional autoencoder with BatchNorm + LeakyReLU.

Same layer sequence and filters as :mod:`.conv` (Conv16, MaxPool, Conv64/2,
MaxPool, Conv128, 256, 512, 512, Up, Conv256, 128, Up, Conv64, Up, Conv32,
Conv3), but every hidden convolution is Conv (no bias: BN's offset replaces
it) -> BatchNormalization -> LeakyReLU(alpha). The output keeps its sigmoid.
At 256x256x3 it has 5,492,691 parameters (conv's 5,486,787 - 1,968 biases +
4 x 1,968 BN weights, of which 2 x 1,968 are non-trainable moving statistics).
"""

from __future__ import annotations

import keras
from keras import layers

from .blocks import check_number, conv_bn_lrelu, image_input, image_output
from .conv import ENCODER

DEFAULTS = {"alpha": 0.2}


def build(image_size: int, cfg: dict) -> keras.Model:
    alpha = float(check_number("conv_bn", "alpha", cfg["alpha"], minimum=0, maximum=1))
    inputs = image_input(image_size)
    x = conv_bn_lrelu(inputs, 16, alpha=alpha)
    x = layers.MaxPooling2D(2)(x)
    x = conv_bn_lrelu(x, 64, strides=2, alpha=alpha)
    x = layers.MaxPooling2D(2)(x)
    for filters in ENCODER:
        x = conv_bn_lrelu(x, filters, alpha=alpha)
    x = layers.UpSampling2D(2)(x)
    x = conv_bn_lrelu(x, 256, alpha=alpha)
    x = conv_bn_lrelu(x, 128, alpha=alpha)
    x = layers.UpSampling2D(2)(x)
    x = conv_bn_lrelu(x, 64, alpha=alpha)
    x = layers.UpSampling2D(2)(x)
    x = conv_bn_lrelu(x, 32, alpha=alpha)
    return keras.Model(inputs, image_output(x), name="conv_bn")
