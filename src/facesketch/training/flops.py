"""Floating-point operations of the models, counted from their layers.

Used for the speed benchmark's share of peak and the training-time estimate.
A multiply-add counts as 2 FLOPs. Convolutions and dense layers are counted
exactly from their shapes; normalisation, activations, pooling and
resampling are left out (a few percent of these networks' work). Training
costs about 3 forward passes (forward, then gradients with respect to the
inputs and to the weights, each about as costly as the forward pass).
"""

from __future__ import annotations

import math


def _shape(tensor_or_shape) -> tuple:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return tuple(shape)


def layer_flops(layer) -> int:
    """Forward FLOPs of one layer for one image (batch dimension dropped)."""
    from keras import layers

    if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
        kh, kw = layer.kernel_size
        cin = _shape(layer.input)[-1]
        groups = getattr(layer, "groups", 1) or 1
        if isinstance(layer, layers.Conv2DTranspose):  # each input pixel scatters one kernel
            h, w = _shape(layer.input)[1:3]
        else:
            h, w = _shape(layer.output)[1:3]
        return 2 * h * w * kh * kw * (cin // groups) * layer.filters
    if isinstance(layer, layers.Dense):
        positions = math.prod(_shape(layer.input)[1:-1]) or 1
        return 2 * positions * _shape(layer.input)[-1] * layer.units
    return 0


def forward_flops(model) -> int:
    """Forward FLOPs for one image of a functional model, nested models included."""
    import keras

    total = 0
    for layer in model.layers:
        total += forward_flops(layer) if isinstance(layer, keras.Model) else layer_flops(layer)
    return total


def training_flops(model) -> int:
    """FLOPs to train on one image: 3x the forward passes of one training step.

    Models whose step runs sub-networks several times (the GAN's discriminator
    on real and fake pairs, the VAE's decoder on two latents) list them in
    ``training_passes()`` as (sub-model, passes); otherwise one pass of the model.
    """
    passes = model.training_passes() if hasattr(model, "training_passes") else [(model, 1)]
    return 3 * sum(count * forward_flops(part) for part, count in passes)
