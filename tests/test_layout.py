"""facesketch.core.layout spells the pipeline's paths once; dvc.yaml declares the same ones."""

from pathlib import Path

import pytest
import yaml

from facesketch.core import layout

REPO = Path(__file__).resolve().parents[1]
NAME = layout.run_name("${item.model}", "${item.task}")  # a matrix stage's name, as dvc.yaml writes it
BASELINES = layout.baselines_name("${item.task}")


def declared(stage: str, kind: str) -> set[str]:
    """The paths a dvc.yaml stage declares under ``kind`` (outs, metrics, deps), without their options."""
    entries = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage].get(kind) or []
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


@pytest.mark.parametrize(("stage", "kind", "path"), [
    ("check_params", "outs", layout.PARAMS_CHECKED_FILE),
    ("fetch", "outs", layout.RAW_DIR),
    ("preprocess", "outs", layout.PROCESSED_FILE.parent),
    ("split", "outs", layout.SPLIT_FILE.parent),
    ("face_geometry", "outs", layout.FACE_GEOMETRY_FILE),
    ("train", "outs", layout.model_dir(NAME)),
    ("train", "outs", layout.history_file(NAME)),
    ("baselines", "metrics", layout.metrics_file(BASELINES)),
    ("baselines", "outs", layout.per_image_file(BASELINES)),
    ("baselines", "outs", layout.predictions_of(BASELINES)),
    ("evaluate", "deps", layout.model_dir(NAME)),
    ("evaluate", "metrics", layout.metrics_file(NAME)),
    ("evaluate", "outs", layout.per_image_file(NAME)),
    ("evaluate", "outs", layout.predictions_of(NAME)),
    ("report", "outs", layout.REPORTS_DIR),
])
def test_dvc_yaml_declares_the_layouts_paths(stage, kind, path):
    assert str(path) in declared(stage, kind), f"dvc.yaml stage {stage!r} {kind}: {sorted(declared(stage, kind))}"


def test_layout_imports_nothing_heavy():
    """Any module may import the layout: it must not pull in TensorFlow, OpenCV or the rest of facesketch."""
    import subprocess
    import sys

    code = ("import sys, facesketch.core.layout; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'cv2', 'facesketch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['facesketch', 'facesketch.core', 'facesketch.core.layout']"


def test_one_resize_rule_for_training_data_and_pictures():
    """preprocess (training data) and predict / the web page (pictures) resize by one function: area
    averaging when either side shrinks, bicubic when both grow."""
    import cv2
    import numpy as np

    from facesketch.core import images
    from facesketch.data import preprocess
    from facesketch.use import app, predictor

    assert preprocess.resize is images.resize and predictor.resize is images.resize and app.resize is images.resize
    img = np.random.default_rng(0).integers(0, 256, (250, 200, 3), np.uint8)
    assert np.array_equal(images.resize(img, 224, 224), cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA))
    assert np.array_equal(images.resize(img, 256, 256), cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC))
    assert images.resize(img, 200, 250) is img
    assert np.array_equal(preprocess.to_square(img, 64), cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA))
