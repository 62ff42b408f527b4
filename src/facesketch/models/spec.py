"""The contract every model module keeps: a :class:`ModelSpec` named ``SPEC``.

No TensorFlow here, so the registry, ``param_check`` and tests can read the
contract without building a model.

A model's settings, their types, bounds and defaults have one source: its
section's schema in :mod:`facesketch.models.settings`, handed to ``SPEC`` as
``settings``. params.yaml's section of the same name overrides the defaults;
the values it ships restate them for users to see and edit, and
tests/test_models.py fails if the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from facesketch.models.settings import NORMS, OUTPUT_BIAS, NoSettings, Section  # noqa: F401 (NORMS, OUTPUT_BIAS: re-exported)


def _no_preparation(model, inputs, targets, cfg: dict[str, Any]) -> None:
    """Most models start from Keras' initialisers: nothing to prepare."""


@dataclass(frozen=True)
class ModelSpec:
    """What a model module provides as ``SPEC``.

    - ``build(image_size, cfg) -> keras.Model``: inputs and outputs are
      ``image_size x image_size x 3`` floats in [0, 1]; ``cfg`` has been checked.
    - ``settings``: the model's own params.yaml section, a schema
      (:class:`~facesketch.models.settings.Section`: types, bounds, defaults) from
      :mod:`facesketch.models.settings`; ``defaults`` is its default values as a dict.
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
    settings: type[Section] = NoSettings
    prepare: Callable[[Any, Any, Any, dict[str, Any]], None] = _no_preparation
    compile_model: Callable[..., None] | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        """The model's own settings at their defaults (from ``settings``)."""
        return self.settings().model_dump()


@runtime_checkable
class SeparatePredictor(Protocol):
    """A model whose inference part is not the model itself (the GAN's generator, the
    VAE's deterministic path): ``predictor()`` is a plain functional model from input
    image to output image, the part saved for inference."""

    def predictor(self) -> Any: ...
