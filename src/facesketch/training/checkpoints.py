"""Resumable checkpoints: the fingerprint that says whether a checkpoint belongs to this run,
and the callback that saves weights, optimizer state, history and weight averages after an epoch."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facesketch import __version__
from facesketch.core import fileio

if TYPE_CHECKING:
    from facesketch import tracking


def fingerprint(model_name: str, task: str, training: dict, cfg: dict, data_files: list[Path]) -> str:
    blob = json.dumps({
        "model": model_name, "task": task, "training": training, "cfg": cfg,
        "data": [fileio.sha256_file(p) for p in data_files], "version": __version__,
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def optimizers(model) -> list:
    import keras

    found = [v for v in vars(model).values() if isinstance(v, keras.optimizers.Optimizer)]
    if getattr(model, "optimizer", None) is not None and model.optimizer not in found:
        found.append(model.optimizer)
    return found


def epoch_checkpoint_class():
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
                for opt in optimizers(model):
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
