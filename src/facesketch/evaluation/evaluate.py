"""The evaluate stage: score a trained model (and the baselines) on the test split.

Scoring follows the benchmark protocol of ``facesketch.evaluation.protocol``: native-size
predictions saved as PNGs under ``data/predictions/``, original targets from
``data/raw``; ``metrics/<name>.json`` holds the means (top level), their
bootstrap intervals and the protocol, ``metrics/per_image/<name>.csv`` one
row per test image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facesketch.evaluation import protocol
from facesketch import tracking
from facesketch.core import fileio
from facesketch.data.dataset import load_task, to_float, to_uint8
from facesketch.core.images import luma
from facesketch.core.layout import (INFO_FILE, METRICS_DIR, MODELS_DIR, PREDICTIONS_DIR, PROCESSED_FILE, RAW_DIR, SPLIT_FILE,
                     baselines_name, metrics_file, model_dir, per_image_file, predictions_of, run_name)


def score(task: str, preds_u8: np.ndarray, ids: list[str], out_dir: Path,
          raw_dir: Path = RAW_DIR) -> tuple[dict[str, Any], "Any"]:
    """(summary, per-image table) of 8-bit predictions by the benchmark protocol; the native
    predictions scored are saved in ``out_dir``."""
    return protocol.score(task, preds_u8, ids, protocol.read_targets(task, ids, raw_dir), out_dir)


def logged_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The summary's numeric top-level values (what DVC's metrics compare) as MLflow test_* metrics."""
    return {f"test_{k}": v for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def write_scores(name: str, summary: dict, per_image, metrics_dir: Path = METRICS_DIR) -> None:
    fileio.write_json(metrics_file(name, metrics_dir), summary)
    fileio.write_text(per_image_file(name, metrics_dir), per_image.to_csv(index=False, float_format="%.6g"))


def evaluate(model_name: str, task: str, *, models_dir: Path = MODELS_DIR, metrics_dir: Path = METRICS_DIR,
             predictions_dir: Path = PREDICTIONS_DIR, processed_file: Path = PROCESSED_FILE,
             split_file: Path = SPLIT_FILE, raw_dir: Path = RAW_DIR, batch_size: int = 16,
             test_time: dict[str, bool] | None = None, track: bool = True) -> dict[str, Any]:
    """Score one trained model by the benchmark protocol and write its metrics files.

    ``test_time``: the test-time levers of ``facesketch.evaluation.test_time`` (mirror, bilateral;
    none by default), recorded in the summary. ``track=False`` logs nothing to the model's MLflow
    run (the lever study scores one model several ways and must not overwrite its record).
    """
    from facesketch.core.saved import SCORED_MODEL_KEY, load_predictor, model_sha256
    from facesketch.evaluation import test_time as tt

    name = run_name(model_name, task)
    folder = model_dir(name, models_dir)
    info = fileio.read_json(folder / INFO_FILE)
    test = load_task(task, "test", processed_file, split_file)
    scored = model_sha256(folder)  # before loading: the bytes the scores below belong to
    model = load_predictor(folder)
    # Score the 8-bit images we save (and a user would), as the literature scores saved outputs.
    options = tt.check(test_time)
    preds_u8 = to_uint8(tt.predict(model, to_float(test.inputs), mirror=options["mirror"], batch_size=batch_size))
    if options["bilateral"]:
        preds_u8 = tt.bilateral(preds_u8)
    summary, per_image = score(task, preds_u8, test.ids, predictions_of(name, predictions_dir), raw_dir)
    if any(options.values()):
        summary[tt.RECORD_KEY] = tt.describe(options)
    summary[SCORED_MODEL_KEY] = scored  # readers refuse these scores for any other model file (#27)
    write_scores(name, summary, per_image, metrics_dir)
    if not track:
        return summary
    if info.get("mlflow_run_id"):
        from facesketch.evaluation.grids import image_grid

        shown = min(4, len(test.ids))
        sample = image_grid(test.ids[:shown], [("input", test.inputs), (model_name, preds_u8),
                                               ("target", test.targets)])
        tracking.log_to_run(info["mlflow_run_id"], logged_metrics(summary),
                            [per_image_file(name, metrics_dir)], {"test_samples.png": sample},
                            artifact_path="per_image", label=f"evaluation of {name}",
                            tags={tt.RECORD_KEY: tt.describe(options)})
    else:
        tracking.not_logged(name, "test metrics, per-image CSV, sample grid", "its training run was not logged")
    return summary


def greyscale(images: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luminance, replicated to 3 channels (the study's sketches are grey)."""
    return np.repeat(luma(images)[..., None], 3, axis=-1).astype(np.float32)


def baselines(task: str, *, metrics_dir: Path = METRICS_DIR, processed_file: Path = PROCESSED_FILE,
              split_file: Path = SPLIT_FILE, raw_dir: Path = RAW_DIR,
              predictions_dir: Path = PREDICTIONS_DIR) -> dict[str, dict[str, Any]]:
    """What every model must beat: the mean training target (one constant image) and the input
    itself (f2s: the grey photo, as every f2s output is grey; s2f: the sketch as it is): the
    baselines beside each metric, the identity metric's included (the input as the query).

    Each is made at image_size like a model's output and scored the same way;
    its native predictions go to ``data/predictions/baselines-<task>/<kind>/``.
    """
    train = load_task(task, "train", processed_file, split_file)
    test = load_task(task, "test", processed_file, split_file)
    n = len(test.ids)
    candidates = {"mean_target": np.broadcast_to(to_float(train.targets).mean(axis=0), (n, *train.targets.shape[1:]))}
    if task == "f2s":
        candidates["grey_input"] = greyscale(to_float(test.inputs))
    else:
        candidates["input"] = to_float(test.inputs)
    import pandas as pd

    targets = protocol.read_targets(task, test.ids, raw_dir)
    results, tables = {}, []
    for kind, preds in candidates.items():
        summary, per_image = protocol.score(task, to_uint8(preds), test.ids, targets,
                                     predictions_of(baselines_name(task), predictions_dir) / kind)
        results[kind] = summary
        tables.append(per_image.assign(baseline=kind))
    fileio.write_text(per_image_file(baselines_name(task), metrics_dir),
                  pd.concat(tables).to_csv(index=False, float_format="%.6g"))
    fileio.write_json(metrics_file(baselines_name(task), metrics_dir), results)
    return results
