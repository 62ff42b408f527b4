"""The study's convolutional autoencoder, layer by layer.

At 256x256x3 it has 5,486,787 parameters: Conv16, MaxPool, Conv64/2, MaxPool,
Conv128, 256, 512, 512, Up, Conv256, 128, Up, Conv64, Up, Conv32, Conv3.
All 3x3 'same' with ReLU; the output uses a sigmoid to stay in [0, 1].
"""

from __future__ import annotations

import keras
from keras import layers

from .blocks import conv, image_input, image_output

DEFAULTS: dict = {}

ENCODER = (128, 256, 512, 512)


def build(image_size: int, cfg: dict) -> keras.Model:
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
