"""DVC stage report: reports/report.md (with PNG grids and SVG loss curves) and the
self-contained reports/report.html, for every model x task and the baselines."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.report import report


def main(ns, params):
    md = report(params)
    return f"report: {md} and {md.with_suffix('.html')}"


stage.run(main, description=__doc__)
