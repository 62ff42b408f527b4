"""Where the pipeline's files live, relative to the repository root: the one place
that spells them. No TensorFlow (nothing but pathlib), so any module can import it.

dvc.yaml declares the same paths as stage deps and outs; tests/test_layout.py
checks that it does.

- ``data/raw/`` (+ ``pairs.csv``), ``data/processed/pairs.npz``,
  ``data/split/split.json``: the data stages' contract (see :mod:`facesketch.data`);
- ``data/faces/geometry.json``: where the landmarks sit in the training photos (the
  face_geometry stage; predict aligns faces to it, see :mod:`facesketch.faces.measure`);
- ``models/<model>-<task>/``: ``model.keras`` (the inference network) and
  ``info.json`` (how it was trained);
- ``metrics/<name>.json``: a model's (or ``baselines-<task>``'s) scores;
  ``metrics/per_image/<name>.csv`` one row per test image;
  ``metrics/history/<model>-<task>.csv`` the loss per epoch;
- ``data/predictions/<model>-<task>/<id>.png``: the test predictions evaluate scored;
- ``checkpoints/<model>-<task>/``: resumable training state (not a DVC output);
- ``reports/``: the report stage's Markdown, HTML and figures.
"""

from __future__ import annotations

from pathlib import Path

RAW_DIR = Path("data/raw")
MANIFEST_NAME = "pairs.csv"
PROCESSED_FILE = Path("data/processed/pairs.npz")
SPLIT_FILE = Path("data/split/split.json")
PARAMS_CHECKED_FILE = Path("data/params_checked.txt")
PREDICTIONS_DIR = Path("data/predictions")
FACE_GEOMETRY_FILE = Path("data/faces/geometry.json")

MODELS_DIR = Path("models")
MODEL_FILE = "model.keras"
INFO_FILE = "info.json"

METRICS_DIR = Path("metrics")
PER_IMAGE_DIR = "per_image"  # under the metrics folder
HISTORY_DIR = METRICS_DIR / "history"

CHECKPOINT_ROOT = Path("checkpoints")

REPORTS_DIR = Path("reports")  # the report stage's folder (the file names inside are the report's own)


def run_name(model: str, task: str) -> str:
    """``conv-f2s``: names a trained model's folder, metrics, history and predictions."""
    return f"{model}-{task}"


def baselines_name(task: str) -> str:
    """``baselines-f2s``: names the baselines' metrics and predictions of a task."""
    return f"baselines-{task}"


def model_dir(name: str, models_dir: Path = MODELS_DIR) -> Path:
    return Path(models_dir) / name


def metrics_file(name: str, metrics_dir: Path = METRICS_DIR) -> Path:
    return Path(metrics_dir) / f"{name}.json"


def per_image_file(name: str, metrics_dir: Path = METRICS_DIR) -> Path:
    return Path(metrics_dir) / PER_IMAGE_DIR / f"{name}.csv"


def history_file(name: str, history_dir: Path = HISTORY_DIR) -> Path:
    return Path(history_dir) / f"{name}.csv"


def predictions_of(name: str, predictions_dir: Path = PREDICTIONS_DIR) -> Path:
    """The folder of ``name``'s test predictions."""
    return Path(predictions_dir) / name
