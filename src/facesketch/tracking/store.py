"""Where the MLflow store is, whether it can be used, and the lock around creating it.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` (MLflow's own default
``sqlite:///mlflow.db``, resolved at the repository root, so a plain
``mlflow ui`` there shows every run, also those of queued experiments);
``MLFLOW_TRACKING_URI`` overrides it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

_QUEUE_MARK = os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep

#: seconds to wait for a locked SQLite store before giving up on logging to it
LOCK_TIMEOUT_S = 20.0
#: seconds to wait for a tracking server (or database server) to answer
CONNECT_TIMEOUT_S = 5.0

# Database servers: MLflow retries creating its engine 10 times with back-off (about 100 s) and has no
# setting for it, so a TCP connect tells first whether anyone listens. Tracking servers (HTTP) are
# probed with one MLflow request under MLflow's own retry and timeout settings instead.
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a local SQLite store; None for any other store."""
    if uri.startswith("sqlite:///"):
        path = unquote(uri[len("sqlite:///"):])
        return Path(path) if path and path != ":memory:" else None
    return None


def artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a local SQLite store.

    MLflow's default is ``./mlruns`` relative to the working folder, which for
    queued DVC experiments is a temporary copy that is deleted afterwards.
    A server or remote database decides for itself (None).
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlruns").resolve().as_uri()


def display(uri: str) -> str:
    """The URI without a password."""
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri


def short(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def quiet() -> None:
    """MLflow and Alembic log every migration step at INFO: keep the stage's output readable."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextmanager
def bounded_http() -> Iterator[None]:
    """MLflow's HTTP settings for one quick probe: no retries, ``CONNECT_TIMEOUT_S`` per request.

    MLflow's defaults (7 retries with back-off, 120 s per request) would hold up
    every stage for minutes on a dead server. Settings the user made are kept.
    """
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, round(CONNECT_TIMEOUT_S)))}
    added = [name for name in wanted if name not in os.environ]
    for name in added:
        os.environ[name] = wanted[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def check_store(uri: str) -> None:
    """Fail fast, with a clear reason, when the store cannot be used."""
    db = sqlite_path(uri)
    if db is not None:
        _check_sqlite(db)
        return
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme in ("http", "https"):
        from mlflow import MlflowClient

        quiet()
        with bounded_http():
            try:
                MlflowClient(uri).search_experiments(max_results=1)
            except Exception as exc:  # noqa: BLE001 - whatever the server (or no server) answered
                raise StoreUnavailable(f"no answer from {display(uri)}: {_http_failure(exc)}") from None
    elif scheme in _DATABASE_PORTS and parts.hostname:
        port = parts.port or _DATABASE_PORTS[scheme]
        try:
            socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise StoreUnavailable(f"cannot connect to {parts.hostname}:{port}: {exc.strerror or exc}") from None


def _http_failure(exc: BaseException) -> str:
    """Why an HTTP request failed, in a few words: MLflow's message nests urllib3's several levels deep."""
    text = str(exc)
    if refused := re.search(r"\[Errno -?\d+\] ([^'\"()]+)", text):
        return refused.group(1).strip()  # Connection refused, Name or service not known, ...
    if "timed out" in text.lower():
        return f"timed out after {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    return short(exc)


def _check_sqlite(db: Path) -> None:
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


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise opening a local SQLite store across processes.

    MLflow creates and migrates a new SQLite store's tables on first use; two
    processes doing it at once (two queued experiments starting together) break
    the store for good ("table _alembic_tmp_tags already exists"). The lock file
    lives in the temporary folder, not beside the store, so that git and DVC never
    see it.
    """
    db = sqlite_path(uri)
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


def open_client(uri: str):
    """An ``MlflowClient`` on ``uri`` once the store is checked, created and migrated.

    The check and MLflow's first use of a new store (which creates its tables)
    happen under ``store_lock``, so parallel stages never migrate it together.
    """
    from mlflow import MlflowClient

    quiet()
    with store_lock(uri):
        check_store(uri)
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # opens (and if new, creates) the store
    return client
