"""The optimizer, loss and compile that params.yaml's top-level training keys name
(a model with its own ``compile_model``, e.g. unet_gan, makes its own)."""

from __future__ import annotations

from typing import Any

from facesketch.core.params import LOSSES, OPTIMIZERS, choice
from facesketch.training import losses


def make_optimizer(name: str, learning_rate: float, **kwargs):
    import keras

    choice("optimizer", name, OPTIMIZERS)
    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(learning_rate=learning_rate, **kwargs)


def make_loss(name: str):
    import keras

    choice("loss", name, LOSSES)
    return {
        "mae": keras.losses.MeanAbsoluteError(),
        "mse": keras.losses.MeanSquaredError(),
        "bce": keras.losses.BinaryCrossentropy(),
    }[name]


def compile_model(model, training: dict[str, Any], cfg: dict[str, Any], jit_compile="auto", total_steps: int = 0) -> None:
    """The shared compile: ``optimizer``, ``learning_rate`` (with ``lr_schedule`` over ``total_steps``),
    ``loss`` (measured in ``loss_space``, plus ``ssim_weight`` x (1 - SSIM) and ``edge_weight`` x the
    gradient-magnitude difference) from params.yaml."""
    rate = losses.learning_rate(training["learning_rate"], training.get("lr_schedule", "constant"), total_steps)
    ssim_weight, edge_weight = training.get("ssim_weight", 0.0), training.get("edge_weight", 0.0)
    space = training.get("loss_space", "rgb")
    loss = (losses.reconstruction(training["loss"], ssim_weight, edge_weight, space)
            if ssim_weight or edge_weight or space != "rgb" else make_loss(training["loss"]))
    model.compile(optimizer=make_optimizer(training["optimizer"], rate), loss=loss, jit_compile=jit_compile)
