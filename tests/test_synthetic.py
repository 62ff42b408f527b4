"""The synthetic CUHK-like data source: names, images, determinism, alignment."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facesketch.data.manifest import Pair, read_manifest
from facesketch.data.synthetic import generate_dataset


@pytest.fixture(scope="module")
def six(tmp_path_factory) -> tuple[Path, list[Pair]]:
    out = tmp_path_factory.mktemp("six")
    return out, generate_dataset(out, count=6, seed=3)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read(root: Path, rel: str) -> np.ndarray:
    img = cv2.imread(str(root / rel), cv2.IMREAD_UNCHANGED)
    assert img is not None, rel
    return img


def test_names_follow_the_cuhk_convention(six):
    out, pairs = six
    assert [p.pair_id for p in pairs] == ["f-001-01", "m-002-01", "f-003-01", "m-004-01", "f-005-01", "m-006-01"]
    assert pairs[0] == Pair("f-001-01", "photo/f-001-01.jpg", "sketch/F2-001-01-sz1.jpg", "train")
    assert pairs[1].sketch == "sketch/M2-002-01-sz1.jpg"
    assert sorted(files(out)) == sorted(["pairs.csv"] + [p.photo for p in pairs] + [p.sketch for p in pairs])


def test_manifest_lists_the_pairs(six):
    out, pairs = six
    assert sorted(read_manifest(out), key=lambda p: p.pair_id) == sorted(pairs, key=lambda p: p.pair_id)


@pytest.mark.parametrize("count, n_train", [(1, 0), (2, 1), (3, 1), (6, 3)])
def test_subsets_split_like_the_cuhk_archives(tmp_path, count, n_train):
    pairs = generate_dataset(tmp_path, count=count, seed=0, width=40, height=50)
    assert [p.subset for p in pairs] == ["train"] * n_train + ["test"] * (count - n_train)


def test_photos_are_colour_and_sketches_grey(six):
    out, pairs = six
    for p in pairs:
        photo, sketch = read(out, p.photo), read(out, p.sketch)
        assert photo.shape == (250, 200, 3)
        assert sketch.shape == (250, 200)           # stored single-channel
        saturation = cv2.cvtColor(photo, cv2.COLOR_BGR2HSV)[..., 1]
        assert np.percentile(saturation, 90) > 60    # real colour, not grey in three channels
        assert photo.std() > 30
        # paper-white background, dark pencil lines, and a range of tones between
        assert np.mean(sketch >= 240) > 0.25 and np.percentile(sketch, 1) < 110
        assert np.count_nonzero((sketch > 90) & (sketch < 200)) > 0.05 * sketch.size


def test_same_count_and_seed_give_identical_bytes(six, tmp_path):
    out, _ = six
    generate_dataset(tmp_path, count=6, seed=3)
    assert files(tmp_path) == files(out)


def test_pair_k_does_not_depend_on_count_but_on_seed(six, tmp_path):
    out, pairs = six
    generate_dataset(tmp_path / "four", count=4, seed=3)
    generate_dataset(tmp_path / "other", count=1, seed=4)
    for p in pairs[:4]:
        for rel in (p.photo, p.sketch):
            assert (tmp_path / "four" / rel).read_bytes() == (out / rel).read_bytes()
    other = read(tmp_path / "other", pairs[0].photo).astype(float)
    assert np.abs(other - read(out, pairs[0].photo)).mean() > 10


def test_identities_differ(six):
    out, pairs = six
    photos = [read(out, p.photo).astype(float) for p in pairs]
    for i in range(len(photos)):
        for j in range(i + 1, len(photos)):
            assert np.abs(photos[i] - photos[j]).mean() > 10, (pairs[i].pair_id, pairs[j].pair_id)


def test_sketch_is_aligned_with_photo(six):
    out, pairs = six
    for p in pairs:
        grey = cv2.cvtColor(read(out, p.photo), cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey = cv2.GaussianBlur(grey, (0, 0), 1.5)
        edges = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        darkness = 255 - read(out, p.sketch).astype(np.float32)
        aligned = np.corrcoef(edges.ravel(), darkness.ravel())[0, 1]
        for shift in ((0, 8), (8, 0), (-6, -6)):
            shifted = np.roll(darkness, shift, axis=(0, 1))
            assert aligned > np.corrcoef(edges.ravel(), shifted.ravel())[0, 1] + 0.15, p.pair_id


def test_sketch_is_a_learnable_local_function_of_the_photo(tmp_path):
    """Ridge regression on 5x5 photo patches beats the mean sketch on unseen faces."""
    size, k = 32, 5
    pairs = generate_dataset(tmp_path, count=12, seed=0)
    photos = np.array([cv2.resize(read(tmp_path, p.photo), (size, size), interpolation=cv2.INTER_AREA)
                       for p in pairs], np.float64) / 255
    sketches = np.array([cv2.resize(read(tmp_path, p.sketch), (size, size), interpolation=cv2.INTER_AREA)
                         for p in pairs], np.float64) / 255
    padded = np.pad(photos, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode="edge")
    patches = np.concatenate([padded[:, y:y + size, x:x + size] for y in range(k) for x in range(k)], -1)
    feats = np.concatenate([patches, patches ** 2, np.ones(patches.shape[:-1] + (1,))], -1)
    feats = feats.reshape(len(pairs), size * size, -1)
    train, test = slice(0, 9), slice(9, 12)
    x, y = feats[train].reshape(-1, feats.shape[-1]), sketches[train].reshape(-1)
    w = np.linalg.solve(x.T @ x + 1e-2 * np.eye(x.shape[1]), x.T @ y)
    predicted = np.clip(feats[test] @ w, 0, 1)
    model_err = np.abs(predicted - sketches[test].reshape(3, -1)).mean()
    mean_err = np.abs(sketches[train].mean(0).ravel() - sketches[test].reshape(3, -1)).mean()
    assert model_err < 0.75 * mean_err


def test_other_sizes(tmp_path):
    pairs = generate_dataset(tmp_path, count=2, seed=0, width=64, height=80)
    assert read(tmp_path, pairs[0].photo).shape == (80, 64, 3)
    assert read(tmp_path, pairs[1].sketch).shape == (80, 64)


@pytest.mark.parametrize("count", [0, -3, 2.5, "4", True, None])
def test_bad_count_is_refused(tmp_path, count):
    with pytest.raises(ValueError, match="data.synthetic.count"):
        generate_dataset(tmp_path, count=count, seed=0)
    assert not any(tmp_path.iterdir())


def test_bad_seed_is_refused(tmp_path):
    with pytest.raises(ValueError, match="data.synthetic.seed"):
        generate_dataset(tmp_path, count=2, seed=-1)
