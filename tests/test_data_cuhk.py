"""Real-data sources (cuhk over HTTP, archive_dir, folder), safe extraction, pairing, cleaning.

All archives are generated here (tiny JPEGs in the CUHK layout and naming)
and served by a real http.server on 127.0.0.1; nothing reads the real
dataset, nothing mocks HTTP or pooch.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile

import cv2
import numpy as np
import pytest

from cuhk_fixtures import (FILES, TEST, TRAIN, all_files, cuhk_archives, cuhk_entries, cuhk_params,
                           http_server, jpeg, pair_value, sha256, tar_bytes, unsafe_zip, zip_bytes)
from facesketch.data import archives, cleaning
from facesketch.data.fetch import fetch
from facesketch.data.manifest import read_manifest
from facesketch.data.pairing import ImageFile, pair_images, pair_key
from facesketch.data.preprocess import preprocess
from facesketch.data.split import split
from facesketch.core.errors import DataError, ParamError

__all__ = ["http_server"]  # the fixture, imported for pytest

N_TRAIN, N_TEST = len(TRAIN), len(TEST)


def _stem(name: str) -> str:
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def run_fetch(params, data_dir):
    return fetch(params, data_dir / "raw")


def assert_nothing_left(data_dir):
    """No raw folder, no temp folder, no partial or cached download: the data dir is empty."""
    assert all_files(data_dir) == []


# --------------------------------------------------------------------------- pairing rules

@pytest.mark.parametrize("name, key", [
    ("sketch/F2-005-01-sz1.jpg", "f-005-01"),
    ("M2-062-01-sz1.jpg", "m-062-01"),
    ("photo/f-005-01.jpg", "f-005-01"),
    ("f1-001-01-sz1.jpg", "f1-001-01"),      # the f1-/m1- series is kept
    ("a/b/F1-001-01-SZ1.JPG", "f1-001-01"),  # case-insensitive, nested
    ("f-039-01-sz1.jpg", "f-039-01"),
    ("00012.png", "00012"),                  # plain same-name data sets
])
def test_pair_key_follows_cuhk_names(name, key):
    assert pair_key(name) == key


def test_unpaired_and_duplicates_listed_or_dropped_with_warning(capsys):
    photos = [ImageFile("p/f-005-01.jpg", "P.zip:photo/f-005-01.jpg"),
              ImageFile("p/f-006-01.jpg", "P.zip:photo/f-006-01.jpg"),
              ImageFile("p/a/m-005-01.jpg", "P.zip:photo/a/m-005-01.jpg"),
              ImageFile("p/b/M-005-01.JPG", "P.zip:photo/b/M-005-01.JPG")]
    sketches = [ImageFile("s/F2-005-01-sz1.jpg", "S.zip:sketch/F2-005-01-sz1.jpg"),
                ImageFile("s/M2-005-01-sz1.jpg", "S.zip:sketch/M2-005-01-sz1.jpg"),
                ImageFile("s/F2-099-01-sz1.jpg", "S.zip:sketch/F2-099-01-sz1.jpg")]
    with pytest.raises(DataError) as err:
        pair_images(photos, sketches, subset="train")
    msg = str(err.value)
    assert "S.zip:sketch/F2-099-01-sz1.jpg" in msg and "sketch without a photo" in msg
    assert "P.zip:photo/f-006-01.jpg" in msg and "photo without a sketch" in msg
    assert "P.zip:photo/a/m-005-01.jpg" in msg and "P.zip:photo/b/M-005-01.JPG" in msg and "duplicate" in msg
    assert "strict: false" in msg
    pairs = pair_images(photos, sketches, subset="train", strict=False)
    assert [p.pair_id for p in pairs] == ["f-005-01"]
    assert "F2-099-01-sz1.jpg" in capsys.readouterr().err


# --------------------------------------------------------------------------- full flow over HTTP

def test_fetch_preprocess_split_over_http_both_protocols(tmp_path, http_server):
    served = cuhk_archives()
    base = http_server.serve("cuhk", served)
    data = tmp_path / "data"
    # the training archives pinned by sha256, the testing ones not (as in params.yaml)
    params = cuhk_params(data, base, sha={"train_photo": sha256(served[FILES["train_photo"]]),
                                          "train_sketch": sha256(served[FILES["train_sketch"]])})

    assert run_fetch(params, data) == N_TRAIN + N_TEST
    pairs = read_manifest(data / "raw")
    assert sorted(p.subset for p in pairs).count("train") == N_TRAIN
    by_id = {p.pair_id: p for p in pairs}
    assert by_id["f1-001-01"].sketch.endswith("sketch/deeper/F1-001-01-SZ1.JPG")
    assert by_id["f-039-01"].subset == "test" and by_id["m-007-01"].subset == "train"
    assert sorted(f.name for f in (data / "downloads").iterdir()) == sorted(FILES.values())
    assert not [p for p in data.iterdir() if p.name.startswith(".")]  # no temp folder left

    assert preprocess(params, data / "raw", data / "processed" / "pairs.npz") == N_TRAIN + N_TEST
    with np.load(data / "processed" / "pairs.npz") as z:
        ids, photos, sketches = z["ids"].tolist(), z["photos"], z["sketches"]
        source_sizes = z["source_sizes"]
    assert photos.shape == sketches.shape == (N_TRAIN + N_TEST, 32, 32, 3) and photos.dtype == np.uint8
    assert source_sizes.tolist() == [[25, 20]] * (N_TRAIN + N_TEST)  # (height, width) before squaring: the face frame
    for i, pid in enumerate(ids):  # every photo sits with its own sketch
        assert abs(float(sketches[i].mean()) - pair_value(pid)) < 3
        assert abs(float(photos[i][..., 1].mean()) - pair_value(pid)) < 3

    train_ids = {_stem(p) for p, _ in TRAIN}
    test_ids = {_stem(p) for p, _ in TEST}
    params["split"]["protocol"] = "cuhk"
    s = split(params, data / "processed" / "pairs.npz", data / "split" / "split.json")
    assert set(s["test"]) == test_ids and set(s["train"]) | set(s["val"]) == train_ids
    params["split"]["protocol"] = "random"
    s = split(params, data / "processed" / "pairs.npz", data / "split" / "split.json")
    assert sorted(s["train"] + s["val"] + s["test"]) == sorted(ids) and s["test"]

    # fetched again: the archives come from the cache, the server is not asked
    hits = sum(http_server.hits.values())
    assert run_fetch(params, data) == N_TRAIN + N_TEST
    assert sum(http_server.hits.values()) == hits


def test_only_the_training_subset(tmp_path, http_server):
    base = http_server.serve("cuhk", cuhk_archives())
    params = cuhk_params(tmp_path / "data", base)
    params["data"]["cuhk"]["subsets"] = ["train"]
    assert run_fetch(params, tmp_path / "data") == N_TRAIN
    assert not any("testing" in path for path in http_server.hits)


@pytest.mark.parametrize("mode", ["error", "truncated"])
def test_failed_download_retries_then_clear_error_and_leaves_nothing(tmp_path, http_server, mode):
    served = cuhk_archives()
    base = http_server.serve("cuhk", served, modes={FILES["train_photo"]: mode})
    data = tmp_path / "data"
    params = cuhk_params(data, base, retries=1)
    with pytest.raises(DataError) as err:
        run_fetch(params, data)
    msg = str(err.value)
    url = f"{base}{FILES['train_photo']}"
    assert http_server.hits[url.removeprefix(http_server.url)] == 2  # one retry
    assert FILES["train_photo"] in msg and url in msg
    assert "by hand" in msg and str(data / "downloads") in msg and "archive_dir" in msg
    assert_nothing_left(data)


def test_wrong_sha256_is_refused(tmp_path, http_server):
    base = http_server.serve("cuhk", cuhk_archives())
    data = tmp_path / "data"
    params = cuhk_params(data, base, retries=0, sha={"train_photo": "0" * 64})
    with pytest.raises(DataError) as err:
        run_fetch(params, data)
    assert "does not match the sha256" in str(err.value) and FILES["train_photo"] in str(err.value)
    assert_nothing_left(data)


def test_web_page_instead_of_archive_is_named_and_not_cached(tmp_path, http_server):
    base = http_server.serve("cuhk", cuhk_archives(), modes={FILES["train_photo"]: "html"})
    data = tmp_path / "data"
    with pytest.raises(DataError) as err:
        run_fetch(cuhk_params(data, base), data)
    assert "HTML page" in str(err.value) and "by hand" in str(err.value)
    assert not (data / "downloads" / FILES["train_photo"]).exists() and not (data / "raw").exists()


BAD_ARCHIVES = {
    "dotdot": (lambda: unsafe_zip("dotdot"), ["sketch/../../evil.jpg", "'..'"]),
    "absolute": (lambda: unsafe_zip("absolute"), ["/tmp/evil.jpg", "absolute"]),
    "symlink": (lambda: unsafe_zip("symlink"), ["sketch/link.jpg", "symbolic link"]),
    "corrupt_jpeg": (lambda: zip_bytes({**cuhk_entries()["train_sketch"],
                                        "sketch/F2-005-01-sz1.jpg": b"\xff\xd8 not really a jpeg"}),
                     ["CUHK_training_sketch.zip:sketch/F2-005-01-sz1.jpg", "cannot be decoded"]),
    "truncated_jpeg": (lambda: zip_bytes({**cuhk_entries()["train_sketch"],
                                          "sketch/F2-005-01-sz1.jpg": jpeg(90, colour=False, w=64, h=80)[:-300]}),
                       ["CUHK_training_sketch.zip:sketch/F2-005-01-sz1.jpg"]),
    "unpaired_sketch": (lambda: zip_bytes({**cuhk_entries()["train_sketch"],
                                           "sketch/M2-099-01-sz1.jpg": jpeg(90, colour=False)}),
                        ["CUHK_training_sketch.zip:sketch/M2-099-01-sz1.jpg", "sketch without a photo"]),
    "empty": (lambda: zip_bytes({}), ["CUHK_training_sketch.zip", "contains no images"]),
    "tar_symlink": (lambda: tar_bytes(cuhk_entries()["train_sketch"],
                                      [_tarinfo("sketch/evil.jpg", tarfile.SYMTYPE, "/etc/passwd")]),
                    ["sketch/evil.jpg", "link"]),
    "tar_device": (lambda: tar_bytes(cuhk_entries()["train_sketch"], [_tarinfo("sketch/dev", tarfile.CHRTYPE)]),
                   ["sketch/dev", "device"]),
}


def _tarinfo(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("kind", list(BAD_ARCHIVES))
def test_bad_archives_give_clear_error_naming_the_culprit(tmp_path, http_server, kind):
    make, expected = BAD_ARCHIVES[kind]
    base = http_server.serve("cuhk", cuhk_archives({"train_sketch": make()}))
    data = tmp_path / "data"
    with pytest.raises(DataError) as err:
        run_fetch(cuhk_params(data, base), data)
    for part in expected:
        assert part in str(err.value), str(err.value)
    assert not (data / "raw").exists()
    assert not [p for p in data.iterdir() if p.name != "downloads"]  # no half-extracted temp folder
    assert not (tmp_path / "evil.jpg").exists() and not (data / "evil.jpg").exists()


def test_unpaired_dropped_with_warning_when_not_strict(tmp_path, http_server, capsys):
    extra = zip_bytes({**cuhk_entries()["train_sketch"], "sketch/M2-099-01-sz1.jpg": jpeg(90, colour=False)})
    base = http_server.serve("cuhk", cuhk_archives({"train_sketch": extra}))
    params = cuhk_params(tmp_path / "data", base)
    params["data"]["strict"] = False
    assert run_fetch(params, tmp_path / "data") == N_TRAIN + N_TEST
    assert "M2-099-01-sz1.jpg" in capsys.readouterr().err


def test_person_in_both_archives_is_an_error(tmp_path, http_server):
    test_photo = zip_bytes({**cuhk_entries()["test_photo"], "photo/f-005-01.jpg": jpeg(90, colour=True)})
    test_sketch = zip_bytes({**cuhk_entries()["test_sketch"], "sketch/F2-005-01-sz1.jpg": jpeg(90, colour=False)})
    base = http_server.serve("cuhk", cuhk_archives({"test_photo": test_photo, "test_sketch": test_sketch}))
    with pytest.raises(DataError, match="'f-005-01' in both the training and the testing set"):
        run_fetch(cuhk_params(tmp_path / "data", base), tmp_path / "data")


def test_file_url_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in cuhk_archives().items():
        (mirror / name).write_bytes(data)
    params = cuhk_params(tmp_path / "data", mirror.as_uri() + "/")
    assert run_fetch(params, tmp_path / "data") == N_TRAIN + N_TEST
    (mirror / FILES["test_sketch"]).unlink()
    shutil.rmtree(tmp_path / "data" / "downloads")
    with pytest.raises(DataError, match="CUHK_testing_sketch.zip"):
        run_fetch(params, tmp_path / "data")


# --------------------------------------------------------------------------- archive_dir and folder

def test_archive_dir_source(tmp_path):
    data = tmp_path / "data"
    params = cuhk_params(data, "http://127.0.0.1:9/never-used/", source="archive_dir")
    with pytest.raises(DataError) as err:
        run_fetch(params, data)
    assert FILES["train_photo"] in str(err.value) and str(data / "archives") in str(err.value)
    (data / "archives").mkdir(parents=True)
    for name, blob in cuhk_archives().items():
        (data / "archives" / name).write_bytes(blob)
    assert run_fetch(params, data) == N_TRAIN + N_TEST
    params["data"]["cuhk"]["archives"]["test_sketch"]["sha256"] = "f" * 64
    with pytest.raises(DataError, match="CUHK_testing_sketch.zip: sha256 .* does not match"):
        run_fetch(params, data)


def test_archive_dir_with_tar_gz(tmp_path):
    data = tmp_path / "data"
    params = cuhk_params(data, "", source="archive_dir")
    (data / "archives").mkdir(parents=True)
    for key, entries in cuhk_entries().items():
        name = FILES[key].replace(".zip", ".tar.gz")
        params["data"]["cuhk"]["archives"][key]["file"] = name
        (data / "archives" / name).write_bytes(tar_bytes(entries))
    assert run_fetch(params, data) == N_TRAIN + N_TEST


def test_folder_source_nested_and_split_layouts(tmp_path):
    src = tmp_path / "mine"
    for subset, pairs in (("train", TRAIN), ("test", TEST)):
        for photo, sketch in pairs:
            v = pair_value(_stem(photo))
            for rel, blob in ((f"photos/nested/{photo}", jpeg(v, colour=True)), (f"sketches/{sketch}", jpeg(v, colour=False))):
                dest = src / subset / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(blob)
    data = tmp_path / "data"
    params = cuhk_params(data, "", source="folder")
    params["data"]["folder"] = {"path": str(src), "photos": "photos", "sketches": "sketches"}
    assert run_fetch(params, data) == N_TRAIN + N_TEST
    assert {p.subset for p in read_manifest(data / "raw")} == {"train", "test"}
    # one flat folder: every pair is "train"
    params["data"]["folder"]["path"] = str(src / "train")
    assert run_fetch(params, data) == N_TRAIN
    (src / "train" / "sketches" / "sketch" / "F2-005-01-sz1.jpg").unlink()
    with pytest.raises(DataError, match="photo without a sketch: .*f-005-01.jpg"):
        run_fetch(params, data)


def test_dangling_symlink_among_the_photos_is_named_as_a_broken_link(tmp_path):
    src = tmp_path / "mine"
    for photo, sketch in TRAIN:
        v = pair_value(_stem(photo))
        for rel, blob in ((f"photos/{photo}", jpeg(v, colour=True)), (f"sketches/{sketch}", jpeg(v, colour=False))):
            dest = src / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
    photo = src / "photos" / TRAIN[0][0]
    photo.unlink()
    photo.symlink_to(tmp_path / "gone" / "f-005-01.jpg")  # the link stays, its target is gone
    data = tmp_path / "data"
    params = cuhk_params(data, "", source="folder")
    params["data"]["folder"] = {"path": str(src), "photos": "photos", "sketches": "sketches"}
    with pytest.raises(DataError) as err:
        run_fetch(params, data)
    message = str(err.value)
    assert "broken symbolic link" in message and str(photo) in message and "gone/f-005-01.jpg" in message
    assert "without a photo" not in message


def test_missing_folder_param_is_a_param_error(tmp_path):
    params = cuhk_params(tmp_path / "data", "", source="folder")
    params["data"]["folder"]["path"] = None
    with pytest.raises(ParamError, match="data.folder.path"):
        run_fetch(params, tmp_path / "data")


# --------------------------------------------------------------------------- extraction limits

def test_extraction_size_and_count_limits(tmp_path):
    big = tmp_path / "big.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/zeros.bin", b"\0" * 200_000)  # compresses to ~200 bytes
    big.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="big.zip: refused: expands to"):
        archives.extract(big, tmp_path / "out", max_bytes=100_000)
    with pytest.raises(DataError, match="big.zip: refused: 1 entries"):
        archives.extract(big, tmp_path / "out2", max_members=0)
    assert not list((tmp_path / "out").rglob("*.bin"))
    assert archives.extract(big, tmp_path / "out3") == [archives.PurePosixPath("a/zeros.bin")]


# --------------------------------------------------------------------------- cleaning

def _face(h=250, w=200, bg=(90, 170, 230)):
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bg
    cv2.ellipse(img, (w // 2, h // 2), (60, 80), 0, 0, 360, (200, 170, 150), -1)
    cv2.ellipse(img, (w // 2, h // 2 - 60), (65, 40), 0, 180, 360, (30, 25, 20), -1)  # hair
    return img


def test_black_alignment_borders_are_filled_and_content_kept():
    img = _face()
    m = cv2.getRotationMatrix2D((100, 125), 3.0, 1.0)
    m[1, 2] += 12  # shifted down: a black bar on top, wedges on the sides
    warped = cv2.warpAffine(img, m, (200, 250), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    out, changed = cleaning.fill_black_borders(warped)
    assert changed
    edge = np.ones(out.shape[:2], bool)
    edge[25:-25, 25:-25] = False
    assert (warped.max(axis=2)[edge] < 40).sum() > 500
    assert (out.max(axis=2)[edge] < 40).sum() < 20
    assert np.array_equal(out[60:190, 50:150], warped[60:190, 50:150])  # the face is untouched


def test_dark_content_touching_the_edge_is_not_a_border():
    img = _face()
    cv2.circle(img, (20, 249), 45, (15, 12, 10), -1)   # dark hair/clothes at a corner
    cv2.rectangle(img, (120, 235), (150, 249), (10, 10, 10), -1)
    out, changed = cleaning.fill_black_borders(img)
    assert not changed and out is img


def _sketch(label: str | None):
    img = np.full((250, 200, 3), 250, np.uint8)
    cv2.ellipse(img, (100, 120), (70, 90), 0, 0, 360, (120, 120, 120), 2)
    for x in range(40, 160, 3):  # hair strokes from row 30 down
        cv2.line(img, (x, 30 + (x % 7)), (x + 4, 70), (60, 60, 60), 1)
    if label:  # like the scanner's labels: small, separate characters
        for i, ch in enumerate(label):
            cv2.putText(img, ch, (25 + 6 * i, 12), cv2.FONT_HERSHEY_PLAIN, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
    return img


def test_printed_label_is_removed_and_only_it():
    dirty = _sketch("f-011-01.jpg (298x361x16M JPEG)")
    out, changed = cleaning.remove_label(dirty)
    assert changed
    assert out[:20].min() > 200                                  # the label is gone
    assert np.array_equal(out[30:], dirty[30:])                  # the hair is not touched
    cut = _sketch(None)
    cut[:4, 120:160] = dirty[10:14, 120:160]                     # only a label's tail, cut by the top edge
    assert cleaning.remove_label(cut)[1]
    clean = _sketch(None)
    out, changed = cleaning.remove_label(clean)
    assert not changed and out is clean


def test_grey_sketches_and_preprocess_switches(tmp_path):
    tinted = np.full((25, 20, 3), 200, np.uint8)
    tinted[..., 2] = 205
    grey, changed = cleaning.to_grey(tinted)
    assert changed and cleaning.is_grey(grey)
    # preprocess: a black-bordered photo, an RGB-stored sketch with a label; switches on and off
    from facesketch.data.manifest import Pair, write_manifest

    raw = tmp_path / "raw"
    raw.mkdir()
    photo = _face()
    photo[:15] = 0
    sketch = _sketch("m-023-01.jpg (298x361x16M JPEG)")
    sketch[..., 0] = np.clip(sketch[..., 0].astype(int) + 6, 0, 255)
    cv2.imwrite(str(raw / "p.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(raw / "s.png"), cv2.cvtColor(sketch, cv2.COLOR_RGB2BGR))
    write_manifest(raw, [Pair("m-023-01", "p.png", "s.png", "train")])
    params = {"image_size": 64, "preprocess": {"fill_black_borders": True, "remove_sketch_label": True,
                                               "grey_sketches": True}}
    preprocess(params, raw, tmp_path / "on" / "pairs.npz")
    from facesketch.core import fileio

    report = fileio.read_json(tmp_path / "on" / "cleaning.json")["changed"]
    assert report == {"photo_borders": ["m-023-01"], "sketch_borders": [], "sketch_label": ["m-023-01"],
                      "sketch_grey": ["m-023-01"]}
    with np.load(tmp_path / "on" / "pairs.npz") as z:
        assert z["photos"][0, :3].max(axis=-1).min() > 40 and cleaning.is_grey(z["sketches"][0])
    params["preprocess"] = {k: False for k in params["preprocess"]}
    preprocess(params, raw, tmp_path / "off" / "pairs.npz")
    with np.load(tmp_path / "off" / "pairs.npz") as z:
        assert z["photos"][0, :3].max() < 40 and not cleaning.is_grey(z["sketches"][0])
    params["preprocess"] = {"fill_borders": True}
    with pytest.raises(ParamError, match="preprocess.fill_borders"):
        preprocess(params, raw, tmp_path / "bad" / "pairs.npz")
