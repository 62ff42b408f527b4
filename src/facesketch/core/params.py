"""Reading and checking params.yaml.

Every stage reads the file the same way and checks only the keys it uses, so
a bad value fails in the stage that needs it, with the key's name and what
was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from facesketch.core.errors import ParamError

PARAMS_FILE = "params.yaml"

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("mae", "bce", "mse")
LR_SCHEDULES = ("constant", "linear_decay", "cosine")
AUGMENT_DEFAULTS = {"jitter": 0.0, "flip": False}
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("auto", "none", "mirrored")
BACKENDS = ("auto", "tensorflow", "jax")
RUNTIME_DEFAULTS = {"jit_compile": "auto", "precision": "auto", "distribute": "auto", "checkpoint_seconds": 30,
                    "backend": "auto"}


def load_params(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path}: not found; run from the repository root (where dvc.yaml is)")
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ParamError(f"{path}: expected a mapping of keys to values at the top level")
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


def image_size(params: dict[str, Any]) -> int:
    size = number("image_size", get(params, "image_size"), minimum=32, integer=True)
    if size % 32:
        raise ParamError(f"params.yaml: image_size={size} is not valid; expected a multiple of 32 (e.g. 64, 128, 256)")
    return int(size)


def training(params: dict[str, Any]) -> dict[str, Any]:
    """The top-level training keys, checked."""
    return {
        "optimizer": choice("optimizer", get(params, "optimizer"), OPTIMIZERS),
        "learning_rate": float(number("learning_rate", get(params, "learning_rate"), minimum=0, exclusive_min=True)),
        "epochs": int(number("epochs", get(params, "epochs"), minimum=1, integer=True)),
        "batch_size": int(number("batch_size", get(params, "batch_size"), minimum=1, integer=True)),
        "loss": choice("loss", get(params, "loss"), LOSSES),
        "seed": int(number("seed", get(params, "seed"), minimum=0, integer=True)),
        "image_size": image_size(params),
        # the training levers beyond the study (absent: the study's plain training)
        "augment": augment(params),
        "lr_schedule": choice("lr_schedule", params.get("lr_schedule", "constant"), LR_SCHEDULES),
        "ssim_weight": float(number("ssim_weight", params.get("ssim_weight", 0.0), minimum=0)),
        # 1 would freeze the average at the random start
        "ema_decay": float(number("ema_decay", params.get("ema_decay", 0.0), minimum=0, maximum=0.9999)),
    }


def augment(params: dict[str, Any]) -> dict[str, Any]:
    """The ``augment:`` section: paired jitter (fraction to enlarge before a random crop back) and mirroring."""
    cfg = params.get("augment") or {}
    if not isinstance(cfg, dict):
        raise ParamError("params.yaml: augment: expected a mapping with jitter and flip")
    unknown = set(cfg) - set(AUGMENT_DEFAULTS)
    if unknown:
        raise ParamError(f"params.yaml: augment.{sorted(unknown)[0]} is not a known setting; "
                         f"expected: {', '.join(AUGMENT_DEFAULTS)}")
    cfg = {**AUGMENT_DEFAULTS, **cfg}
    if not isinstance(cfg["flip"], bool):
        raise ParamError(f"params.yaml: augment.flip={cfg['flip']!r} is not valid; expected true or false")
    return {"jitter": float(number("augment.jitter", cfg["jitter"], minimum=0, maximum=0.5)), "flip": cfg["flip"]}


def task(name: str) -> str:
    from facesketch import TASKS

    return choice("task", name, TASKS)


def runtime(params: dict[str, Any]) -> dict[str, Any]:
    """The ``runtime:`` section, checked: how training runs (XLA, precision, devices, checkpointing).

    Missing keys take ``RUNTIME_DEFAULTS``. ``jit_compile``: auto (Keras: XLA on GPUs, not on CPUs),
    true or false; ``precision``: auto (mixed_float16 on a GPU, float32 on CPUs) or a Keras dtype
    policy; ``distribute``: auto, none or mirrored (see tf_runtime.strategy); ``checkpoint_seconds``:
    the least time between two resumable checkpoints (0: after every epoch).
    """
    cfg = params.get("runtime") or {}
    if not isinstance(cfg, dict):
        raise ParamError("params.yaml: runtime: expected a mapping (jit_compile, precision, distribute, "
                         "checkpoint_seconds)")
    unknown = set(cfg) - set(RUNTIME_DEFAULTS)
    if unknown:
        raise ParamError(f"params.yaml: runtime.{sorted(unknown)[0]} is not a known setting; "
                         f"expected: {', '.join(RUNTIME_DEFAULTS)}")
    cfg = {**RUNTIME_DEFAULTS, **cfg}
    if cfg["jit_compile"] not in ("auto", True, False):
        raise ParamError(f"params.yaml: runtime.jit_compile={cfg['jit_compile']!r} is not valid; "
                         "expected auto, true or false")
    return {
        "jit_compile": cfg["jit_compile"],
        "precision": choice("runtime.precision", cfg["precision"], PRECISIONS),
        "distribute": choice("runtime.distribute", cfg["distribute"], DISTRIBUTE),
        "checkpoint_seconds": float(number("runtime.checkpoint_seconds", cfg["checkpoint_seconds"], minimum=0)),
        # auto: KERAS_BACKEND if set, else tensorflow (facesketch.core.backend.select)
        "backend": choice("runtime.backend", cfg["backend"], BACKENDS),
    }
