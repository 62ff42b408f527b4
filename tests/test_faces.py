"""Faces in ordinary pictures: detection, alignment to the training geometry, predict's --paste/--crop/--no-align."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.core import fileio
from facesketch.core.errors import FacesketchError
from facesketch.use import predict
from facesketch.use.predictor import Predictor
from facesketch.use import catalog
from facesketch.use.cli import main
from facesketch.faces import align, geometry
from facesketch.core.images import read_rgb
from facesketch.faces.detect import Face, detect_faces
from face_fixtures import astronaut_head, place, train_tiny, write_rgb

HEIGHT = 250  # aligned crops are compared in a CUHK-sized frame (200 x 250)


def fitted(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return align.transform_points(matrix, points)


# --- the geometry and the transform, from known landmark positions -------------------------------


def test_alignment_recovers_the_training_geometry_of_drawn_faces():
    """Five coloured dots (a face's landmarks in the CUHK geometry) drawn at random positions, scales
    and small rotations in a larger canvas: the aligned crop has the dots where the training faces
    had their landmarks, within a pixel or two."""
    cuhk = geometry.cuhk_default()
    rng = np.random.default_rng(7)
    colours = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)], np.uint8)
    reference = cuhk.pixels(HEIGHT)
    for _ in range(12):
        angle = np.deg2rad(rng.uniform(-15, 15))
        scale = rng.uniform(0.4, 2.5)
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shift = rng.uniform([0, 0], [900 - 200 * scale, 700 - 250 * scale])
        points = reference @ rot.T + shift
        canvas = np.full((700, 900, 3), 128, np.uint8)
        radius = max(3, int(round(4 * scale)))
        for (x, y), c in zip(points, colours):
            cv2.circle(canvas, (int(round(x)), int(round(y))), radius, tuple(int(v) for v in c), -1, cv2.LINE_AA)
        noisy = points + rng.uniform(-0.5, 0.5, points.shape)  # a detector's integer landmarks
        face = Face((0, 0, 1, 1), noisy, 1.0)
        aligned = align.align(canvas, face, cuhk, HEIGHT)
        assert aligned.crop.shape == (HEIGHT, 200, 3)
        found = []
        for c in colours:
            mask = np.all(np.abs(aligned.crop.astype(int) - c) < 60, axis=-1)
            assert mask.sum() > 3, f"dot {c} missing from the aligned crop"
            ys, xs = np.nonzero(mask)
            found.append((xs.mean(), ys.mean()))
        err = np.linalg.norm(np.array(found) - reference, axis=1)
        assert err.max() < 2.0, (np.rad2deg(angle), scale, err)


def test_geometry_round_trips_through_info_json_and_rejects_garbage():
    g = geometry.FaceGeometry(0.75, ((0.3, 0.4), (0.7, 0.4), (0.5, 0.55), (0.35, 0.7), (0.65, 0.7)), "measured", 10, 9)
    back = geometry.FaceGeometry.from_info(g.to_info())
    assert back.aspect == 0.75 and back.points == g.points and back.source == "measured" and back.n_detected == 9
    assert back.frame(200) == (150, 200)
    np.testing.assert_allclose(back.pixels(200)[1], [105, 80])
    assert geometry.FaceGeometry.from_info(None).source == "default"  # models trained before geometries were stored
    with pytest.raises(ValueError, match="face_geometry is malformed"):
        geometry.FaceGeometry.from_info({"aspect": 0.8, "landmarks": {"left_eye": [0.3, 0.4]}})
    assert geometry.training_aspect(np.array([[250, 200], [250, 200], [240, 200]])) == pytest.approx(0.8)
    assert geometry.training_aspect(None) == 1.0
    with pytest.raises(ValueError, match="degenerate"):
        align.similarity(np.zeros((5, 2)), g.pixels(100))


# --- real detection on a real face ---------------------------------------------------------------


@pytest.fixture(scope="module")
def head():
    img = astronaut_head()
    faces = detect_faces(img)
    assert len(faces) == 1 and faces[0].confidence > 0.95
    return img, faces[0]


def test_detector_finds_the_five_landmarks_of_a_real_face(head):
    img, face = head
    left, right, nose, mouth_l, mouth_r = face.points
    assert left[0] < nose[0] < right[0] and mouth_l[0] < nose[0] < mouth_r[0]
    assert max(left[1], right[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    x, y, w, h = face.box
    assert 60 < w < 130 and 70 < h < 150 and 0 <= x and 0 <= y  # the face, not the picture
    assert detect_faces(np.full((300, 400, 3), 200, np.uint8)) == []
    assert detect_faces(np.zeros((10, 10, 3), np.uint8)) == []  # too small to hold a face


def test_alignment_of_a_detected_face_moved_scaled_and_rotated_in_a_canvas(head):
    """The same face at random positions, scales and rotations in a larger picture: detection plus
    alignment put its landmarks where they are put in the untouched picture, within a few pixels,
    and the eyes where the training faces have theirs."""
    img, face = head
    cuhk = geometry.cuhk_default()
    reference = fitted(align.align(img, face, cuhk, HEIGHT).matrix, face.points)
    target = cuhk.pixels(HEIGHT)
    assert np.linalg.norm(reference - target, axis=1)[:2].max() < 5  # eyes: the fit leaves little
    assert np.linalg.norm(reference - target, axis=1).max() < 12       # the smile is wider than CUHK's mouths
    rng = np.random.default_rng(3)
    for _ in range(3):
        angle, scale = rng.uniform(-12, 12), rng.uniform(0.7, 1.6)
        canvas, m = place(img, (480, 640), angle, scale, (rng.uniform(220, 420), rng.uniform(200, 280)))
        faces = detect_faces(canvas)
        assert len(faces) == 1, (angle, scale)
        truth = align.transform_points(m, face.points)  # where the landmarks really are in the canvas
        aligned = align.align(canvas, faces[0], cuhk, HEIGHT)
        err = np.linalg.norm(fitted(aligned.matrix, truth) - reference, axis=1)
        assert err.max() < 5, (angle, scale, err)
        assert np.linalg.norm(fitted(aligned.matrix, truth)[:2] - target[:2], axis=1).max() < 7


def test_training_geometry_is_measured_from_the_training_photos(head):
    """Photos aligned to another geometry than CUHK's, squeezed into the square as preprocess does:
    the measured geometry is theirs, so a model trained on them aligns to its own faces."""
    img, face = head
    own = geometry.FaceGeometry(0.75, ((0.33, 0.42), (0.67, 0.42), (0.5, 0.55), (0.36, 0.68), (0.64, 0.68)))
    photos, expected = [], []
    for k in range(6):
        shifted = geometry.FaceGeometry(own.aspect, tuple((x + 0.01 * (k - 2.5), y) for x, y in own.points))
        aligned = align.align(img, face, shifted, 256)
        expected.append(fitted(aligned.matrix, face.points) / np.array(shifted.frame(256)))
        photos.append(cv2.resize(aligned.crop, (96, 96), interpolation=cv2.INTER_AREA))
    measured = geometry.measure_geometry(photos, own.aspect, detect_faces)
    assert measured.source == "measured" and measured.n_detected == 6 and measured.aspect == 0.75
    frame = np.array(own.frame(256))
    err_px = np.abs(np.array(measured.points) - np.median(expected, axis=0)) * frame
    assert err_px.max() < 4, err_px
    assert np.abs(np.array(measured.points) - np.array(geometry.CUHK_POINTS))[:2, 1].max() > 0.05  # not CUHK's

    blank = [np.full((96, 96, 3), 180, np.uint8)] * 6
    fallback = geometry.measure_geometry(blank, 0.75, detect_faces)
    assert fallback.source == "default" and fallback.points == geometry.CUHK_POINTS
    assert "0 of the 6" in fallback.note
    assert geometry.measure_geometry(blank, 0.75, None).source == "default"


def test_paste_blends_with_a_soft_edge(head):
    img, face = head
    aligned = align.align(img, face, geometry.cuhk_default(), HEIGHT)
    black = np.zeros_like(aligned.crop)
    out = align.paste(img, [aligned], [black])
    cx, cy = face.points[2].astype(int)  # the nose: fully replaced
    assert out[cy, cx].max() == 0
    assert np.array_equal(out[-5:, :5], img[-5:, :5])  # far from the face: untouched
    mask = align.feather_mask(200, 250)
    assert mask[125, 100] == 1.0 and mask[0, 0] < 0.01 and 0 < mask[125, 5] < 1  # a ramp, not a step


# --- the predict command -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("faces"))


def run(t, *args) -> int:
    return main(["predict", "--task", "f2s", *map(str, args), "--models-dir", str(t["models"]),
                 "--metrics-dir", str(t["metrics"])])


def read(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def test_predict_reads_the_face_geometry_stage_output_beside_the_models(trained, tmp_path, capsys):
    """Training stores no geometry (its own stage measures it); predict reads the stage's output from
    the project the models folder is in, the CUHK default (saying which file it missed) without one."""
    from facesketch.core.layout import FACE_GEOMETRY_FILE
    from facesketch.faces.measure import write_training_geometry

    model_dir = trained["models"] / "conv-f2s"
    assert "face_geometry" not in fileio.read_json(model_dir / "info.json")
    missing = catalog.load_entry(model_dir, trained["metrics"]).face_geometry
    assert missing.source == "default" and str(trained["root"] / FACE_GEOMETRY_FILE) in missing.note

    # the stage on the tiny 32 px training photos: too small to measure, CUHK's, and it says so
    out = trained["root"] / FACE_GEOMETRY_FILE
    written = write_training_geometry(trained["root"] / "pairs.npz", trained["root"] / "split.json", out)
    assert written.source == "default" and "32 px" in written.note and "32 px" in capsys.readouterr().err
    assert fileio.read_json(out)["note"] == written.note
    try:
        assert catalog.load_entry(model_dir, trained["metrics"]).face_geometry == written
        own = geometry.FaceGeometry(0.75, ((0.3, 0.4), (0.7, 0.4), (0.5, 0.55), (0.35, 0.7), (0.65, 0.7)), "measured", 9, 8)
        fileio.write_json(out, own.to_info())
        assert catalog.load_entry(model_dir, trained["metrics"]).face_geometry == own
        out.write_text("{not json")
        with pytest.raises(FacesketchError, match=f"{out}: cannot be read.*dvc repro face_geometry"):
            catalog.load_entry(model_dir, trained["metrics"]).face_geometry
    finally:
        out.unlink()  # the other tests align to the default


@pytest.fixture(scope="module")
def two_faces(head):
    img = head[0]
    canvas = np.full((320, 640, 3), 190, np.uint8)
    canvas[10:310, 20:280] = img
    small, _ = place(img, (300, 260), -8, 0.8, (130, 150), background=190)
    canvas[10:310, 350:610] = small
    return canvas


def test_two_faces_give_two_crops_or_one_picture_with_both_pasted(trained, two_faces, tmp_path, capsys):
    src = write_rgb(tmp_path / "pair.png", two_faces)
    assert run(trained, src, "--crop", "-o", tmp_path / "crops") == 0
    crops = sorted((tmp_path / "crops").iterdir())
    assert [p.name for p in crops] == ["pair_f2s_conv_face1.png", "pair_f2s_conv_face2.png"]
    for p in crops:
        h, w = read(p).shape[:2]
        assert h >= 32 and abs(w / h - geometry.CUHK_ASPECT) < 0.01  # the training frame's aspect
    assert read(crops[0]).shape[0] > read(crops[1]).shape[0]  # the left face is the larger one
    assert "2 faces in 1 picture" in capsys.readouterr().err

    assert run(trained, src, "--paste", "-o", tmp_path / "pasted") == 0
    out = read(tmp_path / "pasted" / "pair_f2s_conv.png")
    assert out.shape == two_faces.shape
    assert np.array_equal(out[:, 300:330], two_faces[:, 300:330])  # between the faces: untouched
    changed = np.abs(out.astype(int) - two_faces).max(axis=-1) > 30
    assert changed[:, :300].mean() > 0.1 and changed[:, 330:].mean() > 0.1  # both faces replaced


def test_a_picture_without_a_face_is_named_and_the_others_written(trained, head, tmp_path, capsys):
    folder = tmp_path / "in"
    write_rgb(folder / "blank.png", np.full((200, 300, 3), 230, np.uint8))
    write_rgb(folder / "face.png", head[0])
    assert run(trained, folder, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"{folder / 'blank.png'}: no face found" in err and "--no-align" in err
    assert "1 input failed" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["face_f2s_conv.png"]
    assert read(tmp_path / "out" / "face_f2s_conv.png").shape == head[0].shape  # pasted: the picture's size


def test_no_align_keeps_the_whole_picture_squeeze(trained, head, tmp_path):
    """--no-align is predict as before: the whole picture squeezed into the model, resized back."""
    blank = write_rgb(tmp_path / "blank.png", np.full((120, 90, 3), 230, np.uint8))
    face = write_rgb(tmp_path / "face.png", head[0])
    assert run(trained, blank, face, "--no-align", "-o", tmp_path / "out") == 0
    entry = catalog.load_entry(trained["models"] / "conv-f2s", trained["metrics"])
    predictor = Predictor.load(entry)
    for src in (blank, face):
        expected = predictor.predict([read_rgb(src)], batch_size=2)[0]
        assert np.array_equal(read(tmp_path / "out" / f"{src.stem}_f2s_conv.png"), expected)


def test_paste_with_native_size_is_a_usage_error(trained, head, tmp_path, capsys):
    src = write_rgb(tmp_path / "face.png", head[0])
    assert run(trained, src, "--paste", "--size", "native", "-o", tmp_path / "out") == 1
    assert "--size native goes with --crop or --no-align" in capsys.readouterr().err
    assert run(trained, src, "--crop", "--size", "native", "-o", tmp_path / "out") == 0
    assert read(tmp_path / "out" / "face_f2s_conv_face1.png").shape == (32, 32, 3)
    assert predict.default_align("f2s") == "paste" and predict.default_align("s2f") == "crop"


def test_the_face_geometry_stage_stores_cuhks_with_the_reason_when_no_detector_runs(tmp_path, monkeypatch, capsys):
    """No mtcnn (or a broken one): the stage still writes a geometry, CUHK's, says why, and does not fail."""
    import sys

    from facesketch.faces import detect
    from facesketch.faces.measure import write_training_geometry

    ids = [f"f-{i:03d}-01" for i in range(6)]
    photos = np.full((6, 64, 64, 3), 180, np.uint8)
    fileio.save_npz(tmp_path / "pairs.npz", ids=np.array(ids), photos=photos, sketches=photos,
                    source_sizes=np.array([[250, 200]] * 6, np.int32))
    fileio.write_json(tmp_path / "split.json", {"train": ids[:5], "val": [], "test": ids[5:]})
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # `import mtcnn` raises ImportError
    detect._mtcnn.cache_clear()
    try:
        out = tmp_path / "faces" / "geometry.json"
        g = write_training_geometry(tmp_path / "pairs.npz", tmp_path / "split.json", out)
    finally:
        detect._mtcnn.cache_clear()  # the next test builds the real detector again
    assert g.source == "default" and g.points == geometry.CUHK_POINTS and g.n_images == 5
    assert "needs the mtcnn package" in g.note and g.aspect == pytest.approx(0.8)
    assert geometry.FaceGeometry.from_info(fileio.read_json(out)) == g
    assert "storing the CUHK default face geometry" in capsys.readouterr().err
