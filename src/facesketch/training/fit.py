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
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facesketch import __version__
from facesketch.training import estimate
from facesketch.core import fileio
from facesketch.training import losses
from facesketch.core import backend
from facesketch.training import weight_average
from facesketch import models as registry
from facesketch.core.params import LOSSES, OPTIMIZERS, choice, section as param_section
from facesketch.core.params import runtime as runtime_settings, task as check_task, training as training_settings
from facesketch import tracking
from facesketch.data.dataset import load_task, to_float
from facesketch.core.errors import DataError, Interrupted
from facesketch.core.layout import (CHECKPOINT_ROOT, HISTORY_DIR, INFO_FILE, MODEL_FILE, MODELS_DIR, PROCESSED_FILE, SPLIT_FILE,
                     history_file, model_dir, run_name)



def make_optimizer(name: str, learning_rate: float, **kwargs):
    import keras

    choice("optimizer", name, OPTIMIZERS)
    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(learning_rate=learning_rate, **kwargs)


def make_loss(name: str):
    import keras

    choice("loss", name, LOSSES)
    return {
        "mae": keras.losses.MeanAbsoluteError(),
        "mse": keras.losses.MeanSquaredError(),
        "bce": keras.losses.BinaryCrossentropy(),
    }[name]


def compile_model(model, training: dict[str, Any], cfg: dict[str, Any], jit_compile="auto", total_steps: int = 0) -> None:
    """The shared compile: ``optimizer``, ``learning_rate`` (with ``lr_schedule`` over ``total_steps``),
    ``loss`` (plus ``ssim_weight`` x (1 - SSIM)) from params.yaml."""
    rate = losses.learning_rate(training["learning_rate"], training.get("lr_schedule", "constant"), total_steps)
    loss = (losses.reconstruction(training["loss"], training["ssim_weight"]) if training.get("ssim_weight")
            else make_loss(training["loss"]))
    model.compile(optimizer=make_optimizer(training["optimizer"], rate), loss=loss, jit_compile=jit_compile)


def make_dataset(inputs, targets, batch_size: int, *, shuffle_seed: int | None = None, replicas: int = 1,
                 augment: dict[str, Any] | None = None):
    """The training input path as ``tf.data``: uint8 pairs cached in memory, shuffled each
    epoch (seeded), batched, scaled to [0, 1] floats on the fly and prefetched, so the
    model never waits on Python between steps.

    Scaling after batching is one vectorised op per batch; its floats are bit-identical
    to ``dataset.to_float`` (the same float32 division).

    With several ``replicas`` (tf.distribute) every batch is split evenly between them:
    a smaller last batch is dropped (Keras cannot add up uneven replica shares), and a
    set smaller than one batch is batched at the largest multiple of ``replicas`` it fills.

    ``augment`` (training only): pix2pix's paired jitter and mirroring, drawn once per pair
    and epoch and applied identically to input and target: enlarged by ``jitter`` (bilinear),
    cropped back to size at a random place, mirrored left-right with probability 1/2 when
    ``flip``. The random numbers come from a seeded stream that differs every epoch.
    """
    import tensorflow as tf

    def to_float(x, y):
        return tf.cast(x, tf.float32) / 255.0, tf.cast(y, tf.float32) / 255.0

    ds = tf.data.Dataset.from_tensor_slices((inputs, targets)).cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(len(inputs), seed=shuffle_seed, reshuffle_each_iteration=True)
    augment = augment or {}
    if augment.get("jitter") or augment.get("flip"):
        size = int(inputs.shape[1])
        seeds = tf.data.Dataset.random(seed=(shuffle_seed or 0) + 1, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, seed: _jitter_and_flip(*to_float(*pair), seed, size, augment["jitter"], augment["flip"]),
            num_parallel_calls=tf.data.AUTOTUNE)
    if replicas > 1:
        batch_size = max(replicas, min(batch_size, len(inputs)) // replicas * replicas)
    ds = ds.batch(batch_size, drop_remainder=replicas > 1)
    if not (augment.get("jitter") or augment.get("flip")):
        ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # in-memory data: each worker of a multi-worker cluster takes its share of every batch
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _jitter_and_flip(x, y, seed, size: int, jitter: float, flip: bool):
    """One pair, augmented identically (see ``make_dataset``); ``seed``: two int64s."""
    import tensorflow as tf

    both = tf.concat([x, y], axis=-1)  # one crop and one mirror for input and target alike
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)
    if jitter:
        big = int(round(size * (1.0 + jitter)))
        both = tf.image.resize(both, (big, big), method="bilinear")
        both = tf.image.stateless_random_crop(both, (size, size, 6), seed=seeds[0])
    if flip:
        both = tf.image.stateless_random_flip_left_right(both, seed=seeds[1])
    return both[..., :3], both[..., 3:]


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

        def __init__(self, ckpt_dir: Path, state: dict[str, Any], history: list[dict], tracker: tracking.Tracker,
                     every_seconds: float = 0.0, epochs: int = 0, average=None):
            super().__init__()
            self.ckpt_dir, self.state, self.history, self.tracker = ckpt_dir, state, history, tracker
            self.weights_file = ckpt_dir / "last.weights.h5"
            # the predictor's weight averages (facesketch.training.weight_average), saved with the weights
            self.average, self.average_file = average, ckpt_dir / "weight_average.npz"
            # Saving weights and optimizer state costs about as much as a few steps: on a fast
            # device with small epochs, after every epoch it would dominate. Save when this long
            # has passed since the last save (a kill loses at most that much work).
            self.every_seconds, self.epochs = every_seconds, epochs
            self._t0 = self._saved_at = time.time()

        def restore(self, model) -> int:
            """Load the last finished epoch into ``model``; return the epoch to start from."""
            done = int(self.state.get("epochs_done", 0))
            if done and self.weights_file.exists():
                for opt in _optimizers(model):
                    if not opt.built:
                        opt.build(model.trainable_variables)
                model.load_weights(self.weights_file)
                if self.average is not None:
                    with np.load(self.average_file) as arrays:
                        self.average.load_state(dict(arrays), source=str(self.average_file))
                del self.history[done:]
                return done
            return 0

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            self.history.append(row)
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
            self.state["train_seconds"] = self.state.get("train_seconds", 0.0) + time.time() - self._t0
            self._t0 = time.time()
            if epoch + 1 >= self.epochs or time.time() - self._saved_at < self.every_seconds:
                return  # the last epoch needs no resume point: training is about to finish
            self.save(epoch + 1)

        def save(self, epochs_done: int) -> None:
            """Write the resume point atomically; on a write error (disk full, read-only) the previous
            one stays whole (state.json is written last) and a WriteFailed names the path and errno."""
            path = self.weights_file
            try:
                with fileio.atomic_path(self.weights_file, suffix=".weights.h5") as tmp:
                    self.model.save_weights(tmp)
                if self.average is not None:
                    path = self.average_file
                    with fileio.atomic_path(self.average_file, suffix=".npz") as tmp:
                        np.savez(tmp, **self.average.state())
                path = self.ckpt_dir / "state.json"
                fileio.write_json(path, {**self.state, "epochs_done": epochs_done, "history": self.history})
            except OSError as exc:
                kept = int(self.state.get("epochs_done", 0))
                raise fileio.WriteFailed(path, exc, (f"kept the checkpoint after epoch {kept}" if kept else
                                                     "no earlier checkpoint") + "; free space or fix the "
                                         "permissions, then `dvc repro` resumes from it") from None
            self.state.update(epochs_done=epochs_done, history=self.history)
            self._saved_at = time.time()

    return EpochCheckpoint


def history_csv(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _raise_interrupted(signum, frame):
    raise Interrupted(signum, f"interrupted ({signal.Signals(signum).name})")


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
    train_data = make_dataset(train_set.inputs, train_set.targets, training["batch_size"],
                              shuffle_seed=training["seed"], replicas=replicas, augment=training["augment"])
    val_data = (make_dataset(val_set.inputs, val_set.targets, training["batch_size"], replicas=replicas)
                if len(val_set.ids) >= replicas and val_set.ids else None)

    name = run_name(model_name, task)
    # jit_compile and precision change the arithmetic; the device layout and checkpoint interval do not
    fp = fingerprint(model_name, task, {**training, "jit_compile": runtime["jit_compile"], "precision": policy},
                     cfg, [processed_file, split_file])
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
                     "replicas": strategy.num_replicas_in_sync,
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

    try:  # signals and the MLflow run's end status are handled once, in train()
        if initial_epoch < training["epochs"]:
            # One input iterator for the whole run: for a finite dataset Keras makes a new iterator
            # every epoch, which cost 3-8 s per epoch on the 2-core CPU (unet_gan, 128 px; about a
            # tenth of a 70-pair epoch). The repeated dataset still reshuffles at each pass.
            model.fit(train_data.repeat(), steps_per_epoch=steps_per_epoch, epochs=training["epochs"],
                      initial_epoch=initial_epoch, validation_data=val_data,
                      shuffle=False,  # make_dataset shuffles, seeded
                      callbacks=callbacks, verbose=verbose)
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
        "resumed_from_epoch": resumed_from, "training": training, "runtime": {**runtime, "precision_policy": policy,
                                                                             "replicas": strategy.num_replicas_in_sync},
        "config": cfg, "mlflow_run_id": tracker.run_id, "n_train": len(train_set.ids), "n_val": len(val_set.ids),
        "final": history[-1] if history else {},
    }
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
