import numpy as np
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
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    if _umask() == 0o022:  # the usual default
        assert mode == 0o755


def test_atomic_files_get_the_default_file_permissions(tmp_path):
    """As open() makes a file (0644 under umask 022), not mkstemp's private 0600."""
    import stat

    fileio.write_text(tmp_path / "x.txt", "x")
    fileio.save_npz(tmp_path / "x.npz", a=np.zeros(2))
    (tmp_path / "plain").write_text("x")
    plain = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == plain
    assert stat.S_IMODE((tmp_path / "x.npz").stat().st_mode) == plain
    if _umask() == 0o022:
        assert plain == 0o644


def test_importing_fileio_leaves_the_umask_alone():
    """The umask is the process's, shared by its threads: fileio never sets it, not even to read it."""
    import inspect

    assert "umask(" not in inspect.getsource(fileio)


def test_writes_are_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    """fsync of the temp file before os.replace, then of the folder: a power cut leaves old or new."""
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(a))), real_replace(a, b)))
    fileio.write_text(tmp_path / "x.txt", "x")
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[0][1] == events[1][1] and events[2][1] == str(tmp_path)


def _umask() -> int:
    """The umask, read from /proc (Linux) without setting it; 0o022 assumed elsewhere."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
