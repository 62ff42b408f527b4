"""The face_geometry stage: where the five landmarks sit in the training photos.

It depends on the processed photos and the split, not on a model (every model
of a task is trained on the same photos at the same size), so it is its own DVC
stage and retraining never waits on the face detector, nor does a change to the
detector retrain anything. ``facesketch predict`` reads its output
(``data/faces/geometry.json``, facesketch.core.layout.FACE_GEOMETRY_FILE) to
align faces to the training geometry (facesketch.faces.geometry.for_model).

When the photos are too small to measure, too few faces are found, or the
detector cannot run (no mtcnn), the CUHK default geometry is written with the
reason in its ``note``, and the stage says so on stderr: predict then still
aligns, to CUHK's geometry, and tells the user which one it used.
"""

from __future__ import annotations

import sys
from pathlib import Path

from facesketch.core import fileio
from facesketch.core.layout import FACE_GEOMETRY_FILE, PROCESSED_FILE, SPLIT_FILE
from facesketch.data.dataset import train_photos
from facesketch.faces import geometry


def training_geometry(processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE) -> geometry.FaceGeometry:
    """Where the landmarks sit in the training photos, measured with the face detector; the CUHK
    default (with the reason) when the images are too small to measure or no detector works."""
    photos, sizes = train_photos(processed_file, split_file)
    aspect = geometry.training_aspect(sizes)
    size = int(photos.shape[1]) if photos.ndim == 4 and len(photos) else 0
    if size < geometry.MIN_MEASURE_SIZE:
        reason = f"training images are {size} px, too small to measure (under {geometry.MIN_MEASURE_SIZE})"
        print(f"warning: {reason}; storing the CUHK default face geometry", file=sys.stderr)
        return geometry.cuhk_default(reason, len(photos), 0)
    from facesketch.faces import detect

    try:
        return geometry.measure_geometry(photos, aspect, detect.detect_faces)
    except Exception as exc:  # noqa: BLE001 - predict can align to CUHK's geometry: say why, never fail here
        reason = str(exc) if isinstance(exc, detect.DetectorUnavailable) else f"face detection failed ({type(exc).__name__}: {exc})"
        print(f"warning: {reason}; storing the CUHK default face geometry", file=sys.stderr)
        return geometry.cuhk_default(reason, len(photos), 0)


def write_training_geometry(processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE,
                            out_file: Path = FACE_GEOMETRY_FILE) -> geometry.FaceGeometry:
    """Measure the training geometry and write it (atomically) to ``out_file``."""
    measured = training_geometry(processed_file, split_file)
    fileio.write_json(out_file, measured.to_info())
    return measured
