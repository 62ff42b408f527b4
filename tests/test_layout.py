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


def test_one_image_encoder_for_grids_the_report_the_protocol_and_predict(tmp_path):
    """Every PNG or JPEG the project writes goes through images.encode_image: PNG round-trips exactly,
    grey and RGB, JPEG keeps the picture within its quality's error; an unknown format is named."""
    import cv2
    import numpy as np

    from facesketch.core import images
    from facesketch.evaluation import grids, protocol
    from facesketch.report import html_writer
    from facesketch.use import predict

    assert grids.encode_image is protocol.encode_image is html_writer.encode_image is predict.encode_image \
        is images.encode_image
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), np.uint8)
    grey = rng.integers(0, 256, (20, 30), np.uint8)
    (tmp_path / "rgb.png").write_bytes(images.encode_image(rgb, "png"))
    assert np.array_equal(images.read_rgb(tmp_path / "rgb.png"), rgb)
    decoded = cv2.imdecode(np.frombuffer(images.encode_image(grey, "png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, grey)
    smooth = np.repeat(np.linspace(0, 255, 30, dtype=np.uint8)[None, :, None], 20, 0).repeat(3, 2)
    (tmp_path / "smooth.jpg").write_bytes(predict.encode(smooth, "jpg", quality=95))
    assert np.abs(images.read_rgb(tmp_path / "smooth.jpg").astype(int) - smooth).max() <= 4
    with pytest.raises(ValueError, match="'gif' is not valid; expected png or jpg"):
        images.encode_image(rgb, "gif")
