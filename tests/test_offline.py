"""The offline study bundle: built from a workspace's data stages, refused when too large or when the
data is missing, and its runner trains under JAX and is scored back home by the protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_pairs, write_raw


def _workspace(root, n=12, size=32):
    """A workspace whose data stages have run: data/raw, data/processed/pairs.npz, data/split/split.json."""
    from facesketch.core import fileio
    from facesketch.data.split import make_split

    photos, sketches = make_pairs(n, size)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(n)]
    fileio.save_npz(root / "data/processed/pairs.npz", ids=np.array(ids), subsets=np.array(["train"] * n),
                    photos=photos, sketches=sketches)
    fileio.write_json(root / "data/split/split.json", make_split(ids, ["train"] * n, protocol="random",
                                                                 test_fraction=0.25, val_fraction=0.0, seed=0))
    write_raw(root / "data/raw", ids, photos, sketches)
    (root / "params.yaml").write_text((__import__("conftest").REPO / "params.yaml").read_text())
    return root


def _fake_wheels(folder):
    folder.mkdir()
    for name in ("keras-3.15.1-py3-none-any.whl", "namex-0.1.0-py3-none-any.whl"):
        (folder / name).write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: only copied here
    return folder


def test_the_bundle_holds_the_package_data_wheels_and_runner_with_a_manifest(tmp_path):
    from facesketch.offline.bundle import build

    ws = _workspace(tmp_path / "ws")
    manifest = build(tmp_path / "bundle", workspace=ws, wheels_from=_fake_wheels(tmp_path / "wheels"))
    bundle = tmp_path / "bundle"
    for rel in ("run.py", "params.yaml", "data/pairs.npz", "data/split.json", "src/facesketch/offline/runner.py",
                "src/facesketch/training/fit.py", "wheels/keras-3.15.1-py3-none-any.whl"):
        assert rel in manifest["files"], rel
        assert (bundle / rel).is_file()
    assert not list(bundle.rglob("__pycache__"))
    assert (bundle / "data/pairs.npz").read_bytes() == (ws / "data/processed/pairs.npz").read_bytes()
    assert manifest["bytes"] == sum(f["bytes"] for f in manifest["files"].values())
    assert json.loads((bundle / "manifest.json").read_text()) == manifest


def test_a_bundle_over_its_size_limit_or_without_data_is_refused_naming_why(tmp_path):
    from facesketch.core.errors import DataError
    from facesketch.offline.bundle import build

    ws = _workspace(tmp_path / "ws")
    with pytest.raises(DataError, match=r"over 0.01 MiB: largest .*data/pairs.npz"):
        build(tmp_path / "b1", workspace=ws, wheels_from=_fake_wheels(tmp_path / "w"), max_mib=0.01)
    assert not (tmp_path / "b1").exists()  # nothing half-built left
    (ws / "data/split/split.json").unlink()
    with pytest.raises(DataError, match="split.json: missing; run `dvc repro split`"):
        build(tmp_path / "b2", workspace=ws, wheels_from=tmp_path / "w")


def test_the_runner_installs_what_the_bundle_carries():
    from facesketch.offline import bundle, runner

    assert runner.NEEDED == bundle.WHEELS
    pins = dict(p.split("==") for p in bundle.pinned(("pydantic", "pydantic-core", "keras")))
    import importlib.metadata

    assert f"pydantic-core=={pins['pydantic-core']}" in importlib.metadata.requires("pydantic")  # an importable pair


@pytest.mark.slow
@pytest.mark.skipif(__import__("importlib").util.find_spec("jax") is None, reason="JAX is not installed")
def test_the_runner_trains_under_jax_and_its_output_is_scored_back_home(tmp_path, venv_env):
    """run.py in a process of its own (Keras on JAX), then the scoring in the workspace: the protocol's
    metrics for the model's predictions, the baselines and a report, the workspace untouched."""
    import subprocess
    import sys

    from facesketch.offline.bundle import build
    from facesketch.offline.results import score

    ws = _workspace(tmp_path / "ws")
    build(tmp_path / "bundle", workspace=ws, wheels_from=_fake_wheels(tmp_path / "wheels"))
    out = tmp_path / "out"
    env = {k: v for k, v in venv_env.items() if k != "KERAS_BACKEND"}
    res = subprocess.run([sys.executable, str(tmp_path / "bundle/run.py"), "--out", str(out), "--models", "dense",
                          "--tasks", "f2s", "--epochs", "1", "--batch-size", "4"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "installed from the bundle: nothing" in res.stdout  # this venv has every package
    assert sorted(p.name for p in out.iterdir()) == ["predictions-f2s.npz", "run.json"]
    run = json.loads((out / "run.json").read_text())
    record = run["runs"]["dense-f2s"]
    assert record["info"]["runtime"]["keras_backend"] == "jax" and record["epochs"] == 1
    assert record["images_per_s"] > 0 and run["matmul_peak_tflops"]["float32"] > 0
    assert run["complete"] is True
    with np.load(out / "predictions-f2s.npz") as npz:
        split = json.loads((ws / "data/split/split.json").read_text())
        assert npz["ids"].tolist() == split["test"] and npz["dense"].dtype == np.uint8
        first = npz["dense"]

    # a second call with the same work folder (a study longer than one call) reuses the finished run
    again = subprocess.run([sys.executable, str(tmp_path / "bundle/run.py"), "--out", str(tmp_path / "out2"),
                            "--work", str(tmp_path / "offline-work"), "--models", "dense", "--tasks", "f2s",
                            "--epochs", "1", "--batch-size", "4"], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "dense-f2s: finished in an earlier call" in again.stdout and "dense-f2s: training" not in again.stdout
    rerun = json.loads((tmp_path / "out2/run.json").read_text())
    assert rerun["complete"] and rerun["runs"]["dense-f2s"]["train_seconds"] == record["train_seconds"]
    with np.load(tmp_path / "out2/predictions-f2s.npz") as npz:
        assert np.array_equal(npz["dense"], first)
    # a call stopped before its s2f runs: what finished is scored, the rest named
    partial = {**rerun, "complete": False, "params": {**rerun["params"], "tasks": ["f2s", "s2f"]}}
    (tmp_path / "out2/run.json").write_text(json.dumps(partial))
    assert set(score(tmp_path / "out2", ws)) == {"dense-f2s"}

    before = sorted(p.relative_to(ws) for p in ws.rglob("*"))
    summaries = score(out, ws)
    assert 0 < summaries["dense-f2s"]["fsim"] < 1 and summaries["dense-f2s"]["n_images"] == len(split["test"])
    home = out / "home"
    assert json.loads((home / "metrics/dense-f2s.json").read_text())["fsim"] == summaries["dense-f2s"]["fsim"]
    assert (home / "metrics/baselines-f2s.json").exists() and (home / "reports/report.md").exists()
    assert sorted(p.relative_to(ws) for p in ws.rglob("*")) == before  # nothing written in the workspace
