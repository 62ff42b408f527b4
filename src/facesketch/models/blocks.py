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


NORMS = ("batch", "instance", "group", "none")


def normalization(kind: str, name: str | None = None, channels: int | None = None):
    """A normalisation layer, or None for 'none' (the caller skips it).

    'batch': BatchNormalization (batch statistics in training, moving ones at inference);
    'instance': GroupNormalization with one group per channel; 'group': GroupNormalization
    with up to 8 groups (needs ``channels``). Both per-image: the same in training and inference.
    """
    import math

    from ..errors import ParamError

    if kind not in NORMS:
        raise ParamError(f"params.yaml: norm={kind!r} is not valid; expected one of: {', '.join(NORMS)}")
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, name=name)
    if kind == "group":
        if channels is None:
            raise ValueError("normalization('group') needs the number of channels")
        return layers.GroupNormalization(groups=math.gcd(8, channels), name=name)
    return None


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
    return layers.Rescaling(0.5, offset=0.5, name=name)(x)


def check_number(model: str, key: str, value, *, minimum: float | None = None, maximum: float | None = None,
                 integer: bool = False, exclusive_min: bool = False):
    """A model setting checked like the top-level ones (ParamError naming ``model.key``)."""
    from ..params import number

    return number(f"{model}.{key}", value, minimum=minimum, maximum=maximum, integer=integer,
                  exclusive_min=exclusive_min)
