"""Two `dvc exp run` at once in one workspace (#27): the second is refused before it touches
anything, pointing at `dvc exp run --queue` and `dvc queue start`; the first finishes with its
params, and no stash entry is left for the next run to pick up.

Before the guard in core/stage.py, the second run stashed the workspace under the first: both
failed inside DVC (git index.lock, "Could not apply stash commit"), params.yaml went back to
HEAD and the next `dvc exp run` silently ran the leftover entry too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from e2e_helpers import clean_env, make_project, sh
from facesketch.core.stage import GUARD_MARK

pytestmark = pytest.mark.slow


def _guard_entry(proj: Path) -> dict | None:
    try:
        lock = json.loads((proj / ".dvc/tmp/exps/rwlock").read_text())
    except (FileNotFoundError, ValueError):
        return None
    entry = (lock.get("write") or {}).get("workspace")
    return entry if entry and GUARD_MARK in entry["cmd"] else None  # not DVC's own short-lived entry


def test_second_exp_run_in_the_workspace_is_refused(tmp_path, venv_env):
    env = clean_env(venv_env)
    proj = make_project(tmp_path, env, epochs=1, models=["dense"], tasks=["f2s", "s2f"])
    first = subprocess.Popen(["dvc", "exp", "run", "-S", "epochs=3", "train@dense-f2s"], cwd=proj, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while _guard_entry(proj) is None and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert first.poll() is None, f"the first run ended before it could be overlapped:\n{first.stdout.read()}"
        assert _guard_entry(proj) is not None, "no stage registered the workspace guard"
        res = subprocess.run(["dvc", "exp", "run", "-S", "epochs=4", "train@dense-s2f"], cwd=proj, env=env,
                             capture_output=True, text=True, timeout=300)
        second = res.stdout + res.stderr
        assert res.returncode != 0, second
        assert "dvc exp run --queue" in second and "dvc queue start" in second, second
        assert "Nothing was changed" in second, second
        assert "Running stage" not in second, second
        out, _ = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, out[-4000:]
    # the first experiment is whole: its params in the workspace and in `dvc exp show`
    assert yaml.safe_load((proj / "params.yaml").read_text())["epochs"] == 3
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], proj, env))
    epochs = [rev["data"]["params"]["params.yaml"]["data"]["epochs"]
              for base in shown for exp in base.get("experiments") or [] for rev in exp["revs"]]
    assert epochs == [3], shown
    assert (proj / "models/dense-f2s").is_dir()
    # no leftover stash entry, so the next plain run does not run a second experiment behind your back
    assert sh(["git", "stash", "list"], proj, env).strip() == ""
    assert sh(["git", "for-each-ref", "refs/exps/stash"], proj, env).strip() == ""
    # the guard went with the first run: another experiment now runs
    deadline = time.time() + 10
    while _guard_entry(proj) is not None and time.time() < deadline:
        time.sleep(0.1)
    assert _guard_entry(proj) is None


def test_a_stranded_workspace_stash_entry_is_not_run_silently(tmp_path, venv_env):
    """What a second run that slipped in (before the first's first stage) leaves: an entry in
    DVC's workspace stash. Before, the next plain `dvc exp run` ran it too, silently, after the
    user's experiment. Now the first stage stops with the entries and how to drop them."""
    env = clean_env(venv_env)
    proj = make_project(tmp_path, env, epochs=1, models=["dense"], tasks=["f2s"])
    # the first step of `dvc exp run -S epochs=3`, as a run stopped right after it leaves it
    stash = ("from dvc.repo import Repo\n"
             "Repo('.').experiments.workspace_queue.put(params={'params.yaml': ['epochs=3']}, targets=None)\n")
    sh([sys.executable, "-c", stash], proj, env)
    assert sh(["git", "log", "-g", "--format=%h", "refs/exps/stash"], proj, env).strip()
    res = subprocess.run(["dvc", "exp", "run", "-S", "epochs=2", "train@dense-f2s"], cwd=proj, env=env,
                         capture_output=True, text=True, timeout=900)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "workspace stash holds 1 experiment(s) left by an earlier `dvc exp run`" in out, out[-3000:]
    assert "git update-ref -d refs/exps/stash" in out, out[-3000:]
    assert "Running stage 'train@dense-f2s'" not in out, out[-3000:]
    sh(["git", "update-ref", "-d", "refs/exps/stash"], proj, env)  # the recovery the message gives
    sh(["git", "checkout", "--", "params.yaml"], proj, env)
    out = sh(["dvc", "exp", "run", "-S", "epochs=2", "train@dense-f2s"], proj, env)
    assert out.count("Reproducing experiment") == 1, out[-3000:]
