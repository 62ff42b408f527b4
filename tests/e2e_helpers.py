"""Shared helpers for the end-to-end tests: a temporary git + DVC project holding
this repo's pipeline, subprocess runs, and an `mlflow server` on loopback."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from conftest import REPO

MODELS = ["dense", "conv"]
EXPERIMENT = "facesketch"


def clean_env(venv_env: dict) -> dict:
    """The venv's environment without inherited DVC/MLflow settings, the MLflow client quick to fail."""
    env = {k: v for k, v in venv_env.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="30",
               MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")  # the server's background job workers: not needed
    return env


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    out = res.stdout + res.stderr
    if check and res.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{out[-4000:]}")
    return out


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_project(root: Path, env: dict, **param_overrides) -> Path:
    """A fresh git + DVC repo holding the project's pipeline definition and code."""
    proj = root / "proj"
    proj.mkdir()
    for item in ("dvc.yaml", "stages", "src", ".gitignore"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, proj / item,
                                                             **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(epochs=2, batch_size=8, image_size=32, models=MODELS)
    params["data"]["source"] = "synthetic"
    params["data"]["synthetic"]["count"] = 20
    params["split"]["protocol"] = "random"
    params["report"]["grid_pairs"] = 2
    for k, v in param_overrides.items():
        params[k] = v
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (proj / "data").mkdir(exist_ok=True)
    sh(["git", "init", "-q"], proj, env)
    sh(["dvc", "init", "-q"], proj, env)
    sh(["git", "add", "-A"], proj, env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], proj, env)
    return proj


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
