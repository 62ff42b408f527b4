"""Shared entry-point plumbing for the thin scripts in ``stages/``."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any, Callable

from facesketch import TASKS
from facesketch.core.errors import FacesketchError
from facesketch.core.params import load_params


def run(main: Callable[[argparse.Namespace, dict[str, Any]], str | None], *,
        description: str, args: list[tuple[list[str], dict]] = ()) -> None:
    """Parse ``args``, load params.yaml, run ``main``; a FacesketchError becomes one line and exit 1,
    an interrupt one line and the shell's status for it (130 for Ctrl-C)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    for flags, kwargs in args:
        parser.add_argument(*flags, **kwargs)
    ns = parser.parse_args()
    t0 = time.time()
    try:
        message = main(ns, load_params(ns.params))
    except FacesketchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # Ctrl-C (or SIGTERM, see errors.Interrupted): no traceback
        print(str(exc) or "interrupted", file=sys.stderr)
        sys.exit(128 + int(getattr(exc, "signum", signal.SIGINT)))
    if message:
        print(f"{message} ({time.time() - t0:.1f} s)")


TASK = (["--task"], {"required": True, "choices": list(TASKS), "help": "f2s: photo->sketch, s2f: sketch->photo"})
MODEL_TASK = [
    (["--model"], {"required": True, "help": "model name from the registry (params.yaml: models)"}),
    TASK,
]
