"""What users hit with streams, over real HTTP on the fake engine: an engine error in the
middle of a stream, a client that disconnects, keep-alives while a video decodes, and streamed
and whole answers being the same."""
from __future__ import annotations

import json
import time

import httpx
from openai import OpenAI

from app.engine.fake import FakeEngine

LONG = "<think>\n" + "The car slows down near the crosswalk. " * 60 + "\n</think>\n\n<answer>\nB\n</answer>"


def body(**kw) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": "Which? A) x B) y"}], **kw}


def events(text: str) -> list:
    return [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]


class FailingEngine(FakeEngine):
    """Generates a few steps, then the engine fails (as a dead EngineCore would)."""

    fail = True

    async def generate(self, inp):
        n = 0
        async for step in super().generate(inp):
            yield step
            n += 1
            if n == 3 and self.fail:
                raise RuntimeError("EngineCore died mid-request")


def test_error_mid_stream_ends_with_an_error_event_and_frees_the_slot(live):
    engine = FailingEngine(script=LONG)
    with live(engine, max_concurrent_requests=1) as srv:
        r = httpx.post(srv.url + "/v1/chat/completions", json=body(stream=True), timeout=30)
        assert r.status_code == 200  # the stream had started
        data = events(r.text)
        assert data[-1] == "[DONE]"
        last = json.loads(data[-2])
        assert last["error"]["type"] == "internal_server_error"
        assert "EngineCore" not in last["error"]["message"]  # no internals leaked
        assert sum(1 for d in data[:-2] if "delta" in d) >= 3  # what was generated arrived
        assert engine.aborted  # the failed request was aborted in the engine
        assert srv.metric("cosmos_requests_in_flight") == 0
        # the one slot is free again: the next request is served
        engine.fail, engine.script = False, "<think>\nok\n</think>\n\n<answer>\nA\n</answer>"
        ok = httpx.post(srv.url + "/v1/chat/completions", json=body(), timeout=30)
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "A"


def test_client_disconnect_mid_stream_aborts_the_engine_request(live):
    engine = FakeEngine(script=LONG, step_delay_s=0.02)
    with live(engine) as srv:
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body(stream=True),
                          timeout=30) as r:
            seen = []
            for line in r.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                if len(seen) == 5:
                    break  # leave the stream: closing the connection mid-answer
        request_id = seen[0]["id"]
        deadline = time.monotonic() + 10
        while request_id not in engine.aborted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert request_id in engine.aborted
        assert srv.metric("cosmos_requests_in_flight") == 0
        assert httpx.post(srv.url + "/v1/chat/completions", json=body(),
                          timeout=30).status_code == 200


def test_keepalive_comments_while_a_video_decodes(live, monkeypatch):
    from app.ingest import service

    real = service.ingest
    monkeypatch.setattr(service, "ingest", lambda *a, **k: time.sleep(1.0) or real(*a, **k))
    engine = FakeEngine()
    with live(engine, sse_keepalive_interval_s=0.2) as srv:
        video = {"type": "video_url",
                 "video_url": {"url": f"file://{srv.app.state.settings.allowed_local_media_dirs[0]}"
                                      f"/drv_cr1_sample_4fps.mp4"}}
        r = httpx.post(srv.url + "/v1/chat/completions", timeout=30, json={
            "model": "tiny", "stream": True,
            "messages": [{"role": "user", "content": [video, {"type": "text", "text": "Go?"}]}]})
        assert r.status_code == 200
        assert r.text.startswith(": keep-alive\n\n")
        assert r.text.count(": keep-alive") >= 3
        assert events(r.text)[-1] == "[DONE]" and '"content":"B"' in r.text


def test_streamed_and_whole_answers_agree_through_the_openai_client(live):
    engine = FakeEngine(script=LONG)
    with live(engine) as srv:
        client = OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
        kw = dict(model="tiny", seed=7, messages=body()["messages"])
        whole = client.chat.completions.create(**kw)
        parts = list(client.chat.completions.create(
            stream=True, stream_options={"include_usage": True}, **kw))
    msg = whole.choices[0].message
    content = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
    reasoning = "".join((p.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                        for p in parts if p.choices)
    assert content == msg.content == "B"
    assert reasoning == msg.model_extra["reasoning_content"]
    assert parts[-1].usage.completion_tokens == whole.usage.completion_tokens
    guard = [(p.choices[0].model_extra or {}).get("guardrail") for p in parts if p.choices]
    assert guard[-1] == whole.choices[0].model_extra["guardrail"]
