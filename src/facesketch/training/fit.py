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
import io
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.training import estimate
from facesketch.core import fileio
from facesketch.training import losses
from facesketch.core import backend
from facesketch.training import weight_average
from facesketch import models as registry
from facesketch.core.params import section as param_section
from facesketch.core.params import runtime as runtime_settings, task as check_task, training as training_settings
from facesketch import tracking
from facesketch.data.dataset import load_task, to_float
from facesketch.core.errors import DataError, Interrupted
from facesketch.core.layout import (CHECKPOINT_ROOT, HISTORY_DIR, INFO_FILE, MODEL_FILE, MODELS_DIR, PROCESSED_FILE, SPLIT_FILE,
                     history_file, model_dir, run_name)
# the pieces of training, re-exported under their old names here (tests patch _epoch_checkpoint_class)
from facesketch.training.checkpoints import epoch_checkpoint_class as _epoch_checkpoint_class, fingerprint
from facesketch.training.checkpoints import optimizers as _optimizers  # noqa: F401
from facesketch.training.factories import compile_model, make_loss, make_optimizer  # noqa: F401
from facesketch.training.inputs import make_dataset, training_inputs, validation_inputs  # noqa: F401


def weights_digest(model) -> str:
    """sha256 of a model's weights, in order, as raw bytes."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def history_csv(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# Signals that arrived during fit(), raised at the next batch's end (see _raise_interrupted).
_pending_signals: list[int] = []
_in_fit = False


def _interrupted(signum: int) -> Interrupted:
    return Interrupted(signum, f"interrupted ({signal.Signals(signum).name})")


def _raise_interrupted(signum, frame):
    """Ctrl-C / SIGTERM. During fit() it is noted and raised at the next batch's end: raised wherever
    it lands, it could land inside NumPy's conversion of a JAX array (Keras converts each batch's
    logs), which swallows it, and training ran on to the end. Elsewhere it is raised at once."""
    if _in_fit:
        _pending_signals.append(signum)
        return
    raise _interrupted(signum)


def _raise_pending() -> None:
    if _pending_signals:
        signum = _pending_signals[0]
        _pending_signals.clear()
        raise _interrupted(signum)


def _interrupt_callback():
    """Raises a signal noted during fit() at the next batch's (or epoch's) end."""
    import keras

    class RaisePendingSignal(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            _raise_pending()

        def on_test_batch_end(self, batch, logs=None):
            _raise_pending()

        def on_epoch_end(self, epoch, logs=None):
            _raise_pending()

    return RaisePendingSignal()


def train(model_name: str, task: str, params: dict[str, Any], *,
          processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE,
          models_dir: Path = MODELS_DIR, history_dir: Path = HISTORY_DIR,
          checkpoint_root: Path = CHECKPOINT_ROOT, verbose: int | str = "auto") -> dict[str, Any]:
    """Train ``model_name`` on ``task``; returns the info written to ``models/<name>-<task>/info.json``."""
    tracker = tracking.Tracker()
    old_term = signal.signal(signal.SIGTERM, _raise_interrupted)
    # Ctrl-C / `dvc queue kill` send SIGINT; a parent that ignores it (e.g. a pytest-xdist worker)
    # passes SIG_IGN on and Python then installs no KeyboardInterrupt handler: install it ourselves.
    old_int = signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        # a read-only or full output folder: found now, not after hours of training (#27)
        fileio.check_writable(models_dir, history_dir, checkpoint_root, what="training did not start")
        return _train(tracker, model_name, task, params, processed_file=processed_file, split_file=split_file,
                      models_dir=models_dir, history_dir=history_dir, checkpoint_root=checkpoint_root,
                      verbose=verbose)
    except KeyboardInterrupt:  # also Interrupted; the MLflow run, wherever it stopped: never left RUNNING
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
    check_task(task)
    training = training_settings(params)
    runtime = runtime_settings(params)
    cfg = registry.config(model_name, params)
    model_spec = registry.spec(model_name)
    backend_name = backend.select(runtime["backend"])  # refuses a backend Keras was not imported with
    backend.init(training["seed"])
    import keras

    train_set, val_set = load_task(task, "train", processed_file, split_file), load_task(task, "val", processed_file, split_file)
    size = train_set.inputs.shape[1]
    chief = backend.is_chief()
    strategy = backend.strategy(runtime["distribute"])
    policy = backend.precision_policy(runtime["precision"])
    keras.mixed_precision.set_dtype_policy(policy)  # set every time: one process may train several models
    with strategy.scope():
        model = registry.build(model_name, size, params)
        # data-dependent initialisation (a checkpoint restore below overrides it)
        model_spec.prepare(model, to_float(train_set.inputs), to_float(train_set.targets), cfg)
        steps_per_epoch = losses.steps_per_epoch(len(train_set.ids), training["batch_size"],
                                                 strategy.num_replicas_in_sync)
        total_steps = training["epochs"] * steps_per_epoch
        (model_spec.compile_model or compile_model)(model, training, cfg, jit_compile=runtime["jit_compile"],
                                                    total_steps=total_steps)
    replicas = strategy.num_replicas_in_sync
    if len(train_set.ids) < replicas:
        raise DataError(f"{split_file}: {len(train_set.ids)} training pairs cannot feed {replicas} replicas")
    # one of several JAX processes: this process feeds its share of every global batch
    cluster = {"process": backend.jax_processes()} if backend.jax_processes()[1] > 1 else {}
    train_data = training_inputs(backend_name, train_set.inputs, train_set.targets, training["batch_size"],
                                 shuffle_seed=training["seed"], replicas=replicas, augment=training["augment"],
                                 **cluster)
    val_data = (validation_inputs(backend_name, val_set.inputs, val_set.targets, training["batch_size"], replicas,
                                  **cluster)
                if len(val_set.ids) >= replicas and val_set.ids else None)

    name = run_name(model_name, task)
    print(f"{name}: training under Keras' {backend_name} backend on {', '.join(backend.devices())} "
          f"({replicas} replica{'s' if replicas > 1 else ''})", flush=True)  # stdout: stderr carries the estimate
    # jit_compile, precision and the backend change the arithmetic; the device layout and checkpoint interval do not
    arithmetic = {**training, "jit_compile": runtime["jit_compile"], "precision": policy}
    if backend_name != "tensorflow":  # TensorFlow's fingerprints stay as they were
        arithmetic["backend"] = backend_name
    fp = fingerprint(model_name, task, arithmetic, cfg, [processed_file, split_file])
    ckpt_dir = Path(checkpoint_root) / name
    if not chief:  # a non-chief worker of a cluster: its own scratch space, no MLflow run, no outputs
        ckpt_dir = ckpt_dir / f"worker-{backend.task_index()}"
    state_file = ckpt_dir / "state.json"
    state: dict[str, Any] = fileio.read_json(state_file) if state_file.exists() else {}
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
    if chief:
        tracker.start(param_section(params, "mlflow").experiment, name, tags,
                      resume_run_id=state.get("run_id") if resumed_from else None)
    state["run_id"] = tracker.run_id
    fileio.write_json(state_file, state)
    logged_params = {**training, **{f"runtime.{k}": v for k, v in runtime.items()}, "precision_policy": policy,
                     "replicas": strategy.num_replicas_in_sync, "keras_backend": backend_name,
                     **{f"{model_name}.{k}": v for k, v in cfg.items()},
                     **{f"split.{k}": v for k, v in params.get("split", {}).items()},
                     **tracking.data_params(params),
                     "model": model_name, "task": task, "n_train": len(train_set.ids), "n_val": len(val_set.ids)}
    if chief and not tracker.resumed:
        tracker.log_params(logged_params)

    history: list[dict] = list(state.get("history", []))
    average = None
    if training["ema_decay"]:
        with strategy.scope():
            average = weight_average.callback(registry.predictor(model), training["ema_decay"])
    ckpt = _epoch_checkpoint_class()(ckpt_dir, state, history, tracker, every_seconds=runtime["checkpoint_seconds"],
                                     epochs=training["epochs"], average=average)
    initial_epoch = ckpt.restore(model)
    if initial_epoch:
        print(f"{name}: resuming from checkpoint after epoch {initial_epoch}/{training['epochs']}", file=sys.stderr)
    callbacks = [ckpt] if average is None else [average, ckpt]  # averages updated before the checkpoint saves them
    if chief:
        callbacks.append(estimate.callback(
            name, len(train_set.ids), training["epochs"], initial_epoch, size, batch_size=training["batch_size"],
            others=lambda: _pending_others(params, model_name, name, size, Path(models_dir))))

    global _in_fit
    callbacks.append(_interrupt_callback())
    try:  # signals and the MLflow run's end status are handled once, in train()
        if initial_epoch < training["epochs"]:
            _pending_signals.clear()
            _in_fit = True
            try:
                model.fit(train_data, steps_per_epoch=steps_per_epoch, epochs=training["epochs"],
                          initial_epoch=initial_epoch, validation_data=val_data,
                          shuffle=False,  # the inputs shuffle, seeded
                          callbacks=callbacks, verbose=verbose)
            finally:
                _in_fit = False
            _raise_pending()  # one that arrived after the last batch
    except KeyboardInterrupt as exc:  # the stage script prints this line alone and exits 130 (SIGTERM: 143)
        raise Interrupted(getattr(exc, "signum", signal.SIGINT),
                          f"{name}: interrupted; the next `dvc repro` resumes after epoch "
                          f"{state.get('epochs_done', 0)}") from None

    if average is not None:
        average.apply()  # the saved predictor is the average
    predictor = registry.predictor(model)
    info = {
        "model": model_name, "task": task, "image_size": int(size),
        "parameters": int(model.count_params()), "predictor_parameters": int(predictor.count_params()),
        "epochs": training["epochs"], "train_seconds": round(float(state.get("train_seconds", 0.0)), 2),
        "resumed_from_epoch": resumed_from, "training": training, "runtime": {**runtime, "precision_policy": policy, "keras_backend": backend_name,
                                                                             "replicas": strategy.num_replicas_in_sync},
        "config": cfg, "mlflow_run_id": tracker.run_id, "n_train": len(train_set.ids), "n_val": len(val_set.ids),
        "final": history[-1] if history else {},
        # the saved predictor's exact weights: equal on every process of a cluster, and across runs
        "weights_sha256": weights_digest(predictor),
    }
    if backend.jax_processes()[1] > 1:
        import keras

        # training is over: Keras' saving creates variables (a blank optimizer), which under the cluster's
        # distribution would wait for a collective the other processes never join
        keras.distribution.set_distribution(None)
    if not chief:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        return info
    out_dir = model_dir(name, models_dir)
    history_path = history_file(name, history_dir)
    try:
        with fileio.atomic_dir(out_dir) as tmp:
            predictor.save(tmp / MODEL_FILE)
            fileio.write_json(tmp / INFO_FILE, info)
        fileio.write_text(history_path, history_csv(history))
    except OSError as exc:  # the trained weights become the resume point: the next run only saves
        try:
            ckpt.save(training["epochs"])
            kept = f"the trained weights are kept in {ckpt_dir}/; `dvc repro` saves them without retraining"
        except fileio.WriteFailed as again:
            kept = f"and the checkpoint could not be written either ({again})"
        raise fileio.WriteFailed(exc.filename or out_dir, exc, kept) from None
    tracker.log_metrics({"train_seconds": info["train_seconds"], "parameters": info["parameters"]})
    tracker.log_artifact(history_path, "history")
    tracker.log_model(predictor, to_float(train_set.inputs[:1]))
    tracker.end("FINISHED")
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # done: nothing left to resume
    return info


def _finished(training_params: dict[str, Any]):
    """Whether a model folder holds a model trained with these training settings."""
    def done(folder: Path) -> bool:
        try:
            info = fileio.read_json(folder / INFO_FILE)
        except (OSError, ValueError):
            return False
        return info.get("training") == training_params and (folder / MODEL_FILE).exists()
    return done


def _pending_others(params: dict[str, Any], model_name: str, name: str, size: int, models_dir: Path):
    """The estimate's other stages: the matrix's train stages without a finished model, with relative FLOPs."""
    models, tasks = params.get("models") or [], params.get("tasks") or []
    try:
        pending = estimate.pending_stages([m for m in models if m in registry.REGISTRY], list(tasks), name,
                                          models_dir, _finished(training_settings(params)))
        return estimate.relative_flops(pending, model_name, size, params)
    except Exception as exc:  # noqa: BLE001 - an estimate must never stop training
        print(f"{name}: (no estimate for the other stages: {exc})", file=sys.stderr)
        return []
