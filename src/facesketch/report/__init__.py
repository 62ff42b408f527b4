"""The report stage: our runs scored by the benchmark protocol, image grids and loss curves.

Writes ``reports/report.md`` (with ``grid-<task>.png``, ``grid.png`` and
``loss-curves.svg`` beside it) and ``reports/report.html``, a single
self-contained page: images are base64 ``data:`` URIs, the loss curves inline
SVG, the style inline; it loads nothing from anywhere.

The results table has one row per model x task plus the baselines (the mean
training target and, for f2s, the greyscale input photo), scored by the
protocol of ``facesketch.evaluation.protocol`` (native size, original targets). Each
value carries its 95% bootstrap interval; per task and metric the best *model*
value is bold, marked † when a paired bootstrap says it beats the runner-up,
and each model value carries its difference to the mean-target baseline.
Published results (with source, test set and protocol) stand beside it.

The package, by what changes together (imports run one way, top to bottom):

- ``content``: what is shown: rows collected from metrics/*.json and
  models/*/info.json, the table's cells, comparisons, facts, ``Report``;
  the metrics themselves come from ``facesketch.evaluation.metrics.BENCHMARK_METRICS``.
- ``published``: the published figures and their sources.
- ``charts``: the loss curves as SVG.
- ``markdown_writer``, ``html_writer``: a ``Report`` as report.md / report.html.
- ``build``: the stage: collect, build the ``Report``, write both documents
  (image grids through ``facesketch.evaluation.grids``).
"""

from facesketch.report.build import report

__all__ = ["report"]
