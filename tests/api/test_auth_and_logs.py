"""API keys (several, from the environment and from a file that rotates), request ids, and the
JSON log: one line per request with its facts, and never a key, a prompt or media in it."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import httpx

from app.config import Settings
from app.dev.demo import stop_process, wait_ready
from app.engine.fake import FakeEngine
from tests.conftest import MEDIA, REPO, free_port

CHAT = "/v1/chat/completions"
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Which? A) x B) y"}]}


def post(srv, key: str | None, path: str = CHAT, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.post(srv.url + path, json=BODY, headers=headers, timeout=30, **kw)


def test_keys_from_setting_list_and_file_rotate_without_restart(live, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# one per line\nfile-key-1\n\n")
    with live(FakeEngine(), api_key="single", api_keys=("list-a", "list-b"),
              api_keys_file=keys) as srv:
        for key in ("single", "list-a", "list-b", "file-key-1"):
            assert post(srv, key).status_code == 200, key
        for key in (None, "wrong", "list-ab", "single-but-longer", "file-key", "LIST-A"):
            r = post(srv, key)
            assert r.status_code == 401, key
            assert r.json()["error"] == {"message": "invalid or missing API key",
                                         "type": "authentication_error", "param": None,
                                         "code": "invalid_api_key"}
        # A Secret update: the kubelet swaps the file; the next request sees the new keys.
        new = tmp_path / "keys.new"
        new.write_text("file-key-2\n")
        os.replace(new, keys)
        assert post(srv, "file-key-2").status_code == 200
        assert post(srv, "file-key-1").status_code == 401
        assert post(srv, "single").status_code == 200  # the fixed ones stay
        keys.unlink()  # a swap in progress: the keys last read stay
        assert post(srv, "file-key-2").status_code == 200
        # probes and metrics stay open
        assert httpx.get(srv.url + "/health/ready").status_code == 200
        assert httpx.get(srv.url + "/metrics").status_code == 200


def test_metrics_keyed_by_setting(live):
    with live(FakeEngine(), api_keys=("k",), metrics_require_key=True) as srv:
        assert httpx.get(srv.url + "/metrics").status_code == 401
        assert httpx.get(srv.url + "/metrics",
                         headers={"Authorization": "Bearer k"}).status_code == 200
        assert httpx.get(srv.url + "/health/live").status_code == 200


def test_keys_from_the_environment(monkeypatch):
    monkeypatch.setenv("COSMOS_API_KEYS", "a, b,,c")
    monkeypatch.setenv("COSMOS_API_KEY", "old")
    s = Settings()
    assert s.api_keys == ("a", "b", "c") and s.api_key == "old"


def test_request_id_echoed_or_made(live):
    with live(FakeEngine()) as srv:
        r = httpx.post(srv.url + CHAT, json=BODY, headers={"X-Request-Id": "trace-42"})
        assert r.headers["x-request-id"] == "trace-42"
        made = httpx.post(srv.url + CHAT, json=BODY).headers["x-request-id"]
        assert made and made != "trace-42"
        # Not an id: free text (a log-injection attempt) is replaced.
        r = httpx.post(srv.url + CHAT, json={"model": "nope", "messages": BODY["messages"]},
                       headers={"X-Request-Id": "x\" injected=1"})
        assert r.status_code == 404
        assert r.json()["request_id"] == r.headers["x-request-id"] != "x\" injected=1"


def test_json_log_has_the_request_facts_and_no_secrets(tmp_path):
    port = free_port()
    secret, marker = "sk-SECRET-0f9e8d", "PROMPT-MARKER-7c6b5a"
    clip = (MEDIA / "drv_cr1_sample_4fps.mp4").read_bytes()
    data_url = "data:video/mp4;base64," + base64.b64encode(clip).decode()
    cmd = [sys.executable, "-m", "app", "serve", "--engine", "fake", "--model", "tiny",
           "--host", "127.0.0.1", "--port", str(port), "--log-format", "json",
           "--log-level", "debug", "--allowed-local-media-dirs", str(MEDIA)]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "COSMOS_API_KEY": secret,
                                     "PYTHONUNBUFFERED": "1"})
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, timeout_s=60)
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {secret}"}
        ok = httpx.post(url + CHAT, headers={**auth, "X-Request-Id": "req-video"}, timeout=60,
                        json={"model": "tiny", "messages": [{"role": "user", "content": [
                            {"type": "video_url", "video_url": {"url": data_url}},
                            {"type": "text", "text": f"{marker} what happens?"}]}]})
        assert ok.status_code == 200, ok.text
        bad = httpx.post(url + CHAT, headers={"Authorization": f"Bearer {secret}x"}, json=BODY)
        assert bad.status_code == 401
        broken = httpx.post(url + CHAT, headers=auth, timeout=60, json={
            "model": "tiny", "messages": [{"role": "user", "content": [
                {"type": "video_url", "video_url": {"url": data_url[:5000]}},
                {"type": "text", "text": marker}]}]})
        assert broken.status_code == 400
    finally:
        stop_process(proc)
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([x for x in text.splitlines() if x.strip()]), text[-3000:]
    (access,) = [x for x in lines if x.get("request_id") == "req-video" and "status" in x]
    assert access["route"] == CHAT and access["status"] == 200 and access["latency_s"] > 0
    assert access["prompt_tokens"] > 0 and access["vision_tokens"] > 0
    assert access["completion_tokens"] > 0 and access["video_s"] > 0
    for leak in (secret, marker, data_url[22:80], data_url[-60:]):
        assert leak not in text, leak
