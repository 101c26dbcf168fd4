"""The HTTP layer over the fake engine: protocol shape, streaming, admission, auth, guardrail.

Fast (no vLLM). What the fake cannot show — real tokens, real video prompts — is in
test_chat_e2e.py against the real engine.
"""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine
from app.reasoning import REASONING_INSTRUCTION

IMPLAUSIBLE = ("<think>\nThe pedestrian crosses at 90 km/h while the car waits.\n</think>\n\n"
               "<answer>\nA\n</answer>")


def make(script: str | None = None, step_delay_s: float = 0.0, **overrides):
    settings = Settings(model="tiny", engine="fake", **overrides)
    engine = FakeEngine(settings, step_delay_s=step_delay_s,
                        **({"script": script} if script else {}))
    return create_app(settings, engine=engine), engine


async def _call(app, fn):
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if app.state.engine.ready:
                break
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await fn(client)


def run(app, fn):
    return asyncio.run(_call(app, fn))


def body(**kw):
    return {"model": "tiny", "messages": [{"role": "user", "content": "Which? A) x B) y"}], **kw}


def sse(text: str) -> list:
    lines = [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(ln) for ln in lines[:-1]]


def test_non_stream_splits_reasoning_and_answer():
    app, engine = make()
    r = run(app, lambda c: c.post("/v1/chat/completions", json=body()))
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == "B"
    assert choice["message"]["reasoning_content"].startswith("The car ahead slows")
    assert choice["message"]["reasoning"] == choice["message"]["reasoning_content"]
    assert choice["finish_reason"] == "stop"
    assert REASONING_INSTRUCTION in engine.last_input.prompt


def test_reasoning_false_and_raw_text():
    app, engine = make()
    r = run(app, lambda c: c.post("/v1/chat/completions",
                                  json=body(reasoning=False, return_raw_text=True)))
    assert REASONING_INSTRUCTION not in engine.last_input.prompt
    assert r.json()["choices"][0]["message"]["content"].startswith("<think>")


def test_stream_chunks_join_to_the_full_answer():
    app, _ = make()

    async def both(c):
        full = await c.post("/v1/chat/completions", json=body())
        stream = await c.post("/v1/chat/completions",
                              json=body(stream=True, stream_options={"include_usage": True}))
        return full.json(), stream

    full, stream = run(app, both)
    assert stream.headers["content-type"].startswith("text/event-stream")
    chunks = sse(stream.text)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == full["choices"][0]["message"]["content"]
    assert ("".join(d.get("reasoning_content", "") for d in deltas)
            == full["choices"][0]["message"]["reasoning_content"])
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == full["usage"]


def test_max_tokens_and_stop():
    app, _ = make()
    r = run(app, lambda c: c.post("/v1/chat/completions", json=body(max_tokens=3)))
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["usage"]["completion_tokens"] == 3
    r = run(app, lambda c: c.post("/v1/chat/completions", json=body(stop=["ahead"])))
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert "ahead" not in json.dumps(r.json()["choices"][0]["message"])


def test_overload_is_429_and_server_recovers():
    app, _ = make(step_delay_s=0.05, max_concurrent_requests=1)

    async def burst(c):
        rs = await asyncio.gather(*[c.post("/v1/chat/completions", json=body())
                                    for _ in range(3)])
        after = await c.post("/v1/chat/completions", json=body())
        return rs, after

    rs, after = run(app, burst)
    assert sorted(r.status_code for r in rs) == [200, 429, 429]
    assert next(r for r in rs if r.status_code == 429).json()["error"]["type"] == \
        "rate_limit_error"
    assert after.status_code == 200


def test_api_key_required_except_probes():
    app, _ = make(api_key="s3cret")

    async def calls(c):
        no = await c.post("/v1/chat/completions", json=body())
        yes = await c.post("/v1/chat/completions", json=body(),
                           headers={"Authorization": "Bearer s3cret"})
        probe = await c.get("/health/ready")
        return no, yes, probe

    no, yes, probe = run(app, calls)
    assert no.status_code == 401 and no.json()["error"]["code"] == "invalid_api_key"
    assert yes.status_code == 200 and probe.status_code == 200


def test_body_over_limit_is_413():
    app, _ = make(max_request_body_bytes=2048)
    big = body(messages=[{"role": "user", "content": "x" * 5000}])
    r = run(app, lambda c: c.post("/v1/chat/completions", json=big))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_not_ready_is_503():
    settings = Settings(model="tiny", engine="fake")
    app = create_app(settings, engine=FakeEngine(settings))

    async def before_start(c):
        return await c.post("/v1/chat/completions", json=body())

    async def go():
        transport = httpx.ASGITransport(app=app)  # no lifespan: the engine never starts
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await before_start(c), await c.get("/health/ready")

    r, ready = asyncio.run(go())
    assert r.status_code == 503 and ready.status_code == 503


@pytest.mark.parametrize("stream", [False, True])
def test_guardrail_block_withholds_answer(stream):
    app, _ = make(script=IMPLAUSIBLE, guardrail_policy_warning="block",
                  guardrail_policy_critical="block")
    r = run(app, lambda c: c.post("/v1/chat/completions", json=body(stream=stream)))
    if stream:
        chunks = sse(r.text)
        deltas = [c["choices"][0] for c in chunks if c["choices"]]
        assert not "".join(d["delta"].get("content", "") for d in deltas)
        assert "90 km/h" in "".join(d["delta"].get("reasoning_content", "") for d in deltas)
        last = deltas[-1]
    else:
        last = r.json()["choices"][0]
        assert last["message"]["content"] is None
    assert last["finish_reason"] == "content_filter"
    assert last["guardrail"]["verdict"] == "block"
    assert any("km/h" in f["message"] for f in last["guardrail"]["findings"])


@pytest.mark.parametrize("stream", [False, True])
def test_guardrail_annotate_flags_but_answers(stream):
    app, _ = make(script=IMPLAUSIBLE)
    r = run(app, lambda c: c.post("/v1/chat/completions", json=body(stream=stream)))
    if stream:
        chunks = [c["choices"][0] for c in sse(r.text) if c["choices"]]
        content = "".join(c["delta"].get("content", "") for c in chunks)
        last = chunks[-1]
    else:
        last = r.json()["choices"][0]
        content = last["message"]["content"]
    assert content == "A"
    assert last["guardrail"]["verdict"] == "flag"
    assert last["finish_reason"] == "stop"


def test_dead_engine_fails_liveness_and_stops_the_server():
    class DyingEngine(FakeEngine):
        async def health(self) -> None:
            raise RuntimeError("EngineCore died")

    settings = Settings(model="tiny", engine="fake", engine_watchdog_interval_s=0.01)
    app = create_app(settings, engine=DyingEngine(settings))
    stopped = []
    app.state.on_engine_failure = lambda: stopped.append(True)

    async def go():
        async with app.router.lifespan_context(app):
            for _ in range(200):
                if stopped:
                    break
                await asyncio.sleep(0.01)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.get("/health/live")

    live = asyncio.run(go())
    assert stopped and live.status_code == 503
    assert "EngineCore died" in live.json()["error"]


def test_untagged_answer_streams_at_once_when_reasoning_is_off():
    app, _ = make(script="The car stops at the line and waits for the light.")
    r = run(app, lambda c: c.post("/v1/chat/completions",
                                  json=body(stream=True, reasoning=False)))
    pieces = [c["choices"][0]["delta"].get("content") for c in sse(r.text)
              if c["choices"] and c["choices"][0]["delta"].get("content")]
    # Word by word, not one block at the end: nothing is held back waiting for a tag.
    assert len(pieces) > 5
    assert "".join(pieces) == "The car stops at the line and waits for the light."


def test_models_and_version_say_which_quantization(tmp_path, tiny_model):
    import shutil

    from app.quantize.cli import main as quantize

    dst = tmp_path / "fp8"
    assert quantize([str(tiny_model), str(dst)]) == 0
    shutil.rmtree(dst / "scratch", ignore_errors=True)
    for model, expect in ((str(dst), "compressed-tensors"), ("tiny", None)):
        settings = Settings(model=model, engine="fake")
        app = create_app(settings, engine=FakeEngine(settings))

        async def both(c):
            return (await c.get("/v1/models")).json(), (await c.get("/version")).json()

        models, version = run(app, both)
        label = models["data"][0]["quantization"]
        assert version["quantization"] == label
        assert (label or "").startswith(expect or "") and (label is None) == (expect is None)
    settings = Settings(model="tiny", engine="fake", quantization="fp8")
    app = create_app(settings, engine=FakeEngine(settings))
    assert run(app, lambda c: c.get("/version")).json()["quantization"] == "fp8 (on the fly)"
