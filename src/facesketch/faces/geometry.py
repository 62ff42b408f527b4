"""Where the five landmarks sit in a model's training images.

The pipeline squeezes each training image (CUHK: 200x250) into the model's
square, so a face geometry has two parts: the aspect (width / height) of the
frames the training images had before that squeeze, and the five landmarks
as fractions of that frame's width and height (which the squeeze leaves
unchanged). Alignment maps a detected face onto these positions in a frame of
that aspect; the predictor then squeezes the crop exactly as the pipeline did.

``measure_geometry`` runs the detector on the training photos in the
face_geometry stage (facesketch.faces.measure writes ``data/faces/geometry.json``;
models trained before that stage existed carry it in their ``info.json`` as
``face_geometry``). When too few faces are found there (synthetic data, tiny
images, no detector), the CUHK geometry measured once from the 88 real CUHK
training photos is used instead and the note says so. ``for_model`` is how
predict finds a model's geometry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from facesketch.core.layout import FACE_GEOMETRY_FILE

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image left/right, as MTCNN names them

# Measured with MTCNN 1.0.0 on the 88 CUHK student-set training photos at their own 200x250, the 20%
# trimmed mean of each landmark over the 88 faces it found (as measure_geometry does); fractions of the
# frame's width and height. (The 88 sketches give the same within 0.004.)
CUHK_ASPECT = 200 / 250
CUHK_POINTS = ((0.3728, 0.5021), (0.6265, 0.5023), (0.5, 0.6163), (0.3979, 0.7278), (0.5996, 0.7282))
CUHK_MEASURED_ON = "88 CUHK training photos, MTCNN 1.0.0"

MIN_DETECTED = 5          # fewer faces than this (or than all images, for smaller sets): use the CUHK default
MIN_MEASURE_SIZE = 64    # training images smaller than this are not measured (faces too small for landmarks)
DETECTION_HEIGHT = 160    # training images are resized to this height before detection (faces fill them)
MAX_MEASURED = 40         # at most this many training photos, evenly spread, are measured (~0.3 s each on a 2-core CPU)


@dataclass(frozen=True)
class FaceGeometry:
    """Five landmarks (fractions of the frame) in a frame of ``aspect`` = width / height."""

    aspect: float
    points: tuple[tuple[float, float], ...]
    source: str = "default"       # "measured": from this model's training photos; "default": CUHK's
    n_images: int = 0
    n_detected: int = 0
    note: str = ""

    def frame(self, height: int) -> tuple[int, int]:
        """(width, height) in pixels of a frame ``height`` tall."""
        return max(1, int(round(self.aspect * height))), int(height)

    def pixels(self, height: int) -> np.ndarray:
        """The landmarks in pixels of a frame ``height`` tall, 5 x 2 (x, y)."""
        w, h = self.frame(height)
        return np.asarray(self.points, np.float64) * np.array([w, h], np.float64)

    def to_info(self) -> dict[str, Any]:
        return {"aspect": round(float(self.aspect), 4),
                "landmarks": {k: [round(float(x), 4), round(float(y), 4)] for k, (x, y) in zip(LANDMARKS, self.points)},
                "source": self.source, "n_images": int(self.n_images), "n_detected": int(self.n_detected),
                "note": self.note}

    @classmethod
    def from_info(cls, info: dict[str, Any] | None) -> "FaceGeometry":
        """The geometry stored in a model's info.json (``face_geometry``); the CUHK default if absent.

        Raises ValueError on a malformed entry (the caller names the file).
        """
        if not info:
            return cuhk_default("model trained before face geometries were stored")
        try:
            marks = info["landmarks"]
            points = tuple((float(marks[k][0]), float(marks[k][1])) for k in LANDMARKS)
            aspect = float(info["aspect"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ValueError(f"face_geometry is malformed ({type(exc).__name__}: {exc})") from None
        if not (0.1 < aspect < 10) or not all(np.isfinite(points).ravel()):
            raise ValueError(f"face_geometry is malformed (aspect {aspect}, landmarks {points})")
        return cls(aspect, points, str(info.get("source", "measured")), int(info.get("n_images", 0)),
                   int(info.get("n_detected", 0)), str(info.get("note", "")))


def cuhk_default(note: str = "", n_images: int = 0, n_detected: int = 0) -> FaceGeometry:
    text = f"CUHK default ({CUHK_MEASURED_ON})" + (f": {note}" if note else "")
    return FaceGeometry(CUHK_ASPECT, CUHK_POINTS, "default", n_images, n_detected, text)


def for_model(model_dir: Path, info: dict[str, Any]) -> FaceGeometry:
    """The face geometry a model in ``model_dir`` (``<project>/models/<name>``) aligns faces to.

    In order: the ``face_geometry`` in its ``info.json`` (models trained before the face_geometry
    stage, or a folder made self-contained by hand); the project's face_geometry stage output
    (``<project>/data/faces/geometry.json``, beside the models folder: every model of a project is
    trained on the same photos); else the CUHK default, whose note names the file it looked for.
    Raises ValueError naming the file when a stored geometry is malformed.
    """
    if info.get("face_geometry"):
        try:
            return FaceGeometry.from_info(info["face_geometry"])
        except ValueError as exc:
            raise ValueError(f"{Path(model_dir) / 'info.json'}: {exc}") from None
    measured = Path(model_dir).parent.parent / FACE_GEOMETRY_FILE
    try:
        stored = json.loads(measured.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return cuhk_default(f"no {measured} (run `dvc repro face_geometry`, or copy it beside the models folder)")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{measured}: cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        return FaceGeometry.from_info(stored)
    except ValueError as exc:
        raise ValueError(f"{measured}: {exc}") from None


def training_aspect(source_sizes: np.ndarray | None) -> float:
    """Median width / height of the training images before the pipeline squared them (1.0 if unknown)."""
    if source_sizes is None or len(source_sizes) == 0:
        return 1.0
    sizes = np.asarray(source_sizes, np.float64).reshape(-1, 2)  # (height, width) rows
    return float(np.median(sizes[:, 1] / np.maximum(sizes[:, 0], 1)))


def measure_geometry(photos: Iterable[np.ndarray], aspect: float,
                     detect: Callable[[np.ndarray], list] | None) -> FaceGeometry:
    """The typical landmark positions of the faces ``detect`` finds in ``photos`` (square uint8 RGB,
    squeezed from frames of ``aspect``); the CUHK default when fewer than MIN_DETECTED are found.

    Each photo is first stretched back to its frame's aspect, DETECTION_HEIGHT tall, so the
    detector sees faces in their true proportions; the largest face of each photo counts.
    At most MAX_MEASURED photos, evenly spread, are measured.
    """
    import cv2

    photos = list(photos)
    if len(photos) > MAX_MEASURED:  # the mean is settled long before; training should not wait on it
        photos = [photos[int(i)] for i in np.linspace(0, len(photos) - 1, MAX_MEASURED).round()]
    if detect is None:
        return cuhk_default("no face detector available", len(photos), 0)
    width, height = max(1, int(round(aspect * DETECTION_HEIGHT))), DETECTION_HEIGHT
    found = []
    for photo in photos:
        frame = cv2.resize(np.ascontiguousarray(photo), (width, height), interpolation=cv2.INTER_CUBIC)
        faces = detect(frame)
        if faces:
            face = max(faces, key=lambda f: f.box[2] * f.box[3])
            found.append(np.asarray(face.points, np.float64) / np.array([width, height], np.float64))
    n, k = len(photos), len(found)
    if k < min(MIN_DETECTED, max(1, n)):
        return cuhk_default(f"a face was found in only {k} of the {n} training photos", n, k)
    from scipy.stats import trim_mean

    # a trimmed mean: robust to a misplaced landmark like a median, but not stuck on the detector's whole pixels
    points = trim_mean(np.stack(found), 0.2, axis=0)
    return FaceGeometry(float(aspect), tuple((float(x), float(y)) for x, y in points), "measured", n, k,
                        f"mean (20% trimmed) of the faces found in {k} of the {n} training photos")
