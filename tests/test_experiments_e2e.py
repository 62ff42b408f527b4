"""Queued DVC experiments land in the repo's one MLflow store.

Two queued experiments (`dvc exp run --queue`, `dvc queue start -j 2`), which
run in temporary copies of the repo, both land in the repo's store, tagged
with their experiment, their metrics those of `dvc exp show`. (A workspace
`dvc exp run`, the server's REST API and `mlflow models predict` are checked
in test_pipeline_e2e.)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from e2e_helpers import clean_env, experiments, make_project, numeric, sh, store

pytestmark = pytest.mark.slow


def tiny_project(tmp_path: Path, env: dict, models: list[str], tasks: list[str]) -> Path:
    proj = make_project(tmp_path, env, epochs=1, models=models, tasks=tasks)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"]["synthetic"]["count"] = 16
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "tiny"], proj, env)
    return proj


@pytest.fixture
def env(venv_env) -> dict:
    return clean_env(venv_env)


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
