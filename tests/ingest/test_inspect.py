"""`POST /v1/video/inspect` and `cosmos-serve inspect`: what the model sees, as a report."""
from __future__ import annotations

import base64
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from app.api.inspect import router
from app.errors import install_error_handlers
from app.ingest import VideoIngestor
from app.ingest.inspect import main

KEYS = {"stream_index", "duration_s", "source_fps", "sampled_timestamps_s", "frame_indices",
        "num_frames", "resized_height", "resized_width", "vision_tokens", "skipped_frames",
        "fetch_s", "decode_s"}


@pytest.fixture
def client(settings):
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.ingestor = VideoIngestor(settings)
    with TestClient(app) as c:
        yield c


def test_endpoint_reports_and_caches(client, clip_dir):
    url = str(clip_dir / "multi.mkv")
    first = client.post("/v1/video/inspect", json={"video_url": {"url": url}})
    assert first.status_code == 200, first.text
    body = first.json()
    assert KEYS <= body.keys()
    assert body["stream_index"] == 1 and body["num_frames"] == 4
    assert body["vision_tokens"] == 2 * (body["resized_height"] // 28) * (
        body["resized_width"] // 28)
    assert not body["cache_hit"]
    for payload in ({"video_url": url}, {"url": url}):  # bare string, plain url
        again = client.post("/v1/video/inspect", json=payload).json()
        assert again["cache_hit"] and again["frame_indices"] == body["frame_indices"]


def test_endpoint_options(client, clip_dir):
    body = client.post("/v1/video/inspect", json={
        "url": str(clip_dir / "bframes.mp4"), "video_fps": 2, "video_start": 1.0,
        "video_total_pixels": 200_000, "video_min_pixels": 16 * 784}).json()
    assert body["num_frames"] == 4 and min(body["sampled_timestamps_s"]) >= 1.0
    assert body["resized_height"] * body["resized_width"] <= 200_000 / 4 * 2


@pytest.mark.parametrize("payload,param", [
    ({}, "video_url"),
    ({"url": "x.mp4", "video_fps": -1}, "video_fps"),
    ({"url": "x.mp4", "video_speed": 2}, "video_speed"),
])
def test_endpoint_errors_are_400(client, payload, param):
    r = client.post("/v1/video/inspect", json=payload)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_endpoint_refuses_outside_paths(client):
    r = client.post("/v1/video/inspect", json={"url": "/etc/hostname"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "url_not_allowed"


def test_cli_json(clip_dir, capsys):
    assert main([str(clip_dir / "vfr.mp4"), "--json", "--fps", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert KEYS <= report.keys() and report["num_frames"] == 8


def test_cli_text_and_sheet(clip_dir, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main([str(clip_dir / "rotated90.mp4"), "--sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "rotated 90 deg" in out and "vision tokens" in out
    image = Image.open(sheet)
    assert image.format == "PNG" and image.width > image.height > 100


def test_cli_errors(clip_dir, capsys):
    assert main([str(clip_dir / "garbage.mp4")]) == 2
    assert "not a readable video" in capsys.readouterr().err
    assert main([str(clip_dir / "missing.mp4")]) == 2
    assert main([str(clip_dir / "tiny.mp4"), "--fps", "0"]) == 2


def test_cli_data_url(clip_dir, capsys):
    url = "data:video/mp4;base64," + base64.b64encode((clip_dir / "tiny.mp4").read_bytes()).decode()
    assert main([url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_frames"] == 4
