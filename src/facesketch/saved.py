"""A trained model on disk: ``models/<model>-<task>/`` holds ``model.keras`` (the
inference network) and ``info.json`` (how it was trained). TensorFlow is
imported only to load one."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path("models")
MODEL_FILE = "model.keras"
INFO_FILE = "info.json"


def load_predictor(model_dir: Path):
    """The saved inference model of ``models/<name>-<task>``."""
    from . import tf_runtime

    tf_runtime.init()
    import keras

    return keras.models.load_model(Path(model_dir) / MODEL_FILE, compile=False)
