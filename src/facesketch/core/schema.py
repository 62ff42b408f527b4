"""The schema of params.yaml: every setting's type, bounds and default, in one place.

Each section is a pydantic model (:class:`Section`): unknown keys are refused
(with the nearest valid name), numbers are strict (an integer setting refuses
``3.0`` and ``"3"``; a number setting takes an integer), booleans are strict,
and a default here is the setting's only default (params.yaml restates it for
users to see and edit). :func:`check` turns pydantic's errors into the
project's :class:`~facesketch.core.errors.ParamError` messages, all at once,
each naming the dotted key, the value given and what was expected.

The models' own sections live in :mod:`facesketch.models.settings` and the
whole file's model (these sections + ``models`` + one section per model) in
:mod:`facesketch.core.param_check`, so the pipeline's stages do not depend on
model code. To add a setting: a field (type, bounds, default) in its section
here, the key with a comment in params.yaml, and the key in dvc.yaml's
``params:`` of the stages that read it.
"""

from __future__ import annotations

import difflib
import functools
import re
import typing
from typing import Annotated, Any, Callable, Iterable, Literal, Optional, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WrapValidator,
                      create_model, model_validator)
from pydantic_core import PydanticCustomError

from facesketch import TASKS
from facesketch.core.errors import ParamError

FILE = "params.yaml"

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("mae", "bce", "mse")
LR_SCHEDULES = ("constant", "linear_decay", "cosine")
LOSS_SPACES = ("rgb", "lab")  # training.losses.SPACES (a test keeps them equal)
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("auto", "none", "mirrored")
BACKENDS = ("auto", "tensorflow", "jax")
SOURCES = ("cuhk", "archive_dir", "folder", "synthetic")  # data.fetch.SOURCES implements each (a test checks)
SUBSETS = ("train", "test")
ROLES = ("photo", "sketch")
PROTOCOLS = ("random", "cuhk")
CUHK_PAGE = "http://mmlab.ie.cuhk.edu.hk/archive/facesketch.html"


# --------------------------------------------------------------------------- building blocks

def invalid(expected: str) -> PydanticCustomError:
    """An error read as ``params.yaml: key=value is not valid; <expected>``."""
    return PydanticCustomError("facesketch_invalid", "{expected}", {"expected": expected})


def refused(text: str) -> PydanticCustomError:
    """An error read as ``params.yaml: <text>`` (the text names the key itself)."""
    return PydanticCustomError("facesketch_message", "{text}", {"text": text})


def expecting(expected: str) -> WrapValidator:
    """Any error of the wrapped type reads as ``... is not valid; <expected>``."""
    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise invalid(expected) from None
    return WrapValidator(wrap)


def multiple_of(n: int, hint: str = "") -> AfterValidator:
    def check(value: int) -> int:
        if value % n:
            raise invalid(f"expected a multiple of {n}{hint}")
        return value
    return AfterValidator(check)


def names(key: str, allowed: Callable[[], Iterable[str]]) -> BeforeValidator:
    """A non-empty list of distinct names from ``allowed()`` (``models``, ``tasks``)."""
    def check(value: Any) -> Any:
        ok = tuple(allowed())
        expected = f"expected a list of one or more of: {', '.join(ok)}"
        if not isinstance(value, list) or not value:
            raise invalid(expected)
        unknown = [v for v in value if v not in ok]
        if unknown:
            raise refused(f"{key}: unknown {key[:-1]} {', '.join(repr(v) for v in unknown)}; {expected}")
        doubled = sorted({v for v in value if value.count(v) > 1})
        if doubled:
            raise refused(f"{key}: {', '.join(doubled)} listed twice")
        return value
    return BeforeValidator(check)


class Section(BaseModel):
    """A mapping of settings: unknown keys refused, numbers and booleans strict; an empty
    section (``key:`` with nothing under it, YAML's null) takes every default."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, value: Any) -> Any:
        return {} if value is None else value


PositiveInt = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0, le=0.9)]


# --------------------------------------------------------------------------- training (top level)

class Augment(Section):
    """Paired augmentation: enlarge by ``jitter`` then crop back at random; mirror at random."""
    jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    flip: bool = False


class Training(Section):
    """The top-level training keys (top-level so ``dvc exp run -S optimizer=rmsprop`` works)."""
    optimizer: Literal[OPTIMIZERS]
    learning_rate: Annotated[float, Field(gt=0)]
    epochs: PositiveInt
    batch_size: PositiveInt
    loss: Literal[LOSSES]
    seed: Annotated[int, Field(ge=0)]
    image_size: Annotated[int, Field(ge=32), multiple_of(32, " (e.g. 64, 128, 256)")]
    # the training levers beyond the study (absent: the study's plain training)
    augment: Augment = Field(default_factory=Augment)
    lr_schedule: Literal[LR_SCHEDULES] = "constant"
    ssim_weight: Annotated[float, Field(ge=0)] = 0.0
    edge_weight: Annotated[float, Field(ge=0)] = 0.0
    ema_decay: Annotated[float, Field(ge=0, le=0.9999)] = 0.0  # 1 would freeze the average at the random start
    loss_space: Literal[LOSS_SPACES] = "rgb"  # where the pixel loss is measured: RGB, or CIELAB / 100

    @model_validator(mode="after")
    def _lab_needs_a_distance(self) -> Training:
        if self.loss_space == "lab" and self.loss == "bce":
            raise refused("loss_space=lab needs loss mae or mse (binary cross-entropy needs values in [0, 1])")
        return self


class Runtime(Section):
    """How training runs; none of it changes what a model learns, except precision."""
    jit_compile: Annotated[Union[Literal["auto"], bool], expecting("expected auto, true or false")] = "auto"
    precision: Literal[PRECISIONS] = "auto"
    distribute: Literal[DISTRIBUTE] = "auto"
    checkpoint_seconds: Annotated[float, Field(ge=0)] = 30.0
    # auto: the KERAS_BACKEND environment variable if set, else tensorflow (params.backend_name)
    backend: Literal[BACKENDS] = "auto"


# --------------------------------------------------------------------------- data

def _subsets(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class CuhkArchive(Section):
    file: Annotated[str, Field(pattern=r"^[^/\\]+$"), expecting("expected a file name")]
    url: Annotated[Optional[str], expecting("expected a URL or null")] = None  # null: base_url + file
    sha256: Annotated[Optional[Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]],
                      expecting("expected 64 hex digits or null")] = None  # null: not checked


class CuhkArchives(Section):
    train_photo: Optional[CuhkArchive] = None
    train_sketch: Optional[CuhkArchive] = None
    test_photo: Optional[CuhkArchive] = None
    test_sketch: Optional[CuhkArchive] = None


class Cuhk(Section):
    """The CUHK student set's four archives (sources cuhk and archive_dir)."""
    page: Annotated[str, Field(min_length=1)] = CUHK_PAGE
    base_url: Optional[str] = None  # + file name; null or empty: each archive needs its url
    subsets: Annotated[list[Literal[SUBSETS]], Field(min_length=1), BeforeValidator(_subsets),
                       expecting(f"expected a non-empty list of: {', '.join(SUBSETS)}")] = ["train", "test"]
    download_dir: Annotated[str, Field(min_length=1)] = "data/downloads"
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    timeout: Annotated[float, Field(gt=0)] = 60.0  # seconds to connect / between bytes
    archives: CuhkArchives

    @model_validator(mode="after")
    def _subsets_have_archives(self) -> Cuhk:
        for subset in self.subsets:
            for role in ROLES:
                if getattr(self.archives, f"{subset}_{role}") is None:
                    raise refused(f"missing key 'data.cuhk.archives.{subset}_{role}' (file, url, sha256)")
        return self


class Folder(Section):
    path: Optional[str] = None  # holds photos/ and sketches/ (or train/ and test/, each with both)
    photos: Annotated[str, Field(min_length=1)] = "photos"
    sketches: Annotated[str, Field(min_length=1)] = "sketches"


class Synthetic(Section):
    count: Annotated[int, Field(ge=2)]
    seed: Annotated[int, Field(ge=0)]


class Data(Section):
    source: Literal[SOURCES]
    strict: bool = True  # false: drop unpaired/duplicate images with a warning instead of failing
    cuhk: Optional[Cuhk] = None
    archive_dir: Optional[str] = None  # source archive_dir: the folder holding the archives
    folder: Folder = Field(default_factory=Folder)
    synthetic: Optional[Synthetic] = None

    @model_validator(mode="after")
    def _source_is_set_up(self) -> Data:
        """The chosen source's own settings are there (checked up front, not in the fetch stage)."""
        if self.source in ("cuhk", "archive_dir") and self.cuhk is None:
            raise refused(f"missing key 'data.cuhk' (data.source is {self.source})")
        if self.source == "archive_dir" and not self.archive_dir:
            raise refused("data.archive_dir is not set: the folder holding the CUHK archives (data.source is "
                          "archive_dir)")
        if self.source == "folder" and not self.folder.path:
            raise refused("data.folder.path is not set: the folder holding photos/ and sketches/")
        if self.source == "synthetic" and self.synthetic is None:
            raise refused("missing key 'data.synthetic' (data.source is synthetic)")
        return self


class Preprocess(Section):
    """Cleaning before resizing (data/cleaning.py); each step on unless switched off."""
    fill_black_borders: bool = True
    remove_sketch_label: bool = True
    grey_sketches: bool = True


class Split(Section):
    protocol: Literal[PROTOCOLS]
    test_fraction: Fraction
    val_fraction: Fraction
    seed: Annotated[int, Field(ge=0)]


class Mlflow(Section):
    experiment: Annotated[str, Field(min_length=1)] = "facesketch"


class Report(Section):
    grid_pairs: PositiveInt = 4  # test pairs shown per task in the image grid


class OutputLevers(Section):
    """One task's test-time levers (evaluation/test_time.py): done to a trained model's outputs, not
    learnt; the names are test_time.OPTIONS (a test keeps them equal)."""
    mirror: bool = False      # average with the mirrored output of the mirrored input
    bilateral: bool = False   # OpenCV's bilateral filter on each 8-bit output


class OutputLeversPerTask(Section):
    """``test_time:``, per task: evaluate scores the outputs so, and `facesketch predict` and the
    web page do the same to a model scored so (the scores describe what a user gets)."""
    f2s: OutputLevers = Field(default_factory=OutputLevers)
    s2f: OutputLevers = Field(default_factory=OutputLevers)


class Pipeline(Training):
    """Every top-level setting but ``models`` and the models' own sections
    (:data:`facesketch.core.param_check.Params` adds those)."""
    runtime: Runtime = Field(default_factory=Runtime)
    data: Data
    preprocess: Preprocess = Field(default_factory=Preprocess)
    split: Split
    tasks: Annotated[list[str], names("tasks", lambda: TASKS)]
    mlflow: Mlflow = Field(default_factory=Mlflow)
    report: Report = Field(default_factory=Report)
    test_time: OutputLeversPerTask = Field(default_factory=OutputLeversPerTask)


# --------------------------------------------------------------------------- errors -> messages

_EXPECTED = {
    "int_type": "expected an integer", "int_parsing": "expected an integer", "int_from_float": "expected an integer",
    "float_type": "expected a number", "float_parsing": "expected a number", "finite_number": "expected a number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "string_type": "expected a string", "string_too_short": "expected a non-empty string",
    "list_type": "expected a list", "too_short": "expected a non-empty list",
    "model_type": "expected a mapping of settings", "model_attributes_type": "expected a mapping of settings",
    "dict_type": "expected a mapping of settings",
}
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than_equal": ("<=", "le"),
           "less_than": ("<", "lt")}


def _dotted(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The Section class an annotation holds (through Optional and Annotated), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def settings_type(model: type[BaseModel], name: str) -> type[BaseModel]:
    """The Section class of ``model``'s field ``name`` (e.g. ``Pipeline``, ``"data"`` -> :class:`Data`)."""
    found = _section_type(model.model_fields[name].annotation)
    if found is None:
        raise TypeError(f"{model.__name__}.{name} is not a section")
    return found


@functools.cache
def fields(model: type[BaseModel], names: tuple[str, ...]) -> type[BaseModel]:
    """A Section of only ``model``'s fields ``names`` (same types, bounds, defaults): a reader of a few
    top-level keys checks those and ignores the rest of the file."""
    return create_model(f"{model.__name__}Part", __base__=Section,
                        **{n: (model.model_fields[n].annotation, model.model_fields[n]) for n in names})


def settings_at(model: type[BaseModel], loc: Iterable[Any]) -> list[str]:
    """The setting names valid in the section at ``loc`` (from the top of ``model``)."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner = _section_type(field.annotation) if field is not None else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _unknown(model: type[BaseModel], loc: tuple[Any, ...], prefix: tuple[str, ...]) -> str:
    key = _dotted(prefix + loc)
    valid = settings_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    if close:
        return f"{FILE}: {key} is not a known setting; did you mean {_dotted(prefix + loc[:-1] + (close[0],))}?"
    where = f"under {_dotted(prefix + loc[:-1])}" if prefix + loc[:-1] else "at the top level"
    return f"{FILE}: {key} is not a known setting; the settings {where} are: {', '.join(valid) or '(none)'}"


def message(error: dict[str, Any], model: type[BaseModel], prefix: tuple[str, ...] = ()) -> str:
    """One pydantic error as the project's message: the dotted key, the value given, what was expected."""
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    key = _dotted(prefix + loc)
    if kind == "missing":
        return f"{FILE}: missing key '{key}'"
    if kind == "extra_forbidden":
        return _unknown(model, loc, prefix)
    if kind == "facesketch_message":
        return f"{FILE}: {ctx['text']}"
    if kind == "facesketch_invalid":
        expected = ctx["expected"]
    elif kind == "literal_error":
        expected = "expected one of: " + ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
    elif kind in _BOUNDS:
        op, bound = _BOUNDS[kind]
        expected = f"expected {op} {ctx[bound]}"
    else:
        expected = _EXPECTED.get(kind, error.get("msg", "").lower() or "expected another value")
    value = error.get("input")
    shown = f"{key}={value!r}" if key else f"{value!r}"
    return f"{FILE}: {shown} is not valid; {expected}"


def problems(model: type[BaseModel], data: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every problem with ``data`` as ``model`` (empty: valid), as messages naming each key."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        found: list[str] = []
        for error in exc.errors(include_url=False):
            text = message(error, model, prefix)
            if text not in found:
                found.append(text)
        return found
    return []


def raise_all(found: list[str]) -> None:
    """One ParamError for all of ``found`` (nothing when empty)."""
    if len(found) == 1:
        raise ParamError(found[0])
    if found:
        raise ParamError(f"{len(found)} settings are not valid:" + "".join(f"\n  {m}" for m in found))


def check(model: type[BaseModel], data: Any, prefix: tuple[str, ...] = ()) -> Any:
    """``data`` validated as ``model`` (an instance), or a ParamError naming every problem."""
    try:
        return model.model_validate(data)
    except ValidationError:
        raise_all(problems(model, data, prefix))
        raise  # not reached: problems() found what model_validate refused
