"""Reading and writing ``pairs.csv``, the list of photo/sketch pairs fetch found."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from facesketch.core import fileio
from facesketch.core.errors import DataError
from facesketch.core.layout import MANIFEST_NAME
from facesketch.data import MANIFEST_COLUMNS


@dataclass(frozen=True)
class Pair:
    pair_id: str
    photo: str   # path relative to the raw folder
    sketch: str
    subset: str  # "train" | "test"


def write_manifest(raw_dir: Path, pairs: list[Pair]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for p in sorted(pairs, key=lambda p: p.pair_id):
        writer.writerow([p.pair_id, p.photo, p.sketch, p.subset])
    dest = Path(raw_dir) / MANIFEST_NAME
    fileio.write_text(dest, buf.getvalue())
    return dest


def read_manifest(raw_dir: Path) -> list[Pair]:
    path = Path(raw_dir) / MANIFEST_NAME
    if not path.exists():
        raise DataError(f"{path}: not found; run the fetch stage first (dvc repro fetch)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)}; expected {', '.join(MANIFEST_COLUMNS)}")
        pairs = [Pair(r["pair_id"], r["photo"], r["sketch"], r["subset"]) for r in reader]
    if not pairs:
        raise DataError(f"{path}: lists no pairs")
    return pairs
