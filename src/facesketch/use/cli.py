"""The ``facesketch`` command: run trained models on your own images.

    facesketch predict --task f2s photo.jpg photos/ -o sketches/
    facesketch models
    facesketch serve
    facesketch demo

The pipeline itself (fetch, preprocess, split, train, evaluate, report) is
run with DVC (``dvc repro``); this command uses what it produced: the models
in ``models/`` and their scores in ``metrics/``.

Exit codes: 0 all done; 1 something failed (a message on stderr names it;
the other inputs are still written); 2 a usage error; 130 interrupted.
TensorFlow is imported only when a model is loaded, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from facesketch import TASKS, __version__
from facesketch.core.errors import FacesketchError
from facesketch.core.layout import METRICS_DIR, MODELS_DIR

TASK_HELP = "f2s: photo -> sketch; s2f: sketch -> photo"


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _note(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(f"facesketch: {msg}", file=sys.stderr)


# --- predict -----------------------------------------------------------------------------------


def cmd_predict(ns: argparse.Namespace) -> int:
    from facesketch.use import predict
    from facesketch.use.predictor import Predictor
    from facesketch.use import catalog

    entry, why = catalog.choose_model(ns.task, ns.model, models_dir=ns.models_dir, metrics_dir=ns.metrics_dir)
    out_dir = Path(ns.output)
    inputs = predict.collect_inputs(ns.inputs, recursive=ns.recursive, exclude=out_dir)
    for problem in inputs.problems:
        _err(problem)
    if not inputs.files:
        raise FacesketchError("no images to process" + (" (see above)" if inputs.problems else ""))
    predict.check_output_dir(out_dir)
    # Loading the model takes seconds: not before at least one input is known to be an image.
    files, unreadable = predict.skip_unreadable(inputs.files, report=_err)
    if not files:
        raise FacesketchError("none of the inputs is a readable image (see above); nothing written")
    _note(f"using {catalog.describe(entry)}: {why}", ns.quiet)
    predictor = Predictor.load(entry, ns.batch_size)
    align = None if ns.align == "none" else (ns.align or predict.default_align(ns.task))
    if align == "paste" and ns.size == "native":
        raise FacesketchError("--size native goes with --crop or --no-align: a pasted face keeps the picture's size")
    if align:
        geometry = entry.face_geometry
        _note(f"aligning faces ({align}) to the model's face geometry: {geometry.note or geometry.source}", ns.quiet)
    progress = not ns.quiet and len(files) > 1 and sys.stderr.isatty()
    result = predict.predict_files(predictor, files, out_dir, fmt=ns.format, native=ns.size == "native",
                             grey=ns.grey, quality=ns.quality, align=align, report=_err, progress=progress)
    n = len(result.written)
    pictures = len(files) - len(result.failed)
    per = f", {1000 * result.seconds / max(1, pictures):.0f} ms/picture" if n else ""
    faces = f" ({result.faces} face{'s' * (result.faces != 1)} in {pictures} picture{'s' * (pictures != 1)})" \
        if align else ""
    _note(f"wrote {n} image{'s' * (n != 1)}{faces} to {out_dir}/{per}", ns.quiet and not result.failed)
    failed = len(result.failed) + len(unreadable) + len(inputs.problems)
    if failed:
        rest = (f"the other {n} {'were' if n != 1 else 'was'} written" if n else "nothing was written")
        print(f"error: {failed} input{'s' * (failed != 1)} failed (see above); {rest}", file=sys.stderr)
        return 1
    return 0


# --- models ------------------------------------------------------------------------------------


def _fmt(value, spec: str = "", missing: str = "-") -> str:
    if value is None:
        return missing
    return format(value, spec) if spec else str(value)


def table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_models(ns: argparse.Namespace) -> int:
    from facesketch.use import catalog

    entries = catalog.list_models(ns.models_dir, ns.metrics_dir, ns.task)
    if ns.json:
        print(catalog.as_json(entries))
        return 0
    if not entries:
        what = f"{ns.task} models" if ns.task else "models"
        print(f"no trained {what} in {ns.models_dir}/; run `dvc repro` (or `facesketch demo`) to train them")
        return 0
    best = {t: catalog.best_model([e for e in entries if e.task == t]) for t in TASKS}
    head = ["name", "task", "size", "epochs", "optimizer", "loss", "params", "MAE", "PSNR", "SSIM", "best"]
    rows = [head]
    for e in entries:
        s = e.summary()
        rows.append([s["name"], s["task"], _fmt(s["image_size"]), _fmt(s["epochs"]), _fmt(s["optimizer"]),
                     _fmt(s["loss"]), _fmt(s["parameters"], ","), _fmt(s["mae"], ".4f"), _fmt(s["psnr"], ".2f"),
                     _fmt(s["ssim"], ".4f"), "*" if best.get(e.task) is e else ""])
        if e.stale:  # the metrics file scored another model file: not this one's numbers
            rows[-1][7:10] = ["stale", "stale", "stale"]
    print(table(rows, right={2, 3, 6, 7, 8, 9}))
    print(f"\n{len(entries)} model(s) in {ns.models_dir}/, metrics from {ns.metrics_dir}/ (test split).")
    print("best (*): the default for `facesketch predict --task TASK`: highest SSIM, then lowest MAE.")
    if any(e.metrics is None and not e.stale for e in entries):
        print("-: no metrics yet; `dvc repro` evaluates every trained model.")
    for e in entries:
        if e.stale:
            print(f"stale: {e.stale}")
    return 0


# --- serve -------------------------------------------------------------------------------------


def cmd_serve(ns: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise FacesketchError("the web page needs the app extra (gradio is not installed); install it with "
                              "`pip install 'facesketch[app]'` (scripts/setup.sh does)")
    from facesketch.use import app

    if ns.host not in ("127.0.0.1", "localhost", "::1"):
        _note(f"warning: serving on {ns.host}: anyone who can reach this machine can use the page")
    return app.serve(ns.models_dir, ns.metrics_dir, host=ns.host, port=ns.port,
                     max_upload_mb=ns.max_upload_mb, open_browser=ns.open)


# --- demo --------------------------------------------------------------------------------------


def find_demo() -> Path | None:
    """scripts/demo.sh in the working folder, else in the checkout this package runs from."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        script = root / "scripts" / "demo.sh"
        if script.is_file() and (root / "dvc.yaml").is_file():
            return script
    return None


def cmd_demo(ns: argparse.Namespace) -> int:
    script = find_demo()
    if script is None:
        raise FacesketchError("scripts/demo.sh not found: the demo runs from a checkout of the facesketch "
                              "repository; clone it, then run `bash scripts/demo.sh` (or `facesketch demo`) "
                              "in its root")
    extra = [a for a in ns.args if a != "--"]
    cmd = ["bash", str(script), *extra]
    if ns.dry_run:
        print(" ".join(cmd))
        return 0
    if shutil.which("bash") is None:
        raise FacesketchError("bash not found; the demo is a bash script")
    _note(f"running {' '.join(cmd)} (the DVC pipeline on synthetic faces; about 10 minutes on 2 CPU cores)")
    return subprocess.call(cmd, cwd=script.parent.parent)


# --- the parser --------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _quality(text: str) -> int:
    value = _positive(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected 1 to 100, got {value}")
    return value


def _dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR, metavar="DIR",
                   help=f"where the trained models are (default: {MODELS_DIR})")
    p.add_argument("--metrics-dir", type=Path, default=METRICS_DIR, metavar="DIR",
                   help=f"where their metrics are (default: {METRICS_DIR})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facesketch",
        description="Face photo <-> sketch synthesis with the models the DVC pipeline trained. "
                    "Run the pipeline itself with `dvc repro`.",
        epilog="Examples:\n"
               "  facesketch predict --task f2s photo.jpg faces/ -o sketches/\n"
               "  facesketch predict --task s2f --model conv sketch.png -o photos/\n"
               "  facesketch models\n"
               "  facesketch serve\n"
               "  facesketch demo\n\n"
               "Exit codes: 0 done, 1 something failed (named on stderr), 2 usage error.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"facesketch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "predict", help="turn photos into sketches (f2s) or sketches into photos (s2f)",
        description="Run a trained model on image files or folders (PNG, JPEG, ...; any size; grey, RGB or "
                    "RGBA). Each output is written to OUTDIR as <name>_<task>_<model>.png, at the input's "
                    "size. Without --model, the task's best model by SSIM in metrics/ is used. Faces are found and "
                    "aligned to the model's training geometry first (see --paste, --crop, --no-align).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("--task", "-t", required=True, choices=TASKS, help=TASK_HELP)
    p.add_argument("--model", "-m", metavar="NAME",
                   help="model name, e.g. conv (models/conv-TASK); default: the best by metrics")
    p.add_argument("-o", "--output", default="predictions", metavar="OUTDIR", help="output folder (default: predictions)")
    p.add_argument("--format", "-f", choices=("png", "jpg"),
                   default="png", help="output image format (default: png)")
    p.add_argument("--size", choices=("original", "native"), default="original",
                   help="original: the input's width x height; native: the model's square size (default: original)")
    p.add_argument("--grey", "--gray", action="store_true",
                   help="write single-channel greyscale images (for sketches)")
    p.add_argument("--quality", type=_quality, metavar="Q", default=95, help="JPEG quality with --format jpg (default: 95)")
    p.add_argument("--batch-size", "-b", type=_positive, metavar="N", default=8, help="images per inference batch (default: 8)")
    p.add_argument("--recursive", "-r", action="store_true", help="also read images in subfolders")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or notes; errors only")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--paste", dest="align", action="store_const", const="paste",
                     help="find every face, align it to the model's training geometry, and paste the output "
                          "back into the picture with a soft edge (default for f2s)")
    how.add_argument("--crop", dest="align", action="store_const", const="crop",
                     help="as --paste, but write each face's output as its aligned crop, one file per face "
                          "(<name>_<task>_<model>_face<k>.png; default for s2f)")
    how.add_argument("--no-align", dest="align", action="store_const", const="none",
                     help="no face detection: squeeze the whole picture into the model, for inputs that are "
                          "already aligned like the training images (the CUHK images themselves)")
    _dirs(p)
    p.set_defaults(func=cmd_predict, align=None)

    p = sub.add_parser("models", help="list the trained models with their task, settings and metrics",
                       description="List models/<model>-<task>/ with their settings and test metrics "
                                   "(metrics/<model>-<task>.json); * marks the default for predict.")
    p.add_argument("--task", "-t", choices=TASKS, help="only this task's models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _dirs(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("serve", help="a local web page to turn an uploaded photo or sketch into the other",
                       description="Start a web page (Gradio) on this machine: upload a photo or sketch, pick the "
                                   "task and model, see the result beside the aligned input and download it, with "
                                   "the model's test metrics. Needs the app extra: pip install 'facesketch[app]'.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_positive, default=7860, help="port (default: 7860)")
    p.add_argument("--max-upload-mb", type=_positive, default=10, metavar="MB",
                   help="largest upload accepted, in MB (default: 10)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    _dirs(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run the offline demo pipeline (scripts/demo.sh)",
                       description="Run scripts/demo.sh: set up, then the whole DVC pipeline on synthetic "
                                   "faces at 32x32 (about 10 minutes on 2 CPU cores). Extra arguments go to "
                                   "`dvc exp run`, e.g. `facesketch demo -- -S epochs=2`.")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed on to the demo script")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return ns.func(ns)
    except FacesketchError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # `facesketch models | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
