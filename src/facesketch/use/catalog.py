"""The trained models on disk: what each is (info.json), how it scored (its metrics file, refused
when it scored another model file), and which one ``facesketch predict`` uses when none is named.

Which model, when none is named: among ``models/<model>-<task>/`` that exist
and have a ``metrics/<model>-<task>.json`` with a finite SSIM, the highest
SSIM (to 4 decimals) wins; ties go to the lower MAE, then the higher PSNR,
then fewer parameters (faster), then the name. A model without metrics is
never chosen by default; name it with ``--model``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable


from facesketch import TASKS
from facesketch.core import fileio
from facesketch.core import layout
from facesketch.core.errors import FacesketchError
from facesketch.core.layout import INFO_FILE, METRICS_DIR, MODEL_FILE, MODELS_DIR

SSIM_DECIMALS = 4


class ModelNotFound(FacesketchError):
    """No usable model for the request."""


# --- the models on disk ------------------------------------------------------------------------


@dataclass
class ModelEntry:
    """One trained model in ``models/``, with its metrics when they exist."""

    name: str                     # "conv-f2s"
    model: str                    # "conv"
    task: str                     # "f2s"
    path: Path                    # models/conv-f2s
    info: dict[str, Any]
    metrics: dict[str, Any] | None = None
    metrics_file: Path | None = None
    stale: str | None = None      # why metrics/<name>.json is not used: it scored another model file

    @property
    def image_size(self) -> int:
        return int(self.info["image_size"])

    @property
    def face_geometry(self):
        """Where the model's training faces had their landmarks (facesketch.faces.geometry.FaceGeometry):
        the face_geometry stage's output beside the models folder (see facesketch.faces.geometry.for_model)."""
        from facesketch.faces.geometry import for_model

        try:
            return for_model(self.path, self.info)
        except ValueError as exc:
            raise FacesketchError(f"{exc}; run `dvc repro face_geometry`, or use --no-align") from None

    @property
    def test_time(self) -> dict[str, bool]:
        """The test-time levers its scores include (evaluation/test_time.py; none without usable
        metrics): a predictor applies the same, so the scores describe its outputs."""
        from facesketch.evaluation.test_time import recorded

        try:
            return recorded(None if self.stale else self.metrics)
        except ValueError as exc:
            raise FacesketchError(f"{self.metrics_file}: {exc}") from None

    @property
    def ssim(self) -> float | None:
        return _finite((self.metrics or {}).get("ssim"))

    def rank_key(self) -> tuple:
        """Sort key, best first (see the module doc)."""
        m = self.metrics or {}
        mae, psnr = _finite(m.get("mae")), _finite(m.get("psnr"))
        return (-round(self.ssim, SSIM_DECIMALS),
                mae if mae is not None else math.inf,
                -psnr if psnr is not None else math.inf,
                int(self.info.get("predictor_parameters") or self.info.get("parameters") or 0),
                self.name)

    def summary(self) -> dict[str, Any]:
        training = self.info.get("training") or {}
        m = self.metrics or {}
        return {
            "name": self.name, "model": self.model, "task": self.task, "path": str(self.path),
            "image_size": self.info.get("image_size"), "epochs": self.info.get("epochs"),
            "optimizer": training.get("optimizer"), "loss": training.get("loss"),
            "learning_rate": training.get("learning_rate"),
            "parameters": self.info.get("parameters"),
            "predictor_parameters": self.info.get("predictor_parameters", self.info.get("parameters")),
            "mae": _finite(m.get("mae")), "psnr": _finite(m.get("psnr")), "ssim": _finite(m.get("ssim")),
            # SSIM rank-1: "ssim_rank1" since #26, "rank1" since the benchmark protocol, "accuracy" before
            "fsim": _finite(m.get("fsim")),
            "accuracy": _finite(m.get("ssim_rank1", m.get("rank1", m.get("accuracy")))),
            "test_time": (self.metrics or {}).get("test_time", "none") if not self.stale else "none",
            "metrics_file": str(self.metrics_file) if self.metrics_file else None,
            "metrics_stale": self.stale,
        }


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = fileio.read_json(path)
    except FileNotFoundError:
        raise FacesketchError(f"{path}: not found ({what})") from None
    except (OSError, ValueError) as exc:
        raise FacesketchError(f"{path}: cannot read {what} ({exc})") from None
    if not isinstance(data, dict):
        raise FacesketchError(f"{path}: expected a JSON object ({what})")
    return data


def load_entry(model_dir: Path, metrics_dir: Path = METRICS_DIR) -> ModelEntry:
    """The model saved in ``model_dir`` (``models/<model>-<task>``) and its metrics, if any."""
    model_dir = Path(model_dir)
    info = _read_json(model_dir / INFO_FILE, "the model's info")
    missing = [k for k in ("model", "task", "image_size") if k not in info]
    if missing:
        raise FacesketchError(f"{model_dir / INFO_FILE}: lacks {', '.join(missing)}; retrain with `dvc repro`")
    name = model_dir.name
    metrics_file = layout.metrics_file(name, metrics_dir)
    metrics, stale = None, None
    if metrics_file.exists():
        try:
            metrics = _read_json(metrics_file, "metrics")
        except FacesketchError as exc:
            print(f"warning: {exc}; ignoring it", file=sys.stderr)
    if metrics is not None:
        from facesketch.core.saved import metrics_mismatch

        stale = metrics_mismatch(metrics, model_dir, metrics_file)
        if stale:  # another model's scores: never shown or ranked as this one's
            metrics = None
    return ModelEntry(name, str(info["model"]), str(info["task"]), model_dir, info, metrics,
                      metrics_file if metrics is not None else None, stale)


def list_models(models_dir: Path = MODELS_DIR, metrics_dir: Path = METRICS_DIR, task: str | None = None,
                warn: Callable[[str], None] | None = None) -> list[ModelEntry]:
    """Every trained model under ``models_dir`` (sorted by task, then name); unreadable ones are warned about."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    entries = []
    for d in sorted(models_dir.iterdir()):
        if d.name.startswith(".") or not d.is_dir() or not (d / INFO_FILE).exists():
            continue  # temporary folders of an interrupted save, or not a model
        try:
            entry = load_entry(d, metrics_dir)
        except FacesketchError as exc:
            (warn or (lambda m: print(f"warning: {m}", file=sys.stderr)))(f"{exc}; skipped")
            continue
        if task is None or entry.task == task:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.task, e.name))


def best_model(entries: Iterable[ModelEntry]) -> ModelEntry | None:
    ranked = sorted((e for e in entries if e.ssim is not None), key=ModelEntry.rank_key)
    return ranked[0] if ranked else None


def choose_model(task: str, model: str | None = None, *, models_dir: Path = MODELS_DIR,
                 metrics_dir: Path = METRICS_DIR) -> tuple[ModelEntry, str]:
    """(the model to use, why it was chosen): ``model`` if given, else the best by metrics."""
    if task not in TASKS:
        raise FacesketchError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
    models_dir, metrics_dir = Path(models_dir), Path(metrics_dir)
    if model:
        name = model if model.endswith(f"-{task}") else layout.run_name(model, task)
        other = next((t for t in TASKS if t != task and model.endswith(f"-{t}")), None)
        if other:
            raise ModelNotFound(f"model {model!r} is trained for task {other}, not {task}; "
                                f"use --model {model[: -len(other) - 1]} or --task {other}")
        model_dir = layout.model_dir(name, models_dir)
        if not (model_dir / INFO_FILE).exists() or not (model_dir / MODEL_FILE).exists():
            from facesketch.models import REGISTRY  # names only: no TensorFlow

            trained = [e.name for e in list_models(models_dir, metrics_dir, task, warn=lambda m: None)]
            hint = (f"trained {task} models there: {', '.join(trained)}" if trained
                    else f"no {task} model is trained there")
            base = name[: -len(task) - 1]
            if base not in REGISTRY:  # no stage train@<it> can exist: do not suggest one
                raise ModelNotFound(f"unknown model {base!r} ({hint}); the models are: {', '.join(REGISTRY)} "
                                    f"(see `facesketch models`)")
            raise ModelNotFound(f"model {name!r} not found: {model_dir}/ has no {MODEL_FILE} and {INFO_FILE} "
                                f"({hint}); train it with `dvc repro train@{name}` (with {base} in params.yaml: "
                                f"models) or see `facesketch models`")
        entry = load_entry(model_dir, metrics_dir)
        if entry.task != task:
            raise ModelNotFound(f"{model_dir / INFO_FILE}: the model is for task {entry.task}, not {task}")
        return entry, "named with --model"

    entries = list_models(models_dir, metrics_dir, task)
    if not entries:
        raise ModelNotFound(f"no trained {task} model in {models_dir}/; run `dvc repro` (or `facesketch demo`) "
                            f"to train one, or pass --models-dir")
    best = best_model(entries)
    if best is None:
        names = ", ".join(e.name for e in entries)
        stale = "; ".join(e.stale for e in entries if e.stale)
        raise ModelNotFound(f"no metrics for the {task} models in {models_dir}/ ({names}): "
                            f"{metrics_dir}/<model>-{task}.json missing, without SSIM or stale, so there is no best "
                            f"one; pass --model NAME, or run `dvc repro` to evaluate them"
                            + (f" ({stale})" if stale else ""))
    unscored = [e.name for e in entries if e.ssim is None and not e.stale]
    stale = [e.name for e in entries if e.stale]
    why = f"best {task} model by SSIM {best.ssim:.4f} in {best.metrics_file}"
    if unscored:
        why += f"; not ranked, no metrics: {', '.join(unscored)}"
    if stale:
        why += f"; not ranked, stale metrics (they scored another model file): {', '.join(stale)}"
    return best, why


def describe(entry: ModelEntry) -> str:
    s = entry.summary()
    bits = [f"{s['model']}", f"{s['image_size']}px"]
    if s.get("epochs"):
        bits.append(f"{s['epochs']} epoch{'s' * (s['epochs'] != 1)}")
    return f"{entry.name} ({', '.join(bits)})"


def as_json(entries: list[ModelEntry]) -> str:
    best = {t: best_model([e for e in entries if e.task == t]) for t in TASKS}
    rows = [{**e.summary(), "best": best.get(e.task) is e} for e in entries]
    return json.dumps(rows, indent=2)
