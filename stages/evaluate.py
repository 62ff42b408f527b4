"""DVC stage evaluate: MAE/PSNR/SSIM/.../identity of one model x task on the test split, with the
task's test-time levers (params.yaml: test_time.<task>)."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.core.params import section
from facesketch.evaluation.evaluate import evaluate


def main(ns, params):
    levers = getattr(section(params, "test_time"), ns.task).model_dump()
    s = evaluate(ns.model, ns.task, test_time=levers)
    shown = ", ".join(f"{k} {s[k]:.4f}" for k in ("mae", "psnr", "ssim", "id_rank1") if k in s)
    return f"evaluate {ns.model}-{ns.task}: {shown}" + (f" (test time: {s['test_time']})" if "test_time" in s else "")


stage.run(main, description=__doc__, args=stage.MODEL_TASK)
