"""DVC stage evaluate: MAE/PSNR/SSIM/.../identity of one model x task on the test split."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.evaluation.evaluate import evaluate


def main(ns, params):
    s = evaluate(ns.model, ns.task)
    return f"evaluate {ns.model}-{ns.task}: " + ", ".join(f"{k} {s[k]:.4f}" for k in ("mae", "psnr", "ssim", "id_rank1") if k in s)


stage.run(main, description=__doc__, args=stage.MODEL_TASK)
