"""DVC stage check_params: every setting in params.yaml checked before any other stage runs."""
import facesketch  # noqa: F401
from facesketch import stage
from facesketch.param_check import CHECKED_FILE, check_params


def main(ns, params):
    check_params(params)
    return f"check_params: params.yaml is valid -> {CHECKED_FILE}"


stage.run(main, description=__doc__)
