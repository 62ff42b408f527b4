"""Training and test-time levers, one at a time: each lever's effect on the benchmark protocol's scores.

The tuning protocol (#25): ``--folds K --repeats R`` scores every lever by K-fold
cross-validation over the workspace's pairs (every pair is tested once per
setting; folds over identities, ``facesketch.data.split.make_folds``), each
setting trained under R training seeds. Two settings are compared by a paired
bootstrap over all scored pairs that also resamples the seeds
(``protocol.paired_difference_over_seeds``), so a verdict covers training noise
as well as the choice of images; each setting's mean is given with its spread
across the seeds. Without ``--folds`` it scores each ``--seeds`` seed's random
split, as before.

For every split seed, model, task and lever: train from the same start with the
lever switched on (everything else at the base setting), score the test split by
the benchmark protocol (``facesketch.evaluation.protocol``: native size, the original
files), and compare with the base run on the same test images by a paired
bootstrap (``facesketch.evaluation.protocol.paired_difference``: 95% percentile interval,
10,000 resamples). The base setting is the study's plain training at the budget
given (no augmentation, constant learning rate, no SSIM term, no weight
average) with every training pair used (no validation hold-out), as
scripts/cuhk_benchmark.sh trains.

Run it in a workspace whose data stages have run at the image size wanted
(data/raw, data/processed/pairs.npz); each seed's random split is made here
with the workspace's pairs (split.protocol random, test_fraction 0.2). Results
go under --out, one folder per run (model, metrics, per-image CSV, the MLflow
runs in OUT/mlflow.db); a finished run is reused, so an interrupted sweep goes
on where it stopped. Prints a Markdown table per run and one pooled over the
seeds, and writes OUT/levers.json and OUT/levers.md. Run it alone on the
machine when the wall times matter.

    python benchmarks/levers.py --workspace WS --out levers-out
    python benchmarks/levers.py --workspace WS --out OUT --seeds 42 7 --epochs 6 \\
        --models unet_gan vae --levers augment lr_schedule ssim small
    python benchmarks/levers.py --workspace WS --out OUT --folds 4 --repeats 2 --epochs 6 \\
        --models unet_gan --levers mirror bilateral ssim recipe     # the tuning protocol

With several ``--models``, each later one is also compared with the first at the base setting (the
same folds, seeds and images): ``--models unet_gan cycle_gan --on benchmark --levers`` asks whether
the cycle-consistent model pays at the benchmark's recipe.

``--on LEVER`` stacks the levers on a setting already chosen: the base is that lever's own run
(a plain sweep's run is reused) and each lever runs with both switched on:

    python benchmarks/levers.py --workspace WS --out OUT --folds 4 --repeats 2 --epochs 10 \\
        --models unet_gan --on recipe --levers edge mirror      # writes OUT/levers-on-recipe.md

Test-time levers (``mirror``, ``bilateral``: ``facesketch.evaluation.test_time``) retrain
nothing: they score the base run's model again with the lever on.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# name -> (what it switches on, the models it applies to (None: every model), its params overrides)
LEVERS: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {
    "augment": ("paired jitter 12% + mirroring", None, {"augment": {"jitter": 0.12, "flip": True}}),
    "lr_schedule": ("constant, then linear decay to 0", None, {"lr_schedule": "linear_decay"}),
    "cosine": ("cosine decay to 0", None, {"lr_schedule": "cosine"}),
    "ssim": ("+ 1.0 x (1 - SSIM) beside L1", None, {"ssim_weight": 1.0}),
    "ema": ("saved weights: their moving average (decay 0.999)", None, {"ema_decay": 0.999}),
    "small": ("half the widths (unet_gan filters 32)", ("unet_gan",), {"unet_gan": {"filters": 32}}),
    "vae_small": ("half the widths (vae filters 16..128)", ("vae",), {"vae": {"filters": [16, 32, 64, 128, 128]}}),
    "ssim_half": ("+ 0.5 x (1 - SSIM) beside L1", None, {"ssim_weight": 0.5}),
    "ssim_2": ("+ 2.0 x (1 - SSIM) beside L1", None, {"ssim_weight": 2.0}),
    "edge": ("+ 1.0 x the gradient-magnitude difference beside L1 (FSIM's Scharr operator)", None,
             {"edge_weight": 1.0}),
    "edge_half": ("+ 0.5 x the gradient-magnitude difference beside L1", None, {"edge_weight": 0.5}),
    "lab": ("the pixel loss measured in CIELAB (/ 100) instead of RGB", None, {"loss_space": "lab"}),
    "l1_50": ("lambda_l1 50 (GAN weighs twice as much)", ("unet_gan",), {"unet_gan": {"lambda_l1": 50.0}}),
    "l1_200": ("lambda_l1 200 (L1 weighs twice as much)", ("unet_gan",), {"unet_gan": {"lambda_l1": 200.0}}),
    "batchnorm": ("batch normalisation instead of instance", ("unet_gan",), {"unet_gan": {"norm": "batch"}}),
    "groupnorm": ("group normalisation instead of instance", ("unet_gan",), {"unet_gan": {"norm": "group"}}),
    # the benchmark's training recipe (scripts/cuhk_benchmark.sh) as one lever: for the models it was not tuned on
    "recipe": ("SSIM term 1, linear decay, weight average 0.999", None,
               {"ssim_weight": 1.0, "lr_schedule": "linear_decay", "ema_decay": 0.999}),
    # what scripts/cuhk_benchmark.sh trains with now: the recipe plus the edge term, which the
    # cross-validated screen found to add on top of it (docs/results.md; a test keeps the two equal)
    "benchmark": ("the benchmark's recipe: SSIM term 1, edge term 1, linear decay, weight average 0.999", None,
                  {"ssim_weight": 1.0, "edge_weight": 1.0, "lr_schedule": "linear_decay", "ema_decay": 0.999}),
    # not a lever but the same question: does training under Keras' JAX backend give the same models as
    # under TensorFlow (the base), within the training seeds' spread? (#24)
    "jax": ("trained under Keras' JAX backend instead of TensorFlow", None, {"runtime": {"backend": "jax"}}),
}
# test-time levers: name -> (what it does, evaluate()'s test_time options); the base run's model, scored again
TEST_TIME: dict[str, tuple[str, dict[str, bool]]] = {
    "mirror": ("test-time mirroring: the output averaged with the mirrored output of the mirrored input",
               {"mirror": True}),
    "bilateral": ("bilateral post-filter on the outputs (as Face-Sketch-Wild)", {"bilateral": True}),
}
# what the base run switches off (params.yaml's defaults are the study's; these make sure)
BASE = {"augment": {"jitter": 0.0, "flip": False}, "lr_schedule": "constant", "ssim_weight": 0.0, "edge_weight": 0.0,
        "ema_decay": 0.0, "loss_space": "rgb",
        "runtime": {"backend": "tensorflow"}}  # the CPU default, whatever KERAS_BACKEND says
HEADLINE = {"f2s": "fsim", "s2f": "fsimc"}  # the published tables' figure per task


IDENTITY = "id_auc"  # does the output keep the person? (evaluation/identity.py; absent without the extra)


def compared(task: str, columns=None) -> tuple[str, ...]:
    """The metrics each lever is judged on: the published figure of the task, SSIM and, where the
    per-image tables have it, identity (ROC AUC of dlib's face descriptors), so that a lever that
    raises FSIM while losing identity shows."""
    with_identity = columns is not None and IDENTITY in columns
    return (HEADLINE[task], "ssim", *((IDENTITY,) if with_identity else ()))


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, nested mappings key by key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_params(params: dict[str, Any], *, lever: str, epochs: int, batch_size: int, seed: int,
               on: str | None = None) -> dict[str, Any]:
    """params.yaml's settings for one run: the base setting, the overrides of the lever it is ``on``
    (``--on``: levers stacked on a setting already chosen), then the lever's own."""
    p = merged(params, {**BASE, "epochs": epochs, "batch_size": batch_size, "seed": seed,
                        "mlflow": {"experiment": "levers"},
                        "split": {"protocol": "random", "test_fraction": 0.2, "val_fraction": 0.0, "seed": seed}})
    if on:
        p = merged(p, LEVERS[on][2])
    return merged(p, LEVERS[lever][2]) if lever in LEVERS else p


def applies(lever: str, model: str) -> bool:
    return lever == "base" or lever in TEST_TIME or LEVERS[lever][1] is None or model in LEVERS[lever][1]


def describe(lever: str) -> str:
    return TEST_TIME[lever][0] if lever in TEST_TIME else LEVERS[lever][0]


def run_one(spec: dict[str, Any]) -> None:
    """Train and evaluate one model x task x lever (in a process of its own: a clean TensorFlow, or JAX)."""
    from facesketch.core import backend

    # before anything imports Keras: the run's runtime.backend (auto: KERAS_BACKEND, else tensorflow)
    backend.select(spec["params"].get("runtime", {}).get("backend", "auto"))
    from facesketch.core import fileio
    from facesketch.evaluation.evaluate import evaluate
    from facesketch.training.fit import train

    ws, folder = Path(spec["workspace"]), Path(spec["folder"])
    data = {"processed_file": ws / "data/processed/pairs.npz", "split_file": Path(spec["split_file"])}
    start = time.time()
    if spec.get("reuse"):  # a test-time lever: the base run's model, scored with the lever on
        base = Path(spec["reuse"])
        info = {**fileio.read_json(base / "result.json"), "train_seconds": 0.0}
        summary = evaluate(spec["model"], spec["task"], models_dir=base / "models", metrics_dir=folder / "metrics",
                           predictions_dir=folder / "predictions", raw_dir=ws / "data/raw",
                           test_time=spec["test_time"], track=False, **data)
    else:
        info = train(spec["model"], spec["task"], spec["params"], models_dir=folder / "models",
                     history_dir=folder / "history", checkpoint_root=folder / "checkpoints", verbose=0, **data)
        summary = evaluate(spec["model"], spec["task"], models_dir=folder / "models", metrics_dir=folder / "metrics",
                           predictions_dir=folder / "predictions", raw_dir=ws / "data/raw", **data)
    result = {"train_seconds": info["train_seconds"], "wall_seconds": round(time.time() - start, 1),
              "parameters": info["parameters"], "epochs": info["epochs"],
              "scores": {k: summary[k] for k in ("fsim", "fsimc", "ssim", "psnr", "scoot", "id_rank1", IDENTITY)
                         if k in summary}}
    fileio.write_json(folder / "result.json", result)


def per_image(folder: Path, model: str, task: str):
    import pandas as pd

    from facesketch.core.layout import per_image_file, run_name

    return pd.read_csv(per_image_file(run_name(model, task), folder / "metrics")).set_index("id")


def delta(before, after, metric: str) -> dict[str, Any]:
    """after - before on the same images of one run each: the mean and its paired bootstrap interval."""
    from facesketch.evaluation.protocol import paired_difference

    both = before.index.intersection(after.index)
    diff, interval, n = paired_difference(after.loc[both, metric].to_numpy(), before.loc[both, metric].to_numpy())
    return {"diff": diff, "interval": list(interval) if interval else None, "images": n,
            "significant": bool(interval and (interval[0] > 0 or interval[1] < 0))}


def aligned(tables: list, metric: str):
    """(tables, images) array of ``metric`` over the images every table scored, in one order."""
    import numpy as np

    both = tables[0].index
    for table in tables[1:]:
        both = both.intersection(table.index)
    return np.stack([t.loc[both, metric].to_numpy(np.float64) for t in tables])


def seeded_delta(before: list, after: list, metric: str) -> dict[str, Any]:
    """after - before over R training seeds (lists of per-image tables, one per seed, paired by seed):
    the mean, its two-level bootstrap interval (seeds and images resampled) and each seed's mean."""
    import numpy as np

    from facesketch.evaluation.protocol import paired_difference_over_seeds

    a, b = np.split(aligned([*after, *before], metric), 2)
    d = paired_difference_over_seeds(a, b)
    return {"diff": d.difference, "interval": list(d.interval) if d.interval else None, "images": d.n_images,
            "seeds": d.n_seeds, "per_seed": list(d.per_seed), "seed_spread": d.seed_spread,
            "significant": d.significant}


def estimate(tables: list, metric: str) -> dict[str, Any]:
    """One setting's cross-validated estimate of a metric: the mean over every scored image and
    training seed, the spread of the per-seed means, and a 95% bootstrap interval over the images of
    their seed-averaged values (the choice of images; the seeds' spread is beside it)."""
    import numpy as np

    from facesketch.evaluation.protocol import bootstrap_interval

    values = aligned(tables, metric)
    values = values[:, np.isfinite(values).all(axis=0)]
    if not values.size:
        return {"mean": None, "interval": None, "seed_spread": None}
    per_seed = values.mean(axis=1)
    interval = bootstrap_interval(values.mean(axis=0))
    return {"mean": float(values.mean()), "interval": list(interval) if interval else None,
            "seed_spread": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None}


def fmt_delta(d: dict[str, Any]) -> str:
    if d["interval"] is None:
        return f"{d['diff']:+.4f}"
    star = " *" if d["significant"] else ""
    return f"{d['diff']:+.4f} [{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]{star}"


def units(args, params: dict[str, Any], ws: Path, out: Path) -> list[dict[str, Any]]:
    """The splits each setting is scored on: the folds of one cross-validation (``--folds``), or one
    random split per ``--seeds`` seed. Each: its label, folder, split file and training seed."""
    import numpy as np

    from facesketch.core import fileio
    from facesketch.data.split import make_folds, split

    found = []
    if args.folds:
        root = out / f"folds-{args.folds}-seed-{args.fold_seed}"
        with np.load(ws / "data/processed/pairs.npz") as data:
            ids = data["ids"].tolist()
        for fold in make_folds(ids, args.folds, args.fold_seed):
            folder = root / f"fold-{fold['fold']}"
            if not (folder / "split.json").exists():
                fileio.write_json(folder / "split.json", fold)
            found.append({"label": f"fold {fold['fold']}", "folder": folder, "split_file": folder / "split.json",
                          "seed": args.fold_seed})
        return found
    for seed in args.seeds:
        split_file = out / f"seed-{seed}" / "split.json"
        if not split_file.exists():
            split(run_params(params, lever="base", epochs=args.epochs, batch_size=args.batch_size, seed=seed),
                  ws / "data/processed/pairs.npz", split_file)
        found.append({"label": str(seed), "folder": out / f"seed-{seed}", "split_file": split_file, "seed": seed})
    return found


def training_seed(unit: dict[str, Any], repeat: int) -> int:
    """Repeat r trains with the unit's seed + 1000 r (repeat 0: the seed itself, as before --repeats)."""
    return unit["seed"] + 1000 * repeat


def run_folder(unit: dict[str, Any], repeat: int, model: str, task: str, lever: str, on: str | None = None) -> Path:
    """One run's folder. With ``on``, the base run is the ``on`` lever's own run (reused where a sweep
    without ``--on`` trained it) and each lever's run is named ``<on>+<lever>``."""
    name = lever if not on else (on if lever == "base" else f"{on}+{lever}")
    return unit["folder"] / (f"rep-{repeat}" if repeat else "") / f"{model}-{task}-{name}"


def sweep(args) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from facesketch.core import fileio
    from facesketch.core.params import load_params

    ws, out = Path(args.workspace).resolve(), Path(args.out).resolve()
    params = load_params(args.params)
    with np.load(ws / "data/processed/pairs.npz") as data:
        size = int(data["photos"].shape[1])
    params["image_size"] = size
    env = {**os.environ, "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{out}/mlflow.db"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    plan = units(args, params, ws, out)
    runs = []
    for unit in plan:
        for repeat in range(args.repeats):
            seed = training_seed(unit, repeat)
            for model in args.models:
                for task in args.tasks:
                    for lever in ["base", *args.levers]:
                        if not applies(lever, model) or (args.on and not applies(args.on, model)):
                            continue
                        folder = run_folder(unit, repeat, model, task, lever, args.on)
                        if not (folder / "result.json").exists():
                            spec = {"workspace": str(ws), "folder": str(folder), "split_file": str(unit["split_file"]),
                                    "model": model, "task": task,
                                    # models/tasks: this run's only (the time estimate counts the others)
                                    "params": {**run_params(params, lever=lever, epochs=args.epochs,
                                                            batch_size=args.batch_size, seed=seed, on=args.on),
                                               "models": [model], "tasks": [task]}}
                            if lever in TEST_TIME:
                                spec.update(reuse=str(run_folder(unit, repeat, model, task, "base", args.on)),
                                            test_time=TEST_TIME[lever][1])
                            print(f"levers: {unit['label']}, training seed {seed}, {model}-{task}, {lever} ...",
                                  flush=True)
                            subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], env=env,
                                           cwd=ws, check=True)
                        result = fileio.read_json(folder / "result.json")
                        runs.append({"seed": unit["label"], "repeat": repeat, "training_seed": seed, "model": model,
                                     "task": task, "lever": lever, "per_image": per_image(folder, model, task),
                                     **result})
                        print(f"levers: {unit['label']}, training seed {seed}, {model}-{task}, {lever}: "
                              + ", ".join(f"{k} {v:.4f}" for k, v in result["scores"].items())
                              + f" ({result['train_seconds']:.0f} s training)", flush=True)

    rows, pooled = [], []
    scores = {(r["seed"], r["repeat"], r["model"], r["task"], r["lever"]): r["per_image"] for r in runs}
    for r in runs:
        row = {k: r[k] for k in ("seed", "repeat", "training_seed", "model", "task", "lever", "train_seconds",
                                 "epochs", "parameters")}
        row["scores"] = r["scores"]
        if r["lever"] != "base":
            b = scores[(r["seed"], r["repeat"], r["model"], r["task"], "base")]
            row["delta"] = {m: delta(b, r["per_image"], m)
                            for m in compared(r["task"], b.columns.intersection(r["per_image"].columns))}
        rows.append(row)

    def pooled_tables(model, task, lever):
        """One table per repeat: every unit's test images (ids made unique per unit)."""
        return [pd.concat([scores[(u["label"], rep, model, task, lever)].rename(index=lambda i, s=u["label"]: f"{s}:{i}")
                           for u in plan]) for rep in range(args.repeats)]

    def spread(tables, metric):
        means = [float(t[metric].mean()) for t in tables]
        return float(np.mean(means)), (float(np.std(means, ddof=1)) if len(means) > 1 else 0.0)

    estimates = []
    for model in args.models:
        for task in args.tasks:
            if not any(r["model"] == model and r["task"] == task for r in runs):
                continue  # a model the --on lever does not apply to
            tables = {lever: pooled_tables(model, task, lever) for lever in ["base", *args.levers]
                      if applies(lever, model)}
            for lever, lever_tables in tables.items():
                estimates.append({"model": model, "task": task, "lever": lever, "images": int(len(lever_tables[0])),
                                  **{m: estimate(lever_tables, m) for m in compared(task, lever_tables[0].columns)}})
            base_tables = tables.pop("base")
            for lever, lever_tables in tables.items():
                judged = compared(task, [c for c in base_tables[0].columns.intersection(lever_tables[0].columns)
                                         if all(t[c].notna().all() for t in (*base_tables, *lever_tables))])
                pooled.append({"model": model, "task": task, "lever": lever,
                               "before": {m: spread(base_tables, m)[0] for m in judged},
                               "before_spread": {m: spread(base_tables, m)[1] for m in judged},
                               "after": {m: spread(lever_tables, m)[0] for m in judged},
                               "after_spread": {m: spread(lever_tables, m)[1] for m in judged},
                               "delta": {m: seeded_delta(base_tables, lever_tables, m) for m in judged}})
    # each later --models model against the first, at the base setting, on the same folds, seeds and images
    # (e.g. --models unet_gan cycle_gan: does the cycle-consistent model pay?)
    versus = []
    for model in args.models[1:]:
        for task in args.tasks:
            if not all(any(r["model"] == m and r["task"] == task and r["lever"] == "base" for r in runs)
                       for m in (args.models[0], model)):
                continue
            first, other = pooled_tables(args.models[0], task, "base"), pooled_tables(model, task, "base")
            judged = compared(task, [c for c in first[0].columns.intersection(other[0].columns)
                                     if all(t[c].notna().all() for t in (*first, *other))])
            versus.append({"task": task, "model": model, "against": args.models[0],
                           "before": {m: spread(first, m)[0] for m in judged},
                           "after": {m: spread(other, m)[0] for m in judged},
                           "delta": {m: seeded_delta(first, other, m) for m in judged}})
    return {"workspace": str(ws), "image_size": size, "epochs": args.epochs, "batch_size": args.batch_size,
            "seeds": [u["label"] for u in plan], "folds": args.folds, "fold_seed": args.fold_seed if args.folds else None,
            "repeats": args.repeats, "levers": {k: describe(k) for k in args.levers}, "versus": versus,
            "on": {"lever": args.on, "what": describe(args.on)} if args.on else None, "runs": rows, "pooled": pooled,
            "estimates": estimates}


def markdown(res: dict[str, Any]) -> str:
    units_text = (f"{res['folds']}-fold cross-validation over identities (fold seed {res['fold_seed']}: every pair "
                  "scored once per setting and seed)" if res.get("folds") else "each seed's random test split")
    repeats = res.get("repeats", 1)
    on = res.get("on")
    stacked = f", with {on['lever']} switched on ({on['what']})" if on else ""
    lines = [f"Levers one at a time against the base run ({res['image_size']} px, {res['epochs']} epochs, batch "
             f"{res['batch_size']}, every training pair, no augmentation, constant learning rate, no SSIM term, "
             f"no weight average{stacked}; {repeats} training seed(s) per setting); "
             f"scored by the benchmark protocol on {units_text}. Delta: lever minus base on the "
             "same images, 95% paired bootstrap interval; * the interval excludes 0. FSIM for f2s, FSIMc for s2f; "
             "ID AUC: identity kept (ROC AUC of dlib's face descriptors, evaluation/identity.py), where scored. "
             "Test-time levers reuse the base run's model (0 s training).",
             "", "| split | model | task | lever | FSIM(c) | delta | SSIM | delta | ID AUC | delta | training s "
             "| training seed |",
             "|---|---|---|---|---:|---|---:|---|---:|---|---:|---:|"]

    def cell(value, d, metric):
        return (f"{value:.4f}" if value is not None else "-"), (fmt_delta(d[metric]) if d and metric in d else "")

    for r in res["runs"]:
        head = HEADLINE[r["task"]]
        d = r.get("delta")
        cells = [x for m in (head, "ssim", IDENTITY) for x in cell(r["scores"].get(m), d, m)]
        lines.append(f"| {r['seed']} | {r['model']} | {r['task']} | {r['lever']} | " + " | ".join(cells)
                     + f" | {r['train_seconds']:.0f} | {r.get('training_seed', r['seed'])} |")
    over = "every fold" if res.get("folds") else f"seeds {', '.join(map(str, res['seeds']))}"
    if res["pooled"]:
        lines += ["", f"Pooled over {over} (every test image, paired) and {repeats} training seed(s): mean +- "
                  "its spread across the training seeds (sd of the per-seed means); delta with a 95% interval that "
                  "resamples the training seeds and the images (protocol.paired_difference_over_seeds):",
                  "", ("| model | task | lever | FSIM(c) before -> after | delta | SSIM before -> after | delta "
                       "| ID AUC before -> after | delta |"),
                  "|---|---|---|---|---|---|---|---|---|"]
    for p in res["pooled"]:
        head = HEADLINE[p["task"]]
        cells = []
        for m in (head, "ssim", IDENTITY):
            if m in p["delta"]:
                sd = (f" +- {p['before_spread'][m]:.4f} -> {p['after'][m]:.4f} +- {p['after_spread'][m]:.4f}"
                      if repeats > 1 and "before_spread" in p else f" -> {p['after'][m]:.4f}")
                cells += [f"{p['before'][m]:.4f}{sd}", fmt_delta(p["delta"][m])]
            else:
                cells += ["-", ""]
        lines.append(f"| {p['model']} | {p['task']} | {p['lever']} ({res['levers'][p['lever']]}) | "
                     + " | ".join(cells) + " |")
    if res.get("versus"):
        setting = on["lever"] if on else "base"
        lines += ["", f"Each model against {res['versus'][0]['against']}, both at the {setting} setting, on the same "
                  f"folds, training seeds and images (delta: 95% interval resampling the seeds and the images):",
                  "", "| model | task | FSIM(c) | delta | SSIM | delta | ID AUC | delta |", "|---|---|---|---|---|---|---|---|"]
        for v in res["versus"]:
            cells = []
            for m in (HEADLINE[v["task"]], "ssim", IDENTITY):
                cells += ([f"{v['before'][m]:.4f} -> {v['after'][m]:.4f}", fmt_delta(v["delta"][m])]
                          if m in v["delta"] else ["-", ""])
            lines.append(f"| {v['model']} (vs {v['against']}) | {v['task']} | " + " | ".join(cells) + " |")
    if res.get("estimates"):
        lines += ["", f"Each setting's estimate, pooled over {over} and {repeats} training seed(s): the mean over "
                  "every scored image and seed; in brackets a 95% bootstrap interval over the images (their "
                  "seed-averaged values); +- the spread of the per-seed means where there are several seeds:",
                  "", "| model | task | setting | images | FSIM(c) | SSIM | ID AUC |", "|---|---|---|---:|---|---|---|"]
        for e in res["estimates"]:
            name = (on["lever"] if on else "base") if e["lever"] == "base" else (
                f"{on['lever']}+{e['lever']}" if on else e["lever"])
            cells = []
            for m in (HEADLINE[e["task"]], "ssim", IDENTITY):
                v = e.get(m)
                if not v or v["mean"] is None:
                    cells.append("-")
                    continue
                text = f"{v['mean']:.4f}"
                if v["interval"]:
                    text += f" [{v['interval'][0]:.4f}, {v['interval'][1]:.4f}]"
                if v["seed_spread"] is not None:
                    text += f" +- {v['seed_spread']:.4f}"
                cells.append(text)
            lines.append(f"| {e['model']} | {e['task']} | {name} | {e['images']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, help="a workspace whose data stages have run")
    ap.add_argument("--out", type=Path, help="results folder (reused: finished runs are not repeated)")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the settings the levers start from")
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 7])
    ap.add_argument("--models", nargs="+", default=["unet_gan", "vae"])
    ap.add_argument("--tasks", nargs="+", default=["f2s", "s2f"])
    ap.add_argument("--levers", nargs="*", default=["augment", "lr_schedule", "ssim", "small"],
                    choices=[*LEVERS, *TEST_TIME], help="none (`--levers` alone): the base setting only, "
                    "for its cross-validated estimate")
    ap.add_argument("--on", choices=list(LEVERS), help="stack the levers on this training lever: its runs "
                    "are the base (reused from a sweep without --on), each lever's runs are <on>+<lever>")
    ap.add_argument("--folds", type=int, default=0, help="K-fold cross-validation over the pairs (0: --seeds' "
                    "random splits)")
    ap.add_argument("--fold-seed", type=int, default=42, help="the seed that deals the identities into folds")
    ap.add_argument("--repeats", type=int, default=1, help="training seeds per setting (seed + 1000 r)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run, its spec as JSON
    args = ap.parse_args(argv)
    if args.one:
        import facesketch  # noqa: F401  (quiet TensorFlow first)

        run_one(json.loads(args.one))
        return 0
    if not args.workspace or not args.out:
        ap.error("--workspace and --out are needed")
    if args.on and args.on in args.levers:
        ap.error(f"--on {args.on}: it is the base of the comparison, not one of the --levers")
    if args.repeats < 1 or args.folds < 0 or args.folds == 1:
        ap.error("--repeats must be >= 1 and --folds 0 (off) or >= 2")
    processed = args.workspace / "data/processed/pairs.npz"
    if not processed.exists():
        ap.error(f"--workspace {args.workspace}: no {processed}; run `dvc repro preprocess` there first")
    from facesketch import models as registry

    unknown = sorted(set(args.models) - set(registry.available()))
    if unknown:
        ap.error(f"--models: unknown {', '.join(unknown)} (known: {', '.join(registry.available())})")
    start = time.time()
    res = sweep(args)
    res["wall_seconds"] = round(time.time() - start, 1)
    from facesketch.core import fileio

    md = markdown(res)
    stem = f"levers-on-{args.on}" if args.on else "levers"  # beside the plain sweep's tables, not over them
    fileio.write_json(args.out / f"{stem}.json", res)
    fileio.write_text(args.out / f"{stem}.md", md)
    print(md + f"\nlevers: done in {res['wall_seconds']:.0f} s; {args.out / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
