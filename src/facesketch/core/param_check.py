"""The check_params stage: every setting in params.yaml checked before any other stage runs.

Why a stage of its own: DVC deletes a stage's outputs before running its
command, so a train stage that refuses ``optimizer: adamw`` has already lost
its model folder and loss history. Every stage that reads params depends on
this stage's output, and this stage depends on the whole params.yaml, so DVC
runs it first whenever a param changes; a bad value stops the pipeline here,
with the culprit named, before any output is touched. Its output is
``persist``-ent (DVC does not delete it before the run) and holds the same
text whenever the check passes, so it never re-runs another stage by itself.

It is cheap (no TensorFlow): what each model's own section may hold is checked
when the model is built, in its train stage, whose outputs are ``persist`` too
(training replaces them atomically when it finishes), so a failure there loses
nothing either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from facesketch import TASKS
from facesketch.core import fileio
from facesketch import models as registry
from facesketch.core.params import choice, get, runtime, training
from facesketch.core.errors import ParamError
from facesketch.core.layout import PARAMS_CHECKED_FILE

#: the output's whole content: constant, so a passing check changes nothing downstream
CHECKED_TEXT = ("params.yaml: every setting checked and valid (stage check_params; this text never changes, "
                "so this file re-runs no stage)\n")


def _names(key: str, value: Any, allowed: tuple[str, ...]) -> list[str]:
    """A non-empty list of distinct names from ``allowed``."""
    expected = f"expected a list of one or more of: {', '.join(allowed)}"
    if not isinstance(value, list) or not value:
        raise ParamError(f"params.yaml: {key}={value!r} is not valid; {expected}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        which = ", ".join(repr(v) for v in unknown)
        raise ParamError(f"params.yaml: {key}: unknown {key[:-1]} {which}; {expected}")
    doubled = sorted({v for v in value if value.count(v) > 1})
    if doubled:
        raise ParamError(f"params.yaml: {key}: {', '.join(doubled)} listed twice")
    return value


def models(params: dict[str, Any]) -> list[str]:
    """``models``: registered names; each one's own section, where present, a mapping."""
    names = _names("models", get(params, "models"), tuple(registry.available()))
    for name in names:
        section = params.get(name)
        if section is not None and not isinstance(section, dict):
            raise ParamError(f"params.yaml: '{name}' should be a mapping of that model's settings")
    return names


def tasks(params: dict[str, Any]) -> list[str]:
    return _names("tasks", get(params, "tasks"), tuple(TASKS))


def data_source(params: dict[str, Any]) -> str:
    from facesketch.data.fetch import SOURCES

    return choice("data.source", get(params, "data.source"), SOURCES)


def preprocess(params: dict[str, Any]) -> dict[str, bool]:
    from facesketch.data.preprocess import cleaning_options

    return cleaning_options(params)


def split(params: dict[str, Any]) -> dict[str, Any]:
    from facesketch.data.split import settings

    return settings(params)


#: each check raises a ParamError naming the key; the stages run the same checks again
CHECKS: tuple[Callable[[dict[str, Any]], Any], ...] = (data_source, preprocess, split, training, runtime, models,
                                                       tasks)


def problems(params: dict[str, Any]) -> list[str]:
    """Every setting that is not valid, as messages naming it (empty: all valid)."""
    found = []
    for check in CHECKS:
        try:
            check(params)
        except ParamError as exc:
            found.append(str(exc))
    return found


def check_params(params: dict[str, Any], out_file: Path = PARAMS_CHECKED_FILE) -> None:
    """Raise a ParamError listing every invalid setting; else write ``out_file`` (:data:`CHECKED_TEXT`)."""
    found = problems(params)
    if len(found) == 1:
        raise ParamError(found[0])
    if found:
        raise ParamError(f"{len(found)} settings are not valid:" + "".join(f"\n  {m}" for m in found))
    fileio.write_text(out_file, CHECKED_TEXT)
