"""Every registered model: builds at 32 and 256, right shapes and range, learns."""

import re
from pathlib import Path

import numpy as np
import pytest

from facesketch import models
from facesketch.core import backend
from facesketch.core.errors import ParamError
from facesketch.models.spec import SeparatePredictor
from facesketch.core.params import load_params
from facesketch.training.fit import compile_model
from conftest import make_pairs, tiny_params

backend.init(0)
ALL = models.available()


def test_conv_has_the_studys_parameter_count():
    assert models.build("conv", 256).count_params() == 5_486_787


def test_dense_layer_widths_follow_size():
    m = models.build("dense", 32, {"dense": {"size": 64, "latent_dim": 32}})
    widths = [l.units for l in m.layers if hasattr(l, "units")]
    assert widths == [64, 32, 16, 8, 32, 8, 16, 32, 64, 32 * 32 * 3]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [32, 256])
def test_builds_with_image_shaped_output(name, size):
    model = models.predictor(models.build(name, size, tiny_params()))
    x = np.random.default_rng(0).random((2, size, size, 3), np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, size, size, 3)
    assert 0.0 <= y.min() and y.max() <= 1.0


@pytest.mark.parametrize("name", ALL)
def test_a_few_steps_lower_the_loss(name):
    import keras

    photos, sketches = make_pairs(8, 32)
    x, y = photos.astype("float32") / 255, sketches.astype("float32") / 255
    params = tiny_params()
    model = models.build(name, 32, params)
    (models.spec(name).compile_model or compile_model)(model, {**params, "learning_rate": 0.002}, models.config(name, params))
    keras.utils.set_random_seed(0)
    hist = model.fit(x, y, batch_size=8, epochs=15, verbose=0, shuffle=False).history
    losses = hist.get("loss") or hist[next(iter(hist))]
    assert losses[-1] < 0.8 * losses[0], losses


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ParamError) as err:
        models.build("resnet", 32)
    assert "resnet" in str(err.value) and all(n in str(err.value) for n in ALL)


def test_unknown_model_setting_is_named():
    with pytest.raises(ParamError, match="widht.*dense"):
        models.config("dense", {"dense": {"widht": 3}})


def test_image_size_must_be_a_multiple_of_32():
    with pytest.raises(ParamError, match="multiple of 32"):
        models.build("conv", 48)


# --- the output bias starts at the targets' mean colour ----------------------

@pytest.mark.parametrize("name", ["conv", "conv_bn", "dense"])
def test_output_bias_starts_at_the_training_targets_mean(name):

    targets = np.zeros((2, 32, 32, 3), np.float32)
    targets[..., 0], targets[..., 1], targets[..., 2] = 0.9, 0.5, 0.2
    model = models.build(name, 32, {name: {"size": 16}} if name == "dense" else None)
    models.spec(name).prepare(model, None, targets, models.config(name, {"dense": {"size": 16}}))
    bias = model.layers[-1].bias if name != "dense" else model.layers[-2].bias
    expected = np.log(np.array([0.9, 0.5, 0.2]) / (1 - np.array([0.9, 0.5, 0.2])))
    np.testing.assert_allclose(np.asarray(bias).reshape(-1, 3), np.broadcast_to(expected, (bias.shape[0] // 3, 3)),
                               rtol=1e-5, atol=1e-6)


def test_output_bias_zero_keeps_keras_default_and_bad_values_are_named():
    zero = models.build("conv", 32, {"conv": {"output_bias": "zero"}})
    models.spec("conv").prepare(zero, None, np.full((1, 32, 32, 3), 0.9, np.float32), {"output_bias": "zero"})
    assert not np.asarray(zero.layers[-1].bias).any()
    with pytest.raises(ParamError, match=r"conv\.output_bias='mean'.*target_mean, zero"):
        models.build("conv", 32, {"conv": {"output_bias": "mean"}})


# --- the model contract -------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ALL)
def test_params_yaml_restates_each_models_defaults_exactly(name):
    """The defaults' one source is the model's SPEC; params.yaml ships the same values to edit."""
    shipped = load_params(REPO / "params.yaml")[name]
    assert shipped == dict(models.spec(name).defaults)
    assert models.config(name, {}) == models.config(name, {name: shipped})


@pytest.mark.parametrize(("setting", "bad", "expected"), [
    ("norm", "layer", "batch, instance, group, none"),
    ("output_bias", "mean", "target_mean, zero"),
    ("alpha", 1.5, "<= 1"),
])
def test_a_shared_setting_is_checked_by_one_rule_in_every_model_that_has_it(setting, bad, expected):
    having = [n for n in ALL if setting in models.spec(n).defaults]
    assert len(having) >= 2, f"{setting} is shared by {having}"
    for name in having:
        with pytest.raises(ParamError, match=rf"params\.yaml: {name}\.{setting}={bad!r}.*{re.escape(expected)}"):
            models.config(name, {name: {setting: bad}})


def test_checked_settings_are_typed():
    assert models.config("conv_bn", {"conv_bn": {"alpha": 0, "momentum": 1}}) == {
        "alpha": 0.0, "momentum": 1.0, "output_bias": "target_mean"}
    assert isinstance(models.config("conv_bn", {"conv_bn": {"alpha": 0}})["alpha"], float)
    with pytest.raises(ParamError, match=r"dense\.latent_dim"):
        models.config("dense", {"dense": {"latent_dim": 0}})


def test_only_models_with_a_separate_predictor_save_a_part():
    conv = models.build("conv", 32)
    assert not isinstance(conv, SeparatePredictor) and models.predictor(conv) is conv
    vae = models.build("vae", 32, {"vae": {"filters": [8, 16], "posterior_filters": 8}})
    assert isinstance(vae, SeparatePredictor) and models.predictor(vae) is vae.inference


def test_every_registered_model_has_a_description_for_the_report():
    assert set(models.DESCRIPTIONS) == set(models.REGISTRY)
    assert all(len(models.describe(name)) > 60 for name in models.REGISTRY)
    assert "no description" in models.describe("not_a_model")


# --- each model's section: the schema in models/settings.py -------------------

#: what config() returned before the schema (the same values and types the models' arithmetic used)
SHIPPED_CONFIG = {
    "dense": {"size": 256, "latent_dim": 32, "output_bias": "target_mean"},
    "conv": {"output_bias": "target_mean"},
    "conv_bn": {"alpha": 0.2, "momentum": 0.9, "output_bias": "target_mean"},
    "vae": {"filters": [32, 64, 128, 256, 256], "posterior_filters": 32, "latent_channels": 8, "kl_weight": 1.0,
            "kl_warmup_steps": 1000, "predictor_weight": 1.0, "alpha": 0.2, "norm": "group"},
    "unet_gan": {"g_learning_rate": 2.0e-4, "d_learning_rate": 2.0e-4, "beta_1": 0.5, "lambda_l1": 100.0,
                 "filters": 64, "max_filters": 512, "dropout": 0.5, "norm": "instance"},
    "cycle_gan": {"g_learning_rate": 2.0e-4, "d_learning_rate": 2.0e-4, "beta_1": 0.5, "lambda_l1": 100.0,
                  "filters": 64, "max_filters": 512, "dropout": 0.5, "norm": "instance", "lambda_cycle": 10.0},
}


@pytest.mark.parametrize("name", ALL)
def test_config_returns_the_values_and_types_the_models_used_before(name):
    cfg = models.config(name, load_params(REPO / "params.yaml"))
    assert cfg == SHIPPED_CONFIG[name] == models.config(name, {}) == models.config(name, {name: None})
    assert [type(v) for v in cfg.values()] == [type(v) for v in SHIPPED_CONFIG[name].values()]
    # an int where a float is expected is the float, as float() made it
    overrides = {"conv_bn": {"momentum": 1}, "vae": {"kl_weight": 2}, "unet_gan": {"lambda_l1": 10}}.get(name)
    if overrides:
        (key, value), = overrides.items()
        got = models.config(name, {name: overrides})[key]
        assert got == value and type(got) is float


def test_every_registered_model_has_its_section_in_the_schema():
    from facesketch.models.settings import SECTIONS

    assert list(SECTIONS) == list(models.REGISTRY)
    for name in ALL:
        assert models.spec(name).settings is SECTIONS[name], name
