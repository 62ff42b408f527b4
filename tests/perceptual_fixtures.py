"""Deterministic random backbones and image pairs for the LPIPS/DISTS checks (numpy only).

The reference check (benchmarks/perceptual_reference_check.py, run with PyTorch and the reference
packages) and tests/test_perceptual.py both build their weights and images here, from seeds, so the
full-size random VGG16 (59 MB) never needs committing. The linear layers and DISTS' alpha/beta are
the reference packages' real files (tests/fixtures/perceptual/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "perceptual"

# torchvision's features: (index, in, out, kernel)
VGG16_CONVS = [(0, 3, 64, 3), (2, 64, 64, 3), (5, 64, 128, 3), (7, 128, 128, 3), (10, 128, 256, 3),
               (12, 256, 256, 3), (14, 256, 256, 3), (17, 256, 512, 3), (19, 512, 512, 3), (21, 512, 512, 3),
               (24, 512, 512, 3), (26, 512, 512, 3), (28, 512, 512, 3)]
ALEXNET_CONVS = [(0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3)]


def random_backbone(net: str, seed: int) -> dict[str, np.ndarray]:
    """He-normal conv weights, small biases, float32, in torchvision's state-dict names."""
    rng = np.random.default_rng(seed)
    out = {}
    for index, cin, cout, k in (VGG16_CONVS if net == "vgg16" else ALEXNET_CONVS):
        out[f"features.{index}.weight"] = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
                                           ).astype(np.float32)
        out[f"features.{index}.bias"] = (rng.standard_normal(cout) * 0.01).astype(np.float32)
    return out


def image_pairs(n: int, height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs of 8-bit RGB images: smooth blobs and stripes, the second a distortion of the first."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    a = np.empty((n, height, width, 3), np.uint8)
    b = np.empty_like(a)
    for i in range(n):
        img = np.zeros((height, width, 3))
        for _ in range(4):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.4)
            img += rng.uniform(0, 1, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)[..., None]
        img += 0.2 * np.sin(2 * np.pi * rng.uniform(2, 8) * (xx + rng.uniform(0, 1) * yy))[..., None]
        img = (img - img.min()) / (np.ptp(img) + 1e-9)
        dist = np.clip(0.85 * img + 0.05 + rng.normal(0, 0.02 + 0.02 * (i % 4), img.shape), 0, 1)
        a[i], b[i] = np.rint(img * 255), np.rint(dist * 255)
    return a, b


# The pairs of the reference check: (n, height, width, seed). The first set is what the unit tests pin.
PAIR_SETS = [(3, 32, 40, 1), (4, 64, 48, 2), (3, 250, 200, 3)]
BACKBONE_SEEDS = {"vgg16": 16, "alexnet": 5}
