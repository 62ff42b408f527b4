"""DVC stage face_geometry: where the landmarks sit in the training photos; writes data/faces/geometry.json."""
import facesketch  # noqa: F401
from facesketch.core import stage
from facesketch.faces.measure import write_training_geometry


def main(ns, params):
    g = write_training_geometry()
    return f"face_geometry ({g.source}): {g.n_detected} faces in {g.n_images} training photos; {g.note}"


stage.run(main, description=__doc__)
