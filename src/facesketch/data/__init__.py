"""Data: fetch raw pairs, preprocess them to arrays, split them.

The contract between stages (paths relative to the repository root):

- ``data/raw/``: what ``fetch`` leaves: image files anywhere below it and
  ``data/raw/pairs.csv`` with columns ``pair_id, photo, sketch, subset``
  (photo/sketch paths relative to ``data/raw``; subset is ``train`` or
  ``test`` for the archive a pair came from, used by ``split.protocol: cuhk``).
- ``data/processed/pairs.npz``: ``ids``, ``subsets``, ``photos`` and
  ``sketches`` (uint8, N x S x S x 3, RGB).
- ``data/split/split.json``: ``train``, ``val`` and ``test`` lists of pair ids.
"""

from pathlib import Path

RAW_DIR = Path("data/raw")
MANIFEST_NAME = "pairs.csv"
PROCESSED_FILE = Path("data/processed/pairs.npz")
SPLIT_FILE = Path("data/split/split.json")
MANIFEST_COLUMNS = ("pair_id", "photo", "sketch", "subset")
