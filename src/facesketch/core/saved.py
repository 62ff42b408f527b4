"""Loading a trained model from disk (``models/<model>-<task>/``, see
:mod:`facesketch.core.layout`). TensorFlow is imported only to load one."""

from __future__ import annotations

from pathlib import Path

from facesketch.core.layout import MODEL_FILE


def load_predictor(model_dir: Path):
    """The saved inference model of ``models/<name>-<task>``."""
    from facesketch.core import backend

    backend.init()
    import keras

    return keras.models.load_model(Path(model_dir) / MODEL_FILE, compile=False)
