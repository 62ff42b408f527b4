import pytest

from facesketch import io


def test_atomic_write_replaces_whole_file(tmp_path):
    dest = tmp_path / "a" / "x.json"
    io.write_json(dest, {"a": 1})
    io.write_json(dest, {"b": 2})
    assert io.read_json(dest) == {"b": 2}
    assert [p.name for p in dest.parent.iterdir()] == ["x.json"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    dest = tmp_path / "x.txt"
    io.write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_dir_swaps_in_whole_folder_or_nothing(tmp_path):
    dest = tmp_path / "raw"
    with io.atomic_dir(dest) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError):
        with io.atomic_dir(dest) as tmp:
            (tmp / "b").write_text("2")
            raise ValueError
    assert sorted(p.name for p in dest.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
