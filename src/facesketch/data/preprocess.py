"""The preprocess stage: decode every pair, make it RGB and square, store as uint8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from .. import io
from .. import params as P
from ..errors import DataError
from . import PROCESSED_FILE, RAW_DIR
from .manifest import read_manifest


def read_rgb(path: Path) -> np.ndarray:
    """Read any image OpenCV decodes as H x W x 3 uint8 RGB (grey is replicated, alpha dropped)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        if not Path(path).exists():
            raise DataError(f"{path}: file not found")
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.dtype != np.uint8:
        # 16-bit PNGs and the like: scale to 8 bits
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1, np.iinfo(img.dtype).max))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_square(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size, as the study did (aspect not kept: 200x250 -> 256x256)."""
    interp = cv2.INTER_AREA if img.shape[0] > size or img.shape[1] > size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def preprocess(params: dict[str, Any], raw_dir: Path = RAW_DIR, out_file: Path = PROCESSED_FILE) -> int:
    size = P.image_size(params)
    pairs = read_manifest(raw_dir)
    n = len(pairs)
    photos = np.empty((n, size, size, 3), np.uint8)
    sketches = np.empty((n, size, size, 3), np.uint8)
    for i, pair in enumerate(tqdm(pairs, desc="preprocess", unit="pair")):
        photos[i] = to_square(read_rgb(raw_dir / pair.photo), size)
        sketches[i] = to_square(read_rgb(raw_dir / pair.sketch), size)
    io.save_npz(
        out_file,
        ids=np.array([p.pair_id for p in pairs]),
        subsets=np.array([p.subset for p in pairs]),
        photos=photos,
        sketches=sketches,
    )
    return n
