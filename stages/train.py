"""DVC stage train: fit one model on one task; saves models/<model>-<task>/."""
import facesketch  # noqa: F401
from facesketch import stage
from facesketch.training import train


def main(ns, params):
    info = train(ns.model, ns.task, params)
    final = info["final"]
    return (f"train {ns.model}-{ns.task}: {info['epochs']} epochs, {info['parameters']:,} parameters, "
            f"loss {final.get('loss', float('nan')):.4f}, val_loss {final.get('val_loss', float('nan')):.4f}")


stage.run(main, description=__doc__, args=stage.MODEL_TASK)
