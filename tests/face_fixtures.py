"""Pictures with real faces for the alignment and web page tests, and a tiny trained model.

The face is NASA's portrait of Eileen Collins that scikit-image ships
(``skimage.data.astronaut()``, public domain): a real photo, not from CUHK.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facesketch.core import fileio
from conftest import make_pairs, tiny_params

SIZE = 32
METRICS = {"mae": 0.20, "psnr": 12.5, "ssim": 0.5, "fsim": 0.6, "rank1": 0.25, "n_images": 4}


def astronaut_head() -> np.ndarray:
    """The head and shoulders of astronaut() (RGB, 300 x 260): the face about 85 x 105 px."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:300, 90:350])


def place(face: np.ndarray, canvas_hw: tuple[int, int], angle: float, scale: float, center: tuple[float, float],
          background: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``face`` rotated by ``angle`` degrees and scaled about its centre, put at ``center`` of a plain
    canvas; returns (canvas, 2 x 3 matrix from ``face``'s pixels to the canvas's)."""
    h, w = face.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += np.asarray(center) - np.array([w / 2, h / 2])
    canvas = cv2.warpAffine(face, m, (canvas_hw[1], canvas_hw[0]), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(background,) * 3)
    return canvas, m


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def train_tiny(root: Path, model: str = "conv", task: str = "f2s") -> dict:
    """``model``-``task`` trained for 1 epoch at 32 px on synthetic pairs, with (made-up) metrics."""
    import pytest

    from facesketch.data.split import make_split
    from facesketch.training.fit import train

    photos, sketches = make_pairs(12, SIZE)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(12)]
    processed, split_file = root / "pairs.npz", root / "split.json"
    fileio.save_npz(processed, ids=np.array(ids), subsets=np.array(["train"] * 12), photos=photos, sketches=sketches)
    fileio.write_json(split_file, make_split(ids, ["train"] * 12, protocol="random", test_fraction=0.25,
                                         val_fraction=0.2, seed=0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)  # any MLflow artifact folder lands here, not in the repo
        info = train(model, task, tiny_params(epochs=1), processed_file=processed, split_file=split_file,
                     models_dir=root / "models", history_dir=root / "history",
                     checkpoint_root=root / "ckpt", verbose=0)
    fileio.write_json(root / "metrics" / f"{model}-{task}.json", METRICS)
    return {"root": root, "models": root / "models", "metrics": root / "metrics", "info": info}
