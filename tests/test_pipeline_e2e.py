"""The real DVC pipeline in a temporary git repo, on tiny settings.

Runs `dvc repro`, checks every output and MLflow run, then that nothing
re-runs, and that `dvc exp run -S optimizer=rmsprop` re-runs only
train/evaluate/report and `dvc metrics diff` compares the two.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow

MODELS = ["dense", "conv"]
TASKS = ["f2s", "s2f"]


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


def test_pipeline_end_to_end(tmp_path, venv_env):
    proj = make_project(tmp_path, venv_env)

    out = sh(["dvc", "repro"], proj, venv_env)
    ran = stages_run(out)
    expected = {"fetch", "preprocess", "split", "report"} | {f"train@{m}-{t}" for m in MODELS for t in TASKS} \
        | {f"evaluate@{m}-{t}" for m in MODELS for t in TASKS} | {f"baselines@{t}" for t in TASKS}
    assert expected <= ran, ran

    import json
    for m in MODELS:
        for t in TASKS:
            metrics = json.loads((proj / "metrics" / f"{m}-{t}.json").read_text())
            assert 0 < metrics["mae"] < 1 and 0 < metrics["ssim"] <= 1 and metrics["psnr"] > 0
            assert (proj / "metrics" / "history" / f"{m}-{t}.csv").exists()
    report = (proj / "reports" / "report.md").read_text()
    for m in MODELS:
        assert f"**{m}**" in report
    assert (proj / "reports" / "grid.png").stat().st_size > 1000

    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("facesketch")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["mlflow.runName"] for r in runs) == sorted(f"{m}-{t}" for m in MODELS for t in TASKS)
    assert all(r.info.status == "FINISHED" and "test_ssim" in r.data.metrics for r in runs)

    # nothing changed: nothing runs
    sh(["git", "add", "-A"], proj, venv_env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline run"], proj, venv_env)
    assert stages_run(sh(["dvc", "repro"], proj, venv_env)) == set()

    # an optimizer change re-runs training and what follows, nothing before it
    out = sh(["dvc", "exp", "run", "-S", "optimizer=rmsprop"], proj, venv_env)
    ran = stages_run(out)
    assert {s.split("@")[0] for s in ran} == {"train", "evaluate", "report"}, ran

    diff = sh(["dvc", "metrics", "diff"], proj, venv_env)
    for m in MODELS:
        for t in TASKS:
            assert f"metrics/{m}-{t}.json" in diff
    for col in ("mae", "psnr", "ssim"):
        assert re.search(rf"\b{col}\b", diff)
    runs = client.search_runs([exp.experiment_id], "params.optimizer = 'rmsprop'")
    assert len(runs) == len(MODELS) * len(TASKS)
