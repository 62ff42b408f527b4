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
                 "edge_weight": 0.0, "ema_decay": 0.0, "loss_space": "rgb"}
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


# --- the schema: the whole file, up front ------------------------------------

def _edited(edits: dict) -> dict:
    """The shipped params.yaml with ``edits`` (dotted key -> value) applied."""
    import copy

    params = copy.deepcopy(params_module.load_params(REPO / "params.yaml"))
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    return params


# (edits, the exact message check_params gives)
REFUSED = [
    ({"ssim_wieght": 1}, "params.yaml: ssim_wieght is not a known setting; did you mean ssim_weight?"),
    ({"epoch": 3}, "params.yaml: epoch is not a known setting; did you mean epochs?"),
    ({"data.sourse": "synthetic"}, "params.yaml: data.sourse is not a known setting; did you mean data.source?"),
    ({"epochs": "ten"}, "params.yaml: epochs='ten' is not valid; expected an integer"),
    ({"epochs": 3.0}, "params.yaml: epochs=3.0 is not valid; expected an integer"),
    ({"batch_size": 0}, "params.yaml: batch_size=0 is not valid; expected >= 1"),
    ({"data.cuhk.retries": -1}, "params.yaml: data.cuhk.retries=-1 is not valid; expected >= 0"),
    ({"report.grid_pairs": -2}, "params.yaml: report.grid_pairs=-2 is not valid; expected >= 1"),
    ({"unet_gan.norm": "foo"},
     "params.yaml: unet_gan.norm='foo' is not valid; expected one of: batch, instance, group, none"),
    ({"augment.flip": 1}, "params.yaml: augment.flip=1 is not valid; expected true or false"),
    ({"learning_rate": True}, "params.yaml: learning_rate=True is not valid; expected a number"),
    ({"runtime.backend": "torch"},
     "params.yaml: runtime.backend='torch' is not valid; expected one of: auto, tensorflow, jax"),
    ({"mlflow.experimnet": "x"}, "params.yaml: mlflow.experimnet is not a known setting; did you mean mlflow.experiment?"),
    ({"data.synthetic.count": 1}, "params.yaml: data.synthetic.count=1 is not valid; expected >= 2"),
    ({"data.folder.pathh": "x"}, "params.yaml: data.folder.pathh is not a known setting; did you mean data.folder.path?"),
    ({"preprocess.grey_sketches": "yes"},
     "params.yaml: preprocess.grey_sketches='yes' is not valid; expected true or false"),
    ({"vae.filters": [32, 0]}, "params.yaml: vae.filters[1]=0 is not valid; expected >= 1"),
    ({"dense.size": 100}, "params.yaml: dense.size=100 is not valid; expected a multiple of 8, at least 8"),
    ({"conv.widht": 3}, "params.yaml: conv.widht is not a known setting; the settings under conv are: output_bias"),
    ({"data.cuhk.archives.test_photo.sha256": "abc"},
     "params.yaml: data.cuhk.archives.test_photo.sha256='abc' is not valid; expected 64 hex digits or null"),
    ({"data.source": "folder"}, "params.yaml: data.folder.path is not set: the folder holding photos/ and sketches/"),
]


@pytest.mark.parametrize("edits,expected", REFUSED, ids=[",".join(e) + f"={v}" for e, _ in REFUSED
                                                             for v in [next(iter(e.values()))]])
def test_check_params_refuses_each_bad_key_with_its_message(tmp_path, edits, expected):
    from facesketch.core import param_check

    with pytest.raises(ParamError) as err:
        param_check.check_params(_edited(edits), out_file=tmp_path / "ok.txt")
    assert str(err.value) == expected
    assert not (tmp_path / "ok.txt").exists()


def test_a_renamed_key_is_both_missing_and_unknown():
    from facesketch.core import param_check

    params = _edited({"epoch": 3})
    del params["epochs"]
    assert param_check.problems(params) == ["params.yaml: missing key 'epochs'",
                                            "params.yaml: epoch is not a known setting; did you mean epochs?"]


def test_every_shipped_key_validates_and_optional_sections_restate_the_schemas_defaults():
    from facesketch.core import param_check, schema

    shipped = params_module.load_params(REPO / "params.yaml")
    assert param_check.problems(shipped) == []
    full = param_check.Params.model_validate(shipped)
    assert set(full.model_fields_set) == set(shipped)  # every top-level key is the schema's, none defaulted
    for name in ("augment", "runtime", "preprocess", "mlflow", "report"):
        assert shipped[name] == schema.settings_type(schema.Pipeline, name)().model_dump(), name
    for key in ("lr_schedule", "ssim_weight", "ema_decay"):
        assert shipped[key] == schema.Training.model_fields[key].default, key


def test_numbers_and_booleans_are_strict_but_an_integer_is_a_number():
    t = params_module.training(tiny_params(learning_rate=1, ssim_weight=0))
    assert t["learning_rate"] == 1.0 and type(t["learning_rate"]) is float and type(t["ssim_weight"]) is float
    for key, value in [("epochs", 3.0), ("epochs", "3"), ("epochs", True), ("seed", 1.5)]:
        with pytest.raises(ParamError, match=rf"{key}={value!r} is not valid; expected an integer"):
            params_module.training(tiny_params(**{key: value}))


def test_readers_return_the_same_dicts_as_before():
    p = params_module.load_params(REPO / "params.yaml")
    assert params_module.runtime(p) == {"jit_compile": "auto", "precision": "auto", "distribute": "auto",
                                        "checkpoint_seconds": 30.0, "backend": "auto"}
    assert params_module.augment(p) == {"jitter": 0.0, "flip": False}
    assert params_module.image_size(p) == 256
    from facesketch.data.preprocess import cleaning_options
    from facesketch.data.split import settings

    assert settings(p) == {"protocol": "random", "test_fraction": 0.2, "val_fraction": 0.1, "seed": 42}
    assert cleaning_options(p) == {"fill_black_borders": True, "remove_sketch_label": True, "grey_sketches": True}
    assert cleaning_options({}) == cleaning_options({"preprocess": None}) == cleaning_options(p)
    assert params_module.section(p, "report").grid_pairs == 4
    assert params_module.section({}, "mlflow").experiment == "facesketch"


def test_runtime_backend_auto_is_keras_backend_else_tensorflow(monkeypatch):
    assert params_module.runtime({"runtime": {"backend": "jax"}})["backend"] == "jax"
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert params_module.backend_name("auto") == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert params_module.backend_name("auto") == "jax" and params_module.backend_name("tensorflow") == "tensorflow"


def test_every_data_source_has_a_fetcher():
    from facesketch.core import schema
    from facesketch.data.fetch import SOURCES

    assert tuple(SOURCES) == schema.SOURCES


@pytest.mark.parametrize("text,expected", [
    ("", "the file is empty; expected a mapping of settings"),
    ("# only comments\n", "the file is empty; expected a mapping of settings"),
    ("- adam\n- 200\n", "expected a mapping of settings at the top level (key: value lines), got a list"),
    ("adam\n", "expected a mapping of settings at the top level (key: value lines), got a str"),
])
def test_an_empty_or_flat_params_file_is_named(tmp_path, text, expected):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamError) as err:
        params_module.load_params(tmp_path / "params.yaml")
    assert str(err.value).startswith(str(tmp_path / "params.yaml")) and expected in str(err.value)


def test_check_params_names_a_params_value_that_is_not_a_mapping():
    from facesketch.core import param_check

    assert param_check.problems(None) == ["params.yaml: expected a mapping of settings at the top level "
                                          "(key: value lines), got nothing (an empty file)"]
    assert param_check.problems([1]) == ["params.yaml: expected a mapping of settings at the top level "
                                         "(key: value lines), got a list"]


def test_docs_params_md_is_generated_from_the_schema_and_up_to_date():
    """docs/params.md lists what check_params accepts; it is rewritten by scripts/params_doc.py."""
    import subprocess
    import sys

    from conftest import REPO

    res = subprocess.run([sys.executable, str(REPO / "scripts/params_doc.py"), "--check"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, "docs/params.md is out of date: run `python scripts/params_doc.py`"
    doc = (REPO / "docs/params.md").read_text()
    assert "| `runtime.backend` | `auto` \\| `tensorflow` \\| `jax` |  | `auto` |" in doc
    assert "| `data.cuhk.retries` | int | >= 0, <= 10 | `2` |" in doc
