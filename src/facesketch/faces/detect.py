"""Faces and their five landmarks, found by MTCNN (the ``mtcnn`` package).

MTCNN runs on TensorFlow, which facesketch already uses, and ships its
weights inside the package (nothing is downloaded). It finds sketches too:
on the 88 CUHK training pairs it found every photo and every sketch.
Constructing the detector costs about a second once TensorFlow is loaded,
and a picture about 0.4 to 1 s on a 2-core CPU; pictures larger than
MAX_SIDE are searched at that size (faces far smaller than the picture are
then missed, below about MIN_FACE pixels there).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from facesketch.core.errors import FacesketchError
from facesketch.faces.geometry import LANDMARKS

MIN_CONFIDENCE = 0.9   # MTCNN's final score; below this, on CUHK and the test pictures, only false faces
MAX_SIDE = 1024        # larger pictures are searched at this size (time grows with the pixels)
MIN_FACE = 20          # MTCNN's smallest face, in pixels of the searched picture


class DetectorUnavailable(FacesketchError):
    """The face detector cannot be used (the mtcnn package is missing or broken)."""


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, width, height), the five landmarks (5 x 2, x y, in LANDMARKS
    order) in the picture's pixels, and the detector's confidence."""

    box: tuple[float, float, float, float]
    points: np.ndarray
    confidence: float


@lru_cache(maxsize=1)
def _mtcnn():
    from facesketch.core import backend

    backend.init()  # TensorFlow quiet and deterministic, as everywhere in facesketch
    try:
        from mtcnn import MTCNN
    except ImportError as exc:
        raise DetectorUnavailable(f"face detection needs the mtcnn package ({exc}); install it with "
                                  f"`pip install mtcnn`, or use --no-align for faces that are already aligned") from None
    return MTCNN(device="CPU:0")


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as v

    try:
        return f"mtcnn {v('mtcnn')}"
    except PackageNotFoundError:
        return "mtcnn (not installed)"


def detect_faces(image: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> list[Face]:
    """The faces in an RGB uint8 picture, left to right."""
    import cv2

    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    if min(small.shape[:2]) < MIN_FACE:
        return []
    found = _mtcnn().detect_faces(small, min_face_size=MIN_FACE)
    faces = []
    for d in found:
        if float(d["confidence"]) < min_confidence:
            continue
        pts = np.array([d["keypoints"][k] for k in LANDMARKS], np.float64) / scale
        x, y, bw, bh = (float(v) / scale for v in d["box"])
        faces.append(Face((x, y, bw, bh), pts, float(d["confidence"])))
    return sorted(faces, key=lambda f: f.box[0])
