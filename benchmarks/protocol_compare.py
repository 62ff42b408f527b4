"""Old scoring versus the benchmark protocol, side by side, for every trained model x task.

Old (before the benchmark protocol): the 8-bit predictions at image_size, scored
as floats in [0, 1] against the *cleaned* targets of data/processed at the same
size (MAE/PSNR over RGB, SSIM per RGB channel, FSIM grey, rank-1 by grey SSIM).
New: ``facesketch.evaluation.protocol``: native size, original targets, 8-bit grey/RGB;
read from metrics/<model>-<task>.json when it already holds the protocol's
scores (evaluate wrote it), otherwise computed here (predictions go to a
temporary folder; nothing in the workspace is changed).

Run it in a workspace whose pipeline has run (models/, data/raw, data/processed,
data/split; metrics/ optional):

    python benchmarks/protocol_compare.py                     # the current folder
    python benchmarks/protocol_compare.py --workspace DIR --json compare.json
    python benchmarks/protocol_compare.py --recompute         # ignore metrics/*.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import facesketch  # noqa: F401  (quiet TensorFlow first)

COLUMNS = ("mae", "psnr", "ssim", "fsim", "scoot", "fsimc", "rank1")
DIGITS = {"mae": 4, "psnr": 2, "ssim": 4, "fsim": 4, "scoot": 4, "fsimc": 4, "rank1": 3}


def trained(models_dir: Path) -> list[tuple[str, str]]:
    """(model, task) of every models/<model>-<task>/ holding a saved model."""
    from facesketch import TASKS

    out = []
    for d in sorted(models_dir.glob("*-*")):
        model, _, task = d.name.rpartition("-")
        if task in TASKS and (d / "model.keras").exists():
            out.append((model, task))
    return out


def compare(workspace: Path, recompute: bool = False) -> list[dict[str, Any]]:
    from facesketch.evaluation import protocol
    from facesketch.core import fileio
    from facesketch.evaluation import metrics
    from facesketch.data.dataset import load_task, to_float, to_uint8
    from facesketch.core.saved import load_predictor

    ws = Path(workspace)
    processed, split_file, raw = ws / "data/processed/pairs.npz", ws / "data/split/split.json", ws / "data/raw"
    split = fileio.read_json(split_file)
    rows = []
    for model_name, task in trained(ws / "models"):
        name = f"{model_name}-{task}"
        test = load_task(task, "test", processed, split_file)
        model = load_predictor(ws / "models" / name)
        preds_u8 = to_uint8(model.predict(to_float(test.inputs), batch_size=16, verbose=0))

        preds, targets = to_float(preds_u8), to_float(test.targets)
        old = metrics.summarize(metrics.per_image_metrics(preds, targets, test.ids), metrics.rank1_accuracy(preds, targets))
        old["rank1"] = old.pop("accuracy")

        metrics_file = ws / "metrics" / f"{name}.json"
        saved = fileio.read_json(metrics_file) if metrics_file.exists() else {}
        if not recompute and "protocol" in saved:
            new, source = saved, str(metrics_file)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                new, _ = protocol.score(task, preds_u8, test.ids, protocol.read_targets(task, test.ids, raw), Path(tmp) / name)
            source = "computed here"
        rows.append({"model": model_name, "task": task, "split": split.get("protocol"),
                     "n_images": len(test.ids), "image_size": int(test.inputs.shape[1]),
                     "old": {k: old.get(k) for k in COLUMNS if k in old},
                     "new": {k: new.get(k) for k in COLUMNS if k in new},
                     "new_intervals": new.get("intervals"), "new_source": source})
    return rows


def fmt(v: Any, key: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{DIGITS[key]}f}"


OLD_COLUMNS = ("mae", "psnr", "ssim", "fsim", "rank1")  # the old scoring had no SCOOT or FSIMc


def as_table(rows: list[dict[str, Any]]) -> str:
    head = ["model", "task"] + [f"{k} old" for k in OLD_COLUMNS] + [f"{k} new" for k in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(OLD_COLUMNS) + len(COLUMNS))]
    for r in rows:
        cells = [r["model"], r["task"]] + [fmt(r["old"].get(k), k) for k in OLD_COLUMNS] + \
                [fmt(r["new"].get(k), k) for k in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, default=Path("."), help="pipeline folder (default: .)")
    ap.add_argument("--recompute", action="store_true", help="compute the protocol's scores even where "
                    "metrics/<model>-<task>.json holds them")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write every figure as JSON")
    ns = ap.parse_args(argv)
    rows = compare(ns.workspace, ns.recompute)
    if not rows:
        print(f"no trained models in {ns.workspace / 'models'}/", file=sys.stderr)
        return 1
    first = rows[0]
    print(f"{len(rows)} model x task, split {first['split']}, {first['n_images']} test pairs, "
          f"models at {first['image_size']} px. old: image_size squares vs cleaned targets; "
          "new: benchmark protocol (native size, original targets). rank1 as a share.\n")
    print(as_table(rows))
    if ns.json:
        ns.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
