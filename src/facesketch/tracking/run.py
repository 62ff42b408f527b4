"""One MLflow run per model x task per pipeline run, through ``MlflowClient`` and its run id.

Tracking never stops training: if the store is unreachable or locked, the stage
finishes and says clearly what was not logged. Every call names its run
explicitly; nothing relies on MLflow's process-wide active run.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from facesketch.tracking import store
from facesketch.tracking.store import StoreUnavailable, display, short
from facesketch.tracking.tags import resume_tags, dvc_tags, process_tags, source_tags

log = logging.getLogger(__name__)

#: the statuses a run can end with
END_STATUSES = ("FINISHED", "FAILED", "KILLED")


def _connection_lost(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("ConnectionError", "Max retries exceeded", "Connection refused",
                                   "Failed to establish", "unable to open database file"))


def _unavailable(uri: str, exc: BaseException) -> str:
    return (f"the store {display(uri)} is unavailable ({exc})" if isinstance(exc, StoreUnavailable)
            else f"the store {display(uri)} failed ({short(exc)})")


@contextlib.contextmanager
def signals_held(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)):
    """Hold Ctrl-C and SIGTERM while a store call runs, then deliver them to the handlers that were
    in place. Training raises on them at once; raised inside SQLAlchemy's cursor handling, that
    printed SQLAlchemy's own traceback ("Error closing cursor") and could cut a write in half."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return
    caught: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: caught.append(signum)) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])  # to the restored handler: Interrupted, KeyboardInterrupt, ...


class Tracker:
    """A thin, failure-tolerant handle on one MLflow run.

    ``start`` creates (or continues) a run; ``attach`` logs to an existing one
    without reopening it. Every call is safe: a store error is reported
    (``warning: MLflow: ...``) and training goes on. ``not_logged`` lists what did
    not reach the store; ``end`` prints it once more as a summary.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.uri: str | None = None
        self.failures: list[str] = []     # the warnings printed
        self.not_logged: list[str] = []   # what did not reach the store
        self.reason: str | None = None    # why nothing more is logged (store unreachable)
        self.resumed = False              # start() continued the given run
        self._client = None               # the MlflowClient while the run can be logged to
        self._owns_run = False            # start() made it ours to end; attach() does not
        self._attempted = False
        self._ended = False

    @property
    def active(self) -> bool:
        """Whether calls still reach the store."""
        return self._client is not None

    # every call goes through here so one broken store cannot break training
    def _safe(self, what: str, fn: Callable[[Any], Any]) -> Any:
        if self._client is None:
            if self._attempted and what not in self.not_logged:
                self.not_logged.append(what)
            return None
        try:
            with signals_held():
                return fn(self._client)
        except Exception as exc:  # noqa: BLE001 - any store error must not stop training
            msg = f"MLflow: {what} was not logged ({short(exc)})"
            if what not in self.not_logged:
                self.not_logged.append(what)
            self.failures.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
            if _connection_lost(exc):
                # stop logging to a store that went away: each call would retry for minutes
                self.reason = f"lost the connection to {display(self.uri or '')}"
                self._client = None
            return None

    def _open(self, *, new_run: bool) -> Any:
        """The client, or None after saying why the store cannot be used."""
        self._attempted = True
        self.uri = uri = store.tracking_uri()
        try:
            with signals_held():
                return store.open_client(uri)
        except Exception as exc:  # noqa: BLE001
            if new_run:
                self._give_up(exc)
            else:  # the summary in end() lists what was not added to the existing run
                self.reason = _unavailable(uri, exc)
            return None

    def _give_up(self, exc: BaseException) -> None:
        """No run for this training: say so up front, in one line."""
        self.reason = _unavailable(self.uri or "", exc)
        self.not_logged.append("the run")
        msg = f"MLflow: {self.label} is not logged: {self.reason}. Training goes on; its outputs are unaffected"
        self.failures.append(msg)
        print(f"warning: {msg}", file=sys.stderr)

    def start(self, experiment: str, run_name: str, tags: dict[str, str], resume_run_id: str | None = None) -> str | None:
        """Start (or with ``resume_run_id`` continue) the run; None when the store cannot be used."""
        self.label = self.label or run_name
        tags = {**tags, **dvc_tags()}
        if tags.get("dvc_experiment"):
            run_name = f"{tags['dvc_experiment']}/{run_name}"
        if tags.get("git_commit") and tags["git_commit"] != "unknown":
            tags.setdefault("mlflow.source.git.commit", tags["git_commit"])
        client = self._open(new_run=True)
        if client is None:
            return None
        try:
            with signals_held():
                self.experiment_id = _experiment_id(client, experiment, store.artifact_root(self.uri))
                _close_orphans(client, self.experiment_id)
                run = _resumable(client, resume_run_id, self.experiment_id)
                if run is not None:
                    client.update_run(run.info.run_id, status="RUNNING")
                    self.resumed = True
                else:
                    run = client.create_run(self.experiment_id, run_name=run_name,
                                            tags={**source_tags(), **tags, **process_tags()})
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)
            return None
        self.run_id, self._client, self._owns_run = run.info.run_id, client, True
        if self.resumed:
            # the process that now runs it, and the experiment that resumed it beside the one that
            # started it (the run's name and tags were those of the interrupted one, #27)
            self.set_tags({**process_tags(), **resume_tags(run.data.tags, tags)})
            if tags.get("dvc_experiment") and run.info.run_name != run_name:
                self._safe("run name", lambda c: c.update_run(run.info.run_id, name=run_name))
        atexit.register(self._at_exit)
        return self.run_id

    def attach(self, run_id: str) -> bool:
        """Log to the existing run ``run_id`` without reopening it (its status stays as it is)."""
        self.label = self.label or f"run {run_id}"
        self.run_id = run_id
        client = self._open(new_run=False)
        if client is None:
            return False
        self._client = client
        return True

    def log_model(self, model, sample_input) -> None:
        """The inference model as an MLflow model with a signature (``mlflow models predict`` runs it)."""

        def _log(client):
            import mlflow
            import numpy as np
            from mlflow.models import infer_signature

            signature = infer_signature(sample_input, np.asarray(model(sample_input, training=False)))
            # MLflow's log_model takes the run explicitly but the store and the experiment its
            # LoggedModel belongs to from its process-wide settings: point those at this run's.
            _set_tracking_uri(mlflow, self.uri)
            mlflow.set_experiment(experiment_id=self.experiment_id)
            # explicit requirements: MLflow's inference of them re-imports the model in a subprocess (slow)
            mlflow.tensorflow.log_model(model, name="model", signature=signature, run_id=self.run_id,
                                        pip_requirements=_requirements())

        self._safe("the model", _log)

    def log_image(self, rgb, name: str) -> None:
        self._safe(f"image {name}", lambda c: c.log_image(self.run_id, rgb, artifact_file=name))

    # MLflow's entities are imported only where a client exists: without MLflow installed (the offline
    # study's device) every call is a "not logged", never an ImportError

    def log_params(self, params: dict[str, Any]) -> None:
        def _log(client):
            from mlflow.entities import Param

            client.log_batch(self.run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])

        self._safe("params", _log)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        what = "per-epoch metrics" if step is not None else "metrics " + ", ".join(clean)
        now = int(time.time() * 1000)

        def _log(client):
            from mlflow.entities import Metric

            client.log_batch(self.run_id, metrics=[Metric(k, v, now, step or 0) for k, v in clean.items()])

        self._safe(what, _log)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        shown = f"{artifact_path}/{Path(path).name}" if artifact_path else Path(path).name
        self._safe(f"artifact {shown}", lambda c: c.log_artifact(self.run_id, str(path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        def _log(client):
            from mlflow.entities import RunTag

            client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

        self._safe("tags", _log)

    def end(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` (FINISHED, FAILED or KILLED) and report what was not logged.

        A run only attached to is left as it is.
        """
        if status not in END_STATUSES:
            raise ValueError(f"status={status!r}; expected one of {', '.join(END_STATUSES)}")
        if self._client is not None and self._owns_run:
            def _end(client):
                for attempt in range(3):  # a run left RUNNING misleads: try harder than for the rest
                    try:
                        client.set_terminated(self.run_id, status=status)
                        return
                    except Exception as exc:  # noqa: BLE001
                        if attempt == 2 or _connection_lost(exc):
                            raise
                        time.sleep(1 + attempt)

            self._safe(f"the run's end ({status})", _end)
        elif self._owns_run and self.run_id and self.reason and not self._ended:  # the store went away
            self.not_logged.append(f"the run's end ({status}; the next run of this experiment closes it)")
        self._client = None
        self._ended = True
        if self.not_logged and self._attempted:
            where = display(self.uri or store.tracking_uri())
            why = f" ({self.reason})" if self.reason else ""
            print(f"warning: MLflow: not logged for {self.label or self.run_id} to {where}{why}: "
                  f"{'; '.join(self.not_logged)}", file=sys.stderr)
            self._attempted = False  # report once

    def _at_exit(self) -> None:
        """A run still open when the process exits did not finish: never leave it RUNNING."""
        if self._client is not None and self._owns_run:
            self.end("FAILED")


def _set_tracking_uri(mlflow, uri: str) -> None:
    """Point MLflow at ``uri`` without leaving it in ``MLFLOW_TRACKING_URI`` (MLflow sets that)."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def _experiment_id(client, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, creating it (with its artifacts at ``artifact_location``)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:  # noqa: BLE001 - created meanwhile by a parallel stage
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _resumable(client, run_id: str | None, experiment_id: str):
    """The run ``run_id`` if it still exists in this experiment (a reset store forgets it)."""
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - the old run is gone: start afresh
        return None
    return run if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active" else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _close_orphans(client, experiment_id: str) -> None:
    """Mark KILLED the runs of this experiment left RUNNING by a process on this host that is gone.

    A process killed outright (``kill -9``, ``dvc queue kill --force``) cannot end
    its run; in a queued experiment's temporary copy not even a resumed stage
    would find it again.
    """
    if os.name != "posix":  # os.kill(pid, 0) is no liveness check elsewhere
        return
    try:
        host = socket.gethostname().replace("'", "")
        runs = client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and tags.host = '{host}'",
                                  max_results=200)
        for run in runs:
            pid = run.data.tags.get("pid", "")
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                client.set_terminated(run.info.run_id, status="KILLED")
                print(f"MLflow: marked run {run.info.run_id} ({run.info.run_name}) KILLED: "
                      f"its process {pid} is gone", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - housekeeping only
        log.debug("could not close orphaned runs: %s", exc)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("tensorflow", "keras", "numpy")]


def mark_run(run_id: str, status: str) -> None:
    """Close a run left open by a killed process (status KILLED or FAILED)."""
    uri = store.tracking_uri()
    try:
        client = store.open_client(uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status=status)
    except Exception as exc:  # noqa: BLE001
        print(f"warning: MLflow: could not mark run {run_id} {status} in {display(uri)} ({short(exc)})",
              file=sys.stderr)


def log_to_run(run_id: str, metrics: dict[str, float], artifacts: list[Path] = (),
               images: dict[str, Any] | None = None, *, artifact_path: str | None = None,
               label: str | None = None, tags: dict[str, str] | None = None) -> list[str]:
    """Add evaluation results to a finished training run (the evaluate stage).

    The run is not reopened (its status stays FINISHED, even if this process is
    killed). Returns what was not logged (also printed as a warning).
    """
    tracker = Tracker(label or f"run {run_id}")
    tracker.attach(run_id)
    tracker.log_metrics(metrics)
    if tags:
        tracker.set_tags(tags)
    for a in artifacts:
        tracker.log_artifact(a, artifact_path)
    for name, rgb in (images or {}).items():
        tracker.log_image(rgb, name)
    tracker.end()
    return tracker.not_logged


def not_logged(label: str, what: str, why: str) -> None:
    """Say that ``what`` of ``label`` was not logged, and why."""
    print(f"warning: MLflow: not logged for {label}: {what} ({why})", file=sys.stderr)
