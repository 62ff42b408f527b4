"""DVC experiments and MLflow tell the same story, in a temporary git repo on tiny settings.

- `dvc exp run -S optimizer=rmsprop`: the repo's store holds, for every
  model x task, a run with optimizer=rmsprop, tagged with the experiment, whose
  metrics are those in metrics/*.json; an `mlflow server` on that store returns
  them through its REST API, and `mlflow models predict` runs a logged model.
- Two queued experiments (`dvc exp run --queue`, `dvc queue start -j 2`), which
  run in temporary copies of the repo, both land in the repo's one store.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from test_pipeline_e2e import make_project, sh

pytestmark = pytest.mark.slow

TASKS = ["f2s", "s2f"]
EXPERIMENT = "facesketch"


def tiny_project(tmp_path: Path, env: dict, models: list[str], tasks: list[str] = TASKS) -> Path:
    proj = make_project(tmp_path, env, epochs=1, models=models, tasks=tasks)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"]["synthetic"]["count"] = 16
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "tiny"], proj, env)
    return proj


@pytest.fixture
def env(venv_env) -> dict:
    env = {k: v for k, v in venv_env.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="30",
               MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")  # the server's background job workers: not needed
    return env


def store(proj: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{proj / 'mlflow.db'}")
    return client, client.get_experiment_by_name(EXPERIMENT)


def experiments(proj: Path, env: dict) -> dict[str, dict]:
    """`dvc exp show --json`: {experiment name: {"params": ..., "metrics": {"conv-f2s": {...}}}}."""
    out = {}
    for baseline in json.loads(sh(["dvc", "exp", "show", "--json"], proj, env)):
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                metrics = {Path(f).stem: m["data"] for f, m in data["metrics"].items() if f.startswith("metrics/")}
                out[rev["name"]] = {"params": data["params"]["params.yaml"]["data"], "metrics": metrics}
    return out


def numeric(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def mlflow_test_metrics(run) -> dict:
    return {k[len("test_"):]: v for k, v in run["metrics"].items() if k.startswith("test_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"}, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def start_server(db: Path, cwd: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["mlflow", "server", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise AssertionError("mlflow server did not become healthy in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: its own session
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rest_runs(url: str, filter_string: str) -> list[dict]:
    exp = http_json(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name={EXPERIMENT}")["experiment"]
    found = http_json(f"{url}/api/2.0/mlflow/runs/search",
                      {"experiment_ids": [exp["experiment_id"]], "filter": filter_string, "max_results": 100})
    runs = []
    for r in found.get("runs", []):
        data = r["data"]
        runs.append({"info": r["info"], "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
                     "params": {p["key"]: p["value"] for p in data.get("params", [])},
                     "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])}})
    return runs


def test_exp_run_lands_in_the_store_and_a_server_returns_it(tmp_path, env):
    models = ["conv"]
    proj = tiny_project(tmp_path, env, models)
    head = sh(["git", "rev-parse", "HEAD"], proj, env).strip()
    t0 = time.time()
    sh(["dvc", "exp", "run", "-S", "optimizer=rmsprop"], proj, env)
    print(f"dvc exp run: {time.time() - t0:.0f} s")

    exps = experiments(proj, env)
    assert len(exps) == 1, exps
    name, dvc_exp = next(iter(exps.items()))  # the name DVC made up
    assert dvc_exp["params"]["optimizer"] == "rmsprop"
    on_disk = {f"{m}-{t}": json.loads((proj / "metrics" / f"{m}-{t}.json").read_text()) for m in models for t in TASKS}
    for key, metrics in on_disk.items():
        assert numeric(dvc_exp["metrics"][key]) == numeric(metrics)  # `dvc exp show` = metrics/*.json

    # the store at the repo root, read directly
    client, exp = store(proj)
    runs = client.search_runs([exp.experiment_id], "params.optimizer = 'rmsprop'")
    assert sorted((r.data.tags["model"], r.data.tags["task"]) for r in runs) == sorted(
        (m, t) for m in models for t in TASKS)
    for r in runs:
        key = f"{r.data.tags['model']}-{r.data.tags['task']}"
        assert r.info.status == "FINISHED"
        assert r.data.tags["dvc_experiment"] == name and r.data.tags["pipeline_run"] == name
        assert r.data.tags["git_commit"] == head and r.data.tags["data_source"] == "synthetic"
        assert r.data.tags["mlflow.runName"] == f"{name}/{key}"
        assert {f"test_{k}": v for k, v in numeric(on_disk[key]).items()} == \
            {k: v for k, v in r.data.metrics.items() if k.startswith("test_")}
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")] == [1]
        assert r.info.artifact_uri.startswith((proj / "mlruns").as_uri())
        assert {"test_samples.png", "history", "per_image"} <= {a.path for a in client.list_artifacts(r.info.run_id)}

    # the same runs through a tracking server's REST API
    t0 = time.time()
    server, url = start_server(proj / "mlflow.db", tmp_path, env)
    print(f"mlflow server up: {time.time() - t0:.0f} s")
    try:
        rest = rest_runs(url, f"params.optimizer = 'rmsprop' and tags.pipeline_run = '{name}'")
        assert len(rest) == len(models) * len(TASKS)
        for r in rest:
            key = f"{r['tags']['model']}-{r['tags']['task']}"
            assert r["params"]["optimizer"] == "rmsprop" and r["info"]["status"] == "FINISHED"
            assert mlflow_test_metrics(r) == numeric(on_disk[key])

        # `mlflow models predict` runs a logged model (found through the server) on an image array
        run_id = next(r["info"]["run_id"] for r in rest if r["tags"]["model"] == "conv" and r["tags"]["task"] == "f2s")
        x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
        (tmp_path / "input.json").write_text(json.dumps({"inputs": x.tolist()}))
        t0 = time.time()
        sh(["mlflow", "models", "predict", "-m", f"runs:/{run_id}/model", "-i", str(tmp_path / "input.json"),
            "-o", str(tmp_path / "output.json"), "--env-manager", "local"], tmp_path,
           {**env, "MLFLOW_TRACKING_URI": url})
        print(f"mlflow models predict: {time.time() - t0:.0f} s")
        pred = np.asarray(json.loads((tmp_path / "output.json").read_text())["predictions"])
        assert pred.shape == (2, 32, 32, 3) and 0 <= pred.min() and pred.max() <= 1
    finally:
        stop_server(server)


def queue_status(proj: Path, env: dict) -> dict[str, str]:
    out = sh(["dvc", "queue", "status"], proj, env)
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and re.fullmatch(r"[0-9a-f]{7}", parts[0]):
            rows[parts[1]] = parts[-1]
    return rows


def test_queued_experiments_land_in_the_repo_store(tmp_path, env):
    tasks = ["f2s"]  # one model x one task per experiment: the point is the queue
    proj = tiny_project(tmp_path, env, ["conv"], tasks)
    # the data stages once, committed: the queued copies take their outputs from the cache
    t0 = time.time()
    sh(["dvc", "repro", "split"], proj, env)
    sh(["git", "add", "-A"], proj, env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data"], proj, env)
    print(f"data stages: {time.time() - t0:.0f} s")
    for opt in ("sgd", "rmsprop"):
        sh(["dvc", "exp", "run", "--queue", "-S", f"optimizer={opt}"], proj, env)
    t0 = time.time()
    sh(["dvc", "queue", "start", "-j", "2"], proj, env)
    status: dict[str, str] = {}
    try:
        deadline = time.time() + 480
        while time.time() < deadline:
            status = queue_status(proj, env)
            if len(status) == 2 and not {"Queued", "Running"} & set(status.values()):
                break
            time.sleep(3)
        print(f"queue: {time.time() - t0:.0f} s")
    finally:
        if {"Queued", "Running"} & set(status.values()) or len(status) < 2:
            sh(["dvc", "queue", "kill", *status], proj, env, check=False)
            sh(["dvc", "queue", "stop"], proj, env, check=False)
    if set(status.values()) != {"Success"}:
        logs = "\n".join(sh(["dvc", "queue", "logs", n], proj, env, check=False)[-3000:] for n in status)
        raise AssertionError(f"queue: {status}\n{logs}")

    exps = experiments(proj, env)
    assert set(exps) == set(status)
    by_optimizer = {e["params"]["optimizer"]: (n, e) for n, e in exps.items()}
    assert set(by_optimizer) == {"sgd", "rmsprop"}

    client, exp = store(proj)  # the repo's store: the temporary copies are gone
    assert not (proj / ".dvc" / "tmp" / "exps" / "mlflow.db").exists()
    for opt, (name, dvc_exp) in by_optimizer.items():
        runs = client.search_runs([exp.experiment_id], f"tags.dvc_experiment = '{name}'")
        assert sorted(r.data.tags["task"] for r in runs) == tasks, [r.data.tags for r in runs]
        for r in runs:
            assert r.info.status == "FINISHED" and r.data.params["optimizer"] == opt
            assert r.data.tags["pipeline_run"] == name and r.data.tags["model"] == "conv"
            key = f"conv-{r.data.tags['task']}"
            assert {k: r.data.metrics[f"test_{k}"] for k in numeric(dvc_exp["metrics"][key])} == \
                numeric(dvc_exp["metrics"][key])  # MLflow = `dvc exp show`
            assert r.info.artifact_uri.startswith((proj / "mlruns").as_uri())
            local = Path(r.info.artifact_uri[len("file://"):])
            assert (local / "history" / f"{key}.csv").exists() and (local / "test_samples.png").exists()
    assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
