"""Data: fetch raw pairs, preprocess them to arrays, split them.

The contract between stages (paths relative to the repository root):

- ``data/raw/`` (:mod:`facesketch.core.layout` spells these paths): what ``fetch`` leaves: image files anywhere below it and
  ``data/raw/pairs.csv`` with columns ``pair_id, photo, sketch, subset``
  (photo/sketch paths relative to ``data/raw``; subset is ``train`` or
  ``test`` for the archive a pair came from, used by ``split.protocol: cuhk``).
- ``data/processed/pairs.npz``: ``ids``, ``subsets``, ``photos`` and
  ``sketches`` (uint8, N x S x S x 3, RGB).
- ``data/split/split.json``: ``train``, ``val`` and ``test`` lists of pair ids.
"""

MANIFEST_COLUMNS = ("pair_id", "photo", "sketch", "subset")

__all__ = ["MANIFEST_COLUMNS"]
