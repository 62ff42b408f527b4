"""DVC stage report: reports/report.md and image grids for every model x task."""
import facesketch  # noqa: F401
from facesketch import stage
from facesketch.report import report

stage.run(lambda ns, p: f"report: {report(p)}", description=__doc__)
