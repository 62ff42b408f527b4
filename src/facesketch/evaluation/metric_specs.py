"""The benchmark's metrics as a table of specs: names, units, formats, which way is better.

Light on purpose: no SciPy, scikit-image or dlib here, so the web page and the report format
metrics without importing what computes them (``facesketch.evaluation.protocol`` and
``facesketch.evaluation.metrics`` compute; this module only describes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the benchmark protocol: everything evaluate, benchmark and the report need to know.

    ``key`` names it in metrics/<model>-<task>.json and the per-image CSVs;
    ``tasks`` are the tasks it is scored on; ``computed_on`` and ``data_range``
    say what it is computed on (f2s / s2f) at a glance; ``definition`` is the
    full definition where the protocol's own settings do not already give it.
    """

    key: str
    name: str
    higher_is_better: bool
    digits: int             # decimals shown (percentage points for a percent metric)
    tasks: tuple[str, ...] = ("f2s", "s2f")
    computed_on: str = ""
    data_range: str = ""
    unit: str = ""
    percent: bool = False   # stored as a share in [0, 1], shown as %
    definition: str = ""
    group: str = "image"    # the report's column group (GROUPS)

    @property
    def label(self) -> str:
        """The table header: name and unit."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def title(self) -> str:
        """The label with the better direction."""
        return f"{self.label} {'↑' if self.higher_is_better else '↓'}"

    def fmt(self, v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v * 100:.{self.digits}f}%" if self.percent else f"{v:.{self.digits}f}"

    def fmt_delta(self, d: float | None) -> str:
        if d is None:
            return ""
        return f"{d * 100:+.{self.digits}f}" if self.percent else f"{d:+.{self.digits}f}"


_BOTH = MetricSpec.tasks  # the default: every task
BENCHMARK_METRICS = (  # in the order tables show them
    MetricSpec("mae", "MAE", False, 4, _BOTH, "8-bit grey / RGB, all 3 channels", "8-bit difference / 255"),
    MetricSpec("psnr", "PSNR", True, 2, _BOTH, "8-bit grey / RGB, MSE over all 3 channels", "data range 255",
               unit="dB"),
    MetricSpec("ssim", "SSIM", True, 4, _BOTH, "8-bit grey (BT.601, rounded), skimage, sigma 1.5",
               "data range 255"),
    MetricSpec("fsim", "FSIM", True, 4, _BOTH, "8-bit grey / FeatureSIM.m's Y of RGB", "0-255", definition=(
        'Zhang, Zhang, Mou & Zhang, "FSIM: A Feature Similarity Index for Image Quality Assessment", '
        "IEEE TIP 20(8), 2011, following the authors' FeatureSIM.m (the grey FSIM, not FSIMc): luminance "
        "Y = 0.299 R + 0.587 G + 0.114 B on the 0-255 scale; automatic downsampling by "
        "F = max(1, round(min(H, W) / 256)) (F x F mean filter, zero padded as MATLAB's conv2 'same', then "
        "every F-th pixel); phase congruency by Kovesi's phasecong2 (log-Gabor filters, 4 scales, "
        "4 orientations, minimum wavelength 6, mult 2, sigmaOnf 0.55, dThetaOnSigma 1.2, noise threshold "
        "k = 2.0 with the /1.7 PC_2 rescaling, epsilon 1e-4); gradient magnitude by the Scharr operator "
        "[3 0 -3; 10 0 -10; 3 0 -3] / 16 (zero padded); T1 = 0.85, T2 = 160; pooling weighted by "
        "max(PC1, PC2).")),
    MetricSpec("fsimc", "FSIMc", True, 4, ("s2f",), "s2f only: RGB (Y, I, Q)", "0-255", definition=(
        "The colour FSIM of the same paper and FeatureSIM.m: FSIM's similarity times "
        "real((S_I * S_Q) ** 0.03) on the YIQ chroma I = 0.596 R - 0.274 G - 0.322 B, "
        "Q = 0.211 R - 0.523 G + 0.312 B (0-255, downsampled like Y), S_I, S_Q with T3 = T4 = 200; "
        "equal to FSIM for grey.")),
    MetricSpec("scoot", "SCOOT", True, 4, ("f2s",), "f2s only: 8-bit grey, ScootMeasure.m", "uint8 (6 levels)",
               definition=(
        'Fan et al., "Scoot: A Perceptual Metric for Facial Sketches", ICCV 2019, following the authors\' '
        "ScootMeasure.m on 8-bit grey images: 4 x 4 blocks; per block the 6-level grey-level co-occurrence "
        "counts (MATLAB graycomatrix quantisation floor(6 I / 255 + 1), offsets (0, 1), (-1, 1), (-1, 0), "
        "(-1, -1), counted with skimage's graycomatrix), averaged over the four and rounded; contrast and "
        'energy (skimage\'s graycoprops "contrast" and "ASM"); SCOOT = 1 / (1 + L2 distance of the 32 '
        "numbers of each image).")),
    MetricSpec("ssim_rank1", "SSIM rank-1", True, 1, _BOTH, "grey SSIM against all test targets, native size",
               "data range 255", percent=True),
    # identity: dlib's face-recognition descriptor (evaluation/identity.py); absent without the extra
    MetricSpec("id_rank1", "ID rank-1", True, 1, _BOTH, "dlib ResNet descriptor, gallery: all real test targets",
               "8-bit RGB (grey replicated)", percent=True, group="identity"),
    MetricSpec("id_rank5", "ID rank-5", True, 1, _BOTH, "dlib ResNet descriptor, gallery: all real test targets",
               "8-bit RGB (grey replicated)", percent=True, group="identity"),
    MetricSpec("id_verified", "ID verified (d < 0.6)", True, 1, _BOTH,
               "share of genuine pairs under dlib's 0.6 distance", "Euclidean, 128-d descriptor", percent=True,
               group="identity"),
    MetricSpec("id_auc", "ID ROC AUC", True, 3, _BOTH, "genuine vs impostor descriptor distances",
               "0.5 = chance, 1 = perfect", group="identity"),
    MetricSpec("id_distance", "ID distance", False, 3, _BOTH, "genuine descriptor distance (output vs own target)",
               "Euclidean, 128-d descriptor", group="identity"),
    # perceptual: LPIPS v0.1 and DISTS with the ImageNet backbones (evaluation/perceptual.py); absent without weights
    MetricSpec("lpips_vgg", "LPIPS-VGG", False, 4, _BOTH, "RGB in [-1, 1], native size (lpips v0.1, VGG16)",
               "lower is more similar", group="perceptual"),
    MetricSpec("lpips_alex", "LPIPS-Alex", False, 4, _BOTH, "RGB in [-1, 1], native size (lpips v0.1, AlexNet)",
               "lower is more similar", group="perceptual"),
    MetricSpec("dists", "DISTS", False, 4, _BOTH, "RGB in [0, 1], native size (DISTS_pytorch, VGG16)",
               "lower is more similar", group="perceptual"),
)
METRIC_SPECS = {m.key: m for m in BENCHMARK_METRICS}

# The report's column groups, in order: (title, what the numbers mean).
GROUPS = {
    "image": ("Pixels and structure",
              ("MAE, PSNR, SSIM, FSIM(c) and SCOOT compare each output with its own target image; SSIM "
               "rank-1 asks whether that target is the most SSIM-similar of all test targets.")),
    "identity": ("Identity (dlib face recognition)",
                 ("Does the output still look like that person to a face-recognition network? dlib's ResNet "
                  "descriptor of each output is matched against the descriptors of all real test targets: "
                  "rank-1/rank-5 identification, the share of genuine pairs dlib would call the same person "
                  "(distance under 0.6), the ROC AUC of genuine vs impostor distances (0.5 is chance) and the "
                  "mean genuine distance. A blurred, average face sits near everyone (verified high, distance "
                  "low, AUC near 0.5): read verified and distance beside the rank and the AUC.")),
    "perceptual": ("Perceptual (LPIPS, DISTS)",
                   ("Distances in the feature space of an ImageNet network, as the field reports them "
                    "(LPIPS v0.1, DISTS); lower is more similar.")),
}

# Older metrics files name SSIM rank-1 "rank1" (the benchmark protocol until #26) or "accuracy"
# (the scoring before the protocol).
LEGACY_KEYS = {"ssim_rank1": ("rank1", "accuracy")}


def task_metrics(task: str) -> tuple[str, ...]:
    """The keys of the benchmark metrics scored on ``task``, in table order."""
    return tuple(m.key for m in BENCHMARK_METRICS if task in m.tasks)


def with_legacy_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (a metrics file's top level) with today's names for values older files name
    otherwise; a value under today's name wins. Intervals are renamed the same way."""
    out = dict(values)
    for key, old_keys in LEGACY_KEYS.items():
        for old in old_keys:
            if key not in out and old in out:
                out[key] = out.pop(old)
        intervals = out.get("intervals")
        if isinstance(intervals, dict):
            intervals = dict(intervals)
            for old in old_keys:
                if key not in intervals and old in intervals:
                    intervals[key] = intervals.pop(old)
            out["intervals"] = intervals
    return out
