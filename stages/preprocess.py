"""DVC stage preprocess: decode, RGB, resize to image_size, store as uint8 arrays."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.data.preprocess import preprocess

stage.run(lambda ns, p: f"preprocess: {preprocess(p)} pairs at {p['image_size']}px -> data/processed/pairs.npz",
          description=__doc__)
