"""Running a trained model on the user's own images (``facesketch predict``).

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

import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from facesketch import TASKS
from facesketch.core import fileio
from facesketch.core import layout
from facesketch.core.errors import DataError, FacesketchError
from facesketch.core.images import read_rgb, resize, upscale_warning
from facesketch.core.layout import INFO_FILE, METRICS_DIR, MODEL_FILE, MODELS_DIR

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FORMATS = {"png": ".png", "jpg": ".jpg"}
ALIGN_MODES = ("paste", "crop")
DEFAULT_BATCH = 8
SSIM_DECIMALS = 4


class ModelNotFound(FacesketchError):
    """No usable model for the request."""


# --- the models on disk ------------------------------------------------------------------------


@dataclass
class ModelEntry:
    """One trained model in ``models/``, with its metrics when they exist."""

    name: str                     # "conv-f2s"
    model: str                    # "conv"
    task: str                     # "f2s"
    path: Path                    # models/conv-f2s
    info: dict[str, Any]
    metrics: dict[str, Any] | None = None
    metrics_file: Path | None = None
    stale: str | None = None      # why metrics/<name>.json is not used: it scored another model file

    @property
    def image_size(self) -> int:
        return int(self.info["image_size"])

    @property
    def face_geometry(self):
        """Where the model's training faces had their landmarks (facesketch.faces.geometry.FaceGeometry):
        the face_geometry stage's output beside the models folder (see facesketch.faces.geometry.for_model)."""
        from facesketch.faces.geometry import for_model

        try:
            return for_model(self.path, self.info)
        except ValueError as exc:
            raise FacesketchError(f"{exc}; run `dvc repro face_geometry`, or use --no-align") from None

    @property
    def ssim(self) -> float | None:
        return _finite((self.metrics or {}).get("ssim"))

    def rank_key(self) -> tuple:
        """Sort key, best first (see the module doc)."""
        m = self.metrics or {}
        mae, psnr = _finite(m.get("mae")), _finite(m.get("psnr"))
        return (-round(self.ssim, SSIM_DECIMALS),
                mae if mae is not None else math.inf,
                -psnr if psnr is not None else math.inf,
                int(self.info.get("predictor_parameters") or self.info.get("parameters") or 0),
                self.name)

    def summary(self) -> dict[str, Any]:
        training = self.info.get("training") or {}
        m = self.metrics or {}
        return {
            "name": self.name, "model": self.model, "task": self.task, "path": str(self.path),
            "image_size": self.info.get("image_size"), "epochs": self.info.get("epochs"),
            "optimizer": training.get("optimizer"), "loss": training.get("loss"),
            "learning_rate": training.get("learning_rate"),
            "parameters": self.info.get("parameters"),
            "predictor_parameters": self.info.get("predictor_parameters", self.info.get("parameters")),
            "mae": _finite(m.get("mae")), "psnr": _finite(m.get("psnr")), "ssim": _finite(m.get("ssim")),
            # SSIM rank-1: "ssim_rank1" since #26, "rank1" since the benchmark protocol, "accuracy" before
            "fsim": _finite(m.get("fsim")),
            "accuracy": _finite(m.get("ssim_rank1", m.get("rank1", m.get("accuracy")))),
            "metrics_file": str(self.metrics_file) if self.metrics_file else None,
            "metrics_stale": self.stale,
        }


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = fileio.read_json(path)
    except FileNotFoundError:
        raise FacesketchError(f"{path}: not found ({what})") from None
    except (OSError, ValueError) as exc:
        raise FacesketchError(f"{path}: cannot read {what} ({exc})") from None
    if not isinstance(data, dict):
        raise FacesketchError(f"{path}: expected a JSON object ({what})")
    return data


def load_entry(model_dir: Path, metrics_dir: Path = METRICS_DIR) -> ModelEntry:
    """The model saved in ``model_dir`` (``models/<model>-<task>``) and its metrics, if any."""
    model_dir = Path(model_dir)
    info = _read_json(model_dir / INFO_FILE, "the model's info")
    missing = [k for k in ("model", "task", "image_size") if k not in info]
    if missing:
        raise FacesketchError(f"{model_dir / INFO_FILE}: lacks {', '.join(missing)}; retrain with `dvc repro`")
    name = model_dir.name
    metrics_file = layout.metrics_file(name, metrics_dir)
    metrics, stale = None, None
    if metrics_file.exists():
        try:
            metrics = _read_json(metrics_file, "metrics")
        except FacesketchError as exc:
            print(f"warning: {exc}; ignoring it", file=sys.stderr)
    if metrics is not None:
        from facesketch.core.saved import metrics_mismatch

        stale = metrics_mismatch(metrics, model_dir, metrics_file)
        if stale:  # another model's scores: never shown or ranked as this one's
            metrics = None
    return ModelEntry(name, str(info["model"]), str(info["task"]), model_dir, info, metrics,
                      metrics_file if metrics is not None else None, stale)


def list_models(models_dir: Path = MODELS_DIR, metrics_dir: Path = METRICS_DIR, task: str | None = None,
                warn: Callable[[str], None] | None = None) -> list[ModelEntry]:
    """Every trained model under ``models_dir`` (sorted by task, then name); unreadable ones are warned about."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    entries = []
    for d in sorted(models_dir.iterdir()):
        if d.name.startswith(".") or not d.is_dir() or not (d / INFO_FILE).exists():
            continue  # temporary folders of an interrupted save, or not a model
        try:
            entry = load_entry(d, metrics_dir)
        except FacesketchError as exc:
            (warn or (lambda m: print(f"warning: {m}", file=sys.stderr)))(f"{exc}; skipped")
            continue
        if task is None or entry.task == task:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.task, e.name))


def best_model(entries: Iterable[ModelEntry]) -> ModelEntry | None:
    ranked = sorted((e for e in entries if e.ssim is not None), key=ModelEntry.rank_key)
    return ranked[0] if ranked else None


def choose_model(task: str, model: str | None = None, *, models_dir: Path = MODELS_DIR,
                 metrics_dir: Path = METRICS_DIR) -> tuple[ModelEntry, str]:
    """(the model to use, why it was chosen): ``model`` if given, else the best by metrics."""
    if task not in TASKS:
        raise FacesketchError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
    models_dir, metrics_dir = Path(models_dir), Path(metrics_dir)
    if model:
        name = model if model.endswith(f"-{task}") else layout.run_name(model, task)
        other = next((t for t in TASKS if t != task and model.endswith(f"-{t}")), None)
        if other:
            raise ModelNotFound(f"model {model!r} is trained for task {other}, not {task}; "
                                f"use --model {model[: -len(other) - 1]} or --task {other}")
        model_dir = layout.model_dir(name, models_dir)
        if not (model_dir / INFO_FILE).exists() or not (model_dir / MODEL_FILE).exists():
            from facesketch.models import REGISTRY  # names only: no TensorFlow

            trained = [e.name for e in list_models(models_dir, metrics_dir, task, warn=lambda m: None)]
            hint = (f"trained {task} models there: {', '.join(trained)}" if trained
                    else f"no {task} model is trained there")
            base = name[: -len(task) - 1]
            if base not in REGISTRY:  # no stage train@<it> can exist: do not suggest one
                raise ModelNotFound(f"unknown model {base!r} ({hint}); the models are: {', '.join(REGISTRY)} "
                                    f"(see `facesketch models`)")
            raise ModelNotFound(f"model {name!r} not found: {model_dir}/ has no {MODEL_FILE} and {INFO_FILE} "
                                f"({hint}); train it with `dvc repro train@{name}` (with {base} in params.yaml: "
                                f"models) or see `facesketch models`")
        entry = load_entry(model_dir, metrics_dir)
        if entry.task != task:
            raise ModelNotFound(f"{model_dir / INFO_FILE}: the model is for task {entry.task}, not {task}")
        return entry, "named with --model"

    entries = list_models(models_dir, metrics_dir, task)
    if not entries:
        raise ModelNotFound(f"no trained {task} model in {models_dir}/; run `dvc repro` (or `facesketch demo`) "
                            f"to train one, or pass --models-dir")
    best = best_model(entries)
    if best is None:
        names = ", ".join(e.name for e in entries)
        stale = "; ".join(e.stale for e in entries if e.stale)
        raise ModelNotFound(f"no metrics for the {task} models in {models_dir}/ ({names}): "
                            f"{metrics_dir}/<model>-{task}.json missing, without SSIM or stale, so there is no best "
                            f"one; pass --model NAME, or run `dvc repro` to evaluate them"
                            + (f" ({stale})" if stale else ""))
    unscored = [e.name for e in entries if e.ssim is None and not e.stale]
    stale = [e.name for e in entries if e.stale]
    why = f"best {task} model by SSIM {best.ssim:.4f} in {best.metrics_file}"
    if unscored:
        why += f"; not ranked, no metrics: {', '.join(unscored)}"
    if stale:
        why += f"; not ranked, stale metrics (they scored another model file): {', '.join(stale)}"
    return best, why


# --- reading and writing images ----------------------------------------------------------------


def encode(img: np.ndarray, fmt: str, *, grey: bool = False, quality: int = 95) -> bytes:
    """RGB uint8 -> PNG/JPEG bytes (``grey``: one luminance channel)."""
    import cv2

    ext = FORMATS[fmt]
    pixels = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if grey else cv2.COLOR_RGB2BGR)
    opts = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpg" else []
    ok, buf = cv2.imencode(ext, pixels, opts)
    if not ok:
        raise DataError(f"could not encode the output as {fmt}")
    return buf.tobytes()


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


# --- the model ---------------------------------------------------------------------------------


class Predictor:
    """A loaded model that maps uint8 RGB images of any size to uint8 RGB outputs."""

    def __init__(self, entry: ModelEntry, model: Any, batch_size: int = DEFAULT_BATCH):
        self.entry, self.model = entry, model
        self.size = entry.image_size
        self.batch_size = max(1, int(batch_size))
        shape = tuple(getattr(model, "input_shape", ()) or ())
        if len(shape) == 4 and shape[1:3] != (self.size, self.size) and None not in shape[1:3]:
            raise FacesketchError(f"{entry.path}: model input is {shape[1]}x{shape[2]} but info.json says "
                                  f"image_size {self.size}; retrain it with `dvc repro`")

    @classmethod
    def load(cls, entry: ModelEntry, batch_size: int = DEFAULT_BATCH) -> "Predictor":
        from facesketch.core.saved import load_predictor

        file = entry.path / MODEL_FILE
        if not file.exists():
            raise ModelNotFound(f"{file}: not found; train the model with `dvc repro train@{entry.name}`")
        try:
            model = load_predictor(entry.path)
        except FacesketchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged or incompatible file: say which
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise FacesketchError(f"{file}: cannot load the model ({type(exc).__name__}: {first})") from None
        return cls(entry, model, batch_size)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The pipeline's preprocessing: square resize to image_size, floats in [0, 1]."""
        from facesketch.data.dataset import to_float
        from facesketch.data.preprocess import to_square

        return to_float(to_square(image, self.size))

    def run_batch(self, batch: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Float N x S x S x 3 -> uint8 outputs, in batches of ``batch_size`` (default: the
        predictor's, or N if fewer); the last one is padded, so every call has one shape."""
        from facesketch.data.dataset import to_uint8

        n = len(batch)
        b = int(batch_size) if batch_size else min(self.batch_size, max(1, n))
        outs = []
        for start in range(0, n, b):
            chunk = batch[start:start + b]
            if len(chunk) < b:
                pad = np.zeros((b - len(chunk), *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, pad])
            pred = self.model.predict_on_batch(chunk)
            outs.append(to_uint8(np.asarray(pred, np.float32)[: min(b, n - start)]))
        return np.concatenate(outs) if outs else np.empty((0, self.size, self.size, 3), np.uint8)

    def predict(self, images: list[np.ndarray], native: bool = False,
                batch_size: int | None = None) -> list[np.ndarray]:
        """uint8 RGB images (any sizes) -> uint8 RGB outputs at each input's size (or S x S: ``native``)."""
        if not images:
            return []
        raw = self.run_batch(np.stack([self.prepare(im) for im in images]), batch_size)
        if native:
            return list(raw)
        return [resize(out, im.shape[1], im.shape[0]) for out, im in zip(raw, images)]


# --- faces in ordinary pictures ----------------------------------------------------------------


def no_face_message(path: Path | str) -> str:
    return (f"{path}: no face found (a frontal face at least 20 px across is needed; "
            f"for an already aligned face use --no-align)")


def find_faces(image: np.ndarray, geometry: Any, min_height: int) -> list:
    """Every face in ``image``, left to right, aligned to ``geometry`` (facesketch.faces.align.AlignedFace),
    each crop at least ``min_height`` tall."""
    from facesketch.faces.align import align, crop_height
    from facesketch.faces.detect import detect_faces

    return [align(image, f, geometry, crop_height(f, geometry, min_height)) for f in detect_faces(image)]


@dataclass
class Processed:
    """One picture through the model: its aligned faces, the model's output for each (at the crop's
    size), and the picture with them pasted back (or, without alignment, the whole output)."""

    faces: list
    outputs: list[np.ndarray]
    image: np.ndarray


def process_image(predictor: "Predictor", image: np.ndarray, *, align: bool = True) -> Processed:
    """Run ``predictor`` on one picture (the web page's path; ``predict_files`` batches many).
    Raises DataError when alignment finds no face."""
    if not align:
        return Processed([], [], predictor.predict([image], batch_size=1)[0])
    from facesketch.faces.align import paste

    faces = find_faces(image, predictor.entry.face_geometry, predictor.size)
    if not faces:
        raise DataError(no_face_message("the picture"))
    outputs = predictor.predict([f.crop for f in faces], batch_size=1)
    return Processed(faces, outputs, paste(image, faces, outputs))


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


def describe(entry: ModelEntry) -> str:
    s = entry.summary()
    bits = [f"{s['model']}", f"{s['image_size']}px"]
    if s.get("epochs"):
        bits.append(f"{s['epochs']} epoch{'s' * (s['epochs'] != 1)}")
    return f"{entry.name} ({', '.join(bits)})"


def as_json(entries: list[ModelEntry]) -> str:
    best = {t: best_model([e for e in entries if e.task == t]) for t in TASKS}
    rows = [{**e.summary(), "best": best.get(e.task) is e} for e in entries]
    return json.dumps(rows, indent=2)
