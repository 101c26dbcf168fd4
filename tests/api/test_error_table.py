"""Every error a client can meet, over real HTTP on the fake engine: the status, and the one
OpenAI body shape `{"error": {message, type, param, code}}`, all built in app/errors.py."""
from __future__ import annotations

import threading

import httpx
import pytest

from app.engine.fake import FakeEngine
from tests.conftest import MEDIA

CHAT = "/v1/chat/completions"


def msgs(content="Which? A) x B) y"):
    return [{"role": "user", "content": content}]


def video(name: str) -> dict:
    return {"type": "video_url", "video_url": {"url": f"file://{MEDIA}/{name}"}}


CASES = [  # (name, settings, method, path, json body or raw bytes, status, type, param, code)
    ("bad json", {}, "post", CHAT, b"{not json", 400, "invalid_request_error", None,
     "invalid_json"),
    ("wrong shape", {}, "post", CHAT, {"model": "tiny"}, 400, "invalid_request_error",
     "messages", "invalid_value"),
    ("bad option", {}, "post", CHAT, {"model": "tiny", "messages": msgs(), "video_fps": 0}, 400,
     "invalid_request_error", "video_fps", "invalid_value"),
    ("option above the server's", {}, "post", CHAT,
     {"model": "tiny", "messages": msgs([video("drv_cr1_sample_4fps.mp4")]),
      "video_max_pixels": 10**8}, 400, "invalid_request_error", "video_max_pixels", None),
    ("missing file", {}, "post", CHAT,
     {"model": "tiny", "messages": msgs([video("nope.mp4")])}, 400, "invalid_request_error",
     None, "invalid_media"),
    ("context length", {"max_tokens_room": True}, "post", CHAT,
     {"model": "tiny", "messages": msgs(), "max_tokens": 100_000}, 400, "invalid_request_error",
     "max_tokens", "context_length_exceeded"),
    ("bad key", {"api_key": "sekrit"}, "post", CHAT, {"model": "tiny", "messages": msgs()}, 401,
     "authentication_error", None, "invalid_api_key"),
    ("unknown model", {}, "post", CHAT, {"model": "gpt-9", "messages": msgs()}, 404,
     "invalid_request_error", "model", "model_not_found"),
    ("unknown model card", {}, "get", "/v1/models/gpt-9", None, 404, "invalid_request_error",
     "model", "model_not_found"),
    ("unknown route", {}, "get", "/v1/nothing", None, 404, "invalid_request_error", None,
     "not_found"),
    ("wrong method", {}, "get", CHAT, None, 405, "invalid_request_error", None,
     "method_not_allowed"),
    ("too large", {"max_request_body_bytes": 2048}, "post", CHAT,
     {"model": "tiny", "messages": msgs("x" * 5000)}, 413, "invalid_request_error", None,
     "payload_too_large"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_error_table(live, case):
    name, overrides, method, path, payload, status, type_, param, code = case
    overrides = dict(overrides)
    engine = FakeEngine(max_model_len=4096 if overrides.pop("max_tokens_room", False) else 8192)
    with live(engine, **overrides) as srv:
        kw = {"content": payload} if isinstance(payload, bytes) else {"json": payload}
        r = httpx.request(method.upper(), srv.url + path, timeout=30,
                          headers={"content-type": "application/json"},
                          **(kw if payload is not None else {}))
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]
        assert (err["type"], err["param"], err["code"]) == (type_, param, code), err
        # the server keeps serving
        ok = httpx.post(srv.url + CHAT, json={"model": "tiny", "messages": msgs()}, timeout=30,
                        headers={"authorization": "Bearer sekrit"})
        assert ok.status_code == 200


def test_overloaded_is_429_and_not_ready_is_503(live):
    engine = FakeEngine(step_delay_s=0.05)
    with live(engine, max_concurrent_requests=1) as srv:
        slow = threading.Thread(target=lambda: httpx.post(
            srv.url + CHAT, json={"model": "tiny", "messages": msgs()}, timeout=30))
        slow.start()
        while srv.metric("cosmos_requests_in_flight") < 1:
            pass
        r = httpx.post(srv.url + CHAT, json={"model": "tiny", "messages": msgs()}, timeout=30)
        slow.join()
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
        engine._ready = False  # as while the engine (re)loads
        r = httpx.post(srv.url + CHAT, json={"model": "tiny", "messages": msgs()}, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_not_ready"
