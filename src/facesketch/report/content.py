"""What the report shows, collected and computed: rows from metrics/*.json and models/*/info.json,
the results table's cells, the best-vs-runner-up comparisons, training facts and metric settings.

Both writers (``markdown_writer``, ``html_writer``) render a ``Report``; nothing here formats for one
document only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from facesketch.evaluation import protocol
from facesketch.core import fileio
from facesketch.core.errors import DataError
from facesketch.core.saved import metrics_mismatch
from facesketch.core.layout import (INFO_FILE, METRICS_DIR, MODELS_DIR, baselines_name, metrics_file, model_dir, per_image_file,
                      run_name)
from facesketch.evaluation.metric_specs import BENCHMARK_METRICS, GROUPS, MetricSpec, with_legacy_keys


TASK_TITLES = {"f2s": "photo -> sketch (f2s)", "s2f": "sketch -> photo (s2f)"}
BASELINE_LABELS = {"mean_target": "baseline: mean training target", "grey_input": "baseline: greyscale input",
                   "input": "baseline: the input itself"}
REFERENCE_BASELINE = "mean_target"  # every model's difference is taken to this one

METRICS = BENCHMARK_METRICS  # the table's columns, in order
COLUMNS = tuple(m.key for m in METRICS)
SIGNIFICANT_MARK = "†"


# ---------------------------------------------------------------- collecting

def collect(models: list[str], tasks: list[str], metrics_dir: Path = METRICS_DIR,
            models_dir: Path = MODELS_DIR) -> list[dict[str, Any]]:
    """One row per baseline and per model x task: its metrics and training facts."""
    rows = []
    for task in tasks:
        base_file = metrics_file(baselines_name(task), metrics_dir)
        if base_file.exists():
            found = fileio.read_json(base_file)
            known = list(BASELINE_LABELS)  # mean target first
            for kind in sorted(found, key=lambda k: known.index(k) if k in known else len(known)):
                rows.append({"model": kind, "label": BASELINE_LABELS.get(kind, f"baseline: {kind}"),
                             "task": task, "baseline": True, **with_legacy_keys(found[kind])})
        for model in models:
            name = run_name(model, task)
            info_file = model_dir(name, models_dir) / INFO_FILE
            info = fileio.read_json(info_file) if info_file.exists() else {}
            scores = fileio.read_json(metrics_file(name, metrics_dir))
            stale = metrics_mismatch(scores, model_dir(name, models_dir), metrics_file(name, metrics_dir))
            if stale:  # another model's scores under this model's name: refuse, never report them
                raise DataError(f"report: {stale}")
            rows.append({"model": model, "label": model, "task": task, "baseline": False,
                         **with_legacy_keys(scores), "info": info})
    return rows


def comparisons(models: list[str], tasks: list[str],
                metrics_dir: Path = METRICS_DIR) -> dict[tuple[str, str], protocol.Comparison]:
    """(task, metric) -> best model vs runner-up by a paired bootstrap over their per-image scores."""
    import pandas as pd

    out = {}
    for task in tasks:
        tables = {}
        for model in models:
            path = per_image_file(run_name(model, task), metrics_dir)
            if path.exists():
                tables[model] = pd.read_csv(path).rename(columns={"rank1": "ssim_rank1"})  # files before #26
        if len(tables) < 2:
            continue
        for metric in protocol.TASK_METRICS.get(task, ()):
            comp = protocol.compare_best(metric, protocol.aligned_per_image(tables, metric))
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


def _best(values: Iterable[float | None], metric: MetricSpec) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if metric.higher_is_better else min(present)


def results_table(rows: list[dict[str, Any]],
                  compared: dict[tuple[str, str], protocol.Comparison] | None = None) -> list[TableRow]:
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


def used_metrics(table: list[TableRow], group: str | None = None) -> list[MetricSpec]:
    """The metrics (of ``group``, or all) some row has a value for (FSIMc only with s2f, SCOOT only
    with f2s, identity only where dlib is installed)."""
    return [m for m in METRICS if (group is None or m.group == group)
            and any(r.cells[m.key].value is not None for r in table)]


def absent_groups(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Column group -> why none of its metrics is shown (from the metrics files' ``absent``), for the
    groups no row has a value of."""
    out = {}
    for group in GROUPS:
        keys = [m.key for m in METRICS if m.group == group]
        if any(_value(r, k) is not None for r in rows for k in keys):
            continue
        reasons = [r["absent"][k] for r in rows for k in keys if k in (r.get("absent") or {})]
        out[group] = reasons[0] if reasons else (
            "not in the metrics files: they were scored before this metric existed; rerun the evaluate and "
            "baselines stages (dvc repro)")
    return out


def _cell(v: float | None, metric: MetricSpec, reference: float | None, best: float | None) -> Cell:
    cell = Cell(v, metric.fmt(v), best=v is not None and v == best)
    if v is not None and reference is not None:
        cell.delta = v - reference
        cell.delta_text = metric.fmt_delta(cell.delta)
        cell.better = None if cell.delta == 0 else (cell.delta > 0) == metric.higher_is_better
    return cell


def comparison_rows(compared: dict[tuple[str, str], protocol.Comparison]) -> list[dict[str, str]]:
    """Display rows: per task and metric, best vs runner-up and the verdict."""
    by_key = {m.key: m for m in METRICS}
    out = []
    for (task, key), c in compared.items():
        m = by_key[key]
        interval = "-" if c.interval is None else f"[{m.fmt_delta(c.interval[0])}, {m.fmt_delta(c.interval[1])}]"
        verdict = (f"{c.best} beats {c.runner_up}" if c.significant
                   else "not distinguishable (the interval includes 0)")
        out.append({"task": task, "metric": m.label, "best": c.best, "runner-up": c.runner_up,
                    "difference": m.fmt_delta(c.difference), "95% interval": interval,
                    "images": str(c.n_images), "verdict": verdict})
    return out


COMPARISON_COLUMNS = ("task", "metric", "best", "runner-up", "difference", "95% interval", "images", "verdict")


@dataclass
class Answer:
    """The study's question for one task: which model wins on which metric, by how much, and why."""
    task: str
    n_images: int
    wins: list[str]                   # one sentence per winning model, from the run's numbers
    why: list[tuple[str, str]]        # (winning model, what its architecture and loss do)


def answers(compared: dict[tuple[str, str], protocol.Comparison], explain=None) -> list[Answer]:
    """Per task: each model that is best on some metric, where its lead over the runner-up is
    significant by the paired bootstrap (difference and 95% interval), and what in its architecture
    and loss explains it (``explain(model)``; default: the model registry's description)."""
    if explain is None:
        from facesketch.models import describe as explain
    by_key = {m.key: m for m in METRICS}
    out = []
    for task in dict.fromkeys(t for t, _ in compared):
        won: dict[str, list[tuple[MetricSpec, protocol.Comparison]]] = {}
        for m in METRICS:  # the table's metric order
            c = compared.get((task, m.key))
            if c is not None:
                won.setdefault(c.best, []).append((by_key[m.key], c))
        sentences = []
        for model, items in won.items():
            names = ", ".join(m.name for m, _ in items)
            significant = [f"{m.name} by {m.fmt_delta(c.difference)} over {c.runner_up} "
                           f"[{m.fmt_delta(c.interval[0])}, {m.fmt_delta(c.interval[1])}]"
                           for m, c in items if c.significant]
            lead = (f"significantly on {'; '.join(significant)}" if significant else
                    "no lead is significant (each paired 95% interval includes 0)")
            sentences.append(f"{model} is best on {names}: {lead}.")
        sentences += identity_contrast(task, compared)
        n = max((c.n_images for (t, _), c in compared.items() if t == task), default=0)
        out.append(Answer(task, n, sentences, [(model, explain(model)) for model in won]))
    return out


def identity_contrast(task: str, compared: dict[tuple[str, str], protocol.Comparison]) -> list[str]:
    """A sentence when the model best on structure (FSIM) is not the one that keeps identity best
    (identity ROC AUC): a recipe that raises FSIM while losing identity shows here."""
    structure, ident = compared.get((task, "fsim")), compared.get((task, "id_auc"))
    if ident is None:
        return []
    rank1 = compared.get((task, "id_rank1"))
    kept = (f"Identity: {ident.best} keeps the person best to dlib's face recognizer (ROC AUC "
            f"{ident.difference:+.3f} over {ident.runner_up}" + ("" if ident.significant else ", not significant")
            + ")" + (f", {rank1.best} identifies best (rank-1)" if rank1 is not None else ""))
    if structure is None or structure.best == ident.best:
        return [kept + "."]
    if ident.significant:
        return [kept + f"; the best on FSIM, {structure.best}, loses identity to it."]
    return [kept + f"; the best on FSIM is {structure.best}, but no identity lead is significant here."]


def fallback_note(rows: list[dict[str, Any]]) -> str | None:
    """Which outputs (and targets) dlib found no face in: scored on the CUHK face box instead."""
    found = [f"{r['label']} {r['task']}: {r['id_fallbacks']} of {r.get('n_images', '?')}"
             for r in rows if r.get("id_fallbacks")]
    targets = {r["task"]: r["id_gallery_fallbacks"] for r in rows if r.get("id_gallery_fallbacks")}
    if not found and not targets:
        return None
    text = ("dlib's detector found no face in these outputs, which were scored on the fixed CUHK face box "
            "instead: " + "; ".join(found) + "." if found else "")
    if targets:
        text += (" " if text else "") + "Targets without a detected face (CUHK box): " + \
            ", ".join(f"{t} {n}" for t, n in targets.items()) + "."
    return text


def psnr_note(rows: list[dict[str, Any]]) -> str | None:
    """Which PSNR means leave out infinitely good (identical) images, if any do."""
    left_out = [f"{r['label']} {r['task']}: {r['psnr_infinite']} of {r.get('n_images', '?')}"
                for r in rows if r.get("psnr_infinite")]
    if not left_out:
        return None
    return "PSNR is infinite for an exactly reproduced image; these means leave such images out: " + \
        "; ".join(left_out) + "."


def test_time_note(rows: list[dict[str, Any]]) -> str | None:
    """Which models' scores include test-time levers (params.yaml ``test_time``), if any do."""
    with_levers = [f"{r['label']} {r['task']}: {r['test_time']}" for r in rows
                   if not r["baseline"] and r.get("test_time") not in (None, "none")]
    if not with_levers:
        return None
    return ("Scored with test-time levers (params.yaml `test_time`; `facesketch predict` and the web page "
            "apply the same to these models): " + "; ".join(with_levers) + ". Mirror: each output averaged "
            "with the mirrored output of the mirrored input; bilateral: OpenCV's bilateral filter on each "
            "8-bit output (src/facesketch/evaluation/test_time.py).")


def table_notes(rows: list[dict[str, Any]]) -> str | None:
    """The notes under the results table, in one paragraph (None: none apply)."""
    notes = [n for n in (test_time_note(rows), psnr_note(rows)) if n]
    return " ".join(notes) or None


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
    """(name, definition): the protocol, from facesketch.evaluation.protocol's module docstring, then the
    definitions the metrics' spec gives (FSIM, FSIMc, SCOOT)."""
    return _doc_entries(protocol.__doc__, "The protocol, step by step:") + [
        (m.name, m.definition) for m in METRICS if m.definition]


def resolution_note(image_size: int) -> str:
    return (f"Benchmark protocol: the models work at {image_size}x{image_size}; each 8-bit prediction is "
            "resized (bicubic) to its target's native size (CUHK: 200 wide x 250 high), saved as a PNG in "
            "data/predictions/<model>-<task>/<id>.png, and scored against the original fetched file "
            "(data/raw/pairs.csv), never the cleaned one. FSIM's downsampling factor F is 1 at 200x250; "
            "SSIM rank-1 matches each output against all test targets by grey SSIM at native size; identity "
            "matches dlib's face descriptor of each output against those of all real test targets. "
            "Intervals: 95% percentile bootstrap over the test images (10,000 resamples); "
            f"{SIGNIFICANT_MARK}: the best model beats the runner-up by a paired bootstrap (same resamples). "
            "Both speak of the test images, not of training: each model is one training run, and retraining "
            "with only the batch order changed moved FSIM by up to 0.014 (unet_gan, 6 epochs, 70 CUHK pairs; "
            "docs/results.md).")


def glance() -> list[tuple[str, str, str]]:
    """Per metric: name, what it is computed on (f2s / s2f), data range (a digest of the protocol)."""
    return [(m.name, m.computed_on, m.data_range) for m in METRICS]


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


# ---------------------------------------------------------------- the documents

@dataclass
class Report:
    """Everything both documents show, already computed."""
    title: str
    intro: list[str]
    warning: str | None
    table: list[TableRow]
    table_note: str | None
    absent: dict[str, str]                  # column group -> why it is not shown
    comparisons: list[dict[str, str]]
    answers: list[Answer]
    split_note: str | None
    n_images: dict[str, int]
    glance: list[tuple[str, str, str]]      # (metric, computed on, data range)
    settings: list[tuple[str, str]]
    resolution: str
    grids: dict[str, np.ndarray]     # task -> RGB image grid
    charts: list[tuple[str, str, str]]  # (model, task, svg)
    facts: list[dict[str, str]]
    tasks: list[str]
    group_notes: dict[str, str] = field(default_factory=dict)  # column group -> a note under its table

