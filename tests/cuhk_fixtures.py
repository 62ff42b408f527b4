"""Tiny CUHK-like archives and a real local HTTP server for the data tests.

Nothing here reads the real dataset: images are generated (20x25 JPEGs), the
archives follow the CUHK layout and naming (``photo/f-005-01.jpg``,
``sketch/F2-005-01-sz1.jpg``; testing: ``f1-``/``m1-`` series and sketches
named like ``f-039-01-sz1.jpg``), and the server is ``http.server`` on
127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import copy
import hashlib
import io
import stat
import tarfile
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import REPO

# (photo name, sketch name) per pair; the pair's colour value is its index
TRAIN = [("photo/f-005-01.jpg", "sketch/F2-005-01-sz1.jpg"),
         ("photo/f-006-01.jpg", "sketch/F2-006-01-sz1.jpg"),
         ("photo/m-005-01.jpg", "sketch/M2-005-01-sz1.jpg"),
         ("photo/m-007-01.jpg", "sketch/M2-007-01-sz1.jpg")]
TEST = [("photo/f-039-01.jpg", "sketch/f-039-01-sz1.jpg"),
        ("photo/f1-001-01.jpg", "sketch/deeper/F1-001-01-SZ1.JPG"),
        ("photo/m1-002-01.jpg", "sketch/m1-002-01-sz1.jpg"),
        ("photo/m-063-01.jpg", "sketch/M2-063-01-sz1.jpg")]
FILES = {"train_photo": "CUHK_training_photo.zip", "train_sketch": "CUHK_training_sketch.zip",
         "test_photo": "CUHK_testing_photo.zip", "test_sketch": "CUHK_testing_sketch.zip"}


def pair_value(pair_id: str) -> int:
    """Each pair's images are filled with their own grey level, so a mix-up is visible."""
    ids = sorted(Path(p).stem for p, _ in TRAIN + TEST)
    return 70 + 20 * ids.index(pair_id)


def jpeg(value: int, *, colour: bool, w: int = 20, h: int = 25) -> bytes:
    img = np.full((h, w, 3) if colour else (h, w), value, np.uint8)
    if colour:
        img[..., 0] = min(255, value + 30)  # bluish photo
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def cuhk_entries() -> dict[str, dict[str, bytes]]:
    """Archive key -> {member name: bytes}, the CUHK layout in miniature."""
    out: dict[str, dict[str, bytes]] = {k: {} for k in FILES}
    for subset, pairs in (("train", TRAIN), ("test", TEST)):
        for photo, sketch in pairs:
            v = pair_value(Path(photo).stem)
            out[f"{subset}_photo"][photo] = jpeg(v, colour=True)
            out[f"{subset}_sketch"][sketch] = jpeg(v, colour=False)
    return out


def cuhk_archives(overrides: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """File name -> archive bytes for the four archives (``overrides``: key -> replacement bytes)."""
    arch = {FILES[k]: zip_bytes(v) for k, v in cuhk_entries().items()}
    for key, data in (overrides or {}).items():
        arch[FILES[key]] = data
    return arch


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unsafe_zip(kind: str) -> bytes:
    """A sketch archive with one bad entry (and the good sketches)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in cuhk_entries()["train_sketch"].items():
            zf.writestr(name, data)
        if kind == "dotdot":
            zf.writestr("sketch/../../evil.jpg", b"x")
        elif kind == "absolute":
            zf.writestr("/tmp/evil.jpg", b"x")
        elif kind == "symlink":
            info = zipfile.ZipInfo("sketch/link.jpg")
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "../../../etc/passwd")
    return buf.getvalue()


def tar_bytes(entries: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


# --------------------------------------------------------------------------- server

class Route:
    """What the server answers for one path: ``ok`` (the bytes), ``error`` (500),
    ``truncated`` (Content-Length larger than the body, then close), ``html``."""

    def __init__(self, data: bytes = b"", mode: str = "ok"):
        self.data, self.mode = data, mode


class Server:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits[self.path] += 1
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.mode == "error":
                    self.send_error(500, "boom")
                    return
                body = route.data
                if route.mode == "html":
                    body = b"<!DOCTYPE html><html><body>Please log in</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if route.mode == "html" else "application/zip")
                length = len(body) + (5000 if route.mode == "truncated" else 0)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if route.mode == "truncated" else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def serve(self, prefix: str, archives: dict[str, bytes], modes: dict[str, str] | None = None) -> str:
        """Serve the archives under ``/prefix/``; return that base URL."""
        for name, data in archives.items():
            self.routes[f"/{prefix}/{name}"] = Route(data, (modes or {}).get(name, "ok"))
        return f"{self.url}/{prefix}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server(monkeypatch):
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = Server()
    yield srv
    srv.close()


def cuhk_params(data_dir: Path, base_url: str, *, source: str = "cuhk", retries: int = 1,
                sha: dict[str, str | None] | None = None, image_size: int = 32) -> dict:
    """The repository's params.yaml, pointed at tmp folders and the test server."""
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["image_size"] = image_size
    data = params["data"]
    data["source"] = source
    data["strict"] = True
    data["archive_dir"] = str(data_dir / "archives")
    cfg = data["cuhk"]
    cfg.update(base_url=base_url, download_dir=str(data_dir / "downloads"), retries=retries, timeout=5,
               subsets=["train", "test"])
    for key, file in FILES.items():
        cfg["archives"][key] = {"file": file, "url": None, "sha256": (sha or {}).get(key)}
    return params


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))
