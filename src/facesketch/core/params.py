"""Reading and checking params.yaml.

Every stage reads the file the same way. The check_params stage validates the
whole file up front (:mod:`facesketch.core.param_check`); each reader here
validates again the section it returns, against the same schema
(:mod:`facesketch.core.schema`: types, bounds, defaults), so a function called
outside the pipeline gets the same messages naming the key and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from facesketch.core import schema
from facesketch.core.errors import ParamError
from facesketch.core.schema import BACKENDS, DISTRIBUTE, LOSSES, LR_SCHEDULES, OPTIMIZERS, PRECISIONS  # noqa: F401

PARAMS_FILE = "params.yaml"

#: the ``runtime:`` section's settings and their defaults (the schema's)
RUNTIME_DEFAULTS = schema.Runtime().model_dump()
AUGMENT_DEFAULTS = schema.Augment().model_dump()


def load_params(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path}: not found; run from the repository root (where dvc.yaml is)")
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f)
    if params is None:
        raise ParamError(f"{path}: the file is empty; expected a mapping of settings (optimizer: adam, "
                         "epochs: 200, data:, models:, ...), as the repository's params.yaml ships")
    if not isinstance(params, dict):
        raise ParamError(f"{path}: expected a mapping of settings at the top level (key: value lines), "
                         f"got a {type(params).__name__}")
    return params


def get(params: dict[str, Any], dotted: str) -> Any:
    """``get(p, "split.seed")``: the value, or a ParamError naming the missing key."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamError(f"params.yaml: missing key '{dotted}'")
        node = node[part]
    return node


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ParamError(f"params.yaml: {name}={value!r} is not valid; expected one of: {', '.join(allowed)}")
    return value


def number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
           integer: bool = False, exclusive_min: bool = False) -> float | int:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ParamError(f"params.yaml: {name}={value!r} is not valid; expected {kind}")
    if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
        op = ">" if exclusive_min else ">="
        raise ParamError(f"params.yaml: {name}={value!r} is not valid; expected {op} {minimum}")
    if maximum is not None and value > maximum:
        raise ParamError(f"params.yaml: {name}={value!r} is not valid; expected <= {maximum}")
    return value


def section(params: dict[str, Any], name: str, *, required: bool = False) -> Any:
    """The top-level section ``name`` (``data``, ``split``, ``report``, ...) validated: a
    :class:`~facesketch.core.schema.Section` instance; an absent optional section takes its defaults."""
    model = schema.settings_type(schema.Pipeline, name)
    if name not in params and required:
        raise ParamError(f"{schema.FILE}: missing key '{name}'")
    return schema.check(model, params.get(name), (name,))


def image_size(params: dict[str, Any]) -> int:
    """``image_size``, checked (a multiple of 32, at least 32)."""
    return schema.check(schema.fields(schema.Training, ("image_size",)), _keys(params, ("image_size",))).image_size


def _keys(params: dict[str, Any], keys: Any) -> dict[str, Any]:
    return {k: params[k] for k in keys if k in params}


def training(params: dict[str, Any]) -> dict[str, Any]:
    """The top-level training keys, checked."""
    return schema.check(schema.Training, _keys(params, schema.Training.model_fields)).model_dump()


def augment(params: dict[str, Any]) -> dict[str, Any]:
    """The ``augment:`` section: paired jitter (fraction to enlarge before a random crop back) and mirroring."""
    return section(params, "augment").model_dump()


def task(name: str) -> str:
    from facesketch import TASKS

    return choice("task", name, TASKS)


def runtime(params: dict[str, Any]) -> dict[str, Any]:
    """The ``runtime:`` section, checked: how training runs (XLA, precision, devices, checkpointing, backend).

    Missing keys take the schema's defaults (:data:`RUNTIME_DEFAULTS`). ``jit_compile``: auto (Keras: XLA
    on GPUs, not on CPUs), true or false; ``precision``: auto (mixed_float16 on a GPU, float32 on CPUs) or
    a Keras dtype policy; ``distribute``: auto, none or mirrored (see tf_runtime.strategy);
    ``checkpoint_seconds``: the least time between two resumable checkpoints (0: after every epoch);
    ``backend``: auto, tensorflow or jax, as written (:func:`backend_name` resolves auto).
    """
    return section(params, "runtime").model_dump()


def backend_name(setting: str) -> str:
    """The Keras backend ``runtime.backend`` names: ``auto`` is the environment's ``KERAS_BACKEND``
    if set, else tensorflow."""
    return (os.environ.get("KERAS_BACKEND") or "tensorflow") if setting == "auto" else setting
