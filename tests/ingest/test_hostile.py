"""Hostile input: videos that would expand beyond the pixel budget are refused from their headers
and index before any frame is decoded; SSRF through every redirect hop and every spelling of an
internal address; request bodies over the cap with or without a Content-Length."""
from __future__ import annotations

import asyncio
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import httpx
import numpy as np
import pytest

from app.config import Settings
from app.engine.fake import FakeEngine
from app.errors import InvalidRequestError, MediaError
from app.ingest import http as ingest_http
from app.ingest import pipeline
from app.ingest.options import build, request_options
from app.profiles.resolve import resolve


def encode(fmt: str, frames: int, side: int = 64) -> bytes:
    buf = io.BytesIO()
    out = av.open(buf, "w", format=fmt)
    stream = out.add_stream("libx264", rate=30)
    stream.width = stream.height = side
    stream.pix_fmt = "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((side, side, 3), i % 255, np.uint8),
                                           format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return buf.getvalue()


@pytest.fixture
def no_decode(monkeypatch):
    def decode(*a, **k):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(pipeline, "decode", decode)


def ingest(data: bytes, **limits):
    settings = Settings(model="tiny", engine="fake", **limits)
    return pipeline.ingest(data, build(resolve(settings), request_options(None)), settings)


@pytest.mark.parametrize("fmt, where", [("mp4", "(declared)"), ("matroska", "+")])
def test_too_many_frames_refused_before_decoding(no_decode, fmt, where):
    # MP4 declares its frame count (refused from the header); Matroska does not (refused while
    # indexing, as soon as the count passes the limit).
    data = encode(fmt, 600)
    with pytest.raises(MediaError) as err:
        ingest(data, video_max_source_frames=300)
    assert err.value.code == "video_too_large" and where in err.value.message


def test_pixel_budget_refused_before_decoding(no_decode):
    data = encode("mp4", 300)
    with pytest.raises(MediaError) as err:
        ingest(data, video_max_source_pixels=64 * 64 * 299)
    assert "video_max_source_pixels" in err.value.message


def test_within_the_budget_is_decoded():
    clip = ingest(encode("mp4", 300), video_max_source_frames=300,
                  video_max_source_pixels=64 * 64 * 300)
    assert clip.num_frames > 0 and len(clip.frames_sha256) == 64


class _Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def redirector(monkeypatch):
    """An HTTP server on 127.0.0.1 playing a public host that redirects inward."""
    real = ingest_http._is_public
    monkeypatch.setattr(ingest_http, "_is_public", lambda a: a == "127.0.0.1" or real(a))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
    server.shutdown()


@pytest.mark.parametrize("inward", [
    "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/", "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[::169.254.169.254]/",
    "http://[2002:a9fe:a9fe::1]/", "http://[fd00:ec2::254]/", "http://10.1.2.3/",
    "http://[fe80::1]/", "http://0/", "http://[::]/"])
def test_every_redirect_hop_is_checked(redirector, inward):
    _Redirector.target = inward
    fetcher = ingest_http.HttpFetcher(Settings(model="tiny", engine="fake"))
    try:
        with pytest.raises(InvalidRequestError) as err:
            asyncio.run(fetcher.fetch(redirector, 10**6, "video_max_bytes"))
    except MediaError as exc:  # a spelling the URL parser refuses outright is refused too
        assert "could not fetch" in exc.message
        return
    assert err.value.code in ("url_not_allowed", "unsupported_url"), err.value.message


@pytest.mark.parametrize("address, public", [
    ("2852039166", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True),
    ("::7f00:1", False), ("2002:7f00:1::", False), ("2002:808:808::", True),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False), ("192.0.0.192", False),
    ("100.100.100.200", False), ("fd00:ec2::254", False), ("2606:4700:4700::1111", True)])
def test_address_classes(address, public):
    import socket

    resolved = socket.getaddrinfo(address, 80, type=socket.SOCK_STREAM)[0][4][0]
    assert ingest_http._is_public(resolved) is public


def test_body_without_content_length_is_capped_while_read(live):
    with live(FakeEngine(), max_request_body_bytes=4096) as srv:
        def chunks():
            yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
            for _ in range(64):
                yield b"x" * 1024
            yield b'"}]}'

        r = httpx.post(srv.url + "/v1/chat/completions", content=chunks(), timeout=30,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
        ok = httpx.post(srv.url + "/v1/chat/completions", timeout=30, json={
            "model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        assert ok.status_code == 200
