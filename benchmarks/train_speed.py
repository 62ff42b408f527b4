"""Training speed: the pipeline's own training path against plain ``model.fit``.

For each model and image size, in one process:

- pipeline: ``facesketch.training.fit.train`` on synthetic faces through the real
  fetch/preprocess/split code, exactly as ``dvc repro`` trains (tf.data input,
  validation every epoch, checkpoint callback, MLflow run in a scratch store,
  the time estimate); images/s = training images x epochs / the run's
  ``train_seconds`` (the epochs' wall time: graph tracing, validation and
  checkpointing included);
- plain: the same network built and compiled the same way, ``model.fit`` on
  the same training arrays as float32 NumPy, no validation and no callbacks;
  images/s = the same images x epochs / the wall time of ``fit`` (tracing
  included); and its steady rate, the training images / the median epoch
  after the first (no tracing or compiling: JAX compiles a step once, in the
  first epoch, which dominates short runs);

plus this machine's fp32 matrix-multiply rate (the best of several
4096x4096 ``tf.matmul`` runs), each model's FLOPs per training image
(counted from its layers, facesketch.training.flops: 3 forward passes) and the share of
that peak the pipeline reaches. Prints a table and writes JSON.

Run it alone on the machine: other work on the cores lowers every figure.

    python benchmarks/train_speed.py                      # every model at 128 and 256 px
    python benchmarks/train_speed.py --models conv --sizes 128 --epochs 3 --json out.json
    python benchmarks/train_speed.py --backend jax        # under Keras' JAX backend (NumPy input path)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import facesketch  # noqa: F401  (quiet TensorFlow first)

ROOT = Path(__file__).resolve().parents[1]


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n x n matrix product (2 n^3 FLOPs)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    product(a, b).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def fmt(ips: float | None) -> str:
    return "-" if ips is None else f"{ips:.2f}"


def make_data(work: Path, params: dict) -> tuple[Path, Path, int]:
    """Synthetic pairs through the pipeline's own fetch, preprocess and split code."""
    from facesketch.data.fetch import fetch
    from facesketch.data.preprocess import preprocess
    from facesketch.data.split import split

    raw, processed, split_file = work / "raw", work / "pairs.npz", work / "split.json"
    fetch(params, raw)
    preprocess(params, raw, processed)
    parts = split(params, processed, split_file)
    return processed, split_file, len(parts["train"])


def plain_fit(name: str, size: int, params: dict, processed: Path, split_file: Path) -> tuple[float, float | None]:
    """Seconds of plain model.fit (tracing included) on the same training pairs, and
    the median seconds of an epoch after the first (None with one epoch)."""
    import keras

    from facesketch import models as registry
    from facesketch.core import backend
    from facesketch.core.params import runtime as runtime_settings, training as training_settings
    from facesketch.data.dataset import load_task, to_float
    from facesketch.training.fit import compile_model

    training = training_settings(params)
    backend.init(training["seed"])
    keras.mixed_precision.set_dtype_policy(backend.precision_policy(runtime_settings(params)["precision"]))
    data = load_task("f2s", "train", processed, split_file)
    x, y = to_float(data.inputs), to_float(data.targets)
    mod = registry.module(name)
    model = registry.build(name, size, params)
    cfg = registry.config(name, params)
    if hasattr(mod, "prepare"):
        mod.prepare(model, x, y, cfg)
    getattr(mod, "compile_model", compile_model)(model, training, cfg)
    epoch_seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self._t)

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=training["batch_size"], epochs=training["epochs"], verbose=0, callbacks=[EpochTimer()])
    total = time.perf_counter() - t0
    later = sorted(epoch_seconds[1:])
    return total, (later[len(later) // 2] if later else None)


def pipeline_fit(name: str, params: dict, processed: Path, split_file: Path, work: Path) -> float:
    """train_seconds of the pipeline's own train() (MLflow in a scratch store)."""
    from facesketch.training.fit import train

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    info = train(name, "f2s", params, processed_file=processed, split_file=split_file,
                 models_dir=work / "models", history_dir=work / "history", checkpoint_root=work / "ckpt", verbose=0)
    return float(info["train_seconds"])


def main() -> int:
    # the Keras backend is fixed at Keras' first import: choose it before anything imports Keras
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--backend", choices=["auto", "tensorflow", "jax"], default="auto")
    from facesketch.core import backend

    keras_backend = backend.select(pre.parse_known_args()[0].backend)

    from facesketch import models as registry
    from facesketch.core.params import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["auto", "tensorflow", "jax"], default="auto",
                    help="Keras backend (auto: KERAS_BACKEND if set, else tensorflow)")
    ap.add_argument("--models", nargs="+", default=registry.available())
    ap.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    ap.add_argument("--pairs", type=int, default=56, help="synthetic pairs (default 56: 40 train, 5 validation)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--json", type=Path, default=Path("train_speed.json"))
    args = ap.parse_args()

    from facesketch.training.flops import training_flops

    backend.init(0)
    import tensorflow as tf

    peak = matmul_gflops()
    env = {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
           "gpus": [d.name for d in tf.config.list_logical_devices("GPU")], "tensorflow": tf.__version__,
           "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"), "matmul_gflops": round(peak, 1),
           "date": time.strftime("%Y-%m-%d %H:%M"), "pairs": args.pairs, "epochs": args.epochs,
           "batch_size": args.batch_size, "keras_backend": keras_backend}
    print(f"matmul peak here: {peak:.0f} GFLOP/s fp32 ({os.cpu_count()} CPUs, {len(env['gpus'])} GPUs); "
          f"training under Keras' {keras_backend} backend", flush=True)
    rows = []
    for size in args.sizes:
        params = load_params(ROOT / "params.yaml")
        params.update(image_size=size, epochs=args.epochs, batch_size=args.batch_size)
        params["runtime"] = {**params.get("runtime", {}), "backend": keras_backend}
        params["data"] = {**params["data"], "source": "synthetic", "synthetic": {"count": args.pairs, "seed": 0}}
        params["split"] = {"protocol": "random", "test_fraction": 0.2, "val_fraction": 0.1, "seed": 0}
        with tempfile.TemporaryDirectory(prefix="train_speed.") as tmp:
            work = Path(tmp)
            processed, split_file, n_train = make_data(work, params)
            for name in args.models:
                params["models"], params["tasks"] = [name], ["f2s"]  # the estimate: no other stages to count
                images = n_train * args.epochs
                pipe_s = pipeline_fit(name, params, processed, split_file, work / name)
                plain_s, steady_epoch_s = plain_fit(name, size, params, processed, split_file)
                gflop = training_flops(registry.build(name, size, params)) / 1e9
                row = {"model": name, "size": size, "images": images, "pipeline_ips": images / pipe_s,
                       "plain_ips": images / plain_s,
                       "plain_steady_ips": n_train / steady_epoch_s if steady_epoch_s else None, "ratio": plain_s / pipe_s, "gflop_per_image": gflop,
                       "pipeline_gflops": gflop * images / pipe_s, "share_of_peak": gflop * images / pipe_s / peak}
                rows.append(row)
                print(f"{name:>9} {size:>4} px: pipeline {row['pipeline_ips']:6.2f} img/s, plain fit "
                      f"{row['plain_ips']:6.2f} img/s (after epoch 1: {fmt(row['plain_steady_ips'])}), ratio {row['ratio']:.2f}, {gflop:6.1f} GFLOP/img, "
                      f"{row['pipeline_gflops']:6.0f} GFLOP/s = {100 * row['share_of_peak']:.0f}% of peak", flush=True)
    print()
    print("| model | px | pipeline img/s | plain fit img/s | plain fit img/s after epoch 1 | pipeline / plain | GFLOP per training image | pipeline GFLOP/s | share of matmul peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['size']} | {r['pipeline_ips']:.2f} | {r['plain_ips']:.2f} | {fmt(r['plain_steady_ips'])} | {r['ratio']:.2f} | "
              f"{r['gflop_per_image']:.1f} | {r['pipeline_gflops']:.0f} | {100 * r['share_of_peak']:.0f}% |")
    args.json.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
