"""Safe extraction of .zip and .tar(.gz/.bz2/.xz) archives.

Python's own extractors trust the archive: a member named ``../../x`` or
``/etc/x``, a symlink pointing outside, or a device node ends up wherever it
says. Here every member is checked before anything is written, and only
regular files and folders are created, under the target folder:

- refused: absolute names (``/x``, ``C:\\x``), names with a ``..`` part,
  symlinks, hard links, device, FIFO and other special entries, encrypted zip
  entries, duplicate names;
- refused: archives declaring more than ``max_bytes`` of content or more
  than ``max_members`` entries (zip bombs), and content that grows past what
  its entry declared while being written.

The caller extracts into a temporary folder (fetch's ``atomic_dir``), so a
refused or interrupted extraction leaves nothing in ``data/raw``.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from facesketch.core.errors import DataError

MAX_BYTES = 2 * 1024**3      # 2 GiB: the four CUHK archives together are ~10 MB
MAX_MEMBERS = 100_000
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_name(archive: Path, name: str) -> PurePosixPath | None:
    """The member's relative path, or a DataError if it would land outside; None for the root entry."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise DataError(f"{archive}: refused: entry '{name}' has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{archive}: refused: entry '{name}' points outside the archive folder ('..')")
    if not parts:
        return None
    return PurePosixPath(*parts)


def _copy_limited(src, dest: Path, archive: Path, name: str, declared: int, budget: list[int]) -> None:
    """Copy a member's stream to ``dest``, refusing more bytes than declared or than the budget left."""
    written = 0
    with open(dest, "xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > declared or written > budget[0]:
                raise DataError(f"{archive}: refused: entry '{name}' expands beyond its declared size "
                                f"or the archive's limit")
            out.write(chunk)
    budget[0] -= written


def _check_totals(archive: Path, count: int, total: int, max_bytes: int, max_members: int) -> None:
    if count > max_members:
        raise DataError(f"{archive}: refused: {count} entries, more than the limit of {max_members}")
    if total > max_bytes:
        raise DataError(f"{archive}: refused: expands to {total / 1e6:.1f} MB, more than the limit of "
                        f"{max_bytes / 1e6:.1f} MB")


def _mkdir(dest: Path, rel: PurePosixPath, archive: Path, name: str) -> None:
    try:
        dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{archive}: entry '{name}' cannot be written ({exc})") from None


def _prepare(dest: Path, rel: PurePosixPath, archive: Path, name: str, seen: set[PurePosixPath]) -> Path:
    key = PurePosixPath(str(rel).lower())
    if key in seen:
        raise DataError(f"{archive}: refused: entry '{name}' appears twice (names compared ignoring case)")
    seen.add(key)
    target = dest.joinpath(*rel.parts)
    # belt and braces: the resolved target must stay under dest
    if not target.resolve().is_relative_to(dest.resolve()):
        raise DataError(f"{archive}: refused: entry '{name}' would land outside {dest}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{archive}: entry '{name}' cannot be written ({exc})") from None
    return target


def _extract_zip(archive: Path, dest: Path, max_bytes: int, max_members: int) -> list[PurePosixPath]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        _check_totals(archive, len(infos), sum(i.file_size for i in infos), max_bytes, max_members)
        plan = []
        for info in infos:
            rel = _safe_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DataError(f"{archive}: refused: entry '{info.filename}' is a symbolic link")
            if mode and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise DataError(f"{archive}: refused: entry '{info.filename}' is a device or special file")
            if info.flag_bits & 0x1:
                raise DataError(f"{archive}: refused: entry '{info.filename}' is encrypted")
            plan.append((info, rel))
        budget = [max_bytes]
        seen: set[PurePosixPath] = set()
        files = []
        for info, rel in plan:
            if rel is None:
                continue
            if info.is_dir():
                _mkdir(dest, rel, archive, info.filename)
                continue
            target = _prepare(dest, rel, archive, info.filename, seen)
            try:
                with zf.open(info) as src:
                    _copy_limited(src, target, archive, info.filename, info.file_size, budget)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise DataError(f"{archive}: entry '{info.filename}' is corrupt ({exc})") from None
            files.append(rel)
    return files


def _extract_tar(archive: Path, dest: Path, max_bytes: int, max_members: int) -> list[PurePosixPath]:
    try:
        tf = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive}: not a readable tar archive ({exc})") from None
    with tf:
        members = []
        total = 0
        try:
            for m in tf:  # streams the headers; stops early on too many entries
                members.append(m)
                total += m.size if m.isfile() else 0
                _check_totals(archive, len(members), total, max_bytes, max_members)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{archive}: corrupt tar archive ({exc})") from None
        plan = []
        for m in members:
            rel = _safe_name(archive, m.name)
            if m.issym() or m.islnk():
                raise DataError(f"{archive}: refused: entry '{m.name}' is a link (to '{m.linkname}')")
            if not (m.isfile() or m.isdir()):
                raise DataError(f"{archive}: refused: entry '{m.name}' is a device or special file")
            plan.append((m, rel))
        budget = [max_bytes]
        seen: set[PurePosixPath] = set()
        files = []
        for m, rel in plan:
            if rel is None:
                continue
            if m.isdir():
                _mkdir(dest, rel, archive, m.name)
                continue
            target = _prepare(dest, rel, archive, m.name, seen)
            try:
                src = tf.extractfile(m)
                with src:
                    _copy_limited(src, target, archive, m.name, m.size, budget)
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise DataError(f"{archive}: entry '{m.name}' is corrupt ({exc})") from None
            files.append(rel)
    return files


def extract(archive: str | Path, dest: str | Path, *, max_bytes: int = MAX_BYTES,
            max_members: int = MAX_MEMBERS) -> list[PurePosixPath]:
    """Extract ``archive`` (zip or tar, by content) into ``dest``; the regular files written, relative to it.

    Raises DataError naming the archive and the offending entry when anything
    is unsafe; ``dest`` may then hold a partial extraction, so extract into a
    temporary folder that the caller discards on error.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest, max_bytes, max_members)
    if _is_tar(archive):
        return _extract_tar(archive, dest, max_bytes, max_members)
    with open(archive, "rb") as f:
        start = f.read(512)
    kind = _damaged_kind(start)
    if kind:  # it starts like an archive but cannot be read: a cut-off download, not another format
        raise DataError(f"{archive}: a {kind} archive, but truncated or damaged ({archive.stat().st_size:,} bytes, "
                        f"its end missing or corrupt); download it again")
    head = start.lstrip().lower()
    hint = " (it is an HTML page: the URL gave a web page, not the file)" if head.startswith((b"<!doctype", b"<html")) else ""
    raise DataError(f"{archive}: not a zip or tar archive{hint}")


_MAGIC = ((b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\x1f\x8b", "gzip (tar.gz)"), (b"BZh", "bzip2 (tar.bz2)"),
          (b"\xfd7zXZ\x00", "xz (tar.xz)"))


def _damaged_kind(start: bytes) -> str | None:
    """The archive format the first bytes announce (zip, gzip, ..., tar), or None."""
    for magic, kind in _MAGIC:
        if start.startswith(magic):
            return kind
    return "tar" if start[257:262] == b"ustar" else None


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False
