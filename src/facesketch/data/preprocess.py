"""The preprocess stage: decode every pair, clean it, make it RGB and square, store as uint8.

Images are read by :func:`facesketch.core.images.read_rgb`, the reader
``facesketch predict`` uses (RGBA laid on white, EXIF orientation applied).

Cleaning (params ``preprocess:``, each step switchable, see cleaning.py):
black alignment borders filled in, the printed file-name label in some
sketches' top rows painted over, sketches made exactly grey. Which images
each step changed is written next to the arrays (``cleaning.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facesketch.core import fileio, schema
from facesketch.core.images import read_rgb, resize  # the reader `facesketch predict` uses too: same pixels
from facesketch.core.params import image_size, section
from facesketch.core.layout import PROCESSED_FILE, RAW_DIR
from facesketch.data import cleaning
from facesketch.data.manifest import read_manifest

CLEANING_STEPS = tuple(schema.Preprocess.model_fields)


def to_square(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size, as the study did (aspect not kept: 200x250 -> 256x256)."""
    return resize(img, size, size)


def cleaning_options(params: dict[str, Any]) -> dict[str, bool]:
    """The ``preprocess:`` switches (all on when the section is absent)."""
    return section(params, "preprocess").model_dump()


def clean_pair(photo: np.ndarray, sketch: np.ndarray, opts: dict[str, bool]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The cleaned photo and sketch, and what was done (e.g. ``["photo_borders", "sketch_label"]``)."""
    done = []
    if opts["grey_sketches"]:
        sketch, changed = cleaning.to_grey(sketch)
        if changed:
            done.append("sketch_grey")
    if opts["fill_black_borders"]:
        photo, changed = cleaning.fill_black_borders(photo)
        if changed:
            done.append("photo_borders")
        sketch, changed = cleaning.fill_black_borders(sketch)
        if changed:
            done.append("sketch_borders")
    if opts["remove_sketch_label"]:
        sketch, changed = cleaning.remove_label(sketch)
        if changed:
            done.append("sketch_label")
    return photo, sketch, done


def preprocess(params: dict[str, Any], raw_dir: Path = RAW_DIR, out_file: Path = PROCESSED_FILE) -> int:
    size = image_size(params)
    opts = cleaning_options(params)
    raw_dir, out_file = Path(raw_dir), Path(out_file)
    pairs = read_manifest(raw_dir)
    n = len(pairs)
    photos = np.empty((n, size, size, 3), np.uint8)
    sketches = np.empty((n, size, size, 3), np.uint8)
    source_sizes = np.empty((n, 2), np.int32)  # each photo's (height, width) before squaring: its face geometry's frame
    report: dict[str, list[str]] = {k: [] for k in ("photo_borders", "sketch_borders", "sketch_label", "sketch_grey")}
    for i, pair in enumerate(tqdm(pairs, desc="preprocess", unit="pair")):
        photo, sketch, done = clean_pair(read_rgb(raw_dir / pair.photo), read_rgb(raw_dir / pair.sketch), opts)
        for step in done:
            report[step].append(pair.pair_id)
        source_sizes[i] = photo.shape[:2]
        photos[i] = to_square(photo, size)
        sketches[i] = to_square(sketch, size)
    fileio.save_npz(
        out_file,
        ids=np.array([p.pair_id for p in pairs]),
        subsets=np.array([p.subset for p in pairs]),
        photos=photos,
        sketches=sketches,
        source_sizes=source_sizes,
    )
    fileio.write_json(out_file.parent / "cleaning.json", {"settings": opts, "pairs": n, "changed": report})
    print("preprocess cleaning: " + ", ".join(f"{k.replace('_', ' ')} {len(v)}" for k, v in report.items())
          + f" (of {n} pairs; list in {out_file.parent / 'cleaning.json'})")
    return n
