"""MLflow tracking: one run per model x task per pipeline run.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` (so a plain
``mlflow ui`` at the repo root shows every run); ``MLFLOW_TRACKING_URI``
overrides it. Tracking never stops training: if the store is unreachable or
locked, the stage finishes and says clearly what was not logged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

_QUEUE_MARK = os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep


def repo_root(start: Path | None = None) -> Path:
    """The user's repository, also from inside DVC's temporary experiment copies.

    Queued experiments (``dvc queue start``) run in ``<repo>/.dvc/tmp/exps/<tmp>``,
    so a store path relative to the working folder would be thrown away with it.
    """
    here = str((start or Path.cwd()).resolve())
    if _QUEUE_MARK in here + os.sep:
        return Path(here[: (here + os.sep).index(_QUEUE_MARK)])
    return Path(here)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class Tracker:
    """A thin, failure-tolerant wrapper around one MLflow run."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.failures: list[str] = []
        self._mlflow = None

    # every call goes through here so one broken store cannot break training
    def _safe(self, what: str, fn: Callable[[], Any]) -> Any:
        if self._mlflow is None and self.failures:
            return None
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - any store error must not stop training
            msg = f"MLflow: {what} was not logged ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            self.failures.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
            return None

    def start(self, experiment: str, run_name: str, tags: dict[str, str], resume_run_id: str | None = None) -> str | None:
        def _start():
            import mlflow

            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            mlflow.set_tracking_uri(tracking_uri())
            _ensure_experiment(mlflow, experiment)
            if resume_run_id:
                try:
                    run = mlflow.start_run(run_id=resume_run_id)
                except Exception:  # the old run is gone (store reset): start afresh
                    run = mlflow.start_run(run_name=run_name, tags=tags)
            else:
                run = mlflow.start_run(run_name=run_name, tags=tags)
            self._mlflow = mlflow
            return run.info.run_id

        self.run_id = self._safe("the run", _start)
        return self.run_id

    def log_model(self, model, sample_input) -> None:
        """The inference model as an MLflow model with a signature (``mlflow models predict`` runs it)."""
        if not self._mlflow:
            return

        def _log():
            import numpy as np
            from mlflow.models import infer_signature

            signature = infer_signature(sample_input, np.asarray(model(sample_input, training=False)))
            # explicit requirements: MLflow's inference of them re-imports the model in a subprocess (slow)
            self._mlflow.tensorflow.log_model(model, name="model", signature=signature,
                                              pip_requirements=_requirements())

        self._safe("the model", _log)

    def log_image(self, rgb, name: str) -> None:
        if self._mlflow:
            self._safe(f"image {name}", lambda: self._mlflow.log_image(rgb, name))

    def log_params(self, params: dict[str, Any]) -> None:
        if self._mlflow:
            flat = {k: str(v)[:500] for k, v in params.items()}
            self._safe("params", lambda: self._mlflow.log_params(flat))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._mlflow:
            clean = {k: float(v) for k, v in metrics.items() if v is not None}
            self._safe("metrics", lambda: self._mlflow.log_metrics(clean, step=step))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self._mlflow:
            self._safe(f"artifact {path}", lambda: self._mlflow.log_artifact(str(path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        if self._mlflow:
            self._safe("tags", lambda: self._mlflow.set_tags(tags))

    def end(self, status: str = "FINISHED") -> None:
        if self._mlflow:
            self._safe(f"the run's end ({status})", lambda: self._mlflow.end_run(status=status))
            self._mlflow = None


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("tensorflow", "keras", "numpy")]


def _ensure_experiment(mlflow, name: str) -> None:
    """Select experiment ``name``, creating it with its artifacts in the repo when using the default store.

    MLflow's default artifact root is relative to the working folder, which for
    queued DVC experiments is a temporary copy that is deleted afterwards.
    """
    if mlflow.get_experiment_by_name(name) is None:
        location = None if os.environ.get("MLFLOW_TRACKING_URI") else (repo_root() / "mlruns").as_uri()
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except Exception:  # noqa: BLE001 - created meanwhile by a parallel stage
            if mlflow.get_experiment_by_name(name) is None:
                raise
    mlflow.set_experiment(name)


def group_id(params_file: str | Path = "params.yaml") -> str:
    """One id shared by the runs of one pipeline run: the DVC experiment's name, or
    for a plain ``dvc repro`` the commit plus a digest of params.yaml."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    import hashlib

    try:
        digest = hashlib.sha256(Path(params_file).read_bytes()).hexdigest()[:8]
    except OSError:
        digest = "noparams"
    return f"repro-{(git_commit() or 'nogit')[:7]}-{digest}"


def mark_run(run_id: str, status: str) -> None:
    """Close a run left open by a killed process (status KILLED or FAILED)."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri())
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status=status)
    except Exception as exc:  # noqa: BLE001
        print(f"warning: MLflow: could not mark run {run_id} {status} ({exc})", file=sys.stderr)


def log_to_run(run_id: str, metrics: dict[str, float], artifacts: list[Path] = (), images: dict[str, Any] | None = None) -> None:
    """Add evaluation results to a finished training run (the evaluate stage)."""
    tracker = Tracker()
    tracker._safe("the run", lambda: _reopen(tracker, run_id))
    tracker.log_metrics(metrics)
    for a in artifacts:
        tracker.log_artifact(a)
    for name, rgb in (images or {}).items():
        tracker.log_image(rgb, name)
    tracker.end("FINISHED")


def _reopen(tracker: Tracker, run_id: str) -> None:
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.start_run(run_id=run_id)
    tracker._mlflow = mlflow
    tracker.run_id = run_id
