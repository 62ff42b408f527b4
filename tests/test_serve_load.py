"""`facesketch serve` under a small load (#27): benchmarks/serve_load.py at 30 requests, 4 at a time,
against the real server on 127.0.0.1 with a tiny trained model. Every answer right (valid pictures
a result, non-images and oversized files the page's message, over Gradio's limit an HTTP 413 in the
page's MB, not "11534336 bytes"), the server up afterwards, its memory flat, no half-written file.
The full run (200 requests, 8 at a time) is `python benchmarks/serve_load.py`."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import REPO


def _load_module():
    spec = importlib.util.spec_from_file_location("serve_load", REPO / "benchmarks" / "serve_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_web_page_under_a_small_load(tmp_path):
    pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app,test]'")
    load = _load_module()
    models, metrics = load.train_tiny(tmp_path)
    files = load.make_inputs(tmp_path / "inputs")
    proc, url = load.start_server(models, metrics, tmp_path)
    try:
        status, text, _ = load.request(url, files["over_gradio"])
        assert status == 413 and text == "The file is over the 1 MB upload limit; send a smaller picture.", text
        stats = load.run_load(url, proc.pid, files, requests=30, concurrency=4,
                              out_folders=[tmp_path / "tmp", tmp_path / "gradio-tmp"])
    finally:
        load.stop_server(proc)
    print(load.report(stats))
    assert {r["kind"] for r in stats["failures"]} == set(), stats["failures"]
    assert set(stats["latency"]) == set(load.KINDS)  # every kind of request was sent
    assert load.problems(stats, max_rss_growth_mb=100) == []
