"""Overload and deadlines over real HTTP on the fake engine: 429 with Retry-After at each cap, a
deadline (setting or X-Request-Deadline-S) or a vanished client ends the request, aborts its
engine request, cancels its decode and frees its slot, all as seen through /metrics."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from app.engine.fake import FakeEngine
from app.ingest import pipeline
from tests.conftest import MEDIA

CHAT = "/v1/chat/completions"
CLIP = f"file://{MEDIA}/drv_cr1_sample_4fps.mp4"


def body(**extra) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": "Which? A) x B) y"}],
            **extra}


def video_body(url: str = CLIP, **extra) -> dict:
    return body(messages=[{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": "What?"}]}],
        **extra)


def metric(srv, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == name or (key.startswith(name + "{") and want in key):
            total += float(value)
    return total


def wait_for(cond, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def assert_nothing_held(srv) -> None:
    wait_for(lambda: metric(srv, "cosmos_requests_in_flight") == 0)
    assert metric(srv, "cosmos_engine_requests_running") == 0
    assert metric(srv, "cosmos_ingest_decodes_running") == 0
    assert metric(srv, "cosmos_ingest_decode_queue_depth") == 0


@pytest.fixture
def slow_decode(monkeypatch):
    """Decodes that last until cancelled (at most 30 s), as a huge clip would."""
    started = threading.Event()

    def decode(*args, cancel=None, **kw):
        started.set()
        if cancel is not None and cancel.wait(30):
            from app.errors import DecodeCancelledError

            raise DecodeCancelledError("cancelled")
        raise AssertionError("the decode was never cancelled")

    monkeypatch.setattr(pipeline, "decode", decode)
    return started


def test_deadline_header_ends_a_generation_and_aborts_it(live):
    engine = FakeEngine(step_delay_s=0.2)  # about 5 s for the whole answer
    with live(engine) as srv:
        aborts = metric(srv, "cosmos_engine_aborts_total", reason="deadline")
        r = httpx.post(srv.url + CHAT, json=body(), timeout=30,
                       headers={"X-Request-Deadline-S": "0.6", "X-Request-Id": "deadline-1"})
        assert r.status_code == 504, r.text
        assert r.json()["error"]["code"] == "deadline_exceeded"
        assert r.json()["request_id"] == r.headers["x-request-id"] == "deadline-1"
        assert engine.aborted, "the engine request was not aborted"
        assert metric(srv, "cosmos_engine_aborts_total", reason="deadline") == aborts + 1
        assert_nothing_held(srv)


def test_deadline_setting_ends_a_stream_with_an_error_event(live):
    engine = FakeEngine(step_delay_s=0.2)
    with live(engine, request_deadline_s=0.6) as srv:
        with httpx.stream("POST", srv.url + CHAT, json=body(stream=True), timeout=30) as r:
            assert r.status_code == 200
            events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        err = json.loads(events[-2])["error"]
        assert err["code"] == "deadline_exceeded"
        assert engine.aborted
        assert_nothing_held(srv)


def test_a_header_cannot_raise_the_deadline(live):
    engine = FakeEngine(step_delay_s=0.2)
    with live(engine, request_deadline_s=0.6) as srv:
        r = httpx.post(srv.url + CHAT, json=body(), timeout=30,
                       headers={"X-Request-Deadline-S": "600"})
        assert r.status_code == 504


def test_deadline_during_decode_cancels_the_decode(live, slow_decode):
    with live(FakeEngine()) as srv:
        cancelled = metric(srv, "cosmos_ingest_decodes_cancelled_total")
        r = httpx.post(srv.url + CHAT, json=video_body(), timeout=30,
                       headers={"X-Request-Deadline-S": "1"})
        assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
        wait_for(lambda: metric(srv, "cosmos_ingest_decodes_cancelled_total") == cancelled + 1)
        assert_nothing_held(srv)


def test_client_gone_during_decode_cancels_the_decode(live, slow_decode):
    with live(FakeEngine()) as srv:
        cancelled = metric(srv, "cosmos_ingest_decodes_cancelled_total")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.url + CHAT, json=video_body(), timeout=1.0)
        wait_for(lambda: metric(srv, "cosmos_ingest_decodes_cancelled_total") == cancelled + 1)
        assert_nothing_held(srv)


def test_request_cap_is_429_with_retry_after(live):
    engine = FakeEngine(step_delay_s=0.1)
    with live(engine, max_concurrent_requests=1, overload_retry_after_s=7) as srv:
        slow = threading.Thread(target=lambda: httpx.post(srv.url + CHAT, json=body(),
                                                          timeout=30))
        slow.start()
        wait_for(lambda: metric(srv, "cosmos_requests_in_flight") == 1)
        r = httpx.post(srv.url + CHAT, json=body(), timeout=30)
        slow.join()
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert_nothing_held(srv)


def test_decode_queue_cap_is_429_with_retry_after(live, slow_decode):
    with live(FakeEngine(), video_decode_workers=1, video_decode_queue_max=0,
              request_deadline_s=3) as srv:
        first = threading.Thread(target=lambda: httpx.post(srv.url + CHAT, json=video_body(),
                                                           timeout=30))
        first.start()
        assert slow_decode.wait(20)
        other = f"file://{MEDIA}/drv_predict1_dashcam_batch4.mp4"  # not the same decode
        r = httpx.post(srv.url + CHAT, json=video_body(other), timeout=30)
        assert r.status_code == 429, r.text
        assert "video_decode_queue_max" in r.json()["error"]["message"]
        assert r.headers["retry-after"] == "1"
        first.join()  # ends at its 3 s deadline, its decode cancelled
        assert_nothing_held(srv)


class LoopEngine(FakeEngine):
    """Remembers the server's event loop, where a shutdown's stop runs."""

    def generate(self, inp):
        self.loop = asyncio.get_running_loop()
        return super().generate(inp)


def test_shutdown_drain_end_stops_running_requests_with_503(live):
    engine = LoopEngine(step_delay_s=0.2)
    with live(engine) as srv:
        results = {}

        def whole():
            results["whole"] = httpx.post(srv.url + CHAT, json=body(), timeout=30)

        def streamed():
            with httpx.stream("POST", srv.url + CHAT, json=body(stream=True), timeout=30) as r:
                results["stream"] = [x for x in r.iter_lines() if x.startswith("data: ")]

        threads = [threading.Thread(target=whole), threading.Thread(target=streamed)]
        for t in threads:
            t.start()
        wait_for(lambda: metric(srv, "cosmos_engine_requests_running") == 2)
        chat = srv.app.state.chat
        assert asyncio.run_coroutine_threadsafe(_stop(chat), engine.loop).result(5) == 2
        for t in threads:
            t.join()
        assert results["whole"].status_code == 503
        assert results["whole"].json()["error"]["code"] == "shutting_down"
        assert json.loads(results["stream"][-2][6:])["error"]["code"] == "shutting_down"
        assert metric(srv, "cosmos_engine_aborts_total", reason="shutdown") >= 2
        assert_nothing_held(srv)


async def _stop(chat) -> int:
    return chat.stop_all()
