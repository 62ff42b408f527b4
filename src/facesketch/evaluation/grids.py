"""Labelled image grids and PNG encoding, shared by the report and the evaluation's MLflow sample."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

from facesketch.core import fileio
from facesketch.core.images import encode_image


def _label(img: np.ndarray, text: str) -> np.ndarray:
    band = np.full((18, img.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text[:24], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, img], axis=0)


def as_rgb(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img


def image_grid(ids: list[str], columns: list[tuple[str, np.ndarray]], tile: int = 128) -> np.ndarray:
    """Rows of labelled tiles: one row per id, one column per (name, uint8 images) pair."""
    def fit(img):
        return cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA if max(img.shape[:2]) > tile
                          else cv2.INTER_NEAREST)

    rows = []
    for i, pid in enumerate(ids):
        rows.append(np.concatenate([_label(fit(images[i]), f"{name} {pid}" if j == 0 else name)
                                    for j, (name, images) in enumerate(columns)], axis=1))
    return np.concatenate(rows, axis=0)


def write_png(path: Path, rgb: np.ndarray) -> None:
    fileio.write_bytes(path, encode_image(rgb, "png"))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


