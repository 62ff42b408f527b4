"""A rejected param costs nothing: real DVC in a temporary git repo, as a user drives it.

After a trained `dvc repro`, every bad `dvc exp run -S` setting (optimizer, loss, epochs,
batch_size, a misspelt model in `models`, a misspelt key added with `+`, a
bound in data.cuhk, and the models' own settings, also of a model the matrix
does not train) is refused by check_params with our message naming the key
and the valid values (several bad values in one run: each named in its own
line), before DVC deletes any stage's outputs: with
params.yaml restored, `dvc status` reports nothing changed (no `dvc checkout`
needed), the model and its loss history are the same bytes, and `dvc repro`
retrains nothing nor logs another MLflow run. (DVC itself refuses `-S` of a
key params.yaml lacks, ``-S epoch=3``, unless it is added with ``+``.)
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from e2e_helpers import clean_env, make_project, sh, stages_run, store

pytestmark = pytest.mark.slow

UP_TO_DATE = "Data and pipelines are up to date."

BAD = [
    ("optimizer=adamw", "optimizer='adamw' is not valid; expected one of: adam, sgd, rmsprop"),
    ("loss=l1", "loss='l1' is not valid; expected one of: mae, bce, mse"),
    ("epochs=0", "epochs=0 is not valid; expected >= 1"),
    ("batch_size=-1", "batch_size=-1 is not valid; expected >= 1"),
    ("models=[dense,nope]", "models: unknown model 'nope'; expected a list of one or more of: dense, conv"),
    ("+ssim_wieght=1", "ssim_wieght is not a known setting; did you mean ssim_weight?"),
    ("data.cuhk.retries=-1", "data.cuhk.retries=-1 is not valid; expected >= 0"),
    # the models' own settings: checked up front too, not in the train stage
    ("dense.size=100", "dense.size=100 is not valid; expected a multiple of 8, at least 8"),
    ("unet_gan.norm=foo", "unet_gan.norm='foo' is not valid; expected one of: batch, instance, group, none"),
]


# One `dvc exp run` per group (each costs DVC's start-up and a `dvc status`): the values of keys
# params.yaml has go together; a misspelt model changes the matrix and a new key needs `+`, so
# each goes alone.
TOGETHER = [[b for b in BAD if not b[0].startswith(("models=", "+"))],
            *[[b] for b in BAD if b[0].startswith(("models=", "+"))]]


def digests(proj: Path) -> dict[str, str]:
    """Every file the train stage wrote, by content."""
    files = sorted((proj / "models").rglob("*")) + sorted((proj / "metrics" / "history").glob("*.csv"))
    return {str(f.relative_to(proj)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def test_a_rejected_param_loses_and_retrains_nothing(tmp_path, venv_env):
    env = clean_env(venv_env)
    proj = make_project(tmp_path, env, epochs=1, models=["dense"], tasks=["f2s"])
    sh(["dvc", "repro"], proj, env)
    sh(["git", "add", "-A"], proj, env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "trained"], proj, env)
    trained = digests(proj)
    assert "models/dense-f2s/model.keras" in trained and "metrics/history/dense-f2s.csv" in trained
    client, exp = store(proj)
    assert len(client.search_runs([exp.experiment_id])) == 1

    for group in TOGETHER:
        overrides = [arg for override, _ in group for arg in ("-S", override)]
        res = subprocess.run(["dvc", "exp", "run", *overrides], cwd=proj, env=env, capture_output=True,
                             text=True, timeout=600)
        out = res.stdout + res.stderr
        override = " ".join(overrides)
        assert res.returncode != 0, out[-3000:]
        for _, message in group:  # check_params names every bad setting at once, each in its own line
            assert f"params.yaml: {message}" in out, out[-3000:]
        assert "Parameters 'nope' are missing" not in out
        assert stages_run(out) == {"check_params"}, out[-3000:]  # no stage that writes outputs started
        sh(["git", "checkout", "params.yaml"], proj, env)
        assert sh(["dvc", "status"], proj, env).strip() == UP_TO_DATE, override
        assert digests(proj) == trained, override

    assert sh(["git", "status", "--porcelain"], proj, env).strip() == ""
    out = sh(["dvc", "repro"], proj, env)
    assert stages_run(out) == set() and UP_TO_DATE in out, out[-3000:]
    assert len(client.search_runs([exp.experiment_id])) == 1  # no duplicate MLflow run

