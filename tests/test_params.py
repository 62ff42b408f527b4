import re

import pytest

from facesketch import TASKS
from facesketch.core import params as params_module
from facesketch.core.errors import ParamError
from conftest import REPO, tiny_params


def test_repo_params_are_the_study_defaults():
    p = params_module.load_params(REPO / "params.yaml")
    t = params_module.training(p)
    assert t == {"optimizer": "adam", "learning_rate": 0.001, "epochs": 200, "batch_size": 8,
                 "loss": "mae", "seed": 42, "image_size": 256,
                 "augment": {"jitter": 0.0, "flip": False}, "lr_schedule": "constant", "ssim_weight": 0.0,
                 "ema_decay": 0.0}
    assert p["split"]["test_fraction"] == 0.2
    assert p["tasks"] == list(TASKS)


@pytest.mark.parametrize("key,value,expected", [
    ("optimizer", "adagrad", "adam, sgd, rmsprop"),
    ("loss", "hinge", "mae, bce, mse"),
    ("image_size", 100, "multiple of 32"),
    ("epochs", 0, ">= 1"),
    ("learning_rate", -1, "> 0"),
    ("batch_size", "8", "an integer"),
    ("lr_schedule", "step", "constant, linear_decay, cosine"),
    ("ssim_weight", -0.5, ">= 0"),
    ("ema_decay", 1.0, "<= 0.9999"),  # 1 would freeze the average at the random start
    ("ema_decay", "high", "a number"),
    ("augment", {"jitter": 2}, "augment.jitter=2 is not valid; expected <= 0.5"),
    ("augment", {"mirror": True}, "augment.mirror is not a known setting"),
])
def test_bad_training_values_name_the_key_and_what_is_allowed(key, value, expected):
    with pytest.raises(ParamError) as err:
        params_module.training(tiny_params(**{key: value}))
    assert key in str(err.value) and expected in str(err.value)


def test_training_takes_each_value_from_the_file_not_a_default(tmp_path):
    """Values unlike params.yaml's and unlike each other: a key read from the wrong place or
    replaced by a built-in default shows."""
    text = (REPO / "params.yaml").read_text()
    for key, value in {"batch_size": 3, "seed": 7, "epochs": 5, "learning_rate": 0.0002, "image_size": 64}.items():
        text, n = re.subn(rf"(?m)^{key}: *[^ #\n]+", f"{key}: {value}", text)
        assert n == 1, f"params.yaml has no top-level {key}"
    (tmp_path / "params.yaml").write_text(text)
    t = params_module.training(params_module.load_params(tmp_path / "params.yaml"))
    assert {k: t[k] for k in ("batch_size", "seed", "epochs", "learning_rate", "image_size")} == \
        {"batch_size": 3, "seed": 7, "epochs": 5, "learning_rate": 0.0002, "image_size": 64}
    assert type(t["batch_size"]) is int and type(t["seed"]) is int


def test_missing_key_is_named():
    p = tiny_params()
    del p["optimizer"]
    with pytest.raises(ParamError, match="missing key 'optimizer'"):
        params_module.training(p)


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        params_module.load_params(tmp_path / "params.yaml")


def test_check_params_names_every_bad_value_and_writes_the_same_text_when_valid(tmp_path):
    from facesketch.core import param_check
    from facesketch.core.params import load_params

    params = load_params(REPO / "params.yaml")
    param_check.check_params(params, out_file=tmp_path / "ok.txt")
    first = (tmp_path / "ok.txt").read_bytes()
    params.update(optimizer="sgd", epochs=3, models=["conv"])  # other valid values: the same text
    param_check.check_params(params, out_file=tmp_path / "ok.txt")
    assert (tmp_path / "ok.txt").read_bytes() == first == param_check.CHECKED_TEXT.encode()

    params.update(optimizer="adamw", models=["dense", "nope"], tasks=["f2s", "p2s"])
    params["split"] = {**params["split"], "test_fraction": 2}
    with pytest.raises(ParamError) as err:
        param_check.check_params(params, out_file=tmp_path / "bad.txt")
    text = str(err.value)
    assert text.startswith("4 settings are not valid:")
    assert "optimizer='adamw' is not valid; expected one of: adam, sgd, rmsprop" in text
    assert "models: unknown model 'nope'; expected a list of one or more of: dense, conv, conv_bn, vae, unet_gan" in text
    assert "tasks: unknown task 'p2s'" in text and "split.test_fraction=2" in text
    assert not (tmp_path / "bad.txt").exists()


def test_check_params_needs_no_tensorflow():
    """The stage runs on every param change: it must stay cheap."""
    import subprocess
    import sys

    code = ("import sys; from facesketch.core import param_check, params; "
            "assert not param_check.problems(params.load_params('params.yaml')); "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr[-2000:]
