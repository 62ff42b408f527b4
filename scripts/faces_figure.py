"""Draw docs/cli.md's before/after figure of face alignment on skimage.data.astronaut().

    python scripts/faces_figure.py --model conv_bn --models-dir models -o docs/faces-astronaut.png

Panels: the picture with the detected box and five landmarks; the aligned
crop the model sees (the model's training geometry marked); the model's
output on it; the output pasted back (`predict --paste`); and, for
contrast, the whole picture squeezed into the model (`predict --no-align`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import facesketch  # noqa: F401  (quiet TensorFlow first)
from facesketch.core import fileio
from facesketch.core.images import resize
from facesketch.use.predictor import Predictor, process_image
from facesketch.use import catalog
from facesketch.faces.detect import detect_faces


def label(img: np.ndarray, text: str, height: int) -> np.ndarray:
    img = resize(img, max(1, round(img.shape[1] * height / img.shape[0])), height)
    bar = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="conv_bn")
    ap.add_argument("--task", default="f2s")
    ap.add_argument("--models-dir", type=Path, default=Path("models"))
    ap.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    ap.add_argument("--height", type=int, default=170, help="panel height in pixels")
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/faces-astronaut.png"))
    ns = ap.parse_args()

    from skimage import data

    picture = data.astronaut()
    entry, _ = catalog.choose_model(ns.task, ns.model, models_dir=ns.models_dir, metrics_dir=ns.metrics_dir)
    predictor = Predictor.load(entry, batch_size=1)
    done = process_image(predictor, picture)
    squeezed = process_image(predictor, picture, align=False).image

    marked = picture.copy()
    for face in detect_faces(picture):
        x, y, w, h = (int(round(v)) for v in face.box)
        cv2.rectangle(marked, (x, y), (x + w, y + h), (255, 255, 0), 2)
        for px, py in face.points:
            cv2.circle(marked, (int(px), int(py)), 4, (255, 0, 0), -1, cv2.LINE_AA)
    zoom = marked[0:300, 90:350]  # the head: the landmarks are too small to see in the whole picture

    crop = done.faces[0].crop.copy()
    for px, py in entry.face_geometry.pixels(crop.shape[0]):
        cv2.circle(crop, (int(px), int(py)), 3, (255, 0, 0), -1, cv2.LINE_AA)

    h = ns.height
    panels = [label(picture, "input (512x512)", h), label(zoom, "detected (MTCNN)", h),
              label(crop, "aligned crop", h), label(done.outputs[0], f"{entry.name} output", h),
              label(done.image, "--paste (default)", h), label(squeezed, "--no-align", h)]
    gap = np.full((h + 22, 6, 3), 255, np.uint8)
    row = [panels[0]]
    for p in panels[1:]:
        row += [gap, p]
    figure = np.concatenate(row, axis=1)
    from io import BytesIO

    from PIL import Image  # a 256-colour palette: a third of the bytes, no visible change at this size

    png = BytesIO()
    Image.fromarray(figure).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, "PNG", optimize=True)
    fileio.write_bytes(ns.output, png.getvalue())
    print(f"wrote {ns.output} ({figure.shape[1]}x{figure.shape[0]}) with {entry.name}: "
          f"{len(done.faces)} face(s); geometry: {entry.face_geometry.note}")


if __name__ == "__main__":
    main()
