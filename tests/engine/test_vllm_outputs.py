"""vLLM's outputs as engine steps, and the one output that asks for a request to be sent again:
vLLM (0.32) ends a request at once, with an error and no token, when its engine core misses a clip
its API side believes was sent (an earlier request carrying it was cancelled mid-send); it then
drops the stale entry, so the same request sent again carries the media. Checked against a
stand-in `AsyncLLM` that loses the media once, as the eval resume test saw on the CPU engine."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from app.engine.vllm_outputs import media_lost
from tests.engine.test_vllm_inputs import (OldAsyncLLM, OldInputProcessor, engine_with,
                                           video_input)


def output(text: str, tokens: list[int], finish: str | None, finished: bool):
    o = SimpleNamespace(index=0, text=text, token_ids=tokens, finish_reason=finish,
                        stop_reason=None, logprobs=None)
    return SimpleNamespace(outputs=[o], prompt_token_ids=[1, 2, 3], finished=finished)


class ForgetfulLLM(OldAsyncLLM):
    """Its engine core has lost the media for the first `lost` requests."""

    def __init__(self, ip, lost: int = 1, error_after_tokens: bool = False):
        super().__init__(ip)
        self.lost, self.error_after_tokens = lost, error_after_tokens
        self.closed = 0

    async def generate(self, request, params, request_id):
        self.given.append(request)
        try:
            if self.error_after_tokens:
                yield output("par", [7], None, False)
                yield output("", [], "error", True)
                return
            if self.lost:
                self.lost -= 1
                yield output("", [], "error", True)
                return
            yield output("ok", [1], "length", True)
        finally:
            self.closed += 1


async def steps(eng, inp) -> list:
    return [s async for s in eng.generate(inp)]


def test_a_request_whose_media_the_engine_lost_is_sent_again_once():
    ip = OldInputProcessor()
    llm = ForgetfulLLM(ip)
    got = asyncio.run(steps(engine_with(llm), video_input()))
    assert [d.text for s in got for d in s.deltas] == ["ok"]  # the error never reaches the client
    assert len(llm.given) == 2 and len(ip.calls) == 2  # processed again: sent with the media
    assert llm.given[0].request_id == llm.given[1].request_id == "req-1"  # abort still finds it
    assert llm.closed == 2


def test_it_is_sent_again_only_once():
    llm = ForgetfulLLM(OldInputProcessor(), lost=2)
    got = asyncio.run(steps(engine_with(llm), video_input()))
    assert [d.finish_reason for s in got for d in s.deltas] == ["error"] and len(llm.given) == 2


def test_an_error_after_tokens_is_not_a_lost_clip():
    llm = ForgetfulLLM(OldInputProcessor(), error_after_tokens=True)
    got = asyncio.run(steps(engine_with(llm), video_input()))
    assert [d.finish_reason for s in got for d in s.deltas] == [None, "error"]
    assert len(llm.given) == 1


def test_what_counts_as_lost_media():
    assert media_lost(output("", [], "error", True))
    assert not media_lost(output("", [], "error", False))  # not finished
    assert not media_lost(output("x", [3], "error", True))  # tokens came
    assert not media_lost(output("", [], "length", True))
    assert not media_lost(SimpleNamespace(outputs=[], finished=True))
