"""The honest estimate: how long this training stage, and the rest of the matrix, will take here.

Once the first steps after graph tracing have run, the measured images/s
gives this stage's remaining time (images x epochs / rate). The other train
stages of the matrix still without a finished model are estimated from this
one by their FLOPs per training image (facesketch.training.flops), at the same
effective FLOP/s. A long estimate comes with a cheaper command to run instead.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

# Measure after this many batches (the first ones trace and compile the graph) ...
WARMUP_BATCHES = 2
# ... over at least this many seconds or this many batches, whichever comes first.
MEASURE_SECONDS = 5.0
MEASURE_BATCHES = 20
LONG_SECONDS = 3600.0  # beyond this, suggest a cheaper run
# The other stages are estimated from this one's FLOP rate only where that rate says something
# about the machine: not from a model with too little arithmetic to keep it busy (the dense AE is
# bound by memory and overheads, so its FLOP rate is far below the convolutional models'), and
# not for a short stage (a short matrix needs no warning; counting costs a few model builds).
MIN_GFLOP_PER_IMAGE = 1.0
MIN_STAGE_SECONDS = 60.0


def duration(seconds: float) -> str:
    """3 h 20 min / 12 min / 40 s."""
    seconds = max(0.0, float(seconds))
    if seconds >= 3600:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    if seconds >= 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"


def pending_stages(models: list[str], tasks: list[str], this: str, models_dir: Path, done: Callable[[Path], bool]) -> list[tuple[str, str]]:
    """(model, task) of the matrix other than ``this`` whose model folder is not finished."""
    return [(m, t) for m in models for t in tasks
            if f"{m}-{t}" != this and not done(Path(models_dir) / f"{m}-{t}")]


def message(name: str, rate: float, images: int, epochs_left: int, epochs: int, others: list[tuple[str, float]],
            size: int) -> str:
    """The estimate's text. ``others``: (stage name, FLOPs relative to this stage's) still to train."""
    stage_s = images * epochs_left / rate
    text = (f"{name}: {rate:.1f} images/s here; this stage needs about {duration(stage_s)} more "
            f"({epochs_left} of {epochs} epochs x {images} images)")
    total = stage_s
    if others:
        rest = sum(images * epochs * ratio / rate for _, ratio in others)
        total += rest
        text += f"; the {len(others)} other train stage(s) still to run about {duration(rest)}"
    if total > LONG_SECONDS:
        # images/s scales about with 1/pixels: what fits in an hour here
        budget_epochs = max(1, math.floor(epochs * LONG_SECONDS / total))
        smaller = max(32, size // 2)
        text += (f". Too long for this machine? Try `dvc exp run -S image_size={smaller} "
                 f"-S epochs={max(1, math.floor(epochs * LONG_SECONDS / total * (size / smaller) ** 2))}` "
                 f"or `-S epochs={budget_epochs}` (about 1 h here), or a GPU (docs/speed.md: The full study)")
    return text


def callback(name: str, images: int, epochs: int, initial_epoch: int, size: int,
             others: Callable[[], list[tuple[str, float]]], batch_size: int, stream=None):
    """A Keras callback printing the estimate once, after the warm-up batches have been measured."""
    import keras

    class Estimate(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0
            self.t0: float | None = None
            self.printed = False
            self.epoch = initial_epoch
            self.epochs_begun = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epochs_begun += 1
            if not self.printed and self.epochs_begun == 2:
                # time the second epoch afresh: the first one's batches and its validation pass hold
                # the compilation (under JAX most of a short epoch), which would slow the estimate
                self.t0, self.measured = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            if self.printed:
                return
            self.batches += 1
            if self.batches == WARMUP_BATCHES:
                self.t0 = time.perf_counter()
                self.measured = 0
            elif self.t0 is not None:
                self.measured += 1
                elapsed = time.perf_counter() - self.t0
                if elapsed >= MEASURE_SECONDS or self.measured >= MEASURE_BATCHES:
                    self._print(self.measured * batch_size / elapsed)

        def on_epoch_end(self, epoch, logs=None):
            # a short run (few batches an epoch) gets its estimate after its second epoch, timed over
            # that epoch, validation included; after the first where that is the last
            if (not self.printed and self.t0 is not None and self.measured
                    and (self.epochs_begun >= 2 or epoch + 1 >= epochs)):
                self._print(self.measured * batch_size / (time.perf_counter() - self.t0))

        def _print(self, rate: float):
            self.printed = True
            left = max(0, epochs - self.epoch - (self.batches * batch_size >= images))  # a started epoch counts
            rest = others() if images * left / rate >= MIN_STAGE_SECONDS else []
            print(message(name, rate, images, left, epochs, rest, size),
                  file=stream or sys.stderr, flush=True)

    return Estimate()


def relative_flops(stages: list[tuple[str, str]], this_model: str, size: int, params: dict[str, Any]) -> list[tuple[str, float]]:
    """(stage name, its training FLOPs / this model's) for ``stages``; models are built to count them."""
    from facesketch import models as registry
    from facesketch.training.flops import training_flops

    cache: dict[str, int] = {}

    def flops(model: str) -> int:
        if model not in cache:
            cache[model] = training_flops(registry.build(model, size, params))
        return cache[model]

    # Building draws initial weights' seeds from Python's and NumPy's RNGs: keep their
    # states, so an estimate never changes what the seeded training does next.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        base = flops(this_model)
        if base < MIN_GFLOP_PER_IMAGE * 1e9:  # its rate says little about the others (and saves the builds)
            return []
        return [(f"{m}-{t}", flops(m) / base) for m, t in stages]
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
