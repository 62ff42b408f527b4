"""A bounded load test of `facesketch serve` on 127.0.0.1 (#27).

Trains a tiny model (conv, f2s, 32 px, 1 epoch on 12 synthetic pairs; or uses --models-dir),
starts a real `facesketch serve` with a 1 MB upload limit, and sends --requests requests,
--concurrency at a time, through the page's own HTTP API (upload, then the Run button's call),
mixing

- valid pictures (PNG, JPEG)                -> 200, "Done: ..." and a result PNG to download
- non-images (text, random bytes)           -> 200, "Error: ... not a readable image ..."
- over the page's limit, within Gradio's    -> 200, "Error: ... over the 1 MB upload limit"
- over Gradio's limit (the limit + 1 MB)    -> HTTP 413 at upload, "over the 1 MB upload limit"

Each answer is checked. Afterwards: the server is still up and answers, its memory (RSS, with
its child processes) after the run against after a warm-up, no half-written file (a temporary
name, or a PNG that does not decode) in its output or upload folders. Prints p50/p95 latency per
kind and the throughput; exits 1 if any check failed.

    python benchmarks/serve_load.py                          # 200 requests, 8 at a time
    python benchmarks/serve_load.py --requests 30 --concurrency 4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
LIMIT_MB = 1
KINDS = ("png", "jpeg", "text", "noise", "over_page", "over_gradio")


# --- a tiny model and the server ---------------------------------------------------------------


def train_tiny(root: Path) -> tuple[Path, Path]:
    """conv-f2s trained for 1 epoch at 32 px on 12 synthetic pairs; (models dir, metrics dir)."""
    import cv2
    import numpy as np

    import facesketch  # noqa: F401  (quiet TensorFlow first)
    from facesketch.core import fileio
    from facesketch.core.params import load_params
    from facesketch.data.split import make_split
    from facesketch.training.fit import train

    rng = np.random.default_rng(0)
    photos = rng.integers(40, 220, (12, SIZE, SIZE, 3), dtype=np.uint8)
    sketches = np.full((12, SIZE, SIZE, 3), 245, np.uint8)
    for i in range(12):
        cv2.circle(sketches[i], (16, 16), int(rng.integers(4, 12)), (40, 40, 40), 2)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(12)]
    processed, split_file = root / "pairs.npz", root / "split.json"
    fileio.save_npz(processed, ids=np.array(ids), subsets=np.array(["train"] * 12), photos=photos, sketches=sketches)
    fileio.write_json(split_file, make_split(ids, ["train"] * 12, protocol="random", test_fraction=0.25,
                                             val_fraction=0.2, seed=0))
    params = load_params(ROOT / "params.yaml")
    params.update(epochs=1, batch_size=4, image_size=SIZE, seed=1)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    cwd = os.getcwd()
    os.chdir(root)
    try:
        train("conv", "f2s", params, processed_file=processed, split_file=split_file, models_dir=root / "models",
              history_dir=root / "history", checkpoint_root=root / "ckpt", verbose=0)
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
    (root / "metrics").mkdir(exist_ok=True)
    return root / "models", root / "metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, metrics: Path, root: Path, timeout: float = 240) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).parent / "facesketch"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "facesketch.use.cli"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(root / "gradio-tmp"), "TMPDIR": str(root / "tmp")}
    (root / "tmp").mkdir(exist_ok=True)
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([*cmd, "serve", "--port", str(port), "--max-upload-mb", str(LIMIT_MB),
                             "--models-dir", str(models), "--metrics-dir", str(metrics)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"facesketch serve exited with {proc.returncode}:\n{(root / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.time() > deadline:
            stop_server(proc)
            raise RuntimeError(f"facesketch serve did not answer on {url}:\n{(root / 'server.log').read_text()}")
        time.sleep(1)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mb(pid: int) -> float:
    import psutil

    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


# --- the inputs ---------------------------------------------------------------------------------


def make_inputs(folder: Path) -> dict[str, Path]:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)
    cv2.circle(img, (24, 30), 12, (200, 180, 160), -1)
    files = {"png": folder / "face.png", "jpeg": folder / "face.jpg", "text": folder / "notes.png",
             "noise": folder / "noise.jpg", "over_page": folder / "big.png", "over_gradio": folder / "huge.png"}
    cv2.imwrite(str(files["png"]), img)
    cv2.imwrite(str(files["jpeg"]), img)
    files["text"].write_text("not a picture\n" * 20)
    files["noise"].write_bytes(rng.integers(0, 255, 3000, dtype=np.uint8).tobytes())
    # a real PNG padded past the page's 1 MB limit (within Gradio's limit + 1 MB), and one past that
    files["over_page"].write_bytes(files["png"].read_bytes() + b"\0" * int(1.5 * 2**20))
    files["over_gradio"].write_bytes(files["png"].read_bytes() + b"\0" * int(2.5 * 2**20))
    return files


EXPECTED = {"png": (200, "Done:"), "jpeg": (200, "Done:"), "text": (200, "Error:"), "noise": (200, "Error:"),
            "over_page": (200, f"over the {LIMIT_MB} MB upload limit"),
            "over_gradio": (413, f"over the {LIMIT_MB} MB upload limit")}


# --- one request through the page's HTTP API ------------------------------------------------------


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def request(url: str, path: Path, timeout: float = 120) -> tuple[int, str, list[str]]:
    """Upload ``path`` and press Run (no alignment): (HTTP status, the status line or error, result files)."""
    body, ctype = _multipart(path)
    req = urllib.request.Request(f"{url}gradio_api/upload", data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            uploaded = json.loads(r.read())[0]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), []
    data = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": path.name},
                     "f2s", "conv", "none"]}
    req = urllib.request.Request(f"{url}gradio_api/call/submit", data=json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        event = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/submit/{event}", timeout=timeout) as r:
        status, text = r.status, r.read().decode("utf-8", "replace")
    kind, payload = None, None
    for line in text.splitlines():
        if line.startswith("event: "):
            kind = line[len("event: "):].strip()
        elif line.startswith("data: ") and kind in ("complete", "error"):
            payload = line[len("data: "):]
    if kind != "complete" or payload is None:
        return 500, f"event {kind}: {payload}", []
    out = json.loads(payload)
    files = [f["path"] for f in (out[3] or [])] if len(out) > 3 else []
    return status, str(out[0]), files


# --- the run ---------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))] if values else float("nan")


def half_written(folders: list[Path]) -> list[str]:
    """Temporary-named files, and result PNGs that do not decode, under ``folders`` (the uploads,
    some of them not pictures on purpose, are not checked)."""
    import cv2

    bad = []
    for folder in folders:
        for f in folder.rglob("*") if folder.exists() else []:
            if not f.is_file():
                continue
            if f.name.startswith(".") and f.name.endswith(".tmp"):
                bad.append(f"{f}: temporary file left")
            elif "_f2s_" in f.name and f.suffix == ".png" and cv2.imread(str(f)) is None:  # a result
                bad.append(f"{f}: PNG that does not decode")
    return bad


def run_load(url: str, pid: int, files: dict[str, Path], requests: int, concurrency: int,
             out_folders: list[Path], seed: int = 0) -> dict:
    rng = random.Random(seed)
    weights = {"png": 4, "jpeg": 2, "text": 1, "noise": 1, "over_page": 1, "over_gradio": 1}
    plan = rng.choices(list(weights), list(weights.values()), k=requests)
    for kind in KINDS:  # each kind at least once
        if kind not in plan and plan:
            plan[rng.randrange(len(plan))] = kind
    for kind in ("png", "text", "over_gradio"):  # warm-up: the model loaded, the graph traced
        request(url, files[kind])
    rss_before = rss_mb(pid)
    results, lock = [], threading.Lock()

    def one(kind: str) -> None:
        t0 = time.perf_counter()
        try:
            status, text, out = request(url, files[kind])
        except Exception as exc:  # noqa: BLE001 - a refused or dropped connection is a failure to count
            status, text, out = -1, f"{type(exc).__name__}: {exc}", []
        seconds = time.perf_counter() - t0
        want_status, want_text = EXPECTED[kind]
        ok = status == want_status and want_text in text and (kind not in ("png", "jpeg") or bool(out))
        with lock:
            results.append({"kind": kind, "status": status, "seconds": seconds, "ok": ok, "text": text[:300]})

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, plan))
    wall = time.perf_counter() - t0
    rss_after = rss_mb(pid)
    try:
        alive = urllib.request.urlopen(url, timeout=10).status == 200
    except OSError:
        alive = False
    latency = {kind: {"n": len(s), "p50_s": pct(s, 0.5), "p95_s": pct(s, 0.95)}
               for kind in KINDS if (s := [r["seconds"] for r in results if r["kind"] == kind])}
    every = [r["seconds"] for r in results]
    return {"requests": requests, "concurrency": concurrency, "wall_s": wall, "throughput_rps": requests / wall,
            "p50_s": pct(every, 0.5), "p95_s": pct(every, 0.95), "latency": latency,
            "failures": [r for r in results if not r["ok"]], "server_up_after": alive,
            "rss_mb_after_warmup": rss_before, "rss_mb_after_run": rss_after,
            "half_written": half_written(out_folders)}


def report(stats: dict) -> str:
    lines = [f"{stats['requests']} requests, {stats['concurrency']} at a time, in {stats['wall_s']:.1f} s: "
             f"{stats['throughput_rps']:.2f} requests/s; latency p50 {stats['p50_s'] * 1000:.0f} ms, "
             f"p95 {stats['p95_s'] * 1000:.0f} ms"]
    for kind, s in stats["latency"].items():
        lines.append(f"  {kind:12s} n={s['n']:3d}  p50 {s['p50_s'] * 1000:6.0f} ms  p95 {s['p95_s'] * 1000:6.0f} ms")
    lines.append(f"server RSS (with children): {stats['rss_mb_after_warmup']:.0f} MB after warm-up, "
                 f"{stats['rss_mb_after_run']:.0f} MB after the run "
                 f"({stats['rss_mb_after_run'] - stats['rss_mb_after_warmup']:+.0f} MB)")
    lines.append(f"server up afterwards: {stats['server_up_after']}; wrong answers: {len(stats['failures'])}; "
                 f"half-written files: {len(stats['half_written'])}")
    for f in stats["failures"][:5]:
        lines.append(f"  wrong: {f['kind']}: HTTP {f['status']}: {f['text']}")
    for f in stats["half_written"][:5]:
        lines.append(f"  {f}")
    return "\n".join(lines)


def problems(stats: dict, max_rss_growth_mb: float) -> list[str]:
    out = []
    if stats["failures"]:
        out.append(f"{len(stats['failures'])} wrong answers")
    if not stats["server_up_after"]:
        out.append("the server is down after the run")
    if stats["half_written"]:
        out.append(f"{len(stats['half_written'])} half-written files")
    growth = stats["rss_mb_after_run"] - stats["rss_mb_after_warmup"]
    if growth > max_rss_growth_mb:
        out.append(f"RSS grew {growth:.0f} MB (> {max_rss_growth_mb:.0f} MB)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-rss-growth-mb", type=float, default=150.0,
                    help="fail when the server's RSS grows more than this over the run (default 150)")
    ap.add_argument("--workdir", type=Path, help="keep the model, server log and outputs here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ns = ap.parse_args(argv)
    root = ns.workdir or Path(tempfile.mkdtemp(prefix="serve-load-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    models, metrics = train_tiny(root)
    print(f"tiny model trained in {time.time() - t0:.0f} s", file=sys.stderr)
    files = make_inputs(root / "inputs")
    proc, url = start_server(models, metrics, root)
    try:
        stats = run_load(url, proc.pid, files, ns.requests, ns.concurrency,
                         [root / "tmp", root / "gradio-tmp"])
    finally:
        stop_server(proc)
    print(report(stats))
    if ns.json:
        ns.json.write_text(json.dumps(stats, indent=2))
    bad = problems(stats, ns.max_rss_growth_mb)
    if bad:
        print("FAILED: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
