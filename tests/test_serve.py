"""`facesketch serve`: the real server on 127.0.0.1, driven in Debian's headless Chromium through Playwright.

Needs the app extra (gradio) and the `chromium` package (.ci/run installs both);
Playwright drives that system browser, it never downloads one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_fixtures import astronaut_head, train_tiny, write_rgb

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 240_000  # the first run loads TensorFlow, the model and the detector on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app,test]'")
    root = tmp_path_factory.mktemp("serve")
    t = train_tiny(root)
    port = free_port()
    exe = Path(sys.executable).parent / "facesketch"
    log = open(root / "server.log", "w")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(root / "gradio-tmp"), "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--max-upload-mb", "1",
                             "--models-dir", str(t["models"]), "--metrics-dir", str(t["metrics"])],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"facesketch serve exited with {proc.returncode}:\n{(root / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"facesketch serve did not answer on {url}:\n{(root / 'server.log').read_text()}")
            time.sleep(1)
        yield {"url": url, "root": root, "port": port, "log": root / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_server_listens_on_localhost_only(server):
    """Bound to 127.0.0.1 by default: this machine's network address gets no answer."""
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=5):
        pass
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback to try")
    with pytest.raises(OSError):
        socket.create_connection((address, server["port"]), timeout=3).close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def upload_and_run(page, url: str, path: Path) -> str:
    """Open the page afresh, upload ``path``, press Run, and return the status line once it has answered."""
    page.goto(url)
    page.locator("#status").wait_for(state="attached")
    before = page.locator("#status").inner_text()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("([el, name]) => document.querySelector(el).innerText.replace(/\\s/g, '').includes(name)",
                           arg=["#upload", path.name], timeout=60_000)  # uploaded: the page lists the file
    page.locator("#run").click()
    page.wait_for_function("([el, before]) => { const t = document.querySelector(el).innerText.trim();"
                           " return t && t !== before && /^(Done|Error)/.test(t); }",
                           arg=["#status", before], timeout=WAIT_MS)
    return page.locator("#status").inner_text().strip()


def test_upload_a_photo_and_get_the_sketch_back(server, browser, tmp_path):
    head = astronaut_head()
    src = write_rgb(tmp_path / "astronaut.png", head)
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    status = upload_and_run(page, server["url"], src)
    metrics = page.locator("#metrics").inner_text()
    assert "conv-f2s" in metrics and "SSIM" in metrics and "0.5000" in metrics  # from metrics/conv-f2s.json
    assert "SSIM rank-1" in metrics and "25.0%" in metrics  # labels, formats: metric_specs (old "rank1" key read)
    assert status.startswith("Done") and "1 face found" in status, status

    result = page.locator("#result img").first
    result.wait_for()
    got = page.request.get(result.get_attribute("src"))
    assert got.ok
    image = cv2.imdecode(np.frombuffer(got.body(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == head.shape  # pasted back: the uploaded picture's size
    assert np.abs(image.astype(int) - cv2.cvtColor(head, cv2.COLOR_RGB2BGR)).mean() > 3  # and changed

    aligned = page.locator("#aligned img").first
    aligned.wait_for()
    crop = cv2.imdecode(np.frombuffer(page.request.get(aligned.get_attribute("src")).body(), np.uint8),
                        cv2.IMREAD_COLOR)
    assert crop is not None and abs(crop.shape[1] / crop.shape[0] - 0.8) < 0.02  # the CUHK frame

    link = page.locator("#download a").first
    link.wait_for()
    assert "astronaut_f2s_conv.png" in page.locator("#download").inner_text().replace("\n", "")
    downloaded = page.request.get(link.get_attribute("href"))
    assert downloaded.ok and downloaded.body()[:8] == b"\x89PNG\r\n\x1a\n"
    page.close()


def test_non_images_oversized_uploads_and_faceless_pictures_get_a_message(server, browser, tmp_path):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)

    fake = tmp_path / "notes.png"
    fake.write_text("this is text, not a picture\n" * 20)
    status = upload_and_run(page, server['url'], fake)
    assert status.startswith("Error") and "notes.png: not a readable image" in status, status

    big = tmp_path / "huge.png"  # 1.3 MB of noise: over the server's --max-upload-mb 1
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    assert cv2.imwrite(str(big), noise) and big.stat().st_size > 2**20
    status = upload_and_run(page, server['url'], big)
    assert status.startswith("Error") and "over the 1 MB upload limit" in status, status

    blank = write_rgb(tmp_path / "wall.png", np.full((200, 260, 3), 210, np.uint8))
    status = upload_and_run(page, server['url'], blank)
    assert status.startswith("Error") and "wall.png: no face found" in status, status
    page.close()
