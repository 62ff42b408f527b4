"""A trained model run on pictures: prepared as the pipeline prepares its data (the same reader,
resize rule and scaling), in fixed-size batches through ``predict_on_batch`` (one traced graph for
the whole run; the last batch is padded), with the test-time levers its scores include (mirroring,
the bilateral filter: evaluation/test_time.py, as the metrics file records them), and on faces in ordinary pictures: each face found, aligned
to the model's training geometry, run, and pasted back or kept as a crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.core.errors import DataError, FacesketchError
from facesketch.core.images import resize
from facesketch.core.layout import MODEL_FILE
from facesketch.evaluation.test_time import bilateral
from facesketch.use.catalog import ModelEntry, ModelNotFound

DEFAULT_BATCH = 8


# --- the model ---------------------------------------------------------------------------------


class Predictor:
    """A loaded model that maps uint8 RGB images of any size to uint8 RGB outputs."""

    def __init__(self, entry: ModelEntry, model: Any, batch_size: int = DEFAULT_BATCH):
        self.entry, self.model = entry, model
        self.test_time = entry.test_time  # the levers its scores include: its outputs get the same
        self.size = entry.image_size
        self.batch_size = max(1, int(batch_size))
        shape = tuple(getattr(model, "input_shape", ()) or ())
        if len(shape) == 4 and shape[1:3] != (self.size, self.size) and None not in shape[1:3]:
            raise FacesketchError(f"{entry.path}: model input is {shape[1]}x{shape[2]} but info.json says "
                                  f"image_size {self.size}; retrain it with `dvc repro`")

    @classmethod
    def load(cls, entry: ModelEntry, batch_size: int = DEFAULT_BATCH) -> "Predictor":
        from facesketch.core.saved import load_predictor

        file = entry.path / MODEL_FILE
        if not file.exists():
            raise ModelNotFound(f"{file}: not found; train the model with `dvc repro train@{entry.name}`")
        try:
            model = load_predictor(entry.path)
        except FacesketchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged or incompatible file: say which
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise FacesketchError(f"{file}: cannot load the model ({type(exc).__name__}: {first})") from None
        return cls(entry, model, batch_size)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The pipeline's preprocessing: square resize to image_size, floats in [0, 1]."""
        from facesketch.data.dataset import to_float
        from facesketch.data.preprocess import to_square

        return to_float(to_square(image, self.size))

    def run_batch(self, batch: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Float N x S x S x 3 -> uint8 outputs, in batches of ``batch_size`` (default: the
        predictor's, or N if fewer); the last one is padded, so every call has one shape."""
        from facesketch.data.dataset import to_uint8

        n = len(batch)
        b = int(batch_size) if batch_size else min(self.batch_size, max(1, n))
        outs = []
        for start in range(0, n, b):
            chunk = batch[start:start + b]
            if len(chunk) < b:
                pad = np.zeros((b - len(chunk), *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, pad])
            pred = np.asarray(self.model.predict_on_batch(chunk), np.float32)
            if self.test_time["mirror"]:  # as evaluation/test_time.predict: with the mirrored input's, mirrored back
                flipped = np.asarray(self.model.predict_on_batch(np.ascontiguousarray(chunk[:, :, ::-1])), np.float32)
                pred = (pred + flipped[:, :, ::-1]) / 2
            outs.append(to_uint8(pred[: min(b, n - start)]))
        out = np.concatenate(outs) if outs else np.empty((0, self.size, self.size, 3), np.uint8)
        return bilateral(out) if self.test_time["bilateral"] and len(out) else out

    def predict(self, images: list[np.ndarray], native: bool = False,
                batch_size: int | None = None) -> list[np.ndarray]:
        """uint8 RGB images (any sizes) -> uint8 RGB outputs at each input's size (or S x S: ``native``)."""
        if not images:
            return []
        raw = self.run_batch(np.stack([self.prepare(im) for im in images]), batch_size)
        if native:
            return list(raw)
        return [resize(out, im.shape[1], im.shape[0]) for out, im in zip(raw, images)]


# --- faces in ordinary pictures ----------------------------------------------------------------


def no_face_message(path: Path | str) -> str:
    return (f"{path}: no face found (a frontal face at least 20 px across is needed; "
            f"for an already aligned face use --no-align)")


def find_faces(image: np.ndarray, geometry: Any, min_height: int) -> list:
    """Every face in ``image``, left to right, aligned to ``geometry`` (facesketch.faces.align.AlignedFace),
    each crop at least ``min_height`` tall."""
    from facesketch.faces.align import align, crop_height
    from facesketch.faces.detect import detect_faces

    return [align(image, f, geometry, crop_height(f, geometry, min_height)) for f in detect_faces(image)]


@dataclass
class Processed:
    """One picture through the model: its aligned faces, the model's output for each (at the crop's
    size), and the picture with them pasted back (or, without alignment, the whole output)."""

    faces: list
    outputs: list[np.ndarray]
    image: np.ndarray


def process_image(predictor: "Predictor", image: np.ndarray, *, align: bool = True) -> Processed:
    """Run ``predictor`` on one picture (the web page's path; ``predict_files`` batches many).
    Raises DataError when alignment finds no face."""
    if not align:
        return Processed([], [], predictor.predict([image], batch_size=1)[0])
    from facesketch.faces.align import paste

    faces = find_faces(image, predictor.entry.face_geometry, predictor.size)
    if not faces:
        raise DataError(no_face_message("the picture"))
    outputs = predictor.predict([f.crop for f in faces], batch_size=1)
    return Processed(faces, outputs, paste(image, faces, outputs))
