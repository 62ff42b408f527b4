"""The identity metric: dlib's face descriptor on real and generated faces, through the protocol.

Faces: NASA's portrait of Eileen Collins that scikit-image ships (a real photo, ``face_fixtures``)
and the pipeline's own generated CUHK-sized faces (``facesketch.data.synthetic``), which dlib's
detector finds. A flat grey image has no face: it takes the CUHK fallback box.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from conftest import REPO
from face_fixtures import astronaut_head

from facesketch.data.synthetic import render_pair
from facesketch.evaluation import identity, protocol

N = 8
# Every test but the last needs the extra; scripts/setup.sh installs it by default, so CI has it.
needs_dlib = pytest.mark.skipif(identity.unavailable() is not None, reason=str(identity.unavailable()))


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """N different generated faces at CUHK's 200 x 250, RGB uint8."""
    return [render_pair(0, i)[0] for i in range(N)]


@pytest.fixture(scope="module")
def descriptors(faces) -> np.ndarray:
    d, fallback = identity.describe(faces)
    assert not fallback.any()  # dlib's detector finds every generated face
    return d


def _targets(images: list[np.ndarray]) -> list[protocol.Target]:
    return [protocol.Target(f"p{i}", f"photos/p{i}.png", hashlib.sha256(im.tobytes()).hexdigest(), im)
            for i, im in enumerate(images)]


@needs_dlib
def test_a_target_against_itself_is_rank1_100_percent(faces, tmp_path):
    summary, table = protocol.score("s2f", np.stack(faces), [f"p{i}" for i in range(N)], _targets(faces),
                                    tmp_path / "self")
    assert summary["id_rank1"] == 1.0 and summary["id_rank5"] == 1.0
    assert summary["id_verified"] == 1.0 and summary["id_auc"] == 1.0
    assert summary["id_distance"] == pytest.approx(0.0, abs=1e-6)
    assert summary["id_fallbacks"] == 0 and summary["id_gallery_fallbacks"] == 0
    assert summary["intervals"]["id_rank1"] == [1.0, 1.0]
    assert table["id_rank"].tolist() == [1] * N and table["id_fallback"].tolist() == [0] * N
    json.dumps(summary, allow_nan=False)  # dvc metrics diff reads the numbers at the top level


@needs_dlib
def test_shuffled_outputs_drop_to_about_chance(descriptors):
    rng = np.random.default_rng(0)
    rank1, auc = [], []
    for _ in range(300):
        order = rng.permutation(N)
        match = identity.identify(descriptors[order], descriptors)  # query i is another person's face
        fixed = order == np.arange(N)
        columns = identity.per_image(match, np.zeros(N, bool))
        assert (columns["id_rank1"][~fixed] == 0).all()  # someone else's exact face is always nearer
        rank1.append(columns["id_rank1"].mean())
        auc.append(columns["id_auc"].mean())
    assert np.mean(rank1) == pytest.approx(1 / N, abs=0.04)  # chance: a permutation's fixed points, 1/N
    assert np.mean(auc) == pytest.approx(0.5, abs=0.1)


@needs_dlib
def test_a_sketch_of_the_face_is_recognised_far_above_chance(faces, descriptors):
    """A real use of the metric: the generated sketches as queries against the photos."""
    sketches = [render_pair(0, i)[1] for i in range(N)]
    queries, _ = identity.describe(sketches)
    columns = identity.per_image(identity.identify(queries, descriptors), np.zeros(N, bool))
    assert columns["id_rank1"].mean() >= 0.5 > 1 / N
    assert columns["id_auc"].mean() > 0.8


@needs_dlib
def test_a_missing_face_falls_back_to_the_cuhk_box_and_is_counted(faces, tmp_path):
    blank = np.full((250, 200, 3), 128, np.uint8)
    head = cv2.resize(astronaut_head(), (200, 250), interpolation=cv2.INTER_AREA)
    d, fallback = identity.describe([head, blank, cv2.cvtColor(head, cv2.COLOR_RGB2GRAY)])
    assert fallback.tolist() == [False, True, False]  # a real face (colour or grey) is detected
    assert d.shape == (3, 128) and np.isfinite(d).all()
    assert identity.fallback_box(200, 250) == identity.FALLBACK_BOX
    assert identity.fallback_box(400, 500) == tuple(2 * v for v in identity.FALLBACK_BOX)

    preds = np.stack([blank, *faces[1:]])
    summary, table = protocol.score("s2f", preds, [f"p{i}" for i in range(N)], _targets(faces), tmp_path / "fb")
    assert table["id_fallback"].tolist() == [1] + [0] * (N - 1)
    assert summary["id_fallbacks"] == 1 and summary["id_gallery_fallbacks"] == 0
    assert table["id_rank1"].tolist()[1:] == [1] * (N - 1)


def test_rank_counts_ties_against_and_auc_is_the_mann_whitney_auc():
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score  # installed with MLflow

    rng = np.random.default_rng(1)
    queries, gallery = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    queries[:10] = gallery[:10] + rng.normal(0, 0.5, (10, 8))  # half near their own
    match = identity.identify(queries, gallery)
    n = len(match.distances)
    genuine, impostor = match.genuine, match.distances[~np.eye(n, dtype=bool)]
    labels = np.r_[np.ones(n), np.zeros(len(impostor))]
    expected = roc_auc_score(labels, -np.r_[genuine, impostor])  # nearer = more likely the same person
    assert match.auc_share.mean() == pytest.approx(expected, abs=1e-12)
    for i in range(n):
        assert match.rank[i] == 1 + sum(match.distances[i, j] <= match.distances[i, i] for j in range(n) if j != i)

    tied = identity.identify(np.zeros((3, 2)), np.zeros((3, 2)))  # every distance 0
    assert tied.rank.tolist() == [3, 3, 3] and tied.auc_share.tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="aligned by identity"):
        identity.identify(np.zeros((3, 128)), np.zeros((4, 128)))


def test_without_the_identity_extra_the_metric_is_absent_with_a_clear_note(tmp_path):
    """dlib made unimportable in a fresh interpreter: scoring still works, the identity metrics are
    absent, the summary and the report say why."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["dlib"] = None  # what a missing package looks like to import
        sys.path.insert(0, {str(REPO / 'tests')!r})
        import hashlib, json
        import numpy as np
        from facesketch.evaluation import identity, protocol
        from facesketch.report.content import absent_groups
        from facesketch.data.synthetic import render_pair
        faces = [render_pair(0, i)[1] for i in range(3)]
        targets = [protocol.Target(f"p{{i}}", f"s/p{{i}}.png", hashlib.sha256(f.tobytes()).hexdigest(), f)
                   for i, f in enumerate(faces)]
        preds = np.stack([np.repeat(f[..., None], 3, -1) for f in faces])
        summary, table = protocol.score("f2s", preds, ["p0", "p1", "p2"], targets, {str(tmp_path / 'out')!r})
        rows = [dict(summary, model="m", label="m", task="f2s", baseline=False)]
        print(json.dumps({{"keys": sorted(summary), "columns": list(table.columns),
                          "absent": summary["absent"], "report": absent_groups(rows),
                          "why": identity.unavailable()}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert not any(k.startswith("id_") for k in out["keys"]) and "ssim_rank1" in out["keys"]
    assert not any(c.startswith("id_") for c in out["columns"])
    for key in ("id_rank1", "id_rank5", "id_verified", "id_auc", "id_distance"):
        assert "dlib is not installed" in out["absent"][key] and "[identity]" in out["absent"][key]
    assert out["report"]["identity"] == out["why"] and "identity metric not computed" in out["why"]
