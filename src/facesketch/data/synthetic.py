"""Synthetic CUHK-like face photo/sketch pairs: the offline default data source.

Each identity is a frontal face drawn with OpenCV from geometry and colours
sampled by a generator seeded with ``(seed, index)``, so pair k is the same
whatever the count. The sketch is a pencil rendering of the same noise-free
photo (tone from luminance, a colour-dodge, dark lines at colour edges, a
little pencil grain): pixel-aligned with the photo and a local function of it,
so a small convolutional network can learn the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facesketch.core import fileio
from facesketch.core.images import LUMA
from facesketch.data.manifest import Pair, write_manifest

REF_W, REF_H = 200, 250   # the geometry below is in this frame, scaled to the output size
TRAIN_SHARE = 88 / 188    # CUHK student set: 88 training and 100 testing pairs
JPEG_QUALITY = 95
_SHIFT = 4                # fractional bits of the coordinates given to cv2 drawing calls
_LUMA = np.array(LUMA, np.float32)
_SCLERA = np.array([0.92, 0.9, 0.88], np.float32).reshape(3, 1, 1)
_BLUSH = np.array([0.1, -0.04, -0.02], np.float32).reshape(3, 1, 1)   # added to the cheeks' RGB

# Palettes, RGB in [0, 1]; each identity picks one entry and jitters it.
_SKIN = np.array([[241, 205, 178], [232, 190, 160], [220, 172, 138], [196, 140, 104], [150, 104, 76]]) / 255
_HAIR = np.array([[24, 20, 19], [58, 38, 27], [110, 72, 42], [205, 170, 110], [160, 157, 152]]) / 255
_HAIR_P = np.array([0.38, 0.27, 0.15, 0.1, 0.1])
_IRIS = np.array([[55, 33, 20], [95, 62, 35], [70, 110, 150], [80, 105, 70]]) / 255
_IRIS_P = np.array([0.45, 0.3, 0.15, 0.1])
_STYLES = {True: (("long", 0.5), ("bun", 0.2), ("short", 0.15), ("parting", 0.15)),
           False: (("short", 0.55), ("parting", 0.45))}


@dataclass(frozen=True)
class _Face:
    """One identity's geometry (reference frame, pixels) and colours."""

    female: bool
    cx: float          # face centre and half-axes
    cy: float
    a: float
    b: float
    jaw: float         # how much the lower face narrows towards the chin
    light: np.ndarray  # unit light direction (x right, y down, z towards the viewer)
    skin: np.ndarray
    hair: np.ndarray
    background: np.ndarray
    shirt: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    style: str
    hairline: float    # hairline height above the face centre, in units of b
    part: float        # parting side and strength, -1..1
    eye_y: float
    eye_dx: float
    eye_w: float
    eye_h: float
    brow_gap: float
    brow_thick: float
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_h: float
    neck_w: float


def _col(rgb) -> np.ndarray:
    """An RGB colour shaped (3, 1, 1), to broadcast over channel-first (3, H, W) images."""
    return np.clip(np.asarray(rgb, np.float32), 0, 1).reshape(3, 1, 1)


def _jitter(rng: np.random.Generator, palette: np.ndarray, p: np.ndarray | None, amount: float) -> np.ndarray:
    return _col(palette[rng.choice(len(palette), p=p)] + rng.uniform(-amount, amount, 3))


def _sample_face(rng: np.random.Generator, female: bool) -> _Face:
    styles, weights = zip(*_STYLES[female])
    b = rng.uniform(66, 76)
    a = rng.uniform(49, 55) if female else rng.uniform(53, 60)
    cy = 112 + rng.uniform(-5, 5)
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.7, -0.2), 1.0])
    shirt_hsv = np.array([[[rng.uniform(0, 180), rng.uniform(40, 200), rng.uniform(60, 230)]]], np.float32)
    shirt = cv2.cvtColor(shirt_hsv.astype(np.uint8), cv2.COLOR_HSV2RGB) / 255
    return _Face(
        female=female,
        cx=100 + rng.uniform(-4, 4), cy=cy, a=a, b=b,
        jaw=rng.uniform(0.18, 0.3) if female else rng.uniform(0.08, 0.2),
        light=(light / np.linalg.norm(light)).astype(np.float32),
        skin=_jitter(rng, _SKIN, None, 0.03),
        hair=_jitter(rng, _HAIR, _HAIR_P, 0.03),
        background=_col(np.array([0.80, 0.84, 0.89]) + rng.uniform(-0.05, 0.05, 3)),
        shirt=_col(shirt),
        iris=_jitter(rng, _IRIS, _IRIS_P, 0.03),
        lips=_col(np.array([0.75, 0.36, 0.38] if female else [0.66, 0.42, 0.40]) + rng.uniform(-0.05, 0.05, 3)),
        style=str(rng.choice(styles, p=weights)),
        hairline=rng.uniform(0.62, 0.74) if female else rng.uniform(0.64, 0.78),
        part=rng.uniform(-1, 1),
        eye_y=cy - b * rng.uniform(0.05, 0.13),
        eye_dx=a * rng.uniform(0.38, 0.46),
        eye_w=rng.uniform(10, 12.5),
        eye_h=rng.uniform(4.5, 6.0),
        brow_gap=rng.uniform(11, 15),
        brow_thick=rng.uniform(2.5, 3.5) if female else rng.uniform(3.5, 5.0),
        nose_y=cy + b * rng.uniform(0.22, 0.3),
        nose_w=rng.uniform(8, 11),
        mouth_y=cy + b * rng.uniform(0.5, 0.58),
        mouth_w=rng.uniform(15, 18) if female else rng.uniform(17, 21),
        lip_h=rng.uniform(3.5, 5.0) if female else rng.uniform(2.5, 4.0),
        neck_w=a * rng.uniform(0.5, 0.58),
    )


def _arc(cx: float, cy: float, a: float, b: float, t0: float = 0.0, t1: float = 2 * np.pi, n: int = 48) -> np.ndarray:
    """Points of an axis-aligned elliptical arc (angles in radians, y down)."""
    t = np.linspace(t0, t1, n)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], -1)


class _Canvas:
    """Anti-aliased drawing in the reference frame, scaled to the output size."""

    def __init__(self, width: int, height: int):
        self.size = (height, width)
        self.scale = np.array([width / REF_W, height / REF_H])
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.x = xs / np.float32(self.scale[0])   # reference coordinates of each pixel
        self.y = ys / np.float32(self.scale[1])

    def _fixed(self, curves: tuple[np.ndarray, ...] | list[np.ndarray]) -> list[np.ndarray]:
        """Curves in cv2's fixed-point pixel coordinates (converted in one go: it is a hot path)."""
        pts = np.rint(np.concatenate(curves) * self.scale * (1 << _SHIFT)).astype(np.int32)
        return np.split(pts, np.cumsum([len(c) for c in curves[:-1]]))

    def fill(self, *polys: np.ndarray) -> np.ndarray:
        """Coverage (float32, 0..1) of the union of the given polygons."""
        mask = np.zeros(self.size, np.uint8)
        cv2.fillPoly(mask, self._fixed(polys), 255, cv2.LINE_AA, _SHIFT)
        return mask * np.float32(1 / 255)

    def lines(self, curves: list[np.ndarray], thickness: float) -> np.ndarray:
        """Coverage (float32, 0..1) of the given open polylines."""
        mask = np.zeros(self.size, np.uint8)
        width = max(1, int(round(thickness * self.scale.mean())))
        cv2.polylines(mask, self._fixed(curves), False, 255, width, cv2.LINE_AA, _SHIFT)
        return mask * np.float32(1 / 255)

    def bump(self, field: np.ndarray, x: float, y: float, rx: float, ry: float, amount) -> None:
        """Add ``amount`` times a Gaussian bump centred at (x, y) to ``field`` (H x W or 3 x H x W), within 3 sigma."""
        (x0, y0), (x1, y1) = (np.array([[x - 3 * rx, y - 3 * ry], [x + 3 * rx, y + 3 * ry]]) * self.scale).astype(int)
        box = np.s_[max(y0, 0):max(y1 + 2, 0), max(x0, 0):max(x1 + 2, 0)]
        g = np.exp(-0.5 * (((self.x[box] - x) / rx) ** 2 + ((self.y[box] - y) / ry) ** 2))
        field[(..., *box)] += g * amount

    def sphere(self, cx: float, cy: float, a: float, b: float, light: np.ndarray) -> np.ndarray:
        """Lambert shading (about 0.55..1) of an ellipsoid bulging towards the viewer."""
        u, v = (self.x - cx) / a, (self.y - cy) / b
        nz = np.sqrt(np.clip(1 - u * u - v * v, 0.02, 1))
        dot = (u * light[0] + v * light[1] + nz * light[2]) / np.sqrt(u * u + v * v + nz * nz)
        return 0.55 + 0.45 * np.clip(dot, 0, 1)


def _paint(img: np.ndarray, mask: np.ndarray, colour) -> None:
    """Composite ``colour`` over the 3 x H x W ``img`` with coverage ``mask``.

    ``colour``: a grey level, a (3, 1, 1) colour or a 3 x H x W field.
    """
    x0, y0, w, h = cv2.boundingRect((mask > 0).view(np.uint8))
    box = np.s_[:, y0:y0 + h, x0:x0 + w]   # only the covered rectangle
    if np.ndim(colour) == 3 and colour.shape[1] > 1:
        colour = colour[box]
    img[box] += mask[box[1:]] * (colour - img[box])


def _hair_strands(face: _Face, rng: np.random.Generator, top: float) -> list[np.ndarray]:
    """Curves that follow the hair: arcs round the crown, waves down long hair."""
    hx, hy = face.cx + 4 * face.part, face.cy - 0.12 * face.b
    r = rng.uniform(0.75, 1.08, (45, 1))
    t = rng.uniform(np.pi * 1.02, np.pi * 1.9, (45, 1)) + rng.uniform(0.25, 0.7, (45, 1)) * np.linspace(0, 1, 16)
    strands = list(np.stack([hx + r * (face.a + 8) * np.cos(t), hy + r * (hy - top) * np.sin(t)], -1))
    if face.style == "long":
        y = np.linspace(face.cy - 0.4 * face.b, face.cy + 1.15 * face.b, 24)
        side = rng.choice([-1, 1], (30, 1))
        x0 = face.cx + side * rng.uniform(face.a - 6, face.a + 14, (30, 1))
        wave = rng.uniform(1, 3, (30, 1)) * np.sin(y / rng.uniform(9, 15, (30, 1)) + rng.uniform(0, 6, (30, 1)))
        x = x0 + wave + side * 0.08 * (y - y[0])
        strands += list(np.stack([x, np.broadcast_to(y, x.shape)], -1))
    return strands


def _hairline(f: _Face, u: np.ndarray) -> np.ndarray:
    """The lower edge of the hair at x = cx + u * a: a forehead curve dropping at the temples."""
    centre = f.cy - f.b * (f.hairline + (0.06 if f.style == "bun" else 0) - 0.3 * u ** 2)
    if f.style == "long":      # curtains down the sides of the face
        side, start = f.cy + 0.55 * f.b, 0.82
    elif f.style == "bun":     # pulled back: only beside the face, down to the ears
        side, start = f.eye_y - 4, 0.95
    else:                      # down over the temples to the top of the ears
        side, start = f.eye_y - 8, 0.85
    temple = np.clip((np.abs(u) - start) / (1.02 - start), 0, 1)
    y = centre + (side - centre) * temple * temple * (3 - 2 * temple)
    if f.style == "parting":   # a fringe swept away from the parting
        p = 0.4 * np.sign(f.part)
        y = y + 0.14 * f.b * np.clip((u - p) * np.sign(p) / 0.9, -0.2, 1) * (np.abs(u) < 0.8)
    if f.style != "bun":       # the fringe ends in locks
        y = y + 2.5 * np.abs(np.sin(np.pi * (4.5 * u + f.part))) * (np.abs(u) < 0.9)
    return y


def _render_photo(face: _Face, rng: np.random.Generator, cv: _Canvas) -> np.ndarray:
    """The noise-free photo: float32 RGB in [0, 1], channel-first (3 x H x W)."""
    f, x, y = face, cv.x, cv.y
    img = f.background * (1.04 - 0.08 * y / REF_H)
    cv.bump(img, f.cx, f.cy, 70, 80, 0.05)

    # shirt and shoulders (the neck's lower point makes a V collar)
    base = f.cy + 0.98 * f.b
    shoulders = np.array([[f.cx - f.neck_w - 6, base], [f.cx - 60, base + 12], [f.cx - 92, base + 28], [-4, base + 60],
                          [-4, REF_H + 4], [REF_W + 4, REF_H + 4], [REF_W + 4, base + 60], [f.cx + 92, base + 28],
                          [f.cx + 60, base + 12], [f.cx + f.neck_w + 6, base]])
    shirt_shade = 1 - 0.0025 * np.abs(x - f.cx)
    _paint(img, cv.fill(shoulders), f.shirt * shirt_shade)

    hair_mask = np.zeros(cv.size, np.float32)
    hair = f.hair * cv.sphere(f.cx, f.cy - 0.2 * f.b, f.a + 14, f.b + 12, f.light)
    top = f.cy - f.b - (12 if f.female else 9)
    if f.style == "long":
        ends = np.linspace(1, -1, 15)   # the ragged ends of the locks, right to left
        tips = f.cy + 1.15 * f.b - 4 * np.abs(ends) ** 3 + 3 * np.abs(np.sin(ends * 11 + 3 * f.part))
        back = np.concatenate([_arc(f.cx, f.cy - 0.1 * f.b, f.a + 12, f.b * 0.95 + 6, np.pi, 2 * np.pi, 24),
                               np.stack([f.cx + (f.a + 18) * ends, tips], -1)])
        hair_mask = np.maximum(hair_mask, cv.fill(back))

    # neck: a cylinder, shadowed under the chin
    chin = f.cy + f.b
    neck = np.array([[f.cx - f.neck_w, f.cy + 0.3 * f.b], [f.cx + f.neck_w, f.cy + 0.3 * f.b],
                     [f.cx + f.neck_w + 3, base + 2], [f.cx, base + 22], [f.cx - f.neck_w - 3, base + 2]])
    neck_shade = (0.85 + 0.15 * (1 - ((x - f.cx) / f.neck_w) ** 2).clip(0, 1)) * (
        1 - 0.35 * np.exp(-np.clip(y - chin, 0, None) / 10) * (y > chin - 15))
    _paint(img, hair_mask, hair)
    neck_mask = cv.fill(neck)
    _paint(img, neck_mask, f.skin * 0.88 * neck_shade)
    hair_mask *= 1 - neck_mask   # hair_mask: the hair still visible

    # ears (hidden by long hair)
    if f.style != "long":
        ear_y = (f.eye_y + f.nose_y) / 2
        for side in (-1, 1):
            ex = f.cx + side * (f.a - 3)
            _paint(img, cv.fill(_arc(ex, ear_y, 9, 17)), f.skin * 0.86)
            t0 = -np.pi / 2 if side > 0 else np.pi / 2   # the inner fold, on the outer half
            _paint(img, cv.lines([_arc(ex + side * 1.5, ear_y, 5, 11, t0, t0 + np.pi)], 1.5), f.skin * 0.65)

    # face: an ellipse whose lower half narrows towards the chin, shaded as a sphere
    t = np.linspace(0, 2 * np.pi, 96)
    narrow = 1 - f.jaw * np.clip(np.sin(t), 0, None) ** 2
    outline = np.stack([f.cx + f.a * np.cos(t) * narrow, f.cy + f.b * np.sin(t)], -1)
    face_mask = cv.fill(outline)
    shade = cv.sphere(f.cx, f.cy, f.a, f.b, f.light)
    for side in (-1, 1):   # eye sockets and the shadow beside the nose away from the light
        cv.bump(shade, f.cx + side * f.eye_dx, f.eye_y - 2, 14, 9, -0.08)
    cv.bump(shade, f.cx + np.sign(-f.light[0] + 1e-6) * 6, f.nose_y - 10, 4, 12, -0.1)
    cv.bump(shade, f.cx, f.nose_y - 4, 5, 5, 0.07)
    skin = f.skin * shade
    if f.female:   # blush
        for side in (-1, 1):
            cv.bump(skin, f.cx + side * 0.55 * f.a, f.nose_y + 4, 11, 8, _BLUSH)
    _paint(img, face_mask, np.clip(skin, 0, 1))
    hair_mask *= 1 - face_mask

    # hair over the head: a cap above a hairline that comes down at the temples and parts to one side
    if f.style == "bun":
        bun = cv.fill(_arc(f.cx + 3 * f.part, top - 8, 19, 17))
        _paint(img, bun, hair)
        hair_mask = np.maximum(hair_mask, bun)
    u = np.linspace(-1.4, 1.4, 57)
    above = np.concatenate([np.stack([f.cx + u * f.a, _hairline(f, u)], -1),
                            [[f.cx + 1.4 * f.a, -10], [f.cx - 1.4 * f.a, -10]]])
    tufts = 1 + 0.025 * np.sin(t * rng.integers(7, 12) + rng.uniform(0, 6)) * (np.sin(t) < 0)
    crown = cv.fill(np.stack([f.cx + (f.a + 9) * tufts * np.cos(t),
                              f.cy - 0.12 * f.b + (f.cy - 0.12 * f.b - top) * tufts * np.sin(t)], -1))
    cap = crown * cv.fill(above)
    _paint(img, cap, hair)
    hair_mask = np.maximum(hair_mask, cap)

    # strands: highlights on dark hair, darker lines on light hair
    strands = cv.lines(_hair_strands(f, rng, top), 1.0) * hair_mask
    img *= 1 + (0.9 if _LUMA @ f.hair.ravel() < 0.3 else -0.3) * strands

    _draw_features(img, f, cv)
    return np.stack([cv2.GaussianBlur(c, (0, 0), 0.8 * cv.scale.mean()) for c in np.clip(img, 0, 1)])


def _draw_features(img: np.ndarray, f: _Face, cv: _Canvas) -> None:
    """Brows, eyes, nose and mouth."""
    brow_colour = f.hair * 0.7 + 0.05
    for side in (-1, 1):
        ex = f.cx + side * f.eye_dx
        # brow: a tapered arch, thick at the inner end
        t = np.linspace(0, 1, 20)
        bx = ex + side * (t * 2.6 - 1.2) * f.eye_w
        by = f.eye_y - f.brow_gap - 4 * np.sin(np.pi * (t * 0.85 + 0.1)) + 2 * t
        thick = f.brow_thick * (1.1 - 0.6 * t)
        brow = np.concatenate([np.stack([bx, by - thick / 2], -1), np.stack([bx, by + thick / 2], -1)[::-1]])
        _paint(img, cv.fill(brow), brow_colour)

        # eye: an almond of white, an iris with a pupil and highlight, a dark upper lid
        upper = _arc(ex, f.eye_y, f.eye_w, f.eye_h * 1.2, np.pi, 2 * np.pi, 24)
        lower = _arc(ex, f.eye_y, f.eye_w, f.eye_h * 0.8, 0, np.pi, 24)
        almond = np.concatenate([upper, lower])
        white = cv.fill(almond)
        _paint(img, white, _SCLERA)
        iris_r = f.eye_h * 1.15
        _paint(img, white * cv.fill(_arc(ex, f.eye_y, iris_r, iris_r)), f.iris)
        _paint(img, white * cv.fill(_arc(ex, f.eye_y, iris_r * 0.45, iris_r * 0.45)), np.float32(0.05))
        _paint(img, cv.fill(_arc(ex + 2, f.eye_y - 2, 1.2, 1.2, n=12)), np.float32(0.95))
        _paint(img, cv.lines([upper], 2.0), np.float32(0.12))
        _paint(img, cv.lines([lower[3:-3]], 1.0), f.skin * 0.6)

    # nose: wings, nostrils and a faint bridge line on the shadow side
    w, ny = f.nose_w, f.nose_y
    _paint(img, cv.lines([_arc(f.cx, ny - 2, w, 5, 0.6 * np.pi, 1.35 * np.pi, 12),
                          _arc(f.cx, ny - 2, w, 5, -0.35 * np.pi, 0.4 * np.pi, 12)], 1.5), f.skin * 0.62)
    for side in (-1, 1):
        _paint(img, cv.fill(_arc(f.cx + side * 4, ny + 1, 2.3, 1.3, n=16)), f.skin * 0.5)
    side = 1 if f.light[0] < 0 else -1
    bridge = np.array([[f.cx + side * 4, f.eye_y + 2], [f.cx + side * 5, ny - 8]])
    _paint(img, cv.lines([bridge], 1.5) * 0.5, f.skin * 0.7)

    # mouth: upper lip with a cupid's bow, fuller lower lip, dark line between
    mw, my, lh = f.mouth_w, f.mouth_y, f.lip_h
    t = np.linspace(-1, 1, 25)
    line = np.stack([f.cx + t * mw, my + 1.5 * t ** 2], -1)
    bow = my - lh * (1 - t ** 2) * (1 - 0.35 * np.exp(-(t / 0.15) ** 2))
    upper = np.concatenate([line, np.stack([f.cx + t * mw, bow], -1)[::-1]])
    lower = np.concatenate([line, np.stack([f.cx + t * mw, my + 1.3 * lh * (1 - t ** 2) + 1.5 * t ** 2], -1)[::-1]])
    _paint(img, cv.fill(upper), f.lips * 0.85)
    _paint(img, cv.fill(lower), f.lips)
    _paint(img, cv.lines([line], 1.5), f.lips * 0.35)


def _pencil(photo: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A greyscale pencil drawing (uint8, H x W) of a float 3 x H x W RGB photo."""
    grey = np.tensordot(_LUMA, photo, 1)
    # colour dodge of the grey image by its blurred negative: white paper, dark contours
    inv_blur = cv2.GaussianBlur(1 - grey, (0, 0), 1.5 * scale)
    dodge = np.clip(grey / np.maximum(1 - inv_blur, 1e-3), 0, 1)
    # lines where the colour changes, whatever the luminance does
    grad2 = np.zeros_like(grey)
    for channel in photo:
        smooth = cv2.GaussianBlur(channel, (0, 0), 0.5 * scale)
        grad2 += cv2.Sobel(smooth, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(smooth, cv2.CV_32F, 0, 1) ** 2
    edges = np.clip(np.sqrt(grad2) / 0.9 - 0.1, 0, 1)
    # soft tonal shading, light areas to paper white
    tone = 1 - 0.75 * (1 - grey) ** 2.2
    drawing = tone * dodge * (1 - 0.55 * edges)
    # pencil grain: diagonal streaks, stronger in the dark parts
    streaks = cv2.filter2D(rng.standard_normal(grey.shape, np.float32), -1,
                           np.eye(7, dtype=np.float32)[::-1] / np.sqrt(7))
    drawing *= 1 + 0.15 * streaks * (1 - drawing) ** 2
    return np.round(np.clip(drawing / 0.93, 0, 1) * 255).astype(np.uint8)


def render_pair(seed: int, index: int, width: int = REF_W, height: int = REF_H) -> tuple[np.ndarray, np.ndarray]:
    """Pair ``index`` of the data set with ``seed``: (photo BGR uint8 H x W x 3, sketch uint8 H x W)."""
    rng = np.random.default_rng([seed, index])
    cv = _Canvas(width, height)
    clean = _render_photo(_sample_face(rng, female=index % 2 == 0), rng, cv)
    sketch = _pencil(clean, rng, float(cv.scale.mean()))
    noisy = clean + 0.012 * rng.standard_normal(clean.shape[1:], np.float32)
    photo = np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    return np.ascontiguousarray(photo[::-1].transpose(1, 2, 0)), sketch   # RGB planes -> H x W x BGR


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= {minimum}")
    return int(value)


def _write_jpeg(dest: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"{dest}: JPEG encoding failed")
    fileio.write_bytes(dest, buf.tobytes())


def generate_dataset(out_dir: Path, count: int, seed: int, width: int = REF_W, height: int = REF_H) -> list[Pair]:
    """Write ``count`` photo/sketch pairs and ``pairs.csv`` under ``out_dir``; return the pairs.

    Names follow CUHK: ``photo/f-001-01.jpg`` with ``sketch/F2-001-01-sz1.jpg``,
    female and male identities alternating. The first ``round(count * 88/188)``
    pairs are the ``train`` subset, the rest ``test`` (at least one of each
    when count >= 2). The same ``(count, seed)`` gives byte-identical files.
    """
    count = _check_int("data.synthetic.count", count, 1)
    seed = _check_int("data.synthetic.seed", seed, 0)
    width = _check_int("width", width, 32)
    height = _check_int("height", height, 32)
    out_dir = Path(out_dir)
    n_train = round(count * TRAIN_SHARE)
    if count >= 2:
        n_train = min(max(n_train, 1), count - 1)
    pairs = []
    for i in range(count):
        sex, number = ("f" if i % 2 == 0 else "m"), f"{i + 1:03d}"
        pair_id = f"{sex}-{number}-01"
        pair = Pair(pair_id, f"photo/{pair_id}.jpg", f"sketch/{sex.upper()}2-{number}-01-sz1.jpg",
                    "train" if i < n_train else "test")
        photo, sketch = render_pair(seed, i, width, height)
        _write_jpeg(out_dir / pair.photo, photo)
        _write_jpeg(out_dir / pair.sketch, sketch)
        pairs.append(pair)
    write_manifest(out_dir, pairs)
    return pairs
