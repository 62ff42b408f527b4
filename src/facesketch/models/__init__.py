"""Model registry: every model is found by name.

Adding a model is one new module in this package plus one line in
``REGISTRY``. A model module defines:

- ``DEFAULTS``: its own settings (overridable under its name in params.yaml);
- ``build(image_size, cfg) -> keras.Model``: inputs and outputs are
  ``image_size x image_size x 3`` floats in [0, 1];
- optionally ``prepare(model, inputs, targets, cfg)``: data-dependent
  initialisation before training (e.g. the output bias at the targets' mean);
- optionally ``compile_model(model, training, cfg)``: for models with their
  own optimizers or losses (the GAN); otherwise the shared one in
  :mod:`facesketch.training` applies ``optimizer``, ``learning_rate`` and
  ``loss`` from params.yaml;
- optionally, on the returned model, ``predictor()``: a plain functional model
  from input image to output image, the part saved for inference (the GAN's
  generator, the VAE's deterministic path). Without it, the model itself is
  saved.

Modules are imported lazily so that listing names does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ..errors import ParamError

REGISTRY: dict[str, str] = {
    "dense": "facesketch.models.dense",
    "conv": "facesketch.models.conv",
    "conv_bn": "facesketch.models.conv_bn",
    "vae": "facesketch.models.vae",
    "unet_gan": "facesketch.models.unet_gan",
}


def available() -> list[str]:
    return list(REGISTRY)


def module(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise ParamError(f"unknown model {name!r}; expected one of: {', '.join(REGISTRY)}")
    from .. import tf_runtime

    tf_runtime.init()  # model modules import keras: quietly, once
    return importlib.import_module(REGISTRY[name])


def config(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's own settings: its DEFAULTS updated by params.yaml's section of that name."""
    mod = module(name)
    cfg = dict(getattr(mod, "DEFAULTS", {}))
    section = (params or {}).get(name) or {}
    if not isinstance(section, dict):
        raise ParamError(f"params.yaml: '{name}' should be a mapping of that model's settings")
    unknown = set(section) - set(cfg)
    if unknown:
        raise ParamError(
            f"params.yaml: unknown setting(s) {sorted(unknown)} for model '{name}'; "
            f"expected: {', '.join(sorted(cfg)) or '(none)'}"
        )
    cfg.update(section)
    return cfg


def build(name: str, image_size: int, params: dict[str, Any] | None = None):
    """Build (uncompiled) the model ``name`` for square RGB images of ``image_size``."""
    if image_size % 32 or image_size < 32:
        raise ParamError(f"image_size={image_size} is not valid; expected a multiple of 32, at least 32")
    return module(name).build(image_size, config(name, params))


def predictor(model):
    """The inference part of a trained model (see module doc)."""
    return model.predictor() if hasattr(model, "predictor") else model
