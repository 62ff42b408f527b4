"""Import TensorFlow/Keras quietly; the Keras backend; seeds, distribution strategy, precision.

The Keras backend (``runtime.backend``: tensorflow or jax) is fixed per process
when Keras is first imported, from ``KERAS_BACKEND``: ``select`` sets it before
that import (the train stage calls it before importing any model), and refuses
a choice that a Keras already imported cannot honour.

TensorFlow's C++ layer writes start-up notes straight to file descriptor 2
("Could not find cuda drivers...", absl's pre-init warning) before any Python
logging setting applies. We silence fd 2 only while TensorFlow imports and
initialises its devices; anything printed afterwards (real errors, Keras
progress bars) reaches the terminal as usual. Set FACESKETCH_TF_VERBOSE=1 to
see everything.

The distribution strategy is chosen here, at initialisation, because
TensorFlow's multi-worker runtime must be configured before the first op
runs: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names more than one
worker, ``MirroredStrategy`` when more than one GPU is visible (or when asked
for, e.g. over logical CPU devices), else TensorFlow's default strategy.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

_READY = False
_STRATEGY = None
BACKENDS = ("tensorflow", "jax")


def resolve(choice: str = "auto") -> str:
    """The backend a ``runtime.backend`` value names: ``auto`` is KERAS_BACKEND when set, else tensorflow."""
    if choice == "auto":
        if "keras" in sys.modules:  # already imported: its backend is fixed
            import keras

            return keras.backend.backend()
        return os.environ.get("KERAS_BACKEND") or "tensorflow"
    return choice


def select(choice: str = "auto") -> str:
    """Make ``choice`` this process's Keras backend (before Keras is imported); returns its name."""
    from facesketch.core.errors import ParamError

    wanted = resolve(choice)
    if wanted not in BACKENDS:
        raise ParamError(f"KERAS_BACKEND={wanted!r}: facesketch trains under {' or '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != wanted:
            raise ParamError(f"runtime.backend={choice!r} asks for {wanted}, but Keras is already imported under "
                             f"{keras.backend.backend()}: set KERAS_BACKEND={wanted} before starting Python")
        return wanted
    os.environ["KERAS_BACKEND"] = wanted
    return wanted


def name() -> str:
    """The Keras backend of this process: Keras' own once imported, else the one it will import with.

    Does not import Keras (under TensorFlow, ``init`` must import TensorFlow first, quietly)."""
    return resolve("auto")


def devices() -> list[str]:
    """The devices training runs on, as short names (``cpu:0``, ``gpu:0``...)."""
    if name() == "jax":
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.local_devices()]
    import tensorflow as tf

    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [d.name.replace("/device:", "").lower() for d in found]


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


def cluster_workers() -> int:
    """How many workers ``TF_CONFIG`` names (0 when unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as exc:
        from facesketch.core.errors import ParamError

        raise ParamError(f"TF_CONFIG: not valid JSON with a 'cluster' mapping ({exc})") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


# Several JAX processes (hosts, or processes on one host) training one model, from the environment
# as TF_CONFIG is for TensorFlow: JAX_COORDINATOR_ADDRESS (host:port of process 0),
# JAX_NUM_PROCESSES and JAX_PROCESS_ID (0 .. N-1).
JAX_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def jax_processes() -> tuple[int, int]:
    """(this process's id, the number of processes) of a JAX cluster; (0, 1) without one."""
    if name() != "jax" or not os.environ.get("JAX_NUM_PROCESSES"):
        return 0, 1
    from facesketch.core.errors import ParamError

    try:
        count, index = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ.get("JAX_PROCESS_ID", ""))
    except ValueError:
        raise ParamError(f"{', '.join(JAX_CLUSTER_ENV)}: JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers; "
                         f"got {os.environ.get('JAX_NUM_PROCESSES')!r}, {os.environ.get('JAX_PROCESS_ID')!r}") from None
    if count > 1 and not (0 <= index < count and os.environ.get("JAX_COORDINATOR_ADDRESS")):
        raise ParamError(f"JAX_PROCESS_ID={index} must be in 0..{count - 1}, and JAX_COORDINATOR_ADDRESS "
                         "(host:port of process 0) set, for a cluster of JAX_NUM_PROCESSES processes")
    return (index, count) if count > 1 else (0, 1)


def init(seed: int | None = None) -> None:
    """Import and initialise TensorFlow once (under JAX: join the cluster the environment names, if
    any); seed every RNG when ``seed`` is given."""
    global _READY, _STRATEGY
    if not _READY and name() == "jax":
        index, count = jax_processes()
        if count > 1:  # before any JAX computation: the processes' devices form one mesh
            import jax
            import keras

            # CPU all-reduce across processes (GPUs use NCCL); asking which platform would start XLA too early
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            keras.distribution.initialize(job_addresses=os.environ["JAX_COORDINATOR_ADDRESS"],
                                          num_processes=count, process_id=index)
        _READY = True  # JAX initialises its devices on first use; TensorFlow is not needed to train
    if not _READY:
        with _quiet_fd2():
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
            if cluster_workers() > 1:
                # must exist before any op runs (collective ops are configured at start-up)
                _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
            tf.config.list_physical_devices()
            tf.constant(0.0)  # forces device initialisation, which prints again
        _READY = True
    if seed is not None:
        import keras

        if name() == "jax":
            with _quiet_fd2():  # Keras also seeds TensorFlow when it is installed, importing it (noisily)
                keras.utils.set_random_seed(seed)
            return  # JAX's XLA CPU/GPU kernels are deterministic for a fixed seed and program
        keras.utils.set_random_seed(seed)
        import tensorflow as tf

        # Same params and seed give the same weights and metrics on one machine.
        tf.config.experimental.enable_op_determinism()


def gpus() -> list:
    if name() == "jax":
        import jax

        return [d for d in jax.local_devices() if d.platform == "gpu"]
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU")


def strategy(kind: str = "auto"):
    """The ``tf.distribute`` strategy to train under (see the module doc).

    ``kind``: ``auto`` (the rule above), ``none`` (TensorFlow's default
    strategy, one device; TF_CONFIG's multi-worker strategy still applies, it
    was fixed at start-up), ``mirrored`` (MirroredStrategy over every GPU, or
    every logical CPU device when there is no GPU).
    """
    global _STRATEGY
    init()
    if name() == "jax":
        return _jax_strategy(kind)
    import tensorflow as tf

    if _STRATEGY is not None:
        return _STRATEGY
    if kind == "mirrored" or (kind == "auto" and len(gpus()) > 1):
        devices = [d.name for d in (gpus() or tf.config.list_logical_devices("CPU"))]
        _STRATEGY = tf.distribute.MirroredStrategy(devices=devices)
        return _STRATEGY
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """Whether this process writes outputs: always, except the non-chief workers of a TF_CONFIG cluster
    and the JAX processes other than process 0."""
    if name() == "jax":
        return jax_processes()[0] == 0
    if cluster_workers() <= 1:
        return True
    task = json.loads(os.environ["TF_CONFIG"]).get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = bool(json.loads(os.environ["TF_CONFIG"]).get("cluster", {}).get("chief"))
    return kind == "chief" or (not has_chief and kind == "worker" and index == 0)


def task_index() -> int:
    """This process's index in TF_CONFIG's or the JAX cluster (0 without one)."""
    if name() == "jax":
        return jax_processes()[0]
    if not os.environ.get("TF_CONFIG"):
        return 0
    return int(json.loads(os.environ["TF_CONFIG"]).get("task", {}).get("index", 0))


def precision_policy(precision: str = "auto") -> str:
    """The Keras dtype policy name: ``auto`` is mixed_float16 on a GPU, float32 on the CPU."""
    if precision == "auto":
        return "mixed_float16" if gpus() else "float32"
    return precision



def _jax_strategy(kind: str):
    """Under JAX: Keras' ``DataParallel`` over every local device for ``mirrored`` (and for ``auto``
    when there are several GPUs), else one device. Set once per process, before any variable exists."""
    global _STRATEGY
    if _STRATEGY is not None:
        return _STRATEGY
    import jax

    devices = jax.devices()  # every process's devices in a JAX cluster
    if jax_processes()[1] > 1:  # a cluster trains data-parallel over all its devices, whatever ``kind``
        import keras

        # each process feeds its own share of every batch (inputs.ArrayBatches(process=...))
        distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)
        _STRATEGY = _JaxDataParallel(distribution, len(devices))
        return _STRATEGY
    if len(devices) > 1 and (kind == "mirrored" or (kind == "auto" and devices[0].platform == "gpu")):
        import keras

        distribution = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(distribution)
        _STRATEGY = _JaxDataParallel(distribution, len(devices))
        return _STRATEGY
    return _OneDevice()


class _JaxDataParallel:
    """Keras' DataParallel as a strategy: each batch split over the devices, the variables replicated."""

    def __init__(self, distribution, replicas: int):
        self.distribution, self.num_replicas_in_sync = distribution, replicas

    def scope(self):
        return self.distribution.scope()


class _OneDevice:
    """What training needs of a strategy under JAX (one device): a no-op scope, one replica."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()
