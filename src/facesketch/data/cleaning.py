"""Cleaning CUHK images before they are resized: black borders, printed labels, grey sketches.

Each step is conservative: it changes an image only when it finds the
artefact it looks for, and reports whether it did, so preprocess can count
them. All steps take H x W x 3 uint8 RGB arrays and return a new array when they change one.

- Black borders: the CUHK photos and sketches were aligned by rotating and
  shifting them, which left black bars and thin black wedges along some edges
  (41 of the 88 training photos, mostly at the top or bottom; 40 of the 88
  training sketches, mostly at the right). A border is found per edge as a
  near-black band whose inner boundary is a straight line at a small angle
  (what a rotation or shift leaves); dark hair or clothes touching the edge
  do not have that shape and are left alone. The band is filled in from the
  neighbouring pixels (OpenCV inpainting), so the face keeps its place and
  stays aligned with the other image of its pair.
- Printed label: 26 of the 88 training sketches carry a scanner's line of
  small text in their top rows (``f-011-01.jpg (298x361x16M JPEG)``), 6 of
  them only its tail, cut off by the top edge. It is found as a row of
  small, separate dark marks (characters) at one height, and painted over.
- Grey sketches: sketches stored as RGB get their luma copied to all three
  channels, so every sketch is exactly grey (R = G = B).
"""

from __future__ import annotations

import cv2
import numpy as np

# Black borders
DARK = 40             # a pixel is "black" when all its channels are below this
MAX_DEPTH = 0.2       # a border is at most this share of the image across
MAX_SLOPE = 0.2       # ~11 degrees: alignment rotations are small
MIN_SHARE = 0.15      # a border runs along at least this share of its edge
FIT_TOL = 1.5         # px: how far the border's edge may stray from its line
GROW = 2              # px: also fill the blurred rim between border and image

# Printed label
LABEL_BAND = 0.15     # labels sit in the top 15% of the rows
INK = 190             # label ink is darker than this (the paper is ~250)
CHAR_MAX_H = 10       # a character is at most this tall and wide (px)
CHAR_MAX_W = 14
LINE_TOL = 3          # px: characters of one line share their centre height
CHAR_GAP = 16         # px: the widest gap between neighbouring characters
MIN_CHARS = 8         # a whole label line has at least this many marks...
MIN_SPAN = 0.2        # ...and spans at least this share of the width
MIN_CUT_CHARS = 4     # a label cut off by the top edge: its tail, a few marks
HALO = 3              # px: also paint the lighter rims around the marks


# --------------------------------------------------------------------------- borders

def _edge_runs(dark: np.ndarray, max_depth: int) -> np.ndarray:
    """Per position along an edge, how many black pixels run inwards from it.

    ``dark``: (depth, length) booleans, row 0 at the edge. A run reaching
    ``max_depth`` is reported as ``max_depth`` (too deep to be a border).
    """
    band = dark[:max_depth]
    not_dark = ~band
    return np.where(not_dark.any(0), not_dark.argmax(0), band.shape[0])


def _fit_border(runs: np.ndarray, max_depth: int) -> np.ndarray | None:
    """The depth of a straight-edged border along an edge, or None.

    Fits depth(x) = max(0, a + b*x) to the black runs, robustly: candidate
    lines go through pairs of sampled run ends, the one that explains the
    most positions wins. It must explain clearly more positions than "no
    border" and run along a fair share of the edge.
    """
    n = len(runs)
    x = np.arange(n)
    present = np.flatnonzero((runs > 0) & (runs < max_depth))
    if len(present) < MIN_SHARE * n:
        return None
    pts = present[:: max(1, len(present) // 40)]
    i, j = np.meshgrid(pts, pts, indexing="ij")
    keep = (j - i) >= max(2, n // 8)
    i, j = i[keep], j[keep]
    slope = (runs[j] - runs[i]) / (j - i)
    ok = np.abs(slope) <= MAX_SLOPE
    slope = np.concatenate([slope[ok], [0.0]])
    icept = np.concatenate([runs[i[ok]] - slope[:-1] * i[ok], [float(np.median(runs[present]))]])
    depth = np.maximum(icept[:, None] + slope[:, None] * x[None, :], 0)
    inlier = np.abs(runs[None, :] - depth) <= FIT_TOL
    score = inlier.sum(1)
    along = (inlier & (depth >= 1)).sum(1)
    best = int(np.argmax(score))
    none_score = int((runs <= 1).sum())
    if along[best] < MIN_SHARE * n or score[best] - none_score < 0.1 * n:
        return None
    return depth[best]


def border_mask(img: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = border) of the black alignment borders along the four edges."""
    h, w = img.shape[:2]
    dark = img.max(axis=2) < DARK
    mask = np.zeros((h, w), np.uint8)
    # each edge seen as (depth from the edge, position along it)
    views = {
        "top": (dark, lambda m: m),
        "bottom": (dark[::-1], lambda m: m[::-1]),
        "left": (dark.T, lambda m: m.T),
        "right": (dark.T[::-1], lambda m: m[::-1].T),
    }
    for edge_dark, back in views.values():
        max_depth = max(3, int(round(MAX_DEPTH * edge_dark.shape[0])))
        depth = _fit_border(_edge_runs(edge_dark, max_depth), max_depth)
        if depth is None:
            continue
        fill = np.where(depth >= 0.5, np.ceil(depth) + GROW, 0)
        rows = np.arange(edge_dark.shape[0])[:, None]
        edge_mask = (rows < fill[None, :]).astype(np.uint8) * 255
        mask = np.maximum(mask, back(edge_mask))
    return mask


def fill_black_borders(img: np.ndarray) -> tuple[np.ndarray, bool]:
    """Paint over black alignment borders from the neighbouring pixels; (image, changed)."""
    mask = border_mask(img)
    if not mask.any():
        return img, False
    return cv2.inpaint(np.ascontiguousarray(img), mask, 3, cv2.INPAINT_TELEA), True


# --------------------------------------------------------------------------- label

def _lines(marks: list[tuple[int, int, int, float]]) -> list[list[tuple[int, int, int, float]]]:
    """Group (label, x0, x1, centre y) marks into text lines, biggest first.

    Two marks belong to one line when they are horizontal neighbours (gap <=
    CHAR_GAP) at nearly the same height (<= LINE_TOL); chaining neighbours
    lets a slightly slanted label stay one line.
    """
    n = len(marks)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(n), key=lambda i: marks[i][1])
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1:]:
            if marks[b][1] - marks[a][2] > CHAR_GAP:
                break
            if abs(marks[a][3] - marks[b][3]) <= LINE_TOL:
                parent[root(a)] = root(b)
    groups: dict[int, list] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(marks[i])
    return sorted(groups.values(), key=lambda g: (-len(g), min(m[1] for m in g)))


def label_mask(img: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = label ink) of a printed text line in the top rows, or all zeros."""
    h, w = img.shape[:2]
    band_h = max(8, int(round(LABEL_BAND * h)))
    # look a little below the band too, so hair strands reaching into it stay joined to
    # the hair below (long marks), not cut into small character-like pieces
    grey = img[:min(h, band_h + 2 * CHAR_MAX_H)].min(axis=2)
    ink = (grey < INK).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(ink, connectivity=8)
    marks = []  # (label, x0, x1, top, bottom, centre y)
    for k in range(1, n):
        x, y, cw, ch, _ = stats[k]
        if ch <= CHAR_MAX_H and cw <= CHAR_MAX_W and x > 0 and x + cw < w and y + ch <= band_h:
            marks.append((k, int(x), int(x + cw), int(y), int(y + ch), float(cents[k][1])))
    lines = _lines([(k, x0, x1, cy) for k, x0, x1, _, _, cy in marks])
    best = lines[0] if lines else []
    span = (max(m[2] for m in best) - min(m[1] for m in best)) if best else 0
    if not (len(best) >= MIN_CHARS and span >= MIN_SPAN * w):
        # the tail of a label cut off by the top edge: tiny marks in the first rows
        cut = _lines([(k, x0, x1, cy) for k, x0, x1, top, bottom, cy in marks if top <= 1 and bottom <= 6])
        if not cut or len(cut[0]) < MIN_CUT_CHARS:
            return np.zeros((h, w), np.uint8)
        best = cut[0]
    core = np.isin(labels[:band_h], [c[0] for c in best]).astype(np.uint8)
    grey = grey[:band_h]
    # and the characters' lighter anti-aliased rims: darker than the paper, next to the marks
    paper = float(np.median(grey))
    near = cv2.dilate(core, np.ones((2 * HALO + 1, 2 * HALO + 1), np.uint8))
    label = core | (near & (grey < paper - 20))
    mask = np.zeros((h, w), np.uint8)
    mask[:band_h] = cv2.dilate(label, np.ones((3, 3), np.uint8)) * 255
    return mask


def remove_label(img: np.ndarray) -> tuple[np.ndarray, bool]:
    """Paint over a printed file-name label in the top rows; (image, changed)."""
    mask = label_mask(img)
    if not mask.any():
        return img, False
    return cv2.inpaint(np.ascontiguousarray(img), mask, 3, cv2.INPAINT_TELEA), True


# --------------------------------------------------------------------------- grey

def is_grey(img: np.ndarray, tol: int = 0) -> bool:
    c = img.astype(np.int16)
    return bool(np.abs(c[..., 0] - c[..., 1]).max() <= tol and np.abs(c[..., 1] - c[..., 2]).max() <= tol)


def to_grey(img: np.ndarray) -> tuple[np.ndarray, bool]:
    """RGB with grey content -> exactly grey RGB (luma in all channels); (image, changed)."""
    if is_grey(img):
        return img, False
    luma = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return np.repeat(luma[..., None], 3, axis=2), True
