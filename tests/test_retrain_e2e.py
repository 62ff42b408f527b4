"""A model is retrained only when its arithmetic changes: `dvc status` in a trained workspace.

The real pipeline in a temporary git + DVC repo (one model, one task, 32 px, one epoch), then
each file touched (a comment appended) and restored in turn:
- the time estimate, the MLflow calls and the face detector leave every train stage up to date;
- the loss functions or a model module make train stale;
- the face-geometry code makes only the face_geometry stage stale (predict, which reads its
  output, is not a stage);
- a test-time lever (params.yaml test_time) re-runs that task's evaluate and the report only.
"""

from __future__ import annotations

import json

import pytest

from e2e_helpers import clean_env, make_project, sh, stages_run, store

pytestmark = pytest.mark.slow

COMMIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm"]
TRAIN, EVALUATE, BASELINES = "train@conv-f2s", "evaluate@conv-f2s", "baselines@f2s"


def test_only_arithmetic_retrains(tmp_path, venv_env):
    env = clean_env(venv_env)
    proj = make_project(tmp_path, env, epochs=1, models=["conv"], tasks=["f2s"])
    out = sh(["dvc", "repro"], proj, env)
    assert {"face_geometry", TRAIN, EVALUATE, BASELINES, "report"} <= stages_run(out), out[-3000:]
    geometry = json.loads((proj / "data" / "faces" / "geometry.json").read_text())
    assert geometry["source"] == "default" and "32 px, too small to measure" in geometry["note"]
    assert "face_geometry" not in json.loads((proj / "models" / "conv-f2s" / "info.json").read_text())
    sh(["git", "add", "-A"], proj, env)
    sh([*COMMIT, "trained"], proj, env)

    def stale() -> set[str]:
        return set(json.loads(sh(["dvc", "status", "--json"], proj, env) or "{}"))

    def stale_after_touching(rel: str) -> set[str]:
        path = proj / "src" / "facesketch" / rel
        original = path.read_text()
        path.write_text(original + "\n# touched\n")
        try:
            return stale()
        finally:
            path.write_text(original)

    assert stale() == set()
    # code that only observes training: no train stage (the scoring stages record MLflow runs too)
    assert stale_after_touching("training/estimate.py") == set()
    assert stale_after_touching("training/flops.py") == set()
    assert stale_after_touching("tracking/run.py") == {EVALUATE, BASELINES}
    assert stale_after_touching("faces/detect.py") == {"face_geometry"}
    # training's arithmetic (check_params checks the loss and model settings; the report names them)
    assert stale_after_touching("training/losses.py") == {"check_params", TRAIN, "report"}
    assert stale_after_touching("models/conv.py") == {"check_params", TRAIN, "report"}
    assert TRAIN in stale_after_touching("training/fit.py")
    # the face-geometry code: its stage alone
    assert stale_after_touching("faces/measure.py") == {"face_geometry"}
    assert stale_after_touching("faces/geometry.py") == {"face_geometry"}
    assert stale() == set()

    # a test-time lever changes what is scored, not what is learnt: that task's evaluate and the
    # report run again, nothing is retrained, and the scores and the report say which lever
    before = json.loads((proj / "metrics" / "conv-f2s.json").read_text())
    out = sh(["dvc", "exp", "run", "-S", "test_time.f2s.mirror=true"], proj, env)
    assert stages_run(out) == {"check_params", EVALUATE, "report"}, out[-3000:]
    after = json.loads((proj / "metrics" / "conv-f2s.json").read_text())
    assert "test_time" not in before and after["test_time"] == "mirror"
    assert after["mae"] != before["mae"] and after["model_sha256"] == before["model_sha256"]
    assert "Scored with test-time levers" in (proj / "reports" / "report.md").read_text()
    client, _ = store(proj)  # and the model's MLflow run is tagged with it
    run_id = json.loads((proj / "models" / "conv-f2s" / "info.json").read_text())["mlflow_run_id"]
    assert client.get_run(run_id).data.tags["test_time"] == "mirror"
