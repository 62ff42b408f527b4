"""The report stage: the Table III builder and the self-contained HTML.

``check_report`` is also applied to a real pipeline's report in test_pipeline_e2e."""

from __future__ import annotations

import json
import subprocess
import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import make_pairs
from facesketch.core import fileio
from facesketch.evaluation import protocol
from facesketch.evaluation.metric_specs import GROUPS, MetricSpec
from facesketch.report import report
from facesketch.report.charts import nice_ticks
from facesketch.report.content import BASELINE_LABELS, comparisons, results_table
from facesketch.report.published import PUBLISHED

MODELS = ["dense", "conv"]
TASKS = ["f2s", "s2f"]
KEYS = ("mae", "psnr", "ssim", "fsim", "ssim_rank1")


# ---------------------------------------------------------------- the table builder

def _row(model, task, baseline=False, **values):
    return {"model": model, "label": model, "task": task, "baseline": baseline, **values}


def test_results_table_marks_best_model_and_deltas():
    rows = [
        _row("mean_target", "f2s", True, mae=0.20, psnr=12.0, ssim=0.30, fsim=0.50, ssim_rank1=0.05),
        _row("grey_input", "f2s", True, mae=0.01, psnr=30.0, ssim=0.90, fsim=0.95, ssim_rank1=1.0),  # beats all
        _row("a", "f2s", mae=0.15, psnr=14.0, ssim=0.40, fsim=0.60, ssim_rank1=0.20),
        _row("b", "f2s", mae=0.18, psnr=13.0, ssim=0.45, fsim=0.60, ssim_rank1=0.10),  # fsim tie with a
        _row("mean_target", "s2f", True, mae=0.30, psnr=10.0, ssim=0.20, fsim=0.40, ssim_rank1=0.0),
        _row("a", "s2f", mae=0.35, psnr=None, ssim=0.10, fsim=0.45, ssim_rank1=0.5),
        _row("b", "s2f", mae=0.25, psnr=11.0, ssim=0.15, fsim=0.42, ssim_rank1=0.5),
    ]
    table = results_table(rows)
    assert [(r.task, r.model) for r in table] == [(r["task"], r["model"]) for r in rows]
    best = {(r.task, r.model): {k for k, c in r.cells.items() if c.best} for r in table}
    assert best[("f2s", "a")] == {"mae", "psnr", "fsim", "ssim_rank1"}   # lower MAE wins; ties both bold
    assert best[("f2s", "b")] == {"ssim", "fsim"}
    assert best[("f2s", "mean_target")] == best[("f2s", "grey_input")] == set()  # baselines never marked
    assert best[("s2f", "a")] == {"fsim", "ssim_rank1"}
    assert best[("s2f", "b")] == {"mae", "psnr", "ssim", "ssim_rank1"}    # a's PSNR is missing

    cells = {(r.task, r.model): r.cells for r in table}
    a = cells[("f2s", "a")]
    assert a["mae"].delta == pytest.approx(-0.05) and a["mae"].better is True and a["mae"].delta_text == "-0.0500"
    assert a["psnr"].delta == pytest.approx(2.0) and a["psnr"].better is True
    assert a["ssim_rank1"].text == "20.0%" and a["ssim_rank1"].delta_text == "+15.0"  # percentage points
    assert cells[("s2f", "a")]["mae"].better is False and cells[("s2f", "a")]["psnr"].text == "-"
    assert cells[("s2f", "a")]["psnr"].delta is None
    assert cells[("f2s", "mean_target")]["mae"].delta is None  # baselines carry no delta
    assert not any(c.significant for r in table for c in r.cells.values())  # no comparisons given


def test_results_table_marks_significant_best_and_intervals():
    rows = [_row("a", "f2s", ssim=0.50, mae=0.10, intervals={"ssim": [0.48, 0.52], "mae": [0.09, 0.11]}),
            _row("b", "f2s", ssim=0.40, mae=0.11, intervals={"ssim": [0.38, 0.42], "mae": [0.10, 0.12]})]
    compared = {("f2s", "ssim"): protocol.Comparison("ssim", "a", "b", 0.1, (0.08, 0.12), 10),
                ("f2s", "mae"): protocol.Comparison("mae", "a", "b", -0.01, (-0.03, 0.01), 10)}
    cells = {r.model: r.cells for r in results_table(rows, compared)}
    assert cells["a"]["ssim"].best and cells["a"]["ssim"].significant
    assert cells["a"]["mae"].best and not cells["a"]["mae"].significant  # its interval includes 0
    assert not cells["b"]["ssim"].significant
    assert cells["a"]["ssim"].interval == (0.48, 0.52) and cells["a"]["ssim"].interval_text == "[0.4800, 0.5200]"


def test_metric_format_and_ticks():
    assert MetricSpec("psnr", "PSNR", True, 2).fmt(19.444) == "19.44"
    assert MetricSpec("x", "X", True, 1, percent=True).fmt(0.375) == "37.5%"
    assert MetricSpec("x", "X", True, 2).fmt(None) == "-"
    ticks = nice_ticks(0.1234, 0.2987)
    assert ticks[0] >= 0.1234 and ticks[-1] <= 0.2987 and len(ticks) >= 3


# ---------------------------------------------------------------- checking a report

class _Page(HTMLParser):
    """Every tag with its attributes, and the result cells' data attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: dict[tuple[str, str, str], str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "td" and "data-metric" in a:
            self.cells[(a["data-task"], a["data-model"], a["data-metric"])] = a["data-value"]


def check_report(reports: Path, metrics: Path, models: list[str], tasks: list[str]) -> None:
    """report.md and report.html hold every row and the study's figures; the HTML is self-contained
    and its result cells equal the metrics JSON values."""
    md = (reports / "report.md").read_text()
    text = (reports / "report.html").read_text()
    page = _Page()
    page.feed(text)
    page.close()

    names = {t for t, _ in page.tags}
    assert "script" not in names and "link" not in names and "iframe" not in names
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            if key in attrs:
                assert not attrs[key].lower().startswith(("http:", "https:", "//")), (tag, attrs[key][:80])
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == len(tasks) and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert "url(" not in text and "@import" not in text
    assert sum(1 for t, _ in page.tags if t == "polyline") >= len(models) * len(tasks)

    expected = {}
    for task in tasks:
        for kind, summary in json.loads((metrics / f"baselines-{task}.json").read_text()).items():
            expected[(task, kind)] = summary
        for m in models:
            expected[(task, m)] = json.loads((metrics / f"{m}-{task}.json").read_text())
    assert {(t, m) for t, m, _ in page.cells} == set(expected)
    for (task, model), summary in expected.items():
        for k in KEYS + (("scoot",) if task == "f2s" else ("fsimc",)):
            shown = page.cells[(task, model, k)]
            assert (None if shown == "" else float(shown)) == summary[k], (task, model, k)
        assert summary["protocol"]["data_range"]["ssim"] == 255
        label = f"*{BASELINE_LABELS[model]}*" if model in BASELINE_LABELS else f"**{model}**"
        assert f"| {task} | {label} |" in md, (task, model)

    assert "mean training target" in md and "mean training target" in text
    if "f2s" in tasks:
        assert "greyscale input" in md and "greyscale input" in text
    for p in PUBLISHED:
        for k in ("psnr", "ssim", "fsim", "fsimc", "lpips"):
            if k in p:
                assert f">{p[k]}<" in text and f"| {p[k]} |" in md
    assert "github.com/chaofengc/Face-Sketch-SCG" in md and "github.com/chaofengc/Face-Sketch-SCG" in text
    assert "own random 80/20 split" in text and "FID is not computed here" in md
    for setting in ("BT.601", "data range 255", "SSIM rank-1", "native", "bootstrap", "original fetched file"):
        assert setting in md and setting in text, setting


# ---------------------------------------------------------------- a report from fabricated outputs

OPTIONAL = {"id_rank1": (0, 2), "id_rank5": (0, 2), "id_verified": (0, 2), "id_auc": (0.4, 0.9),
            "id_distance": (0.3, 0.8), "lpips_vgg": (0.2, 0.5), "lpips_alex": (0.2, 0.5), "dists": (0.1, 0.3)}
ABSENT = {"identity": "identity metric not computed: dlib is not installed; install the optional extra",
          "perceptual": "LPIPS and DISTS not computed: /nowhere (set FACESKETCH_WEIGHTS_DIR) lacks vgg16-397923af.pth"}


def _fabricate(root: Path, models: list[str], tasks: list[str], optional: bool = False) -> None:
    """Outputs of the stages before report: processed data, split, metrics, model info, history, predictions.
    ``optional``: the identity and perceptual metrics scored too; otherwise absent, with the reasons of ABSENT."""
    from facesketch.data.split import make_split

    photos, sketches = make_pairs(12, 32)
    ids = [f"p{i:02d}" for i in range(12)]
    fileio.save_npz(root / "data/processed/pairs.npz", ids=np.array(ids), subsets=np.array(["train"] * 12),
                photos=photos, sketches=sketches)
    split = make_split(ids, ["train"] * 12, protocol="random", test_fraction=0.25, val_fraction=0.2, seed=0)
    fileio.write_json(root / "data/split/split.json", split)
    rng = np.random.default_rng(0)

    def per_image(task, shift=0.0):
        n = len(split["test"])
        table = pd.DataFrame({"id": split["test"], "mae": rng.uniform(0.05, 0.3, n) - shift / 10,
                              "psnr": rng.uniform(10, 20, n) + 10 * shift, "ssim": rng.uniform(0.2, 0.6, n) + shift,
                              "fsim": rng.uniform(0.5, 0.7, n) + shift, "ssim_rank1": rng.integers(0, 2, n)})
        table["scoot" if task == "f2s" else "fsimc"] = rng.uniform(0.3, 0.6, n) + shift
        if optional:
            for key, (lo, hi) in OPTIONAL.items():
                sign = 1 if protocol.HIGHER_IS_BETTER[key] else -1  # the shifted model better here too
                table[key] = rng.integers(lo, hi, n) if isinstance(lo, int) else rng.uniform(lo, hi, n) + sign * shift
        return table

    def summary(task, table):
        absent = {} if optional else {k: ABSENT[protocol.GROUP_OF[k]] for k in OPTIONAL}
        return protocol.summarize(task, table, absent)

    for task in tasks:
        fileio.write_json(root / f"metrics/baselines-{task}.json",
                      {"mean_target": summary(task, per_image(task)),
                       **({"grey_input": summary(task, per_image(task))} if task == "f2s" else {})})
        for i, m in enumerate(models):
            name = f"{m}-{task}"
            table = per_image(task, shift=0.3 * i)  # the second model clearly better on every metric
            fileio.write_text(root / f"metrics/per_image/{name}.csv", table.to_csv(index=False))
            fileio.write_json(root / f"metrics/{name}.json", summary(task, table))
            fileio.write_json(root / f"models/{name}/info.json", {
                "parameters": 123456 + i, "train_seconds": 12.5, "epochs": 3, "n_train": 7, "n_val": 2,
                "training": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 4, "loss": "mae"},
                "config": {"alpha": 0.2} if i else {}})
            gan = ("epoch,loss,g_l1_loss,val_loss,val_g_l1_loss\n"  # a GAN: both losses are its whole objective
                   "1,40.0,0.3,41.0,0.31\n2,30.0,0.25,32.0,0.27\n3,25.0,0.2,28.0,0.24\n")
            fileio.write_text(root / f"metrics/history/{name}.csv", gan if i else "epoch,loss,val_loss\n1,0.3,0.32\n2,0.2,0.25\n3,0.15,0.22\n")
            for pid in split["test"]:  # native-size PNGs, as evaluate saves them (grey for f2s)
                shape = (50, 40) if task == "f2s" else (50, 40, 3)
                ok, buf = cv2.imencode(".png", rng.integers(0, 255, shape, dtype=np.uint8))
                fileio.write_bytes(root / f"data/predictions/{name}/{pid}.png", buf.tobytes())


def test_report_from_fabricated_outputs(tmp_path, monkeypatch):
    _fabricate(tmp_path, MODELS, TASKS)
    scores = tmp_path / "metrics/conv-s2f.json"
    fileio.write_json(scores, {**json.loads(scores.read_text()), "psnr_infinite": 1})  # one image reproduced exactly
    monkeypatch.chdir(tmp_path)
    params = {"models": MODELS, "tasks": TASKS, "image_size": 32, "report": {"grid_pairs": 2},
              "data": {"source": "synthetic"}, "split": {"protocol": "random", "test_fraction": 0.25,
                                                         "val_fraction": 0.2}}
    out = report(params)
    assert out == Path("reports/report.md")
    check_report(tmp_path / "reports", tmp_path / "metrics", MODELS, TASKS)
    for name in ("grid.png", "grid-f2s.png", "grid-s2f.png", "loss-curves.svg"):
        assert (tmp_path / "reports" / name).stat().st_size > 200
    html_text = (tmp_path / "reports/report.html").read_text()
    assert "synthetic" in html_text and "123.5 k" in html_text and "12 s" in html_text
    # every chart draws loss against val_loss, the same quantity; only a plain loss names params.yaml's
    assert html_text.count("train (loss)") == html_text.count("validation (val_loss)") == len(MODELS) * len(TASKS)
    assert "g_l1_loss" not in html_text
    assert html_text.count(">loss (mae)</text>") == len(TASKS)  # dense: loss is all it optimises
    md = (tmp_path / "reports/report.md").read_text()
    assert "leave such images out: conv s2f: 1 of 3." in md and "conv s2f: 1 of 3" in html_text
    # the second model is clearly better: marked as beating the runner-up, in both documents
    assert "| f2s | ssim | conv | dense |".replace("ssim", "SSIM") in md and "conv beats dense" in md
    assert "conv beats dense" in html_text and "†" in md and "†" in html_text
    # the study's answer, from these numbers, with each winner's architecture and loss
    assert "### Which model wins, and why" in md and "<h3>Which model wins, and why</h3>" in html_text
    assert "conv is best on" in md and "significantly on " in md and "; SSIM by +" in md and "over dense [" in md
    from facesketch.models import describe
    assert f"- *conv*: {describe('conv')}" in md
    svg = (tmp_path / "reports/loss-curves.svg").read_text()
    assert svg.startswith("<svg xmlns=") and svg.count("<polyline") == 2 * len(MODELS) * len(TASKS)



def _report_of(root: Path, monkeypatch) -> tuple[str, str]:
    monkeypatch.chdir(root)
    report({"models": MODELS, "tasks": TASKS, "image_size": 32, "report": {"grid_pairs": 2},
            "data": {"source": "synthetic"}, "split": {"protocol": "random", "test_fraction": 0.25,
                                                       "val_fraction": 0.2}})
    return (root / "reports/report.md").read_text(), (root / "reports/report.html").read_text()


def test_identity_and_perceptual_column_groups_present(tmp_path, monkeypatch):
    _fabricate(tmp_path, MODELS, TASKS, optional=True)
    md, html_text = _report_of(tmp_path, monkeypatch)
    for title, meaning in GROUPS.values():
        assert f"### {title}" in md and meaning in md and escape(meaning) in html_text
    assert "| task | model | ID rank-1 ↑ | ID rank-5 ↑ | ID verified (d < 0.6) ↑ | ID ROC AUC ↑ | ID distance ↓ |" in md
    assert "| task | model | LPIPS-VGG ↓ | LPIPS-Alex ↓ | DISTS ↓ |" in md
    assert 'data-group="identity"' in html_text and 'data-group="perceptual"' in html_text
    page = _Page()
    page.feed(html_text)
    for task in TASKS:
        summary = json.loads((tmp_path / f"metrics/conv-{task}.json").read_text())
        for key in OPTIONAL:
            assert float(page.cells[(task, "conv", key)]) == summary[key], (task, key)
    # the answer names who keeps identity (conv: clearly better on every fabricated metric)
    assert "Identity: conv keeps the person best to dlib's face recognizer (ROC AUC +" in md
    fallbacks = json.loads((tmp_path / "metrics/dense-s2f.json").read_text())
    fileio.write_json(tmp_path / "metrics/dense-s2f.json", {**fallbacks, "id_fallbacks": 2})
    md, html_text = _report_of(tmp_path, monkeypatch)
    note = "dlib's detector found no face in these outputs, which were scored on the fixed CUHK face box instead: "
    assert note + "dense s2f: 2 of 3." in md and escape(note) in html_text
    assert "Not shown" not in md


def test_absent_groups_say_why_and_old_files_read_as_today(tmp_path, monkeypatch):
    _fabricate(tmp_path, MODELS, TASKS)
    # a metrics file and per-image table from before #26: SSIM rank-1 was called rank1
    old = tmp_path / "metrics/dense-f2s.json"
    summary = json.loads(old.read_text())
    summary["rank1"] = summary.pop("ssim_rank1")
    summary["intervals"]["rank1"] = summary["intervals"].pop("ssim_rank1")
    for key in ("absent", *[k for k in summary if k.startswith("id_")]):
        summary.pop(key, None)
    fileio.write_json(old, summary)
    csv = tmp_path / "metrics/per_image/dense-f2s.csv"
    fileio.write_text(csv, csv.read_text().replace("ssim_rank1", "rank1"))
    md, html_text = _report_of(tmp_path, monkeypatch)
    assert f"Not shown: {ABSENT['identity']}." in md and f"Not shown: {ABSENT['perceptual']}." in md
    assert escape(ABSENT["identity"]) in html_text and "| ID rank-1 ↑" not in md and "| LPIPS-VGG ↓" not in md
    page = _Page()
    page.feed(html_text)
    assert float(page.cells[("f2s", "dense", "ssim_rank1")]) == summary["rank1"]  # the old key, read as today
    assert ("f2s", "ssim_rank1") in comparisons(MODELS, TASKS, tmp_path / "metrics")


def test_metric_specs_import_without_scipy_or_skimage():
    """The web page formats metrics from metric_specs without SciPy or scikit-image (#23)."""
    script = ("import sys; sys.modules['scipy'] = sys.modules['skimage'] = sys.modules['dlib'] = None\n"
              "from facesketch.evaluation.metric_specs import METRIC_SPECS, with_legacy_keys\n"
              "v = with_legacy_keys({'accuracy': 0.25, 'ssim': 0.5})\n"
              "print(METRIC_SPECS['ssim_rank1'].label, METRIC_SPECS['ssim_rank1'].fmt(v['ssim_rank1']))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.strip() == "SSIM rank-1 25.0%"


def test_the_answer_names_each_winner_its_lead_and_why():
    from facesketch.report.content import answers

    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.7, 40)
    compared = {("f2s", "fsim"): protocol.compare_best("fsim", {"vae": base, "unet_gan": base + rng.uniform(0.02, 0.04, 40)}),
                ("f2s", "mae"): protocol.compare_best("mae", {"vae": base, "unet_gan": base.copy()}),  # a tie
                ("s2f", "ssim"): protocol.compare_best("ssim", {"vae": base, "unet_gan": base - 0.01})}
    got = answers(compared, explain=lambda m: f"what {m} does")
    assert [a.task for a in got] == ["f2s", "s2f"] and got[0].n_images == 40
    f2s = dict(zip(("mae", "fsim"), got[0].wins))
    lead = compared[("f2s", "fsim")]
    assert f2s["fsim"] == (f"unet_gan is best on FSIM: significantly on FSIM by +{lead.difference:.4f} over vae "
                           f"[+{lead.interval[0]:.4f}, +{lead.interval[1]:.4f}].")
    # identical scores: the first model is named, and no lead is claimed
    assert f2s["mae"] == "vae is best on MAE: no lead is significant (each paired 95% interval includes 0)."
    assert got[0].why == [("vae", "what vae does"), ("unet_gan", "what unet_gan does")]
    assert got[1].wins[0].startswith("vae is best on SSIM: significantly on SSIM by +0.0100 over unet_gan")
