"""The study's convolutional autoencoder with BatchNorm + LeakyReLU.

Same layer sequence and filters as :mod:`.conv` (Conv16, MaxPool, Conv64/2,
MaxPool, Conv128, 256, 512, 512, Up, Conv256, 128, Up, Conv64, Up, Conv32,
Conv3), but every hidden convolution is Conv (no bias: BN's offset replaces
it) -> BatchNormalization -> LeakyReLU(alpha). The output keeps its sigmoid.
At 256x256x3 it has 5,492,691 parameters (conv's 5,486,787 - 1,968 biases +
4 x 1,968 BN weights, of which 2 x 1,968 are non-trainable moving statistics).

``momentum`` (BatchNorm's moving statistics) defaults to 0.9, not Keras' 0.99:
the saved model normalises with the moving statistics, and with 0.99 they
still lag the weights after a short run (synthetic faces, 32 px, 160 steps:
test MAE 0.147 with 0.99, 0.049 with 0.9, 0.049 with batch statistics).
"""

from __future__ import annotations

import keras
from keras import layers

from .blocks import check_number, check_output_bias, conv_bn_lrelu, image_input, image_output, init_output_bias
from .conv import ENCODER

DEFAULTS = {"alpha": 0.2, "momentum": 0.9, "output_bias": "target_mean"}


def build(image_size: int, cfg: dict) -> keras.Model:
    alpha = float(check_number("conv_bn", "alpha", cfg["alpha"], minimum=0, maximum=1))
    momentum = float(check_number("conv_bn", "momentum", cfg["momentum"], minimum=0, maximum=1))
    check_output_bias("conv_bn", cfg["output_bias"])
    inputs = image_input(image_size)
    x = conv_bn_lrelu(inputs, 16, alpha=alpha, momentum=momentum)
    x = layers.MaxPooling2D(2)(x)
    x = conv_bn_lrelu(x, 64, strides=2, alpha=alpha, momentum=momentum)
    x = layers.MaxPooling2D(2)(x)
    for filters in ENCODER:
        x = conv_bn_lrelu(x, filters, alpha=alpha, momentum=momentum)
    x = layers.UpSampling2D(2)(x)
    x = conv_bn_lrelu(x, 256, alpha=alpha, momentum=momentum)
    x = conv_bn_lrelu(x, 128, alpha=alpha, momentum=momentum)
    x = layers.UpSampling2D(2)(x)
    x = conv_bn_lrelu(x, 64, alpha=alpha, momentum=momentum)
    x = layers.UpSampling2D(2)(x)
    x = conv_bn_lrelu(x, 32, alpha=alpha, momentum=momentum)
    return keras.Model(inputs, image_output(x), name="conv_bn")


def prepare(model: keras.Model, inputs, targets, cfg: dict) -> None:
    init_output_bias(model, targets, cfg["output_bias"])  # as conv (see blocks.init_output_bias)
