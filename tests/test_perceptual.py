"""LPIPS and DISTS: pinned to the reference packages' values, the weight files read and verified,
and the metrics present with weights on disk and absent (with the reason) without them.

The backbones are random and seeded (tests/perceptual_fixtures.py); the linear layers and DISTS'
alpha/beta are the lpips and DISTS_pytorch packages' own files (tests/fixtures/perceptual/).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest
from perceptual_fixtures import (
    BACKBONE_SEEDS,
    FIXTURES,
    PAIR_SETS,
    image_pairs,
    random_backbone,
)

from facesketch.core.errors import DataError
from facesketch.evaluation import perceptual, protocol

# benchmarks/perceptual_reference_check.py's reference side (lpips 0.1.4, DISTS_pytorch 0.1, torch
# 2.13.0+cpu, float32) on PAIR_SETS[0] (3 pairs, 32 x 40) with the seeded backbones; the check on all
# 10 pairs agreed to 2.2e-5 (docs/metrics.md).
REFERENCE = {"lpips_vgg": [0.002993563888594508, 0.005402829963713884, 0.010643256828188896],
             "lpips_alex": [0.003358755260705948, 0.007201553788036108, 0.007864034734666348],
             "dists": [0.009075164794921875, 0.012111902236938477, 0.014245212078094482]}


@pytest.fixture(scope="module")
def backbones():
    return {net: random_backbone(net, seed) for net, seed in BACKBONE_SEEDS.items()}


def test_lpips_and_dists_match_the_reference_packages(backbones):
    n, h, w, seed = PAIR_SETS[0]
    a, b = image_pairs(n, h, w, seed)
    x, y = a.astype(np.float32) / 255.0, b.astype(np.float32) / 255.0
    read = perceptual.read_weights
    got = {"lpips_vgg": perceptual.lpips_distance(x, y, backbones["vgg16"],
                                                  read(FIXTURES / "lpips-v0.1-vgg.pth"), "vgg16"),
           "lpips_alex": perceptual.lpips_distance(x, y, backbones["alexnet"],
                                                   read(FIXTURES / "lpips-v0.1-alex.pth"), "alexnet"),
           "dists": perceptual.dists_distance(x, y, backbones["vgg16"], read(FIXTURES / "DISTS-weights.pt"))}
    for metric, expected in REFERENCE.items():
        assert got[metric] == pytest.approx(expected, abs=1e-5), metric
    same = perceptual.lpips_distance(x, x, backbones["vgg16"], read(FIXTURES / "lpips-v0.1-vgg.pth"), "vgg16")
    assert np.all(same == 0.0)


def test_torch_weight_files_read_without_torch():
    """Both torch.save formats, views (offsets, strides) included, and the packages' real files
    (shapes and sums as torch.load gives them)."""
    for name in ("zip-format.pt", "legacy-format.pt"):
        arrays = perceptual.read_torch_file(FIXTURES / name)
        t = np.arange(12, dtype=np.float32).reshape(3, 4)
        assert np.array_equal(arrays["transposed"], t.T) and arrays["transposed"].dtype == np.float32
        assert np.array_equal(arrays["offset"], t[1:, 2:])
        assert arrays["ints"].tolist() == [1, -2, 3] and arrays["ints"].dtype == np.int64
    vgg = perceptual.read_weights(FIXTURES / "lpips-v0.1-vgg.pth")
    assert {k: v.shape for k, v in vgg.items()} == {f"lin{i}.model.1.weight": (1, c, 1, 1)
                                                    for i, c in enumerate((64, 128, 256, 512, 512))}
    assert float(vgg["lin0.model.1.weight"].sum(dtype=np.float64)) == pytest.approx(6.925991700962186, abs=1e-9)
    ab = perceptual.read_weights(FIXTURES / "DISTS-weights.pt")
    assert ab["alpha"].shape == (1, 1475, 1, 1)
    assert float(ab["alpha"].sum(dtype=np.float64)) == pytest.approx(0.8760496235627215, abs=1e-9)
    assert float(ab["beta"].sum(dtype=np.float64)) == pytest.approx(0.12395021047718036, abs=1e-9)


def test_a_weight_file_with_code_in_it_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    bad = tmp_path / "bad.pt"
    with open(bad, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(obj, f)
        pickle.dump(Evil(), f)
    with pytest.raises(DataError, match=r"bad\.pt: not a readable torch weight file.*not allowed"):
        perceptual.read_weights(bad)


def _weights_on_disk(folder, backbones, monkeypatch):
    """The fixture weights in a cache folder, and WEIGHTS naming them with their sha256."""
    folder.mkdir()
    table = {}
    for name, stem in (("vgg16", "vgg16-random"), ("alexnet", "alexnet-random")):
        np.savez(folder / f"{stem}.npz", **backbones[name])
        table[name] = (f"{stem}.npz", hashlib.sha256((folder / f"{stem}.npz").read_bytes()).hexdigest(), "random")
    for name, file in (("lpips_vgg", "lpips-v0.1-vgg.pth"), ("lpips_alex", "lpips-v0.1-alex.pth"),
                       ("dists", "DISTS-weights.pt")):
        shutil.copy(FIXTURES / file, folder / file)
        table[name] = (file, perceptual.WEIGHTS[name][1], "the package's file")  # the real checksums
    monkeypatch.setattr(perceptual, "WEIGHTS", table)
    monkeypatch.setenv(perceptual.WEIGHTS_ENV, str(folder))
    return folder


def _rendered(summary, task="s2f") -> tuple[str, str]:
    """report.md and report.html of one model's summary (the report's own builders and writers)."""
    from facesketch.report.content import Report, absent_groups, results_table
    from facesketch.report.html_writer import to_html
    from facesketch.report.markdown_writer import to_markdown

    rows = [dict(summary, model="m", label="m", task=task, baseline=False)]
    rep = Report(title="t", intro=[], warning=None, table=results_table(rows), table_note=None,
                 absent=absent_groups(rows), comparisons=[], answers=[], split_note=None, n_images={task: 3},
                 glance=[], settings=[], resolution="", grids={}, charts=[], facts=[], tasks=[task])
    return to_markdown(rep), to_html(rep)


def _targets(images):
    return [protocol.Target(f"p{i}", f"s/p{i}.png", hashlib.sha256(im.tobytes()).hexdigest(), im)
            for i, im in enumerate(images)]


def test_present_with_weights_on_disk_absent_without_and_a_bad_checksum_refused(tmp_path, backbones, monkeypatch):
    n, h, w, seed = PAIR_SETS[0]
    a, b = image_pairs(n, h, w, seed)
    ids = [f"p{i}" for i in range(n)]
    folder = _weights_on_disk(tmp_path / "weights", backbones, monkeypatch)
    assert perceptual.unavailable() is None
    summary, table = protocol.score("s2f", b, ids, _targets(list(a)), tmp_path / "pred")
    for metric, expected in REFERENCE.items():  # the protocol's 8-bit PNG round trip keeps the pixels
        assert table[metric].tolist() == pytest.approx(expected, abs=1e-5), metric
        assert summary[metric] == pytest.approx(np.mean(expected), abs=1e-5)
        assert summary["intervals"][metric] is not None
    assert not any(k in (summary.get("absent") or {}) for k in REFERENCE)
    json.dumps(summary, allow_nan=False)
    md, html_text = _rendered(summary)  # the report shows them in their own column group
    assert "### Perceptual (LPIPS, DISTS)" in md and "| task | model | LPIPS-VGG ↓ | LPIPS-Alex ↓ | DISTS ↓ |" in md
    assert f"| s2f | **m** | **{summary['lpips_vgg']:.4f}** [" in md and 'data-group="perceptual"' in html_text

    # a file that does not match its checksum is refused, naming it
    with open(folder / "lpips-v0.1-alex.pth", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match=r"lpips-v0\.1-alex\.pth: sha256 .* does not match"):
        protocol.score("s2f", b, ids, _targets(list(a)), tmp_path / "pred2")

    # missing: absent, the reason names the folder, the variable and the file; nothing is made up
    (folder / "DISTS-weights.pt").unlink()
    why = perceptual.unavailable()
    assert why and str(folder) in why and perceptual.WEIGHTS_ENV in why and "DISTS-weights.pt" in why
    summary, table = protocol.score("s2f", b, ids, _targets(list(a)), tmp_path / "pred3")
    assert not any(k in summary or k in table.columns for k in REFERENCE)
    assert all(summary["absent"][k] == why for k in REFERENCE)
    md, html_text = _rendered(summary)
    assert f"Not shown: {why}." in md and "| LPIPS-VGG ↓" not in md and 'data-group="perceptual"' in html_text
