"""DVC stage check_params: every setting in params.yaml checked before any other stage runs."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.core.layout import PARAMS_CHECKED_FILE
from facesketch.core.param_check import check_params


def main(ns, params):
    check_params(params)
    return f"check_params: params.yaml is valid -> {PARAMS_CHECKED_FILE}"


stage.run(main, description=__doc__)
