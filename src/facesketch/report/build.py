"""The report stage: collect, build one ``Report``, write both documents and their images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facesketch.evaluation import protocol
from facesketch.core import fileio
from facesketch.core.params import section
from facesketch.core.layout import (METRICS_DIR, MODELS_DIR, PREDICTIONS_DIR, PROCESSED_FILE, REPORTS_DIR, SPLIT_FILE, predictions_of,
                      run_name)
from facesketch.data.dataset import load_task
from facesketch.evaluation.grids import as_rgb, image_grid, write_png
from facesketch.report.charts import loss_charts, svg_sheet
from facesketch.report.content import (SIGNIFICANT_MARK, Report,
                      absent_groups, answers, collect, comparison_rows, fallback_note, comparisons, facts, glance, metric_settings,
                      resolution_note, results_table, table_notes)
from facesketch.report.html_writer import to_html
from facesketch.report.markdown_writer import to_markdown


# ---------------------------------------------------------------- image grids

def grid(task: str, models: list[str], n_pairs: int, *, predictions_dir: Path = PREDICTIONS_DIR,
         processed_file: Path = PROCESSED_FILE, split_file: Path = SPLIT_FILE, tile: int = 128) -> np.ndarray:
    """RGB uint8 image: one row per test pair (the first n_pairs), columns input | each model | target."""
    test = load_task(task, "test", processed_file, split_file)
    ids = test.ids[:min(n_pairs, len(test.ids))]
    columns = [("input", test.inputs)]
    for m in models:  # the native-size PNGs the protocol scored
        folder = predictions_of(run_name(m, task), predictions_dir)
        columns.append((m, [as_rgb(protocol.read_prediction(folder / f"{pid}.png")) for pid in ids]))
    columns.append(("target", test.targets))
    return image_grid(ids, columns, tile)


def stack(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Images one under another on white, padded to the widest."""
    width = max(g.shape[1] for g in images)
    return np.concatenate([np.pad(g, ((0, gap), (0, width - g.shape[1]), (0, 0)), constant_values=255)
                           for g in images])


# ---------------------------------------------------------------- the report

def build(params: dict[str, Any], metrics_dir: Path = METRICS_DIR, models_dir: Path = MODELS_DIR) -> Report:
    models, tasks = list(params["models"]), list(params["tasks"])
    n_pairs = section(params, "report").grid_pairs
    rows = collect(models, tasks, metrics_dir, models_dir)
    compared = comparisons(models, tasks, metrics_dir)
    size, split, source = params["image_size"], params.get("split") or {}, params["data"]["source"]
    split_protocol = split.get("protocol")
    split_text = ("the standard CUHK split (88 training / 100 testing pairs, from the archives)"
                  if split_protocol == "cuhk" else
                  f"a random split over identities (test fraction {split.get('test_fraction')})")
    intro = [f"Data: `{source}`, models at {size}x{size} RGB; every number below comes from split `{split_protocol}`: "
             f"{split_text}; validation {split.get('val_fraction')} of training.",
             "Every model is read against the baselines of its task: the mean training target "
             "(one constant image) and, for f2s, the greyscale of the input photo. "
             "Bold: the best model of the task for that metric (baselines excluded); "
             f"{SIGNIFICANT_MARK}: it beats the runner-up by a paired bootstrap. In square brackets: the 95% "
             "bootstrap interval of the mean. In round brackets: the model's difference to the mean-target "
             "baseline (shares in percentage points); ↑/↓ marks which direction is better."]
    split_note = None if split_protocol == "cuhk" and source in ("cuhk", "archive_dir") else (
        "These rows are not on the standard benchmark split, so they do not stand next to published CUHK "
        "tables; for a benchmark row run `dvc exp run -S data.source=cuhk -S split.protocol=cuhk` "
        "(the four CUHK archives).")
    warning = (f"Data source `{source}`: generated faces, so these numbers say nothing about the study's "
               "CUHK results." if source == "synthetic" else None)
    return Report(
        title="facesketch report", intro=intro, warning=warning,
        table=results_table(rows, compared), table_note=table_notes(rows), absent=absent_groups(rows),
        group_notes={k: v for k, v in {"identity": fallback_note(rows)}.items() if v},
        comparisons=comparison_rows(compared), answers=answers(compared), split_note=split_note,
        n_images={r["task"]: r["n_images"] for r in rows if not r["baseline"] and r.get("n_images")},
        glance=glance(), settings=metric_settings(), resolution=resolution_note(size),
        grids={t: grid(t, models, n_pairs) for t in tasks},
        charts=loss_charts(models, tasks, rows), facts=facts(rows), tasks=tasks)


def report(params: dict[str, Any], reports_dir: Path = REPORTS_DIR) -> Path:
    """The report stage: reports/report.md (+ PNG grids, SVG curves) and reports/report.html."""
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
