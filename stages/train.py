"""DVC stage train: fit one model on one task; saves models/<model>-<task>/.

Keras fixes its backend when first imported, so ``runtime.backend`` is applied
(KERAS_BACKEND) before anything imports Keras: the training code is imported in ``main``.
"""
import facesketch  # noqa: F401
from facesketch.core import backend, stage
from facesketch.core.params import runtime


def main(ns, params):
    backend.select(runtime(params)["backend"])
    from facesketch.training.fit import train

    info = train(ns.model, ns.task, params)
    final = info["final"]
    val = f"val_loss {final['val_loss']:.4f}" if "val_loss" in final else "no validation pairs (split.val_fraction)"
    return (f"train {ns.model}-{ns.task}: {info['epochs']} epochs, {info['parameters']:,} parameters, "
            f"loss {final.get('loss', float('nan')):.4f}, {val}")


stage.run(main, description=__doc__, args=stage.MODEL_TASK)
