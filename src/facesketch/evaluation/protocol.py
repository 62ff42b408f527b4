"""The benchmark protocol: scores that stand next to the published face-sketch tables.

Published CUHK/CUFS results score each generated image at the test image's
native size (CUHK: 200 wide x 250 high) against the original file, whatever
size the network worked at. So does this module.

The protocol, step by step:

Geometry
    Each prediction (the model's image_size square, 8-bit) is resized
    bicubically (OpenCV INTER_CUBIC) to its target's native width x height
    and saved as an 8-bit PNG, ``data/predictions/<model>-<task>/<id>.png``:
    grey for f2s (the luma below), RGB for s2f. Those files are what is
    scored. The target is the original file listed in ``data/raw/pairs.csv``,
    decoded as fetched: never cleaned (borders and printed labels stay), so
    the number is the one a paper's evaluation script would give.
Colour
    Grey is BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B of the 8-bit RGB,
    rounded to the nearest integer (a grey file stays exactly itself).
Sketch targets (f2s)
    everything on the 8-bit grey images: FSIM (FeatureSIM.m, grey), SSIM,
    SCOOT (ScootMeasure.m), PSNR and MAE.
Photo targets (s2f)
    FSIM and FSIMc from one FeatureSIM.m call on the 8-bit RGB images (FSIM on
    its unrounded Y), SSIM on the 8-bit grey, PSNR and MAE on RGB (all 3
    channels).
Settings
    SSIM: scikit-image ``structural_similarity`` on the uint8 images, Gaussian
    window sigma 1.5, population covariance, data range 255. PSNR:
    10 log10(255^2 / MSE) on the 8-bit values. MAE: mean absolute difference of
    the 8-bit values divided by 255 (the [0, 1] scale of the training loss).
    FSIM/FSIMc/SCOOT: see ``facesketch.evaluation.metrics``.
SSIM rank-1
    each prediction against every test target by grey SSIM (the settings
    above), on the native images; a hit when its own target is strictly the
    most similar. Test targets of different sizes are all resized
    (bicubic) to the first target's size for this matching only. (Named
    ``rank1`` in metrics files before #26, ``accuracy`` before the protocol.)
Identity
    dlib's ResNet face descriptor of each native prediction (grey replicated
    to RGB) against those of all real test targets: rank-1, rank-5, the share
    of genuine pairs under dlib's 0.6 distance, the ROC AUC of genuine vs
    impostor distances and the mean genuine distance; see
    ``facesketch.evaluation.identity``. Needs the ``identity`` extra; without
    it these metrics are absent and ``absent`` in the summary says why.
LPIPS and DISTS
    LPIPS v0.1 (VGG16 and AlexNet) and DISTS on the native 8-bit RGB images
    (grey replicated), as the reference packages compute them; see
    ``facesketch.evaluation.perceptual``. They need the ImageNet backbones on
    disk (FACESKETCH_WEIGHTS_DIR, checksum-verified); without them they are
    absent and ``absent`` says why.
Uncertainty
    each mean gets a 95% percentile bootstrap interval over the test images
    (10,000 resamples, seed 0, SciPy's ``scipy.stats.bootstrap``). Two models
    are compared on the same images by a paired bootstrap of the per-image
    differences (the same resamples for both); the better one "beats" the
    other when the 95% interval of the mean difference excludes 0.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import pandas as pd
from scipy import stats
from skimage.metrics import structural_similarity

from facesketch import TASKS
from facesketch.core import fileio
from facesketch.core.errors import DataError
from facesketch.core.images import encode_image, luma, read_rgb
from facesketch.core.layout import RAW_DIR
from facesketch.data.manifest import read_manifest
from facesketch.evaluation import identity, metric_specs, metrics, perceptual

NATIVE_INTERPOLATION = cv2.INTER_CUBIC
SSIM_SETTINGS = dict(gaussian_weights=True, sigma=metrics.SSIM_SIGMA, use_sample_covariance=False, data_range=255)
CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0

# The metrics of each task, in the order tables show them, and which way is better: read from
# the one spec of the metrics (facesketch.evaluation.metric_specs.BENCHMARK_METRICS).
TASK_METRICS = {task: metric_specs.task_metrics(task) for task in TASKS}
HIGHER_IS_BETTER = {m.key: m.higher_is_better for m in metric_specs.BENCHMARK_METRICS}
GROUP_OF = {m.key: m.group for m in metric_specs.BENCHMARK_METRICS}



def protocol(task: str) -> dict[str, Any]:
    """The ``protocol`` block written beside the scores: everything needed to reproduce them."""
    grey = "8-bit grey, BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B rounded"
    colour = {"f2s": {"fsim": grey, "ssim": grey, "scoot": grey, "psnr": grey, "mae": grey, "ssim_rank1": grey,
                      "identity": "8-bit grey replicated to RGB"},
              "s2f": {"fsim": "8-bit RGB, FeatureSIM.m's unrounded Y", "fsimc": "8-bit RGB (Y, I, Q)",
                      "ssim": grey, "psnr": "8-bit RGB, all 3 channels", "mae": "8-bit RGB, all 3 channels",
                      "ssim_rank1": grey, "identity": "8-bit RGB"}}[task]
    return {
        "name": "native-size original-target benchmark protocol",
        "geometry": "prediction resized (bicubic, OpenCV INTER_CUBIC) to the target's native width x height, "
                    "saved as an 8-bit PNG; target: the original fetched file (data/raw/pairs.csv), not cleaned",
        "predictions": "data/predictions/<model>-<task>/<id>.png",
        "colour": colour,
        "data_range": {"ssim": 255, "psnr": 255, "mae": "8-bit difference / 255"},
        "implementation": {
            "fsim": "facesketch.evaluation.metrics.featuresim = FeatureSIM.m (Zhang et al. 2011), checked against it in Octave",
            **({"fsimc": "FSIMc of the same FeatureSIM.m call"} if task == "s2f" else {}),
            "ssim": "skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, "
                    "use_sample_covariance=False, data_range=255)",
            **({"scoot": "facesketch.evaluation.metrics.scoot = ScootMeasure.m (Fan et al. 2019): skimage graycomatrix/"
                         "graycoprops, 6 levels, 4 orientations, 4x4 blocks, contrast and energy"}
               if task == "f2s" else {}),
            "ssim_rank1": "nearest test target by grey SSIM (same settings), native size",
            "identity": identity.protocol_text(),
            "lpips_dists": perceptual.protocol_text(),
        },
        "intervals": f"{CONFIDENCE:.0%} percentile bootstrap over test images, {RESAMPLES} resamples, seed {SEED}",
    }


# ---------------------------------------------------------------- images

def grey_u8(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of 8-bit RGB, rounded to 8 bits: (H, W, 3) uint8 -> (H, W) uint8."""
    return np.clip(np.rint(luma(np.asarray(rgb, np.float64))), 0, 255).astype(np.uint8)


def to_native(pred: np.ndarray, width: int, height: int) -> np.ndarray:
    """An 8-bit prediction resized bicubically to width x height (8-bit, saturated)."""
    if pred.dtype != np.uint8:
        raise ValueError(f"predictions must be 8-bit (uint8) images; got dtype {pred.dtype}")
    if pred.shape[1] == width and pred.shape[0] == height:
        return pred.copy()
    return cv2.resize(pred, (int(width), int(height)), interpolation=NATIVE_INTERPOLATION)


@dataclass(frozen=True)
class Target:
    """One test target as fetched: its file (relative to the raw folder), hash and 8-bit pixels."""

    pair_id: str
    file: str
    sha256: str
    image: np.ndarray    # f2s: (H, W) uint8 grey; s2f: (H, W, 3) uint8 RGB

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def read_targets(task: str, ids: Sequence[str], raw_dir: Path = RAW_DIR) -> list[Target]:
    """The original target file of each id (the sketch for f2s, the photo for s2f), from pairs.csv."""
    if task not in TASK_METRICS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASK_METRICS)}")
    raw_dir = Path(raw_dir)
    pairs = {p.pair_id: p for p in read_manifest(raw_dir)}
    missing = [i for i in ids if i not in pairs]
    if missing:
        raise DataError(f"{raw_dir / 'pairs.csv'}: has no pairs {missing[:5]} of the test split; "
                        f"rerun the pipeline from fetch (dvc repro)")
    out = []
    for pid in ids:
        rel = pairs[pid].sketch if task == "f2s" else pairs[pid].photo
        path = raw_dir / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{path}: listed in {raw_dir / 'pairs.csv'} but not found; rerun fetch") from None
        rgb = read_rgb(path)  # the project's one reader: EXIF orientation applied, alpha laid on white
        out.append(Target(pid, rel, hashlib.sha256(data).hexdigest(), grey_u8(rgb) if task == "f2s" else rgb))
    return out


def read_prediction(path: Path) -> np.ndarray:
    """A saved native prediction as written: (H, W) grey or (H, W, 3) RGB uint8."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"{path}: missing or not a readable image")
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- scoring

def _psnr_mae(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    diff = pred.astype(np.float64) - target.astype(np.float64)
    mse = float(np.mean(diff ** 2))
    return (math.inf if mse == 0.0 else 10.0 * math.log10(255.0 ** 2 / mse)), float(np.mean(np.abs(diff)) / 255.0)


def score_pair(task: str, pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The protocol's per-image metrics of one native 8-bit prediction (as saved) against its target."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape; "
                         "resize the prediction to the target's native size first")
    if task == "f2s":
        psnr, mae = _psnr_mae(pred, target)
        return {"mae": mae, "psnr": psnr,
                "ssim": float(structural_similarity(pred, target, **SSIM_SETTINGS)),
                "fsim": metrics.featuresim(target, pred)[0], "scoot": metrics.scoot(target, pred)}
    psnr, mae = _psnr_mae(pred, target)
    fsim, fsimc = metrics.featuresim(target, pred)
    return {"mae": mae, "psnr": psnr,
            "ssim": float(structural_similarity(grey_u8(pred), grey_u8(target), **SSIM_SETTINGS)),
            "fsim": fsim, "fsimc": fsimc}


def rank1_hits(preds_grey: Sequence[np.ndarray], targets_grey: Sequence[np.ndarray]) -> np.ndarray:
    """Per prediction: is its own target strictly the most similar (grey SSIM, data range 255)?"""
    height, width = targets_grey[0].shape
    def fit(img):
        return img if img.shape == (height, width) else cv2.resize(img, (width, height),
                                                                   interpolation=NATIVE_INTERPOLATION)
    x = np.stack([fit(p) for p in preds_grey]).astype(np.float64)
    y = np.stack([fit(t) for t in targets_grey]).astype(np.float64)
    return metrics.rank1_matching_grey(x, y, data_range=255.0).correct


def per_image_columns(task: str, absent: dict[str, str] | None = None) -> list[str]:
    """The per-image CSV's columns: id, the metrics (less the absent ones), the identity details,
    the files scored."""
    absent = absent or {}
    shown = [m for m in TASK_METRICS[task] if m not in absent]
    with_identity = "id_rank1" in shown
    return ["id", *shown, *(["id_rank", "id_fallback"] if with_identity else []), "prediction", "target",
            "target_sha256"]


# ---------------------------------------------------------------- the optional metric groups

_GALLERIES: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}


def _gallery(targets: Sequence[Target]) -> tuple[np.ndarray, np.ndarray]:
    """The descriptors (and fallbacks) of one set of targets, kept by their hashes: every model and
    baseline of a task is scored against the same targets."""
    key = tuple(t.sha256 for t in targets)
    if key not in _GALLERIES:
        _GALLERIES.clear()  # one set at a time: a stage scores one task
        _GALLERIES[key] = identity.describe([t.image for t in targets])
    return _GALLERIES[key]


def identity_columns(natives: Sequence[np.ndarray], targets: Sequence[Target]) -> tuple[dict[str, Any], dict]:
    """(per-image identity columns, summary extras) of native predictions against all targets."""
    gallery, gallery_fallback = _gallery(targets)
    queries, fallback = identity.describe(natives)
    columns = identity.per_image(identity.identify(queries, gallery), fallback)
    return columns, {"id_fallbacks": int(fallback.sum()), "id_gallery_fallbacks": int(gallery_fallback.sum())}


def absent_metrics(task: str) -> dict[str, str]:
    """Metric -> why it is not computed here (the optional groups whose packages or weights are missing)."""
    reasons = {"identity": identity.unavailable(), "perceptual": perceptual.unavailable()}
    return {m: reasons[GROUP_OF[m]] for m in TASK_METRICS[task] if reasons.get(GROUP_OF[m])}


def score(task: str, preds: np.ndarray, ids: Sequence[str], targets: Sequence[Target],
          out_dir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Resize 8-bit predictions to native size, save them as PNGs in ``out_dir`` (replacing it
    whole), score them against the original targets: (summary, per-image table)."""
    ids = [str(i) for i in ids]
    if len(preds) != len(ids) or len(targets) != len(ids):
        raise ValueError(f"got {len(preds)} predictions, {len(ids)} ids and {len(targets)} targets")
    natives = []
    for pred, target in zip(preds, targets):
        native = to_native(np.asarray(pred), target.width, target.height)
        natives.append(grey_u8(native) if task == "f2s" else native)
    out_dir = Path(out_dir)
    with fileio.atomic_dir(out_dir) as tmp:
        for pid, native in zip(ids, natives):
            (tmp / f"{pid}.png").write_bytes(encode_image(native, "png"))
    rows = metrics.parallel_map(lambda k: {"id": ids[k], **score_pair(task, natives[k], targets[k].image)}, range(len(ids)))
    hits = rank1_hits([n if task == "f2s" else grey_u8(n) for n in natives],
                      [t.image if task == "f2s" else grey_u8(t.image) for t in targets])
    table = pd.DataFrame(rows)
    table["ssim_rank1"] = hits.astype(int)
    absent = absent_metrics(task)
    extras: dict[str, Any] = {}
    if "id_rank1" not in absent:
        columns, extras = identity_columns(natives, targets)
        for name, values in columns.items():
            table[name] = values
    if "lpips_vgg" not in absent:
        for name, values in perceptual.score_images(natives, [t.image for t in targets]).items():
            table[name] = values
    table["prediction"] = [f"{out_dir.name}/{pid}.png" for pid in ids]
    table["target"] = [t.file for t in targets]
    table["target_sha256"] = [t.sha256 for t in targets]
    table = table[per_image_columns(task, absent)]
    return {**summarize(task, table, absent), **extras}, table


def summarize(task: str, table: pd.DataFrame, absent: dict[str, str] | None = None) -> dict[str, Any]:
    """Top-level means (``dvc metrics diff`` compares these), their intervals and the protocol.

    PSNR is infinite for an exactly reproduced image and JSON has no Infinity:
    its mean and interval are over the finite values, ``psnr_infinite`` counts
    the rest (``psnr`` is null when all are infinite). A metric the table has
    no column for is left out; ``absent`` (metric -> why) is written beside the
    means so that the report can say why.
    """
    if len(table) == 0:
        raise ValueError("cannot summarise an empty per-image table")
    absent = dict(absent or {})
    out: dict[str, Any] = {}
    intervals: dict[str, list[float] | None] = {}
    for metric in TASK_METRICS[task]:
        if metric not in table.columns:
            absent.setdefault(metric, f"{metric}: not in the per-image table")
            continue
        values = table[metric].to_numpy(dtype=np.float64)
        if metric == "psnr":
            out["psnr_infinite"] = int(np.isinf(values).sum())
            values = values[np.isfinite(values)]
        elif metric == "id_auc" and np.isnan(values).all():  # one test image: no impostor to compare with
            absent.setdefault(metric, "id_auc: needs at least 2 test images (impostor pairs)")
            continue
        elif not np.isfinite(values).all():
            raise ValueError(f"per-image {metric} has NaN or infinite values")
        out[metric] = float(values.mean()) if len(values) else None
        interval = bootstrap_interval(values)
        intervals[metric] = None if interval is None else [interval[0], interval[1]]
    if "id_fallback" in table.columns:
        out["id_fallbacks"] = int(table["id_fallback"].sum())
    out["n_images"] = int(len(table))
    out["intervals"] = intervals
    if absent:
        out["absent"] = absent
    out["protocol"] = protocol(task)
    return out


# ---------------------------------------------------------------- uncertainty

def bootstrap_interval(values: Iterable[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean over the values (None for fewer than 2)."""
    values = np.asarray(list(values), np.float64)
    if len(values) < 2:
        return None
    if np.all(values == values[0]):  # no spread: every resample has the same mean
        return float(values[0]), float(values[0])
    res = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class Comparison:
    """Best versus runner-up on one metric: the paired bootstrap of their per-image differences."""

    metric: str
    best: str
    runner_up: str
    difference: float                       # mean of best - runner_up (positive: best is higher)
    interval: tuple[float, float] | None    # its bootstrap interval
    n_images: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0 on the side where the best is better."""
        if self.interval is None:
            return False
        lo, hi = self.interval
        return lo > 0 if HIGHER_IS_BETTER[self.metric] else hi < 0


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                      resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, tuple[float, float] | None, int]:
    """(mean of a - b, its paired bootstrap interval, images used); images where either is infinite
    (PSNR of an exact reproduction) are left out of both."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must cover the same images; got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    if len(diff) == 0:
        return math.nan, None, 0
    return float(diff.mean()), bootstrap_interval(diff, confidence, resamples, seed), int(len(diff))


@dataclass(frozen=True)
class SeededDifference:
    """Setting a minus setting b, each trained under the same R seeds and scored on the same N images."""

    difference: float                        # mean over every seed and image
    interval: tuple[float, float] | None     # two-level bootstrap: seeds and images resampled
    per_seed: tuple[float, ...]              # the mean difference under each training seed
    n_seeds: int
    n_images: int

    @property
    def seed_spread(self) -> float:
        """Standard deviation of the per-seed mean differences (0 with one seed)."""
        return float(np.std(self.per_seed, ddof=1)) if len(self.per_seed) > 1 else 0.0

    @property
    def significant(self) -> bool:
        return self.interval is not None and (self.interval[0] > 0 or self.interval[1] < 0)


def paired_difference_over_seeds(a, b, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                                 seed: int = SEED) -> SeededDifference:
    """a - b for (R seeds, N images) arrays, paired by seed and image, with a bootstrap interval that
    covers training noise as well as the choice of images.

    Each resample draws R seeds and N images with replacement, independently, and takes the mean
    difference over the drawn seed x image grid; the interval is the percentile interval of those
    means. With R = 1 it is the images-only paired bootstrap (training noise then is not covered).
    Images where any value is infinite (PSNR of an exact reproduction) are left out.
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape != b.shape:
        raise ValueError(f"paired values must cover the same seeds and images; got {a.shape} and {b.shape}")
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    diff = (a - b)[:, keep]
    n_seeds, n_images = diff.shape
    per_seed = tuple(float(v) for v in diff.mean(axis=1)) if n_images else ()
    if n_images == 0:
        return SeededDifference(math.nan, None, per_seed, n_seeds, 0)
    interval = None
    if n_seeds * n_images >= 2:
        rng = np.random.default_rng(seed)
        # multinomial counts: how often each seed / image is drawn in each resample
        seeds = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=resamples)
        images = rng.multinomial(n_images, np.full(n_images, 1 / n_images), size=resamples)
        means = np.einsum("bs,si,bi->b", seeds, diff, images) / (n_seeds * n_images)
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(means, [tail, 100 - tail])
        interval = (float(low), float(high))
    return SeededDifference(float(diff.mean()), interval, per_seed, n_seeds, n_images)


def compare_best(metric: str, values: dict[str, Sequence[float]]) -> Comparison | None:
    """The best model by mean (ties: the first) against the runner-up, on the same images.

    ``values``: model name -> per-image values, aligned by image. None with
    fewer than two models.
    """
    if len(values) < 2:
        return None
    means = {}
    for name, v in values.items():
        v = np.asarray(v, np.float64)
        finite = v[np.isfinite(v)]
        means[name] = finite.mean() if len(finite) else -math.inf * (1 if HIGHER_IS_BETTER[metric] else -1)
    order = sorted(means, key=lambda n: -means[n] if HIGHER_IS_BETTER[metric] else means[n])
    best, runner_up = order[0], order[1]
    diff, interval, n = paired_difference(values[best], values[runner_up])
    return Comparison(metric, best, runner_up, diff, interval, n)


def aligned_per_image(tables: dict[str, pd.DataFrame], metric: str) -> dict[str, np.ndarray]:
    """Per-image values of each model on the images all of them scored, in one order."""
    common = None
    for t in tables.values():
        ids = set(t["id"].astype(str))
        common = ids if common is None else common & ids
    order = sorted(common or ())
    return {name: t.assign(id=t["id"].astype(str)).set_index("id").loc[order, metric].to_numpy(np.float64)
            for name, t in tables.items() if metric in t.columns}
