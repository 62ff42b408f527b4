"""benchmarks/levers.py: each lever's run differs from the base run in that lever only, and the
sweep trains, scores and compares for real (tiny data, 1 epoch), reusing finished runs."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, make_pairs, write_raw

SCRIPT = REPO / "benchmarks" / "levers.py"


@pytest.fixture(scope="module")
def levers():
    spec = importlib.util.spec_from_file_location("levers_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_base_run_switches_every_lever_off_whatever_params_yaml_says(levers):
    params = {"augment": {"jitter": 0.2, "flip": True}, "lr_schedule": "cosine", "ssim_weight": 3.0,
              "epochs": 200, "split": {"protocol": "cuhk", "val_fraction": 0.1, "seed": 1},
              "unet_gan": {"filters": 64, "norm": "instance"}}
    base = levers.run_params(params, lever="base", epochs=6, batch_size=4, seed=7)
    assert base["augment"] == {"jitter": 0.0, "flip": False}
    assert (base["lr_schedule"], base["ssim_weight"], base["epochs"], base["batch_size"], base["seed"]) == \
        ("constant", 0.0, 6, 4, 7)
    assert base["split"] == {"protocol": "random", "test_fraction": 0.2, "val_fraction": 0.0, "seed": 7}
    assert params["ssim_weight"] == 3.0 and params["split"]["seed"] == 1  # the input is not changed


def test_a_lever_on_another_stacks_both_and_its_base_is_the_other_levers_own_run(levers, tmp_path):
    """--on recipe: the base run is the recipe lever's run (the same folder, so a plain sweep's run is
    reused), and the edge lever's run has the recipe's keys and its own."""
    params = {"augment": {"jitter": 0.0, "flip": False}, "lr_schedule": "constant", "ssim_weight": 0.0,
              "edge_weight": 0.0, "ema_decay": 0.0}
    recipe = levers.run_params(params, lever="recipe", epochs=6, batch_size=4, seed=42)
    assert levers.run_params(params, lever="base", epochs=6, batch_size=4, seed=42, on="recipe") == recipe
    stacked = levers.run_params(params, lever="edge", epochs=6, batch_size=4, seed=42, on="recipe")
    assert {k for k in stacked if stacked[k] != recipe[k]} == {"edge_weight"} and stacked["ssim_weight"] == 1.0
    unit = {"folder": tmp_path}
    assert levers.run_folder(unit, 0, "unet_gan", "f2s", "base", "recipe") == \
        levers.run_folder(unit, 0, "unet_gan", "f2s", "recipe") == tmp_path / "unet_gan-f2s-recipe"
    assert levers.run_folder(unit, 1, "unet_gan", "f2s", "edge", "recipe") == tmp_path / "rep-1/unet_gan-f2s-recipe+edge"


@pytest.mark.parametrize("lever", ["augment", "lr_schedule", "cosine", "ssim", "small", "edge"])
def test_a_lever_run_differs_from_the_base_run_in_its_own_keys_only(levers, lever):
    params = {"augment": {"jitter": 0.0, "flip": False}, "lr_schedule": "constant", "ssim_weight": 0.0,
              "unet_gan": {"filters": 64, "norm": "instance"}, "vae": {"filters": [32, 64]}}
    base = levers.run_params(params, lever="base", epochs=6, batch_size=4, seed=42)
    run = levers.run_params(params, lever=lever, epochs=6, batch_size=4, seed=42)
    changed = {k for k in run if run[k] != base[k]}
    assert changed == set(levers.LEVERS[lever][2])
    if lever == "small":  # nested settings are merged, not replaced
        assert run["unet_gan"] == {"filters": 32, "norm": "instance"}


def test_model_specific_levers_apply_to_their_model_only(levers):
    assert levers.applies("small", "unet_gan") and not levers.applies("small", "vae")
    assert levers.applies("vae_small", "vae") and not levers.applies("vae_small", "unet_gan")
    assert levers.applies("ssim", "dense") and levers.applies("base", "conv")


def test_a_sweep_trains_scores_and_compares_each_lever_with_the_base_run(tmp_path, venv_env):
    ws = tmp_path / "ws"
    photos, sketches = make_pairs(16, 32)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(16)]
    (ws / "data/processed").mkdir(parents=True)
    np.savez(ws / "data/processed/pairs.npz", ids=np.array(ids), subsets=np.array(["train"] * 16),
             photos=photos, sketches=sketches)
    write_raw(ws / "data/raw", ids, photos, sketches)
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--workspace", str(ws), "--out", str(out), "--seeds", "3",
           "--models", "dense", "--tasks", "f2s", "--levers", "ssim", "--epochs", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=venv_env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]

    res = json.loads((out / "levers.json").read_text())
    assert [(r["lever"], r["epochs"]) for r in res["runs"]] == [("base", 1), ("ssim", 1)]
    split = json.loads((out / "seed-3/split.json").read_text())
    assert (split["seed"], len(split["test"]), split["val"]) == (3, 4, [])
    # each run trained with its own settings (the model's info.json records them)
    info = {lever: json.loads((out / f"seed-3/dense-f2s-{lever}/models/dense-f2s/info.json").read_text())
            for lever in ("base", "ssim")}
    assert (info["base"]["training"]["ssim_weight"], info["ssim"]["training"]["ssim_weight"]) == (0.0, 1.0)
    # the delta is the paired difference of the two runs' per-image scores
    import pandas as pd

    per = {lever: pd.read_csv(out / f"seed-3/dense-f2s-{lever}/metrics/per_image/dense-f2s.csv").set_index("id")
           for lever in ("base", "ssim")}
    expected = float((per["ssim"]["fsim"] - per["base"]["fsim"].reindex(per["ssim"].index)).mean())
    assert res["runs"][1]["delta"]["fsim"]["diff"] == pytest.approx(expected)
    assert res["pooled"][0]["delta"]["fsim"]["diff"] == pytest.approx(expected)
    assert res["pooled"][0]["delta"]["fsim"]["images"] == 4
    md = (out / "levers.md").read_text()
    assert "| 3 | dense | f2s | ssim |" in md and "ssim (+ 1.0 x (1 - SSIM) beside L1)" in md

    again = subprocess.run(cmd, capture_output=True, text=True, env=venv_env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert " ..." not in again.stdout  # nothing retrained: both runs were finished
    assert json.loads((out / "levers.json").read_text())["runs"] == res["runs"]

    # `--on ssim --levers` alone: the ssim setting's own estimate, from its finished run (nothing trains)
    alone = subprocess.run([*cmd[:cmd.index("--levers")], "--levers", "--on", "ssim", "--epochs", "1"],
                           capture_output=True, text=True, env=venv_env, timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert " ..." not in alone.stdout
    on = json.loads((out / "levers-on-ssim.json").read_text())
    assert (on["pooled"], [e["lever"] for e in on["estimates"]]) == ([], ["base"])
    assert on["estimates"][0]["fsim"]["mean"] == pytest.approx(float(per["ssim"]["fsim"].mean()))
    assert "| dense | f2s | ssim | 4 |" in (out / "levers-on-ssim.md").read_text()


def test_cross_validation_scores_every_pair_per_seed_and_a_test_time_lever_retrains_nothing(tmp_path, venv_env):
    """--folds 2 --repeats 2: each pair tested once per training seed; the pooled delta is over every
    pair and both seeds; the mirror lever scores the base run's model again."""
    import pandas as pd

    ws = tmp_path / "ws"
    photos, sketches = make_pairs(12, 32)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(12)]
    (ws / "data/processed").mkdir(parents=True)
    np.savez(ws / "data/processed/pairs.npz", ids=np.array(ids), subsets=np.array(["train"] * 12),
             photos=photos, sketches=sketches)
    write_raw(ws / "data/raw", ids, photos, sketches)
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--workspace", str(ws), "--out", str(out), "--folds", "2", "--repeats", "2",
           "--models", "dense", "--tasks", "f2s", "--levers", "mirror", "--epochs", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=venv_env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]

    root = out / "folds-2-seed-42"
    folds = [json.loads((root / f"fold-{k}/split.json").read_text()) for k in (0, 1)]
    assert sorted(folds[0]["test"] + folds[1]["test"]) == sorted(ids)
    result = json.loads((out / "levers.json").read_text())
    assert (result["folds"], result["repeats"]) == (2, 2)
    assert {(r["seed"], r["training_seed"]) for r in result["runs"]} == {
        ("fold 0", 42), ("fold 1", 42), ("fold 0", 1042), ("fold 1", 1042)}
    # the base runs of the two seeds trained (differently); the mirror runs trained nothing
    base = {rep: json.loads((root / f"fold-0/{'rep-1/' if rep else ''}dense-f2s-base/models/dense-f2s/info.json")
                            .read_text()) for rep in (0, 1)}
    assert (base[0]["training"]["seed"], base[1]["training"]["seed"]) == (42, 1042)
    assert not (root / "fold-0/dense-f2s-mirror/models").exists()
    assert all(r["train_seconds"] == 0 for r in result["runs"] if r["lever"] == "mirror")

    def scores(lever):
        return [pd.concat([pd.read_csv(root / f"fold-{k}/{'rep-1/' if rep else ''}dense-f2s-{lever}/metrics/per_image/"
                                       "dense-f2s.csv") for k in (0, 1)]).set_index("id") for rep in (0, 1)]
    before, after = scores("base"), scores("mirror")
    assert all(len(t) == 12 for t in before + after)  # every pair, under each seed
    per_seed = [float((a["fsim"] - b["fsim"].reindex(a.index)).mean()) for a, b in zip(after, before)]
    d = result["pooled"][0]["delta"]["fsim"]
    assert (d["images"], d["seeds"]) == (12, 2)
    assert d["per_seed"] == pytest.approx(per_seed, abs=1e-6)
    assert d["diff"] == pytest.approx(sum(per_seed) / 2, abs=1e-6)
    assert "2-fold cross-validation" in (out / "levers.md").read_text()
    # each setting's cross-validated estimate: the mean over every pair and seed, the seeds' spread
    est = {e["lever"]: e for e in result["estimates"]}
    assert set(est) == {"base", "mirror"} and est["base"]["images"] == 12
    seed_means = [float(t["fsim"].mean()) for t in before]
    assert est["base"]["fsim"]["mean"] == pytest.approx(sum(seed_means) / 2, abs=1e-6)
    assert est["base"]["fsim"]["seed_spread"] == pytest.approx(float(np.std(seed_means, ddof=1)), abs=1e-6)
    low, high = est["base"]["fsim"]["interval"]
    assert low < est["base"]["fsim"]["mean"] < high
    assert f"| dense | f2s | base | 12 | {est['base']['fsim']['mean']:.4f} [" in (out / "levers.md").read_text()

    # a second model against the first on the same folds, seeds and images (dense's runs reused)
    res = subprocess.run([*cmd[:cmd.index("--models")], "--models", "dense", "conv", "--tasks", "f2s", "--levers",
                          "--epochs", "1"], capture_output=True, text=True, env=venv_env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("training seed") and "dense-f2s, base ..." not in res.stdout  # reused, not retrained
    result = json.loads((out / "levers.json").read_text())
    conv = [pd.concat([pd.read_csv(root / f"fold-{k}/{'rep-1/' if rep else ''}conv-f2s-base/metrics/per_image/"
                                   "conv-f2s.csv") for k in (0, 1)]).set_index("id") for rep in (0, 1)]
    versus, = result["versus"]
    assert (versus["model"], versus["against"], versus["task"]) == ("conv", "dense", "f2s")
    per_seed = [float((c["fsim"] - b["fsim"].reindex(c.index)).mean()) for c, b in zip(conv, before)]
    assert versus["delta"]["fsim"]["per_seed"] == pytest.approx(per_seed, abs=1e-6)
    assert (versus["delta"]["fsim"]["images"], versus["delta"]["fsim"]["seeds"]) == (12, 2)
    assert "| conv (vs dense) | f2s |" in (out / "levers.md").read_text()


def test_the_benchmark_lever_is_what_cuhk_benchmark_sh_trains_with(levers):
    """The cross-validated estimate beside the benchmark's scores is only an estimate of it while
    levers.py's `benchmark` lever and the script's -S settings agree."""
    import re

    import yaml

    script = (REPO / "scripts/cuhk_benchmark.sh").read_text()
    settings = dict(re.findall(r"-S ([a-z_.]+)=(\S+)", script))
    overrides = levers.LEVERS["benchmark"][2]
    assert {key: yaml.safe_load(settings.get(key, "null")) for key in overrides} == overrides
    # and the base it is stacked on switches augmentation off, as the script does
    assert (yaml.safe_load(settings["augment.jitter"]), yaml.safe_load(settings["augment.flip"])) == (0, False)
    assert levers.BASE["augment"] == {"jitter": 0.0, "flip": False}


def test_a_workspace_without_processed_pairs_is_named(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--workspace", str(tmp_path), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert f"--workspace {tmp_path}: no {tmp_path / 'data/processed/pairs.npz'}" in res.stderr
