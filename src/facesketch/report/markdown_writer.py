"""reports/report.md: the report as Markdown (with the PNG grids and the SVG curves beside it)."""

from __future__ import annotations

from facesketch.evaluation.metric_specs import GROUPS
from facesketch.report.content import (COMPARISON_COLUMNS, FACT_COLUMNS, SIGNIFICANT_MARK, TASK_TITLES, Report, TableRow,
                      used_metrics)
from facesketch.report.published import NOT_COMPUTED_NOTE, PUBLISHED_COLUMNS, PUBLISHED_LABEL, published_rows


def markdown_table(table: list[TableRow], group: str | None = None) -> str:
    metrics = used_metrics(table, group)
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


def grouped_tables(rep: Report) -> list[str]:
    """One table per column group (pixels, identity, perceptual), each with what it means, or why it is absent."""
    parts = []
    for group, (title, meaning) in GROUPS.items():
        parts += [f"### {title}", ""]
        if group in rep.absent or not used_metrics(rep.table, group):
            parts += [f"Not shown: {rep.absent.get(group, 'no values')}.", ""]
            continue
        parts += [meaning, "", markdown_table(rep.table, group), ""]
        if group in rep.group_notes:
            parts += [rep.group_notes[group], ""]
    return parts


def comparison_markdown(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "Fewer than two models per task: nothing to compare."
    lines = ["| " + " | ".join(COMPARISON_COLUMNS) + " |", "|" + "---|" * len(COMPARISON_COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in COMPARISON_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def published_markdown() -> str:
    lines = ["| task | method | year | test set | " + " | ".join(h for _, h in PUBLISHED_COLUMNS)
             + " | protocol | source |",
             "|---|---|---|---|" + "---:|" * len(PUBLISHED_COLUMNS) + "---|---|"]
    for p in published_rows():
        model = f"{p['model']} ({p['note']})" if p["note"] else p["model"]
        lines.append(f"| {p['task']} | {model} | {p['year']} | {p['test_set']} | "
                     + " | ".join(p[k] for k, _ in PUBLISHED_COLUMNS) + f" | {p['protocol']} | {p['source']} |")
    return "\n".join(lines)


def facts_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(FACT_COLUMNS) + " |", "|" + "---|" * len(FACT_COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in FACT_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def answers_markdown(rep: Report) -> str:
    if not rep.answers:
        return "Fewer than two models per task: no winner to name."
    parts = []
    for a in rep.answers:
        parts += [f"**{TASK_TITLES.get(a.task, a.task)}**, {a.n_images} test images: " + " ".join(a.wins), ""]
        parts += [f"- *{model}*: {text}" for model, text in a.why] + [""]
    return "\n".join(parts).rstrip()


def to_markdown(rep: Report) -> str:
    parts = [f"# {rep.title}", "", *[p + "\n" for p in rep.intro]]
    if rep.warning:
        parts += [f"> **Note.** {rep.warning}", ""]
    parts += ["## Results on the test split (benchmark protocol)", "",
              "Test images per task: " + ", ".join(f"{t} {n}" for t, n in rep.n_images.items()) + ".", "",
              *([f"> **Split.** {rep.split_note}", ""] if rep.split_note else []),
              *grouped_tables(rep), *([rep.table_note, ""] if rep.table_note else []),
              "### Best vs runner-up (paired bootstrap over the same test images)", "",
              comparison_markdown(rep.comparisons), "",
              "### Which model wins, and why", "", answers_markdown(rep), "",
              f"### {PUBLISHED_LABEL}", "", published_markdown(), "", NOT_COMPUTED_NOTE, "",
              "## Metric settings", "", rep.resolution, ""]
    parts += ["| metric | computed on | data range |", "|---|---|---|"]
    parts += [f"| {a} | {b} | {c} |" for a, b, c in rep.glance] + [""]
    parts += [f"- **{name}**: " + text.replace("*", r"\*") for name, text in rep.settings] + [""]
    for task in rep.tasks:
        parts += [f"## {TASK_TITLES.get(task, task)}: test pairs", "",
                  "Columns: input | each model | target.", "", f"![{task} grid](grid-{task}.png)", ""]
    parts += ["## Loss curves", "", "Train (solid) and validation (dashed) loss per epoch; "
              "also `dvc plots show` (metrics/history/*.csv).", "", "![loss curves](loss-curves.svg)", "",
              "## Models", "", facts_markdown(rep.facts), ""]
    return "\n".join(parts)

