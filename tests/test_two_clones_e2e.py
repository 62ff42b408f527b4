"""Experiments shared across machines (docs/distributed.md), end to end on one machine (#27):
two clones of one git repo, a DVC remote in a local folder, one MLflow server on 127.0.0.1.

- clone A runs an experiment and `dvc exp push`es it (git refs + cached outputs);
- clone B `dvc exp pull`s it and shows the same metrics, and applying it needs no retraining
  (`dvc repro` then runs nothing: the outputs come from the remote's cache);
- both log to the one server, each run under its own experiment's name;
- a run in B while the server is stopped still finishes and says what was not logged.
Tiny: 1 model, 1 task, 32 px, 1 epoch.
"""

from __future__ import annotations

import time

import pytest
import yaml

from e2e_helpers import (clean_env, experiments, make_project, numeric, rest_runs, sh, stages_run, start_server,
                         stop_server)

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def test_two_clones_share_experiments_through_a_dvc_remote_and_one_mlflow_server(tmp_path, venv_env):
    t_start = time.time()
    env = clean_env(venv_env)
    (tmp_path / "a").mkdir()
    a = make_project(tmp_path / "a", env, epochs=1, models=["dense"], tasks=["f2s"])
    params = yaml.safe_load((a / "params.yaml").read_text())
    params["data"]["synthetic"]["count"] = 16
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    origin, remote = tmp_path / "origin.git", tmp_path / "dvc-remote"
    sh(["git", "init", "-q", "--bare", str(origin)], tmp_path, env)
    sh(["dvc", "remote", "add", "-d", "shared", str(remote)], a, env)
    sh([*GIT, "commit", "-qam", "tiny; a DVC remote every clone reaches"], a, env)
    sh(["git", "remote", "add", "origin", str(origin)], a, env)
    sh(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], a, env)
    sh(["git", "--git-dir", str(origin), "symbolic-ref", "HEAD", "refs/heads/main"], tmp_path, env)

    server, url = start_server(tmp_path / "mlflow.db", tmp_path, env)
    logged = {**env, "MLFLOW_TRACKING_URI": url}
    try:
        # clone A: an experiment, pushed
        out = sh(["dvc", "exp", "run", "-n", "exp-a", "-S", "optimizer=sgd"], a, logged)
        assert "train@dense-f2s" in stages_run(out), out[-3000:]
        sh(["dvc", "exp", "push", "origin", "exp-a"], a, env)
        metrics_a = numeric(experiments(a, env)["exp-a"]["metrics"]["dense-f2s"])
        assert metrics_a

        # clone B: pulls it, sees the same metrics, applies it without retraining
        sh(["git", "clone", "-q", str(origin), str(tmp_path / "b")], tmp_path, env)
        b = tmp_path / "b"
        sh(["dvc", "exp", "pull", "origin", "exp-a"], b, env)
        shown = experiments(b, env)
        assert numeric(shown["exp-a"]["metrics"]["dense-f2s"]) == metrics_a
        assert shown["exp-a"]["params"]["optimizer"] == "sgd"
        sh(["dvc", "exp", "apply", "exp-a"], b, env)
        assert (b / "models/dense-f2s/model.keras").exists()  # from the remote's cache
        out = sh(["dvc", "repro"], b, logged)
        assert stages_run(out) == set(), out[-3000:]  # nothing retrained, nothing re-evaluated
        sh(["git", "checkout", "-q", "--", "."], b, env)  # back to the baseline's params

        # clone B's own experiment, on the same server under its own name
        out = sh(["dvc", "exp", "run", "-n", "exp-b", "-S", "optimizer=rmsprop"], b, logged)
        assert "train@dense-f2s" in stages_run(out), out[-3000:]
        names = sorted(r["tags"]["mlflow.runName"] for r in rest_runs(url, "tags.model = 'dense'"))
        assert names == ["exp-a/dense-f2s", "exp-b/dense-f2s"], names
        by_exp = {r["tags"]["dvc_experiment"]: r for r in rest_runs(url, "tags.model = 'dense'")}
        assert by_exp["exp-a"]["params"]["optimizer"] == "sgd" and by_exp["exp-b"]["params"]["optimizer"] == "rmsprop"
        assert by_exp["exp-a"]["metrics"]["test_ssim"] == pytest.approx(metrics_a["ssim"])
    finally:
        stop_server(server)

    # the server is down: B's next run still finishes, and says what was not logged
    out = sh(["dvc", "exp", "run", "-n", "exp-c", "-S", "optimizer=adam", "-S", "learning_rate=0.002"], b, logged)
    assert "train@dense-f2s" in stages_run(out), out[-3000:]
    assert "is not logged" in out, out[-3000:]
    assert "exp-c" in experiments(b, env)
    assert (b / "models/dense-f2s/model.keras").exists()
    print(f"two clones end to end: {time.time() - t_start:.0f} s")
