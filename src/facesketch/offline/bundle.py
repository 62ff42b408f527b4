"""Build the offline study bundle (see the package doc).

The folder holds:

``src/facesketch``
    this package's source, as it is here (the runner puts it on ``sys.path``).
``wheels/``
    Keras and what it and the package need beyond NumPy and JAX (namex, optree, absl-py, rich and
    its markdown-it-py, mdurl and pygments, h5py, packaging, PyYAML, pydantic and its core), as
    binary wheels for every ``--python`` version asked for (CPython, manylinux x86-64): the device
    has no package index. Each at the version installed here, so the device runs what the suite
    tested (pydantic pins its core exactly: another pairing would not import).
``data/pairs.npz``, ``data/split.json``
    the workspace's preprocessed pairs and split (its ``data/processed`` and ``data/split``).
``params.yaml``
    the workspace's params, which the runner trains with (its flags may override a few).
``run.py``
    the entry point there; ``manifest.json``: every file's size and sha256, the versions.

Nothing runs here but pip's download; a bundle over ``--max-mib`` (60 by default: a device call
carries at most 64 MiB) is refused, naming its largest parts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from facesketch import __version__
from facesketch.core import fileio
from facesketch.core.errors import DataError
from facesketch.core.layout import PROCESSED_FILE, SPLIT_FILE

PACKAGE = Path(__file__).resolve().parents[1]          # src/facesketch
# Keras' own requirements and the project's, less what JAX brings (numpy, ml_dtypes, scipy, opt_einsum);
# the runner installs the same list where missing (runner.NEEDED)
WHEELS = ("keras", "namex", "optree", "absl-py", "rich", "markdown-it-py", "mdurl", "pygments", "h5py",
          "packaging", "pyyaml", "typing-extensions", "pydantic", "pydantic-core", "annotated-types",
          "typing-inspection")
PYTHONS = ("3.11", "3.12", "3.13")   # 3.11: this machine's proof; 3.12+: JAX 0.11's
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
MAX_MIB = 60


def pinned(names=WHEELS) -> list[str]:
    """``name==version`` of each, at the version installed here (a name not installed: unpinned)."""
    import importlib.metadata

    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def download_wheels(dest: Path, pythons=PYTHONS, names=WHEELS) -> list[Path]:
    """Binary wheels of ``names`` (pinned to this machine's versions) for each Python version; no
    dependencies resolved: the list is whole."""
    dest.mkdir(parents=True, exist_ok=True)
    names = pinned(names)
    for version in pythons:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", version, "--implementation", "cp", "--dest", str(dest),
               *[a for p in PLATFORMS for a in ("--platform", p)], *names]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise DataError(f"pip download for Python {version} failed:\n{res.stderr.strip()[-2000:]}")
    return sorted(dest.glob("*.whl"))


def build(out: Path, *, workspace: Path = Path("."), pythons=PYTHONS, max_mib: float = MAX_MIB,
          wheels_from: Path | None = None) -> dict:
    """Write the bundle folder ``out`` (replaced whole, atomically); returns its manifest."""
    workspace, out = Path(workspace), Path(out)
    processed, split = workspace / PROCESSED_FILE, workspace / SPLIT_FILE
    for path, stage in ((processed, "preprocess"), (split, "split")):
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro {stage}` in {workspace} first (at the image size "
                            "the study trains at)")
    with fileio.atomic_dir(out) as tmp:
        shutil.copytree(PACKAGE, tmp / "src" / "facesketch", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if wheels_from:  # wheels downloaded earlier (e.g. a cache): copied, not fetched again
            (tmp / "wheels").mkdir()
            for w in Path(wheels_from).glob("*.whl"):
                shutil.copy2(w, tmp / "wheels" / w.name)
        else:
            download_wheels(tmp / "wheels", pythons)
        (tmp / "data").mkdir()
        shutil.copy2(processed, tmp / "data" / "pairs.npz")
        shutil.copy2(split, tmp / "data" / "split.json")
        shutil.copy2(workspace / "params.yaml", tmp / "params.yaml")
        fileio.write_text(tmp / "run.py", RUN_PY)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        if total > max_mib * 2**20:
            largest = sorted(files, key=lambda p: -p.stat().st_size)[:5]
            raise DataError(f"the bundle would hold {total / 2**20:.1f} MiB, over {max_mib} MiB: largest "
                            + ", ".join(f"{p.relative_to(tmp)} ({p.stat().st_size / 2**20:.1f} MiB)" for p in largest))
        manifest = {"facesketch": __version__, "pythons": list(pythons), "bytes": total,
                    "files": {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": fileio.sha256_file(p)}
                              for p in files}}
        fileio.write_text(tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


# the bundle's entry point: only the standard library until the runner has set the path up
RUN_PY = '''"""The facesketch study on this machine: python3 run.py --out OUT [--epochs N] [--models ...]."""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))
from facesketch.offline import runner  # noqa: E402

sys.exit(runner.main(sys.argv[1:], bundle=HERE))
'''
