"""The image-structure metrics of the benchmark protocol, each as its authors' code computes it.

FSIM and FSIMc (``featuresim`` = FeatureSIM.m), SCOOT (``scoot`` = ScootMeasure.m) and the SSIM
matrix behind SSIM rank-1 (``rank1_matching_grey``: every output against every test target with
scikit-image's SSIM settings). All take 8-bit-scale images as the protocol reads them
(``facesketch.evaluation.protocol``); what each metric is called and how it is shown lives in
``facesketch.evaluation.metric_specs``, the full definitions in docs/metrics.md.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal
from skimage.feature import graycomatrix, graycoprops

from facesketch.core.images import LUMA

# SSIM (Wang et al. 2004) settings, shared by ssim() and the rank-1 SSIM matrix.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # skimage's fixed truncation for gaussian_weights=True
SSIM_WIN = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1  # 11
SSIM_K1, SSIM_K2 = 0.01, 0.03

# FSIM constants (FeatureSIM.m) and phasecong2 parameters.
FSIM_T1 = 0.85
FSIM_T2 = 160.0
PC_NSCALE = 4
PC_NORIENT = 4
PC_MIN_WAVELENGTH = 6.0
PC_MULT = 2.0
PC_SIGMA_ONF = 0.55
PC_DTHETA_ON_SIGMA = 1.2
PC_K = 2.0
PC_EPSILON = 1e-4
FSIM_MIN_SIZE = 7  # a guard, not part of FSIM: below this, 3x3 gradients are mostly border
FSIM_T3 = FSIM_T4 = 200.0  # FSIMc's chroma constants
FSIMC_LAMBDA = 0.03

# ScootMeasure.m: 4 x 4 blocks, 6 grey levels, MATLAB offsets [0 1; -1 1; -1 0; -1 -1] as skimage angles
# (skimage's offset for angle a is (round(sin a), round(cos a)) in (row, col)).
SCOOT_BLOCKS = 4
SCOOT_LEVELS = 6
SCOOT_ANGLES = (0.0, -np.pi / 4, -np.pi / 2, -3 * np.pi / 4)

_SCHARR_X = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.float64) / 16
_SCHARR_Y = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]], dtype=np.float64) / 16
_LUMA = np.array(LUMA)
_YIQ_I = np.array([0.596, -0.274, -0.322])
_YIQ_Q = np.array([0.211, -0.523, 0.312])



# ---------------------------------------------------------------- validation

def _check_min_size(shape: tuple[int, ...], minimum: int, what: str) -> None:
    h, w = shape[-3], shape[-2]
    if min(h, w) < minimum:
        raise ValueError(f"{what} needs images of at least {minimum}x{minimum} pixels; got {h}x{w} "
                         f"(image shape {tuple(shape)})")


def parallel_map(fn, items: Sequence) -> list:
    """fn over items on a thread per CPU, results in order.

    The heavy work (ndimage filters, FFTs, large-array numpy ops) releases the
    GIL, so threads scale; each item is computed exactly as it would be alone.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(cpus, len(items)))
    if workers == 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))



def _weighted(images: np.ndarray, w: np.ndarray) -> np.ndarray:
    """w[0] R + w[1] G + w[2] B of (..., 3) images, term by term as FeatureSIM.m writes it."""
    return images[..., 0] * w[0] + images[..., 1] * w[1] + images[..., 2] * w[2]


def _grey(images: np.ndarray) -> np.ndarray:
    """BT.601 luminance of (..., 3) images, same scale as the input."""
    return _weighted(images, _LUMA)


# ---------------------------------------------------------------- SSIM matrix (rank-1)

def _ssim_matrix(x: np.ndarray, y: np.ndarray, data_range: float = 1.0, chunk_pixels: int = 1 << 20) -> np.ndarray:
    """(N, M) mean SSIM of every grey x[i] (H, W) against every grey y[j].

    The same arithmetic as skimage's structural_similarity with the settings
    of ``ssim`` (checked against it in the tests), but each image's own means and
    variances are filtered once instead of once per pair: only the cross term
    needs one Gaussian filter per pair. Rows run in parallel threads.
    """
    filt = functools.partial(ndimage.gaussian_filter, sigma=(0, SSIM_SIGMA, SSIM_SIGMA),
                             truncate=SSIM_TRUNCATE, mode="reflect")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    pad = (SSIM_WIN - 1) // 2
    ux, uy = filt(x), filt(y)
    vx, vy = filt(x * x) - ux * ux, filt(y * y) - uy * uy
    h, w = x.shape[1:]
    step = max(1, chunk_pixels // (h * w))  # bounds each thread's memory for large test sets

    def row(i: int) -> np.ndarray:
        out = np.empty(len(y))
        for j0 in range(0, len(y), step):
            sl = slice(j0, j0 + step)
            vxy = filt(x[i] * y[sl]) - ux[i] * uy[sl]
            a1, a2 = 2 * ux[i] * uy[sl] + c1, 2 * vxy + c2
            b1, b2 = ux[i] ** 2 + uy[sl] ** 2 + c1, vx[i] + vy[sl] + c2
            s = (a1 * a2) / (b1 * b2)
            out[sl] = s[:, pad:h - pad, pad:w - pad].mean(axis=(1, 2))
        return out

    return np.stack(parallel_map(row, range(len(x))))


# ---------------------------------------------------------------- FSIM

def _matlab_round(x: float) -> int:
    """MATLAB's round for x >= 0 (halves away from zero; Python's round is banker's)."""
    return math.floor(x + 0.5)


def _conv2_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB conv2(image, kernel, 'same'): zero padding, the full result's central part.

    Sliced by hand because for even kernels MATLAB's 'same' window starts at
    floor(k/2), which scipy's 'same' does not promise.
    """
    kr, kc = kernel.shape
    full = signal.convolve2d(image, kernel, mode="full")
    return full[kr // 2:kr // 2 + image.shape[0], kc // 2:kc // 2 + image.shape[1]]


def _freq_range(n: int) -> np.ndarray:
    """phasecong2's normalised frequency axis (-0.5 .. 0.5), odd and even n as in the reference."""
    if n % 2:
        return np.arange(-(n - 1) // 2, (n - 1) // 2 + 1) / (n - 1)
    return np.arange(-n // 2, n // 2) / n


@dataclass(frozen=True)
class _PCBank:
    filters: np.ndarray      # (norient, nscale, rows, cols) log-Gabor x angular spread, DC at [0, 0]
    em_n: np.ndarray         # (norient,) sum of squared smallest-scale filter: noise normalisation
    sum_an2: np.ndarray      # (norient,) sum of squared spatial filters: expected noise energy
    sum_aiaj: np.ndarray     # (norient,) sum of cross products of spatial filters of different scales


@functools.lru_cache(maxsize=8)
def _pc_bank(rows: int, cols: int) -> _PCBank:
    """phasecong2's filters and noise constants, which depend only on the image size."""
    x, y = np.meshgrid(_freq_range(cols), _freq_range(rows))
    radius = np.sqrt(x ** 2 + y ** 2)
    # Butterworth low-pass (cutoff 0.45, order 15) built on the unshifted radius, as lowpassfilter.m.
    lp = np.fft.ifftshift(1.0 / (1.0 + (radius / 0.45) ** (2 * 15)))
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    radius = np.fft.ifftshift(radius)
    radius[0, 0] = 1.0  # avoid log(0) at DC; the filters are zeroed there below
    sintheta, costheta = np.sin(theta), np.cos(theta)

    log_gabor = []
    for s in range(PC_NSCALE):
        fo = 1.0 / (PC_MIN_WAVELENGTH * PC_MULT ** s)
        g = np.exp(-(np.log(radius / fo)) ** 2 / (2 * math.log(PC_SIGMA_ONF) ** 2)) * lp
        g[0, 0] = 0.0
        log_gabor.append(g)

    theta_sigma = math.pi / PC_NORIENT / PC_DTHETA_ON_SIGMA
    filters = np.empty((PC_NORIENT, PC_NSCALE, rows, cols))
    em_n, sum_an2, sum_aiaj = (np.empty(PC_NORIENT) for _ in range(3))
    for o in range(PC_NORIENT):
        angl = o * math.pi / PC_NORIENT
        ds = sintheta * math.cos(angl) - costheta * math.sin(angl)
        dc = costheta * math.cos(angl) + sintheta * math.sin(angl)
        spread = np.exp(-np.abs(np.arctan2(ds, dc)) ** 2 / (2 * theta_sigma ** 2))
        for s in range(PC_NSCALE):
            filters[o, s] = log_gabor[s] * spread
        spatial = np.real(np.fft.ifft2(filters[o])) * math.sqrt(rows * cols)
        em_n[o] = np.sum(filters[o, 0] ** 2)
        sum_an2[o] = np.sum(np.sum(spatial ** 2, axis=0))
        sum_aiaj[o] = sum(np.sum(spatial[i] * spatial[j])
                          for i in range(PC_NSCALE - 1) for j in range(i + 1, PC_NSCALE))
    for a in (filters, em_n, sum_an2, sum_aiaj):
        a.setflags(write=False)  # cached: shared between calls
    return _PCBank(filters, em_n, sum_an2, sum_aiaj)


def phase_congruency(images: np.ndarray) -> np.ndarray:
    """Kovesi's phasecong2 PC map of each grey image in a (K, rows, cols) stack.

    FSIM's parameters (see the module docstring). Where the reference divides
    0 by 0 (an exactly flat image has no filter response at all) the PC is
    set to 0, the value it tends to for nearly flat images, instead of NaN.
    """
    images = np.asarray(images, dtype=np.float64)
    rows, cols = images.shape[1:]
    bank = _pc_bank(rows, cols)
    image_fft = np.fft.fft2(images)[:, None]            # (K, 1, rows, cols)
    energy_all = np.zeros(images.shape)
    an_all = np.zeros(images.shape)
    for o in range(PC_NORIENT):
        eo = np.fft.ifft2(image_fft * bank.filters[o])  # (K, nscale, rows, cols)
        even, odd = eo.real, eo.imag
        an = np.abs(eo)
        sum_e, sum_o = even.sum(axis=1), odd.sum(axis=1)
        x_energy = np.sqrt(sum_e ** 2 + sum_o ** 2) + PC_EPSILON
        mean_e, mean_o = (sum_e / x_energy)[:, None], (sum_o / x_energy)[:, None]
        # An * (cos(phase deviation) - |sin(phase deviation)|), summed over scales.
        energy = np.sum(even * mean_e + odd * mean_o - np.abs(even * mean_o - odd * mean_e), axis=1)

        # Noise threshold from the median smallest-scale energy (Rayleigh model).
        median_e2n = np.median((an[:, 0] ** 2).reshape(len(images), -1), axis=1)
        noise_power = (-median_e2n / math.log(0.5)) / bank.em_n[o]
        est_noise_energy2 = 2 * noise_power * bank.sum_an2[o] + 4 * noise_power * bank.sum_aiaj[o]
        tau = np.sqrt(est_noise_energy2 / 2)
        threshold = (tau * math.sqrt(math.pi / 2) + PC_K * np.sqrt((2 - math.pi / 2) * tau ** 2)) / 1.7
        energy_all += np.maximum(energy - threshold[:, None, None], 0.0)
        an_all += an.sum(axis=1)
    return np.divide(energy_all, an_all, out=np.zeros_like(energy_all), where=an_all > 0)


def _fsim_downsample(channel: np.ndarray) -> np.ndarray:
    """FeatureSIM.m's automatic downsampling of one channel: F x F mean filter, every F-th pixel."""
    rows, cols = channel.shape
    f = max(1, _matlab_round(min(rows, cols) / 256))
    if f > 1:
        channel = _conv2_same(channel, np.full((f, f), 1.0 / (f * f)))[::f, ::f]
    return channel


def _gradient_magnitude(y: np.ndarray) -> np.ndarray:
    return np.sqrt(_conv2_same(y, _SCHARR_X) ** 2 + _conv2_same(y, _SCHARR_Y) ** 2)


def _fsim_maps(y1: np.ndarray, y2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S_PC * S_G, PC_m) of two downsampled luminance images; raises where FSIM is undefined."""
    pc1, pc2 = phase_congruency(np.stack([y1, y2]))
    g1, g2 = _gradient_magnitude(y1), _gradient_magnitude(y2)
    s_pc = (2 * pc1 * pc2 + FSIM_T1) / (pc1 ** 2 + pc2 ** 2 + FSIM_T1)
    s_g = (2 * g1 * g2 + FSIM_T2) / (g1 ** 2 + g2 ** 2 + FSIM_T2)
    pc_m = np.maximum(pc1, pc2)
    if pc_m.sum() == 0.0 and not np.array_equal(y1, y2):
        raise ValueError("FSIM is undefined: neither image has any phase congruency (both are flat)")
    return s_g * s_pc, pc_m


def _pooled(similarity: np.ndarray, pc_m: np.ndarray) -> float:
    weight = pc_m.sum()
    if weight == 0.0:  # both flat and identical (_fsim_maps refused the rest)
        return 1.0
    return float(np.sum(similarity * pc_m) / weight)


def featuresim(ref, dis) -> tuple[float, float]:
    """(FSIM, FSIMc) exactly as the authors' ``[FSIM, FSIMc] = FeatureSIM(imageRef, imageDis)``.

    Inputs on the 0-255 scale, as FeatureSIM.m expects: both (H, W) grey or
    both (H, W, 3) RGB, any real dtype (uint8 8-bit images included). Grey:
    FSIM on the values themselves, and FSIMc = FSIM (no chroma). RGB: FSIM on
    Y = 0.299 R + 0.587 G + 0.114 B (not rounded); FSIMc also compares the
    YIQ chroma I = 0.596 R - 0.274 G - 0.322 B, Q = 0.211 R - 0.523 G + 0.312 B
    (each downsampled like Y) with T3 = T4 = 200 and weight
    real((S_I * S_Q) ** 0.03) (lambda 0.03; the real part of the principal
    power where the product is negative, as MATLAB's .^ and real()).
    """
    ref, dis = np.asarray(ref), np.asarray(dis)
    if ref.shape != dis.shape or ref.ndim not in (2, 3) or (ref.ndim == 3 and ref.shape[-1] != 3):
        raise ValueError(f"FeatureSIM needs two (H, W) grey or two (H, W, 3) RGB images of one shape; "
                         f"got {ref.shape} and {dis.shape}")
    ref, dis = ref.astype(np.float64), dis.astype(np.float64)
    for name, a in (("ref", ref), ("dis", dis)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    _check_min_size(ref.shape + (1,) if ref.ndim == 2 else ref.shape, FSIM_MIN_SIZE, "FSIM")
    if ref.ndim == 2:
        score = _pooled(*_fsim_maps(_fsim_downsample(ref), _fsim_downsample(dis)))
        return score, score
    similarity, pc_m = _fsim_maps(_fsim_downsample(_grey(ref)), _fsim_downsample(_grey(dis)))
    i1, i2 = (_fsim_downsample(_weighted(a, _YIQ_I)) for a in (ref, dis))
    q1, q2 = (_fsim_downsample(_weighted(a, _YIQ_Q)) for a in (ref, dis))
    s_i = (2 * i1 * i2 + FSIM_T3) / (i1 ** 2 + i2 ** 2 + FSIM_T3)
    s_q = (2 * q1 * q2 + FSIM_T4) / (q1 ** 2 + q2 ** 2 + FSIM_T4)
    chroma = np.real(np.power((s_i * s_q).astype(np.complex128), FSIMC_LAMBDA))
    return _pooled(similarity, pc_m), _pooled(similarity * chroma, pc_m)


# ---------------------------------------------------------------- SCOOT

def _scoot_levels(image: np.ndarray) -> np.ndarray:
    """MATLAB graycomatrix's quantisation of a uint8 image (GrayLimits [0 255]) to 0-based levels.

    graycomatrix maps I to floor(slope * I + 1) with slope = NumLevels / 255,
    clipped to 1..NumLevels; here one less, as skimage counts from 0.
    """
    slope = SCOOT_LEVELS / 255.0
    return (np.clip(np.floor(slope * image.astype(np.float64) + 1.0), 1, SCOOT_LEVELS) - 1).astype(np.uint8)


def _scoot_features(levels: np.ndarray) -> np.ndarray:
    """(contrast, energy) of each of the 4 x 4 blocks, in ScootMeasure.m's order: shape (16, 2)."""
    rows, cols = levels.shape
    r_edges = [rows * v // SCOOT_BLOCKS for v in range(SCOOT_BLOCKS + 1)]
    c_edges = [cols * v // SCOOT_BLOCKS for v in range(SCOOT_BLOCKS + 1)]
    out = np.empty((SCOOT_BLOCKS * SCOOT_BLOCKS, 2))
    for i in range(SCOOT_BLOCKS):
        for j in range(SCOOT_BLOCKS):
            block = levels[r_edges[i]:r_edges[i + 1], c_edges[j]:c_edges[j + 1]]
            counts = graycomatrix(block, [1], SCOOT_ANGLES, levels=SCOOT_LEVELS)  # (L, L, 1, 4)
            # round(mean(GLCMS, 3)): MATLAB rounds halves away from zero (counts are >= 0)
            averaged = np.floor(counts.mean(axis=3, keepdims=True) + 0.5)
            out[i * SCOOT_BLOCKS + j] = (graycoprops(averaged, "contrast")[0, 0],
                                         graycoprops(averaged, "ASM")[0, 0])  # MATLAB's Energy is skimage's ASM
    return out


def scoot(sketch, synthesis) -> float:
    """SCOOT (Fan et al., 2019) of a generated sketch against the real one, as ScootMeasure.m.

    Both (H, W) uint8 grey images (the measure is defined on 8-bit grey: its
    grey levels come from uint8's 0-255 range). Each image is cut into 4 x 4
    blocks (edges floor(size * v / 4)); per block, MATLAB graycomatrix's 6-level
    co-occurrence counts for the offsets (row, col) (0, 1), (-1, 1), (-1, 0),
    (-1, -1) (skimage angles 0, -pi/4, -pi/2, -3pi/4 at distance 1, not
    symmetric), averaged over the 4 and rounded; graycoprops' contrast and
    energy (sum of squared normalised counts, skimage's "ASM") of that. The
    32 numbers of each image form a vector; SCOOT = 1 / (1 + ||v_sketch - v_synthesis||_2).
    Symmetric; 1 for identical images.

    One deviation: ScootMeasure.m refuses an image whose pixels are all
    equal ("the input is illegal"); here it is scored like any other (its
    blocks have contrast 0 and energy 1), so a model that collapses to a
    constant output still gets a (low) score instead of stopping evaluation.
    Raises ValueError for non-uint8 or non-2-D input and images under 8x8.
    """
    a, b = np.asarray(sketch), np.asarray(synthesis)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"SCOOT needs two (H, W) grey images of one shape; got {a.shape} and {b.shape}")
    for name, img in (("sketch", a), ("synthesis", b)):
        if img.dtype != np.uint8:
            raise ValueError(f"SCOOT needs 8-bit grey images (uint8); {name} has dtype {img.dtype}")
    if min(a.shape) < 2 * SCOOT_BLOCKS:
        raise ValueError(f"SCOOT needs images of at least {2 * SCOOT_BLOCKS}x{2 * SCOOT_BLOCKS} pixels "
                         f"(4 x 4 blocks of 2 x 2 or more); got {a.shape[0]}x{a.shape[1]}")
    diff = _scoot_features(_scoot_levels(a)) - _scoot_features(_scoot_levels(b))
    return float(1.0 / (1.0 + np.linalg.norm(diff.ravel())))


# ---------------------------------------------------------------- rank-1 recognition

@dataclass(frozen=True)
class Rank1Match:
    """The full rank-1 matching of generated images against real targets.

    scores[i, j]: the measure between generated image i and target j (SSIM,
    higher is nearer; or L2 distance, lower is nearer). nearest[i]: the
    nearest target of image i (ties go to the lowest index). correct[i]:
    target i is strictly nearer to image i than every other target, so a tie
    with another target never counts as a hit.
    """

    measure: str
    scores: np.ndarray
    nearest: np.ndarray
    correct: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def _match(measure: str, scores: np.ndarray, nearness: np.ndarray) -> Rank1Match:
    nearest = np.argmax(nearness, axis=1)
    rivals = nearness >= np.diag(nearness)[:, None]  # targets at least as near as the partner
    np.fill_diagonal(rivals, False)
    correct = ~rivals.any(axis=1)
    return Rank1Match(measure, scores, nearest, correct)


def rank1_matching_grey(preds, targets, data_range: float) -> Rank1Match:
    """``rank1_matching`` by SSIM of grey (N, H, W) batches on any scale (e.g. 8-bit values
    with data_range 255), the same SSIM settings; the benchmark protocol's rank-1."""
    preds, targets = np.asarray(preds, np.float64), np.asarray(targets, np.float64)
    if preds.shape != targets.shape or preds.ndim != 3 or len(preds) == 0:
        raise ValueError(f"preds and targets must both have shape (N, H, W), N > 0; "
                         f"got {preds.shape} and {targets.shape}")
    _check_min_size(preds.shape + (1,), SSIM_WIN, f"SSIM's {SSIM_WIN}x{SSIM_WIN} Gaussian window")
    scores = _ssim_matrix(preds, targets, data_range=data_range)
    return _match("ssim", scores, scores)
