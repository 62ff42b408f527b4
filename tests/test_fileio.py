import pytest

from facesketch.core import fileio


def test_atomic_write_replaces_whole_file(tmp_path):
    dest = tmp_path / "a" / "x.json"
    fileio.write_json(dest, {"a": 1})
    fileio.write_json(dest, {"b": 2})
    assert fileio.read_json(dest) == {"b": 2}
    assert [p.name for p in dest.parent.iterdir()] == ["x.json"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    dest = tmp_path / "x.txt"
    fileio.write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_dir_swaps_in_whole_folder_or_nothing(tmp_path):
    dest = tmp_path / "raw"
    with fileio.atomic_dir(dest) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError):
        with fileio.atomic_dir(dest) as tmp:
            (tmp / "b").write_text("2")
            raise ValueError
    assert sorted(p.name for p in dest.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_atomic_dir_gets_the_default_folder_permissions(tmp_path):
    """As mkdir makes a folder (0755 under umask 022), not mkdtemp's private 0700:
    other users, or a container with another uid, can read models/<name>/ and data/raw/."""
    import stat

    with fileio.atomic_dir(tmp_path / "models" / "dense-f2s") as tmp:
        (tmp / "model.keras").write_text("x")
    (tmp_path / "plain").mkdir()
    mode = stat.S_IMODE((tmp_path / "models" / "dense-f2s").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o777 & ~fileio._UMASK
    if fileio._UMASK == 0o022:  # the usual default
        assert mode == 0o755
