"""LPIPS (v0.1, VGG16 and AlexNet) and DISTS, computed as their reference code computes them.

The references: richzhang/PerceptualSimilarity's ``lpips`` package 0.1.4 (``lpips.LPIPS(net=...,
version='0.1')`` with its v0.1 linear layers) and Keyan Ding's ``DISTS_pytorch`` 0.1
(``DISTS()`` with its alpha/beta). Here on numpy and Keras ops, the backbones (torchvision's VGG16
``features`` and AlexNet ``features``) rebuilt from their weight arrays: same layers, same padding,
same order of operations, float32 like the references. ``benchmarks/perceptual_reference_check.py``
checks this against the reference packages with identical weights; tests/test_perceptual.py pins
values they produced.

Weights
    The ImageNet backbones cannot be downloaded at run time, so nothing is: the files lie in one
    folder, ``$FACESKETCH_WEIGHTS_DIR`` (default ``~/.cache/facesketch/weights``), under the names
    of ``WEIGHTS``, which are the reference packages' own files: torchvision's
    ``vgg16-397923af.pth`` and ``alexnet-owt-7be5be79.pth`` (copy them from ``~/.cache/torch/hub/
    checkpoints`` of any machine that ran torchvision), the lpips package's ``weights/v0.1/
    vgg.pth`` and ``alex.pth`` and DISTS_pytorch's ``weights.pt``. Each file's sha256 is checked
    against ``WEIGHTS`` before it is read (for torchvision's files the hash prefix torchvision
    itself checks, which is in their names); a mismatch is refused naming the file. Any file
    missing: the metrics are absent, ``unavailable()`` says which, and no number is made up.
    The ``.pth`` files are read without PyTorch (``read_torch_file``: a pickle restricted to
    tensors and dicts); a ``.npz`` of the same arrays (torch's state-dict names) reads too.
LPIPS
    on RGB in [0, 1] (grey replicated), as ``lpips.LPIPS.forward(x, y, normalize=True)``: 2x - 1,
    the scaling layer ((x - shift) / scale, shift (-.030, -.088, -.188), scale (.458, .448, .450)),
    the backbone's 5 ReLU outputs (VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; AlexNet
    relu1..relu5), each unit-normalised over channels (eps 1e-10), squared differences, the 1x1
    linear layer, the spatial mean, summed over the 5 layers.
DISTS
    on RGB in [0, 1], as ``DISTS_pytorch.DISTS.forward``: ImageNet mean/std normalisation; VGG16
    with every max-pool replaced by L2 pooling (3x3 Hann window, stride 2, padding 1); the image
    and 5 stages' features; per channel the structure (means) and texture (variances, covariance)
    terms with c1 = c2 = 1e-6, weighted by alpha and beta (normalised by their sum);
    DISTS = 1 - the weighted sum. No resizing (the reference resizes only images over 256 px on
    their short side, and CUHK's are 200 x 250).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facesketch.core import fileio
from facesketch.core.errors import DataError

WEIGHTS_ENV = "FACESKETCH_WEIGHTS_DIR"
DEFAULT_WEIGHTS_DIR = Path("~/.cache/facesketch/weights")

# name -> (sha256 or its prefix, where the file comes from)
WEIGHTS = {
    "vgg16": ("vgg16-397923af.pth", "397923af",
              "torchvision's VGG16 (IMAGENET1K_V1); torchvision checks this sha256 prefix"),
    "alexnet": ("alexnet-owt-7be5be79.pth", "7be5be79",
                "torchvision's AlexNet (IMAGENET1K_V1); torchvision checks this sha256 prefix"),
    "lpips_vgg": ("lpips-v0.1-vgg.pth", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
                  "the lpips 0.1.4 package's weights/v0.1/vgg.pth"),
    "lpips_alex": ("lpips-v0.1-alex.pth", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
                   "the lpips 0.1.4 package's weights/v0.1/alex.pth"),
    "dists": ("DISTS-weights.pt", "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
              "the DISTS_pytorch 0.1 package's weights.pt"),
}
NEEDS = {"lpips_vgg": ("vgg16", "lpips_vgg"), "lpips_alex": ("alexnet", "lpips_alex"), "dists": ("vgg16", "dists")}

# torchvision's layer lists (``features``): ("conv", index, stride, padding) / ("relu",) / ("pool", size, stride)
VGG16_LAYERS = [("conv", 0, 1, 1), ("relu",), ("conv", 2, 1, 1), ("relu",), ("pool", 2, 2),
                ("conv", 5, 1, 1), ("relu",), ("conv", 7, 1, 1), ("relu",), ("pool", 2, 2),
                ("conv", 10, 1, 1), ("relu",), ("conv", 12, 1, 1), ("relu",), ("conv", 14, 1, 1), ("relu",),
                ("pool", 2, 2),
                ("conv", 17, 1, 1), ("relu",), ("conv", 19, 1, 1), ("relu",), ("conv", 21, 1, 1), ("relu",),
                ("pool", 2, 2),
                ("conv", 24, 1, 1), ("relu",), ("conv", 26, 1, 1), ("relu",), ("conv", 28, 1, 1), ("relu",),
                ("pool", 2, 2)]
ALEXNET_LAYERS = [("conv", 0, 4, 2), ("relu",), ("pool", 3, 2), ("conv", 3, 1, 2), ("relu",), ("pool", 3, 2),
                  ("conv", 6, 1, 1), ("relu",), ("conv", 8, 1, 1), ("relu",), ("conv", 10, 1, 1), ("relu",),
                  ("pool", 3, 2)]
# lpips' slices end after these layer positions (its pretrained_networks.vgg16 / alexnet)
LPIPS_TAPS = {"vgg16": (3, 8, 15, 22, 29), "alexnet": (1, 4, 7, 9, 11)}
DISTS_TAPS = (3, 8, 15, 22, 29)   # relu1_2 ... relu5_3, with L2 pooling for the max-pools
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
LPIPS_SHIFT = np.array([-.030, -.088, -.188], np.float32)
LPIPS_SCALE = np.array([.458, .448, .450], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
BATCH = 4


def weights_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_DIR).expanduser()


def missing(folder: Path | None = None) -> list[str]:
    """The weight files of ``WEIGHTS`` not in the folder."""
    folder = weights_dir() if folder is None else Path(folder)
    return [file for file, _, _ in WEIGHTS.values() if not (folder / file).is_file()]


def unavailable(folder: Path | None = None) -> str | None:
    """Why LPIPS and DISTS cannot be computed (None: every weight file is there)."""
    folder = weights_dir() if folder is None else Path(folder)
    gone = missing(folder)
    if not gone:
        return None
    return (f"LPIPS and DISTS not computed: {folder} (set {WEIGHTS_ENV}) lacks {', '.join(gone)}; the "
            "ImageNet backbones cannot be downloaded here: put the reference packages' own files there "
            "(docs/metrics.md says which)")


def verified(name: str, folder: Path | None = None) -> Path:
    """The path of weight file ``name`` after checking its sha256; a DataError naming it otherwise."""
    folder = weights_dir() if folder is None else Path(folder)
    file, expected, source = WEIGHTS[name]
    path = folder / file
    if not path.is_file():
        raise DataError(f"{path}: missing ({source})")
    digest = fileio.sha256_file(path)
    if not digest.startswith(expected):
        raise DataError(f"{path}: sha256 {digest} does not match the expected {expected} ({source}); "
                        "refusing to use it: replace it with the original file")
    return path


# ---------------------------------------------------------------- reading torch's files without torch

class _Storage:
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        flat = self.storage.data
        if not self.size:
            return flat[self.offset].copy()
        item = flat.itemsize
        return np.lib.stride_tricks.as_strided(flat[self.offset:], self.size,
                                               [s * item for s in self.stride]).copy()


_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "ByteStorage": np.uint8, "CharStorage": np.int8, "BoolStorage": np.bool_}


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data


class _Unpickler(pickle.Unpickler):
    """Only what a state dict holds: tensors, parameters, storages and ordered dicts."""

    def __init__(self, f, persistent):
        super().__init__(f)
        self._persistent = persistent

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weight file")

    def persistent_load(self, pid):
        return self._persistent(pid)


def _materialise(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    return obj


def read_torch_file(path: Path) -> dict[str, np.ndarray]:
    """A state dict saved by ``torch.save`` (the legacy format or the zip one) as numpy arrays."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            prefix = pkl[: -len("data.pkl")]
            storages: dict[str, _Storage] = {}

            def persistent(pid):
                _, dtype, key, _location, numel = pid
                if key not in storages:
                    s = _Storage(dtype)
                    s.data = np.frombuffer(z.read(f"{prefix}data/{key}"), s.dtype, count=int(numel))
                    storages[key] = s
                return storages[key]

            return _materialise(_Unpickler(io.BytesIO(z.read(pkl)), persistent).load())
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info: plain values, read as restricted
            _Unpickler(f, lambda pid: None).load()
        storages = {}

        def persistent(pid):
            if pid[0] != "storage":
                raise pickle.UnpicklingError(f"{path}: unexpected persistent id {pid[0]!r}")
            _, dtype, key, _location, _numel, view = pid
            if view is not None:
                raise pickle.UnpicklingError(f"{path}: storage views are not supported")
            return storages.setdefault(key, _Storage(dtype))

        obj = _Unpickler(f, persistent).load()
        for key in pickle.load(f):
            s = storages[key]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            s.data = np.frombuffer(f.read(numel * s.dtype.itemsize), s.dtype, count=numel)
        return _materialise(obj)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    try:
        return read_torch_file(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, StopIteration) as exc:
        raise DataError(f"{path}: not a readable torch weight file ({exc})") from None


# ---------------------------------------------------------------- the networks on Keras ops

def _ops():
    import keras

    return keras.ops


def _conv(x, weights, index, stride, padding):
    ops = _ops()
    w = np.transpose(weights[f"features.{index}.weight"], (2, 3, 1, 0))  # torch (out, in, kh, kw) -> keras
    if padding:
        x = ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    y = ops.conv(x, w, strides=stride, padding="valid", data_format="channels_last")
    return y + weights[f"features.{index}.bias"]


def _l2pool(x):
    """DISTS' L2pooling: sqrt(depthwise (normalised 3x3 Hann) conv of x^2, stride 2, padding 1 + 1e-12)."""
    ops = _ops()
    a = np.hanning(5)[1:-1]
    g = a[:, None] * a[None, :]
    g = (g / g.sum()).astype(np.float32)
    channels = int(x.shape[-1])
    kernel = np.repeat(g[:, :, None, None], channels, axis=2)
    y = ops.depthwise_conv(ops.pad(x * x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, strides=2,
                           padding="valid", data_format="channels_last")
    return ops.sqrt(y + 1e-12)


def backbone_features(x, weights, layers, taps, l2pool: bool = False) -> list:
    """The outputs after each layer position in ``taps`` of a torchvision ``features`` stack."""
    ops = _ops()
    out = []
    for pos, layer in enumerate(layers[: max(taps) + 1]):
        if layer[0] == "conv":
            x = _conv(x, weights, *layer[1:])
        elif layer[0] == "relu":
            x = ops.relu(x)
        elif l2pool:
            x = _l2pool(x)
        else:
            x = ops.max_pool(x, pool_size=layer[1], strides=layer[2], padding="valid", data_format="channels_last")
        if pos in taps:
            out.append(x)
    return out


def lpips_distance(x: np.ndarray, y: np.ndarray, backbone: dict, lin: dict, net: str) -> np.ndarray:
    """LPIPS v0.1 of (N, H, W, 3) float32 images in [0, 1]: (N,)."""
    ops = _ops()
    layers = VGG16_LAYERS if net == "vgg16" else ALEXNET_LAYERS
    def prep(a):
        return ((2.0 * np.asarray(a, np.float32) - 1.0) - LPIPS_SHIFT) / LPIPS_SCALE
    fx = backbone_features(prep(x), backbone, layers, LPIPS_TAPS[net])
    fy = backbone_features(prep(y), backbone, layers, LPIPS_TAPS[net])
    total = 0.0
    for k, (a, b) in enumerate(zip(fx, fy)):
        a = a / (ops.sqrt(ops.sum(a * a, axis=-1, keepdims=True)) + 1e-10)
        b = b / (ops.sqrt(ops.sum(b * b, axis=-1, keepdims=True)) + 1e-10)
        w = lin[f"lin{k}.model.1.weight"].reshape(-1)  # (1, C, 1, 1) -> (C,)
        total = total + ops.mean(ops.sum((a - b) ** 2 * w, axis=-1), axis=(1, 2))
    return np.asarray(ops.convert_to_numpy(total), np.float64)


def dists_distance(x: np.ndarray, y: np.ndarray, backbone: dict, alpha_beta: dict) -> np.ndarray:
    """DISTS of (N, H, W, 3) float32 images in [0, 1]: (N,)."""
    ops = _ops()
    def prep(a):
        return (np.asarray(a, np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    fx = [np.asarray(x, np.float32)] + backbone_features(prep(x), backbone, VGG16_LAYERS, DISTS_TAPS, l2pool=True)
    fy = [np.asarray(y, np.float32)] + backbone_features(prep(y), backbone, VGG16_LAYERS, DISTS_TAPS, l2pool=True)
    alpha, beta = alpha_beta["alpha"].reshape(-1), alpha_beta["beta"].reshape(-1)
    w_sum = alpha.sum() + beta.sum()
    splits = np.cumsum(DISTS_CHANNELS)[:-1]
    alphas, betas = np.split(alpha / w_sum, splits), np.split(beta / w_sum, splits)
    c1 = c2 = 1e-6
    dist1 = dist2 = 0.0
    for a, b, al, be in zip(fx, fy, alphas, betas):
        xm, ym = ops.mean(a, axis=(1, 2), keepdims=True), ops.mean(b, axis=(1, 2), keepdims=True)
        s1 = (2 * xm * ym + c1) / (xm ** 2 + ym ** 2 + c1)
        dist1 = dist1 + ops.sum(al * s1, axis=(1, 2, 3))
        xv = ops.mean((a - xm) ** 2, axis=(1, 2), keepdims=True)
        yv = ops.mean((b - ym) ** 2, axis=(1, 2), keepdims=True)
        cov = ops.mean(a * b, axis=(1, 2), keepdims=True) - xm * ym
        s2 = (2 * cov + c2) / (xv + yv + c2)
        dist2 = dist2 + ops.sum(be * s2, axis=(1, 2, 3))
    return np.asarray(ops.convert_to_numpy(1 - (dist1 + dist2)), np.float64)


# ---------------------------------------------------------------- the protocol's entry

def load_all(folder: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Every weight file of ``WEIGHTS``, checksum-verified, as arrays."""
    return {name: {k: np.asarray(v, np.float32) for k, v in read_weights(verified(name, folder)).items()}
            for name in WEIGHTS}


def _float_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"LPIPS/DISTS take 8-bit images here; got {image.dtype}")
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    return rgb.astype(np.float32) / 255.0


def score_images(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                 folder: Path | None = None) -> dict[str, np.ndarray]:
    """Per-image lpips_vgg, lpips_alex and dists of 8-bit predictions against their targets (one size
    per pair; pairs of one size are batched)."""
    w = load_all(folder)
    n = len(preds)
    out = {k: np.empty(n) for k in ("lpips_vgg", "lpips_alex", "dists")}
    for start in range(0, n, BATCH):
        idx = range(start, min(n, start + BATCH))
        for i in idx:  # one pair at a time where sizes differ; batches when they agree
            if preds[i].shape[:2] != targets[i].shape[:2]:
                raise ValueError(f"prediction {preds[i].shape} and target {targets[i].shape} differ in size")
        shapes = {preds[i].shape[:2] for i in idx}
        groups = [list(idx)] if len(shapes) == 1 else [[i] for i in idx]
        for g in groups:
            x = np.stack([_float_rgb(preds[i]) for i in g])
            y = np.stack([_float_rgb(targets[i]) for i in g])
            out["lpips_vgg"][g] = lpips_distance(x, y, w["vgg16"], w["lpips_vgg"], "vgg16")
            out["lpips_alex"][g] = lpips_distance(x, y, w["alexnet"], w["lpips_alex"], "alexnet")
            out["dists"][g] = dists_distance(x, y, w["vgg16"], w["dists"])
    return out


def protocol_text() -> str:
    return ("LPIPS v0.1 (lpips 0.1.4: VGG16 and AlexNet, normalize=True on RGB in [0, 1]) and DISTS "
            "(DISTS_pytorch 0.1) on the native 8-bit RGB images (grey replicated), rebuilt on Keras ops "
            f"from the reference packages' weight files in ${WEIGHTS_ENV} (sha256-checked)")
