"""Write docs/params.md from the params.yaml schema (core/schema.py, models/settings.py): every key,
its type, bounds and default, so the doc never drifts from what check_params accepts.

    python scripts/params_doc.py            # rewrite docs/params.md
    python scripts/params_doc.py --check    # exit 1 when docs/params.md is out of date (the suite runs this)
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "params.md"


def _type(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is typing.Union:
        return " or ".join(_type(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type(args[0])}" if args else "list"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field) -> str:
    out = []
    for m in field.metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "length >=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{op} {getattr(m, attr)}")
    return ", ".join(out)


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "(section defaults)"
    return f"`{field.default!r}`".replace("'", "")


def _section_of(annotation):
    """The settings section an annotation holds (through Optional/Annotated), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in typing.get_args(annotation):
        inner = _section_of(a)
        if inner:
            return inner
    return None


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _section_of(field.annotation)
        if nested is not None and typing.get_origin(field.annotation) is not list:
            out.append(f"| `{key}` | mapping | | {_default(field)} |")
            out += rows(nested, key + ".")
        else:
            out.append(f"| `{key}` | {_type(field.annotation)} | {_bounds(field)} | {_default(field)} |")
    return out


def render() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from facesketch.core.param_check import Params

    return "\n".join([
        "# params.yaml: every key", "",
        "Generated from the schema (`src/facesketch/core/schema.py`, the models' sections in",
        "`src/facesketch/models/settings.py`) by `python scripts/params_doc.py`; a test fails when it is out",
        "of date. `check_params` refuses any other key (naming the nearest valid one), a value of another",
        "type (numbers and booleans are strict: `epochs: 3.0` is refused) or out of its bounds. What each",
        "key does: the comments in params.yaml.", "",
        "| key | type | bounds | default |", "|---|---|---|---|", *rows(Params), ""])


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else 1)
    DOC.write_text(text)
    print(f"wrote {DOC}")
