"""What is asked and how: the profile decides, nothing else is sent; transient failures are
retried against a real HTTP server with the real openai client."""
from __future__ import annotations

import asyncio
import base64

import openai
import pytest

from app.eval.client import AskPlan, FatalError, ask, build_messages, media_url
from app.eval.dataset import EvalItem
from app.profiles import Profile, load_profile
from tests.eval.conftest import FlakyServer

ITEM = EvalItem(id="x", media="clip.mp4", media_type="video", question="Q?\nA: a\nB: b",
                options={"A": "a", "B": "b"}, expected="B")


def test_cookbook_profile_reproduces_the_recipe_request():
    _, profile = load_profile("cookbook-sft")
    plan = AskPlan.build("m", profile)
    assert plan.system_prompt.startswith("You are a helpful assistant")
    assert plan.media_first is True
    assert plan.params == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1024}
    assert plan.extra_body == {"top_k": -1, "repetition_penalty": 1.0, "reasoning": False,
                               "video_fps": 1, "video_max_pixels": 81_920,
                               "video_total_pixels": 90_316_800}
    messages = build_messages(ITEM, "file:///c.mp4", plan)
    assert messages[0] == {"role": "system", "content": plan.system_prompt}
    assert [p["type"] for p in messages[1]["content"]] == ["video_url", "text"]


def test_without_profile_only_the_question_and_the_clip():
    plan = AskPlan.build("m")
    assert plan.params == {} and plan.extra_body == {} and plan.system_prompt is None
    messages = build_messages(ITEM, "data:video/mp4;base64,AA", plan)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    # Flags still override: they are OpenAI parameters, not extensions.
    assert AskPlan.build("m", max_tokens=32, seed=3).params == {"max_tokens": 32, "seed": 3}


def test_profile_keys_it_does_not_set_are_not_sent():
    plan = AskPlan.build("m", Profile(nframes=8, media_first=False, system_prompt=""),
                         max_tokens=16)
    assert plan.extra_body == {"video_nframes": 8}
    assert plan.params == {"max_tokens": 16} and plan.system_prompt is None
    text_first = build_messages(ITEM, "u", plan)[0]["content"]
    assert [p["type"] for p in text_first] == ["text", "video_url"]


def test_media_url(media_dir):
    clip = media_dir / "drv_cr1_sample_4fps.mp4"
    assert media_url(clip, by_path=True) == clip.as_uri()
    data = media_url(clip, by_path=False)
    assert data.startswith("data:video/mp4;base64,")
    assert base64.b64decode(data.split(",", 1)[1]) == clip.read_bytes()
    assert media_url("https://example.com/v.mp4", by_path=False) == "https://example.com/v.mp4"
    image = build_messages(ITEM.model_copy(update={"media_type": "image"}), "u", AskPlan("m"))
    assert image[0]["content"][0] == {"type": "image_url", "image_url": {"url": "u"}}


def _ask(server: FlakyServer, retries: int = 4):
    async def go():
        client = openai.AsyncOpenAI(base_url=server.url, api_key="k", max_retries=0)
        try:
            return await ask(client, AskPlan("flaky"), [{"role": "user", "content": "Q"}],
                             retries=retries, backoff_s=0.01)
        finally:
            await client.close()
    return asyncio.run(go())


def test_transient_failures_are_retried():
    with FlakyServer([429, "reset", 503, "cut"]) as server:
        reply = _ask(server)
    assert len(server.requests) == 5 and reply.attempts == 5
    assert reply.answer == "B" and reply.reasoning == "Looks sunny."
    assert reply.guardrail == "flag" and reply.finish_reason == "stop"
    assert reply.tokens == {"prompt": 120, "vision": 100, "output": 5}
    assert 0 < reply.ttft_s <= reply.latency_s
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_retries_run_out():
    with FlakyServer([503] * 3) as server:
        with pytest.raises(openai.APIStatusError, match="503"):
            _ask(server, retries=2)
    assert len(server.requests) == 3


def test_bad_request_is_not_retried_and_bad_key_is_fatal():
    with FlakyServer([400]) as server:
        with pytest.raises(openai.BadRequestError):
            _ask(server)
    assert len(server.requests) == 1
    with FlakyServer([401]) as server:
        with pytest.raises(FatalError, match="HTTP 401"):
            _ask(server)
