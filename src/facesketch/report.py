"""The report stage: our runs scored by the benchmark protocol, image grids and loss curves.

Writes ``reports/report.md`` (with ``grid-<task>.png``, ``grid.png`` and
``loss-curves.svg`` beside it) and ``reports/report.html``, a single
self-contained page: images are base64 ``data:`` URIs, the loss curves inline
SVG, the style inline; it loads nothing from anywhere.

The results table has one row per model x task plus the baselines (the mean
training target and, for f2s, the greyscale input photo), scored by the
protocol of ``facesketch.benchmark`` (native size, original targets). Each
value carries its 95% bootstrap interval; per task and metric the best *model*
value is bold, marked † when a paired bootstrap says it beats the runner-up,
and each model value carries its difference to the mean-target baseline.
Published results (with source, test set and protocol) stand beside it.
"""

from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import benchmark as B
from . import fileio
from .grids import as_rgb as _as_rgb, image_grid, write_png
from .data import PROCESSED_FILE, SPLIT_FILE
from .data.dataset import load_task

REPORTS_DIR = Path("reports")
METRICS_DIR = Path("metrics")
MODELS_DIR = Path("models")
PREDICTIONS_DIR = Path("data/predictions")
HISTORY_DIR = METRICS_DIR / "history"

TASK_TITLES = {"f2s": "photo -> sketch (f2s)", "s2f": "sketch -> photo (s2f)"}
BASELINE_LABELS = {"mean_target": "baseline: mean training target", "grey_input": "baseline: greyscale input"}
REFERENCE_BASELINE = "mean_target"  # every model's difference is taken to this one


@dataclass(frozen=True)
class Metric:
    key: str                # key in metrics/<model>-<task>.json
    header: str
    higher_is_better: bool
    digits: int
    percent: bool = False   # stored as a share in [0, 1], shown as %

    def fmt(self, v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v * 100:.{self.digits}f}%" if self.percent else f"{v:.{self.digits}f}"

    def fmt_delta(self, d: float | None) -> str:
        if d is None:
            return ""
        return f"{d * 100:+.{self.digits}f}" if self.percent else f"{d:+.{self.digits}f}"

    @property
    def short(self) -> str:
        return self.header.split(" ")[0]

    @property
    def title(self) -> str:
        return f"{self.header} {'↑' if self.higher_is_better else '↓'}"


METRICS = (
    Metric("mae", "MAE", False, 4),
    Metric("psnr", "PSNR (dB)", True, 2),
    Metric("ssim", "SSIM", True, 4),
    Metric("fsim", "FSIM", True, 4),
    Metric("fsimc", "FSIMc", True, 4),
    Metric("scoot", "SCOOT", True, 4),
    Metric("rank1", "Rank-1 acc.", True, 1, percent=True),
)
COLUMNS = tuple(m.key for m in METRICS)
SIGNIFICANT_MARK = "†"

# Published results: only numbers read in a paper or its authors' own code/README,
# each with its source. Nothing else is known: every other cell stays "-".
PUBLISHED_LABEL = "Published results (each with its test set and protocol; not run-for-run comparable)"
PUBLISHED_COLUMNS = (("fsim", "FSIM"), ("fsimc", "FSIMc"), ("ssim", "SSIM"), ("psnr", "PSNR"),
                     ("lpips", "LPIPS"), ("dists", "DISTS"))
_SCG = ("Chen, Liu, Tan & Wong, Semi-supervised Cycle-GAN for face photo-sketch translation in the wild, "
        "CVIU 2023; numbers from the authors' README, github.com/chaofengc/Face-Sketch-SCG")
_SCG_PROTOCOL = ("outputs saved at the test image's size (evaluate.py); FSIM by pyiqa 'fsim' on RGB "
                 "(chromatic, i.e. FSIMc; for grey sketches equal to FSIM), LPIPS-VGG, DISTS")
PUBLISHED = (
    {"task": "f2s", "model": "best conv autoencoder", "year": "", "test_set": "CUHK student, own random 80/20 split",
     "protocol": "the study's (not stated)", "source": "the study, Table III", "psnr": 19.4, "ssim": 0.67},
    {"task": "s2f", "model": "best conv + BatchNorm autoencoder", "year": "",
     "test_set": "CUHK student, own random 80/20 split", "protocol": "the study's (not stated)",
     "source": "the study, Table III", "psnr": 13.5, "ssim": 0.64},
    {"task": "both", "model": "VAE", "year": "", "test_set": "", "protocol": "", "source": "the study",
     "note": "failed to train (no figures)"},
    {"task": "f2s", "model": "SCG, paper", "year": 2023, "test_set": "CUFS test set", "protocol": _SCG_PROTOCOL,
     "source": _SCG + " ('Paper Results (AtoB)')", "fsim": 0.7343, "lpips": 0.3232, "dists": 0.1967},
    {"task": "f2s", "model": "SCG, released model", "year": 2023, "test_set": "CUFS test set",
     "protocol": _SCG_PROTOCOL, "source": _SCG + " ('Released', AtoB)", "fsim": 0.7349, "lpips": 0.3140,
     "dists": 0.1875},
    {"task": "s2f", "model": "SCG, paper", "year": 2023, "test_set": "CUFS test set", "protocol": _SCG_PROTOCOL,
     "source": _SCG + " ('Paper Results (BtoA)')", "fsimc": 0.7652, "lpips": 0.3374, "dists": 0.1710},
    {"task": "s2f", "model": "SCG, released model", "year": 2023, "test_set": "CUFS test set",
     "protocol": _SCG_PROTOCOL, "source": _SCG + " ('Released', BtoA)", "fsimc": 0.7789, "lpips": 0.2874,
     "dists": 0.1633},
)
NOT_COMPUTED_NOTE = ("LPIPS, DISTS and FID are not computed here: they need pretrained network weights "
                     "(VGG/AlexNet, Inception) that this pipeline cannot download; published LPIPS/DISTS "
                     "figures are shown for reference only.")


# ---------------------------------------------------------------- collecting

def collect(models: list[str], tasks: list[str], metrics_dir: Path = METRICS_DIR,
            models_dir: Path = MODELS_DIR) -> list[dict[str, Any]]:
    """One row per baseline and per model x task: its metrics and training facts."""
    rows = []
    for task in tasks:
        base_file = Path(metrics_dir) / f"baselines-{task}.json"
        if base_file.exists():
            found = fileio.read_json(base_file)
            known = list(BASELINE_LABELS)  # mean target first
            for kind in sorted(found, key=lambda k: known.index(k) if k in known else len(known)):
                rows.append({"model": kind, "label": BASELINE_LABELS.get(kind, f"baseline: {kind}"),
                             "task": task, "baseline": True, **found[kind]})
        for model in models:
            name = f"{model}-{task}"
            info_file = Path(models_dir) / name / "info.json"
            info = fileio.read_json(info_file) if info_file.exists() else {}
            rows.append({"model": model, "label": model, "task": task, "baseline": False,
                         **fileio.read_json(Path(metrics_dir) / f"{name}.json"), "info": info})
    return rows


def comparisons(models: list[str], tasks: list[str],
                metrics_dir: Path = METRICS_DIR) -> dict[tuple[str, str], B.Comparison]:
    """(task, metric) -> best model vs runner-up by a paired bootstrap over their per-image scores."""
    import pandas as pd

    out = {}
    for task in tasks:
        tables = {}
        for model in models:
            path = Path(metrics_dir) / "per_image" / f"{model}-{task}.csv"
            if path.exists():
                tables[model] = pd.read_csv(path)
        if len(tables) < 2:
            continue
        for metric in B.TASK_METRICS.get(task, ()):
            comp = B.compare_best(metric, B.aligned_per_image(tables, metric))
            if comp is not None:
                out[(task, metric)] = comp
    return out


# ---------------------------------------------------------------- the results table

@dataclass
class Cell:
    value: float | None
    text: str
    delta: float | None = None      # this value minus the mean-target baseline's
    delta_text: str = ""
    better: bool | None = None      # the delta is an improvement (None: no delta or zero)
    best: bool = False              # the best model value of its task for this metric
    interval: tuple[float, float] | None = None   # 95% bootstrap interval of the mean
    interval_text: str = ""
    significant: bool = False       # best, and beats the runner-up by the paired bootstrap


@dataclass
class TableRow:
    task: str
    model: str
    label: str
    baseline: bool
    cells: dict[str, Cell] = field(default_factory=dict)


def _value(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _best(values: Iterable[float | None], metric: Metric) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if metric.higher_is_better else min(present)


def results_table(rows: list[dict[str, Any]],
                  compared: dict[tuple[str, str], B.Comparison] | None = None) -> list[TableRow]:
    """Rows in input order with formatted cells; best models bold (marked significant where
    ``compared`` says the best beats the runner-up), intervals, deltas to the mean target."""
    compared = compared or {}
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        group = [r for r in rows if r["task"] == task]
        reference = next((r for r in group if r["baseline"] and r["model"] == REFERENCE_BASELINE), None)
        models = [r for r in group if not r["baseline"]]
        best = {m.key: _best((_value(r, m.key) for r in models), m) for m in METRICS}
        for r in group:
            row = TableRow(task, r["model"], r.get("label", r["model"]), bool(r["baseline"]))
            against = None if row.baseline else reference  # baselines get no delta and are never best
            for m in METRICS:
                cell = _cell(_value(r, m.key), m, against and _value(against, m.key),
                             None if row.baseline else best[m.key])
                interval = (r.get("intervals") or {}).get(m.key)
                if interval is not None:
                    cell.interval = (float(interval[0]), float(interval[1]))
                    cell.interval_text = f"[{m.fmt(interval[0])}, {m.fmt(interval[1])}]"
                comp = compared.get((task, m.key))
                cell.significant = bool(cell.best and comp is not None and comp.best == row.model
                                        and comp.significant)
                row.cells[m.key] = cell
            out.append(row)
    return out


def used_metrics(table: list[TableRow]) -> list[Metric]:
    """The metrics some row has a value for (FSIMc only with s2f, SCOOT only with f2s)."""
    return [m for m in METRICS if any(r.cells[m.key].value is not None for r in table)]


def _cell(v: float | None, metric: Metric, reference: float | None, best: float | None) -> Cell:
    cell = Cell(v, metric.fmt(v), best=v is not None and v == best)
    if v is not None and reference is not None:
        cell.delta = v - reference
        cell.delta_text = metric.fmt_delta(cell.delta)
        cell.better = None if cell.delta == 0 else (cell.delta > 0) == metric.higher_is_better
    return cell


def markdown_table(table: list[TableRow]) -> str:
    metrics = used_metrics(table)
    head = "| task | model | " + " | ".join(m.title for m in metrics) + " |"
    lines = [head, "|---|---|" + "---:|" * len(metrics)]
    for row in table:
        name = f"*{row.label}*" if row.baseline else f"**{row.label}**"
        cells = []
        for m in metrics:
            c = row.cells[m.key]
            text = f"**{c.text}**" if c.best else c.text
            text += SIGNIFICANT_MARK if c.significant else ""
            text += f" {c.interval_text}" if c.interval_text else ""
            cells.append(f"{text} ({c.delta_text})" if c.delta_text else text)
        lines.append(f"| {row.task} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_rows(compared: dict[tuple[str, str], B.Comparison]) -> list[dict[str, str]]:
    """Display rows: per task and metric, best vs runner-up and the verdict."""
    by_key = {m.key: m for m in METRICS}
    out = []
    for (task, key), c in compared.items():
        m = by_key[key]
        interval = "-" if c.interval is None else f"[{m.fmt_delta(c.interval[0])}, {m.fmt_delta(c.interval[1])}]"
        verdict = (f"{c.best} beats {c.runner_up}" if c.significant
                   else "not distinguishable (the interval includes 0)")
        out.append({"task": task, "metric": m.header, "best": c.best, "runner-up": c.runner_up,
                    "difference": m.fmt_delta(c.difference), "95% interval": interval,
                    "images": str(c.n_images), "verdict": verdict})
    return out


COMPARISON_COLUMNS = ("task", "metric", "best", "runner-up", "difference", "95% interval", "images", "verdict")


def comparison_markdown(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "Fewer than two models per task: nothing to compare."
    lines = ["| " + " | ".join(COMPARISON_COLUMNS) + " |", "|" + "---|" * len(COMPARISON_COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in COMPARISON_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def psnr_note(rows: list[dict[str, Any]]) -> str | None:
    """Which PSNR means leave out infinitely good (identical) images, if any do."""
    left_out = [f"{r['label']} {r['task']}: {r['psnr_infinite']} of {r.get('n_images', '?')}"
                for r in rows if r.get("psnr_infinite")]
    if not left_out:
        return None
    return "PSNR is infinite for an exactly reproduced image; these means leave such images out: " + \
        "; ".join(left_out) + "."


def published_rows() -> list[dict[str, str]]:
    """The published figures as display strings, '-' wherever a source gives none."""
    return [{"task": p["task"], "model": p["model"], "year": str(p.get("year", "")),
             "test_set": p.get("test_set", ""), "protocol": p.get("protocol", ""), "source": p.get("source", ""),
             "note": p.get("note", ""), **{k: "-" if k not in p else str(p[k]) for k, _ in PUBLISHED_COLUMNS}}
            for p in PUBLISHED]


def published_markdown() -> str:
    lines = ["| task | method | year | test set | " + " | ".join(h for _, h in PUBLISHED_COLUMNS)
             + " | protocol | source |",
             "|---|---|---|---|" + "---:|" * len(PUBLISHED_COLUMNS) + "---|---|"]
    for p in published_rows():
        model = f"{p['model']} ({p['note']})" if p["note"] else p["model"]
        lines.append(f"| {p['task']} | {model} | {p['year']} | {p['test_set']} | "
                     + " | ".join(p[k] for k, _ in PUBLISHED_COLUMNS) + f" | {p['protocol']} | {p['source']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- metric settings

def _doc_entries(doc: str, marker: str) -> list[tuple[str, str]]:
    """(name, definition) of each unindented heading after ``marker`` in a docstring."""
    text = (doc or "").split(marker, 1)[-1]
    entries: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line and not line[0].isspace():
            entries.append((line.strip(), []))
        elif line.strip() and entries:
            entries[-1][1].append(line.strip())
    return [(name, " ".join(body).replace("``", "`")) for name, body in entries]


def metric_settings() -> list[tuple[str, str]]:
    """(name, definition): the protocol, from facesketch.benchmark's module docstring, then the
    definitions of FSIM, FSIMc and SCOOT from facesketch.metrics'."""
    from . import metrics

    own = [e for e in _doc_entries(metrics.__doc__, "Settings, metric by metric:") if e[0] in ("FSIM", "FSIMc", "SCOOT")]
    return _doc_entries(B.__doc__, "The protocol, step by step:") + own


def resolution_note(image_size: int) -> str:
    return (f"Benchmark protocol: the models work at {image_size}x{image_size}; each 8-bit prediction is "
            "resized (bicubic) to its target's native size (CUHK: 200 wide x 250 high), saved as a PNG in "
            "data/predictions/<model>-<task>/<id>.png, and scored against the original fetched file "
            "(data/raw/pairs.csv), never the cleaned one. FSIM's downsampling factor F is 1 at 200x250; "
            "rank-1 accuracy matches each output against all test targets by grey SSIM at native size. "
            "Intervals: 95% percentile bootstrap over the test images (10,000 resamples); "
            f"{SIGNIFICANT_MARK}: the best model beats the runner-up by a paired bootstrap (same resamples).")


GLANCE = (  # metric, computed on (f2s / s2f), data range (a digest of the protocol below)
    ("MAE", "8-bit grey / RGB, all 3 channels", "8-bit difference / 255"),
    ("PSNR", "8-bit grey / RGB, MSE over all 3 channels", "data range 255"),
    ("SSIM", "8-bit grey (BT.601, rounded), skimage, sigma 1.5", "data range 255"),
    ("FSIM", "8-bit grey / FeatureSIM.m's Y of RGB", "0-255"),
    ("FSIMc", "s2f only: RGB (Y, I, Q)", "0-255"),
    ("SCOOT", "f2s only: 8-bit grey, ScootMeasure.m", "uint8 (6 levels)"),
    ("Rank-1 acc.", "grey SSIM against all test targets, native size", "data range 255"),
)


# ---------------------------------------------------------------- image grids

def grid(task: str, models: list[str], n_pairs: int, *, predictions_dir: Path = PREDICTIONS_DIR,
         processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE, tile: int = 128) -> np.ndarray:
    """RGB uint8 image: one row per test pair (the first n_pairs), columns input | each model | target."""
    test = load_task(task, "test", processed_file, split_file)
    ids = test.ids[:min(n_pairs, len(test.ids))]
    columns = [("input", test.inputs)]
    for m in models:  # the native-size PNGs the protocol scored
        folder = Path(predictions_dir) / f"{m}-{task}"
        columns.append((m, [_as_rgb(B.read_prediction(folder / f"{pid}.png")) for pid in ids]))
    columns.append(("target", test.targets))
    return image_grid(ids, columns, tile)


def stack(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Images one under another on white, padded to the widest."""
    width = max(g.shape[1] for g in images)
    return np.concatenate([np.pad(g, ((0, gap), (0, width - g.shape[1]), (0, 0)), constant_values=255)
                           for g in images])


# ---------------------------------------------------------------- loss curves (SVG)

# pix2pix's 'loss' is the generator's GAN + lambda * L1 while its val_loss is
# the L1 alone: its train curve is 'g_l1_loss' so that both curves mean the same.
TRAIN_CURVE = ("g_l1_loss", "loss")
VAL_CURVE = "val_loss"
CHART_W, CHART_H = 320, 200
TRAIN_COLOUR, VAL_COLOUR = "#1f6fb4", "#e4572e"


def read_history(path: Path) -> dict[str, list[float]]:
    """Columns of metrics/history/<model>-<task>.csv as float lists ({} when absent)."""
    if not Path(path).exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows] for k in (rows[0] if rows else {})}


def curves(history: dict[str, list[float]]) -> tuple[str | None, list[tuple[float, float]], list[tuple[float, float]]]:
    """(train column, train points, validation points) as (epoch, value) lists."""
    epochs = history.get("epoch", [])
    train_key = next((k for k in TRAIN_CURVE if k in history), None)

    def points(key):
        return [(e, v) for e, v in zip(epochs, history.get(key, [])) if math.isfinite(v)]

    return train_key, points(train_key) if train_key else [], points(VAL_CURVE)


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_labels(ticks: list[float]) -> list[str]:
    """The ticks with the fewest decimals that still show each exactly (the same for all)."""
    digits = next((d for d in range(7) if all(abs(round(t, d) - t) < 1e-9 for t in ticks)), 6)
    return [f"{t:.{digits}f}" for t in ticks]


def loss_chart(history: dict[str, list[float]], title: str, y_label: str,
               width: int = CHART_W, height: int = CHART_H) -> str:
    """One small SVG chart: train (solid) and validation (dashed) loss per epoch."""
    left, right, top, bottom = 52, 12, 40, 38
    pw, ph = width - left - right, height - top - bottom
    train_key, train, val = curves(history)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'font-family="sans-serif" font-size="11"><title>{html.escape(title)}</title>',
             f'<rect width="{width}" height="{height}" fill="#fff"/>',
             f'<text x="8" y="15" font-weight="bold">{html.escape(title)}</text>']
    everything = train + val
    if not everything:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#888">no history</text>')
        return "".join(parts) + "</svg>"
    xs, ys = [p[0] for p in everything], [p[1] for p in everything]
    x0, x1 = (min(xs), max(xs)) if max(xs) > min(xs) else (min(xs) - 0.5, max(xs) + 0.5)
    pad = (max(ys) - min(ys)) * 0.08 or abs(max(ys)) * 0.1 or 0.1
    y0, y1 = min(ys) - pad, max(ys) + pad

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (y1 - y) / (y1 - y0) * ph

    parts += _axes(left, top, pw, ph, x0, x1, y0, y1, sx, sy, y_label)
    for pts, colour, dash, name in ((train, TRAIN_COLOUR, "", train_key or "loss"),
                                    (val, VAL_COLOUR, ' stroke-dasharray="6 4"', VAL_CURVE)):
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
                         f'<title>{name}</title></polyline>')
            if len(pts) < 12:
                parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
    parts += _legend(left, 29, train_key or "loss")
    return "".join(parts) + "</svg>"


def _axes(left, top, pw, ph, x0, x1, y0, y1, sx, sy, y_label) -> list[str]:
    parts = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    y_ticks = nice_ticks(y0, y1)
    for t, label in zip(y_ticks, tick_labels(y_ticks)):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{label}</text>')
    x_ticks = [t for t in nice_ticks(x0, x1, 5) if float(t).is_integer()] or [x0]
    for t in x_ticks:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#999"/>'
                     f'<text x="{sx(t):.1f}" y="{top + ph + 15}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{top + ph + 32}" text-anchor="middle">epoch</text>')
    parts.append(f'<text transform="translate(11 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
                 f'{html.escape(y_label)}</text>')
    return parts


def _legend(x: float, y: float, train_name: str) -> list[str]:
    """One line above the plot: train (solid), then validation (dashed)."""
    out = []
    for dx, colour, dash, name in ((0, TRAIN_COLOUR, "", f"train ({train_name})"),
                                   (128, VAL_COLOUR, ' stroke-dasharray="6 4"', f"validation ({VAL_CURVE})")):
        out.append(f'<line x1="{x + dx}" x2="{x + dx + 20}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>'
                   f'<text x="{x + dx + 24}" y="{y + 4}" font-size="10">{html.escape(name)}</text>')
    return out


def loss_label(info: dict[str, Any], history: dict[str, list[float]]) -> str:
    """The y axis: the params.yaml loss where it is all the model optimises, else what is known."""
    if curves(history)[0] == "g_l1_loss":
        return "L1 loss"
    loss = (info.get("training") or {}).get("loss")
    plain = set(history) <= {"epoch", "loss", "val_loss"}  # composite losses (the VAE's) log their terms too
    return f"loss ({loss})" if loss and plain else "loss"


def loss_charts(models: list[str], tasks: list[str], rows: list[dict[str, Any]],
                history_dir: Path = HISTORY_DIR) -> list[tuple[str, str, str]]:
    """(model, task, svg) per model x task, in table order."""
    infos = {(r["model"], r["task"]): r.get("info", {}) for r in rows if not r["baseline"]}
    charts = []
    for model in models:
        for task in tasks:
            history = read_history(Path(history_dir) / f"{model}-{task}.csv")
            label = loss_label(infos.get((model, task), {}), history)
            charts.append((model, task, loss_chart(history, f"{model} · {task}", label)))
    return charts


def svg_sheet(charts: list[str], columns: int, width: int = CHART_W, height: int = CHART_H) -> str:
    """Charts tiled into one standalone SVG document (for report.md)."""
    rows = math.ceil(len(charts) / columns)
    body = "".join(c.replace("<svg ", f'<svg x="{(i % columns) * width}" y="{(i // columns) * height}" ', 1)
                   for i, c in enumerate(charts))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{columns * width}" height="{rows * height}" '
            f'viewBox="0 0 {columns * width} {rows * height}">{body}</svg>\n')


# ---------------------------------------------------------------- training facts

def fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def key_params(info: dict[str, Any]) -> str:
    """The training settings that apply to this model, then its own settings."""
    training, config = info.get("training") or {}, info.get("config") or {}
    if any(k.endswith("learning_rate") for k in config):  # own optimizers (pix2pix): shared ones do not apply
        shared = [f"batch {training.get('batch_size', '-')}"]
    else:
        shared = [f"{training.get('optimizer', '-')} lr {training.get('learning_rate', '-')}",
                  f"batch {training.get('batch_size', '-')}", f"loss {training.get('loss', '-')}"]
    own = [f"{k} {v}" for k, v in config.items()]
    return ", ".join(shared + own)


def facts(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One display row per model x task: parameters, training time, epochs, data, key params."""
    out = []
    for r in rows:
        if r["baseline"]:
            continue
        info = r.get("info") or {}
        params = fmt_count(info.get("parameters"))
        if info.get("predictor_parameters") not in (None, info.get("parameters")):
            params += f" ({fmt_count(info['predictor_parameters'])} at inference)"
        out.append({"model": r["model"], "task": r["task"], "parameters": params,
                    "train time": fmt_seconds(info.get("train_seconds")), "epochs": str(info.get("epochs", "-")),
                    "train / val pairs": f"{info.get('n_train', '-')} / {info.get('n_val', '-')}",
                    "key params": key_params(info)})
    return out


FACT_COLUMNS = ("model", "task", "parameters", "train time", "epochs", "train / val pairs", "key params")


def facts_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(FACT_COLUMNS) + " |", "|" + "---|" * len(FACT_COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in FACT_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- the documents

@dataclass
class Report:
    """Everything both documents show, already computed."""
    title: str
    intro: list[str]
    warning: str | None
    table: list[TableRow]
    table_note: str | None
    comparisons: list[dict[str, str]]
    split_note: str | None
    n_images: dict[str, int]
    settings: list[tuple[str, str]]
    resolution: str
    grids: dict[str, np.ndarray]     # task -> RGB image grid
    charts: list[tuple[str, str, str]]  # (model, task, svg)
    facts: list[dict[str, str]]
    tasks: list[str]


def build(params: dict[str, Any], metrics_dir: Path = METRICS_DIR, models_dir: Path = MODELS_DIR) -> Report:
    models, tasks = list(params["models"]), list(params["tasks"])
    n_pairs = int((params.get("report") or {}).get("grid_pairs", 4))
    rows = collect(models, tasks, metrics_dir, models_dir)
    compared = comparisons(models, tasks, metrics_dir)
    size, split, source = params["image_size"], params.get("split") or {}, params["data"]["source"]
    protocol = split.get("protocol")
    split_text = ("the standard CUHK split (88 training / 100 testing pairs, from the archives)"
                  if protocol == "cuhk" else
                  f"a random split over identities (test fraction {split.get('test_fraction')})")
    intro = [f"Data: `{source}`, models at {size}x{size} RGB; every number below comes from split `{protocol}`: "
             f"{split_text}; validation {split.get('val_fraction')} of training.",
             "Every model is read against the baselines of its task: the mean training target "
             "(one constant image) and, for f2s, the greyscale of the input photo. "
             "Bold: the best model of the task for that metric (baselines excluded); "
             f"{SIGNIFICANT_MARK}: it beats the runner-up by a paired bootstrap. In square brackets: the 95% "
             "bootstrap interval of the mean. In round brackets: the model's difference to the mean-target "
             "baseline (accuracy in percentage points); ↑/↓ marks which direction is better."]
    split_note = None if protocol == "cuhk" and source in ("cuhk", "archive_dir") else (
        "These rows are not on the standard benchmark split, so they do not stand next to published CUHK "
        "tables; for a benchmark row run `dvc exp run -S data.source=cuhk -S split.protocol=cuhk` "
        "(the four CUHK archives).")
    warning = (f"Data source `{source}`: generated faces, so these numbers say nothing about the study's "
               "CUHK results." if source == "synthetic" else None)
    return Report(
        title="facesketch report", intro=intro, warning=warning,
        table=results_table(rows, compared), table_note=psnr_note(rows),
        comparisons=comparison_rows(compared), split_note=split_note,
        n_images={r["task"]: r["n_images"] for r in rows if not r["baseline"] and r.get("n_images")},
        settings=metric_settings(), resolution=resolution_note(size),
        grids={t: grid(t, models, n_pairs) for t in tasks},
        charts=loss_charts(models, tasks, rows), facts=facts(rows), tasks=tasks)


def to_markdown(rep: Report) -> str:
    parts = [f"# {rep.title}", "", *[p + "\n" for p in rep.intro]]
    if rep.warning:
        parts += [f"> **Note.** {rep.warning}", ""]
    parts += ["## Results on the test split (benchmark protocol)", "",
              "Test images per task: " + ", ".join(f"{t} {n}" for t, n in rep.n_images.items()) + ".", "",
              *([f"> **Split.** {rep.split_note}", ""] if rep.split_note else []),
              markdown_table(rep.table), "", *([rep.table_note, ""] if rep.table_note else []),
              "### Best vs runner-up (paired bootstrap over the same test images)", "",
              comparison_markdown(rep.comparisons), "",
              f"### {PUBLISHED_LABEL}", "", published_markdown(), "", NOT_COMPUTED_NOTE, "",
              "## Metric settings", "", rep.resolution, ""]
    parts += ["| metric | computed on | data range |", "|---|---|---|"]
    parts += [f"| {a} | {b} | {c} |" for a, b, c in GLANCE] + [""]
    parts += [f"- **{name}**: " + text.replace("*", r"\*") for name, text in rep.settings] + [""]
    for task in rep.tasks:
        parts += [f"## {TASK_TITLES.get(task, task)}: test pairs", "",
                  "Columns: input | each model | target.", "", f"![{task} grid](grid-{task}.png)", ""]
    parts += ["## Loss curves", "", "Train (solid) and validation (dashed) loss per epoch; "
              "also `dvc plots show` (metrics/history/*.csv).", "", "![loss curves](loss-curves.svg)", "",
              "## Models", "", facts_markdown(rep.facts), ""]
    return "\n".join(parts)


def report(params: dict[str, Any], reports_dir: Path = REPORTS_DIR) -> Path:
    """The report stage: reports/report.md (+ PNG grids, SVG curves) and reports/report.html."""
    from .report_html import to_html

    rep = build(params)
    reports_dir = Path(reports_dir)
    for task, image in rep.grids.items():
        write_png(reports_dir / f"grid-{task}.png", image)
    write_png(reports_dir / "grid.png", stack(list(rep.grids.values())))
    fileio.write_text(reports_dir / "loss-curves.svg", svg_sheet([c for _, _, c in rep.charts], len(rep.tasks)))
    fileio.write_text(reports_dir / "report.html", to_html(rep))
    out = reports_dir / "report.md"
    fileio.write_text(out, to_markdown(rep))
    return out
