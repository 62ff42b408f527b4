"""Reconstruction losses and learning-rate schedules shared by the models.

``reconstruction(name, ssim_weight, edge_weight, space)``: per image, the mean of the
pixel loss (mae, mse or bce; with ``space`` "lab" measured between the two images' CIELAB
values / 100 instead of their RGB values: ``lab``, D65, as scikit-image's ``rgb2lab``) plus ``ssim_weight * (1 - SSIM)``, SSIM with Wang
et al.'s Gaussian 11x11 window (sigma 1.5) on the [0, 1] range, averaged over
the RGB channels (``tf.image.ssim`` under TensorFlow; ``ssim``, the same formula
in ``keras.ops``, under other backends), plus ``edge_weight`` times the mean
absolute difference of the two images' gradient magnitudes (``edge_difference``:
FSIM's own Scharr operator on the luminance, so the term aims at FSIM's
gradient-magnitude part). The benchmark scores SSIM and FSIM, which reward local
structure; an L1 loss alone rewards the per-pixel median and blurs. With both
weights 0 the study's plain Keras losses are used.
"""

from __future__ import annotations

import functools
import math


def reconstruction(name: str, ssim_weight: float = 0.0, edge_weight: float = 0.0, space: str = "rgb"):
    """A Keras loss function ``f(y_true, y_pred) -> per-image loss`` (no reduction over the batch)."""
    import keras
    from keras import ops

    base = {"mae": keras.losses.mean_absolute_error, "mse": keras.losses.mean_squared_error,
            "bce": keras.losses.binary_crossentropy}[name]
    if space not in SPACES:
        raise ValueError(f"loss_space={space!r} is not valid; expected one of: {', '.join(SPACES)}")
    if space == "lab" and name == "bce":
        raise ValueError("loss_space=lab needs loss mae or mse (binary cross-entropy needs values in [0, 1])")

    def loss(y_true, y_pred):
        if space == "lab":  # L/100 in [0, 1], a/100 and b/100 within about [-1, 1]
            per_image = ops.mean(base(lab(y_true) / 100.0, lab(y_pred) / 100.0), axis=(1, 2))
        else:
            per_image = ops.mean(base(y_true, y_pred), axis=(1, 2))
        if ssim_weight:
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                ssim_value = tf.image.ssim(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"), max_val=1.0,
                                           filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03)
            else:
                ssim_value = ssim(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"))
            per_image = per_image + ssim_weight * (1.0 - ssim_value)
        if edge_weight:
            per_image = per_image + edge_weight * edge_difference(ops.cast(y_true, "float32"),
                                                                  ops.cast(y_pred, "float32"))
        return per_image

    loss.__name__ = name + ("_in_lab" if space == "lab" else "") \
        + (f"_plus_{ssim_weight:g}_ssim" if ssim_weight else "") + (f"_plus_{edge_weight:g}_edge" if edge_weight else "")
    return loss


SPACES = ("rgb", "lab")  # where the pixel loss is measured (params.yaml loss_space)
# sRGB -> XYZ (D65) and the D65 white point (2 degree observer): scikit-image's rgb2lab constants
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_D65 = (0.95047, 1.0, 1.08883)


def lab(images):
    """CIELAB of float sRGB images in [0, 1], (N, H, W, 3) -> (L in [0, 100], a, b), differentiable in
    ``keras.ops``. Each branch's input is kept in its own domain (the power and cube root never see
    a value where their gradient is infinite or undefined), so the gradient is finite everywhere."""
    import numpy as np
    from keras import ops

    rgb = ops.cast(images, "float32")
    linear = ops.where(rgb > 0.04045, ops.power((ops.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4), rgb / 12.92)
    matrix = np.asarray(_XYZ_FROM_RGB, np.float32).T / np.asarray(_D65, np.float32)[None, :]
    xyz = ops.matmul(linear, ops.convert_to_tensor(matrix))  # XYZ / the white point
    f = ops.where(xyz > 0.008856, ops.power(ops.maximum(xyz, 0.008856), 1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return ops.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


# FSIM's gradient operator (Zhang et al. 2011, FeatureSIM.m): Scharr's kernels divided by 16
_SCHARR_X = [[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]]
_LUMA = (0.299, 0.587, 0.114)  # FSIM's Y channel (FeatureSIM.m's YIQ transform)


def gradient_magnitude(images):
    """Per pixel, the Scharr gradient magnitude of the images' luminance, on interior pixels only
    (``valid``: no made-up border). ``images``: float RGB batch (N, H, W, 3) -> (N, H-2, W-2)."""
    import numpy as np
    from keras import ops

    kx = np.asarray(_SCHARR_X, np.float32) / 16.0
    kernel = ops.convert_to_tensor(np.stack([kx, kx.T], axis=-1)[:, :, None, :])  # (3, 3, 1, 2): d/dx, d/dy
    luma = ops.sum(images * ops.convert_to_tensor(np.asarray(_LUMA, np.float32)), axis=-1, keepdims=True)
    grads = ops.conv(luma, kernel, strides=1, padding="valid")
    # the small constant keeps the square root's gradient finite where the image is flat
    return ops.sqrt(ops.sum(ops.square(grads), axis=-1) + 1e-8)


def edge_difference(a, b):
    """Per image, the mean absolute difference of ``a``'s and ``b``'s gradient magnitudes (on [0, 1] images)."""
    from keras import ops

    return ops.mean(ops.abs(gradient_magnitude(a) - gradient_magnitude(b)), axis=(1, 2))


def _gaussian_window(size: int, sigma: float):
    """``tf.image.ssim``'s window: a normalised 2-D Gaussian, as a depthwise kernel for 3 channels."""
    import numpy as np

    g = -0.5 * np.square(np.arange(size) - (size - 1) / 2.0) / sigma ** 2
    g = np.exp(g[:, None] + g[None, :])
    g = (g / g.sum()).astype("float32")
    return np.repeat(g[:, :, None, None], 3, axis=2)


def ssim(a, b, max_val: float = 1.0, size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03):
    """Per-image SSIM of two float RGB batches in ``keras.ops``: ``tf.image.ssim``'s formula (Gaussian
    window applied without padding, luminance x contrast-structure averaged over positions, then channels)."""
    from keras import ops

    window = ops.convert_to_tensor(_gaussian_window(size, sigma))

    def blur(x):
        return ops.depthwise_conv(x, window, strides=1, padding="valid")

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mean_a, mean_b = blur(a), blur(b)
    num0 = mean_a * mean_b * 2.0
    den0 = ops.square(mean_a) + ops.square(mean_b)
    luminance = (num0 + c1) / (den0 + c1)
    num1 = blur(a * b) * 2.0
    den1 = blur(ops.square(a) + ops.square(b))
    cs = (num1 - num0 + c2) / (den1 - den0 + c2)
    return ops.mean(ops.mean(luminance * cs, axis=(1, 2)), axis=-1)


def learning_rate(initial: float, schedule: str, total_steps: int):
    """The optimizer's ``learning_rate``: a float for ``constant``, else a Keras schedule over ``total_steps``."""
    import keras

    if schedule == "constant" or total_steps < 2:
        return initial
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(initial, decay_steps=total_steps)
    return HoldThenLinear(initial, hold_steps=total_steps // 2, decay_steps=total_steps - total_steps // 2)


@functools.cache  # one class, registered once with Keras' serialisation
def _hold_then_linear_class():
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="facesketch")
    class HoldThenLinear(keras.optimizers.schedules.LearningRateSchedule):
        """pix2pix's schedule: ``initial`` for ``hold_steps``, then linearly to 0 over ``decay_steps``."""

        def __init__(self, initial: float, hold_steps: int, decay_steps: int):
            self.initial, self.hold_steps, self.decay_steps = float(initial), int(hold_steps), max(1, int(decay_steps))

        def __call__(self, step):
            step = ops.cast(step, "float32")
            left = 1.0 - ops.maximum(0.0, step - self.hold_steps) / float(self.decay_steps)
            return self.initial * ops.clip(left, 0.0, 1.0)

        def get_config(self):
            return {"initial": self.initial, "hold_steps": self.hold_steps, "decay_steps": self.decay_steps}

    return HoldThenLinear


def HoldThenLinear(initial: float, hold_steps: int, decay_steps: int):  # noqa: N802 - a class, built lazily
    return _hold_then_linear_class()(initial, hold_steps, decay_steps)


def steps_per_epoch(n_train: int, batch_size: int, replicas: int = 1) -> int:
    """Optimizer steps in one epoch (``make_dataset``: a partial last batch is dropped under replicas)."""
    if replicas > 1:
        batch = max(replicas, min(batch_size, n_train) // replicas * replicas)
        return max(1, n_train // batch)
    return math.ceil(n_train / batch_size)
