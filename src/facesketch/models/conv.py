"""The study's convolutional autoencoder, layer by layer.

At 256x256x3 it has 5,486,787 parameters: Conv16, MaxPool, Conv64/2, MaxPool,
Conv128, 256, 512, 512, Up, Conv256, 128, Up, Conv64, Up, Conv32, Conv3.
All 3x3 'same' with ReLU; the output uses a sigmoid to stay in [0, 1].
:func:`autoencoder` is that sequence with the hidden block as a parameter, so
:mod:`.conv_bn` is the same network with another block.

``output_bias``: the sigmoid output starts at the training targets' mean colour
('target_mean', the default) or at 0.5 ('zero': Keras' default, which the study
presumably used; it collapses to a constant image here, see blocks.init_output_bias).
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

from facesketch.models.blocks import conv, image_input, image_output, init_output_bias
from facesketch.models.settings import Conv
from facesketch.models.spec import ModelSpec

#: a hidden layer: (tensor, filters, strides) -> tensor
Block = Callable[..., keras.KerasTensor]

ENCODER = (128, 256, 512, 512)


def autoencoder(image_size: int, block: Block, name: str) -> keras.Model:
    """The study's layer sequence with ``block(x, filters, strides=...)`` as every hidden layer."""
    inputs = image_input(image_size)
    x = block(inputs, 16)
    x = layers.MaxPooling2D(2)(x)
    x = block(x, 64, strides=2)
    x = layers.MaxPooling2D(2)(x)
    for filters in ENCODER:
        x = block(x, filters)
    x = layers.UpSampling2D(2)(x)
    x = block(x, 256)
    x = block(x, 128)
    x = layers.UpSampling2D(2)(x)
    x = block(x, 64)
    x = layers.UpSampling2D(2)(x)
    x = block(x, 32)
    return keras.Model(inputs, image_output(x), name=name)


def build(image_size: int, cfg: dict) -> keras.Model:
    return autoencoder(image_size, conv, "conv")


def prepare(model: keras.Model, inputs, targets, cfg: dict) -> None:
    init_output_bias(model, targets, cfg["output_bias"])


SPEC = ModelSpec(build=build, settings=Conv, prepare=prepare)
