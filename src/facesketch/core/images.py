"""Image files and pixels: one reader for the pipeline (preprocess) and
``facesketch predict``, and one grey conversion (:func:`luma`) for every module.

Every image becomes H x W x 3 uint8 RGB by the same rules, so a file gives the
same pixels whether the pipeline trains on it or a user predicts from it:

- grey is replicated to three channels; 16-bit (and float) images are scaled to 8 bits;
- transparent pixels of an RGBA image are laid on white (paper): a transparent
  pixel's stored colour is arbitrary (often black), white is what viewers show;
- a JPEG's EXIF orientation is applied, so the image is upright as viewers show it.

Errors are DataErrors naming the file. No TensorFlow here: OpenCV only.
"""

from __future__ import annotations

import errno

from pathlib import Path

import cv2
import numpy as np

from facesketch.core.errors import DataError
from facesketch.core.backend import _quiet_fd2 as quiet_fd2  # decoders' C-level warnings (FACESKETCH_TF_VERBOSE=1 shows them)

_JPEG_MAGIC = b"\xff\xd8\xff"

#: ITU-R BT.601 luma weights of R, G, B: the grey of every grey image the project computes
LUMA = (0.299, 0.587, 0.114)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B of (..., 3) images, on the input's scale, unrounded.

    Python-float weights: a float32 input stays float32, integers give float64.
    """
    return rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]


def on_white(bgra: np.ndarray) -> np.ndarray:
    """A uint8 BGRA image's colour laid on white by its alpha: BGR uint8."""
    alpha = bgra[..., 3:4].astype(np.float32) / 255.0
    bgr = bgra[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(bgr), 0, 255).astype(np.uint8)


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """An 8-bit (H, W) grey or (H, W, 3) RGB image as PNG or JPEG (``quality``) bytes: the project's
    one image encoder (grids, the report, the protocol's files, predict and the web page)."""
    if fmt not in ("png", "jpg"):
        raise ValueError(f"image format {fmt!r} is not valid; expected png or jpg")
    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    options = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpg" else []
    ok, buf = cv2.imencode(f".{fmt}", pixels, options)
    if not ok:
        raise DataError(f"could not encode an image of shape {image.shape} as {fmt}")
    return buf.tobytes()


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """The project's one resize rule, for training data and pictures alike: OpenCV's INTER_AREA when
    either side shrinks (it averages, so no aliasing), INTER_CUBIC when both grow; unchanged at the
    same size. (The benchmark protocol's own bicubic resize to the targets' size is a fixed part of
    the protocol, not this rule.)"""
    if img.shape[1] == width and img.shape[0] == height:
        return img
    shrink = img.shape[1] > width or img.shape[0] > height
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB (see the module doc); a DataError naming the file if it is not one."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image") from None
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(f"{path}: broken symbolic link (points to {path.readlink()}, which does not exist)") from None
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{path}: symbolic link loop (it leads back to itself via {path.readlink()}); "
                            f"point it at an image") from None
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise DataError(f"{path}: empty file, not an image")
    unreadable = DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    if head == _JPEG_MAGIC:  # JPEG: no alpha; IMREAD_COLOR applies the EXIF orientation
        with quiet_fd2():  # libjpeg's "Premature end of JPEG file" names no file; our error does
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise unreadable
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    with quiet_fd2():
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise unreadable
    if img.dtype != np.uint8:  # 16-bit PNGs and the like: scale to 8 bits
        if np.issubdtype(img.dtype, np.floating):
            img = np.clip(np.nan_to_num(img) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        else:
            img = cv2.convertScaleAbs(img, alpha=255.0 / max(1, np.iinfo(img.dtype).max))
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.shape[2] != 4:
        raise DataError(f"{path}: {img.shape[2]}-channel image not supported (expected grey, RGB or RGBA)")
    return cv2.cvtColor(on_white(img), cv2.COLOR_BGR2RGB)


def upscale_warning(name: str, shape: tuple[int, ...], size: int) -> str | None:
    """A warning when a picture is far smaller than the model's ``size`` x ``size`` input (its shorter
    side under half of it): it is scaled up that much, and the output shows little of it."""
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) * 2 >= size:
        return None
    return (f"{name}: only {w}x{h} px, scaled up {size / min(h, w):.0f}x to the model's {size}x{size} input; "
            f"the result shows little of it (use a picture of at least {size // 2} px a side)")
