"""An exponential moving average of the saved predictor's weights (Polyak averaging).

After every optimizer step each float weight ``w`` of the predictor (the part of a
model that is saved and scored) moves its average ``a``:

    a <- d * a + (1 - d) * w,   d = min(decay, (1 + t) / (10 + t)),  t = steps so far

The warm-up term is ``tf.train.ExponentialMovingAverage``'s ``num_updates`` rule: early
on the average follows the weights closely, so the random start does not linger, and
in a short run (a few hundred steps, as on 88 faces) it averages about the last tenth
of training whatever ``decay`` is. At the end of training the predictor takes the
averages (``apply``).

Keras' own EMA (``use_ema`` on an optimizer) does not fit every model here: ``fit()``
ends by writing the optimizer's averages over all of ``model.trainable_weights``, and
a GAN's generator optimizer tracks only the generator, so the swap fails on a length
mismatch. Averaging the predictor's weights in a callback serves every model alike.

The averages and the step count are part of a resumable checkpoint: ``state()`` and
``load_state()`` (see ``facesketch.training.checkpoints``).

Under Keras' JAX backend ``fit()`` is stateless: during an epoch the current weights live in
the trainer's state, and the model's variables are written only at the epoch's end (or when
something asks). Each batch-end update therefore first asks ``model.jax_state_sync()`` (the
JAX trainer's public sync, the one its own callbacks rely on), then averages the variables'
values in one jitted function; the arithmetic is the TensorFlow callback's.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def callback(predictor, decay: float):
    """A Keras callback that averages ``predictor``'s float weights after every training batch."""
    import keras

    if keras.backend.backend() == "jax":
        return _jax_callback(predictor, decay)
    import tensorflow as tf

    class WeightAverage(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            if not 0.0 <= decay < 1.0:
                raise ValueError(f"ema_decay={decay!r}: expected a number in [0, 1)")
            self.decay = float(decay)
            self.targets = [v for v in predictor.weights if np.dtype(v.dtype).kind == "f"]
            self.averages = [tf.Variable(tf.identity(v.value), trainable=False) for v in self.targets]
            self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._update = tf.function(self._update_all)

        def _update_all(self):
            self.steps.assign_add(1)
            t = tf.cast(self.steps, tf.float32)
            d = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
            for average, weight in zip(self.averages, self.targets):
                average.assign(d * average + (1.0 - d) * tf.cast(weight.value, average.dtype))

        def on_train_batch_end(self, batch, logs=None):
            self._update()

        def state(self) -> dict[str, Any]:
            """The averages and the step count, as arrays (for a checkpoint)."""
            return {"steps": np.asarray(self.steps.numpy()),
                    **{f"a{i}": a.numpy() for i, a in enumerate(self.averages)}}

        def load_state(self, arrays, source: str = "checkpoint") -> None:
            """Restore ``state()``; ``source`` names the file in the error when it does not fit."""
            _check_state(arrays, self.averages, source)
            self.steps.assign(int(arrays["steps"]))
            for i, a in enumerate(self.averages):
                a.assign(arrays[f"a{i}"])

        def apply(self) -> None:
            """Give the predictor the averaged weights."""
            for weight, average in zip(self.targets, self.averages):
                weight.assign(tf.cast(average, weight.dtype))

    return WeightAverage()


def _check_state(arrays, averages, source: str) -> None:
    if len(arrays) != len(averages) + 1 or any(
            tuple(arrays[f"a{i}"].shape) != tuple(a.shape) for i, a in enumerate(averages)):
        raise ValueError(f"{source}: its weight averages do not fit this model "
                         f"({len(arrays) - 1} arrays, expected {len(averages)})")


def _jax_callback(predictor, decay: float):
    """``callback`` under JAX: the same rule, on the values ``jax_state_sync`` writes back each batch."""
    import jax
    import jax.numpy as jnp
    import keras

    @jax.jit
    def update(averages, weights, steps, decay):
        steps = steps + 1
        t = steps.astype(jnp.float32)
        d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
        return [d * a + (1.0 - d) * w.astype(a.dtype) for a, w in zip(averages, weights)], steps

    class WeightAverage(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            if not 0.0 <= decay < 1.0:
                raise ValueError(f"ema_decay={decay!r}: expected a number in [0, 1)")
            self.decay = float(decay)
            self.targets = [v for v in predictor.weights if np.dtype(v.dtype).kind == "f"]
            self.averages = [jnp.array(v.value) for v in self.targets]
            self.steps = jnp.zeros((), jnp.int32)

        def on_train_batch_end(self, batch, logs=None):
            self.model.jax_state_sync()  # the step's weights into the variables (a no-op outside a JAX fit)
            self.averages, self.steps = update(self.averages, [v.value for v in self.targets], self.steps,
                                               jnp.float32(self.decay))

        def state(self) -> dict[str, Any]:
            return {"steps": np.asarray(self.steps, np.int64),
                    **{f"a{i}": np.asarray(a) for i, a in enumerate(self.averages)}}

        def load_state(self, arrays, source: str = "checkpoint") -> None:
            _check_state(arrays, self.averages, source)
            self.steps = jnp.asarray(int(arrays["steps"]), jnp.int32)
            self.averages = [jnp.asarray(arrays[f"a{i}"], a.dtype) for i, a in enumerate(self.averages)]

        def apply(self) -> None:
            for weight, average in zip(self.targets, self.averages):
                weight.assign(average.astype(weight.dtype))

    return WeightAverage()
