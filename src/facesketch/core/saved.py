"""Loading a trained model from disk (``models/<model>-<task>/``, see
:mod:`facesketch.core.layout`). TensorFlow is imported only to load one."""

from __future__ import annotations

from pathlib import Path

from facesketch.core import fileio
from facesketch.core.layout import MODEL_FILE

# the key in metrics/<model>-<task>.json naming the exact model file it scored (#27)
SCORED_MODEL_KEY = "model_sha256"


def model_sha256(model_dir: Path) -> str | None:
    """sha256 of ``models/<name>-<task>/model.keras``, None when it is missing or unreadable."""
    try:
        return fileio.sha256_file(Path(model_dir) / MODEL_FILE)
    except OSError:
        return None


def metrics_mismatch(metrics: dict, model_dir: Path, metrics_file: Path) -> str | None:
    """Why ``metrics`` (read from ``metrics_file``) are not those of the model in ``model_dir``, or None
    when they are: evaluate stores the sha256 of the model file it scored. A file without that key
    (written before #27) is taken as it is."""
    scored = metrics.get(SCORED_MODEL_KEY)
    if scored is None:
        return None  # written before #27: cannot tell (the pipeline re-runs evaluate once after upgrading)
    rerun = f"`dvc repro evaluate@{Path(model_dir).name}` scores the model that is there"
    actual = model_sha256(model_dir)
    if actual != scored:
        now = f"sha256 {actual[:12]}" if actual else "missing"
        return (f"{metrics_file} scored another model (sha256 {str(scored)[:12]}) than "
                f"{Path(model_dir) / MODEL_FILE} ({now}); {rerun}")
    return None


def load_predictor(model_dir: Path):
    """The saved inference model of ``models/<name>-<task>``. A file that is there but is no
    .keras archive (corrupt, truncated) is a FacesketchError saying so: Keras calls it "File not found"."""
    import zipfile

    from facesketch.core.errors import FacesketchError

    file = Path(model_dir) / MODEL_FILE
    if file.is_file() and not zipfile.is_zipfile(file):
        name = Path(model_dir).name
        raise FacesketchError(f"{file}: corrupt or truncated model file ({file.stat().st_size} bytes, not a "
                              f".keras zip archive); `dvc checkout {Path(model_dir).as_posix()}` restores the saved "
                              f"one from DVC's cache, `dvc repro train@{name}` retrains it")
    from facesketch.core import backend

    backend.init()
    import keras

    return keras.models.load_model(file, compile=False)
