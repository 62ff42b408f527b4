"""scripts/cuhk_benchmark.sh refuses bad arguments before it installs or runs anything."""

import subprocess

from conftest import REPO

SCRIPT = REPO / "scripts" / "cuhk_benchmark.sh"


def _run(*args, cwd=None):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_no_archive_dir_prints_usage():
    res = _run()
    assert res.returncode == 2
    assert "usage: bash scripts/cuhk_benchmark.sh ARCHIVE_DIR" in res.stderr


def test_a_missing_folder_is_named(tmp_path):
    res = _run(tmp_path / "nowhere")
    assert res.returncode == 2
    assert f"ARCHIVE_DIR '{tmp_path / 'nowhere'}' is not a folder" in res.stderr


def test_a_folder_without_the_training_archives_names_the_missing_one(tmp_path):
    (tmp_path / "CUHK_training_photo.zip").write_bytes(b"")
    res = _run(tmp_path)
    assert res.returncode == 2
    assert "has no CUHK_training_sketch.zip" in res.stderr
