"""Image-quality and recognition metrics for generated sketches and photos.

Inputs are float images in [0, 1] (data range 1.0): one image is (H, W, 3) RGB,
a batch is (N, H, W, 3). Everything is computed in float64, whatever the input
dtype, so float32 model outputs score exactly as their float64 copies would.
Integer images (e.g. uint8 0-255) are refused rather than silently mis-scaled.

Settings, metric by metric:

MAE
    Mean absolute error over all pixels and all 3 channels, on the [0, 1]
    scale (multiply by 255 for the 8-bit scale some papers report).
PSNR
    10 * log10(data_range**2 / MSE), MSE over all pixels and all 3 channels,
    data_range 1.0. Identical images give ``math.inf``.
SSIM
    Wang, Bovik, Sheikh & Simoncelli (2004) settings through
    ``skimage.metrics.structural_similarity``: Gaussian-weighted 11x11 window
    (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, population
    covariance, data_range 1.0, mean of the SSIM map over the pixels whose
    window lies inside the image (a 5-pixel border is left out, like the
    reference's 'valid' filtering). Colour: computed per RGB channel and
    averaged (for grey sketches stored as 3 equal channels this equals grey
    SSIM). No automatic downsampling: Wang's ssim.m downsamples by
    round(min(H, W) / 256), which is 1 (none) for images up to 383 px.
    Images smaller than the 11x11 window are refused.
FSIM
    Zhang, Zhang, Mou & Zhang, "FSIM: A Feature Similarity Index for Image
    Quality Assessment", IEEE TIP 20(8), 2011, following the authors'
    FeatureSIM.m (the grey FSIM, not FSIMc): luminance
    Y = 0.299 R + 0.587 G + 0.114 B on the 0-255 scale; automatic downsampling
    by F = max(1, round(min(H, W) / 256)) (F x F mean filter, zero padded as
    MATLAB's conv2 'same', then every F-th pixel); phase congruency by Kovesi's
    phasecong2 (log-Gabor filters, 4 scales, 4 orientations, minimum
    wavelength 6, mult 2, sigmaOnf 0.55, dThetaOnSigma 1.2, noise threshold
    k = 2.0 with the /1.7 PC_2 rescaling, epsilon 1e-4); gradient magnitude by
    the Scharr operator [3 0 -3; 10 0 -10; 3 0 -3] / 16 (zero padded);
    T1 = 0.85, T2 = 160; pooling weighted by max(PC1, PC2).
Rank-1 accuracy
    For each generated image i, the nearest real target among all N test
    targets; the score is the share of i whose nearest target is target i.
    Measures: "ssim" (default): the SSIM above on BT.601 greyscale
    (Y = 0.299 R + 0.587 G + 0.114 B, range [0, 1]), highest wins; "l2":
    Euclidean distance over all pixels and channels, smallest wins.
Summary
    Means of the per-image values; PSNR's mean is over the finite values only,
    with the count of infinite ones (identical images) beside it, so the
    summary is always valid JSON.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage, signal
from scipy.spatial.distance import cdist
from skimage.metrics import structural_similarity

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

_SCHARR_X = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.float64) / 16
_SCHARR_Y = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]], dtype=np.float64) / 16
_LUMA = np.array([0.299, 0.587, 0.114])

MEASURES = ("ssim", "l2")
COLUMNS = ("id", "mae", "psnr", "ssim", "fsim")


# ---------------------------------------------------------------- validation

def _as_images(pred, target, *, batch: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 after checking shape, dtype and finiteness."""
    pred, target = np.asarray(pred), np.asarray(target)
    expected = "(N, H, W, 3)" if batch else "(H, W, 3)"
    if pred.shape != target.shape or pred.ndim != (4 if batch else 3) or pred.shape[-1] != 3:
        raise ValueError(f"pred and target must both have shape {expected}; "
                         f"got pred {pred.shape} and target {target.shape}")
    if batch and pred.shape[0] == 0:
        raise ValueError("pred and target are empty batches (N = 0)")
    for name, a in (("pred", pred), ("target", target)):
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name} must be float images in [0, 1]; got dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    return pred.astype(np.float64), target.astype(np.float64)


def _check_min_size(shape: tuple[int, ...], minimum: int, what: str) -> None:
    h, w = shape[-3], shape[-2]
    if min(h, w) < minimum:
        raise ValueError(f"{what} needs images of at least {minimum}x{minimum} pixels; got {h}x{w} "
                         f"(image shape {tuple(shape)})")


def _parallel_map(fn, items: Sequence) -> list:
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


def _grey(images: np.ndarray) -> np.ndarray:
    """BT.601 luminance of (..., 3) images, same scale as the input."""
    return images[..., 0] * _LUMA[0] + images[..., 1] * _LUMA[1] + images[..., 2] * _LUMA[2]


# ---------------------------------------------------------------- MAE / PSNR / SSIM

def mae(pred, target) -> float:
    """Mean absolute error over all pixels and channels, on the [0, 1] scale."""
    pred, target = _as_images(pred, target, batch=False)
    return float(np.mean(np.abs(pred - target)))


def psnr(pred, target, data_range: float = 1.0) -> float:
    """10 * log10(data_range**2 / MSE), MSE over all pixels and channels.

    Returns ``math.inf`` for identical images.
    """
    pred, target = _as_images(pred, target, batch=False)
    mse = float(np.mean((pred - target) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range ** 2 / mse)


def ssim(pred, target, data_range: float = 1.0) -> float:
    """Mean SSIM with Wang et al. (2004) settings, per RGB channel then averaged.

    Gaussian window sigma 1.5 (11x11), K1 = 0.01, K2 = 0.03, population
    covariance, given data range; see the module docstring. Raises ValueError
    for images smaller than the 11x11 window.
    """
    pred, target = _as_images(pred, target, batch=False)
    _check_min_size(pred.shape, SSIM_WIN, f"SSIM's {SSIM_WIN}x{SSIM_WIN} Gaussian window")
    return float(structural_similarity(pred, target, channel_axis=-1, gaussian_weights=True, sigma=SSIM_SIGMA,
                                       use_sample_covariance=False, data_range=data_range))


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

    return np.stack(_parallel_map(row, range(len(x))))


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


def _fsim_luminance(image: np.ndarray) -> np.ndarray:
    """FeatureSIM.m's Y on the 0-255 scale, after its automatic downsampling."""
    y = _grey(image * 255.0)
    rows, cols = y.shape
    f = max(1, _matlab_round(min(rows, cols) / 256))
    if f > 1:
        y = _conv2_same(y, np.full((f, f), 1.0 / (f * f)))[::f, ::f]
    return y


def _gradient_magnitude(y: np.ndarray) -> np.ndarray:
    return np.sqrt(_conv2_same(y, _SCHARR_X) ** 2 + _conv2_same(y, _SCHARR_Y) ** 2)


def fsim(pred, target) -> float:
    """FSIM (grey) of Zhang et al., IEEE TIP 2011, as the authors' FeatureSIM.m.

    RGB in [0, 1] -> luminance 0.299 R + 0.587 G + 0.114 B on the 0-255 scale;
    downsampling by F = max(1, round(min(H, W) / 256)); phase congruency by
    Kovesi's phasecong2 (4 scales, 4 orientations, minimum wavelength 6,
    mult 2, sigmaOnf 0.55, dThetaOnSigma 1.2, k 2.0, epsilon 1e-4); Scharr
    gradient magnitude; T1 = 0.85, T2 = 160;
    FSIM = sum(S_PC * S_G * PC_m) / sum(PC_m) with PC_m = max(PC1, PC2).
    Symmetric in its arguments; FSIM(x, x) = 1.

    Raises ValueError for images under 7x7, and when neither image has any
    phase congruency (both flat), where FSIM is undefined (0/0) unless the
    two are identical (then 1.0).
    """
    pred, target = _as_images(pred, target, batch=False)
    _check_min_size(pred.shape, FSIM_MIN_SIZE, "FSIM")
    y1, y2 = _fsim_luminance(pred), _fsim_luminance(target)
    pc1, pc2 = phase_congruency(np.stack([y1, y2]))
    g1, g2 = _gradient_magnitude(y1), _gradient_magnitude(y2)
    s_pc = (2 * pc1 * pc2 + FSIM_T1) / (pc1 ** 2 + pc2 ** 2 + FSIM_T1)
    s_g = (2 * g1 * g2 + FSIM_T2) / (g1 ** 2 + g2 ** 2 + FSIM_T2)
    pc_m = np.maximum(pc1, pc2)
    weight = pc_m.sum()
    if weight == 0.0:
        if np.array_equal(y1, y2):
            return 1.0
        raise ValueError("FSIM is undefined: neither image has any phase congruency (both are flat)")
    return float(np.sum(s_g * s_pc * pc_m) / weight)


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


def rank1_matching(preds, targets, measure: str = "ssim") -> Rank1Match:
    """Match each generated image against ALL targets; see ``Rank1Match``.

    measure="ssim" (default, as face-sketch recognition is usually scored):
    mean SSIM (Wang et al. settings, as ``ssim``) between BT.601 greyscale
    images, highest wins. measure="l2": Euclidean distance over all pixels
    and RGB channels on the [0, 1] scale, smallest wins. Exact, no
    downscaling: SSIM costs one Gaussian filter per pair (N = 100 at 256x256
    is 10,000 filters), L2 is one vectorised distance matrix.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}; got {measure!r}")
    preds, targets = _as_images(preds, targets, batch=True)
    n = len(preds)
    if measure == "ssim":
        _check_min_size(preds.shape, SSIM_WIN, f"SSIM's {SSIM_WIN}x{SSIM_WIN} Gaussian window")
        scores = _ssim_matrix(_grey(preds), _grey(targets))
        nearness = scores
    else:
        # cdist subtracts pixel by pixel: exact, unlike the |a|^2 + |b|^2 - 2ab expansion.
        scores = cdist(preds.reshape(n, -1), targets.reshape(n, -1), metric="euclidean")
        nearness = -scores  # negation is exact, so ties stay ties
    nearest = np.argmax(nearness, axis=1)
    rivals = nearness >= np.diag(nearness)[:, None]  # targets at least as near as the partner
    np.fill_diagonal(rivals, False)
    correct = ~rivals.any(axis=1)
    return Rank1Match(measure, scores, nearest, correct)


def rank1_accuracy(preds, targets, measure: str = "ssim") -> float:
    """Share of generated images whose nearest target (among all N) is their own.

    Default measure: SSIM on greyscale (highest wins); "l2": Euclidean
    distance over RGB pixels (smallest wins). See ``rank1_matching``.
    """
    return rank1_matching(preds, targets, measure).accuracy


# ---------------------------------------------------------------- tables

def per_image_metrics(preds, targets, ids: Sequence[str]) -> pd.DataFrame:
    """One row per image: id, mae, psnr (inf when identical), ssim, fsim."""
    preds, targets = _as_images(preds, targets, batch=True)
    ids = [str(i) for i in ids]
    if len(ids) != len(preds):
        raise ValueError(f"got {len(ids)} ids for {len(preds)} images (preds shape {preds.shape})")
    def row(k: int) -> dict:
        p, t = preds[k], targets[k]
        return {"id": ids[k], "mae": mae(p, t), "psnr": psnr(p, t), "ssim": ssim(p, t), "fsim": fsim(p, t)}

    rows = _parallel_map(row, range(len(ids)))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summarize(df: pd.DataFrame, rank1: float) -> dict:
    """Means of the per-image metrics plus rank-1 accuracy; always valid JSON.

    Keys: mae, psnr, ssim, fsim, accuracy, n_images, psnr_infinite.
    PSNR is infinite for a perfectly reproduced image and JSON has no
    Infinity, so ``psnr`` is the mean over the finite values only and
    ``psnr_infinite`` counts the images left out; when every PSNR is
    infinite, ``psnr`` is None (JSON null).
    """
    if len(df) == 0:
        raise ValueError("cannot summarise an empty per-image table")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"per-image table lacks columns {missing}; has {list(df.columns)}")
    values = {c: df[c].to_numpy(dtype=np.float64) for c in COLUMNS[1:]}
    for c in ("mae", "ssim", "fsim"):
        if not np.isfinite(values[c]).all():
            raise ValueError(f"per-image {c} has NaN or infinite values")
    if np.isnan(values["psnr"]).any() or (values["psnr"] == -np.inf).any():
        raise ValueError("per-image psnr has NaN or -inf values")
    rank1 = float(rank1)
    if not 0.0 <= rank1 <= 1.0:
        raise ValueError(f"rank-1 accuracy must be in [0, 1]; got {rank1}")
    finite = np.isfinite(values["psnr"])
    return {
        "mae": float(values["mae"].mean()),
        "psnr": float(values["psnr"][finite].mean()) if finite.any() else None,
        "ssim": float(values["ssim"].mean()),
        "fsim": float(values["fsim"].mean()),
        "accuracy": rank1,
        "n_images": int(len(df)),
        "psnr_infinite": int((~finite).sum()),
    }
