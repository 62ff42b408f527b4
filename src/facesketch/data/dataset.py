"""Loading the processed arrays as (input, target) pairs for a task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesketch import TASKS
from facesketch.core import fileio
from facesketch.core.errors import DataError
from facesketch.core.layout import PROCESSED_FILE, SPLIT_FILE


@dataclass
class TaskData:
    ids: list[str]
    inputs: np.ndarray   # uint8 N x S x S x 3
    targets: np.ndarray  # uint8 N x S x S x 3


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1], the range every model reads and writes."""
    return images.astype(np.float32) / 255.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images, np.float32) * 255.0), 0, 255).astype(np.uint8)


def task_arrays(photos: np.ndarray, sketches: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    if task == "f2s":
        return photos, sketches
    if task == "s2f":
        return sketches, photos
    raise DataError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")


def load_task(task: str, part: str, processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE) -> TaskData:
    """The ``part`` ("train" | "val" | "test") of the split, as inputs and targets for ``task``."""
    split = fileio.read_json(split_file)
    if part not in split:
        raise DataError(f"{split_file}: has no '{part}' list")
    wanted = split[part]
    with np.load(processed_file) as data:
        ids = data["ids"].tolist()
        index = {pid: k for k, pid in enumerate(ids)}
        missing = [w for w in wanted if w not in index]
        if missing:
            raise DataError(f"{split_file}: pairs {missing[:5]} are not in {processed_file}; rerun the split stage")
        rows = np.array([index[w] for w in wanted], dtype=np.int64)
        inputs, targets = task_arrays(data["photos"], data["sketches"], task)
        return TaskData(list(wanted), inputs[rows], targets[rows])


def train_photos(processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE) -> tuple[np.ndarray, np.ndarray | None]:
    """The training split's photos (uint8 N x S x S x 3) and their sizes before squaring
    ((height, width) rows; None for processed files written before sizes were stored)."""
    split = fileio.read_json(split_file)
    wanted = split.get("train", [])
    with np.load(processed_file) as data:
        index = {pid: k for k, pid in enumerate(data["ids"].tolist())}
        rows = np.array([index[w] for w in wanted if w in index], dtype=np.int64)
        sizes = data["source_sizes"][rows] if "source_sizes" in data.files else None
        return data["photos"][rows], sizes
