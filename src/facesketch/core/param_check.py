"""The check_params stage: every setting in params.yaml checked before any other stage runs.

Why a stage of its own: DVC deletes a stage's outputs before running its
command, so a train stage that refuses ``optimizer: adamw`` has already lost
its model folder and loss history. Every stage that reads params depends on
this stage's output, and this stage depends on the whole params.yaml, so DVC
runs it first whenever a param changes; a bad value stops the pipeline here,
with the culprit named, before any output is touched. Its output is
``persist``-ent (DVC does not delete it before the run) and holds the same
text whenever the check passes, so it never re-runs another stage by itself.

What it checks is the schema of the whole file, :data:`Params`: the pipeline's
sections (:mod:`facesketch.core.schema`), ``models`` (registered names) and
every model's own section (:mod:`facesketch.models.settings`), so a bad model
setting (``-S unet_gan.norm=foo``) stops here too, not in its train stage. It
is cheap: no TensorFlow, no model is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, create_model

from facesketch import models as registry
from facesketch.core import fileio, schema
from facesketch.core.layout import PARAMS_CHECKED_FILE
from facesketch.models.settings import SECTIONS

#: the output's whole content: constant, so a passing check changes nothing downstream
CHECKED_TEXT = ("params.yaml: every setting checked and valid (stage check_params; this text never changes, "
                "so this file re-runs no stage)\n")

#: the schema of the whole params.yaml: every section, ``models``, and each model's own section
Params = create_model(
    "Params", __base__=schema.Pipeline,
    models=(Annotated[list[str], schema.names("models", registry.available)], ...),
    **{name: (section, Field(default_factory=section)) for name, section in SECTIONS.items()},
)


def problems(params: Any) -> list[str]:
    """Every setting that is not valid, as messages naming it (empty: all valid)."""
    if not isinstance(params, dict):
        return [f"{schema.FILE}: expected a mapping of settings at the top level (key: value lines), "
                f"got {'nothing (an empty file)' if params is None else 'a ' + type(params).__name__}"]
    return schema.problems(Params, params)


def check_params(params: dict[str, Any], out_file: Path = PARAMS_CHECKED_FILE) -> None:
    """Raise a ParamError listing every invalid setting; else write ``out_file`` (:data:`CHECKED_TEXT`)."""
    schema.raise_all(problems(params))
    fileio.write_text(out_file, CHECKED_TEXT)
