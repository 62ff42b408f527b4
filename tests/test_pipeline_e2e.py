"""The real DVC pipeline in a temporary git repo, on tiny settings, as a user drives it.

One project, one story (each stage starts TensorFlow, so runs are shared):
- `dvc repro`: every stage runs; metrics for every model x task, the report
  (checked cell by cell against the metrics), the grid, one FINISHED MLflow
  run per model x task; `dvc plots show` draws loss and val_loss per history.
- a second `dvc repro` runs nothing;
- `dvc exp run -S optimizer=rmsprop` re-runs only (check_params and) train/evaluate/report;
  `dvc metrics diff` shows mae/psnr/ssim; `dvc exp show` = metrics/*.json =
  the MLflow runs tagged with the experiment; an `mlflow server` on the
  repo's store returns them over REST, and `mlflow models predict` runs a
  logged model.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

import facesketch

from e2e_helpers import (MODELS, clean_env, experiments, make_project, mlflow_test_metrics, numeric, rest_runs, sh,
                         stages_run, start_server, stop_server, store)
from test_report import check_report

pytestmark = pytest.mark.slow

TASKS = list(facesketch.TASKS)
EPOCHS = 2
COMMIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm"]


def test_pipeline_end_to_end(tmp_path, venv_env):
    env = clean_env(venv_env)
    proj = make_project(tmp_path, env, epochs=EPOCHS)

    out = sh(["dvc", "repro"], proj, env)
    expected = {"check_params", "fetch", "preprocess", "split", "report"} | {f"train@{m}-{t}" for m in MODELS for t in TASKS} \
        | {f"evaluate@{m}-{t}" for m in MODELS for t in TASKS} | {f"baselines@{t}" for t in TASKS}
    assert expected <= stages_run(out), out[-3000:]

    for m in MODELS:
        for t in TASKS:
            metrics = json.loads((proj / "metrics" / f"{m}-{t}.json").read_text())
            assert 0 < metrics["mae"] < 1 and 0 < metrics["ssim"] <= 1 and metrics["psnr"] > 0
    check_report(proj / "reports", proj / "metrics", MODELS, TASKS)
    assert (proj / "reports" / "grid.png").stat().st_size > 1000

    client, exp = store(proj)
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["mlflow.runName"] for r in runs) == sorted(f"{m}-{t}" for m in MODELS for t in TASKS)
    assert all(r.info.status == "FINISHED" and "test_ssim" in r.data.metrics for r in runs)

    # `dvc plots show`: one chart per history file (a stage-level plot as well would add a second), both curves
    sh(["dvc", "plots", "show"], proj, env)
    index = (proj / "dvc_plots" / "index.html").read_text()
    specs = [json.loads(s) for s in re.findall(r"var spec = (\{.*?\});\s*vegaEmbed", index, re.S)]
    assert sorted(s["title"]["text"] for s in specs) == sorted(f"metrics/history/{m}-{t}.csv"
                                                               for m in MODELS for t in TASKS)
    for spec in specs:
        assert {v["field"] for v in spec["data"]["values"]} == {"loss", "val_loss"}
        assert {v["epoch"] for v in spec["data"]["values"]} == {str(e + 1) for e in range(EPOCHS)}

    # nothing changed: nothing runs
    sh(["git", "add", "-A"], proj, env)
    sh([*COMMIT, "baseline run"], proj, env)
    head = sh(["git", "rev-parse", "HEAD"], proj, env).strip()
    assert stages_run(sh(["dvc", "repro"], proj, env)) == set()

    # code is a dependency too: the data loader's change makes training and evaluation stale,
    # the report's only the report (dvc status lists the stages whose own deps changed)
    def stale_after_touching(rel: str) -> set[str]:
        path = proj / rel
        original = path.read_text()
        path.write_text(original + "\n# touched\n")
        try:
            out = sh(["dvc", "status"], proj, env)
        finally:
            path.write_text(original)
        return {line.rstrip(":").strip() for line in out.splitlines() if line.rstrip().endswith(":")
                and not line.startswith((" ", "\t"))}

    loader = stale_after_touching("src/facesketch/data/dataset.py")
    assert {f"train@{m}-{t}" for m in MODELS for t in TASKS} <= loader, loader
    assert {f"evaluate@{m}-{t}" for m in MODELS for t in TASKS} <= loader, loader
    assert stale_after_touching("src/facesketch/report/charts.py") == {"report"}
    assert stages_run(sh(["dvc", "repro"], proj, env)) == set()  # restored: nothing stale

    # an optimizer change re-runs training and what follows, nothing before it (check_params, which
    # checks any changed param first, runs too: its output is the same text, so it re-runs nothing)
    t0 = time.time()
    ran = stages_run(sh(["dvc", "exp", "run", "-S", "optimizer=rmsprop"], proj, env))
    print(f"dvc exp run: {time.time() - t0:.0f} s")
    assert {s.split("@")[0] for s in ran} == {"check_params", "train", "evaluate", "report"}, ran

    diff = sh(["dvc", "metrics", "diff"], proj, env)
    for m in MODELS:
        for t in TASKS:
            assert f"metrics/{m}-{t}.json" in diff
    for col in ("mae", "psnr", "ssim"):
        assert re.search(rf"\b{col}\b", diff)

    # DVC's experiment, metrics/*.json and MLflow tell the same story
    exps = experiments(proj, env)
    assert len(exps) == 1, exps
    name, dvc_exp = next(iter(exps.items()))  # the name DVC made up
    assert dvc_exp["params"]["optimizer"] == "rmsprop"
    on_disk = {f"{m}-{t}": json.loads((proj / "metrics" / f"{m}-{t}.json").read_text()) for m in MODELS for t in TASKS}
    for key, metrics in on_disk.items():
        assert numeric(dvc_exp["metrics"][key]) == numeric(metrics)

    runs = client.search_runs([exp.experiment_id], "params.optimizer = 'rmsprop'")
    assert sorted((r.data.tags["model"], r.data.tags["task"]) for r in runs) == sorted(
        (m, t) for m in MODELS for t in TASKS)
    for r in runs:
        key = f"{r.data.tags['model']}-{r.data.tags['task']}"
        assert r.info.status == "FINISHED"
        assert r.data.tags["dvc_experiment"] == name and r.data.tags["pipeline_run"] == name
        assert r.data.tags["git_commit"] == head and r.data.tags["data_source"] == "synthetic"
        assert r.data.tags["mlflow.runName"] == f"{name}/{key}"
        assert {f"test_{k}": v for k, v in numeric(on_disk[key]).items()} == \
            {k: v for k, v in r.data.metrics.items() if k.startswith("test_")}
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")] == list(range(1, EPOCHS + 1))
        assert r.info.artifact_uri.startswith((proj / "mlruns").as_uri())
        assert {"test_samples.png", "history", "per_image"} <= {a.path for a in client.list_artifacts(r.info.run_id)}

    # the same runs through a tracking server's REST API
    t0 = time.time()
    server, url = start_server(proj / "mlflow.db", tmp_path, env)
    print(f"mlflow server up: {time.time() - t0:.0f} s")
    try:
        rest = rest_runs(url, f"params.optimizer = 'rmsprop' and tags.pipeline_run = '{name}'")
        assert len(rest) == len(MODELS) * len(TASKS)
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
