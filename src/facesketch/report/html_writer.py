"""reports/report.html: the report as one self-contained page.

Nothing is loaded from anywhere: the style is inline, the image grids are
base64 ``data:`` URIs, the loss curves inline SVG, and there is no script.
"""

from __future__ import annotations

from html import escape

from facesketch.core.images import encode_image
from facesketch.evaluation.grids import data_uri
from facesketch.evaluation.metric_specs import GROUPS
from facesketch.report.content import (COMPARISON_COLUMNS, FACT_COLUMNS, SIGNIFICANT_MARK, TASK_TITLES, Report, TableRow,
                      used_metrics)
from facesketch.report.published import NOT_COMPUTED_NOTE, PUBLISHED_COLUMNS, PUBLISHED_LABEL, published_rows

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0 auto; padding: 16px 20px 40px; max-width: 1440px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px;
       border-bottom: 1px solid #ddd; padding-bottom: 3px; } h3 { font-size: 15px; margin: 0 0 6px; }
p { margin: 4px 0 8px; } code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.note { background: #fff6d6; border-left: 4px solid #e0b000; padding: 6px 10px; margin: 10px 0; }
.side { display: flex; flex-wrap: wrap; gap: 22px; align-items: flex-start; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d6d6d6; padding: 4px 7px; }
th { background: #f2f4f7; text-align: center; } td.num { text-align: right; white-space: nowrap; }
tr.group th { background: #e6ebf2; text-align: left; }
tr.baseline td { background: #fafafa; color: #555; font-style: italic; }
td.best { font-weight: bold; } .delta { font-size: 10.5px; margin-left: 3px; color: #888; }
.delta.better { color: #1a7f37; } .delta.worse { color: #c0392b; }
table.published td, table.published th { font-size: 12px; padding: 3px 6px; }
table.published td.model { max-width: 150px; } table.published caption,
table.results caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 4px; }
dl { margin: 6px 0; } dt { font-weight: bold; margin-top: 6px; } dd { margin: 0 0 0 18px; }
.grids img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, 322px); gap: 10px; }
.charts svg { border: 1px solid #e2e2e2; }
td.params { font-size: 12px; max-width: 520px; }
.small { font-size: 12px; color: #555; }
td.foot { font-size: 11px; color: #666; border: none; padding-top: 4px; }
.ci { display: block; font-size: 10.5px; color: #666; } .sig { color: #1a7f37; font-weight: bold; }
table.published td.src { font-size: 11px; max-width: 320px; color: #555; }
"""


def _table_rows(table: list[TableRow], group: str | None = None) -> list[str]:
    metrics = used_metrics(table, group)
    out, task = [], None
    for row in table:
        if row.task != task:
            task = row.task
            out.append(f'<tr class="group"><th colspan="{len(metrics) + 1}">'
                       f'{escape(TASK_TITLES.get(task, task))}</th></tr>')
        cls = "baseline" if row.baseline else "model"
        tds = [f'<td class="label">{escape(row.label)}</td>']
        for m in metrics:
            c = row.cells[m.key]
            value = "" if c.value is None else repr(c.value)
            delta = ""
            if c.delta_text:
                tone = {True: " better", False: " worse", None: ""}[c.better]
                delta = f'<span class="delta{tone}">({escape(c.delta_text)})</span>'
            mark = f'<span class="sig" title="beats the runner-up (paired bootstrap)">{SIGNIFICANT_MARK}</span>' \
                if c.significant else ""
            ci = f'<span class="ci">{escape(c.interval_text)}</span>' if c.interval_text else ""
            tds.append(f'<td class="num{" best" if c.best else ""}" data-task="{escape(row.task)}" '
                       f'data-model="{escape(row.model)}" data-metric="{m.key}" data-value="{value}">'
                       f'{escape(c.text)}{mark}{delta}{ci}</td>')
        out.append(f'<tr class="{cls}" data-task="{escape(row.task)}" data-model="{escape(row.model)}">'
                   + "".join(tds) + "</tr>")
    return out


def results_html(rep: Report) -> str:
    """One table per column group (pixels, identity, perceptual) with what it means, or why it is absent."""
    parts = []
    for group, (title, meaning) in GROUPS.items():
        if group in rep.absent or not used_metrics(rep.table, group):
            parts.append(f'<p class="small absent" data-group="{group}"><b>{escape(title)}</b>: not shown: '
                         f"{_code(escape(rep.absent.get(group, 'no values')))}.</p>")
            continue
        head = "<tr><th>model</th>" + "".join(f"<th>{escape(m.title)}</th>" for m in used_metrics(rep.table, group)) \
            + "</tr>"
        parts.append(f'<table class="results" data-group="{group}"><caption>{escape(title)}: our runs, test split, '
                     f'benchmark protocol</caption><thead>' + head + "</thead><tbody>"
                     + "".join(_table_rows(rep.table, group)) + "</tbody></table>"
                     + f'<p class="small">{escape(meaning)}</p>'
                     + (f'<p class="small">{escape(rep.group_notes[group])}</p>' if group in rep.group_notes else ""))
    return "".join(parts)


def comparisons_html(rep: Report) -> str:
    if not rep.comparisons:
        return "<p>Fewer than two models per task: nothing to compare.</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in COMPARISON_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{escape(r[c])}</td>" for c in COMPARISON_COLUMNS) + "</tr>"
                   for r in rep.comparisons)
    return (f'<table class="comparisons"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            '<p class="small">Difference: best minus runner-up, mean over the same test images; interval: '
            '95% paired bootstrap (the same resamples for both models).</p>')


def published_html() -> str:
    head = ("<tr><th>task</th><th>method</th><th>year</th><th>test set</th>"
            + "".join(f"<th>{escape(h)}</th>" for _, h in PUBLISHED_COLUMNS) + "<th>protocol and source</th></tr>")
    rows = []
    for p in published_rows():
        note = f'<br><i>{escape(p["note"])}</i>' if p["note"] else ""
        cells = "".join(f'<td class="num">{escape(p[k])}</td>' for k, _ in PUBLISHED_COLUMNS)
        rows.append(f'<tr class="published"><td>{escape(p["task"])}</td>'
                    f'<td class="model">{escape(p["model"])}{note}</td><td>{escape(p["year"])}</td>'
                    f'<td>{escape(p["test_set"])}</td>{cells}'
                    f'<td class="src">{escape(p["protocol"])}; {escape(p["source"])}</td></tr>')
    return (f'<table class="published"><caption>{escape(PUBLISHED_LABEL)}</caption><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody><tfoot><tr><td colspan="{len(PUBLISHED_COLUMNS) + 5}" class="foot">'
            f"PSNR in dB. -: the source gives no figure. {escape(NOT_COMPUTED_NOTE)}</td></tr></tfoot></table>")


def settings_html(rep: Report) -> str:
    glance = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(c)}</td></tr>" for a, b, c in rep.glance)
    items = "".join(f"<dt>{escape(n)}</dt><dd>{_code(escape(t))}</dd>" for n, t in rep.settings)
    return (f"<p>{escape(rep.resolution)}</p>"
            '<table><thead><tr><th>metric</th><th>computed on</th><th>data range</th></tr></thead>'
            f"<tbody>{glance}</tbody></table><h3 style=\"margin-top:12px\">Definitions "
            f"(from <code>facesketch.evaluation.protocol</code> and <code>facesketch.evaluation.metrics</code>)</h3><dl>{items}</dl>")


def grids_html(rep: Report) -> str:
    out = []
    for task, image in rep.grids.items():
        title = escape(TASK_TITLES.get(task, task))
        out.append(f"<h3>{title}</h3><p>Columns: input | each model | target.</p>"
                   f'<img alt="{escape(task)} test pairs" width="{image.shape[1]}" height="{image.shape[0]}" '
                   f'src="{data_uri(encode_image(image, "png"))}">')
    return '<div class="grids">' + "".join(out) + "</div>"


def charts_html(rep: Report) -> str:
    cells = "".join(f'<div data-model="{escape(m)}" data-task="{escape(t)}">{svg}</div>' for m, t, svg in rep.charts)
    return (f"<p>Train (solid) and validation (dashed) loss per epoch, one chart per model and task "
            "(each its own scale). The same curves: <code>dvc plots show</code> (metrics/history/*.csv).</p>"
            f'<div class="charts">{cells}</div>')


NUMERIC_FACTS = ("parameters", "train time", "epochs", "train / val pairs")


def facts_html(rep: Report) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in FACT_COLUMNS)

    def td(column: str, text: str) -> str:
        cls = "num" if column in NUMERIC_FACTS else "params" if column == "key params" else ""
        return f'<td class="{cls}">{escape(text)}</td>'

    body = "".join("<tr>" + "".join(td(c, r[c]) for c in FACT_COLUMNS) + "</tr>" for r in rep.facts)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def answers_html(rep: Report) -> str:
    if not rep.answers:
        return "<p>Fewer than two models per task: no winner to name.</p>"
    parts = []
    for a in rep.answers:
        parts.append(f"<p><b>{escape(TASK_TITLES.get(a.task, a.task))}</b>, {a.n_images} test images: "
                     + " ".join(escape(w) for w in a.wins) + "</p>")
        parts.append('<ul class="why">' + "".join(f"<li><i>{escape(m)}</i>: {_code(escape(t))}</li>" for m, t in a.why)
                     + "</ul>")
    return "".join(parts)


def to_html(rep: Report) -> str:
    intro = "".join(f"<p>{_code(escape(p))}</p>" for p in rep.intro)
    warning = f'<div class="note"><b>Note.</b> {_code(escape(rep.warning))}</div>' if rep.warning else ""
    counts = ", ".join(f"{escape(t)}: {n}" for t, n in rep.n_images.items())
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(rep.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(rep.title)}</h1>", intro, warning,
        "<h2>Results on the test split (benchmark protocol)</h2>", f"<p>Test images per task: {counts}.</p>",
        f'<div class="note"><b>Split.</b> {_code(escape(rep.split_note))}</div>' if rep.split_note else "",
        f'<div class="side">{results_html(rep)}{published_html()}</div>',
        f'<p class="small">{escape(rep.table_note)}</p>' if rep.table_note else "",
        "<h3>Best vs runner-up (paired bootstrap over the same test images)</h3>", comparisons_html(rep),
        "<h3>Which model wins, and why</h3>", answers_html(rep),
        "<h2>Metric settings</h2>", settings_html(rep),
        "<h2>Test pairs</h2>", grids_html(rep),
        "<h2>Loss curves</h2>", charts_html(rep),
        "<h2>Models</h2>", facts_html(rep),
        "</body></html>", ""])


def _code(text: str) -> str:
    """`x` -> <code>x</code> in already escaped text."""
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
