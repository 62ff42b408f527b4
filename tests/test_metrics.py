"""Metrics on images with known answers, and against the reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import structural_similarity

from facesketch.evaluation import metrics


def pattern(h: int, w: int) -> np.ndarray:
    """A closed-form RGB test image in [0, 1] (no RNG, so reference values stay valid)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 0.5 + 0.25 * np.sin(2 * np.pi * xx / 13.0) * np.cos(2 * np.pi * yy / 9.0)
    disc = (yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (min(h, w) / 4) ** 2
    base = np.where(disc, 0.85 - 0.1 * np.cos(2 * np.pi * (xx + yy) / 21.0), base)
    return np.stack([base, base ** 1.2, 1.0 - 0.6 * base], axis=-1)


def distort(img: np.ndarray) -> np.ndarray:
    """Contrast change plus a diagonal ripple, also closed-form."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return 0.8 * img + 0.1 + 0.05 * np.sin(2 * np.pi * (3 * xx + 2 * yy) / 29.0)[..., None]


def pair_u8(h: int, w: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form 8-bit RGB pair number k: pattern(h, w) and a distortion of it that
    varies with k (ripple, contrast and per-channel gains), both rounded to uint8."""
    a = pattern(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ripple = 0.04 * (1 + k % 3) * np.sin(2 * np.pi * ((3 + k) * xx + 2 * yy) / (29.0 - k))
    gains = np.array([1.0 - 0.04 * k, 1.0, 1.0 + 0.03 * k])
    b = np.clip((0.85 * a + 0.08 + ripple[..., None]) * gains, 0, 1)
    return np.rint(a * 255).astype(np.uint8), np.rint(b * 255).astype(np.uint8)


def grey_u8(rgb: np.ndarray) -> np.ndarray:
    return np.rint(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(img, (sigma, sigma, 0))


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 1)


# ---------------------------------------------------------------- FSIM

# FeatureSIM.m (Zhang et al.) run in GNU Octave 7.3 on pattern(h, w) * 255 vs
# distort(pattern(h, w)) * 255. Covers odd sizes, non-square, the F = 2
# downsampling (even averaging kernel) and F = round(640 / 256) = 3 (MATLAB
# rounds 2.5 up; Python's round would give 2).
FEATURESIM_REFERENCE = {
    (64, 64): 0.93017346721797178,
    (33, 47): 0.9074488995378569,
    (512, 512): 0.89189444643611593,
    (640, 660): 0.90530162786212687,
}


def fsim(a: np.ndarray, b: np.ndarray) -> float:
    """FeatureSIM's FSIM of two RGB images in [0, 1], on the 0-255 scale it expects."""
    return metrics.featuresim(a * 255.0, b * 255.0)[0]


@pytest.mark.parametrize("size", list(FEATURESIM_REFERENCE))
def test_fsim_matches_featuresim_reference(size):
    a = pattern(*size)
    assert fsim(a, distort(a)) == pytest.approx(FEATURESIM_REFERENCE[size], abs=1e-10)


def test_fsim_decreases_with_noise_and_is_symmetric():
    a = pattern(64, 64)
    values = []
    for sigma in (0.02, 0.05, 0.1, 0.2):
        b = noisy(a, sigma)
        f = fsim(b, a)
        assert 0 < f < 1
        assert fsim(a, b) == f  # symmetric by construction
        values.append(f)
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)
    assert fsim(a, a) == pytest.approx(1.0, abs=1e-9)


def test_fsim_flat_images():
    flat, other_flat = np.full((32, 32, 3), 0.5), np.full((32, 32, 3), 0.7)
    assert fsim(flat, flat) == 1.0
    assert 0 < fsim(flat, pattern(32, 32)) < 1  # the reference's 0/0 PC is taken as 0
    with pytest.raises(ValueError, match="undefined"):
        fsim(flat, other_flat)


def test_fsim_refuses_tiny_images_and_mismatched_shapes():
    with pytest.raises(ValueError, match="7x7"):
        metrics.featuresim(np.zeros((5, 9, 3)), np.zeros((5, 9, 3)))
    with pytest.raises(ValueError, match=r"\(32, 32, 3\) and \(32, 30, 3\)"):
        metrics.featuresim(np.zeros((32, 32, 3)), np.zeros((32, 30, 3)))


# ---------------------------------------------------------------- FSIMc and SCOOT against the authors' code

# (h, w, k) -> (FSIM, FSIMc) of [FSIM, FSIMc] = FeatureSIM(a, b) on the 8-bit RGB pair_u8(h, w, k),
# ScootMeasure(ga, gb) and FeatureSIM(ga, gb)'s FSIM on its 8-bit grey (grey_u8), all in GNU Octave 7.3
# (image package 2.14 for fspecial). The .m files were the authors' code, comments trimmed:
# FeatureSIM.m as shipped in chaofengc/Face-Sketch-Wild (commit 1486095) and ScootMeasure.m of
# DengPingFan/Scoot (commit f50f527). Octave has no MATLAB-compatible graycomatrix/graycoprops, so
# ScootMeasure ran on loop-by-loop shims written from MATLAB's documentation (GrayLimits [0 255] for
# uint8, level floor(NumLevels * I / 255 + 1) clipped to 1..NumLevels, one count per in-image pixel
# pair at each [row col] offset; Contrast sum |i-j|^2 p, Energy sum p^2 of the normalised matrix).
# Sizes: CUHK's native 250x200, odd and non-square ones, and 520x530 (FeatureSIM's F = 2).
OCTAVE_REFERENCE = {
    (250, 200, 0): (0.95470010556432028, 0.9542020947637081, 0.71321867989994592, 0.95458987965037978),
    (250, 200, 1): (0.90086831925608779, 0.89900533843231811, 0.82676302823908365, 0.90135428298449949),
    (32, 32, 2): (0.79869285344904906, 0.79391111343661935, 0.57778403437133263, 0.79896479950028132),
    (33, 47, 3): (0.91207278081533594, 0.89687456959342027, 0.61561310854648887, 0.91139070779184761),
    (40, 48, 4): (0.86058476950867324, 0.83732471450263157, 0.62835805067934858, 0.86073229810279039),
    (61, 75, 5): (0.84480289200876113, 0.81860942077457532, 0.40436948024188513, 0.84499571753583436),
    (64, 96, 6): (0.94912192244353144, 0.91864198256974405, 0.70100856779265441, 0.94814024833605159),
    (100, 90, 7): (0.94592344881314516, 0.92260138003623959, 0.58703599566817599, 0.94535762385050393),
    (128, 128, 8): (0.95260143784795448, 0.9295074032755215, 0.32242818909928628, 0.95191690067184298),
    (250, 200, 9): (0.94332336033182485, 0.91896178108817927, 0.6401347654931584, 0.9428576516641205),
    (17, 23, 10): (0.90438366511217316, 0.88396874884998522, 0.45189288692264429, 0.90501160333029518),
    (520, 530, 11): (0.94301887086762004, 0.92073562490702521, 0.55956517117565319, 0.9433105032555289),
}


@pytest.mark.parametrize("size", list(OCTAVE_REFERENCE))
def test_fsimc_and_scoot_match_the_authors_code(size):
    a, b = pair_u8(*size)
    fsim_rgb, fsimc_rgb, scoot_grey, fsim_grey = OCTAVE_REFERENCE[size]
    got_fsim, got_fsimc = metrics.featuresim(a, b)
    assert got_fsim == pytest.approx(fsim_rgb, abs=1e-10)
    assert got_fsimc == pytest.approx(fsimc_rgb, abs=1e-10)
    ga, gb = grey_u8(a), grey_u8(b)
    assert metrics.scoot(ga, gb) == pytest.approx(scoot_grey, abs=1e-10)
    assert metrics.featuresim(ga, gb) == pytest.approx((fsim_grey, fsim_grey), abs=1e-10)  # grey: FSIMc = FSIM


def test_scoot_properties():
    a, b = (grey_u8(x) for x in pair_u8(64, 48, 2))
    assert metrics.scoot(a, a) == 1.0
    assert metrics.scoot(a, b) == metrics.scoot(b, a) and 0 < metrics.scoot(a, b) < 1
    flat = np.full_like(a, 128)
    assert 0 < metrics.scoot(a, flat) < metrics.scoot(a, b)  # ScootMeasure.m refuses a flat image; scored here
    with pytest.raises(ValueError, match="uint8"):
        metrics.scoot(a.astype(np.float64), b)
    with pytest.raises(ValueError, match="8x8"):
        metrics.scoot(a[:6, :6], b[:6, :6])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        metrics.scoot(a[..., None], b[..., None])


# ---------------------------------------------------------------- SSIM rank-1

def _targets(n: int = 5, size: int = 32) -> np.ndarray:
    """Grey 8-bit-scale images (N, size, size)."""
    return np.random.default_rng(2).random((n, size, size)) * 255.0


def test_ssim_rank1_known_answers():
    targets = _targets()
    small_noise = np.clip(targets + np.random.default_rng(3).normal(0, 5, targets.shape), 0, 255)
    assert metrics.rank1_matching_grey(small_noise, targets, 255.0).accuracy == 1.0
    assert metrics.rank1_matching_grey(np.roll(targets, 1, axis=0), targets, 255.0).accuracy == 0.0

    swapped = targets.copy()
    swapped[[3, 4]] = targets[[4, 3]]
    match = metrics.rank1_matching_grey(swapped, targets, 255.0)
    assert match.accuracy == pytest.approx(0.6)
    assert match.nearest.tolist() == [0, 1, 2, 4, 3]
    assert match.correct.tolist() == [True, True, True, False, False]
    assert match.scores.shape == (5, 5) and match.measure == "ssim"


def test_ssim_rank1_tie_with_another_target_is_not_a_hit():
    targets = _targets()
    targets[1] = targets[0]
    match = metrics.rank1_matching_grey(targets, targets, 255.0)
    assert match.nearest.tolist() == [0, 0, 2, 3, 4]  # ties go to the lowest index
    assert match.correct.tolist() == [False, False, True, True, True]


def test_ssim_rank1_scores_are_skimage_ssim():
    targets = _targets(4, 24)
    preds = np.clip(targets + np.random.default_rng(4).normal(0, 25, targets.shape), 0, 255)
    scores = metrics.rank1_matching_grey(preds, targets, 255.0).scores
    for i in range(4):
        for j in range(4):
            expected = structural_similarity(preds[i], targets[j], gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=255.0)
            assert scores[i, j] == pytest.approx(expected, abs=1e-12)


def test_ssim_rank1_checks_shapes_and_size():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        metrics.rank1_matching_grey(_targets(2), _targets(3), 255.0)
    with pytest.raises(ValueError, match="11x11"):
        metrics.rank1_matching_grey(_targets(2, 8), _targets(2, 8), 255.0)
