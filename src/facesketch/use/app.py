"""``facesketch serve``: a local web page to turn one uploaded photo or sketch into the other.

The page (Gradio, the usual way to show a model; the optional ``app`` extra)
takes an image file, a task and a trained model; it shows the aligned face(s)
the model saw beside the result, offers the result for download, and shows
the model's test metrics from ``metrics/<model>-<task>.json``.

Everything the page does goes through ``Service`` (no Gradio in it), so the
checks on uploads (size, a decodable image) and the messages are the same
as ``facesketch predict``'s. The server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facesketch import TASKS
from facesketch.use import predict
from facesketch.use.predictor import Predictor, process_image
from facesketch.use import catalog
from facesketch.core.images import read_rgb, resize, upscale_warning
from facesketch.core import fileio
from facesketch.core.errors import FacesketchError

MODES = {"paste": "find faces, paste the result back into the picture",
         "crop": "find faces, show each aligned face's result",
         "none": "no alignment: the whole picture is the face (already aligned inputs)"}


@dataclass
class PageResult:
    """What the page shows for one upload."""

    message: str                                  # one line: what was done, or what was wrong
    aligned: list[np.ndarray] = field(default_factory=list)   # the aligned inputs the model saw
    result: np.ndarray | None = None              # the picture with the results pasted, or the faces' results
    files: list[str] = field(default_factory=list)            # the result PNG(s) to download

    @property
    def ok(self) -> bool:
        return self.result is not None


class Service:
    """The page's work: the models on disk, their metrics, and running one upload through one."""

    def __init__(self, models_dir: Path, metrics_dir: Path, max_upload_mb: int = 10, out_dir: Path | None = None):
        self.models_dir, self.metrics_dir = Path(models_dir), Path(metrics_dir)
        self.max_bytes = int(max_upload_mb) * 1024 * 1024
        self.out_dir = Path(out_dir or tempfile.mkdtemp(prefix="facesketch-serve-"))
        self._predictors: dict[str, Predictor] = {}
        self._lock = threading.Lock()  # one model load and one inference at a time (2 cores)

    def models(self, task: str) -> list[str]:
        """The task's trained models, best first (by the same rule as predict's default)."""
        entries = catalog.list_models(self.models_dir, self.metrics_dir, task, warn=lambda m: None)
        best = catalog.best_model(entries)
        return [e.model for e in sorted(entries, key=lambda e: (e is not best, e.ssim is None,
                                                                 -(e.ssim or 0), e.name))]

    def metrics_markdown(self, task: str, model: str | None) -> str:
        if not model:
            return f"No trained {task} model in `{self.models_dir}/`: run `dvc repro` first."
        try:
            entry, _ = catalog.choose_model(task, model, models_dir=self.models_dir, metrics_dir=self.metrics_dir)
        except FacesketchError as exc:
            return f"**{exc}**"
        s = entry.summary()
        head = (f"**{entry.name}**: {s['model']}, {s['image_size']} px, {s['epochs']} epochs, "
                f"{(s['predictor_parameters'] or 0):,} parameters")
        if entry.stale:
            return head + f"  \nNo benchmark metrics shown: {entry.stale}."
        if entry.metrics is None:
            return head + f"  \nNo benchmark metrics: `{self.metrics_dir}/{entry.name}.json` is missing."
        from facesketch.evaluation.metric_specs import BENCHMARK_METRICS, with_legacy_keys  # labels, formats; no SciPy

        values = with_legacy_keys(entry.metrics)  # older files' "rank1" / "accuracy" -> "ssim_rank1"
        cells = [(m.label, m.fmt(float(values[m.key]))) for m in BENCHMARK_METRICS
                 if isinstance(values.get(m.key), (int, float)) and not isinstance(values[m.key], bool)]
        n = entry.metrics.get("n_images")
        table = "| " + " | ".join(c[0] for c in cells) + " |\n|" + "---:|" * len(cells) + "\n| " \
            + " | ".join(c[1] for c in cells) + " |"
        where = f"test split{f', {n} images' if n else ''}, from `{entry.metrics_file}`"
        return f"{head}  \nBenchmark ({where}):\n\n{table}"

    def predictor(self, task: str, model: str) -> Predictor:
        entry, _ = catalog.choose_model(task, model, models_dir=self.models_dir, metrics_dir=self.metrics_dir)
        if entry.name not in self._predictors:
            self._predictors[entry.name] = Predictor.load(entry, batch_size=1)
        return self._predictors[entry.name]

    def check_upload(self, path: str | os.PathLike | None) -> np.ndarray:
        """The uploaded file as RGB uint8; FacesketchError with a message for the page if it is not usable."""
        if not path:
            raise FacesketchError("no file uploaded: choose a photo or a sketch (PNG, JPEG, ...)")
        path = Path(path)
        size = path.stat().st_size if path.exists() else 0
        if size > self.max_bytes:
            raise FacesketchError(f"{path.name}: {size / 2**20:.1f} MB is over the {self.max_bytes // 2**20} MB "
                                  f"upload limit; send a smaller picture")
        try:
            return read_rgb(path)
        except FacesketchError as exc:
            raise FacesketchError(str(exc).replace(str(path), path.name)
                                  + "; upload a PNG, JPEG, BMP, TIFF or WebP picture") from None

    def run(self, path: str | os.PathLike | None, task: str, model: str | None, mode: str = "paste") -> PageResult:
        try:
            if task not in TASKS:
                raise FacesketchError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
            if mode not in MODES:
                raise FacesketchError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
            if not model:
                raise FacesketchError(f"no trained {task} model to use; run `dvc repro` first")
            image = self.check_upload(path)
            name = Path(path).stem
            with self._lock:
                predictor = self.predictor(task, model)
                done = process_image(predictor, image, align=mode != "none")
        except FacesketchError as exc:
            return PageResult(f"Error: {str(exc).replace('the picture', Path(path).name if path else 'the picture')}")
        entry = predictor.entry
        if mode == "none":
            aligned, result, parts = [resize(image, entry.image_size, entry.image_size)], done.image, [done.image]
        elif mode == "paste":
            aligned, result, parts = [f.crop for f in done.faces], done.image, [done.image]
        else:
            aligned, parts = [f.crop for f in done.faces], done.outputs
            result = side_by_side(parts)
        out = Path(tempfile.mkdtemp(dir=self.out_dir))
        files = []
        for k, part in enumerate(parts, 1):
            suffix = f"_face{k}" if mode == "crop" else ""
            dest = out / f"{name}_{task}_{entry.model}{suffix}.png"
            fileio.write_bytes(dest, predict.encode(part, "png"))  # atomic: never a half-written PNG
            files.append(str(dest))
        n = len(done.faces)
        what = f"{n} face{'s' * (n != 1)} found and aligned" if mode != "none" else "no alignment"
        small = upscale_warning(Path(path).name, image.shape, entry.image_size) if mode == "none" else None
        return PageResult(f"Done: {entry.name} on {Path(path).name} ({what})." + (f" Warning: {small}." if small else ""),
                          aligned, result, files)


def side_by_side(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Images laid left to right on white, scaled to the tallest one's height."""
    h = max(im.shape[0] for im in images)
    scaled = [resize(im, max(1, round(im.shape[1] * h / im.shape[0])), h) for im in images]
    spacer = np.full((h, gap, 3), 255, np.uint8)
    row = [scaled[0]]
    for im in scaled[1:]:
        row += [spacer, im]
    return np.concatenate(row, axis=1)


def build(service: Service):
    """The Gradio page for ``service``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    import gradio as gr

    def choices(task):
        names = service.models(task)
        return gr.update(choices=names, value=names[0] if names else None), \
            service.metrics_markdown(task, names[0] if names else None)

    def submit(file, task, model, mode):
        r = service.run(file, task, model, mode)
        return r.message, r.aligned or None, r.result, r.files or None

    first = service.models(TASKS[0])
    with gr.Blocks(title="facesketch") as page:
        gr.Markdown("# facesketch\nUpload a face photo (to get a sketch) or a sketch (to get a photo-like face). "
                    "Faces are found and aligned to the model's training faces first. "
                    f"Images up to {service.max_bytes // 2**20} MB; everything stays on this machine.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Photo or sketch", file_types=["image"], type="filepath",
                                 elem_id="upload")
                task = gr.Radio(list(TASKS), value=TASKS[0], label="Task (f2s: photo -> sketch, s2f: sketch -> photo)",
                                elem_id="task")
                model = gr.Dropdown(first, value=first[0] if first else None, label="Model", elem_id="model")
                mode = gr.Radio([(v, k) for k, v in MODES.items()], value="paste", label="Faces", elem_id="mode")
                run = gr.Button("Run", variant="primary", elem_id="run")
                metrics = gr.Markdown(service.metrics_markdown(TASKS[0], first[0] if first else None),
                                      elem_id="metrics")
            with gr.Column():
                status = gr.Markdown("", elem_id="status")
                aligned = gr.Gallery(label="Aligned input (what the model sees)", elem_id="aligned", height="auto",
                                     columns=4, object_fit="contain", format="png")
                result = gr.Image(label="Result", type="numpy", interactive=False, elem_id="result",
                                  format="png")
                files = gr.File(label="Download", file_count="multiple", interactive=False, elem_id="download")
        task.change(choices, [task], [model, metrics])
        model.change(lambda t, m: service.metrics_markdown(t, m), [task, model], [metrics])
        run.click(submit, [upload, task, model, mode], [status, aligned, result, files])
    return page


class TooLargeMessage:
    """ASGI middleware: every HTTP 413 (Gradio's upload route answers one itself, counting its limit
    in bytes) gets the page's words and units instead."""

    def __init__(self, app, max_upload_mb: int):
        self.app = app
        self.body = f"The file is over the {max_upload_mb} MB upload limit; send a smaller picture.".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        replacing = []

        async def send_replaced(message):
            if message["type"] == "http.response.start" and message["status"] == 413:
                replacing.append(True)
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"content-length", b"content-type")]
                headers += [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(self.body)).encode())]
                await send({**message, "headers": headers})
            elif message["type"] == "http.response.body" and replacing:
                if replacing[0]:
                    replacing[0] = False
                    await send({"type": "http.response.body", "body": self.body, "more_body": False})
            else:
                await send(message)

        await self.app(scope, receive, send_replaced)


def serve(models_dir: Path, metrics_dir: Path, *, host: str = "127.0.0.1", port: int = 7860,
          max_upload_mb: int = 10, open_browser: bool = False) -> int:
    service = Service(models_dir, metrics_dir, max_upload_mb)
    page = build(service)
    print(f"facesketch: serving on http://{host}:{port}/ (models from {models_dir}/; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    from starlette.middleware import Middleware

    page.queue(default_concurrency_limit=1)
    # max_file_size: Gradio refuses larger uploads before they reach Service (whose check says why),
    # with an HTTP 413 that would count the limit in bytes (of that 1 MB margin): say it as the page does
    page.launch(server_name=host, server_port=port, inbrowser=open_browser, share=False, ssr_mode=False,
                max_file_size=f"{max_upload_mb + 1}mb", quiet=True,
                app_kwargs={"middleware": [Middleware(TooLargeMessage, max_upload_mb=max_upload_mb)]})
    return 0
