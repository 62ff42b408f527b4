"""The fetch stage: put raw photo/sketch pairs under data/raw, whatever the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from facesketch.core import fileio
from facesketch.core.params import get, section
from facesketch.core.errors import FacesketchError, ParamError
from facesketch.core.layout import RAW_DIR


def _fetch_synthetic(params: dict[str, Any], out_dir: Path) -> int:
    from facesketch.data.synthetic import generate_dataset

    cfg = section(params, "data", required=True).synthetic  # the schema made sure it is there
    return len(generate_dataset(out_dir, count=cfg.count, seed=cfg.seed))


def _fetch_cuhk(params: dict[str, Any], out_dir: Path) -> int:
    from facesketch.data.cuhk import fetch_cuhk

    return fetch_cuhk(params, out_dir)


def _fetch_archive_dir(params: dict[str, Any], out_dir: Path) -> int:
    from facesketch.data.cuhk import fetch_archive_dir

    return fetch_archive_dir(params, out_dir)


def _fetch_folder(params: dict[str, Any], out_dir: Path) -> int:
    from facesketch.data.cuhk import fetch_folder

    return fetch_folder(params, out_dir)


# Each source: a function that fills an empty folder with images and pairs.csv
# and returns the number of pairs.
SOURCES: dict[str, Callable[[dict[str, Any], Path], int]] = {
    "cuhk": _fetch_cuhk,                # download the CUHK archives (data.cuhk)
    "archive_dir": _fetch_archive_dir,  # the same archives, already in data.archive_dir
    "folder": _fetch_folder,            # any folder of paired images (data.folder)
    "synthetic": _fetch_synthetic,
}


def fetch(params: dict[str, Any], raw_dir: Path = RAW_DIR) -> int:
    source = get(params, "data.source")
    if source not in SOURCES:
        raise ParamError(
            f"params.yaml: data.source={source!r} is not available; expected one of: {', '.join(SOURCES)}"
        )
    # Build the whole folder aside and swap it in, so an interrupted fetch never
    # leaves a half-filled data/raw behind.
    try:
        with fileio.atomic_dir(raw_dir) as tmp:
            n = SOURCES[source](params, tmp)
    except FacesketchError as exc:
        if not Path(raw_dir).exists():  # DVC deleted it before running this stage: say it is not lost
            exc.args = (f"{exc}\n{raw_dir} is missing because DVC deletes a stage's outputs before running "
                        f"it; nothing is lost: the last fetched data is in DVC's cache. `dvc checkout "
                        f"{raw_dir}` restores it now, and the next `dvc repro` with the previous data "
                        f"settings restores it from the cache without fetching.",)
        raise
    return n
