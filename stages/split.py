"""DVC stage split: seeded train/val/test lists of pair ids (params: split)."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.data.split import split


def main(ns, params):
    s = split(params)
    return f"split ({s['protocol']}): {len(s['train'])} train, {len(s['val'])} val, {len(s['test'])} test"


stage.run(main, description=__doc__)
