"""The report stage: the study's Table III for our runs, plus image grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import io
from .data import PROCESSED_FILE, SPLIT_FILE
from .data.dataset import load_task

REPORTS_DIR = Path("reports")
TASK_TITLES = {"f2s": "photo -> sketch (f2s)", "s2f": "sketch -> photo (s2f)"}
COLUMNS = ("mae", "psnr", "ssim", "fsim", "accuracy")


def collect(models: list[str], tasks: list[str], metrics_dir: Path = Path("metrics"),
            models_dir: Path = Path("models")) -> list[dict[str, Any]]:
    """One row per model x task (and per baseline) with its metrics and training facts."""
    rows = []
    for task in tasks:
        base_file = Path(metrics_dir) / f"baselines-{task}.json"
        if base_file.exists():
            for kind, summary in io.read_json(base_file).items():
                rows.append({"model": f"baseline: {kind.replace('_', ' ')}", "task": task, "baseline": True, **summary})
        for model in models:
            name = f"{model}-{task}"
            summary = io.read_json(Path(metrics_dir) / f"{name}.json")
            info_file = Path(models_dir) / name / "info.json"
            info = io.read_json(info_file) if info_file.exists() else {}
            rows.append({"model": model, "task": task, "baseline": False, **summary,
                         "parameters": info.get("parameters"), "train_seconds": info.get("train_seconds"),
                         "epochs": info.get("epochs")})
    return rows


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    head = "| model | task | " + " | ".join(c.upper() if c != "accuracy" else "rank-1 acc." for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for r in rows:
        name = f"*{r['model']}*" if r.get("baseline") else f"**{r['model']}**"
        lines.append(f"| {name} | {r['task']} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    band = np.full((18, img.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text[:24], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, img], axis=0)


def grid(task: str, models: list[str], n_pairs: int, *, predictions_dir: Path = Path("data/predictions"),
         processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE, tile: int = 128) -> np.ndarray:
    """RGB uint8 image: one row per test pair, columns input | each model | target."""
    test = load_task(task, "test", processed_file, split_file)
    k = min(n_pairs, len(test.ids))
    preds = {}
    for m in models:
        with np.load(Path(predictions_dir) / f"{m}-{task}.npz") as d:
            preds[m] = d["predictions"]

    return image_grid(test.ids[:k], [("input", test.inputs)] + [(m, preds[m]) for m in models]
                      + [("target", test.targets)], tile)


def image_grid(ids: list[str], columns: list[tuple[str, np.ndarray]], tile: int = 128) -> np.ndarray:
    """Rows of labelled tiles: one row per id, one column per (name, uint8 images) pair."""
    def fit(img):
        return cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA if img.shape[0] > tile else cv2.INTER_NEAREST)

    rows = []
    for i, pid in enumerate(ids):
        rows.append(np.concatenate([_label(fit(images[i]), f"{name} {pid}" if j == 0 else name)
                                    for j, (name, images) in enumerate(columns)], axis=1))
    return np.concatenate(rows, axis=0)


def write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    io.write_bytes(path, buf.tobytes())


def report(params: dict[str, Any], reports_dir: Path = REPORTS_DIR) -> Path:
    models, tasks = list(params["models"]), list(params["tasks"])
    n_pairs = int(params.get("report", {}).get("grid_pairs", 4))
    rows = collect(models, tasks)
    parts = ["# facesketch report", "",
             f"Data: `{params['data']['source']}`, {params['image_size']}x{params['image_size']} RGB, "
             f"split `{params['split']['protocol']}`; training: {params['optimizer']}, lr {params['learning_rate']}, "
             f"{params['epochs']} epochs, batch {params['batch_size']}, loss {params['loss']}, seed {params['seed']}.",
             "", "## Results on the test split (Table III layout)", "", markdown_table(rows), ""]
    grids = []
    for task in tasks:
        img = grid(task, models, n_pairs)
        png = Path(reports_dir) / f"grid-{task}.png"
        write_png(png, img)
        grids.append(img)
        parts += [f"## {TASK_TITLES[task]}", "", f"![{task} grid]({png.name})", ""]
    width = max(g.shape[1] for g in grids)
    combined = np.concatenate([np.pad(g, ((0, 8), (0, width - g.shape[1]), (0, 0)), constant_values=255) for g in grids])
    write_png(Path(reports_dir) / "grid.png", combined)
    out = Path(reports_dir) / "report.md"
    io.write_text(out, "\n".join(parts))
    return out
