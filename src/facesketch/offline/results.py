"""Score an offline study's results back home (see the package doc).

The results folder (what ``run.py`` wrote: ``predictions-<task>.npz``, ``run.json``) is scored in a
folder of its own, ``RESULTS/home``, laid out like a workspace: ``data/raw``, ``data/processed``
and ``data/split`` link to the workspace's (the original files the protocol scores against), and
``metrics/``, ``data/predictions/``, ``models/<name>/info.json`` (no weights: they stayed on the
device) and ``reports/`` are written there by the project's own evaluate, baselines and report
code. Nothing in the workspace is written, so its DVC outputs stay as they are.

The workspace's split must be the bundle's: the test ids are compared, and a mismatch is refused.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.core import fileio
from facesketch.core.errors import DataError
from facesketch.core.layout import (HISTORY_DIR, INFO_FILE, METRICS_DIR, PREDICTIONS_DIR, PROCESSED_FILE, RAW_DIR,
                                    SPLIT_FILE, history_file, model_dir, predictions_of, run_name)


@contextlib.contextmanager
def _inside(folder: Path):
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def prepare_home(results: Path, workspace: Path) -> Path:
    """RESULTS/home with links to the workspace's data stages' outputs."""
    home = results / "home"
    for rel in (RAW_DIR, PROCESSED_FILE.parent, SPLIT_FILE.parent):
        source = (workspace / rel).resolve()
        if not source.exists():
            raise DataError(f"{source}: missing; run the data stages in {workspace} first (`dvc repro split`)")
        link = home / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.resolve() != source:
                raise DataError(f"{link}: already points at {link.resolve()}, not {source}; remove {home} first")
            continue
        link.symlink_to(source, target_is_directory=True)
    return home


def score(results: Path, workspace: Path = Path(".")) -> dict[str, Any]:
    """Score every model x task in ``results``; returns {name: summary} and writes the report."""
    from facesketch.evaluation.evaluate import baselines, score as protocol_score, write_scores
    from facesketch.report import report

    results, workspace = Path(results).resolve(), Path(workspace).resolve()
    run = fileio.read_json(results / "run.json")
    params = run["params"]
    home = prepare_home(results, workspace)
    summaries = {}
    with _inside(home):
        split = fileio.read_json(SPLIT_FILE)
        if not run.get("complete", True):
            print(f"offline-study: {results / 'run.json'} is from a call stopped before its end; scoring the "
                  f"{len(run['runs'])} runs it finished", flush=True)
        for task in params["tasks"]:
            path = results / f"predictions-{task}.npz"
            if not path.exists():
                print(f"offline-study: {task}: no finished run to score", flush=True)
                continue
            with np.load(path) as npz:
                ids = npz["ids"].tolist()
                preds = {k: npz[k] for k in npz.files if k != "ids"}
            if ids != split["test"]:
                raise DataError(f"{path}: its test ids are not those of {workspace / SPLIT_FILE}; score it in the "
                                "workspace the bundle was built from (same image size and split)")
            for model, pred in preds.items():
                name = run_name(model, task)
                summary, per_image = protocol_score(task, pred, ids, predictions_of(name, PREDICTIONS_DIR), RAW_DIR)
                write_scores(name, summary, per_image, METRICS_DIR)
                record = run["runs"][name]
                fileio.write_json(model_dir(name) / INFO_FILE, {**record["info"], "offline": {
                    k: record[k] for k in ("train_seconds", "wall_seconds", "images_per_s")}})
                if record.get("history_csv"):
                    fileio.write_text(history_file(name, HISTORY_DIR), record["history_csv"])
                summaries[name] = summary
            baselines(task)
        # the report's table is every model x task: over the tasks every model finished
        whole = [t for t in params["tasks"] if all(run_name(m, t) in summaries for m in params["models"])]
        out = report({**params, "tasks": whole}) if whole else None
    left = sorted(run_name(m, t) for t in params["tasks"] for m in params["models"]
                  if run_name(m, t) not in summaries)
    print(f"offline-study: scored {len(summaries)} model x task runs"
          + (f"; not finished there: {', '.join(left)}" if left else "")
          + (f"; report over {', '.join(whole)}: {home / out}" if out else "; no task complete: no report"))
    return summaries
