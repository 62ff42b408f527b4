"""Time `facesketch predict` per image for every registered model.

For each model in the registry: build it at 256x256 (untrained weights: the
time does not depend on them), save its inference part and info.json the way
the train stage does, load it back through facesketch.use.catalog and .predictor, and time

- end to end: ``predict_files`` on N PNG files of 256x256 (read, preprocess,
  batched inference, resize back, encode, atomic write), the CLI's code path;
- model only: the batched inference on the already-preprocessed arrays.

A warm-up pass runs first (it traces the graph once); each figure is the
best of ``--repeats`` runs (the machine may be shared: the best run is the
least disturbed; every run is kept in the --json output). ``--trained`` uses models/<model>-f2s/ instead
where it exists at that size.

    python benchmarks/predict_speed.py                 # all models, 16 images
    python benchmarks/predict_speed.py --models conv dense --images 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import facesketch  # noqa: F401  (quiet TensorFlow first)

ROOT = Path(__file__).resolve().parents[1]


def make_inputs(folder: Path, n: int, size: int) -> list[Path]:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    files = []
    for i in range(n):
        img = (np.stack([yy * rng.uniform(0.3, 1), xx * rng.uniform(0.3, 1), np.full_like(xx, 0.7)], -1)
               * 220 + 20).astype(np.uint8)
        cv2.circle(img, (size // 2, size // 2), size // 4, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        files.append(folder / f"face{i:03d}.png")
        cv2.imwrite(str(files[-1]), img)
    return files


def prepare_model(name: str, size: int, params: dict, models_dir: Path, trained: bool) -> tuple[Path, str]:
    """models_dir/<name>-f2s as the train stage writes it; returns (its folder, weights used)."""
    from facesketch.core import fileio
    from facesketch import models as registry

    if trained:
        src = ROOT / "models" / f"{name}-f2s"
        if (src / "info.json").exists() and fileio.read_json(src / "info.json").get("image_size") == size:
            return src, "trained"
    model = registry.build(name, size, params)
    predictor = registry.predictor(model)
    out = models_dir / f"{name}-f2s"
    out.mkdir(parents=True)
    predictor.save(out / "model.keras")
    fileio.write_json(out / "info.json", {
        "model": name, "task": "f2s", "image_size": size, "parameters": int(model.count_params()),
        "predictor_parameters": int(predictor.count_params()), "epochs": 0,
        "training": {}, "config": registry.config(name, params),
    })
    return out, "untrained"


def bench_one(name: str, size: int, params: dict, files: list[Path], tmp: Path, *, batch_size: int,
              repeats: int, trained: bool) -> dict:
    import numpy as np

    from facesketch.use.predictor import Predictor
    from facesketch.use.catalog import load_entry
    from facesketch.use.predict import predict_files
    from facesketch.core.images import read_rgb as read_image

    t0 = time.perf_counter()
    model_dir, weights = prepare_model(name, size, params, tmp / "models", trained)
    build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    entry = load_entry(model_dir, tmp / "metrics")
    predictor = Predictor.load(entry, batch_size)
    load_s = time.perf_counter() - t0

    n = len(files)
    step = min(batch_size, n)
    x = np.stack([predictor.prepare(read_image(f)) for f in files])
    t0 = time.perf_counter()
    predictor.run_batch(x[:step], step)  # warm-up: traces the graph once
    warm_s = time.perf_counter() - t0

    model_only, end_to_end = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        predictor.run_batch(x, step)
        model_only.append((time.perf_counter() - t0) / n)
        result = predict_files(predictor, files, tmp / "out" / name, report=lambda m: print(m, file=sys.stderr))
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} images failed: {result.failed[0]}")
        end_to_end.append(result.seconds / n)
    traces = predictor.model.predict_function.experimental_get_tracing_count()
    e2e, mdl = min(end_to_end), min(model_only)
    return {
        "model": name, "weights": weights, "parameters": entry.info.get("predictor_parameters"),
        "build_s": round(build_s, 2), "load_s": round(load_s, 2), "first_batch_s": round(warm_s, 2),
        "ms_per_image": round(1000 * e2e, 1), "images_per_s": round(1 / e2e, 2),
        "model_ms_per_image": round(1000 * mdl, 1), "traces": traces,
        "runs_ms_per_image": [round(1000 * v, 1) for v in end_to_end],
        "model_runs_ms_per_image": [round(1000 * v, 1) for v in model_only],
    }


def main(argv: list[str] | None = None) -> int:
    from facesketch import models as registry
    from facesketch.core import backend
    from facesketch.core.params import load_params

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--trained", action="store_true", help="use models/<model>-f2s/ where it exists at --size")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ns = ap.parse_args(argv)

    params = load_params(ns.params)
    names = ns.models or registry.available()
    backend.init(0)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    env = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "sched_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
           "gpus": len(gpus), "tensorflow": tf.__version__, "size": ns.size, "images": ns.images,
           "batch_size": ns.batch_size, "repeats": ns.repeats}
    print(f"predict speed: {ns.images} images of {ns.size}x{ns.size}, batch {ns.batch_size}, "
          f"best of {ns.repeats}; {env['sched_cpus']} CPU(s), {len(gpus)} GPU(s), TF {tf.__version__}",
          flush=True)

    rows, failures = [], {}
    with tempfile.TemporaryDirectory(prefix="facesketch-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        files = make_inputs(tmp / "in", ns.images, ns.size)
        for name in names:
            print(f"  {name} ...", end="", flush=True)
            try:
                row = bench_one(name, ns.size, params, files, tmp, batch_size=ns.batch_size,
                                repeats=ns.repeats, trained=ns.trained)
            except Exception as exc:  # noqa: BLE001 - a model still being written must not stop the others
                failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                print(f" failed ({failures[name]})", flush=True)
                if os.environ.get("BENCH_DEBUG"):
                    traceback.print_exc()
                continue
            rows.append(row)
            print(f" {row['ms_per_image']} ms/image", flush=True)

    head = ["model", "weights", "parameters", "load s", "ms/image", "images/s", "model-only ms/image", "traces"]
    table = [head] + [[r["model"], r["weights"], f"{r['parameters']:,}", f"{r['load_s']:.2f}",
                       f"{r['ms_per_image']:.1f}", f"{r['images_per_s']:.2f}", f"{r['model_ms_per_image']:.1f}",
                       str(r["traces"])] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    print()
    for k, t in enumerate(table):
        print("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths))) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name, why in failures.items():
        print(f"not measured: {name}: {why}")
    if ns.json:
        ns.json.write_text(json.dumps({"env": env, "results": rows, "failed": failures}, indent=2) + "\n")
    return 1 if failures and not rows else 0


if __name__ == "__main__":
    sys.exit(main())
