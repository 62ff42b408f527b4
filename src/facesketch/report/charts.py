"""The report's loss curves: metrics/history/<model>-<task>.csv as small inline SVG charts."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from facesketch.core.layout import HISTORY_DIR, history_file, run_name

# Every model logs one quantity under a name, for training and validation alike
# (Keras prefixes the validation one with val_), so the two curves compare.
TRAIN_CURVE = "loss"
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


def curves(history: dict[str, list[float]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(train points, validation points) as (epoch, value) lists."""
    epochs = history.get("epoch", [])

    def points(key):
        return [(e, v) for e, v in zip(epochs, history.get(key, [])) if math.isfinite(v)]

    return points(TRAIN_CURVE), points(VAL_CURVE)
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
    train, val = curves(history)
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
    for pts, colour, dash, name in ((train, TRAIN_COLOUR, "", TRAIN_CURVE),
                                    (val, VAL_COLOUR, ' stroke-dasharray="6 4"', VAL_CURVE)):
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
                         f'<title>{name}</title></polyline>')
            if len(pts) < 12:
                parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
    parts += _legend(left, 29)
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


def _legend(x: float, y: float) -> list[str]:
    """One line above the plot: train (solid), then validation (dashed)."""
    out = []
    for dx, colour, dash, name in ((0, TRAIN_COLOUR, "", f"train ({TRAIN_CURVE})"),
                                   (128, VAL_COLOUR, ' stroke-dasharray="6 4"', f"validation ({VAL_CURVE})")):
        out.append(f'<line x1="{x + dx}" x2="{x + dx + 20}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>'
                   f'<text x="{x + dx + 24}" y="{y + 4}" font-size="10">{html.escape(name)}</text>')
    return out


def loss_label(info: dict[str, Any], history: dict[str, list[float]]) -> str:
    """The y axis: the params.yaml loss where it is all the model optimises, else what is known."""
    loss = (info.get("training") or {}).get("loss")
    # composite objectives (the VAE's, the GAN's) log their terms too: their loss is not params.yaml's
    plain = set(history) <= {"epoch", TRAIN_CURVE, VAL_CURVE}
    return f"loss ({loss})" if loss and plain else "loss"


def loss_charts(models: list[str], tasks: list[str], rows: list[dict[str, Any]],
                history_dir: Path = HISTORY_DIR) -> list[tuple[str, str, str]]:
    """(model, task, svg) per model x task, in table order."""
    infos = {(r["model"], r["task"]): r.get("info", {}) for r in rows if not r["baseline"]}
    charts = []
    for model in models:
        for task in tasks:
            history = read_history(history_file(run_name(model, task), history_dir))
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

