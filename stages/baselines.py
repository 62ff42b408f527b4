"""DVC stage baselines: the scores every model must beat on a task."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.evaluation.evaluate import baselines


def main(ns, params):
    res = baselines(ns.task)
    return f"baselines {ns.task}: " + "; ".join(
        f"{k} ssim {v['ssim']:.4f}" + (f", id rank-1 {v['id_rank1']:.0%}" if "id_rank1" in v else "")
        for k, v in res.items())


stage.run(main, description=__doc__, args=[stage.TASK])
