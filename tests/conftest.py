"""Shared fixtures: tiny, structured data so tests never need the real dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import facesketch  # noqa: F401  (quiet TensorFlow first)

REPO = Path(__file__).resolve().parents[1]


def make_pairs(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Photos: coloured discs on gradients; sketches: their grey outlines.

    A fixed, local photo -> sketch rule, so a small network can learn it.
    """
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    photos = np.empty((n, size, size, 3), np.uint8)
    sketches = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        base = np.stack([yy * rng.uniform(0.3, 0.9), xx * rng.uniform(0.3, 0.9), np.full_like(xx, rng.uniform(0.5, 1))], -1)
        photo = (base * 200 + 30).astype(np.uint8)
        sketch = np.full((size, size), 245, np.uint8)
        for _ in range(2):
            c = tuple(int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
            r = int(rng.integers(size // 8, size // 4))
            cv2.circle(photo, c, r, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
            cv2.circle(sketch, c, r, 40, 2)
        photos[i] = photo
        sketches[i] = np.repeat(sketch[..., None], 3, -1)
    return photos, sketches


def write_raw(raw_dir: Path, ids: list[str], photos: np.ndarray, sketches: np.ndarray, scale: int = 2) -> Path:
    """A data/raw for processed pairs, as fetch leaves it: PNG files and pairs.csv.

    The evaluate stage scores against these original files at their own size
    (``scale`` times the processed size, so predictions really are resized).
    """
    import cv2

    from facesketch.data.manifest import Pair, write_manifest

    pairs = []
    for pid, photo, sketch in zip(ids, photos, sketches):
        for kind, img in (("photo", photo), ("sketch", sketch)):
            big = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
            (raw_dir / kind).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(raw_dir / kind / f"{pid}.png"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        pairs.append(Pair(pid, f"photo/{pid}.png", f"sketch/{pid}.png", "train"))
    write_manifest(raw_dir, pairs)
    return raw_dir


@pytest.fixture
def tiny_data(tmp_path: Path):
    """A processed pairs.npz and split.json (32 px, 16 pairs) under tmp_path (no data/raw:
    add one with ``write_raw`` where a test evaluates)."""
    from facesketch.core import fileio
    from facesketch.data.split import make_split

    photos, sketches = make_pairs(16, 32)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(16)]
    processed = tmp_path / "pairs.npz"
    fileio.save_npz(processed, ids=np.array(ids), subsets=np.array(["train"] * 8 + ["test"] * 8),
                photos=photos, sketches=sketches)
    split = make_split(ids, ["train"] * 8 + ["test"] * 8, protocol="random", test_fraction=0.25,
                       val_fraction=0.2, seed=0)
    split_file = tmp_path / "split.json"
    fileio.write_json(split_file, split)
    return processed, split_file


def tiny_params(**overrides) -> dict:
    """params.yaml's structure with tiny training settings."""
    from facesketch.core.params import load_params

    params = load_params(REPO / "params.yaml")
    params.update(epochs=2, batch_size=4, image_size=32, learning_rate=0.001, seed=1)
    # a resumable checkpoint after every epoch: the kill/resume tests need one at once
    params["runtime"] = {**params.get("runtime", {}), "checkpoint_seconds": 0}
    params.update(overrides)
    return params


@pytest.fixture
def venv_env() -> dict:
    """Environment for subprocesses: this interpreter's bin first on PATH, TF quiet."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def imported_module(node, package: str) -> str:
    """The absolute module an ``ast.ImportFrom`` names, relative ones resolved from the importing
    module's ``package`` (shared by the import-cycle and the dvc.yaml-deps checks)."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end tests first (a stable sort: otherwise in file order): on two xdist workers
    the suite's wall time is set by whichever long test starts last, so starting them first
    lets the short tests fill in beside them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
