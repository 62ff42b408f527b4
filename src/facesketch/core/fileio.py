"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output.

Every writer goes to a temporary file in the destination's own folder (so the
final rename stays on one filesystem and is atomic), flushes it to disk
(fsync), renames it into place and flushes the folder, so after a power cut
the destination holds the old content or the new, never an empty file.

Temporary files and folders are created with the modes ``open`` and ``mkdir``
give (0666 and 0777 less the process's umask, applied by the kernel), not
``tempfile``'s private 0600/0700: other users, or a container with another
uid, can read the outputs. The umask is never read or changed.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from facesketch.core.errors import FacesketchError


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to disk; a folder where the system cannot is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return  # e.g. Windows cannot open a folder
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():  # some filesystems refuse fsync on a folder; a file's must succeed
            raise
    finally:
        os.close(fd)


def _create(parent: Path, prefix: str, suffix: str, make: Callable[[Path], None]) -> Path:
    """A new entry with an unused random name in ``parent``, made by ``make`` (which fails if it exists)."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            make(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no unused temporary name for {prefix}*{suffix}")


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as for open()


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success flush it, rename it to ``dest``, flush the folder."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create(dest.parent, f".{dest.name}.", suffix or ".tmp", _new_file)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, dest)
        _fsync(dest.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest: str | os.PathLike, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def write_json(dest: str | os.PathLike, obj: Any) -> None:
    write_text(dest, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks (model files are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_npz(dest: str | os.PathLike, **arrays: np.ndarray) -> None:
    # np.savez appends ".npz" to names without it, so keep that suffix on the temp file
    with atomic_path(dest, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Build a whole folder in a temp sibling, then swap it in for ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # made as mkdir makes a folder (0755 under umask 022), so other users can read the models and data
    tmp = _create(dest.parent, f".{dest.name}.", "", os.mkdir)
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    _fsync(Path(root, name))
            _fsync(Path(root))
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        _fsync(dest.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class WriteFailed(FacesketchError):
    """Writing an output or a checkpoint failed (disk full, read-only, not a folder): one line naming
    the path and the errno, never a traceback."""

    def __init__(self, path: str | os.PathLike, exc: OSError, what: str = ""):
        self.path, self.errno = Path(path), exc.errno
        code = errno_codes.errorcode.get(exc.errno or 0, "")
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        super().__init__(f"cannot write {path}: {reason}" + (f" (errno {exc.errno}, {code})" if exc.errno else "")
                         + (f"; {what}" if what else ""))


def check_writable(*folders: str | os.PathLike, what: str = "") -> None:
    """Make each folder and write, then remove, a small file in it: a read-only folder, a file
    in the way or a full disk shows up here, before any work, as a WriteFailed."""
    for folder in folders:
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = _create(folder, ".write-check.", "", _new_file)
            fd = os.open(probe, os.O_WRONLY)
            try:
                os.write(fd, b"x" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            raise WriteFailed(folder, exc, what) from None
