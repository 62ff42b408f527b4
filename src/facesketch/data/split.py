"""The split stage: which pairs train, validate and test.

Splitting is over identities, not files, so one person's photo never trains
while their other photo tests. In CUHK names (``f-005-01``) the identity is
the name without its trailing image number.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.core import fileio
from facesketch.core import schema
from facesketch.core.params import choice, section
from facesketch.core.errors import DataError
from facesketch.core.layout import PROCESSED_FILE, SPLIT_FILE

PROTOCOLS = schema.PROTOCOLS
_IMAGE_NUMBER = re.compile(r"-\d+$")


def identity(pair_id: str) -> str:
    return _IMAGE_NUMBER.sub("", pair_id)


def _hold_out(ids: list[str], fraction: float, rng: np.random.Generator, *, at_least_one: bool) -> tuple[list[str], list[str]]:
    """Split ``ids`` into (kept, held out) by whole identities."""
    idents = sorted({identity(i) for i in ids})
    n_out = math.ceil(fraction * len(idents)) if fraction > 0 else 0
    if at_least_one:
        n_out = max(1, n_out)
    n_out = min(n_out, len(idents) - 1)
    out_idents = set(rng.permutation(idents)[:n_out].tolist()) if n_out > 0 else set()
    return [i for i in ids if identity(i) not in out_idents], [i for i in ids if identity(i) in out_idents]


def make_split(ids: list[str], subsets: list[str], *, protocol: str, test_fraction: float,
               val_fraction: float, seed: int) -> dict[str, Any]:
    """Deterministic for the same arguments; train, val and test never share an identity."""
    choice("split.protocol", protocol, PROTOCOLS)
    order = sorted(range(len(ids)), key=lambda k: ids[k])
    ids = [ids[k] for k in order]
    subsets = [subsets[k] for k in order]
    rng = np.random.default_rng(seed)
    if protocol == "random":
        if len({identity(i) for i in ids}) < 3:
            raise DataError(f"split: need at least 3 identities for train/val/test, got {len(ids)} pairs")
        rest, test = _hold_out(ids, test_fraction, rng, at_least_one=True)
    else:  # cuhk: the archives decide (88 training pairs, 100 testing pairs)
        rest = [i for i, s in zip(ids, subsets) if s == "train"]
        test = [i for i, s in zip(ids, subsets) if s == "test"]
        if not rest or not test:
            raise DataError(
                f"split.protocol=cuhk needs pairs from both the training and testing archives; "
                f"got {len(rest)} training and {len(test)} testing pairs (use protocol: random otherwise)"
            )
    train, val = _hold_out(rest, val_fraction, rng, at_least_one=False)
    return {"protocol": protocol, "seed": seed, "train": train, "val": val, "test": test}


def make_folds(ids: list[str], folds: int, seed: int) -> list[dict[str, Any]]:
    """K-fold cross-validation splits over identities: every pair is tested in exactly one fold.

    The identities are permuted (seeded) and dealt round-robin into ``folds`` groups, so the folds
    differ in size by at most one identity; fold k tests group k and trains on the rest (no
    validation hold-out: the tuning protocol scores the held-out fold instead). Deterministic for
    the same ids (in any order), folds and seed.
    """
    idents = sorted({identity(i) for i in ids})
    if not 2 <= folds <= len(idents):
        raise DataError(f"split: {folds} folds need between 2 and {len(idents)} (the identities) folds")
    order = np.random.default_rng(seed).permutation(idents).tolist()
    fold_of = {ident: k % folds for k, ident in enumerate(order)}
    ids = sorted(ids)
    return [{"protocol": "folds", "seed": seed, "fold": k, "folds": folds,
             "train": [i for i in ids if fold_of[identity(i)] != k], "val": [],
             "test": [i for i in ids if fold_of[identity(i)] == k]} for k in range(folds)]


def settings(params: dict[str, Any]) -> dict[str, Any]:
    """The ``split:`` keys, checked: make_split's keyword arguments."""
    return section(params, "split", required=True).model_dump()


def split(params: dict[str, Any], processed_file: Path = PROCESSED_FILE, out_file: Path = SPLIT_FILE) -> dict[str, Any]:
    kwargs = settings(params)
    with np.load(processed_file) as data:
        ids = data["ids"].tolist()
        subsets = data["subsets"].tolist()
    result = make_split(ids, subsets, **kwargs)
    fileio.write_json(out_file, result)
    return result
