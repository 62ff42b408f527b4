"""Import TensorFlow/Keras quietly and set up deterministic CPU maths.

TensorFlow's C++ layer writes start-up notes straight to file descriptor 2
("Could not find cuda drivers...", absl's pre-init warning) before any Python
logging setting applies. We silence fd 2 only while TensorFlow imports and
initialises its devices; anything printed afterwards (real errors, Keras
progress bars) reaches the terminal as usual. Set FACESKETCH_TF_VERBOSE=1 to
see everything.
"""

from __future__ import annotations

import contextlib
import os
import sys

_READY = False


@contextlib.contextmanager
def _quiet_fd2():
    if os.environ.get("FACESKETCH_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def init(seed: int | None = None) -> None:
    """Import and initialise TensorFlow once; seed every RNG when ``seed`` is given."""
    global _READY
    if not _READY:
        with _quiet_fd2():
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
            tf.config.list_physical_devices()
            tf.constant(0.0)  # forces device initialisation, which prints again
        _READY = True
    if seed is not None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        # Same params and seed give the same weights and metrics on CPU.
        tf.config.experimental.enable_op_determinism()
