"""Matching photos to sketches by their CUHK file names, and checking every image decodes.

The CUHK rule (also right for plain "same name" data sets): compare names
without their extension and ignoring case, drop a trailing ``-sz1`` from
the sketch name and map a leading ``f2-``/``m2-`` to ``f-``/``m-``:
``sketch/F2-005-01-sz1.jpg`` pairs with ``photo/f-005-01.jpg``. ``f1-``/``m1-``
(the testing set's second series) are kept as they are. The key, e.g.
``f-005-01``, becomes the pair id. Files may sit in nested folders.
"""

from __future__ import annotations

import errno
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2

from facesketch.core.errors import DataError
from facesketch.data.manifest import Pair

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")
SUBSET_NAMES = {"train": "training", "test": "testing"}
_SERIES = re.compile(r"^([fm])2-")
MAX_LISTED = 20


@dataclass(frozen=True)
class ImageFile:
    rel: str     # path relative to the raw folder (posix), what pairs.csv records
    origin: str  # how to name it to the user: "CUHK_training_sketch.zip:sketch/F2-005-01-sz1.jpg"


def pair_key(name: str) -> str:
    """``F2-005-01-sz1.jpg`` -> ``f-005-01``; ``f1-001-01.jpg`` -> ``f1-001-01``."""
    stem = PurePosixPath(name.replace("\\", "/")).name
    for ext in IMAGE_EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    key = stem.lower().strip()
    if key.endswith("-sz1"):
        key = key[:-4]
    return _SERIES.sub(r"\1-", key)


def is_image_name(path: PurePosixPath | Path) -> bool:
    """An image by its extension, not hidden, not macOS zip litter (``__MACOSX/``, ``._x.jpg``)."""
    parts = PurePosixPath(*Path(path).parts).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return PurePosixPath(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def list_images(root: Path) -> list[PurePosixPath]:
    """Image files under ``root`` (any depth), relative to it, sorted.

    A symbolic link whose target is gone is a DataError naming it: skipped, it
    would resurface as its partner's "without a photo/sketch", naming the wrong file.
    """
    root = Path(root)
    found, broken, loops = [], [], []
    for p in root.rglob("*"):
        rel = PurePosixPath(p.relative_to(root).as_posix())
        if not is_image_name(rel):
            continue
        if p.is_file():
            found.append(rel)
        elif p.is_symlink() and not p.exists():
            try:
                p.stat()
                broken.append(f"{p} -> {p.readlink()}")
            except OSError as exc:  # ELOOP: a link that leads back to itself, not a missing file
                (loops if exc.errno == errno.ELOOP else broken).append(f"{p} -> {p.readlink()}")
    if loops:
        raise DataError(f"{len(loops)} symbolic link loop(s) among the images (each leads back to itself):"
                        + _listing(sorted(loops)) + "\npoint them at images or remove them")
    if broken:
        raise DataError(f"{len(broken)} broken symbolic link(s) among the images (the file each points to "
                        f"does not exist):" + _listing(sorted(broken)) + "\nfix or remove them")
    return sorted(found)


def _listing(items: list[str]) -> str:
    shown = items[:MAX_LISTED]
    more = f"\n  ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return "".join(f"\n  {s}" for s in shown) + more


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def pair_images(photos: list[ImageFile], sketches: list[ImageFile], *, subset: str,
                strict: bool = True) -> list[Pair]:
    """Pairs by CUHK name, sorted by id; duplicates or unpaired files: DataError listing them.

    With ``strict=False`` they are dropped with a warning instead (a name
    that is duplicated is dropped entirely: which copy is right is unknown).
    """
    where = SUBSET_NAMES.get(subset, subset)
    by_key: dict[str, dict[str, list[ImageFile]]] = defaultdict(lambda: {"photo": [], "sketch": []})
    for role, files in (("photo", photos), ("sketch", sketches)):
        for f in files:
            by_key[pair_key(f.rel)][role].append(f)

    problems = []
    pairs = []
    for key in sorted(by_key):
        p, s = by_key[key]["photo"], by_key[key]["sketch"]
        if len(p) > 1 or len(s) > 1:
            dup = p if len(p) > 1 else s
            problems.append(f"duplicate {'photo' if dup is p else 'sketch'} '{key}': "
                            + ", ".join(f.origin for f in dup))
        elif not s:
            problems.append(f"photo without a sketch: {p[0].origin}")
        elif not p:
            problems.append(f"sketch without a photo: {s[0].origin}")
        else:
            pairs.append(Pair(key, p[0].rel, s[0].rel, subset))
    if problems:
        summary = (f"{where} set: {len(problems)} file(s) that cannot be paired "
                   f"(pairing rule: name without extension, case ignored, '-sz1' dropped, F2-/M2- -> f-/m-):"
                   + _listing(problems))
        if strict:
            raise DataError(summary + "\nfix or remove them, or set data.strict: false to drop them")
        warn(summary + "\ndropped (data.strict: false)")
    if not pairs:
        raise DataError(f"{where} set: no photo/sketch pairs found "
                        f"({len(photos)} photos, {len(sketches)} sketches)")
    return pairs


def check_unique_ids(pairs: list[Pair]) -> None:
    """A person in two sets (e.g. both the training and the testing archive) is an error."""
    seen: dict[str, str] = {}
    clashes = []
    for p in pairs:
        if p.pair_id in seen:
            clashes.append(f"'{p.pair_id}' in both the {SUBSET_NAMES.get(seen[p.pair_id], seen[p.pair_id])} "
                           f"and the {SUBSET_NAMES.get(p.subset, p.subset)} set")
        seen[p.pair_id] = p.subset
    if clashes:
        raise DataError(f"{len(clashes)} pair id(s) appear twice:" + _listing(clashes))


def _truncated_jpeg(path: Path) -> bool:
    """A JPEG must end with its end-of-image marker (OpenCV decodes a cut one, greying the rest)."""
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return False
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 1024))
        tail = f.read()
    return b"\xff\xd9" not in tail


def check_decodable(raw_dir: Path, files: list[ImageFile]) -> None:
    """Every image must decode: DataError naming each one that does not."""
    bad = []
    for f in files:
        path = Path(raw_dir) / f.rel
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None or img.size == 0:
            bad.append(f.origin)
        elif _truncated_jpeg(path):
            bad.append(f"{f.origin} (truncated)")
    if bad:
        raise DataError(f"{len(bad)} image(s) cannot be decoded (corrupt or not an image):" + _listing(bad))
