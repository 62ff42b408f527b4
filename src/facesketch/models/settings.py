"""Each model's own params.yaml section as a schema (no TensorFlow here).

A model's section lists its settings with their types, bounds and defaults
(the one source of the defaults; params.yaml restates them for users to see
and edit, tests/test_models.py fails if the two differ). Settings that mean
the same in every model that has them (``norm``, ``output_bias``, ``alpha``)
share one type here, so one rule checks them everywhere.

:data:`SECTIONS` maps each registered model to its section; the model's
module hands the same class to its ``SPEC`` (``ModelSpec(settings=...)``), and
the check_params stage validates every section up front with it, without
importing the model (and TensorFlow).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from facesketch.core.schema import PositiveInt, Section, invalid, multiple_of

#: normalisation layers a model may use between a convolution and its activation (blocks.normalization)
NORMS = ("batch", "instance", "group", "none")
#: where a sigmoid output's bias starts (blocks.init_output_bias)
OUTPUT_BIAS = ("target_mean", "zero")

# the shared settings: one rule wherever a model has them
Norm = Literal[NORMS]
OutputBias = Literal[OUTPUT_BIAS]
Alpha = Annotated[float, Field(ge=0, le=1)]  # LeakyReLU negative slope


class NoSettings(Section):
    """A model without settings of its own (an empty section)."""


class Conv(Section):
    output_bias: OutputBias = "target_mean"


class Dense(Section):
    size: Annotated[int, Field(ge=8), multiple_of(8, ", at least 8")] = 256  # first width; then /2, /4, /8
    latent_dim: PositiveInt = 32
    output_bias: OutputBias = "target_mean"


class ConvBn(Section):
    alpha: Alpha = 0.2
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.9  # BatchNorm moving statistics
    output_bias: OutputBias = "target_mean"


def _levels(value: Any) -> Any:
    if not isinstance(value, list) or not 2 <= len(value) <= 6:
        raise invalid("expected a list of 2 to 6 widths (one per level; each level after the first halves "
                      "the resolution)")
    return value


class Vae(Section):
    filters: Annotated[list[PositiveInt], BeforeValidator(_levels)] = Field(
        default_factory=lambda: [32, 64, 128, 256, 256])
    posterior_filters: PositiveInt = 32
    latent_channels: PositiveInt = 8
    kl_weight: Annotated[float, Field(ge=0)] = 1.0
    kl_warmup_steps: Annotated[int, Field(ge=0)] = 1000
    predictor_weight: Annotated[float, Field(ge=0)] = 1.0
    alpha: Alpha = 0.2
    norm: Norm = "group"


class UnetGan(Section):
    g_learning_rate: Annotated[float, Field(gt=0)] = 2.0e-4
    d_learning_rate: Annotated[float, Field(gt=0)] = 2.0e-4
    beta_1: Annotated[float, Field(ge=0, le=1)] = 0.5
    lambda_l1: Annotated[float, Field(ge=0)] = 100.0
    filters: PositiveInt = 64
    max_filters: PositiveInt = 512
    dropout: Annotated[float, Field(ge=0, le=0.99)] = 0.5
    norm: Norm = "instance"


class CycleGan(UnetGan):
    """unet_gan's settings for both generators and both discriminators, plus the cycle term's weight."""
    lambda_cycle: Annotated[float, Field(ge=0)] = 10.0  # CycleGAN's weight


#: every registered model's section (tests/test_models.py: the same keys as the registry, the same
#: classes as each module's SPEC.settings)
SECTIONS: dict[str, type[Section]] = {
    "dense": Dense,
    "conv": Conv,
    "conv_bn": ConvBn,
    "vae": Vae,
    "unet_gan": UnetGan,
    "cycle_gan": CycleGan,
}
