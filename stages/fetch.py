"""DVC stage fetch: raw photo/sketch pairs into data/raw (source: params data.source)."""
import facesketch  # noqa: F401  (quiets TensorFlow before anything imports it)
from facesketch.core import stage
from facesketch.data.fetch import fetch

stage.run(lambda ns, p: f"fetch: {fetch(p)} pairs from '{p['data']['source']}' in data/raw",
          description=__doc__)
