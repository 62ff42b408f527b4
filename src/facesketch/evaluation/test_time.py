"""Test-time levers: what may be done to a trained model's outputs without retraining it.

Mirroring
    the prediction for an input averaged with the mirror image of the prediction for the mirrored
    input (faces are nearly symmetric, so the two are two views of one answer; the average halves
    the part of the error that flips with the image).
Bilateral post-filter
    OpenCV's bilateral filter on each 8-bit output, as Face-Sketch-Wild post-processes its sketches:
    smooths the GAN's high-frequency speckle while keeping edges. ``BILATERAL`` holds the settings
    (diameter 5 px at 256 px, scaled with the image; colour sigma 20 of 255; space sigma the
    diameter's).

Both are off unless asked for: params.yaml's ``test_time:`` section, per task, or
``evaluate(..., test_time={"mirror": True})``; the lever study (benchmarks/levers.py) measures them.
A model's metrics file records the levers its scores include (``RECORD_KEY``), and whatever runs the
model for a user (use/predictor.py) applies the same ones (:func:`recorded`), so that the scores
describe the outputs a user gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

OPTIONS = ("mirror", "bilateral")
RECORD_KEY = "test_time"  # in metrics/<model>-<task>.json: describe()'s text, absent when none
BILATERAL = {"diameter_at_256": 5, "sigma_color": 20.0}


def check(options: Mapping[str, Any] | None) -> dict[str, bool]:
    """The options as {mirror, bilateral} booleans; an unknown name or a non-boolean is refused."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"test-time option {unknown[0]!r} is not known; expected: {', '.join(OPTIONS)}")
    for name, value in options.items():
        if not isinstance(value, bool):
            raise ValueError(f"test-time option {name}={value!r} is not valid; expected true or false")
    return {name: options.get(name, False) for name in OPTIONS}


def predict(model, inputs: np.ndarray, *, mirror: bool = False, batch_size: int = 16) -> np.ndarray:
    """Float predictions of (N, H, W, C) float inputs; with ``mirror``, averaged with the mirrored
    prediction of the mirrored input."""
    out = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), np.float32)
    if mirror:
        flipped = np.asarray(model.predict(inputs[:, :, ::-1], batch_size=batch_size, verbose=0), np.float32)
        out = (out + flipped[:, :, ::-1]) / 2
    return out


def bilateral(images_u8: np.ndarray) -> np.ndarray:
    """OpenCV's bilateral filter on each (H, W, C) 8-bit image; the diameter scales with the side."""
    images_u8 = np.asarray(images_u8)
    if images_u8.dtype != np.uint8:
        raise ValueError(f"the bilateral post-filter takes 8-bit images; got {images_u8.dtype}")
    side = images_u8.shape[1]
    diameter = max(3, int(round(BILATERAL["diameter_at_256"] * side / 256)) | 1)
    out = np.empty_like(images_u8)
    for k, image in enumerate(images_u8):
        filtered = cv2.bilateralFilter(np.ascontiguousarray(image), diameter, BILATERAL["sigma_color"], diameter)
        out[k] = filtered.reshape(image.shape)
    return out


def describe(options: Mapping[str, bool]) -> str:
    """One line for the record: which test-time levers the scores include."""
    on = [name for name in OPTIONS if options.get(name)]
    return ", ".join(on) if on else "none"


def recorded(scores: Mapping[str, Any] | None) -> dict[str, bool]:
    """The options a metrics summary says its scores include (the inverse of :func:`describe`; none
    when the summary has no record); an unknown name is refused, naming it."""
    text = (scores or {}).get(RECORD_KEY)
    if text is None or text == "none":
        return check(None)
    if not isinstance(text, str):
        raise ValueError(f"{RECORD_KEY}={text!r} is not valid; expected names of: {', '.join(OPTIONS)}")
    return check({name.strip(): True for name in text.split(",") if name.strip()})
