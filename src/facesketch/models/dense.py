"""The study's dense autoencoder: flatten -> SIZE, SIZE/2, SIZE/4, SIZE/8 ->
a latent vector -> the mirror image -> reshape to the image.

Its first and last layers connect every pixel, so its size grows with the
image: about 100M parameters at 256x256 with size 256.
"""

from __future__ import annotations

import keras
from keras import layers

from facesketch.models.blocks import OUTPUT_DTYPE, image_input, init_output_bias
from facesketch.models.settings import Dense
from facesketch.models.spec import ModelSpec


def build(image_size: int, cfg: dict) -> keras.Model:
    size, latent = cfg["size"], cfg["latent_dim"]
    widths = (size, size // 2, size // 4, size // 8)
    inputs = image_input(image_size)
    x = layers.Flatten()(inputs)
    for w in widths:
        x = layers.Dense(w, activation="relu")(x)
    x = layers.Dense(latent, activation="relu", name="latent")(x)
    for w in reversed(widths):
        x = layers.Dense(w, activation="relu")(x)
    x = layers.Dense(image_size * image_size * 3, activation="sigmoid", dtype=OUTPUT_DTYPE)(x)
    outputs = layers.Reshape((image_size, image_size, 3), name="output")(x)
    return keras.Model(inputs, outputs, name="dense")


def prepare(model: keras.Model, inputs, targets, cfg: dict) -> None:
    init_output_bias(model, targets, cfg["output_bias"])  # as conv (see blocks.init_output_bias)


SPEC = ModelSpec(build=build, settings=Dense, prepare=prepare)
