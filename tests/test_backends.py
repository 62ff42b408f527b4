"""Every model trains under Keras' JAX backend as under TensorFlow, with the same meaning (#24).

One process has one Keras backend, so each leg runs tests/backend_checks.py in a process
of its own (KERAS_BACKEND=jax, then tensorflow, then jax again to load TensorFlow's
predictors) and the tests read its results. The JAX leg is skipped where JAX is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

BACKENDS = ["tensorflow", "jax"]
MODELS = ["dense", "conv", "conv_bn", "vae", "unet_gan", "cycle_gan"]
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")


def _run(backend: str, mode: str, out, venv_env) -> dict:
    env = {**venv_env, "KERAS_BACKEND": backend}
    res = subprocess.run([sys.executable, str(REPO / "tests" / "backend_checks.py"), mode, str(out)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    return json.loads((out / f"{backend}-{mode}.json").read_text())


@pytest.fixture(scope="module")
def legs(tmp_path_factory):
    """Both backends' results: JAX first (it writes the GAN's start and its predictors), then
    TensorFlow (same start; loads JAX's predictors), then JAX loading TensorFlow's.

    Computed once per test session: pytest-xdist workers share the folder, the first one runs
    the legs under a lock and the others read its results."""
    import fcntl
    import os

    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "backend_legs"
    out.mkdir(exist_ok=True)
    with open(out / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / "results.json"
        if not done.exists():
            env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            results = {}
            if importlib.util.find_spec("jax") is not None:
                results["jax"] = _run("jax", "run", out, env)
            results["tensorflow"] = _run("tensorflow", "run", out, env)
            if "jax" in results:
                results["jax-load"] = _run("jax", "load", out, env)
            done.write_text(json.dumps(results))
        return out, json.loads(done.read_text())


def _leg(legs, backend):
    if backend not in legs[1]:
        pytest.skip("JAX is not installed")
    assert legs[1][backend]["backend"] == backend.split("-")[0]
    return legs[1][backend]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", MODELS)
def test_each_model_trains_with_falling_loss(legs, backend, model):
    fit = _leg(legs, backend)["fit"][model]
    assert fit["iterations"] == len(fit["losses"]) == 5
    assert all(np.isfinite(fit["losses"])) and fit["losses"][-1] < fit["losses"][0], fit


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_checkpoint_restores_both_gan_optimizers(legs, backend):
    """pix2pix after 5 steps, saved and restored as EpochCheckpoint does: every weight and both Adams'
    state come back exactly (under JAX the discriminator's Adam rides in the model's variables)."""
    for model in ("unet_gan", "cycle_gan"):  # cycle_gan: each Adam over two networks
        restored = _leg(legs, backend)["fit"][model]["restored"]
        assert restored["iterations"] == [5, 5] and restored["optimizer_variables"] > 4
        assert restored["max_difference"] == 0.0, (model, restored)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_vae_kl_warm_up_advances_every_step(legs, backend):
    """The KL weight each step's loss used: 1/4, 2/4, 3/4, then kl_weight (kl_warmup_steps 4)."""
    betas = _leg(legs, backend)["fit"]["vae"]["betas"]
    np.testing.assert_allclose(betas, [0.25, 0.5, 0.75, 1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_weight_average_matches_a_numpy_recomputation(legs, backend):
    """Under JAX the callback must read each step's weights, not the epoch's start (stateless fit)."""
    ema = _leg(legs, backend)["ema"]
    assert ema["steps"] == ema["seen"] == 9
    assert ema["max_error"] < 1e-5 and ema["lag"] > 1e-3, ema


def _ssim_float64(a, b):
    """SSIM as tf.image.ssim defines it, in float64 (SciPy's valid-mode convolution)."""
    from scipy.signal import convolve2d

    from facesketch.training.losses import _gaussian_window

    window = _gaussian_window(11, 1.5)[:, :, 0, 0].astype(np.float64)

    def blur(img):
        return np.stack([convolve2d(img[..., c], window[::-1, ::-1], mode="valid") for c in range(3)], -1)

    values = []
    for x, y in zip(np.float64(a), np.float64(b)):
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        mx, my = blur(x), blur(y)
        luminance = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
        cs = (2 * blur(x * y) - 2 * mx * my + c2) / (blur(x * x + y * y) - mx ** 2 - my ** 2 + c2)
        values.append((luminance * cs).mean(axis=(0, 1)).mean())
    return np.array(values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ssim_in_keras_ops_equals_tf_image_ssim(legs, backend):
    """Within 1e-5 of tf.image.ssim on photos. On near-flat sketches float32 cancellation in
    E[x^2] - mean^2 moves tf.image.ssim itself about 1.3e-5 from the exact value (float64), so
    there each is held to the exact value instead, and to TensorFlow's within 2e-5."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from backend_checks import ssim_pairs

    ours, tf_ssim = _leg(legs, backend)["ssim"], _leg(legs, "tensorflow")["ssim"]
    pairs = ssim_pairs()
    np.testing.assert_allclose(ours["photos"]["ops"], tf_ssim["photos"]["tf"], atol=1e-5)
    exact = _ssim_float64(*pairs["sketches"])
    np.testing.assert_allclose(ours["sketches"]["ops"], exact, atol=2e-5)
    np.testing.assert_allclose(ours["sketches"]["ops"], tf_ssim["sketches"]["tf"], atol=2e-5)
    np.testing.assert_allclose(tf_ssim["sketches"]["tf"], exact, atol=2e-5)
    assert max(tf_ssim["photos"]["tf"]) < 0.95  # the pairs differ: a real comparison


def _edge_float64(a, b):
    """The edge term in float64 with SciPy: FeatureSIM.m's Scharr kernels / 16 on the luminance, valid part."""
    from scipy.signal import correlate2d

    kx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], np.float64) / 16

    def magnitude(img):
        luma = np.float64(img) @ np.array([0.299, 0.587, 0.114])
        gx, gy = correlate2d(luma, kx, mode="valid"), correlate2d(luma, kx.T, mode="valid")
        return np.sqrt(gx ** 2 + gy ** 2 + 1e-8)

    return np.array([np.abs(magnitude(x) - magnitude(y)).mean() for x, y in zip(a, b)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_edge_term_equals_its_float64_reference(legs, backend):
    """The gradient-magnitude loss term (keras.ops) is the same number under both backends as
    SciPy's float64 correlation of FSIM's Scharr kernels gives."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from backend_checks import ssim_pairs

    for name, (a, b) in ssim_pairs().items():
        exact = _edge_float64(a, b)
        assert exact.min() > 0.01, name  # the pairs differ: a real comparison
        np.testing.assert_allclose(_leg(legs, backend)["edge"][name], exact, rtol=1e-4, atol=1e-6)


@needs_jax
def test_one_gan_step_has_the_same_gradients_and_losses_under_both_backends(legs):
    """pix2pix from identical weights and batch, both players on SGD(1): the weight changes are
    the gradients of the stateless JAX step and of TensorFlow's two tapes."""
    out, results = legs
    jax_logs, tf_logs = _leg(legs, "jax")["gan_step"], _leg(legs, "tensorflow")["gan_step"]
    assert set(jax_logs) == set(tf_logs) == {"loss", "g_gan_loss", "g_l1_loss", "d_loss"}
    for key in tf_logs:
        assert jax_logs[key] == pytest.approx(tf_logs[key], rel=1e-5), key
    with np.load(out / "jax-gan_grads.npz") as j, np.load(out / "tensorflow-gan_grads.npz") as t:
        assert len(j.files) == len(t.files) == 40
        for k in t.files:
            assert np.abs(t[k]).max() > 0, k  # every variable gets a gradient
            np.testing.assert_allclose(j[k], t[k], rtol=1e-4, atol=5e-5 * np.abs(t[k]).max(), err_msg=k)


@needs_jax
@pytest.mark.parametrize(("saved", "loaded"), [("jax", "tensorflow"), ("tensorflow", "jax-load")])
def test_a_predictor_saved_under_one_backend_predicts_the_same_under_the_other(legs, saved, loaded):
    result = _leg(legs, loaded)["loaded"]
    assert result["from"] == saved
    assert set(result["max_difference"]) == {"conv_bn", "vae", "unet_gan"}
    assert max(result["max_difference"].values()) < 1e-4, result
