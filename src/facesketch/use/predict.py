"""The ``facesketch predict`` command: which pictures, where their outputs go, in which format.
The model on disk and its choice: :mod:`facesketch.use.catalog`; running it on pictures and faces:
:mod:`facesketch.use.predictor`.

An input is prepared exactly as the pipeline prepares its data: read by the
same reader (:mod:`facesketch.core.images`: RGB uint8, transparent pixels laid on
white, a JPEG's EXIF orientation applied), resized to the model's square
``image_size`` (from its ``info.json``) and scaled to floats in [0, 1]. The
output is resized back to the input's width x height.

Inference runs in fixed-size batches through ``model.predict_on_batch`` (one
traced graph for the whole run; the last batch is padded to the batch size,
so nothing is retraced per image or per batch).

Faces in ordinary pictures (the default; ``align=None`` keeps the squeeze above for
inputs that are already aligned like the training images): every face is found
(facesketch.faces.detect), cut out and aligned to the model's training geometry
(``data/faces/geometry.json``, the face_geometry stage's output), the model runs on each aligned crop, and
the outputs are either pasted back into the picture with a soft edge
(``paste``) or written as the aligned crops, one file per face (``crop``). A
picture without a face is reported by name; the others go on.

Which model, when none is named: among ``models/<model>-<task>/`` that exist
and have a ``metrics/<model>-<task>.json`` with a finite SSIM, the highest
SSIM (to 4 decimals) wins; ties go to the lower MAE, then the higher PSNR,
then fewer parameters (faster), then the name. A model without metrics is
never chosen by default; name it with ``--model``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from facesketch.core import fileio
from facesketch.core.errors import FacesketchError
from facesketch.core.images import encode_image, read_rgb, upscale_warning
from facesketch.use.predictor import Predictor, find_faces, no_face_message

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FORMATS = {"png": ".png", "jpg": ".jpg"}
ALIGN_MODES = ("paste", "crop")


# --- reading and writing images ----------------------------------------------------------------


def encode(img: np.ndarray, fmt: str, *, grey: bool = False, quality: int = 95) -> bytes:
    """RGB uint8 -> PNG/JPEG bytes (``grey``: one luminance channel, OpenCV's rounding of BT.601)."""
    import cv2

    return encode_image(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if grey else img, fmt, quality)


def output_name(path: Path, task: str, model: str, fmt: str) -> str:
    return f"{Path(path).stem}_{task}_{model}{FORMATS[fmt]}"


def face_output(dest: Path, k: int) -> Path:
    """The file for the k-th face (from 1, left to right) of the input whose output is ``dest``."""
    return dest.with_name(f"{dest.stem}_face{k}{dest.suffix}")


def default_align(task: str) -> str:
    """Photos (f2s) are pasted back into the picture; sketches (s2f) give the aligned face:
    a photo-like face laid into a drawing is rarely what its user wants."""
    return "paste" if task == "f2s" else "crop"


# --- collecting the inputs ---------------------------------------------------------------------


@dataclass
class Inputs:
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # inputs that give nothing, as messages


def collect_inputs(paths: Iterable[str | os.PathLike], *, recursive: bool = False,
                   exclude: Path | None = None) -> Inputs:
    """The image files named by ``paths``: files as given; folders' files with an image suffix.

    Hidden files, and anything under ``exclude`` (the output folder), are
    left out of folders. The same file twice is kept once.
    """
    out = Inputs()
    seen: set[Path] = set()
    exclude = Path(exclude).resolve() if exclude else None

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.files.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(
                f for f in p.glob(pattern)
                if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and not (exclude and (exclude == f.resolve().parent or exclude in f.resolve().parents))
            )
            if not found:
                where = "or its subfolders " if recursive else ""
                out.problems.append(f"{p}: folder has no images {where}"
                                    f"({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)})")
            for f in found:
                add(f)
        elif p.exists():
            add(p)
        else:
            out.problems.append(f"{p}: no such file or folder")
    return out


def skip_unreadable(files: list[Path], report: Callable[[str], None]) -> tuple[list[Path], list[str]]:
    """``files`` from the first readable image on, and the messages of those before it (each
    also passed to ``report``): the model is loaded only when there is something to run it on."""
    problems: list[str] = []
    for i, f in enumerate(files):
        try:
            read_rgb(f)
        except FacesketchError as exc:
            problems.append(str(exc))
            report(str(exc))
            continue
        return files[i:], problems
    return [], problems


def check_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove a file can be written there; a FacesketchError naming it if not."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".facesketch-probe.", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise FacesketchError(f"output folder {out_dir}: exists and is not a folder") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise FacesketchError(f"output folder {out_dir}: cannot be written ({reason})") from None


# --- the predict command -----------------------------------------------------------------------


@dataclass
class Result:
    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)     # messages, each naming the input or output
    seconds: float = 0.0
    faces: int = 0                                      # faces found and processed (with alignment)

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_outputs(files: list[Path], out_dir: Path, task: str, model: str, fmt: str) -> list[Path]:
    """One output path per input; a repeated name gets -2, -3, ... so nothing is overwritten in one run."""
    used: dict[str, int] = {}
    paths = []
    for f in files:
        name = output_name(f, task, model, fmt)
        key = name.lower()
        used[key] = used.get(key, 0) + 1
        if used[key] > 1:
            stem, ext = os.path.splitext(name)
            name = f"{stem}-{used[key]}{ext}"
        paths.append(Path(out_dir) / name)
    return paths


def predict_files(predictor: Predictor, files: list[Path], out_dir: Path, *, fmt: str = "png",
                  native: bool = False, grey: bool = False, quality: int = 95, align: str | None = None,
                  report: Callable[[str], None] | None = None, progress: bool = False) -> Result:
    """Run ``predictor`` on ``files`` and write the outputs to ``out_dir``.

    ``align``: None squeezes each whole picture into the model (one output each);
    "paste" aligns every face and pastes the outputs back (one output per picture);
    "crop" writes each face's output as its aligned crop (one file per face).
    A file that cannot be read, a picture without a face, or an output that cannot
    be written is reported through ``report`` and recorded in the result; the rest go on.
    """
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise FacesketchError(f"unknown output format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if align is not None and align not in ALIGN_MODES:
        raise FacesketchError(f"unknown alignment mode {align!r}; expected one of: {', '.join(ALIGN_MODES)}")
    if align == "paste" and native:
        raise FacesketchError("--size native goes with --crop or --no-align: a pasted face keeps the picture's size")
    report = report or (lambda msg: print(f"error: {msg}", file=sys.stderr))
    entry = predictor.entry
    geometry = entry.face_geometry if align else None
    targets = plan_outputs(files, out_dir, entry.task, entry.model, fmt)
    result = Result()
    t0 = time.perf_counter()
    term = shutil.get_terminal_size()  # (80, 24) where a pty reports 0 x 0, which hides tqdm's bar
    bar = tqdm(total=len(files), unit="img", desc=entry.name, disable=not progress, file=sys.stderr,
               ncols=min(100, term.columns), nrows=term.lines)
    say = (lambda msg: bar.write(f"error: {msg}", file=sys.stderr)) if progress else report

    def fail(msg: str) -> None:
        result.failed.append(msg)
        say(msg)

    def write(dest: Path, img: np.ndarray) -> bool:
        try:
            fileio.write_bytes(dest, encode(img, fmt, grey=grey, quality=quality))
        except (OSError, FacesketchError) as exc:
            fail(f"{dest}: cannot be written ({getattr(exc, 'strerror', None) or exc})")
            return False
        result.written.append(dest)
        return True

    step = min(predictor.batch_size, max(1, len(files)))  # one batch shape for the whole run
    try:
        for start in range(0, len(files), step):
            items = []  # (destination, picture, its aligned faces)
            for f, dest in zip(files[start:start + step], targets[start:start + step]):
                try:
                    image = read_rgb(f)
                    faces = find_faces(image, geometry, predictor.size) if align else []
                except FacesketchError as exc:
                    fail(str(exc))
                    bar.update(1)
                    continue
                if align and not faces:
                    fail(no_face_message(f))
                    bar.update(1)
                    continue
                if not align and (small := upscale_warning(str(f), image.shape, predictor.size)):
                    (bar.write if progress else print)(f"warning: {small}", file=sys.stderr)
                items.append((dest, image, faces))
            if not align:
                outs = predictor.predict([im for _, im, _ in items], native=native, batch_size=step)
                for (dest, _, _), out in zip(items, outs):
                    write(dest, out)
                    bar.update(1)
                continue
            crops = [a.crop for _, _, faces in items for a in faces]
            outs = iter(predictor.predict(crops, native=native and align == "crop", batch_size=step))
            for dest, image, faces in items:
                face_outs = [next(outs) for _ in faces]
                result.faces += len(faces)
                if align == "paste":
                    from facesketch.faces.align import paste

                    write(dest, paste(image, faces, face_outs))
                else:
                    for k, out in enumerate(face_outs, 1):
                        write(face_output(dest, k), out)
                bar.update(1)
    finally:
        bar.close()
    result.seconds = time.perf_counter() - t0
    return result

