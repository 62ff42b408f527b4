"""The benchmark protocol: native-size predictions, original targets, 8-bit metrics, bootstrap."""

from __future__ import annotations

import hashlib
import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage.metrics import structural_similarity

from facesketch.evaluation import protocol
from facesketch.core import fileio
from facesketch.data import cleaning
from facesketch.data.manifest import Pair, write_manifest
from facesketch.data.preprocess import preprocess
from facesketch.data.split import split
from facesketch.evaluation.evaluate import baselines
from test_data_cuhk import _face, _sketch
from test_metrics import pair_u8

W, H = 200, 250  # CUHK's native size


# ---------------------------------------------------------------- a workspace with a dirty test sketch

def _jpeg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(buf.tobytes())


def _dirty_sketch() -> np.ndarray:
    """A sketch as some CUHK ones are fetched: a black alignment border and a printed label."""
    m = np.float32([[1, 0, 14], [0, 1, 0]])  # aligned by shifting right: a black bar on the left
    return cv2.warpAffine(_sketch("f-039-01.jpg (298x361x16M JPEG)"), m, (W, H), borderValue=(0, 0, 0))


@pytest.fixture
def workspace(tmp_path):
    """data/raw (4 training + 3 testing pairs, JPEGs at 200x250, one test sketch dirty),
    preprocessed at 32 px with cleaning on, split by the archives (protocol cuhk)."""
    raw = tmp_path / "raw"
    pairs = []
    for k, (pid, subset) in enumerate([("f-005-01", "train"), ("f-006-01", "train"), ("m-005-01", "train"),
                                       ("m-007-01", "train"), ("f-039-01", "test"), ("f1-001-01", "test"),
                                       ("m1-002-01", "test")]):
        photo = _face(bg=(90 + 10 * k, 170 - 8 * k, 230 - 5 * k))
        sketch = _dirty_sketch() if pid == "f-039-01" else np.roll(_sketch(None), 3 * k, axis=1)
        _jpeg(raw / "photo" / f"{pid}.jpg", photo)
        _jpeg(raw / "sketch" / f"{pid.upper()}-sz1.jpg", sketch)
        pairs.append(Pair(pid, f"photo/{pid}.jpg", f"sketch/{pid.upper()}-sz1.jpg", subset))
    write_manifest(raw, pairs)
    params = {"image_size": 32, "preprocess": {"fill_black_borders": True, "remove_sketch_label": True,
                                               "grey_sketches": True},
              "split": {"protocol": "cuhk", "test_fraction": 0.2, "val_fraction": 0.0, "seed": 0}}
    processed, split_file = tmp_path / "processed" / "pairs.npz", tmp_path / "split.json"
    preprocess(params, raw, processed)
    split(params, processed, split_file)
    return {"raw": raw, "processed": processed, "split": split_file, "metrics": tmp_path / "metrics",
            "predictions": tmp_path / "predictions", "root": tmp_path}


def test_native_predictions_are_scored_against_the_original_files(workspace):
    ws = workspace
    # the dirty sketch really was cleaned for the models' inputs/targets ...
    changed = fileio.read_json(ws["processed"].parent / "cleaning.json")["changed"]
    assert "f-039-01" in changed["sketch_label"] and "f-039-01" in changed["sketch_borders"]

    results = baselines("f2s", metrics_dir=ws["metrics"], processed_file=ws["processed"], split_file=ws["split"],
                        raw_dir=ws["raw"], predictions_dir=ws["predictions"])
    table = pd.read_csv(ws["metrics"] / "per_image" / "baselines-f2s.csv")
    mean_rows = table[table["baseline"] == "mean_target"].set_index("id")
    assert sorted(mean_rows.index) == ["f-039-01", "f1-001-01", "m1-002-01"]
    for pid, row in mean_rows.iterrows():
        # ... the saved prediction has the target's native size, and is the file scored
        saved = ws["predictions"] / "baselines-f2s" / "mean_target" / f"{pid}.png"
        pred = protocol.read_prediction(saved)
        assert pred.shape == (H, W) and pred.dtype == np.uint8
        # ... the target scored is byte-for-byte the fetched file (not the cleaned one)
        raw_file = ws["raw"] / row["target"]
        assert row["target_sha256"] == hashlib.sha256(raw_file.read_bytes()).hexdigest()
        original = protocol.grey_u8(cv2.cvtColor(cv2.imread(str(raw_file)), cv2.COLOR_BGR2RGB))
        again = protocol.score_pair("f2s", pred, original)
        for k in ("mae", "psnr", "ssim", "fsim", "scoot"):
            assert row[k] == pytest.approx(again[k], rel=1e-5), (pid, k)

    # the dirty sketch's label and black border are in the target that was scored
    raw_file = ws["raw"] / mean_rows.loc["f-039-01", "target"]
    original = protocol.grey_u8(cv2.cvtColor(cv2.imread(str(raw_file)), cv2.COLOR_BGR2RGB))
    assert (original[:, :8] < 40).mean() > 0.9            # the black bar on the left
    assert original[2:14, 40:190].min() < 120              # label ink in the top rows
    cleaned, _ = cleaning.remove_label(cleaning.fill_black_borders(cv2.cvtColor(original, cv2.COLOR_GRAY2RGB))[0])
    pred = protocol.read_prediction(ws["predictions"] / "baselines-f2s" / "mean_target" / "f-039-01.png")
    on_cleaned = protocol.score_pair("f2s", pred, protocol.grey_u8(cleaned))
    assert abs(on_cleaned["mae"] - mean_rows.loc["f-039-01", "mae"]) > 1e-3  # the cleaned target would differ

    summary = results["mean_target"]
    json.dumps(summary, allow_nan=False)
    identity_keys = {"id_rank1", "id_rank5", "id_verified", "id_auc", "id_distance", "id_fallbacks",
                     "id_gallery_fallbacks"}
    assert {"mae", "psnr", "ssim", "fsim", "scoot", "ssim_rank1", "n_images", "psnr_infinite", "intervals",
            "protocol", "absent", *identity_keys} == set(summary)  # absent: LPIPS/DISTS (no ImageNet weights)
    assert set(summary["absent"]) == {"lpips_vgg", "lpips_alex", "dists"}
    # the mean image is one descriptor for every query: identity at chance or below, and dlib finds
    # no face in these tiny generated images, so every query and target fell back to the CUHK box
    assert summary["id_fallbacks"] == 3 and summary["id_gallery_fallbacks"] == 3
    assert summary["id_rank5"] == 1.0  # 3 identities: every rank is <= 5
    assert summary["id_rank1"] == pytest.approx(mean_rows["id_rank1"].mean())
    assert summary["ssim"] == pytest.approx(mean_rows["ssim"].mean(), rel=1e-5)
    assert summary["ssim_rank1"] == pytest.approx(mean_rows["ssim_rank1"].mean())
    assert summary["protocol"]["data_range"]["ssim"] == 255


def test_s2f_scores_rgb_photos_with_fsimc(workspace):
    ws = workspace
    results = baselines("s2f", metrics_dir=ws["metrics"], processed_file=ws["processed"], split_file=ws["split"],
                        raw_dir=ws["raw"], predictions_dir=ws["predictions"])
    summary = results["mean_target"]
    assert {"fsim", "fsimc"} <= set(summary) and "scoot" not in summary
    assert 0 < summary["fsimc"] <= summary["fsim"] <= 1
    pred = protocol.read_prediction(ws["predictions"] / "baselines-s2f" / "mean_target" / "f1-001-01.png")
    assert pred.shape == (H, W, 3)


def test_predictions_are_resized_bicubically_to_native_size():
    small = pair_u8(32, 32, 0)[0]
    native = protocol.to_native(small, W, H)
    assert native.shape == (H, W, 3) and native.dtype == np.uint8
    assert np.array_equal(native, cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC))
    with pytest.raises(ValueError, match="uint8"):
        protocol.to_native(small.astype(np.float32), W, H)


def test_ssim_equals_skimage_on_the_same_8bit_grey_pair():
    a, b = pair_u8(H, W, 3)
    ga, gb = protocol.grey_u8(a), protocol.grey_u8(b)
    expected = structural_similarity(gb, ga, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255)
    assert protocol.score_pair("f2s", gb, ga)["ssim"] == expected
    assert protocol.score_pair("s2f", b, a)["ssim"] == expected   # s2f: SSIM on the grey of the RGB photos


def test_psnr_and_mae_on_8bit_values():
    a = np.minimum(protocol.grey_u8(pair_u8(40, 40, 0)[0]), 245)
    b = a + np.uint8(10)
    s = protocol.score_pair("f2s", b, a)
    assert s["mae"] == pytest.approx(10 / 255) and s["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / 100))
    rgb_a, rgb_b = pair_u8(40, 40, 1)
    s = protocol.score_pair("s2f", rgb_b, rgb_a)
    diff = rgb_b.astype(float) - rgb_a.astype(float)
    assert s["mae"] == pytest.approx(np.abs(diff).mean() / 255)   # all three channels
    assert s["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / (diff ** 2).mean()))


# ---------------------------------------------------------------- uncertainty

def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.7, 0.05, 20), rng.normal(0.7, 0.05, 2000)
    widths = []
    for values in (small, large):
        lo, hi = protocol.bootstrap_interval(values)
        assert lo < values.mean() < hi
        widths.append(hi - lo)
    # the width falls like 1 / sqrt(n): 100 times the images, about a tenth of the width
    assert widths[1] < widths[0] / 5
    assert protocol.bootstrap_interval([0.5]) is None
    assert protocol.bootstrap_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert protocol.bootstrap_interval(small) == protocol.bootstrap_interval(small)  # seeded: reproducible


def test_paired_comparison_calls_the_clearly_better_model_better_and_identical_models_tied():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 0.8, 100)                    # images differ a lot in difficulty ...
    better = base + 0.01 + rng.normal(0, 0.005, 100)     # ... a model a little but consistently better
    comp = protocol.compare_best("ssim", {"weak": base, "strong": better})
    assert comp.best == "strong" and comp.runner_up == "weak" and comp.significant
    assert comp.interval[0] > 0 and comp.difference == pytest.approx(np.mean(better - base))

    tied = protocol.compare_best("ssim", {"a": base, "b": base.copy()})
    assert not tied.significant and tied.difference == 0.0 and tied.interval == (0.0, 0.0)

    # lower is better for MAE: the lower model is best, significant when its interval is below 0
    mae = protocol.compare_best("mae", {"x": base, "y": base - 0.02})
    assert mae.best == "y" and mae.significant and mae.interval[1] < 0

    # noise only: no verdict
    noisy = protocol.compare_best("ssim", {"a": base, "b": base + rng.normal(0, 0.05, 100)})
    assert not noisy.significant


def test_paired_difference_leaves_out_infinite_psnr():
    d, interval, n = protocol.paired_difference([20.0, math.inf, 22.0, 25.0], [19.0, 30.0, 21.0, 24.0])
    assert n == 3 and d == pytest.approx(1.0) and interval == (1.0, 1.0)


def test_paired_difference_over_seeds_widens_with_training_noise():
    from facesketch.evaluation.protocol import paired_difference, paired_difference_over_seeds

    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.02, 40)                       # the same images under every seed
    before = np.stack([images + rng.normal(0, 0.001, 40) for _ in range(3)])
    quiet = before + 0.01 + rng.normal(0, 0.001, (3, 40))  # a lever worth +0.01 under every seed
    noisy = before + np.array([[0.03], [-0.01], [0.01]]) + rng.normal(0, 0.001, (3, 40))  # mean +0.01 too

    q = paired_difference_over_seeds(quiet, before)
    n = paired_difference_over_seeds(noisy, before)
    assert q.difference == pytest.approx(float((quiet - before).mean()))
    assert q.n_seeds == 3 and q.n_images == 40 and len(q.per_seed) == 3
    assert n.per_seed == pytest.approx([0.03, -0.01, 0.01], abs=0.001)
    assert n.seed_spread == pytest.approx(0.02, abs=0.001)
    assert q.significant and not n.significant  # the same mean: only the seeds' disagreement differs
    assert n.interval[1] - n.interval[0] > 10 * (q.interval[1] - q.interval[0])
    # one seed: the images-only paired bootstrap's point estimate, and an interval of the same width
    one = paired_difference_over_seeds(quiet[:1], before[:1])
    diff, interval, _ = paired_difference(quiet[0], before[0])
    assert one.difference == pytest.approx(diff)
    assert (one.interval[1] - one.interval[0]) == pytest.approx(interval[1] - interval[0], rel=0.1)


def test_paired_difference_over_seeds_needs_the_same_grid():
    from facesketch.evaluation.protocol import paired_difference_over_seeds

    with pytest.raises(ValueError, match="same seeds and images"):
        paired_difference_over_seeds(np.zeros((2, 5)), np.zeros((3, 5)))
