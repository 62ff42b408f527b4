"""python -m facesketch.offline build BUNDLE | score RESULTS (see the package doc)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import facesketch  # noqa: F401
from facesketch.core.errors import DataError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facesketch.offline", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the bundle folder here")
    b.add_argument("bundle", type=Path)
    b.add_argument("--workspace", type=Path, default=Path("."), help="whose data/processed and data/split to carry")
    b.add_argument("--python", nargs="+", default=None, help="the device's Python versions (default: 3.11-3.13)")
    b.add_argument("--wheels-from", type=Path, help="a folder of wheels downloaded before (nothing fetched)")
    b.add_argument("--max-mib", type=float, default=60)
    s = sub.add_parser("score", help="score a results folder back home")
    s.add_argument("results", type=Path)
    s.add_argument("--workspace", type=Path, default=Path("."))
    args = ap.parse_args(argv)
    try:
        if args.command == "build":
            from facesketch.offline.bundle import PYTHONS, build

            manifest = build(args.bundle, workspace=args.workspace, pythons=tuple(args.python or PYTHONS),
                             max_mib=args.max_mib, wheels_from=args.wheels_from)
            wheels = sum(1 for f in manifest["files"] if f.startswith("wheels/"))
            print(f"offline-study: bundle {args.bundle}: {manifest['bytes'] / 2**20:.1f} MiB, {len(manifest['files'])} "
                  f"files ({wheels} wheels for Python {', '.join(manifest['pythons'])}); run it there with "
                  f"`python3 {args.bundle}/run.py --out OUT`")
        else:
            from facesketch.offline.results import score

            score(args.results, args.workspace)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
