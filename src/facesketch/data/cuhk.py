"""The real-data sources of the fetch stage: ``cuhk``, ``archive_dir`` and ``folder``.

- ``cuhk``: download the CUHK student set's four archives (training photos
  and sketches, 88 pairs; testing photos and sketches, 100 pairs) with pooch
  into a download cache (``data.cuhk.download_dir``, outside ``data/raw``,
  which DVC empties before each fetch), checking the sha256 given in params,
  retrying failed downloads; archives already in the cache are not fetched
  again. ``file://`` URLs (a local mirror) are copied the same way.
- ``archive_dir``: the same archives already on disk, in ``data.archive_dir``.
- ``folder``: any folder of paired images: ``photos/`` and ``sketches/``
  (or ``train/`` and ``test/``, each holding both).

Each fills the empty folder it is given (fetch's temporary ``data/raw``)
with the images, laid out as ``<subset>/photos/...`` and
``<subset>/sketches/...``, and ``pairs.csv``.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from facesketch.core import schema
from facesketch.core.params import section
from facesketch.core.errors import DataError, ParamError
from facesketch.data import archives, pairing
from facesketch.data.manifest import Pair, write_manifest
from facesketch.data.pairing import ImageFile

ROLES = schema.ROLES
ROLE_DIRS = {"photo": "photos", "sketch": "sketches"}  # data/raw/<subset>/<dir>/...
SUBSETS = schema.SUBSETS
PAGE = schema.CUHK_PAGE


@dataclass(frozen=True)
class Archive:
    key: str            # train_photo, train_sketch, test_photo, test_sketch
    subset: str         # train | test
    role: str           # photo | sketch
    file: str           # CUHK_training_photo.zip
    url: str | None     # where the cuhk source downloads it from (None: base_url is empty)
    sha256: str | None  # None: not checked (the hash is printed so it can be pinned)


# --------------------------------------------------------------------------- params

def _strict(params: dict[str, Any]) -> bool:
    return section(params, "data", required=True).strict


def cuhk_archives(params: dict[str, Any]) -> tuple[list[Archive], schema.Cuhk]:
    """The archives of ``data.cuhk`` for the subsets asked for, checked; and the section itself."""
    cfg = section(params, "data", required=True).cuhk
    if cfg is None:
        raise ParamError("params.yaml: missing key 'data.cuhk'")
    base_url = cfg.base_url or ""
    out = []
    for subset in [s for s in SUBSETS if s in cfg.subsets]:
        for role in ROLES:
            key = f"{subset}_{role}"
            entry = getattr(cfg.archives, key)  # the schema made sure the subsets' archives are there
            url = entry.url or (base_url.rstrip("/") + "/" + entry.file if base_url else None)
            out.append(Archive(key, subset, role, entry.file, url, entry.sha256.lower() if entry.sha256 else None))
    return out, cfg


# --------------------------------------------------------------------------- download

def _copy_file_url(url: str, output_file: str, pooch: Any) -> None:
    """A pooch downloader for file:// URLs (a local mirror): a plain copy."""
    src = Path(url2pathname(unquote(urlparse(url).path)))
    with open(src, "rb") as f, open(output_file, "wb") as out:
        shutil.copyfileobj(f, out, 1 << 20)


def _downloader(url: str, timeout: float, progressbar: bool):
    import pooch

    scheme = urlparse(url).scheme.lower()
    if scheme == "file":
        return _copy_file_url
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout, chunk_size=1 << 16)
    try:
        return pooch.choose_downloader(url, progressbar=progressbar)
    except ValueError:
        raise DataError(f"{url}: unsupported URL scheme '{scheme}'; use http(s)://, ftp:// or file://") from None


def _by_hand(arch: Archive, download_dir: Path, page: str, all_files: list[str] | None = None) -> str:
    others = [f for f in (all_files or []) if f != arch.file]
    also = f" (this run also needs {', '.join(others)})" if others else ""
    return (f"Download {arch.file} by hand (from {page} or a mirror) and put it in {download_dir}/ "
            f"(the next run finds it there and does not download it again){also}, or put all the "
            f"archives in one folder and set data.source: archive_dir and data.archive_dir: that folder.")


def download(arch: Archive, download_dir: Path, *, retries: int = 2, timeout: float = 60,
             page: str = PAGE, progressbar: bool | None = None, all_files: list[str] | None = None) -> Path:
    """The archive in ``download_dir``: already there (and matching its sha256), or downloaded now.

    pooch downloads to a temporary file in ``download_dir`` and renames it
    only once complete and matching the hash, retrying ``retries`` times; a
    failed download leaves nothing behind.
    """
    import pooch
    import requests

    download_dir = Path(download_dir)
    created = not download_dir.exists()
    progressbar = sys.stderr.isatty() if progressbar is None else progressbar
    fetcher = pooch.create(
        path=download_dir, base_url="", registry={arch.file: f"sha256:{arch.sha256}" if arch.sha256 else None},
        urls={arch.file: arch.url}, retry_if_failed=retries,
    )
    cached = download_dir / arch.file
    stale = cached.exists() and arch.sha256 is not None and pooch.file_hash(str(cached)) != arch.sha256
    try:
        path = Path(fetcher.fetch(arch.file, downloader=_downloader(arch.url, timeout, progressbar)))
    except (requests.exceptions.RequestException, ValueError, OSError) as exc:
        if created and download_dir.is_dir() and not any(download_dir.iterdir()):
            download_dir.rmdir()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        got = re.search(r"but got ([0-9a-fA-F]{64})", str(exc))
        if got:
            raise DataError(
                f"{arch.file}: the file from {arch.url} does not match the sha256 in params.yaml "
                f"(data.cuhk.archives.{arch.key}.sha256): expected {arch.sha256}, got {got.group(1)}; "
                f"refused and deleted. The source changed or sent a broken file; get the archive from "
                f"{page} and check it, or correct the sha256."
            ) from None
        note = (f" (the {arch.file} already in {download_dir} does not match the sha256 in params.yaml)"
                if stale else "")
        attempts = 1 + retries if urlparse(arch.url).scheme.lower() in ("http", "https", "ftp") else 1
        raise DataError(
            f"could not download {arch.file} from {arch.url} ({reason}; {attempts} attempt(s)){note}. "
            + _by_hand(arch, download_dir, page, all_files)
        ) from None
    if arch.sha256 is None:
        print(f"fetch: {arch.file} sha256 {pooch.file_hash(str(path))} (set it as "
              f"data.cuhk.archives.{arch.key}.sha256 to pin it)", file=sys.stderr)
    return path


def _local_archive(arch: Archive, folder: Path) -> Path:
    """The archive in a folder the user filled (source archive_dir), its sha256 checked."""
    import pooch

    path = Path(folder) / arch.file
    if not path.is_file():
        matches = [p for p in Path(folder).glob("*") if p.name.lower() == arch.file.lower()] if Path(folder).is_dir() else []
        if not matches:
            raise DataError(f"{path}: not found. data.source: archive_dir expects the archive {arch.file} "
                            f"in {folder}/ (get it from {PAGE} or a mirror), or set data.archive_dir")
        path = matches[0]
    if arch.sha256 is not None:
        got = pooch.file_hash(str(path))
        if got != arch.sha256:
            raise DataError(f"{path}: sha256 {got} does not match data.cuhk.archives.{arch.key}.sha256 "
                            f"({arch.sha256}); refused: a different or damaged file")
    return path


# --------------------------------------------------------------------------- sources

def _unpack(archive_files: list[tuple[Archive, Path]], out_dir: Path, strict: bool,
            forget_bad: bool, download_dir: Path | None = None) -> list[Pair]:
    """Extract each archive to ``out_dir/<subset>/photos|sketches``, pair by subset, check, write pairs.csv."""
    files: dict[tuple[str, str], list[ImageFile]] = {}
    for arch, path in archive_files:
        dest = out_dir / arch.subset / ROLE_DIRS[arch.role]
        try:
            members = archives.extract(path, dest)
        except DataError as exc:
            if forget_bad and "not a zip or tar archive" in str(exc):
                path.unlink(missing_ok=True)  # don't keep serving a web page from the cache
                raise DataError(f"{exc}; deleted it from the download cache. "
                                + _by_hand(arch, download_dir or path.parent, PAGE)) from None
            raise
        images = [m for m in members if pairing.is_image_name(m)]
        if not images:
            raise DataError(f"{path}: contains no images ({', '.join(pairing.IMAGE_EXTENSIONS)}); "
                            f"is it the right archive for {arch.key}?")
        rel_root = dest.relative_to(out_dir).as_posix()
        files[(arch.subset, arch.role)] = [ImageFile(f"{rel_root}/{m.as_posix()}", f"{arch.file}:{m.as_posix()}")
                                           for m in images]
    return _pair_and_check(files, out_dir, strict)


def _pair_and_check(files: dict[tuple[str, str], list[ImageFile]], out_dir: Path, strict: bool) -> list[Pair]:
    pairs: list[Pair] = []
    for subset in SUBSETS:
        if (subset, "photo") in files or (subset, "sketch") in files:
            pairs += pairing.pair_images(files.get((subset, "photo"), []), files.get((subset, "sketch"), []),
                                         subset=subset, strict=strict)
    pairing.check_unique_ids(pairs)
    used = {p.photo for p in pairs} | {p.sketch for p in pairs}
    pairing.check_decodable(out_dir, [f for fs in files.values() for f in fs if f.rel in used])
    write_manifest(out_dir, pairs)
    return pairs


def fetch_cuhk(params: dict[str, Any], out_dir: Path, download_dir: Path | None = None) -> int:
    """Source ``cuhk``: download (or reuse) the archives, extract, pair."""
    archs, cfg = cuhk_archives(params)
    download_dir = Path(download_dir or cfg.download_dir)
    retries, timeout, page = cfg.retries, cfg.timeout, cfg.page
    for a in archs:
        if not a.url:
            raise ParamError(f"params.yaml: data.cuhk.archives.{a.key}.url is not set and data.cuhk.base_url is empty")
    names = [a.file for a in archs]
    got = [(a, download(a, download_dir, retries=retries, timeout=timeout, page=page, all_files=names))
           for a in archs]
    return len(_unpack(got, Path(out_dir), _strict(params), forget_bad=True, download_dir=download_dir))


def fetch_archive_dir(params: dict[str, Any], out_dir: Path, archive_dir: Path | None = None) -> int:
    """Source ``archive_dir``: the same archives, already in a folder; nothing is downloaded."""
    archs, _ = cuhk_archives(params)
    folder = archive_dir or section(params, "data", required=True).archive_dir
    if not folder:
        raise ParamError("params.yaml: data.archive_dir is not set: the folder holding "
                         + ", ".join(a.file for a in archs))
    got = [(a, _local_archive(a, Path(folder))) for a in archs]
    return len(_unpack(got, Path(out_dir), _strict(params), forget_bad=False))


def fetch_folder(params: dict[str, Any], out_dir: Path, folder: Path | None = None) -> int:
    """Source ``folder``: ``photos/`` + ``sketches/`` (or ``train/`` and ``test/`` holding both), copied in."""
    cfg = section(params, "data", required=True).folder
    root = folder or cfg.path
    if not root:
        raise ParamError("params.yaml: data.folder.path is not set: the folder holding photos/ and sketches/")
    root = Path(root)
    names = {"photo": cfg.photos, "sketch": cfg.sketches}
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (data.folder.path)")
    split_dirs = [s for s in SUBSETS if (root / s).is_dir()]
    layout = [(s, root / s) for s in split_dirs] if split_dirs else [("train", root)]
    out_dir = Path(out_dir)
    files: dict[tuple[str, str], list[ImageFile]] = {}
    for subset, base in layout:
        for role in ROLES:
            src_dir = base / names[role]
            if not src_dir.is_dir():
                raise DataError(f"{src_dir}: folder not found; data.source: folder expects {names['photo']}/ and "
                                f"{names['sketch']}/ in {root} (or in {root}/train and {root}/test)")
            rels = pairing.list_images(src_dir)
            if not rels:
                raise DataError(f"{src_dir}: no images ({', '.join(pairing.IMAGE_EXTENSIONS)})")
            listed = []
            for rel in rels:
                dest_rel = f"{subset}/{ROLE_DIRS[role]}/{rel.as_posix()}"
                dest = out_dir / dest_rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_dir / rel, dest)
                listed.append(ImageFile(dest_rel, str(src_dir / rel)))
            files[(subset, role)] = listed
    return len(_pair_and_check(files, out_dir, _strict(params)))
