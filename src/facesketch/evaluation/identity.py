"""The identity metric: does an output still look like *that person* to a face-recognition network?

The network is dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``,
99.38% on LFW, public domain) as the ``face-recognition-models`` package ships it, with dlib's
own face detector and 5-point landmark model; both come with the optional extra
``facesketch[identity]`` (``dlib-bin``, ``face-recognition-models``). Without them the metric is
absent: ``unavailable()`` says why, and the protocol writes that reason instead of a number.

Per image (8-bit RGB; a grey image is replicated to 3 channels):

Face
    dlib's frontal face detector (HOG), upsampled once; the largest face found. Where it finds
    none, the fixed CUHK face box ``FALLBACK_BOX`` (scaled to the image's size) stands in, and
    the image is counted as a fallback.
Alignment
    dlib's 5-point shape predictor on that box, then ``dlib.get_face_chip`` (150 x 150,
    padding 0.25): the chip the descriptor network was trained on.
Descriptor
    the network's 128-d embedding of the chip (no jitter).

Per set of outputs (query i is the output for test image i; the gallery is the descriptors of all
real test targets, one per identity, target i being query i's own):

Rank
    1 + the number of other targets at least as near as the own one (Euclidean distance), so a
    tie never counts as a hit; rank-1 and rank-5 are the shares of queries with rank <= 1, <= 5.
Verified
    the share of genuine pairs (query i, target i) under dlib's standard 0.6 distance, the
    threshold at which dlib calls two faces the same person.
ROC AUC
    of genuine (own target) vs impostor (every other target of every query) distances, where a
    smaller distance means "same person": per query, the share of all impostor distances larger
    than its genuine distance (ties half); their mean over queries is exactly the Mann-Whitney
    ROC AUC, so the same per-image values give the bootstrap interval and the paired comparison.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLD = 0.6          # dlib's distance under which two descriptors are the same person
DETECTOR_UPSAMPLE = 1    # dlib's detector runs on the image upsampled once (finds faces down to ~40 px)
CHIP_SIZE, CHIP_PADDING = 150, 0.25   # dlib.get_face_chip's defaults: what the ResNet was trained on
# The CUHK face box (left, top, right, bottom) on the 200 x 250 crops: the median of dlib's detections
# (upsampled once) on the 88 CUHK training photos and sketches (photos 44, 92, 151, 211; sketches 38,
# 92, 167, 211; all 176 found). The crops are aligned (eyes at fixed places), so one box fits all.
CUHK_SIZE = (200, 250)   # width, height
FALLBACK_BOX = (41, 92, 159, 211)
EXTRA = "identity"       # pip install 'facesketch[identity]'

COLUMNS = ("id_distance", "id_rank", "id_rank1", "id_rank5", "id_verified", "id_auc", "id_fallback")


def unavailable() -> str | None:
    """Why the identity metric cannot be computed here (None: it can)."""
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError as exc:
        return (f"identity metric not computed: {exc.name or 'dlib'} is not installed; install the "
                f"optional extra with `pip install -e '.[{EXTRA}]'` (dlib-bin, face-recognition-models; "
                f"scripts/setup.sh installs it by default)")
    return None


@functools.lru_cache(maxsize=1)
def _models():
    """(detector, 5-point predictor, descriptor network), loaded once per process."""
    import dlib
    import face_recognition_models as frm

    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def fallback_box(width: int, height: int) -> tuple[int, int, int, int]:
    """FALLBACK_BOX scaled from the CUHK 200 x 250 crop to an image of width x height."""
    sx, sy = width / CUHK_SIZE[0], height / CUHK_SIZE[1]
    left, top, right, bottom = FALLBACK_BOX
    return round(left * sx), round(top * sy), round(right * sx), round(bottom * sy)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"the identity metric needs 8-bit (H, W) grey or (H, W, 3) RGB images; "
                         f"got {image.dtype} {image.shape}")
    return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image)


def describe(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(descriptors (N, 128) float64, fallback (N,) bool) of 8-bit grey or RGB images; see the module doc."""
    import dlib

    detector, predictor, network = _models()
    out, fell_back = [], []
    for image in images:
        rgb = _rgb(image)
        faces = detector(rgb, DETECTOR_UPSAMPLE)
        if len(faces):
            box = max(faces, key=lambda r: r.area())
        else:
            box = dlib.rectangle(*fallback_box(rgb.shape[1], rgb.shape[0]))
        chip = dlib.get_face_chip(rgb, predictor(rgb, box), size=CHIP_SIZE, padding=CHIP_PADDING)
        out.append(np.asarray(network.compute_face_descriptor(chip), np.float64))
        fell_back.append(not len(faces))
    return np.stack(out) if out else np.zeros((0, 128)), np.asarray(fell_back, bool)


@dataclass(frozen=True)
class Identification:
    """Queries against a gallery of their own targets (query i's own is gallery entry i)."""

    distances: np.ndarray   # (N, N) Euclidean distance of query i to gallery entry j

    @property
    def genuine(self) -> np.ndarray:
        return np.diag(self.distances).copy()

    @property
    def rank(self) -> np.ndarray:
        """1 + the other gallery entries at least as near as the own one (ties count against)."""
        rivals = self.distances <= self.genuine[:, None]
        np.fill_diagonal(rivals, False)
        return 1 + rivals.sum(axis=1)

    @property
    def auc_share(self) -> np.ndarray:
        """Per query: share of all impostor distances (every query's) above its genuine one, ties half.
        The mean over queries is the ROC AUC of genuine vs impostor distances."""
        n = len(self.distances)
        if n < 2:
            return np.full(n, np.nan)
        impostors = np.sort(self.distances[~np.eye(n, dtype=bool)])
        g = self.genuine
        below = np.searchsorted(impostors, g, side="left")
        above = len(impostors) - np.searchsorted(impostors, g, side="right")
        ties = len(impostors) - below - above
        return (above + 0.5 * ties) / len(impostors)


def identify(queries: np.ndarray, gallery: np.ndarray) -> Identification:
    """Every query descriptor against every gallery descriptor (both (N, 128), aligned by identity)."""
    queries, gallery = np.asarray(queries, np.float64), np.asarray(gallery, np.float64)
    if queries.shape != gallery.shape or queries.ndim != 2:
        raise ValueError(f"queries and gallery must both be (N, D) and aligned by identity; "
                         f"got {queries.shape} and {gallery.shape}")
    diff = queries[:, None, :] - gallery[None, :, :]
    return Identification(np.sqrt(np.sum(diff * diff, axis=-1)))


def per_image(match: Identification, fallback: np.ndarray) -> dict[str, np.ndarray]:
    """The per-image columns (``COLUMNS``) of one set of queries."""
    rank, genuine = match.rank, match.genuine
    return {"id_distance": genuine, "id_rank": rank, "id_rank1": (rank <= 1).astype(int),
            "id_rank5": (rank <= 5).astype(int), "id_verified": (genuine < THRESHOLD).astype(int),
            "id_auc": match.auc_share, "id_fallback": np.asarray(fallback, bool).astype(int)}


def protocol_text() -> str:
    return ("dlib ResNet face descriptor (face_recognition_models' dlib_face_recognition_resnet_model_v1.dat) "
            f"of dlib's frontal detector's largest face (upsample {DETECTOR_UPSAMPLE}; none found: the CUHK box "
            f"{FALLBACK_BOX} of 200x250, scaled, counted as a fallback), aligned by the 5-point model "
            f"(get_face_chip {CHIP_SIZE} px, padding {CHIP_PADDING}); gallery: all real test targets; "
            f"rank = 1 + targets at least as near as the own; verified: genuine distance < {THRESHOLD}; "
            "AUC: genuine vs impostor distances (Mann-Whitney, per-query shares averaged)")
