"""A failed `fetch` under DVC (#27): DVC deletes data/raw before the stage runs, so a failure
leaves it missing. The message says so, that nothing is lost, and how it comes back; both ways
it names are checked here for real."""

from __future__ import annotations


import pytest
import yaml

from e2e_helpers import clean_env, make_project, sh

pytestmark = pytest.mark.slow


def test_failed_fetch_says_data_raw_is_in_the_cache(tmp_path, venv_env):
    env = clean_env(venv_env)
    proj = make_project(tmp_path, env)
    sh(["dvc", "repro", "fetch"], proj, env)
    files = sorted(p.relative_to(proj) for p in (proj / "data/raw").rglob("*") if p.is_file())
    params = yaml.safe_load((proj / "params.yaml").read_text())
    good = yaml.safe_dump(params, sort_keys=False)
    params["data"]["source"] = "folder"
    params["data"]["folder"]["path"] = str(tmp_path / "no-such-folder")
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    out = sh(["dvc", "repro", "fetch"], proj, env, check=False)
    assert not (proj / "data/raw").exists()  # DVC removed it before running the stage
    assert "data/raw is missing because DVC deletes a stage's outputs" in out, out
    assert "`dvc checkout data/raw` restores it now" in out, out

    sh(["dvc", "checkout", "data/raw"], proj, env)  # the first way back
    assert sorted(p.relative_to(proj) for p in (proj / "data/raw").rglob("*") if p.is_file()) == files
    sh(["dvc", "repro", "fetch"], proj, env, check=False)  # fails again, deleting it again
    assert not (proj / "data/raw").exists()
    (proj / "params.yaml").write_text(good)
    out = sh(["dvc", "repro", "fetch"], proj, env)  # the second: the previous settings, from the cache
    assert "Running stage 'fetch'" not in out or "cached" in out.lower(), out
    assert sorted(p.relative_to(proj) for p in (proj / "data/raw").rglob("*") if p.is_file()) == files
