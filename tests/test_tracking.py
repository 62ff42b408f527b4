"""MLflow tracking, in-process on tiny data: what one run holds, where the store
is (also from a queued experiment's temporary copy), and what happens when the
store is unreachable or locked, or training fails or is killed."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

from facesketch import tracking
from facesketch.core import fileio
from facesketch.core import saved
from facesketch.training import fit
from facesketch.evaluation.evaluate import evaluate
from facesketch.training.fit import train
from conftest import REPO, make_pairs, tiny_params, write_raw

EXP = "brisk-owl"  # a DVC experiment name, as `dvc exp run` sets DVC_EXP_NAME
BASELINE = "a" * 40


def make_data(root: Path) -> tuple[Path, Path]:
    """conftest.tiny_data, for module-scoped fixtures."""
    from facesketch.data.split import make_split

    photos, sketches = make_pairs(16, 32)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(16)]
    processed = root / "pairs.npz"
    fileio.save_npz(processed, ids=np.array(ids), subsets=np.array(["train"] * 8 + ["test"] * 8),
                photos=photos, sketches=sketches)
    split_file = root / "split.json"
    fileio.write_json(split_file, make_split(ids, ["train"] * 8 + ["test"] * 8, protocol="random",
                                         test_fraction=0.25, val_fraction=0.2, seed=0))
    write_raw(root / "raw", ids, photos, sketches)  # the original targets evaluate scores against
    return processed, split_file


def run_train(root: Path, data, model="dense", task="f2s", **overrides):
    processed, split_file = data
    return train(model, task, tiny_params(**overrides), processed_file=processed, split_file=split_file,
                 models_dir=root / "models", history_dir=root / "history", checkpoint_root=root / "ckpt", verbose=0)


def client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_ROOT", "DVC_STAGE", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


# --- one tracked training + evaluation, checked from several sides ------------

@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """dense x f2s trained (2 epochs) and evaluated as a stage of `dvc exp run` would."""
    root = tmp_path_factory.mktemp("logged")
    data = make_data(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("DVC_EXP_NAME", EXP)
        mp.setenv("DVC_EXP_BASELINE_REV", BASELINE)
        mp.setenv("DVC_STAGE", "train@dense-f2s")
        info = run_train(root, data, optimizer="rmsprop")
        mp.setenv("DVC_STAGE", "evaluate@dense-f2s")
        summary = evaluate("dense", "f2s", models_dir=root / "models", metrics_dir=root / "metrics",
                           predictions_dir=root / "predictions", processed_file=data[0], split_file=data[1],
                           raw_dir=root / "raw")
    run = client(uri).get_run(info["mlflow_run_id"])
    return SimpleNamespace(root=root, uri=uri, info=info, summary=summary, run=run, client=client(uri), data=data)


def test_run_is_tagged_with_experiment_commit_model_task_source_and_group(logged):
    run = logged.run
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["dvc_experiment"] == EXP and tags["pipeline_run"] == EXP  # the group of one `dvc exp run`
    assert tags["git_commit"] == BASELINE and tags["mlflow.source.git.commit"] == BASELINE
    assert (tags["model"], tags["task"], tags["data_source"]) == ("dense", "f2s", "cuhk")
    assert tags["dvc_stage"] == "train@dense-f2s"
    assert tags["mlflow.runName"] == f"{EXP}/dense-f2s"
    exp = logged.client.get_experiment(run.info.experiment_id)
    assert exp.name == "facesketch"  # params.yaml: mlflow.experiment
    found = logged.client.search_runs([exp.experiment_id], f"tags.pipeline_run = '{EXP}'")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_run_logs_every_param_that_shaped_it(logged):
    p = logged.run.data.params
    assert {k: p[k] for k in ("optimizer", "learning_rate", "epochs", "batch_size", "loss", "seed", "image_size")} \
        == {"optimizer": "rmsprop", "learning_rate": "0.001", "epochs": "2", "batch_size": "4", "loss": "mae",
            "seed": "1", "image_size": "32"}
    assert p["dense.size"] == "256" and p["dense.latent_dim"] == "32"  # the model's own params
    assert {"split.protocol", "split.test_fraction", "split.val_fraction", "split.seed"} <= set(p)
    assert p["data.source"] == "cuhk" and "data.cuhk.base_url" in p and "data.synthetic.count" not in p
    assert {"preprocess.fill_black_borders", "preprocess.grey_sketches"} <= set(p)
    assert (p["model"], p["task"], p["n_train"], p["n_val"]) == ("dense", "f2s", str(logged.info["n_train"]),
                                                                 str(logged.info["n_val"]))


def test_per_epoch_losses_match_the_history(logged):
    rows = list(csv.DictReader(open(logged.root / "history" / "dense-f2s.csv")))
    for key in ("loss", "val_loss"):
        hist = logged.client.get_metric_history(logged.run.info.run_id, key)
        assert [m.step for m in hist] == [1, 2]
        assert [m.value for m in hist] == pytest.approx([float(r[key]) for r in rows], rel=1e-6)


def test_evaluation_metrics_are_the_numbers_in_metrics_json(logged):
    run = logged.client.get_run(logged.run.info.run_id)
    assert run.info.status == "FINISHED"  # evaluate adds to the run without reopening it
    on_disk = json.loads((logged.root / "metrics" / "dense-f2s.json").read_text())
    numeric = {k: v for k, v in on_disk.items() if isinstance(v, (int, float))}
    assert {"mae", "psnr", "ssim"} <= set(numeric)
    assert {k: run.data.metrics[f"test_{k}"] for k in numeric} == numeric  # exactly the same numbers


def test_sample_grid_history_and_per_image_table_are_artifacts(logged):
    from mlflow.artifacts import download_artifacts

    c, run_id = logged.client, logged.run.info.run_id
    names = {a.path for a in c.list_artifacts(run_id)} | {a.path for d in ("history", "per_image")
                                                          for a in c.list_artifacts(run_id, d)}
    assert {"test_samples.png", "history/dense-f2s.csv", "per_image/dense-f2s.csv"} <= names
    local = Path(download_artifacts(run_id=run_id, artifact_path="history/dense-f2s.csv", tracking_uri=logged.uri,
                                    dst_path=str(logged.root / "dl")))
    assert local.read_text() == (logged.root / "history" / "dense-f2s.csv").read_text()
    # artifacts live beside the store, not in the folder the stage ran in
    assert logged.run.info.artifact_uri.startswith((logged.root / "mlruns").as_uri())


def test_logged_model_has_a_signature_and_predicts_an_image_array(logged, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    mlflow.set_tracking_uri(logged.uri)
    uri = f"runs:/{logged.run.info.run_id}/model"
    info = mlflow.models.get_model_info(uri)
    inputs = info.signature.inputs.to_dict()
    assert list(inputs[0]["tensor-spec"]["shape"]) == [-1, 32, 32, 3]
    x = make_pairs(2, 32, seed=5)[0].astype(np.float32) / 255.0
    pred = np.asarray(mlflow.pyfunc.load_model(uri).predict(x))
    assert pred.shape == (2, 32, 32, 3)
    expected = np.asarray(saved.load_predictor(logged.root / "models" / "dense-f2s")(x, training=False))
    np.testing.assert_allclose(pred, expected, atol=1e-5)


# --- where the store is ---------------------------------------------------------

def test_default_store_is_at_the_repo_root_also_from_a_queued_copy(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    queued = repo / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    queued.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(queued)
    assert tracking.tracking_uri() == f"sqlite:///{repo.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")  # relative: to the repo, not the copy
    assert tracking.tracking_uri() == f"sqlite:///{repo.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.tracking_uri() == "http://mlflow.example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(repo))  # what DVC gives every stage, queued or not
    assert tracking.tracking_uri() == f"sqlite:///{repo.resolve() / 'mlflow.db'}"

    # a run started in the queued copy: store and artifacts in the repo
    monkeypatch.delenv("DVC_ROOT")
    monkeypatch.chdir(queued)
    (queued / "note.txt").write_text("hi")
    tracker = tracking.Tracker()
    run_id = tracker.start("facesketch", "conv-f2s", {"model": "conv"})
    tracker.log_artifact(queued / "note.txt")
    tracker.end()
    assert run_id and not tracker.not_logged
    assert not (queued / "mlflow.db").exists() and not (queued / "mlruns").exists()
    run = client(f"sqlite:///{repo / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith((repo.resolve() / "mlruns").as_uri())
    assert list((repo / "mlruns").rglob("note.txt"))
    assert "MLFLOW_TRACKING_URI" not in os.environ  # MLflow sets it; the Tracker does not leave it behind


def test_group_of_a_plain_repro_follows_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("optimizer: adam\n")
    a = tracking.group_id()
    assert a.startswith("repro-") and a == tracking.group_id()
    (tmp_path / "params.yaml").write_text("optimizer: sgd\n")
    assert tracking.group_id() != a
    monkeypatch.setenv("DVC_EXP_NAME", EXP)
    assert tracking.group_id() == EXP


# --- a store that is unreachable, locked or lost: training finishes and says what was not logged

@pytest.mark.parametrize("kind", ["sqlite-path-unusable", "server-down"])
def test_unreachable_store_training_finishes_and_says_what_was_not_logged(kind, tmp_path, monkeypatch, capsys):
    if kind == "sqlite-path-unusable":
        (tmp_path / "a-file").write_text("not a folder")
        uri = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    else:
        uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # MLflow's HTTP settings left at their defaults
    data = make_data(tmp_path)
    info = run_train(tmp_path, data)
    assert (tmp_path / "models" / "dense-f2s" / "model.keras").exists()  # training finished
    assert info["mlflow_run_id"] is None
    err = capsys.readouterr().err
    assert f"MLflow: dense-f2s is not logged: the store {uri} is unavailable" in err
    if kind == "server-down":
        assert f"(no answer from {uri}: Connection refused)" in err
    summary = [line for line in err.splitlines() if "not logged for dense-f2s" in line]
    assert len(summary) == 1 and uri in summary[0]
    for what in ("the run", "params", "per-epoch metrics", "artifact history/dense-f2s.csv", "the model"):
        assert what in summary[0]
    evaluate("dense", "f2s", models_dir=tmp_path / "models", metrics_dir=tmp_path / "metrics",
             predictions_dir=tmp_path / "predictions", processed_file=data[0], split_file=data[1],
             raw_dir=tmp_path / "raw")
    assert "not logged for dense-f2s: test metrics" in capsys.readouterr().err
    t_check = time.time()
    with pytest.raises(tracking.StoreUnavailable):
        tracking.check_store(uri)
    assert time.time() - t_check < 10  # no minutes of retries


def test_server_that_accepts_but_never_answers_is_given_up_on_after_the_timeout(tmp_path, monkeypatch):
    """A hung server: the connection opens (no socket probe would notice), no HTTP answer ever comes.
    MLflow's own request timeout and retry settings, bounded for the probe, end the wait."""
    monkeypatch.setattr(tracking.store, "CONNECT_TIMEOUT_S", 1.0)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel completes the handshakes; nobody reads or answers
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
        t0 = time.time()
        with pytest.raises(tracking.StoreUnavailable, match=f"no answer from {uri}: timed out after 1 s"):
            tracking.check_store(uri)
        waited = time.time() - t0
    assert 0.9 < waited < 6, waited  # the 1 s timeout, once: no retries with back-off
    # the probe's settings do not outlive it
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


def test_dead_database_server_is_named_without_minutes_of_retries():
    port = free_port()
    t0 = time.time()
    with pytest.raises(tracking.StoreUnavailable, match=f"cannot connect to 127.0.0.1:{port}"):
        tracking.check_store(f"postgresql://user:secret@127.0.0.1:{port}/mlflow")
    assert time.time() - t0 < 6


def test_locked_store_is_reported_not_waited_on_forever(tmp_path, monkeypatch, capsys):
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setattr(tracking.store, "LOCK_TIMEOUT_S", 0.5)
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        tracker = tracking.Tracker()
        assert tracker.start("facesketch", "conv-f2s", {}) is None
        tracker.log_params({"optimizer": "adam"})
        tracker.log_metrics({"loss": 0.5}, step=1)
        tracker.end()
    finally:
        holder.rollback()
        holder.close()
    err = capsys.readouterr().err
    assert "stayed locked" in err
    assert "not logged for conv-f2s" in err and "the run; params; per-epoch metrics" in err
    assert tracker.not_logged == ["the run", "params", "per-epoch metrics"]


def make_read_only(path: Path) -> Callable[[], None]:
    """Make ``path`` unwritable, also for root (chattr +i; chmod alone does not stop root); returns the undo."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        path.chmod(0o444)
        return lambda: path.chmod(0o644)
    res = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True) if shutil.which("chattr") else None
    if res is None or res.returncode:
        pytest.skip(f"root, and chattr +i is not available here: nothing makes {path} read-only "
                    f"({res.stderr.strip() if res else 'no chattr'})")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_store_is_named_up_front_in_one_line_and_training_finishes(tmp_path, monkeypatch, capsys):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = tracking.Tracker()  # a real store with a run in it, as after a first `dvc repro`
    assert tracker.start("facesketch", "conv-f2s", {})
    tracker.end()
    before = db.read_bytes()
    capsys.readouterr()

    undo = make_read_only(db)
    try:
        with pytest.raises(tracking.StoreUnavailable, match="read-only"):
            tracking.check_store(uri)
        info = run_train(tmp_path, make_data(tmp_path), epochs=1)
    finally:
        undo()
    assert (tmp_path / "models" / "dense-f2s" / "model.keras").exists() and info["mlflow_run_id"] is None
    err = capsys.readouterr().err
    assert "Traceback" not in err and "sqlalchemy" not in err.lower() and "autoflush" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and "images/s here" not in line]  # not the time estimate
    # up front, one line naming the file and why; at the end the usual summary of what was not logged
    assert len(lines) == 2, err[-3000:]
    assert lines[0].startswith("warning: MLflow: dense-f2s is not logged") and f"{db} is read-only" in lines[0]
    assert lines[1].startswith("warning: MLflow: not logged for dense-f2s") and "the run; params" in lines[1]
    assert db.read_bytes() == before  # untouched


def test_store_lost_mid_run_stops_logging_and_lists_the_rest(tmp_path, monkeypatch, capsys):
    store_dir = tmp_path / "store"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store_dir / 'mlflow.db'}")
    # a new connection per call (SQLAlchemy's NullPool), as to a database server, so losing the file is seen
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    tracker = tracking.Tracker()
    assert tracker.start("facesketch", "conv-f2s", {})
    tracker.log_metrics({"loss": 0.7}, step=1)
    assert tracker.active and not tracker.not_logged

    moved = shutil.move(store_dir, tmp_path / "elsewhere")  # the store's disk went away
    tracker.log_metrics({"loss": 0.5}, step=2)
    assert not tracker.active  # given up on: later calls are not attempted
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.7\n")
    tracker.log_artifact(tmp_path / "history.csv", "history")
    tracker.end()
    err = capsys.readouterr().err
    assert tracker.not_logged == ["per-epoch metrics", "artifact history/history.csv",
                                  "the run's end (FINISHED; the next run of this experiment closes it)"]
    assert "lost the connection" in err and err.count("was not logged") == 1  # one failed call, not one per call

    shutil.move(moved, store_dir)  # back: what reached the store is there, nothing after the loss
    run = client(f"sqlite:///{store_dir / 'mlflow.db'}").get_run(tracker.run_id)
    assert run.info.status == "RUNNING" and run.data.metrics == {"loss": 0.7}


# --- a training that fails or is killed is never left RUNNING --------------------

@pytest.mark.parametrize("where", ["during fit", "after fit"])
def test_training_that_raises_is_marked_failed(where, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    if where == "during fit":
        make = fit._epoch_checkpoint_class

        def failing_class():
            class Failing(make()):
                def on_epoch_end(self, epoch, logs=None):
                    super().on_epoch_end(epoch, logs)
                    raise RuntimeError("boom")
            return Failing

        monkeypatch.setattr(fit, "_epoch_checkpoint_class", failing_class)
    else:
        def boom(model):
            raise RuntimeError("boom")

        monkeypatch.setattr(fit.registry, "predictor", boom)
    with pytest.raises(RuntimeError, match="boom"):
        run_train(tmp_path, make_data(tmp_path))
    runs = client(uri).search_runs([client(uri).get_experiment_by_name("facesketch").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    import mlflow
    assert mlflow.active_run() is None


# Far more epochs than can finish: the signal must always land mid-training (at 32 px, 200 epochs
# of the tiny dense model once finished before the SIGINT arrived on a busy machine).
TRAIN_SCRIPT = """
import sys; sys.path.insert(0, {tests!r})
from conftest import tiny_params
from facesketch.training.fit import train
train("dense", "f2s", tiny_params(epochs=100_000), processed_file={processed!r}, split_file={split!r},
      models_dir={root!r} + "/models", history_dir={root!r} + "/history", checkpoint_root={root!r} + "/ckpt",
      verbose=0)
"""


def start_training(root: Path, data, env) -> tuple[subprocess.Popen, Path]:
    script = TRAIN_SCRIPT.format(tests=str(REPO / "tests"), processed=str(data[0]), split=str(data[1]), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    state = root / "ckpt" / "dense-f2s" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and fileio.read_json(state).get("epochs_done", 0) >= 1:
            return proc, state
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"training did not get going: {proc.communicate()[1][-3000:]}")


def test_interrupted_training_is_killed_and_a_kill_9_is_closed_by_the_next_run(tmp_path, venv_env, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    venv_env["MLFLOW_TRACKING_URI"] = uri
    data = make_data(tmp_path)

    # SIGINT: what Ctrl-C and `dvc queue kill` send
    proc, state = start_training(tmp_path / "a", data, venv_env)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    interrupted = fileio.read_json(state)["run_id"]
    assert client(uri).get_run(interrupted).info.status == "KILLED", err[-2000:]

    # SIGKILL: nothing runs in the process; the next run of the experiment closes it
    proc, state = start_training(tmp_path / "b", data, venv_env)
    proc.kill()
    proc.wait()
    killed = fileio.read_json(state)["run_id"]
    assert client(uri).get_run(killed).info.status == "RUNNING"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = tracking.Tracker()
    tracker.start("facesketch", "conv-s2f", {})
    tracker.end()
    assert client(uri).get_run(killed).info.status == "KILLED"
    assert client(uri).get_run(tracker.run_id).info.status == "FINISHED"


PARALLEL_START = """
import contextlib, sys, time
from pathlib import Path
from facesketch import tracking
from facesketch.tracking import store

barrier, me, count, locked = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "lock"
real_lock = store.store_lock

@contextlib.contextmanager
def together(uri):
    # every process waits here until all are ready, then all open the new store at once:
    # the window MLflow's table creation leaves is hit every time, not by chance of start-up times
    (barrier / f"ready-{me}").touch()
    while len(list(barrier.glob("ready-*"))) < count:
        time.sleep(0.005)
    with (real_lock(uri) if locked else contextlib.nullcontext()):
        yield

store.store_lock = together
tracker = tracking.Tracker()
run_id = tracker.start("facesketch", "run-" + me, {})
tracker.end()
sys.exit(0 if run_id else 3)
"""


def start_together(tmp_path: Path, venv_env, *, locked: bool, count: int = 2) -> tuple[str, list[tuple[int, str]]]:
    """``count`` processes starting a run on one new store at the same moment: (uri, [(exit code, stderr)])."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    barrier = tmp_path / "barrier"
    barrier.mkdir(parents=True)
    env = {**venv_env, "MLFLOW_TRACKING_URI": uri}
    procs = [subprocess.Popen([sys.executable, "-c", PARALLEL_START, str(barrier), str(i), str(count),
                               "lock" if locked else "no-lock"], env=env, stderr=subprocess.PIPE, text=True)
             for i in range(count)]
    return uri, [(p.wait(timeout=300), p.stderr.read()) for p in procs]


def test_without_the_lock_experiments_starting_together_break_a_new_store(tmp_path, venv_env):
    """The race the lock exists for: shown to happen, so the test below shows the lock prevents it."""
    for attempt in range(3):  # the barrier makes it near certain; a few tries make the test steady
        _, results = start_together(tmp_path / f"try{attempt}", venv_env, locked=False)
        if any(rc for rc, _ in results):
            break
    failed = [err for rc, err in results if rc]
    assert failed, "two processes creating one store at once all succeeded without the lock in 3 tries"
    # MLflow's migrations collided: "table ... already exists", "duplicate column name", alembic's version row
    assert all("MLflow: run-" in err and "is not logged: the store" in err and "failed (" in err for err in failed), \
        [err[-1500:] for err in failed]


def test_experiments_starting_together_on_a_new_store_do_not_break_it(tmp_path, venv_env):
    """Two queued experiments training at once both create the store: MLflow's migrations must not overlap."""
    uri, results = start_together(tmp_path, venv_env, locked=True)
    assert all(rc == 0 for rc, _ in results), [err[-1500:] for _, err in results]
    runs = client(uri).search_runs([client(uri).get_experiment_by_name("facesketch").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["run-0", "run-1"]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_evaluate_binds_its_metrics_to_the_model_file_it_scored(logged):
    """#27: metrics/<model>-<task>.json names the sha256 of the model.keras it scored."""
    from facesketch.core import fileio
    from facesketch.core.saved import SCORED_MODEL_KEY, metrics_mismatch, model_sha256

    folder = logged.root / "models" / "dense-f2s"
    written = fileio.read_json(logged.root / "metrics" / "dense-f2s.json")
    assert written[SCORED_MODEL_KEY] == model_sha256(folder) and len(written[SCORED_MODEL_KEY]) == 64
    assert metrics_mismatch(written, folder, "metrics/dense-f2s.json") is None
    assert f"test_{SCORED_MODEL_KEY}" not in logged.client.get_run(logged.info["mlflow_run_id"]).data.metrics


def test_a_run_resumed_by_another_experiment_is_tagged_with_both(tmp_path, monkeypatch):
    """#27: experiment A is interrupted, experiment B (other params elsewhere, same training) resumes
    its checkpoint and so its MLflow run. Before, the run kept A's name and tags only."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "first-exp")
    monkeypatch.setenv("DVC_STAGE", "train@dense-f2s")
    a = tracking.Tracker()
    run_id = a.start("facesketch", "dense-f2s", {"model": "dense", "pipeline_run": "first-exp"})
    a.end("KILLED")
    monkeypatch.setenv("DVC_EXP_NAME", "second-exp")
    b = tracking.Tracker()
    assert b.start("facesketch", "dense-f2s", {"model": "dense", "pipeline_run": "second-exp"},
                   resume_run_id=run_id) == run_id and b.resumed
    b.end("FINISHED")
    run = client(uri).get_run(run_id)
    tags = run.data.tags
    assert run.info.run_name == "second-exp/dense-f2s" and tags["mlflow.runName"] == "second-exp/dense-f2s"
    assert tags["dvc_experiment"] == "second-exp" and tags["pipeline_run"] == "second-exp"
    assert tags["dvc_experiment_started"] == "first-exp" and tags["dvc_experiments"] == "first-exp,second-exp"


def test_ctrl_c_during_a_store_call_lands_after_the_call_completes(tmp_path, monkeypatch):
    """A SIGINT that arrives while a store call runs: the call completes (its write is whole), then
    training's handler raises. Raised inside SQLAlchemy, it printed SQLAlchemy's own traceback."""
    from facesketch.core.errors import Interrupted
    from facesketch.tracking.run import signals_held

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = tracking.Tracker()
    run_id = tracker.start("facesketch", "conv-f2s", {})
    store = client(uri)
    previous = signal.signal(signal.SIGINT, fit._raise_interrupted)  # what train() installs
    reached = []
    try:
        with pytest.raises(Interrupted):
            with signals_held():
                signal.raise_signal(signal.SIGINT)  # Ctrl-C, mid-call
                store.log_metric(run_id, "loss", 0.25, step=1)
                reached.append("after the write")
        assert signal.getsignal(signal.SIGINT) is fit._raise_interrupted  # training's handler is back
        with signals_held():  # no signal: nothing raised
            store.log_metric(run_id, "loss", 0.125, step=2)
    finally:
        signal.signal(signal.SIGINT, previous)
        tracker.end("KILLED")
    assert reached == ["after the write"]
    assert [m.value for m in store.get_metric_history(run_id, "loss")] == [0.25, 0.125]
