"""MLflow tracking: one run per model x task per pipeline run, through MLflow's public client.

``store``: where the store is, whether it can be used, the lock around creating it;
``run``: the run itself (``Tracker``) and adding evaluation results to it;
``tags``: what a run is tagged with and which params it logs.
"""

from facesketch.tracking.run import Tracker, log_to_run, mark_run, not_logged
from facesketch.tracking.store import StoreUnavailable, check_store, repo_root, store_lock, tracking_uri
from facesketch.tracking.tags import data_params, flat_params, git_commit, group_id

__all__ = ["StoreUnavailable", "Tracker", "check_store", "data_params", "flat_params", "git_commit", "group_id",
           "log_to_run", "mark_run", "not_logged", "repo_root", "store_lock", "tracking_uri"]
