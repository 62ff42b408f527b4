"""MLflow tracking: one run per model x task per pipeline run.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` (MLflow's own default
``sqlite:///mlflow.db``, resolved at the repository root, so a plain
``mlflow ui`` there shows every run, also those of queued experiments);
``MLFLOW_TRACKING_URI`` overrides it. Tracking never stops training: if the
store is unreachable or locked, the stage finishes and says clearly what was
not logged.

Each run is tagged with ``pipeline_run`` (the DVC experiment's name, or for a
plain ``dvc repro`` the commit plus a digest of params.yaml), which groups the
model x task runs of one ``dvc exp run``, plus ``dvc_experiment``,
``git_commit``, ``model``, ``task`` and ``data_source``.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

_QUEUE_MARK = os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep

#: seconds to wait for a locked SQLite store before giving up on logging to it
LOCK_TIMEOUT_S = 20.0
#: seconds to wait for a tracking server (or database server) to accept a connection
CONNECT_TIMEOUT_S = 5.0

_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


class StoreUnavailable(Exception):
    """The tracking store cannot be reached (or stays locked)."""


def repo_root(start: Path | None = None) -> Path:
    """The user's repository, also from inside DVC's temporary experiment copies.

    Queued experiments (``dvc queue start``) run in ``<repo>/.dvc/tmp/exps/<tmp>``,
    so a store path relative to the working folder would be thrown away with it.
    DVC gives every stage ``DVC_ROOT``, the user's repository (also for queued
    runs); without it (training called directly) the working folder is used.
    """
    if start is None and os.environ.get("DVC_ROOT") and Path(os.environ["DVC_ROOT"]).is_dir():
        start = Path(os.environ["DVC_ROOT"])
    here = str((start or Path.cwd()).resolve())
    if _QUEUE_MARK in here + os.sep:
        return Path(here[: (here + os.sep).index(_QUEUE_MARK)])
    return Path(here)


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else ``sqlite:///<repo root>/mlflow.db``.

    A relative local store in ``MLFLOW_TRACKING_URI`` (``sqlite:///mlflow.db``,
    ``./mlruns``) is taken relative to the repository root, not to the folder a
    stage runs in, so queued experiments log to the same store as the workspace.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return f"sqlite:///{repo_root() / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:" and not path.startswith("/") and not Path(unquote(path)).is_absolute():
            return f"sqlite:///{repo_root() / unquote(path)}"
        return uri
    if "://" not in uri and ":" not in uri[:2] and not Path(uri).is_absolute():  # a plain relative folder
        return str(repo_root() / uri)
    return uri


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        path = unquote(uri[len("sqlite:///"):])
        return Path(path) if path and path != ":memory:" else None
    return None


def check_store(uri: str) -> None:
    """Fail fast, with a clear reason, when the store cannot be used.

    MLflow itself retries an unreachable store for minutes (HTTP: 7 retries with
    back-off; databases: 10 attempts), which would hold up every stage.
    """
    db = _sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the folder of {db}: {exc.strerror or exc}") from None
        try:
            con = sqlite3.connect(str(db), timeout=LOCK_TIMEOUT_S)
            try:
                con.execute("BEGIN IMMEDIATE")  # needs the write lock, which logging needs too
                # SQLite opens a file it may not write (chmod 444, chattr +i) read-only without a word,
                # and BEGIN IMMEDIATE still succeeds: only a write tells. This one changes nothing
                # (the same value, rolled back).
                version = con.execute("PRAGMA user_version").fetchone()[0]
                con.execute(f"PRAGMA user_version = {int(version)}")
                con.rollback()
            finally:
                con.close()
        except sqlite3.Error as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreUnavailable(f"{db} stayed locked for {LOCK_TIMEOUT_S:g} s") from None
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise StoreUnavailable(f"{db} is read-only (SQLite: {exc})") from None
            raise StoreUnavailable(f"cannot open {db}: {exc}") from None
        return
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme in _DEFAULT_PORTS and parts.hostname:
        import urllib.request

        if scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname):
            return  # reached through a proxy: a direct connection says nothing
        port = parts.port or _DEFAULT_PORTS[scheme]
        try:
            socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise StoreUnavailable(f"cannot connect to {parts.hostname}:{port}: {exc.strerror or exc}") from None


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise opening a local SQLite store across processes.

    MLflow creates and migrates a new SQLite store's tables on first use; two
    processes doing it at once (two queued experiments starting together) break
    the store for good ("table _alembic_tmp_tags already exists"). The lock file
    lives in the temporary folder, not beside the store, so that git and DVC never
    see it.
    """
    db = _sqlite_path(uri)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    if db is None or fcntl is None:
        yield
        return
    digest = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"facesketch-mlflow-{digest}.lock", "a") as f:
        deadline = time.time() + 3 * LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise StoreUnavailable(f"another process kept {db} busy for {3 * LOCK_TIMEOUT_S:g} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _display(uri: str) -> str:
    """The URI without a password."""
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri


def git_commit() -> str | None:
    """The commit the run starts from (for a DVC experiment: its baseline)."""
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        return os.environ["DVC_EXP_BASELINE_REV"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _quiet() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def _connection_lost(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("ConnectionError", "Max retries exceeded", "Connection refused",
                                   "Failed to establish", "unable to open database file"))


class Tracker:
    """A thin, failure-tolerant wrapper around one MLflow run.

    Every call is safe: a store error is reported (``warning: MLflow: ...``) and
    training goes on. ``not_logged`` lists what did not reach the store; ``end``
    prints it once more as a summary.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.run_id: str | None = None
        self.uri: str | None = None
        self.failures: list[str] = []     # the warnings printed
        self.not_logged: list[str] = []   # what did not reach the store
        self.reason: str | None = None    # why nothing more is logged (store unreachable)
        self.resumed = False              # start() continued the given run
        self._mlflow = None
        self._attempted = False
        self._ended = False

    # every call goes through here so one broken store cannot break training
    def _safe(self, what: str, fn: Callable[[], Any]) -> Any:
        if self._mlflow is None:
            if self._attempted and what not in self.not_logged:
                self.not_logged.append(what)
            return None
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - any store error must not stop training
            msg = f"MLflow: {what} was not logged ({_short(exc)})"
            if what not in self.not_logged:
                self.not_logged.append(what)
            self.failures.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
            if _connection_lost(exc):
                self.reason = f"lost the connection to {_display(self.uri or '')}"
                self._abandon()
            return None

    def _abandon(self) -> None:
        """Stop logging to a store that went away (each call would retry for minutes)."""
        self._mlflow = None
        try:  # else MLflow would end it at exit, retrying for minutes
            from mlflow.tracking import fluent

            fluent._active_run_stack.get().clear()
        except Exception:  # noqa: BLE001 - MLflow internals; best effort
            pass

    def start(self, experiment: str, run_name: str, tags: dict[str, str], resume_run_id: str | None = None) -> str | None:
        """Start (or with ``resume_run_id`` continue) the run; None when the store cannot be used."""
        self._attempted = True
        self.label = self.label or run_name
        self.uri = uri = tracking_uri()
        tags = {**tags, **_dvc_tags()}
        if tags.get("dvc_experiment"):
            run_name = f"{tags['dvc_experiment']}/{run_name}"
        if tags.get("git_commit") and tags["git_commit"] != "unknown":
            tags.setdefault("mlflow.source.git.commit", tags["git_commit"])

        def _start():
            import mlflow

            _quiet()
            _set_tracking_uri(mlflow, uri)
            with store_lock(uri):
                check_store(uri)
                _ensure_experiment(mlflow, experiment, _artifact_root(uri))
            _close_orphans(mlflow)
            run = None
            if resume_run_id:
                try:
                    run = mlflow.start_run(run_id=resume_run_id)
                    self.resumed = True
                except Exception:  # noqa: BLE001 - the old run is gone (store reset): start afresh
                    run = None
            if run is None:
                run = mlflow.start_run(run_name=run_name, tags={**tags, **_process_tags()})
            self._mlflow = mlflow
            if self.resumed:
                self.set_tags(_process_tags())  # the process that now runs it
            return run.info.run_id

        try:
            self.run_id = _start()
        except Exception as exc:  # noqa: BLE001
            self.reason = (f"the store {_display(uri)} is unavailable ({exc})" if isinstance(exc, StoreUnavailable)
                           else f"the store {_display(uri)} failed ({_short(exc)})")
            self.not_logged.append("the run")
            msg = f"MLflow: {self.label} is not logged: {self.reason}. Training goes on; its outputs are unaffected"
            self.failures.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
            return None
        atexit.register(self._at_exit)
        return self.run_id

    def log_model(self, model, sample_input) -> None:
        """The inference model as an MLflow model with a signature (``mlflow models predict`` runs it)."""

        def _log():
            import numpy as np
            from mlflow.models import infer_signature

            signature = infer_signature(sample_input, np.asarray(model(sample_input, training=False)))
            # explicit requirements: MLflow's inference of them re-imports the model in a subprocess (slow)
            self._mlflow.tensorflow.log_model(model, name="model", signature=signature,
                                              pip_requirements=_requirements())

        self._safe("the model", _log)

    def log_image(self, rgb, name: str) -> None:
        self._safe(f"image {name}", lambda: self._mlflow.log_image(rgb, name))

    def log_params(self, params: dict[str, Any]) -> None:
        flat = {k: str(v)[:500] for k, v in params.items()}
        self._safe("params", lambda: self._mlflow.log_params(flat))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        what = "per-epoch metrics" if step is not None else "metrics " + ", ".join(clean)
        self._safe(what, lambda: self._mlflow.log_metrics(clean, step=step))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        shown = f"{artifact_path}/{Path(path).name}" if artifact_path else Path(path).name
        self._safe(f"artifact {shown}", lambda: self._mlflow.log_artifact(str(path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        self._safe("tags", lambda: self._mlflow.set_tags(tags))

    def end(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` (FINISHED, FAILED or KILLED) and report what was not logged."""
        if self._mlflow:
            mlflow, run_id = self._mlflow, self.run_id

            def _end():
                for attempt in range(3):  # a run left RUNNING misleads: try harder than for the rest
                    try:
                        if attempt == 0:
                            mlflow.end_run(status=status)
                        else:
                            mlflow.MlflowClient().set_terminated(run_id, status=status)
                        return
                    except Exception as exc:  # noqa: BLE001
                        if attempt == 2 or _connection_lost(exc):
                            raise
                        time.sleep(1 + attempt)

            self._safe(f"the run's end ({status})", _end)
            self._mlflow = None
        elif self.run_id and self.reason and not self._ended:  # started, then the store went away
            self.not_logged.append(f"the run's end ({status}; the next run of this experiment closes it)")
        self._ended = True
        if self.not_logged and self._attempted:
            where = _display(self.uri or tracking_uri())
            why = f" ({self.reason})" if self.reason else ""
            print(f"warning: MLflow: not logged for {self.label or self.run_id} to {where}{why}: "
                  f"{'; '.join(self.not_logged)}", file=sys.stderr)
            self._attempted = False  # report once

    def _at_exit(self) -> None:
        """A run still open when the process exits did not finish: never leave it RUNNING."""
        if self._mlflow:
            self.end("FAILED")


def _set_tracking_uri(mlflow, uri: str) -> None:
    """Point MLflow at ``uri`` without leaving it in ``MLFLOW_TRACKING_URI`` (MLflow sets that)."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def _dvc_tags() -> dict[str, str]:
    """What DVC tells a stage about the experiment it runs in (set for workspace and queued runs)."""
    names = {"DVC_EXP_NAME": "dvc_experiment", "DVC_EXP_BASELINE_REV": "dvc_baseline_rev", "DVC_STAGE": "dvc_stage"}
    return {tag: os.environ[env] for env, tag in names.items() if os.environ.get(env)}


def _process_tags() -> dict[str, str]:
    """Which process runs the run, so the next run can close it if that process was killed (kill -9)."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _close_orphans(mlflow) -> None:
    """Mark KILLED the runs of this experiment left RUNNING by a process on this host that is gone.

    A process killed outright (``kill -9``, ``dvc queue kill --force``) cannot end
    its run; in a queued experiment's temporary copy not even a resumed stage
    would find it again.
    """
    if os.name != "posix":  # os.kill(pid, 0) is no liveness check elsewhere
        return
    try:
        client = mlflow.MlflowClient()
        exp_id = mlflow.tracking.fluent._get_experiment_id()
        host = socket.gethostname().replace("'", "")
        runs = client.search_runs([exp_id], f"attributes.status = 'RUNNING' and tags.host = '{host}'",
                                  max_results=200)
        for run in runs:
            pid = run.data.tags.get("pid", "")
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                client.set_terminated(run.info.run_id, status="KILLED")
                print(f"MLflow: marked run {run.info.run_id} ({run.info.run_name}) KILLED: "
                      f"its process {pid} is gone", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - housekeeping only
        log.debug("could not close orphaned runs: %s", exc)


def _artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a local SQLite store.

    MLflow's default is ``./mlruns`` relative to the working folder, which for
    queued DVC experiments is a temporary copy that is deleted afterwards.
    A server or remote database decides for itself (None).
    """
    db = _sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlruns").resolve().as_uri()


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("tensorflow", "keras", "numpy")]


def _ensure_experiment(mlflow, name: str, artifact_location: str | None = None) -> None:
    """Select experiment ``name``, creating it (with its artifacts at ``artifact_location``)."""
    if mlflow.get_experiment_by_name(name) is None:
        try:
            mlflow.create_experiment(name, artifact_location=artifact_location)
        except Exception:  # noqa: BLE001 - created meanwhile by a parallel stage
            if mlflow.get_experiment_by_name(name) is None:
                raise
    mlflow.set_experiment(name)


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


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    _quiet()
    with store_lock(uri):
        check_store(uri)
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # opens (and if new, creates) the store
    return client


def mark_run(run_id: str, status: str) -> None:
    """Close a run left open by a killed process (status KILLED or FAILED)."""
    uri = tracking_uri()
    try:
        client = _client(uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status=status)
    except Exception as exc:  # noqa: BLE001
        print(f"warning: MLflow: could not mark run {run_id} {status} in {_display(uri)} ({_short(exc)})",
              file=sys.stderr)


def log_to_run(run_id: str, metrics: dict[str, float], artifacts: list[Path] = (),
               images: dict[str, Any] | None = None, *, artifact_path: str | None = None,
               label: str | None = None) -> list[str]:
    """Add evaluation results to a finished training run (the evaluate stage).

    The run is not reopened (its status stays FINISHED, even if this process is
    killed). Returns what was not logged (also printed as a warning).
    """
    uri = tracking_uri()
    tracker = Tracker(label or f"run {run_id}")
    tracker._attempted, tracker.uri = True, uri

    class _Fluentish:  # the Tracker's calls, bound to this run through the client
        def __init__(self, client):
            self.client = client

        def log_metrics(self, values, step=None):
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(run_id, metrics=[Metric(k, v, now, step or 0) for k, v in values.items()])

        def log_artifact(self, path, artifact_path=None):
            self.client.log_artifact(run_id, path, artifact_path)

        def log_image(self, rgb, name):
            self.client.log_image(run_id, rgb, artifact_file=name)

    try:
        tracker._mlflow = _Fluentish(_client(uri))
    except Exception as exc:  # noqa: BLE001
        tracker.reason = (f"the store {_display(uri)} is unavailable ({exc})" if isinstance(exc, StoreUnavailable)
                          else f"the store {_display(uri)} failed ({_short(exc)})")
    tracker.log_metrics(metrics)
    for a in artifacts:
        tracker.log_artifact(a, artifact_path)
    for name, rgb in (images or {}).items():
        tracker.log_image(rgb, name)
    tracker._mlflow = None
    tracker.end()
    return tracker.not_logged


def not_logged(label: str, what: str, why: str) -> None:
    """Say that ``what`` of ``label`` was not logged, and why."""
    print(f"warning: MLflow: not logged for {label}: {what} ({why})", file=sys.stderr)
