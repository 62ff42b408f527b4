"""Training one model on one task: compile, fit with per-epoch checkpoints,
resume after an interruption, save the model, history and MLflow run.

Checkpoints live in ``checkpoints/<model>-<task>/`` (git-ignored and not a
DVC output, so DVC does not delete them before re-running the stage). Each
holds a fingerprint of everything that shapes training; a checkpoint whose
fingerprint differs from the current run is stale and is discarded.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, io, tf_runtime
from . import models as registry
from . import params as P
from . import tracking
from .data import PROCESSED_FILE, SPLIT_FILE
from .data.dataset import load_task, to_float, train_photos

CHECKPOINT_ROOT = Path("checkpoints")
MODELS_DIR = Path("models")
HISTORY_DIR = Path("metrics/history")
MODEL_FILE = "model.keras"
INFO_FILE = "info.json"


def make_optimizer(name: str, learning_rate: float, **kwargs):
    import keras

    P.choice("optimizer", name, P.OPTIMIZERS)
    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(learning_rate=learning_rate, **kwargs)


def make_loss(name: str):
    import keras

    P.choice("loss", name, P.LOSSES)
    return {
        "mae": keras.losses.MeanAbsoluteError(),
        "mse": keras.losses.MeanSquaredError(),
        "bce": keras.losses.BinaryCrossentropy(),
    }[name]


def compile_model(model, training: dict[str, Any], cfg: dict[str, Any]) -> None:
    """The shared compile: ``optimizer``, ``learning_rate`` and ``loss`` from params.yaml."""
    model.compile(optimizer=make_optimizer(training["optimizer"], training["learning_rate"]),
                  loss=make_loss(training["loss"]))


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(model_name: str, task: str, training: dict, cfg: dict, data_files: list[Path]) -> str:
    blob = json.dumps({
        "model": model_name, "task": task, "training": training, "cfg": cfg,
        "data": [file_digest(p) for p in data_files], "version": __version__,
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _optimizers(model) -> list:
    import keras

    found = [v for v in vars(model).values() if isinstance(v, keras.optimizers.Optimizer)]
    if getattr(model, "optimizer", None) is not None and model.optimizer not in found:
        found.append(model.optimizer)
    return found


def _epoch_checkpoint_class():
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """Saves weights + optimizer state + history after every epoch, atomically.

        Keras' BackupAndRestore writes its weights file in place (a kill during
        the write leaves it corrupt) and restores before the optimizer exists
        (losing its state), so we do both ourselves.
        """

        def __init__(self, ckpt_dir: Path, state: dict[str, Any], history: list[dict], tracker: tracking.Tracker):
            super().__init__()
            self.ckpt_dir, self.state, self.history, self.tracker = ckpt_dir, state, history, tracker
            self.weights_file = ckpt_dir / "last.weights.h5"
            self._t0 = time.time()

        def restore(self, model) -> int:
            """Load the last finished epoch into ``model``; return the epoch to start from."""
            done = int(self.state.get("epochs_done", 0))
            if done and self.weights_file.exists():
                for opt in _optimizers(model):
                    if not opt.built:
                        opt.build(model.trainable_variables)
                model.load_weights(self.weights_file)
                del self.history[done:]
                return done
            return 0

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            self.history.append(row)
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
            with io.atomic_path(self.weights_file, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
            self.state.update(epochs_done=epoch + 1, history=self.history,
                              train_seconds=self.state.get("train_seconds", 0.0) + time.time() - self._t0)
            self._t0 = time.time()
            io.write_json(self.ckpt_dir / "state.json", self.state)

    return EpochCheckpoint


def history_csv(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise _Interrupted(signal.Signals(signum).name)


def train(model_name: str, task: str, params: dict[str, Any], *,
          processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE,
          models_dir: Path = MODELS_DIR, history_dir: Path = HISTORY_DIR,
          checkpoint_root: Path = CHECKPOINT_ROOT, verbose: int | str = "auto") -> dict[str, Any]:
    """Train ``model_name`` on ``task``; returns the info written to ``models/<name>-<task>/info.json``."""
    tracker = tracking.Tracker()
    old_term = signal.signal(signal.SIGTERM, _raise_interrupted)
    # Ctrl-C / `dvc queue kill` send SIGINT; a parent that ignores it (e.g. a pytest-xdist worker)
    # passes SIG_IGN on and Python then installs no KeyboardInterrupt handler: install it ourselves.
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _train(tracker, model_name, task, params, processed_file=processed_file, split_file=split_file,
                      models_dir=models_dir, history_dir=history_dir, checkpoint_root=checkpoint_root,
                      verbose=verbose)
    except (KeyboardInterrupt, _Interrupted):  # the MLflow run, wherever it failed: never left RUNNING
        tracker.end("KILLED")
        raise
    except BaseException:
        tracker.end("FAILED")
        raise
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def _train(tracker: tracking.Tracker, model_name: str, task: str, params: dict[str, Any], *,
           processed_file: Path, split_file: Path, models_dir: Path, history_dir: Path,
           checkpoint_root: Path, verbose: int | str) -> dict[str, Any]:
    P.task(task)
    training = P.training(params)
    cfg = registry.config(model_name, params)
    mod = registry.module(model_name)
    tf_runtime.init(training["seed"])

    train_set, val_set = load_task(task, "train", processed_file, split_file), load_task(task, "val", processed_file, split_file)
    x, y = to_float(train_set.inputs), to_float(train_set.targets)
    validation = (to_float(val_set.inputs), to_float(val_set.targets)) if val_set.ids else None
    size = x.shape[1]

    model = registry.build(model_name, size, params)
    if hasattr(mod, "prepare"):  # data-dependent initialisation (a checkpoint restore below overrides it)
        mod.prepare(model, x, y, cfg)
    getattr(mod, "compile_model", compile_model)(model, training, cfg)

    name = f"{model_name}-{task}"
    fp = fingerprint(model_name, task, training, cfg, [processed_file, split_file])
    ckpt_dir = Path(checkpoint_root) / name
    state_file = ckpt_dir / "state.json"
    state: dict[str, Any] = io.read_json(state_file) if state_file.exists() else {}
    if state.get("fingerprint") != fp:
        if state.get("run_id"):
            tracking.mark_run(state["run_id"], "KILLED")  # a stale, interrupted run: close it
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        state = {"fingerprint": fp}
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    tags = {"model": model_name, "task": task, "data_source": str(params.get("data", {}).get("source")),
            "git_commit": tracking.git_commit() or "unknown", "pipeline_run": tracking.group_id()}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    resumed_from = int(state.get("epochs_done", 0))
    tracker.start(str(params.get("mlflow", {}).get("experiment", "facesketch")), name, tags,
                  resume_run_id=state.get("run_id") if resumed_from else None)
    state["run_id"] = tracker.run_id
    io.write_json(state_file, state)
    logged_params = {**training, **{f"{model_name}.{k}": v for k, v in cfg.items()},
                     **{f"split.{k}": v for k, v in params.get("split", {}).items()},
                     **tracking.data_params(params),
                     "model": model_name, "task": task, "n_train": len(train_set.ids), "n_val": len(val_set.ids)}
    if not tracker.resumed:
        tracker.log_params(logged_params)

    history: list[dict] = list(state.get("history", []))
    ckpt = _epoch_checkpoint_class()(ckpt_dir, state, history, tracker)
    initial_epoch = ckpt.restore(model)
    if initial_epoch:
        print(f"{name}: resuming from checkpoint after epoch {initial_epoch}/{training['epochs']}", file=sys.stderr)

    try:  # signals and the MLflow run's end status are handled once, in train()
        if initial_epoch < training["epochs"]:
            model.fit(x, y, batch_size=training["batch_size"], epochs=training["epochs"],
                      initial_epoch=initial_epoch, validation_data=validation, shuffle=True,
                      callbacks=[ckpt], verbose=verbose)
    except (KeyboardInterrupt, _Interrupted):
        print(f"{name}: interrupted; the next `dvc repro` resumes after epoch {state.get('epochs_done', 0)}",
              file=sys.stderr)
        raise

    geometry = face_geometry(processed_file, split_file, size)
    predictor = registry.predictor(model)
    out_dir = Path(models_dir) / name
    info = {
        "model": model_name, "task": task, "image_size": int(size),
        "parameters": int(model.count_params()), "predictor_parameters": int(predictor.count_params()),
        "epochs": training["epochs"], "train_seconds": round(float(state.get("train_seconds", 0.0)), 2),
        "resumed_from_epoch": resumed_from, "training": training, "config": cfg,
        "mlflow_run_id": tracker.run_id, "n_train": len(train_set.ids), "n_val": len(val_set.ids),
        "final": history[-1] if history else {},
        "face_geometry": geometry.to_info(),
    }
    with io.atomic_dir(out_dir) as tmp:
        predictor.save(tmp / MODEL_FILE)
        io.write_json(tmp / INFO_FILE, info)
    history_file = Path(history_dir) / f"{name}.csv"
    io.write_text(history_file, history_csv(history))
    tracker.log_metrics({"train_seconds": info["train_seconds"], "parameters": info["parameters"]})
    tracker.log_artifact(history_file, "history")
    tracker.log_model(predictor, x[:1])
    tracker.end("FINISHED")
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # done: nothing left to resume
    return info


def face_geometry(processed_file: Path, split_file: Path, size: int):
    """Where the landmarks sit in the training photos (facesketch.faces.geometry), measured with the
    face detector; the CUHK default when the images are too small to measure or no detector works."""
    from .faces import geometry as G

    photos, sizes = train_photos(processed_file, split_file)
    aspect = G.training_aspect(sizes)
    if size < G.MIN_MEASURE_SIZE:
        return G.cuhk_default(f"training images are {size} px, too small to measure (under {G.MIN_MEASURE_SIZE})",
                              len(photos), 0)
    from .faces import detect as D

    try:
        return G.measure_geometry(photos, aspect, D.detect_faces)
    except Exception as exc:  # noqa: BLE001 - the model is trained: never lose it to the detector; say why
        reason = str(exc) if isinstance(exc, D.DetectorUnavailable) else f"face detection failed ({type(exc).__name__}: {exc})"
        print(f"warning: {reason}; storing the CUHK default face geometry", file=sys.stderr)
        return G.cuhk_default(reason, len(photos), 0)


def load_predictor(model_dir: Path):
    """The saved inference model of ``models/<name>-<task>``."""
    tf_runtime.init()
    import keras

    return keras.models.load_model(Path(model_dir) / MODEL_FILE, compile=False)
