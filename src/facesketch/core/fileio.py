"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output.

Every writer goes to a temporary file in the destination's own folder (so the
final rename stays on one filesystem and is atomic) and renames it into place.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facesketch.core.errors import FacesketchError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it to ``dest`` on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        # mkdtemp makes 0700; the finished folder gets what mkdir would give it (0755 under umask 022),
        # so other users (or a container with another uid) can read the models and data
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
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
            fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
            try:
                os.write(fd, b"x" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            raise WriteFailed(folder, exc, what) from None
