"""POST /v1/chat/completions: validation → ingestion → engine → parser → guardrail → response.

Everything that can reject a request (model name, media, budgets, context length) runs before
the first byte is sent, so a stream never starts for a request that is going to fail.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app import metrics
from app.api.postprocess import ChoicePostprocessor, GuardrailRunner
from app.api.prompt import prepare_prompt, sampling_options, wants_json
from app.api.protocol import (ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
                              ChoiceLogprobs, ChunkChoice, DeltaMessage, ResponseMessage,
                              TokenLogprobOut, TopLogprob, Usage)
from app.engine.base import EngineInput, TokenLogprob
from app.errors import CosmosError, EngineError, ModelNotFoundError, NotReadyError
from app.guardrail import GuardrailContext, extract_choices

if TYPE_CHECKING:  # app.api.app imports this module
    from app.api.app import Slot

log = logging.getLogger(__name__)
router = APIRouter()


def _logprobs_out(items: list[TokenLogprob] | None) -> ChoiceLogprobs | None:
    if items is None:
        return None
    return ChoiceLogprobs(content=[TokenLogprobOut(
        token=t.token, logprob=t.logprob, bytes=list(t.token.encode()),
        top_logprobs=[TopLogprob(token=s, logprob=lp, bytes=list(s.encode())) for s, lp in t.top])
        for t in items])


def _delta(field: str, text: str) -> DeltaMessage:
    if field == "reasoning":
        return DeltaMessage(reasoning_content=text, reasoning=text)
    return DeltaMessage(content=text)


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    state = request.app.state
    settings, engine = state.settings, state.engine
    if body.model not in (settings.model_name, settings.model):
        raise ModelNotFoundError(f"model {body.model!r} does not exist; this server serves "
                                 f"{settings.model_name!r}", param="model")
    if not engine.ready:
        raise NotReadyError("the model is still loading; retry when /health/ready is 200")
    slot = state.limiter.acquire()
    try:
        t0 = time.perf_counter()
        prepared = await prepare_prompt(body, settings, engine, state.ingestor)
        sampling = sampling_options(body, settings, prepared.prompt_tokens, engine.max_model_len)
        inp = EngineInput(request_id=f"chatcmpl-{uuid.uuid4().hex}", prompt=prepared.prompt,
                          sampling=sampling, videos=prepared.videos, images=prepared.images)
        context = GuardrailContext(duration_s=prepared.duration_s,
                                   choices=body.choices or extract_choices(prepared.question),
                                   truncated=False)
        runner = GuardrailRunner(state.guardrail if body.guardrail else None, context)
        raw = body.return_raw_text
        if raw is None:  # structured output is returned verbatim, never split on tags
            raw = settings.return_raw_text or wants_json(body)
        procs = [ChoicePostprocessor(raw, runner, prepared.reasoning)
                 for _ in range(sampling.n)]
        if body.stream:
            gen = _stream(request, body, inp, procs, t0, slot)
            # The stream frees its slot when it ends; a stream dropped before its first chunk
            # (client gone at once) never runs its `finally`, so collection frees it too.
            weakref.finalize(gen, slot.release)
            slot = None
            return StreamingResponse(gen, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache",
                                              "X-Accel-Buffering": "no"})
        return await _complete(request, body, inp, procs, t0)
    finally:
        if slot is not None:
            slot.release()


async def _watch_disconnect(request: Request, task: asyncio.Task) -> None:
    while not task.done():
        if await request.is_disconnected():
            task.cancel()
            return
        await asyncio.sleep(0.25)


async def _complete(request: Request, body: ChatCompletionRequest, inp: EngineInput,
                    procs: list[ChoicePostprocessor], t0: float) -> ChatCompletion:
    engine = request.app.state.engine
    texts = ["" for _ in procs]
    finish: list[str | None] = [None for _ in procs]
    lps: list[list[TokenLogprob] | None] = [[] if inp.sampling.logprobs is not None else None
                                            for _ in procs]
    counts = {"prompt": 0, "completion": 0, "first": None}

    async def run() -> None:
        async for step in engine.generate(inp):
            counts["prompt"] = step.prompt_tokens or counts["prompt"]
            for d in step.deltas:
                if counts["first"] is None and d.new_tokens:
                    counts["first"] = time.perf_counter() - t0
                texts[d.index] += d.text
                counts["completion"] += d.new_tokens
                if d.logprobs is not None and lps[d.index] is not None:
                    lps[d.index].extend(d.logprobs)
                if d.finish_reason is not None:
                    finish[d.index] = d.finish_reason

    task = asyncio.ensure_future(run())
    watcher = asyncio.ensure_future(_watch_disconnect(request, task))
    try:
        await task
    except asyncio.CancelledError:
        await engine.abort(inp.request_id)
        raise
    finally:
        watcher.cancel()
    _observe(counts, t0, finish)
    choices = []
    for i, proc in enumerate(procs):
        final = proc.complete(texts[i], finish[i])
        choices.append(Choice(
            index=i, finish_reason=final.finish_reason, logprobs=_logprobs_out(lps[i]),
            guardrail=final.guardrail,
            message=ResponseMessage(content=final.content, reasoning_content=final.reasoning,
                                    reasoning=final.reasoning)))
    return ChatCompletion(id=inp.request_id, model=body.model, choices=choices,
                          usage=Usage(prompt_tokens=counts["prompt"],
                                      completion_tokens=counts["completion"],
                                      total_tokens=counts["prompt"] + counts["completion"]))


def _observe(counts: dict, t0: float, finish: list[str | None]) -> None:
    if counts["first"] is not None:
        metrics.TTFT_SECONDS.observe(counts["first"])
    metrics.ENGINE_SECONDS.observe(time.perf_counter() - t0)
    metrics.PROMPT_TOKENS.inc(counts["prompt"])
    metrics.COMPLETION_TOKENS.inc(counts["completion"])
    for reason in finish:
        metrics.FINISH_REASONS.labels(reason or "none").inc()


async def _stream(request: Request, body: ChatCompletionRequest, inp: EngineInput,
                  procs: list[ChoicePostprocessor], t0: float, slot: Slot) -> AsyncIterator[str]:
    state = request.app.state
    created = int(time.time())
    counts = {"prompt": 0, "completion": 0, "first": None}
    finish: list[str | None] = [None for _ in procs]

    def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        c = ChatCompletionChunk(id=inp.request_id, created=created, model=body.model,
                                choices=choices, usage=usage)
        return f"data: {c.model_dump_json(exclude_none=True)}\n\n"

    finished = False
    try:
        yield chunk([ChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
                     for i in range(len(procs))])
        async for step in state.engine.generate(inp):
            counts["prompt"] = step.prompt_tokens or counts["prompt"]
            out: list[ChunkChoice] = []
            for d in step.deltas:
                if counts["first"] is None and d.new_tokens:
                    counts["first"] = time.perf_counter() - t0
                counts["completion"] += d.new_tokens
                proc = procs[d.index]
                pieces = proc.feed(d.text)
                lp = _logprobs_out(d.logprobs)
                if lp is not None and not pieces:
                    out.append(ChunkChoice(index=d.index, delta=DeltaMessage(), logprobs=lp))
                for j, (field, text) in enumerate(pieces):
                    out.append(ChunkChoice(index=d.index, delta=_delta(field, text),
                                           logprobs=lp if j == 0 else None))
                if d.finish_reason is not None:
                    finish[d.index] = d.finish_reason
                    tail, final = proc.finish(d.finish_reason)
                    out.extend(ChunkChoice(index=d.index, delta=_delta(f, t)) for f, t in tail)
                    out.append(ChunkChoice(index=d.index, delta=DeltaMessage(),
                                           finish_reason=final.finish_reason,
                                           guardrail=final.guardrail))
            for choice in out:  # one choice per chunk, as OpenAI streams them
                yield chunk([choice])
        finished = True
        _observe(counts, t0, finish)
        if body.stream_options is not None and body.stream_options.include_usage:
            yield chunk([], Usage(prompt_tokens=counts["prompt"],
                                  completion_tokens=counts["completion"],
                                  total_tokens=counts["prompt"] + counts["completion"]))
        yield "data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, then end
        if not isinstance(exc, CosmosError):
            log.exception("stream failed")
            exc = EngineError("generation failed; see server logs")
        yield f"data: {json.dumps(exc.body())}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        if not finished:  # client went away (cancelled) or the engine failed mid-stream
            await state.engine.abort(inp.request_id)
        slot.release()
