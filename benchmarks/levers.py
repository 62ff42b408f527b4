"""Training levers, one at a time: each lever's effect on the benchmark protocol's scores.

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
}
# what the base run switches off (params.yaml's defaults are the study's; these make sure)
BASE = {"augment": {"jitter": 0.0, "flip": False}, "lr_schedule": "constant", "ssim_weight": 0.0, "ema_decay": 0.0}
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


def run_params(params: dict[str, Any], *, lever: str, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    """params.yaml's settings for one run: the base setting, then the lever's overrides."""
    p = merged(params, {**BASE, "epochs": epochs, "batch_size": batch_size, "seed": seed,
                        "mlflow": {"experiment": "levers"},
                        "split": {"protocol": "random", "test_fraction": 0.2, "val_fraction": 0.0, "seed": seed}})
    return merged(p, LEVERS[lever][2]) if lever != "base" else p


def applies(lever: str, model: str) -> bool:
    return lever == "base" or LEVERS[lever][1] is None or model in LEVERS[lever][1]


def run_one(spec: dict[str, Any]) -> None:
    """Train and evaluate one model x task x lever (in a process of its own: a clean TensorFlow)."""
    from facesketch.core import fileio
    from facesketch.evaluation.evaluate import evaluate
    from facesketch.training.fit import train

    ws, folder = Path(spec["workspace"]), Path(spec["folder"])
    data = {"processed_file": ws / "data/processed/pairs.npz", "split_file": Path(spec["split_file"])}
    start = time.time()
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
    """after - before on the same images: the mean and its paired bootstrap interval."""
    from facesketch.evaluation.protocol import paired_difference

    both = before.index.intersection(after.index)
    diff, interval, n = paired_difference(after.loc[both, metric].to_numpy(), before.loc[both, metric].to_numpy())
    return {"diff": diff, "interval": list(interval) if interval else None, "images": n,
            "significant": bool(interval and (interval[0] > 0 or interval[1] < 0))}


def fmt_delta(d: dict[str, Any]) -> str:
    if d["interval"] is None:
        return f"{d['diff']:+.4f}"
    star = " *" if d["significant"] else ""
    return f"{d['diff']:+.4f} [{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]{star}"


def sweep(args) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from facesketch.core import fileio
    from facesketch.data.split import split
    from facesketch.core.params import load_params

    ws, out = Path(args.workspace).resolve(), Path(args.out).resolve()
    params = load_params(args.params)
    with np.load(ws / "data/processed/pairs.npz") as data:
        size = int(data["photos"].shape[1])
    params["image_size"] = size
    env = {**os.environ, "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{out}/mlflow.db"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    runs = []
    for seed in args.seeds:
        split_file = out / f"seed-{seed}" / "split.json"
        if not split_file.exists():
            split(run_params(params, lever="base", epochs=args.epochs, batch_size=args.batch_size, seed=seed),
                  ws / "data/processed/pairs.npz", split_file)
        for model in args.models:
            for task in args.tasks:
                for lever in ["base", *args.levers]:
                    if not applies(lever, model):
                        continue
                    folder = out / f"seed-{seed}" / f"{model}-{task}-{lever}"
                    if not (folder / "result.json").exists():
                        spec = {"workspace": str(ws), "folder": str(folder), "split_file": str(split_file),
                                "model": model, "task": task,
                                # models/tasks: this run's only (the time estimate counts the others)
                                "params": {**run_params(params, lever=lever, epochs=args.epochs,
                                                        batch_size=args.batch_size, seed=seed),
                                           "models": [model], "tasks": [task]}}
                        print(f"levers: seed {seed}, {model}-{task}, {lever} ...", flush=True)
                        subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], env=env,
                                       cwd=ws, check=True)
                    result = fileio.read_json(folder / "result.json")
                    runs.append({"seed": seed, "model": model, "task": task, "lever": lever,
                                 "per_image": per_image(folder, model, task), **result})
                    print(f"levers: seed {seed}, {model}-{task}, {lever}: "
                          + ", ".join(f"{k} {v:.4f}" for k, v in result["scores"].items())
                          + f" ({result['train_seconds']:.0f} s training)", flush=True)

    rows, pooled = [], []
    scores = {(r["seed"], r["model"], r["task"], r["lever"]): r["per_image"] for r in runs}
    for r in runs:
        row = {k: r[k] for k in ("seed", "model", "task", "lever", "train_seconds", "epochs", "parameters")}
        row["scores"] = r["scores"]
        if r["lever"] != "base":
            b = scores[(r["seed"], r["model"], r["task"], "base")]
            row["delta"] = {m: delta(b, r["per_image"], m)
                            for m in compared(r["task"], b.columns.intersection(r["per_image"].columns))}
        rows.append(row)
    for model in args.models:
        for task in args.tasks:
            for lever in args.levers:
                if not applies(lever, model):
                    continue
                # every seed's images in one paired sample (ids made unique per seed)
                b, a = (pd.concat([scores[(seed, model, task, which)].rename(index=lambda i, s=seed: f"{s}:{i}")
                                   for seed in args.seeds]) for which in ("base", lever))
                judged = compared(task, [c for c in b.columns.intersection(a.columns)
                                         if b[c].notna().all() and a[c].notna().all()])
                pooled.append({"model": model, "task": task, "lever": lever,
                               "before": {m: float(b[m].mean()) for m in judged},
                               "after": {m: float(a[m].mean()) for m in judged},
                               "delta": {m: delta(b, a, m) for m in judged}})
    return {"workspace": str(ws), "image_size": size, "epochs": args.epochs, "batch_size": args.batch_size,
            "seeds": args.seeds, "levers": {k: LEVERS[k][0] for k in args.levers}, "runs": rows, "pooled": pooled}


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Levers one at a time against the base run ({res['image_size']} px, {res['epochs']} epochs, batch "
             f"{res['batch_size']}, every training pair, no augmentation, constant learning rate, no SSIM term, "
             "no weight average); "
             "scored by the benchmark protocol on each seed's random test split. Delta: lever minus base on the "
             "same images, 95% paired bootstrap interval; * the interval excludes 0. FSIM for f2s, FSIMc for s2f; "
             "ID AUC: identity kept (ROC AUC of dlib's face descriptors, evaluation/identity.py), where scored.",
             "", "| seed | model | task | lever | FSIM(c) | delta | SSIM | delta | ID AUC | delta | training s |",
             "|---:|---|---|---|---:|---|---:|---|---:|---|---:|"]

    def cell(value, d, metric):
        return (f"{value:.4f}" if value is not None else "-"), (fmt_delta(d[metric]) if d and metric in d else "")

    for r in res["runs"]:
        head = HEADLINE[r["task"]]
        d = r.get("delta")
        cells = [x for m in (head, "ssim", IDENTITY) for x in cell(r["scores"].get(m), d, m)]
        lines.append(f"| {r['seed']} | {r['model']} | {r['task']} | {r['lever']} | " + " | ".join(cells)
                     + f" | {r['train_seconds']:.0f} |")
    lines += ["", f"Pooled over seeds {', '.join(map(str, res['seeds']))} (every test image of every seed, paired):",
              "", ("| model | task | lever | FSIM(c) before -> after | delta | SSIM before -> after | delta "
                   "| ID AUC before -> after | delta |"),
              "|---|---|---|---|---|---|---|---|---|"]
    for p in res["pooled"]:
        head = HEADLINE[p["task"]]
        cells = []
        for m in (head, "ssim", IDENTITY):
            if m in p["delta"]:
                cells += [f"{p['before'][m]:.4f} -> {p['after'][m]:.4f}", fmt_delta(p["delta"][m])]
            else:
                cells += ["-", ""]
        lines.append(f"| {p['model']} | {p['task']} | {p['lever']} ({res['levers'][p['lever']]}) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, help="a workspace whose data stages have run")
    ap.add_argument("--out", type=Path, help="results folder (reused: finished runs are not repeated)")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the settings the levers start from")
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 7])
    ap.add_argument("--models", nargs="+", default=["unet_gan", "vae"])
    ap.add_argument("--tasks", nargs="+", default=["f2s", "s2f"])
    ap.add_argument("--levers", nargs="+", default=["augment", "lr_schedule", "ssim", "small"], choices=list(LEVERS))
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
    fileio.write_json(args.out / "levers.json", res)
    fileio.write_text(args.out / "levers.md", md)
    print(md + f"\nlevers: done in {res['wall_seconds']:.0f} s; {args.out / 'levers.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
