"""The evaluate stage: score a trained model (and the baselines) on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import io, tracking
from . import metrics as M
from .data import PROCESSED_FILE, SPLIT_FILE
from .data.dataset import load_task, to_float, to_uint8

METRICS_DIR = Path("metrics")
PREDICTIONS_DIR = Path("data/predictions")


def score(preds: np.ndarray, targets: np.ndarray, ids: list[str]) -> tuple[dict[str, Any], "Any"]:
    """(summary, per-image table) of float predictions against uint8 targets."""
    target_f = to_float(targets)
    per_image = M.per_image_metrics(preds, target_f, ids)
    return M.summarize(per_image, M.rank1_accuracy(preds, target_f)), per_image


def write_scores(name: str, summary: dict, per_image, metrics_dir: Path = METRICS_DIR) -> None:
    io.write_json(Path(metrics_dir) / f"{name}.json", summary)
    io.write_text(Path(metrics_dir) / "per_image" / f"{name}.csv", per_image.to_csv(index=False, float_format="%.6g"))


def evaluate(model_name: str, task: str, *, models_dir: Path = Path("models"), metrics_dir: Path = METRICS_DIR,
             predictions_dir: Path = PREDICTIONS_DIR, processed_file: Path = PROCESSED_FILE,
             split_file: Path = SPLIT_FILE, batch_size: int = 16) -> dict[str, Any]:
    from .training import INFO_FILE, load_predictor

    name = f"{model_name}-{task}"
    model_dir = Path(models_dir) / name
    info = io.read_json(model_dir / INFO_FILE)
    test = load_task(task, "test", processed_file, split_file)
    model = load_predictor(model_dir)
    # Score the 8-bit images we save (and a user would), as the literature scores saved outputs.
    preds_u8 = to_uint8(model.predict(to_float(test.inputs), batch_size=batch_size, verbose=0))
    preds = to_float(preds_u8)
    summary, per_image = score(preds, test.targets, test.ids)
    write_scores(name, summary, per_image, metrics_dir)
    io.save_npz(Path(predictions_dir) / f"{name}.npz", ids=np.array(test.ids), predictions=preds_u8)
    if info.get("mlflow_run_id"):
        from .report import image_grid

        shown = min(4, len(test.ids))
        sample = image_grid(test.ids[:shown], [("input", test.inputs), (model_name, preds_u8),
                                               ("target", test.targets)])
        tracking.log_to_run(info["mlflow_run_id"], {f"test_{k}": v for k, v in summary.items()},
                            [Path(metrics_dir) / "per_image" / f"{name}.csv"], {"test_samples.png": sample},
                            artifact_path="per_image", label=f"evaluation of {name}")
    else:
        tracking.not_logged(name, "test metrics, per-image CSV, sample grid", "its training run was not logged")
    return summary


def greyscale(images: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luminance, replicated to 3 channels (the study's sketches are grey)."""
    grey = images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)


def baselines(task: str, *, metrics_dir: Path = METRICS_DIR, processed_file: Path = PROCESSED_FILE,
              split_file: Path = SPLIT_FILE) -> dict[str, dict[str, Any]]:
    """What every model must beat: the mean training target and, for f2s, the grey photo."""
    train = load_task(task, "train", processed_file, split_file)
    test = load_task(task, "test", processed_file, split_file)
    n = len(test.ids)
    candidates = {"mean_target": np.broadcast_to(to_float(train.targets).mean(axis=0), (n, *train.targets.shape[1:]))}
    if task == "f2s":
        candidates["grey_input"] = greyscale(to_float(test.inputs))
    import pandas as pd

    results, tables = {}, []
    for kind, preds in candidates.items():
        summary, per_image = score(np.ascontiguousarray(preds, np.float32), test.targets, test.ids)
        results[kind] = summary
        tables.append(per_image.assign(baseline=kind))
    io.write_text(Path(metrics_dir) / "per_image" / f"baselines-{task}.csv",
                  pd.concat(tables).to_csv(index=False, float_format="%.6g"))
    io.write_json(Path(metrics_dir) / f"baselines-{task}.json", results)
    return results
