"""What a run is tagged with and which params it logs.

Each run is tagged with ``pipeline_run`` (the DVC experiment's name, or for a
plain ``dvc repro`` the commit plus a digest of params.yaml), which groups the
model x task runs of one ``dvc exp run``, plus ``dvc_experiment``,
``git_commit``, ``model``, ``task`` and ``data_source``; the evaluate stage adds
``test_time`` (the test-time levers its scores include, or none).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def git_commit() -> str | None:
    """The commit the run starts from (for a DVC experiment: its baseline)."""
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        return os.environ["DVC_EXP_BASELINE_REV"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def group_id(params_file: str | Path = "params.yaml") -> str:
    """One id shared by the runs of one pipeline run: the DVC experiment's name, or
    for a plain ``dvc repro`` the commit plus a digest of params.yaml."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    try:
        digest = hashlib.sha256(Path(params_file).read_bytes()).hexdigest()[:8]
    except OSError:
        digest = "noparams"
    return f"repro-{(git_commit() or 'nogit')[:7]}-{digest}"


def dvc_tags() -> dict[str, str]:
    """What DVC tells a stage about the experiment it runs in (set for workspace and queued runs)."""
    names = {"DVC_EXP_NAME": "dvc_experiment", "DVC_EXP_BASELINE_REV": "dvc_baseline_rev", "DVC_STAGE": "dvc_stage"}
    return {tag: os.environ[env] for env, tag in names.items() if os.environ.get(env)}


def resume_tags(old: dict[str, str], now: dict[str, str]) -> dict[str, str]:
    """Tags for a run resumed by another DVC experiment than the one that started it: the DVC tags
    become the resuming experiment's (its results are that one's), ``dvc_experiment_started`` keeps
    the interrupted one and ``dvc_experiments`` lists every experiment that ran it, in order."""
    started, current = old.get("dvc_experiment"), now.get("dvc_experiment")
    if not current or current == started:
        return {}
    names = [n for n in old.get("dvc_experiments", started or "").split(",") if n]
    updated = {k: now[k] for k in ("dvc_experiment", "dvc_baseline_rev", "dvc_stage", "pipeline_run") if now.get(k)}
    first = old.get("dvc_experiment_started", started)
    return {**updated, **({"dvc_experiment_started": first} if first else {}),
            "dvc_experiments": ",".join([*names, current] if current not in names else names)}


def process_tags() -> dict[str, str]:
    """Which process runs the run, so the next run can close it if that process was killed (kill -9)."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def source_tags() -> dict[str, str]:
    """MLflow's documented system tags for who ran what (its UI shows them).

    ``mlflow.start_run`` would add them; a run created through ``MlflowClient``
    carries only the tags it is given.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"mlflow.user": user, "mlflow.source.name": sys.argv[0] or "python", "mlflow.source.type": "LOCAL"}


def flat_params(prefix: str, mapping: Any) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1}``, for logging nested params.yaml sections."""
    if not isinstance(mapping, dict):
        return {prefix: mapping}
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        out.update(flat_params(f"{prefix}.{k}", v))
    return out


def data_params(params: dict[str, Any]) -> dict[str, Any]:
    """The data settings a training run depends on: ``data.*`` (the chosen source's
    own section only) and ``preprocess.*``, flattened."""
    data = params.get("data", {}) or {}
    source = data.get("source")
    out = {f"data.{k}": v for k, v in data.items() if not isinstance(v, dict)}
    if isinstance(data.get(source), dict):
        out.update(flat_params(f"data.{source}", data[source]))
    out.update(flat_params("preprocess", params.get("preprocess", {}) or {}))
    return out
