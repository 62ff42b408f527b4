"""The contract every model module keeps: a :class:`ModelSpec` named ``SPEC``.

No TensorFlow here, so the registry, ``param_check`` and tests can read the
contract (names, defaults, the shared settings' rules) without building a model.

Defaults have one source: ``ModelSpec.defaults`` in the model's module.
params.yaml's section of the same name overrides them; the values it ships
restate the defaults for users to see and edit, and tests/test_models.py
fails if the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from facesketch.core.params import choice, number

#: normalisation layers a model may use between a convolution and its activation (blocks.normalization)
NORMS = ("batch", "instance", "group", "none")
#: where a sigmoid output's bias starts (blocks.init_output_bias)
OUTPUT_BIAS = ("target_mean", "zero")


def check_number(model: str, key: str, value, *, minimum: float | None = None, maximum: float | None = None,
                 integer: bool = False, exclusive_min: bool = False):
    """A model setting checked like the top-level ones (ParamError naming ``model.key``)."""
    return number(f"{model}.{key}", value, minimum=minimum, maximum=maximum, integer=integer,
                  exclusive_min=exclusive_min)


#: settings that mean the same in every model that has them, checked once (by :func:`check_shared`)
SHARED_SETTINGS: dict[str, Callable[[str, Any], Any]] = {
    "norm": lambda model, v: choice(f"{model}.norm", v, NORMS),
    "output_bias": lambda model, v: choice(f"{model}.output_bias", v, OUTPUT_BIAS),
    "alpha": lambda model, v: float(check_number(model, "alpha", v, minimum=0, maximum=1)),  # LeakyReLU slope
}


def check_shared(model: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` with its shared settings (:data:`SHARED_SETTINGS`) checked and typed."""
    return {k: SHARED_SETTINGS[k](model, v) if k in SHARED_SETTINGS else v for k, v in cfg.items()}


def _no_preparation(model, inputs, targets, cfg: dict[str, Any]) -> None:
    """Most models start from Keras' initialisers: nothing to prepare."""


def _unchanged(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg


@dataclass(frozen=True)
class ModelSpec:
    """What a model module provides as ``SPEC``.

    - ``build(image_size, cfg) -> keras.Model``: inputs and outputs are
      ``image_size x image_size x 3`` floats in [0, 1]; ``cfg`` has been checked.
    - ``defaults``: the model's own settings (the one source of their default values).
    - ``check(cfg) -> cfg``: the model's own settings checked and typed (ParamError naming
      ``model.key``); the shared ones (:data:`SHARED_SETTINGS`) are already checked.
    - ``prepare(model, inputs, targets, cfg)``: data-dependent initialisation before
      training (e.g. the output bias at the targets' mean); default: none.
    - ``compile_model(model, training, cfg, jit_compile, total_steps)``: for models with
      their own optimizers or losses (the GAN); None: the shared
      :func:`facesketch.training.fit.compile_model` applies params.yaml's ``optimizer``,
      ``learning_rate`` and ``loss``.

    A built model that saves only part of itself for inference is a
    :class:`SeparatePredictor`.
    """

    build: Callable[[int, dict[str, Any]], Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], dict[str, Any]] = _unchanged
    prepare: Callable[[Any, Any, Any, dict[str, Any]], None] = _no_preparation
    compile_model: Callable[..., None] | None = None


@runtime_checkable
class SeparatePredictor(Protocol):
    """A model whose inference part is not the model itself (the GAN's generator, the
    VAE's deterministic path): ``predictor()`` is a plain functional model from input
    image to output image, the part saved for inference."""

    def predictor(self) -> Any: ...
