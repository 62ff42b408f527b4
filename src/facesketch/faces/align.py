"""Aligning a detected face to a model's training geometry, and putting the result back.

A similarity transform (rotation, uniform scale, shift: no shear, so the face
keeps its proportions) is fitted by least squares (Umeyama's method, through
scikit-image) from the five detected landmarks to the geometry's landmarks.
The aligned crop is that transform applied to the picture: a frame of the
training images' aspect, as tall as the face is large in the picture (so
nothing is lost before the predictor shrinks it to the model's square).

Pasting back applies the inverse transform to the model's output and blends
it into the picture through a mask that fades to zero over the crop's outer
FEATHER fraction, so no hard seam shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facesketch.faces.detect import Face
from facesketch.faces.geometry import FaceGeometry

REFERENCE_HEIGHT = 256   # the frame height the transform is first fitted in
MAX_CROP_HEIGHT = 1024   # an aligned crop is never taller than this (a huge face is shrunk)
FEATHER = 0.08           # soft edge width, as a fraction of the crop's smaller side


@dataclass
class AlignedFace:
    """A face cut out of a picture and aligned: ``crop`` (H x W x 3 uint8) and the 2 x 3 matrix
    that maps the picture's pixel coordinates to the crop's."""

    face: Face
    crop: np.ndarray
    matrix: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.crop.shape[1], self.crop.shape[0]


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 least-squares similarity matrix taking points ``src`` (N x 2) to ``dst``."""
    from skimage.transform import SimilarityTransform

    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:
        tform = SimilarityTransform()
        ok = tform.estimate(src, dst)
    if not ok or not np.all(np.isfinite(tform.params)) or scale_of(tform.params) < 1e-9:
        raise ValueError("landmarks are degenerate (all in one place); no similarity transform fits")
    return np.asarray(tform.params[:2], np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def scale_of(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:2, :2]))))


def crop_height(face: Face, geometry: FaceGeometry, min_height: int, max_height: int = MAX_CROP_HEIGHT) -> int:
    """The height at which the aligned crop keeps the face's resolution in the picture:
    about one crop pixel per picture pixel, between ``min_height`` and ``max_height``."""
    m = similarity(face.points, geometry.pixels(REFERENCE_HEIGHT))
    natural = REFERENCE_HEIGHT / max(scale_of(m), 1e-6)
    return int(np.clip(round(natural), min_height, max(min_height, max_height)))


def align(image: np.ndarray, face: Face, geometry: FaceGeometry, height: int) -> AlignedFace:
    """The face cut out of ``image`` and aligned to ``geometry`` in a frame ``height`` tall.

    Parts of the frame outside the picture repeat its border pixels (as a
    photographer's backdrop would continue), not black, which the models
    never saw around a face.
    """
    import cv2

    width, height = geometry.frame(height)
    matrix = similarity(face.points, geometry.pixels(height))
    interp = cv2.INTER_AREA if scale_of(matrix) < 1 else cv2.INTER_CUBIC
    crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, (width, height), flags=interp,
                          borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(face, crop, matrix)


def feather_mask(width: int, height: int, feather: float = FEATHER) -> np.ndarray:
    """H x W float32 in [0, 1]: 1 inside, easing to 0 over the outer ``feather`` of the smaller side."""
    ramp = max(1.0, feather * min(width, height))
    x = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / ramp
    y = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / ramp
    m = np.clip(np.minimum(y[:, None], x[None, :]), 0.0, 1.0)
    return (m * m * (3 - 2 * m)).astype(np.float32)  # smoothstep: no visible band where the ramp ends


def paste(image: np.ndarray, faces: list[AlignedFace], outputs: list[np.ndarray],
          feather: float = FEATHER) -> np.ndarray:
    """``image`` with each output (a crop-sized or any-sized image for the matching face) put back
    where its face was, through a soft-edged mask. Later faces are laid over earlier ones."""
    import cv2

    h, w = image.shape[:2]
    result = image.astype(np.float32)
    for aligned, out in zip(faces, outputs):
        cw, ch = aligned.size
        if out.shape[:2] != (ch, cw):
            out = cv2.resize(np.ascontiguousarray(out), (cw, ch), interpolation=cv2.INTER_CUBIC)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # matrix maps picture -> crop
        back = cv2.warpAffine(out, aligned.matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(feather_mask(cw, ch, feather), aligned.matrix, (w, h), flags=flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)[..., None]
        result = result * (1.0 - mask) + back.astype(np.float32) * mask
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)
