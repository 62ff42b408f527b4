"""Model registry: every model is found by name.

Adding a model is one new module in this package plus one line in
``REGISTRY``. The module defines ``SPEC``, a :class:`~.spec.ModelSpec`: how to
build the model, its settings' schema (types, bounds, defaults, in
:mod:`.settings`; overridable under its name in params.yaml), and optionally
how to prepare and compile it. Settings are checked against that schema in
:func:`config`, and up front, for every model, by the check_params stage.

Modules are imported lazily so that listing names does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from facesketch.core.errors import ParamError
from facesketch.core import schema
from facesketch.models.spec import ModelSpec, SeparatePredictor

REGISTRY: dict[str, str] = {
    "dense": "facesketch.models.dense",
    "conv": "facesketch.models.conv",
    "conv_bn": "facesketch.models.conv_bn",
    "vae": "facesketch.models.vae",
    "unet_gan": "facesketch.models.unet_gan",
    "cycle_gan": "facesketch.models.cycle_gan",
}


# What each model's architecture and loss do to its outputs, in one sentence: the report's "why"
# beside the run's numbers (TensorFlow-free, so the report stage reads it without building a model).
DESCRIPTIONS: dict[str, str] = {
    "dense": "a fully connected encoder-decoder through a small bottleneck (`dense.latent_dim` values) with a "
             "pixel loss: it keeps only a face's global layout and tone, so its outputs are blurred averages "
             "and structure metrics (SSIM, FSIM) stay low.",
    "conv": "the study's convolutional encoder-decoder, no skip connections, one pixel loss (`loss`): every "
            "detail must pass the bottleneck, so edges come out soft; a pixel loss favours the per-pixel "
            "average, which MAE and PSNR reward more than FSIM does.",
    "conv_bn": "conv's layers with BatchNorm and LeakyReLU: better-conditioned training in few epochs, with the "
               "same bottleneck limit on detail.",
    "vae": "a conditional VAE whose U-Net decoder sees the input at every scale: skip connections carry the "
           "input's edges at full resolution, and its L1 reconstruction (the saved predictor uses the latent's "
           "mean) favours the average plausible output: smooth, with high SSIM and PSNR but less texture.",
    "unet_gan": "pix2pix: a U-Net generator (skip connections carry the input's edges) trained with L1 plus a "
                "PatchGAN discriminator that penalises blur patch by patch: sharper strokes and texture, which "
                "FSIM (phase congruency, gradients) and SCOOT (local texture statistics) reward, at times at a "
                "cost in pixel-wise MAE and PSNR.",
    "cycle_gan": "pix2pix in both directions at once (a second U-Net maps the target back to the input, each with "
                 "its own PatchGAN) with cycle terms: the task's generator must keep what is needed to get the "
                 "input back, identity included; the paired L1 keeps each direction on the pairs. Twice "
                 "unet_gan's work per step.",
}


def describe(name: str) -> str:
    """What model ``name``'s architecture and loss do (the report's "why"); a plain line for unknown names."""
    return DESCRIPTIONS.get(name, "(no description in facesketch.models.DESCRIPTIONS)")


def available() -> list[str]:
    return list(REGISTRY)


def module(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise ParamError(f"unknown model {name!r}; expected one of: {', '.join(REGISTRY)}")
    from facesketch.core import backend

    backend.init()  # model modules import keras: quietly, once
    return importlib.import_module(REGISTRY[name])


def spec(name: str) -> ModelSpec:
    """The :class:`~.spec.ModelSpec` of model ``name`` (a ParamError naming the choices if there is no such model)."""
    found = getattr(module(name), "SPEC", None)
    if not isinstance(found, ModelSpec):
        raise TypeError(f"{REGISTRY[name]} defines no SPEC (a facesketch.models.spec.ModelSpec)")
    return found


def config(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's own settings, checked: its defaults updated by params.yaml's section of that name."""
    return schema.check(spec(name).settings, (params or {}).get(name), (name,)).model_dump()


def build(name: str, image_size: int, params: dict[str, Any] | None = None):
    """Build (uncompiled) the model ``name`` for square RGB images of ``image_size``."""
    if image_size % 32 or image_size < 32:
        raise ParamError(f"image_size={image_size} is not valid; expected a multiple of 32, at least 32")
    cfg = config(name, params)
    return spec(name).build(image_size, cfg)


def predictor(model):
    """The inference part of a trained model: its ``predictor()`` (a
    :class:`~.spec.SeparatePredictor`), or the model itself."""
    return model.predictor() if isinstance(model, SeparatePredictor) else model
