"""The study's convolutional autoencoder, layer by layer.

At 256x256x3 it has 5,486,787 parameters: Conv16, MaxPool, Conv64/2, MaxPool,
Conv128, 256, 512, 512, Up, Conv256, 128, Up, Conv64, Up, Conv32, Conv3.
All 3x3 'same' with ReLU; the output uses a sigmoid to stay in [0, 1].

``output_bias``: the sigmoid output starts at the training targets' mean colour
('target_mean', the default) or at 0.5 ('zero': Keras' default, which the study
presumably used; it collapses to a constant image here, see blocks.init_output_bias).
"""

from __future__ import annotations

import keras
from keras import layers

from .blocks import check_output_bias, conv, image_input, image_output, init_output_bias

DEFAULTS: dict = {"output_bias": "target_mean"}

ENCODER = (128, 256, 512, 512)


def build(image_size: int, cfg: dict) -> keras.Model:
    check_output_bias("conv", cfg["output_bias"])
    inputs = image_input(image_size)
    x = conv(inputs, 16)
    x = layers.MaxPooling2D(2)(x)
    x = conv(x, 64, strides=2)
    x = layers.MaxPooling2D(2)(x)
    for filters in ENCODER:
        x = conv(x, filters)
    x = layers.UpSampling2D(2)(x)
    x = conv(x, 256)
    x = conv(x, 128)
    x = layers.UpSampling2D(2)(x)
    x = conv(x, 64)
    x = layers.UpSampling2D(2)(x)
    x = conv(x, 32)
    return keras.Model(inputs, image_output(x), name="conv")


def prepare(model: keras.Model, inputs, targets, cfg: dict) -> None:
    init_output_bias(model, targets, cfg["output_bias"])
