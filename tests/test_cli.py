"""The `facesketch` command on a tiny trained model: predict, models, errors, the console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesketch.core import fileio
from facesketch.use.cli import main
from conftest import REPO, make_pairs, tiny_params

SIZE = 32
METRICS = {"mae": 0.20, "psnr": 12.5, "ssim": 0.5, "fsim": 0.6, "rank1": 0.25, "n_images": 4}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """conv-f2s trained for 1 epoch at 32 px, with a (made-up) metrics file."""
    from facesketch.data.split import make_split
    from facesketch.training.fit import train

    root = tmp_path_factory.mktemp("cli")
    photos, sketches = make_pairs(12, SIZE)
    ids = [f"{'f' if i % 2 else 'm'}-{i + 1:03d}-01" for i in range(12)]
    processed, split_file = root / "pairs.npz", root / "split.json"
    fileio.save_npz(processed, ids=np.array(ids), subsets=np.array(["train"] * 12), photos=photos, sketches=sketches)
    fileio.write_json(split_file, make_split(ids, ["train"] * 12, protocol="random", test_fraction=0.25,
                                         val_fraction=0.2, seed=0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)  # any MLflow artifact folder lands here, not in the repo
        info = train("conv", "f2s", tiny_params(epochs=1), processed_file=processed, split_file=split_file,
                     models_dir=root / "models", history_dir=root / "history",
                     checkpoint_root=root / "ckpt", verbose=0)
    fileio.write_json(root / "metrics" / "conv-f2s.json", METRICS)
    return {"root": root, "models": root / "models", "metrics": root / "metrics", "info": info}


def dirs(t) -> list[str]:
    return ["--models-dir", str(t["models"]), "--metrics-dir", str(t["metrics"])]


def predict(t, *args: str) -> int:
    """`facesketch predict --no-align`: these pictures have no faces; the whole image is squeezed in
    (alignment has its own tests in test_faces.py)."""
    return main(["predict", "--task", "f2s", "--no-align", *map(str, args), *dirs(t)])


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A BGR test photo of width x height: a gradient and a disc."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[...] = (np.linspace(40, 220, width)[None, :, None] * rng.uniform(0.5, 1, 3)).astype(np.uint8)
    cv2.circle(img, (width // 2, height // 2), min(width, height) // 3, (30, 90, 200), -1)
    return img


def write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def shape_of(path: Path) -> tuple:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, f"{path} is not a readable image"
    return img.shape


def test_help_is_fast_and_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "predict" in out and "models" in out and "demo" in out
    assert main(["predict", "x.png"]) == 2  # --task is required: a usage error
    assert "--task" in capsys.readouterr().err


def test_predict_one_file_keeps_its_size(trained, tmp_path, capsys):
    src = write(tmp_path / "in" / "face.jpg", photo(200, 250))
    assert predict(trained, src, "-o", tmp_path / "out") == 0
    out = tmp_path / "out" / "face_f2s_conv.png"
    assert shape_of(out) == (250, 200, 3)
    err = capsys.readouterr().err
    assert "conv-f2s" in err and "SSIM 0.5000" in err  # which model, and why
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["face_f2s_conv.png"]  # no temp files left


def test_predict_folder_of_rgba_grey_and_rgb(trained, tmp_path):
    folder = tmp_path / "in"
    rgba = np.dstack([photo(77, 64), np.full((64, 77), 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # a transparent corner
    write(folder / "rgba.png", rgba)
    write(folder / "grey.jpg", cv2.cvtColor(photo(50, 40), cv2.COLOR_BGR2GRAY))
    write(folder / "rgb.png", photo(SIZE, SIZE))
    write(folder / "big.JPG", photo(300, 180))
    (folder / "notes.txt").write_text("not an image, and not picked from a folder")
    assert shape_of(folder / "rgba.png") == (64, 77, 4) and shape_of(folder / "grey.jpg") == (40, 50)

    assert predict(trained, folder, "-o", tmp_path / "out") == 0
    out = tmp_path / "out"
    assert shape_of(out / "rgba_f2s_conv.png") == (64, 77, 3)
    assert shape_of(out / "grey_f2s_conv.png") == (40, 50, 3)
    assert shape_of(out / "rgb_f2s_conv.png") == (SIZE, SIZE, 3)
    assert shape_of(out / "big_f2s_conv.png") == (180, 300, 3)
    assert len(list(out.iterdir())) == 4


def test_output_options_native_size_jpeg_grey(trained, tmp_path):
    src = write(tmp_path / "face.png", photo(90, 120))
    assert predict(trained, src, "-o", tmp_path / "a", "--size", "native", "--format", "jpg") == 0
    assert shape_of(tmp_path / "a" / "face_f2s_conv.jpg") == (SIZE, SIZE, 3)
    assert predict(trained, src, "-o", tmp_path / "b", "--grey", "--quiet") == 0
    assert shape_of(tmp_path / "b" / "face_f2s_conv.png") == (120, 90)


def test_same_name_twice_gets_distinct_outputs(trained, tmp_path):
    a = write(tmp_path / "x" / "face.png", photo(40, 40))
    b = write(tmp_path / "y" / "face.jpg", photo(60, 30, seed=1))
    assert predict(trained, a, b, a, "-o", tmp_path / "out") == 0  # the same file twice runs once
    assert shape_of(tmp_path / "out" / "face_f2s_conv.png") == (40, 40, 3)
    assert shape_of(tmp_path / "out" / "face_f2s_conv-2.png") == (30, 60, 3)
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_corrupt_files_are_reported_and_the_good_ones_written(trained, tmp_path, capsys):
    folder = tmp_path / "in"
    for i in range(3):
        write(folder / f"good{i}.png", photo(48 + i, 40, seed=i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
    (folder / "text.png").write_text("hello")
    (folder / "empty.png").write_bytes(b"")
    missing = tmp_path / "nowhere.png"

    rc = predict(trained, folder, missing, "-o", tmp_path / "out", "--batch-size", "2")
    err = capsys.readouterr().err
    assert rc == 1
    for name in ("broken.jpg", "text.png", "empty.png", "nowhere.png"):
        assert name in err, err
    assert "4 inputs failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"good{i}_f2s_conv.png" for i in range(3)]
    assert shape_of(tmp_path / "out" / "good2_f2s_conv.png") == (40, 50, 3)


def test_missing_model_is_a_clear_error(trained, tmp_path, capsys):
    src = write(tmp_path / "face.png", photo(40, 40))
    assert predict(trained, src, "--model", "dense", "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'dense-f2s' not found" in err and "conv-f2s" in err
    assert main(["predict", "--task", "s2f", str(src), "-o", str(tmp_path / "out"), *dirs(trained)]) == 1
    assert "no trained s2f model" in capsys.readouterr().err
    assert predict(trained, src, "--model", "conv-s2f") == 1
    assert "trained for task s2f" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_folder_without_images_is_a_clear_error(trained, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    assert predict(trained, empty, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"{empty}: folder has no images" in err and "no images to process" in err

    # with other inputs, those are still processed, and the run still fails
    src = write(tmp_path / "face.png", photo(40, 40))
    assert predict(trained, empty, src, "-o", tmp_path / "out") == 1
    assert f"{empty}: folder has no images" in capsys.readouterr().err
    assert (tmp_path / "out" / "face_f2s_conv.png").exists()


def test_unwritable_output_is_a_clear_error(trained, tmp_path, capsys):
    src = write(tmp_path / "face.png", photo(40, 40))
    blocker = tmp_path / "a-file"
    blocker.write_text("a file, not a folder")
    assert predict(trained, src, "-o", blocker / "out") == 1
    err = capsys.readouterr().err
    assert f"output folder {blocker / 'out'}: cannot be written" in err
    assert predict(trained, src, "-o", blocker) == 1
    assert f"output folder {blocker}: exists and is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_output_folder(trained, tmp_path, capsys):
    src = write(tmp_path / "face.png", photo(40, 40))
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert predict(trained, src, "-o", out) == 1
        assert f"output folder {out}: cannot be written" in capsys.readouterr().err
    finally:
        out.chmod(0o700)


def test_best_model_is_chosen_by_ssim_then_mae(trained, tmp_path, capsys):
    from facesketch.use.catalog import choose_model

    models, metrics = tmp_path / "models", tmp_path / "metrics"
    shutil.copytree(trained["models"] / "conv-f2s", models / "conv-f2s")
    shutil.copytree(trained["models"] / "conv-f2s", models / "dense-f2s")
    info = fileio.read_json(models / "dense-f2s" / "info.json")
    fileio.write_json(models / "dense-f2s" / "info.json", {**info, "model": "dense"})
    kw = {"models_dir": models, "metrics_dir": metrics}

    with pytest.raises(Exception, match=r"no metrics for the f2s models.*--model NAME.*dvc repro"):
        choose_model("f2s", **kw)
    fileio.write_json(metrics / "conv-f2s.json", {**METRICS, "ssim": 0.40})
    assert choose_model("f2s", **kw)[0].name == "conv-f2s"  # the only one with metrics
    fileio.write_json(metrics / "dense-f2s.json", {**METRICS, "ssim": 0.45})
    assert choose_model("f2s", **kw)[0].name == "dense-f2s"
    fileio.write_json(metrics / "conv-f2s.json", {**METRICS, "ssim": 0.45, "mae": 0.1})  # tie on SSIM: lower MAE
    assert choose_model("f2s", **kw)[0].name == "conv-f2s"
    assert choose_model("f2s", "dense", **kw)[0].name == "dense-f2s"  # --model overrides

    src = write(tmp_path / "face.png", photo(40, 40))
    fileio.write_json(metrics / "dense-f2s.json", {**METRICS, "ssim": 0.9})
    args = ["predict", "--task", "f2s", "--no-align", str(src), "-o", str(tmp_path / "out"), "--models-dir", str(models),
            "--metrics-dir", str(metrics)]
    assert main(args) == 0
    assert (tmp_path / "out" / "face_f2s_dense.png").exists()
    assert "dense-f2s" in capsys.readouterr().err


def test_models_lists_the_trained_models_with_metrics(trained, capsys):
    assert main(["models", *dirs(trained)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("conv-f2s"))
    for cell in ("f2s", "32", "adam", "mae", f"{trained['info']['parameters']:,}", "0.2000", "12.50", "0.5000",
                 "*"):
        assert cell in row.split(), (cell, row)
    assert main(["models", "--json", *dirs(trained)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["task"], r["ssim"], r["best"]) for r in rows] == [("conv-f2s", "f2s", 0.5, True)]
    assert main(["models", "--task", "s2f", *dirs(trained)]) == 0
    assert "no trained s2f models" in capsys.readouterr().out


def test_batches_match_the_pipeline_and_never_retrace(trained, tmp_path):
    from facesketch.data.dataset import to_float, to_uint8
    from facesketch.data.preprocess import to_square
    from facesketch.core.images import read_rgb
    from facesketch.use.predictor import Predictor
    from facesketch.use.catalog import choose_model
    from facesketch.use.predict import predict_files

    entry, _ = choose_model("f2s", models_dir=trained["models"], metrics_dir=trained["metrics"])
    predictor = Predictor.load(entry, batch_size=4)
    files = [write(tmp_path / "in" / f"{i}.png", photo(SIZE, SIZE, seed=i)) for i in range(10)]
    files.insert(3, tmp_path / "in" / "missing.png")
    result = predict_files(predictor, files, tmp_path / "out", report=lambda m: None)
    assert len(result.written) == 10 and len(result.failed) == 1
    assert predictor.model.predict_function.experimental_get_tracing_count() == 1

    # the same numbers as the pipeline's own preprocessing and Keras' predict
    x = to_float(np.stack([to_square(read_rgb(f), SIZE) for f in files if f.exists()]))
    expected = to_uint8(predictor.model.predict(x, verbose=0))
    got = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in result.written])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_installed_console_script(trained, tmp_path, venv_env):
    exe = Path(sys.executable).parent / "facesketch"
    assert exe.exists(), "pip install -e . installs the `facesketch` console script"
    src = write(tmp_path / "in" / "face.png", photo(200, 250))
    venv_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), venv_env.get("PYTHONPATH")]))

    def run(*args):
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=venv_env,
                              cwd=tmp_path, timeout=300)

    help_ = run("--help")
    assert help_.returncode == 0 and "predict" in help_.stdout
    done = run("predict", "--task", "f2s", "--no-align", src, "-o", "out", *dirs(trained))
    assert done.returncode == 0, done.stderr
    assert shape_of(tmp_path / "out" / "face_f2s_conv.png") == (250, 200, 3)
    assert "wrote 1 image to out" in done.stderr
    listed = run("models", *dirs(trained))
    assert listed.returncode == 0 and "conv-f2s" in listed.stdout
    bad = run("predict", "--task", "f2s", tmp_path / "nope.png", "-o", "out", *dirs(trained))
    assert bad.returncode == 1 and "nope.png: no such file or folder" in bad.stderr
    usage = run("predict", src)
    assert usage.returncode == 2


def test_demo_runs_the_demo_script(capsys):
    assert main(["demo", "--dry-run", "--", "-S", "epochs=2"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("bash ") and out.endswith("scripts/demo.sh -S epochs=2")


def test_read_rgb_rgba_on_white_16bit_grey_and_exif_orientation(tmp_path):
    import struct

    from facesketch.core.errors import DataError
    from facesketch.core.images import read_rgb

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)  # BGR
    rgba[0, 0, 3] = 0      # transparent: white
    rgba[1:, :, 3] = 255   # opaque: its colour
    write(tmp_path / "a.png", rgba)
    img = read_rgb(tmp_path / "a.png")
    assert img.shape == (4, 6, 3) and tuple(img[0, 0]) == (255, 255, 255) and tuple(img[2, 2]) == (30, 20, 10)

    write(tmp_path / "deep.png", np.full((5, 7), 65535, np.uint16))
    assert read_rgb(tmp_path / "deep.png").shape == (5, 7, 3) and read_rgb(tmp_path / "deep.png").min() == 255

    # a 40 x 20 (w x h) JPEG whose EXIF says "rotate 90 degrees": viewers show it 20 x 40
    ok, buf = cv2.imencode(".jpg", photo(40, 20))
    ifd = struct.pack(">HHHIHH", 1, 0x0112, 3, 1, 6, 0) + struct.pack(">I", 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    (tmp_path / "rotated.jpg").write_bytes(data[:2] + app1 + data[2:])
    assert read_rgb(tmp_path / "rotated.jpg").shape == (40, 20, 3)

    (tmp_path / "folder.png").mkdir()
    for bad, msg in [("folder.png", "is a folder"), ("none.png", "file not found")]:
        with pytest.raises(DataError, match=msg):
            read_rgb(tmp_path / bad)


def test_rgba_gives_the_same_pixels_through_the_pipeline_and_predict(tmp_path):
    """One reader, one rule: transparent pixels are white (paper) in the training data and in `predict`,
    whatever colour they store (black here, as in the probe)."""
    from facesketch.data.manifest import Pair, write_manifest
    from facesketch.data.preprocess import preprocess, to_square
    from facesketch.core.images import read_rgb

    raw = tmp_path / "raw"
    bgra = np.zeros((40, 40, 4), np.uint8)  # every pixel stores black ...
    bgra[10:30, 10:30] = (40, 90, 200, 255)  # ... an opaque orange square ...
    bgra[:, :5, 3] = 128                     # ... a half-transparent strip; the rest fully transparent
    write(raw / "photos" / "f-001-01.png", bgra)
    write(raw / "sketches" / "f-001-01.png", np.full((40, 40), 250, np.uint8))
    write_manifest(raw, [Pair("f-001-01", "photos/f-001-01.png", "sketches/f-001-01.png", "train")])
    params = tiny_params(image_size=SIZE)
    params["preprocess"] = {"fill_black_borders": False, "remove_sketch_label": False, "grey_sketches": False}
    preprocess(params, raw_dir=raw, out_file=tmp_path / "pairs.npz")
    with np.load(tmp_path / "pairs.npz") as data:
        pipeline = data["photos"][0]

    predicted = to_square(read_rgb(raw / "photos" / "f-001-01.png"), SIZE)
    np.testing.assert_array_equal(pipeline, predicted)
    assert tuple(pipeline[SIZE - 1, SIZE - 1]) == (255, 255, 255)   # transparent: white, not its stored black
    assert tuple(pipeline[SIZE // 2, SIZE // 2]) == (200, 90, 40)   # opaque: its colour (RGB)
    assert 120 <= pipeline[SIZE // 2, 1, 0] <= 135                   # half transparent black on white: grey


def test_only_unreadable_inputs_load_no_model_and_say_nothing_was_written(tmp_path, capsys):
    """The model (here a damaged file: loading it would fail, naming it) is not even loaded when no
    input is an image, and the summary does not claim that others were written."""
    model_dir = tmp_path / "models" / "conv-f2s"
    model_dir.mkdir(parents=True)
    fileio.write_json(model_dir / "info.json", {"model": "conv", "task": "f2s", "image_size": SIZE})
    (model_dir / "model.keras").write_bytes(b"not a keras file")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (tmp_path / "notes.jpg").write_text("text, not a photo")

    rc = main(["predict", "--task", "f2s", "--model", "conv", str(tmp_path / "broken.png"),
               str(tmp_path / "notes.jpg"), "-o", str(tmp_path / "out"),
               "--models-dir", str(tmp_path / "models"), "--metrics-dir", str(tmp_path / "metrics")])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{tmp_path / 'broken.png'}: not a readable image" in err and f"{tmp_path / 'notes.jpg'}: not a readable image" in err
    assert "model.keras" not in err and "cannot load" not in err and "using conv-f2s" not in err, err
    assert "nothing written" in err and "the others were written" not in err, err
    assert list((tmp_path / "out").iterdir()) == []


def test_metrics_of_another_model_file_are_never_shown_or_ranked(trained, tmp_path, capsys):
    """#27: metrics/ unwritable, the model retrained and evaluate failed to write: the old scores
    stayed and were listed, and predict's default chosen, against the new model. evaluate now stores
    the sha256 of the model file it scored; every reader refuses scores of another file."""
    from facesketch.core.saved import SCORED_MODEL_KEY, model_sha256
    from facesketch.use.app import Service
    from facesketch.use.catalog import ModelNotFound, choose_model

    models, metrics = tmp_path / "models", tmp_path / "metrics"
    shutil.copytree(trained["models"] / "conv-f2s", models / "conv-f2s")
    kw = {"models_dir": models, "metrics_dir": metrics}
    fileio.write_json(metrics / "conv-f2s.json", {**METRICS, SCORED_MODEL_KEY: model_sha256(models / "conv-f2s")})
    assert choose_model("f2s", **kw)[0].name == "conv-f2s"  # scores of this very file: used

    fileio.write_json(metrics / "conv-f2s.json", {**METRICS, SCORED_MODEL_KEY: "0" * 64})  # the previous model's
    assert main(["models", "--models-dir", str(models), "--metrics-dir", str(metrics)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("conv-f2s"))
    assert "0.2000" not in row and "stale" in row and "*" not in row.split(), row
    assert "scored another model" in out and "dvc repro evaluate@conv-f2s" in out, out
    assert main(["models", "--json", "--models-dir", str(models), "--metrics-dir", str(metrics)]) == 0
    listed = json.loads(capsys.readouterr().out)[0]
    assert listed["mae"] is None and "scored another model" in listed["metrics_stale"]
    with pytest.raises(ModelNotFound, match="scored another model"):
        choose_model("f2s", **kw)  # no default from another model's scores
    page = Service(models, metrics).metrics_markdown("f2s", "conv")
    assert "scored another model" in page and "0.2000" not in page and "0.200" not in page, page


def test_report_refuses_metrics_of_another_model_file(tmp_path):
    from facesketch.core.errors import DataError
    from facesketch.core.saved import SCORED_MODEL_KEY
    from facesketch.report.content import collect

    (tmp_path / "models/conv-f2s").mkdir(parents=True)
    (tmp_path / "models/conv-f2s/model.keras").write_bytes(b"the retrained model")
    fileio.write_json(tmp_path / "metrics/conv-f2s.json", {**METRICS, SCORED_MODEL_KEY: "0" * 64})
    with pytest.raises(DataError, match=r"metrics/conv-f2s.json scored another model .*evaluate@conv-f2s"):
        collect(["conv"], ["f2s"], tmp_path / "metrics", tmp_path / "models")


def test_a_tiny_picture_is_predicted_with_a_warning(trained, tmp_path, capsys):
    """#27: a 1x1 picture was scaled up to the model's 32x32 without a word, in predict and on the page."""
    from facesketch.use.app import Service

    src = write(tmp_path / "dot.png", photo(1, 1))
    assert predict(trained, src, "-o", tmp_path / "out") == 0
    assert "warning: " in (err := capsys.readouterr().err) and "only 1x1 px, scaled up 32x" in err, err
    (tmp_path / "page").mkdir()
    page = Service(trained["models"], trained["metrics"], out_dir=tmp_path / "page").run(src, "f2s", "conv", "none")
    assert page.message.startswith("Done") and "Warning: dot.png: only 1x1 px" in page.message, page.message
    assert main(["predict", "--task", "f2s", "--no-align", str(write(tmp_path / "ok.png", photo(SIZE, SIZE))),
                 "-o", str(tmp_path / "out"), *dirs(trained)]) == 0
    assert "warning" not in capsys.readouterr().err  # a picture of the model's size: none
