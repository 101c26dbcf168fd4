"""Media sources and their limits: data:, http(s) through a local server, local paths."""
from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from app.errors import (InvalidRequestError, MediaError, MediaTimeoutError,
                        PayloadTooLargeError)
from app.ingest import VideoIngestor
from app.ingest.http import _is_public
from tests.ingest.conftest import make_settings


class _Handler(BaseHTTPRequestHandler):
    clip = b""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path
        if path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", "/clip.mp4" if left == 0 else f"/hop/{left - 1}")
            self.end_headers()
        elif path == "/clip.mp4":
            self._send(self.clip)
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            time.sleep(3)
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        elif path == "/big-chunked":
            self.send_response(200)
            self.end_headers()
            for _ in range(64):  # 4 MiB without a Content-Length
                self.wfile.write(b"\0" * 65536)
        else:
            self.send_error(404)

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up on purpose (caps, timeouts) are not errors here


@pytest.fixture(scope="module")
def server(clip_dir):
    _Handler.clip = (clip_dir / "bframes.mp4").read_bytes()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def video(settings, url, **overrides):
    async def go():
        ingestor = VideoIngestor(settings)
        try:
            return await ingestor.video(url, ingestor.options(overrides))
        finally:
            await ingestor.close()
    return asyncio.run(go())


def image(settings, url):
    async def go():
        ingestor = VideoIngestor(settings)
        try:
            return await ingestor.image(url)
        finally:
            await ingestor.close()
    return asyncio.run(go())


def data_url(data: bytes, mime="video/mp4") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_data_url(clip_dir, settings):
    data = (clip_dir / "bframes.mp4").read_bytes()
    clip = video(settings, data_url(data))
    assert clip.num_frames == 12 and clip.source_bytes == len(data)
    wrapped = "data:video/mp4;base64," + base64.encodebytes(data).decode()  # 76-column lines
    assert video(settings, wrapped).num_frames == 12


def test_data_url_bad_base64(settings):
    with pytest.raises(InvalidRequestError, match="base64"):
        video(settings, "data:video/mp4;base64,@@@@")


def test_data_url_over_cap_is_413(clip_dir):
    settings = make_settings(clip_dir, video_max_bytes=1024)
    with pytest.raises(PayloadTooLargeError, match="video_max_bytes") as err:
        video(settings, data_url((clip_dir / "bframes.mp4").read_bytes()))
    assert err.value.status_code == 413


def test_local_path_and_file_url(clip_dir, settings):
    assert video(settings, str(clip_dir / "tiny.mp4")).num_frames == 4
    assert video(settings, (clip_dir / "tiny.mp4").as_uri()).num_frames == 4


def test_local_file_over_cap_is_413(clip_dir):
    with pytest.raises(PayloadTooLargeError):
        video(make_settings(clip_dir, video_max_bytes=1024), str(clip_dir / "bframes.mp4"))


def test_paths_outside_allowed_dirs_refused(clip_dir, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape.mp4").symlink_to(clip_dir / "tiny.mp4")
    settings = make_settings(allowed)
    for url in (str(clip_dir / "tiny.mp4"), f"{allowed}/../../etc/passwd",
                str(allowed / "escape.mp4")):
        with pytest.raises(InvalidRequestError, match="allowed_local_media_dirs") as err:
            video(settings, url)
        assert err.value.status_code == 400 and err.value.code == "url_not_allowed"
    with pytest.raises(InvalidRequestError, match="disabled"):
        video(make_settings(), str(clip_dir / "tiny.mp4"))


@pytest.mark.parametrize("url", ["ftp://example.com/a.mp4", "s3://bucket/a.mp4", "gopher://x"])
def test_unsupported_scheme(settings, url):
    with pytest.raises(InvalidRequestError, match="unsupported media URL scheme"):
        video(settings, url)


def test_http_fetch_and_redirects(server, clip_dir):
    settings = make_settings(clip_dir, fetch_allow_private=True)
    clip = video(settings, f"{server}/hop/2")
    assert clip.num_frames == 12 and clip.fetch_s > 0
    with pytest.raises(MediaError, match="fetch_max_redirects"):
        video(settings, f"{server}/hop/3")
    with pytest.raises(MediaError, match="HTTP 404"):
        video(settings, f"{server}/missing.mp4")


def test_private_addresses_refused_by_default(server, settings):
    for url in (f"{server}/clip.mp4", server.replace("127.0.0.1", "localhost") + "/clip.mp4"):
        with pytest.raises(InvalidRequestError, match="fetch_allow_private") as err:
            video(settings, url)
        assert err.value.status_code == 400


@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("::1", False), ("::ffff:127.0.0.1", False),
    ("fd00::1", False), ("224.0.0.1", False), ("0.0.0.0", False)])
def test_address_classes(address, public):
    assert _is_public(address) is public


def test_fetch_timeout_names_the_limit(server, clip_dir):
    settings = make_settings(clip_dir, fetch_allow_private=True, fetch_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(MediaTimeoutError, match="fetch_timeout_s") as err:
        video(settings, f"{server}/slow")
    assert err.value.status_code == 400 and time.monotonic() - started < 2.5


@pytest.mark.parametrize("path", ["/big-declared", "/big-chunked"])
def test_http_over_cap_is_413(server, clip_dir, path):
    settings = make_settings(clip_dir, fetch_allow_private=True, video_max_bytes=1024 * 1024)
    with pytest.raises(PayloadTooLargeError, match="video_max_bytes"):
        video(settings, server + path)


def test_image_data_url_rgba_on_white(settings):
    buf = io.BytesIO()
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(buf, format="PNG")
    result = image(settings, data_url(buf.getvalue(), "image/png"))
    assert result.mode == "RGB" and result.size == (40, 30)
    assert result.getpixel((0, 0)) == (255, 255, 255)


def test_image_file_and_errors(clip_dir, tmp_path):
    Image.new("RGB", (64, 48), (10, 200, 30)).save(tmp_path / "a.jpg")
    settings = make_settings(tmp_path, image_max_bytes=2048)
    assert image(settings, str(tmp_path / "a.jpg")).size == (64, 48)
    with pytest.raises(MediaError, match="not a readable image"):
        image(settings, data_url(b"not an image", "image/png"))
    Image.effect_noise((256, 256), 64).convert("RGB").save(tmp_path / "big.png")
    with pytest.raises(PayloadTooLargeError, match="image_max_bytes"):
        image(settings, str(tmp_path / "big.png"))
