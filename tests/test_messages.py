"""Messages that named the wrong cause (#27): each says what is actually wrong, and what to do."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from facesketch.core import fileio
from facesketch.core.errors import DataError, FacesketchError


def test_corrupt_model_file_is_not_called_missing(tmp_path):
    """Before: "cannot load the model (ValueError: File not found: filepath=...)"."""
    from facesketch.use.predictor import Predictor
    from facesketch.use.catalog import load_entry

    folder = tmp_path / "models" / "conv-f2s"
    fileio.write_json(folder / "info.json", {"model": "conv", "task": "f2s", "image_size": 32})
    (folder / "model.keras").write_bytes(b"PK\x03\x04 cut off in the middle of a save")
    with pytest.raises(FacesketchError) as err:
        Predictor.load(load_entry(folder, tmp_path / "metrics"))
    msg = str(err.value)
    assert "corrupt or truncated model file" in msg and "not found" not in msg.lower(), msg
    assert "dvc checkout" in msg and "dvc repro train@conv-f2s" in msg, msg


def test_unknown_model_name_suggests_no_impossible_stage(tmp_path):
    """Before: `--model nope` -> "train it with `dvc repro train@nope-f2s`", a stage that cannot exist."""
    from facesketch.use.catalog import ModelNotFound, choose_model

    with pytest.raises(ModelNotFound) as err:
        choose_model("f2s", "nope", models_dir=tmp_path / "models", metrics_dir=tmp_path / "metrics")
    msg = str(err.value)
    assert "unknown model 'nope'" in msg and "dense, conv" in msg and "train@" not in msg, msg
    with pytest.raises(ModelNotFound, match=r"dvc repro train@conv-f2s"):  # a real model not trained yet
        choose_model("f2s", "conv", models_dir=tmp_path / "models", metrics_dir=tmp_path / "metrics")


def test_symlink_loop_is_not_called_broken(tmp_path):
    """Before: "broken symbolic link (points to loop.png, which does not exist)"."""
    from facesketch.core.images import read_rgb
    from facesketch.data.pairing import list_images

    os.symlink("loop.png", tmp_path / "loop.png")
    with pytest.raises(DataError) as err:
        read_rgb(tmp_path / "loop.png")
    assert "symbolic link loop" in str(err.value) and "does not exist" not in str(err.value), err.value
    with pytest.raises(DataError) as err:
        list_images(tmp_path)
    assert "symbolic link loop" in str(err.value) and "does not exist" not in str(err.value), err.value


def test_truncated_zip_is_called_truncated(tmp_path):
    """Before: "not a zip or tar archive"."""
    from facesketch.data.archives import extract

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("photos/a.png", os.urandom(20_000))
    (tmp_path / "cut.zip").write_bytes(buf.getvalue()[:8_000])
    with pytest.raises(DataError) as err:
        extract(tmp_path / "cut.zip", tmp_path / "out")
    msg = str(err.value)
    assert "a zip archive, but truncated or damaged" in msg and "download it again" in msg, msg
    (tmp_path / "page.zip").write_bytes(b"<!DOCTYPE html><html>moved</html>")
    with pytest.raises(DataError, match="not a zip or tar archive .*HTML page"):  # unchanged
        extract(tmp_path / "page.zip", tmp_path / "out")


def test_tiny_picture_gets_an_upscale_warning():
    """Before: a 1x1 picture was scaled up to the model's size without a word."""
    from facesketch.core.images import upscale_warning

    msg = upscale_warning("dot.png", (1, 1, 3), 32)
    assert msg and "only 1x1 px, scaled up 32x" in msg, msg
    assert upscale_warning("face.png", (200, 180, 3), 256) is None  # a usual picture: no warning
