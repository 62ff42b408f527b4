"""Run the study from a bundle (see the package doc): on a machine with Python, NumPy and JAX only.

Steps, each printed as it goes:

1. install the wheels the machine lacks from the bundle's ``wheels/`` (``pip install --no-index
   --find-links --no-deps --target``: nothing is fetched, nothing installed is replaced);
2. measure the accelerator's matmul peak (float32 and bfloat16, JAX), so speeds can be read as a
   share of it;
3. train every model x task of the bundle's params (``--models``, ``--tasks``, ``--epochs``,
   ``--batch-size`` override them) with the project's own ``train()`` under Keras' JAX backend, then
   predict the test split with the saved predictor;
4. write into ``--out``: ``predictions-<task>.npz`` (the test ids and each model's 8-bit
   predictions) and ``run.json`` (per model x task: train seconds, wall seconds, images/s, epochs,
   parameters, the loss history and info.json; the devices, versions and the whole wall time;
   ``complete``: whether every run finished). Both are rewritten (atomically) after every run, so a
   call stopped at its time limit still brings back every run it finished.

Each finished run is also kept in ``--work`` (its predictions and record, with a fingerprint of
the settings it was trained with), and an interrupted one leaves its checkpoint there: a second
call with the same ``--work`` reuses the finished runs and resumes the interrupted one where it
stopped (``train()``'s checkpoint), so a study longer than one call's limit finishes over several.

Few files on purpose: a device call brings back at most 8. ``python -m facesketch.offline score OUT``
scores them back home.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# the distributions the package needs beyond Python, NumPy and JAX (bundle.WHEELS: the bundle carries
# their wheels); installed from the bundle where missing
NEEDED = ("keras", "namex", "optree", "absl-py", "rich", "markdown-it-py", "mdurl", "pygments", "h5py",
          "packaging", "pyyaml", "typing-extensions", "pydantic", "pydantic-core", "annotated-types",
          "typing-inspection")


def say(message: str) -> None:
    print(f"offline-study: {message}", flush=True)


def missing(names=NEEDED) -> list[str]:
    out = []
    for name in names:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def install(bundle: Path, site: Path) -> list[str]:
    """Install what ``missing()`` lists from the bundle's wheels into ``site`` (put first on sys.path)."""
    site.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    todo = missing()
    if todo:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
               "--find-links", str(bundle / "wheels"), "--target", str(site), *todo]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"offline-study: installing {', '.join(todo)} from {bundle / 'wheels'} failed "
                             f"(Python {sys.version.split()[0]}: is a wheel for it in the bundle?):\n"
                             + res.stderr.strip()[-2000:])
        importlib.invalidate_caches()
    return todo


def matmul_peak(seconds: float = 2.0) -> dict[str, float]:
    """TFLOP/s of the largest square matmul that fits the time, per dtype, on JAX's default device."""
    import jax
    import jax.numpy as jnp

    out = {}
    n = 8192 if jax.default_backend() == "gpu" else 1024
    for dtype in ("float32", "bfloat16"):
        a = jnp.ones((n, n), dtype)
        f = jax.jit(lambda x: x @ x)
        f(a).block_until_ready()
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            f(a).block_until_ready()
            reps += 1
        out[dtype] = 2 * n**3 * reps / (time.perf_counter() - start) / 1e12
    return out


def main(argv: list[str], bundle: Path) -> int:
    ap = argparse.ArgumentParser(prog="run.py", description="the facesketch study from this bundle (JAX)")
    ap.add_argument("--out", type=Path, required=True, help="where predictions and run.json go")
    ap.add_argument("--models", nargs="+", help="default: params.yaml's")
    ap.add_argument("--tasks", nargs="+", help="default: params.yaml's")
    ap.add_argument("--epochs", type=int, help="default: params.yaml's")
    ap.add_argument("--batch-size", type=int, help="default: params.yaml's")
    ap.add_argument("--work", type=Path, default=None, help="folder for models, checkpoints and finished runs, "
                    "reused by a later call (default: OUT/../offline-work)")
    args = ap.parse_args(argv)
    start = time.time()
    os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported, here or by the package
    work = (args.work or args.out.parent / "offline-work").resolve()
    installed = install(bundle, work / "site")
    say(f"Python {sys.version.split()[0]}; installed from the bundle: {', '.join(installed) or 'nothing'}")

    import jax
    import numpy as np
    import yaml

    from facesketch.core import fileio
    from facesketch.core.layout import run_name
    from facesketch.core.saved import load_predictor
    from facesketch.data.dataset import load_task, to_float, to_uint8
    from facesketch.training.fit import train

    devices = [str(d) for d in jax.devices()]
    peak = matmul_peak()
    say(f"JAX {jax.__version__} on {', '.join(devices)}; matmul peak "
        + ", ".join(f"{k} {v:.1f} TFLOP/s" for k, v in peak.items()))
    params = yaml.safe_load((bundle / "params.yaml").read_text())
    for key, value in (("models", args.models), ("tasks", args.tasks), ("epochs", args.epochs),
                       ("batch_size", args.batch_size)):
        if value is not None:
            params[key] = value
    params.setdefault("runtime", {})["backend"] = "jax"
    params["mlflow"] = {**(params.get("mlflow") or {}), "experiment": "offline-study"}
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work}/mlflow.db")  # absent MLflow: said, skipped
    data = {"processed_file": bundle / "data" / "pairs.npz", "split_file": bundle / "data" / "split.json"}
    runs: dict[str, dict] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {t: {} for t in params["tasks"]}
    test_ids = {}
    done = work / "done"
    # what a finished run was trained with: the settings and the data (a changed bundle retrains)
    fingerprint = hashlib.sha256(json.dumps([params, [fileio.sha256_file(f) for f in data.values()]],
                                            sort_keys=True, default=str).encode()).hexdigest()

    def write_out(complete: bool) -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        for task, preds in predictions.items():
            if preds:
                fileio.save_npz(args.out / f"predictions-{task}.npz", ids=test_ids[task], **preds)
        fileio.write_text(args.out / "run.json", json.dumps(
            {"devices": devices, "jax": jax.__version__, "python": sys.version.split()[0],
             "matmul_peak_tflops": peak, "wall_seconds": time.time() - start, "complete": complete,
             "params": params, "runs": runs}, indent=1, default=str) + "\n")

    for task in params["tasks"]:
        test = load_task(task, "test", **data)
        test_ids[task] = np.array(test.ids)
        for model in params["models"]:
            name = run_name(model, task)
            kept = done / f"{name}.json"
            if kept.exists() and json.loads(kept.read_text()).get("fingerprint") == fingerprint:
                runs[name] = json.loads(kept.read_text())["record"]
                with np.load(done / f"{name}.npz") as npz:
                    predictions[task][model] = npz["predictions"]
                say(f"{name}: finished in an earlier call ({runs[name]['train_seconds']:.0f} s training), reused")
                write_out(complete=False)
                continue
            say(f"{name}: training ({params['epochs']} epochs, batch {params['batch_size']}) ...")
            t0 = time.time()
            info = train(model, task, params, models_dir=work / "models", history_dir=work / "history",
                         checkpoint_root=work / "checkpoints", verbose=2, **data)
            predictor = load_predictor(work / "models" / name)
            predictions[task][model] = to_uint8(predictor.predict(to_float(test.inputs), batch_size=16, verbose=0))
            wall = time.time() - t0
            n_train = len(load_task(task, "train", **data).ids)
            images_per_s = n_train * info["epochs"] / max(info["train_seconds"], 1e-9)
            history = (work / "history" / f"{name}.csv")
            runs[name] = {"model": model, "task": task, "train_seconds": info["train_seconds"], "wall_seconds": wall,
                          "images_per_s": images_per_s, "train_images": n_train, "epochs": info["epochs"],
                          "parameters": info["parameters"], "info": info,
                          "history_csv": history.read_text() if history.exists() else ""}
            say(f"{name}: {info['train_seconds']:.0f} s training, {images_per_s:.1f} images/s, "
                f"{wall:.0f} s with prediction")
            fileio.save_npz(done / f"{name}.npz", predictions=predictions[task][model])
            fileio.write_json(done / f"{name}.json", {"fingerprint": fingerprint, "record": runs[name]})
            write_out(complete=False)
    write_out(complete=True)
    say(f"done in {time.time() - start:.0f} s; {args.out}: " + ", ".join(sorted(p.name for p in args.out.iterdir())))
    return 0
