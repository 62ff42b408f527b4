"""The two training input paths, with the same meaning (in-memory uint8 pairs, a seeded
shuffle every epoch, batches scaled to [0, 1] floats, pix2pix's paired jitter and mirroring):

- ``make_dataset``: ``tf.data`` (the TensorFlow backend's path: its map and prefetch run in
  TensorFlow's threads, so the model never waits on Python between steps);
- ``ArrayBatches``: a ``keras.utils.PyDataset`` of NumPy batches that needs no TensorFlow (the
  JAX backend's path). Its shuffle and augmentation draw from NumPy's generator, seeded per
  epoch, so they are reproducible but not the same numbers as ``tf.data``'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batch_size_for(n: int, batch_size: int, replicas: int = 1) -> int:
    """The global batch: with several replicas a multiple of them (see ``make_dataset``)."""
    if replicas > 1:
        return max(replicas, min(batch_size, n) // replicas * replicas)
    return batch_size


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
    batch_size = batch_size_for(len(inputs), batch_size, replicas)
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


def _array_batches_class():
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        """``make_dataset``'s meaning without TensorFlow: NumPy batches from uint8 pairs in memory.

        ``shuffle_seed`` (training): a new order every epoch from ``(seed, epoch)``; ``augment``: per
        pair and epoch, enlarged by ``jitter`` (bilinear), cropped back at a random place, mirrored
        with probability 1/2 when ``flip``, input and target alike. With several ``replicas`` a
        smaller last batch is dropped, as in ``make_dataset``.

        ``process=(p, P)``, one of P JAX processes training together: every process draws the same
        order and augmentation (same seeds) and feeds its own contiguous P-th of each global batch,
        so the P local batches together are exactly the one-process batch.
        """

        def __init__(self, inputs, targets, batch_size: int, *, shuffle_seed: int | None = None, replicas: int = 1,
                     augment: dict[str, Any] | None = None, process: tuple[int, int] = (0, 1)):
            super().__init__()
            self.process, self.processes = process
            self.inputs, self.targets = np.asarray(inputs), np.asarray(targets)
            self.batch = batch_size_for(len(self.inputs), batch_size, replicas)
            self.drop_remainder = replicas > 1
            self.shuffle_seed, self.augment = shuffle_seed, dict(augment or {})
            self.epoch = 0
            self._order()

        def _order(self) -> None:
            n = len(self.inputs)
            if self.shuffle_seed is None:
                self.order = np.arange(n)
            else:
                self.order = np.random.default_rng([self.shuffle_seed, self.epoch]).permutation(n)

        def __len__(self) -> int:
            n = len(self.inputs)
            return n // self.batch if self.drop_remainder else -(-n // self.batch)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order()

        def __getitem__(self, index: int):
            rows = self.order[index * self.batch:(index + 1) * self.batch]
            x = self.inputs[rows].astype(np.float32) / 255.0
            y = self.targets[rows].astype(np.float32) / 255.0
            if self.augment.get("jitter") or self.augment.get("flip"):
                rng = np.random.default_rng([(self.shuffle_seed or 0) + 1, self.epoch, index])
                for i in range(len(rows)):
                    x[i], y[i] = jitter_and_flip_np(x[i], y[i], rng, self.augment.get("jitter", 0.0),
                                                    bool(self.augment.get("flip")))
            if self.processes > 1:  # this process's share of the global batch
                share = len(rows) // self.processes
                x, y = (a[self.process * share:(self.process + 1) * share] for a in (x, y))
            return x, y

    return ArrayBatches


def jitter_and_flip_np(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, jitter: float, flip: bool):
    """One float pair, augmented identically (``ArrayBatches``); bilinear like ``tf.image.resize``."""
    import cv2

    size = x.shape[0]
    if jitter:
        big = int(round(size * (1.0 + jitter)))
        top, left = (int(v) for v in rng.integers(0, big - size + 1, 2))
        x, y = (cv2.resize(a, (big, big), interpolation=cv2.INTER_LINEAR)[top:top + size, left:left + size]
                for a in (x, y))
    if flip and rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
    return x, y


def array_batches(inputs, targets, batch_size: int, **kwargs):
    """An ``ArrayBatches`` (see there): the input path that needs no TensorFlow."""
    return _array_batches_class()(inputs, targets, batch_size, **kwargs)


def training_inputs(backend_name: str, inputs, targets, batch_size: int, **kwargs):
    """The input for ``fit()`` under ``backend_name``: ``tf.data`` repeated under TensorFlow, else ``ArrayBatches``.

    One input iterator for the whole run under TensorFlow: for a finite dataset Keras makes a new
    iterator every epoch, which cost 3-8 s per epoch on the 2-core CPU (unet_gan, 128 px; about a
    tenth of a 70-pair epoch). The repeated dataset still reshuffles at each pass.
    """
    if backend_name == "tensorflow":
        return make_dataset(inputs, targets, batch_size, **kwargs).repeat()
    return array_batches(inputs, targets, batch_size, **kwargs)


def validation_inputs(backend_name: str, inputs, targets, batch_size: int, replicas: int = 1, **kwargs):
    """The validation pairs in order, unaugmented, for ``backend_name`` (``process``: ArrayBatches')."""
    if backend_name == "tensorflow":
        return make_dataset(inputs, targets, batch_size, replicas=replicas)
    return array_batches(inputs, targets, batch_size, replicas=replicas, **kwargs)
