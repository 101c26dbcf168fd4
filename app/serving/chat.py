"""The chat service: validation → ingestion → engine → parser → guardrail, knowing no HTTP.

`ChatService.prepare` runs everything that can reject a request (model name, admission, media,
budgets, context length) and returns a `ChatCall`; nothing has been sent yet, so a rejected
request gets a plain error status. The call then runs once, whole (`complete`) or streamed
(`stream`). Either way it owns its admission slot and releases it when it ends, and an engine
request it leaves unfinished (client gone, error) is aborted.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app import metrics
from app.api.protocol import (ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
                              ChoiceLogprobs, ChunkChoice, DeltaMessage, PromptTokensDetails,
                              ResponseMessage, TokenLogprobOut, TopLogprob, Usage)
from app.config import Settings
from app.engine.base import Engine, EngineInput, TokenLogprob
from app.errors import ModelNotFoundError, NotReadyError
from app.guardrail import Guardrail, GuardrailContext, extract_choices
from app.ingest import VideoIngestor
from app.profiles.resolve import Resolved
from app.serving.admission import Limiter, Slot
from app.serving.postprocess import ChoicePostprocessor, GuardrailRunner
from app.serving.prompt import prepare_prompt, sampling_options, wants_json


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


@dataclass
class UsageCount:
    """Token accounting of one call, recorded to the metrics once when it ends."""
    started: float
    vision: int = 0
    prompt: int = 0
    completion: int = 0
    first_token_s: float | None = None

    def step(self, prompt_tokens: int, new_tokens: int) -> None:
        self.prompt = prompt_tokens or self.prompt
        if self.first_token_s is None and new_tokens:
            self.first_token_s = time.perf_counter() - self.started
        self.completion += new_tokens

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt, completion_tokens=self.completion,
                     total_tokens=self.prompt + self.completion,
                     prompt_tokens_details=PromptTokensDetails(vision_tokens=self.vision))

    def observe(self, finish: list[str | None]) -> None:
        if self.first_token_s is not None:
            metrics.TTFT_SECONDS.observe(self.first_token_s)
        metrics.ENGINE_SECONDS.observe(time.perf_counter() - self.started)
        metrics.PROMPT_TOKENS.inc(self.prompt)
        metrics.COMPLETION_TOKENS.inc(self.completion)
        for reason in finish:
            metrics.FINISH_REASONS.labels(reason or "none").inc()


class ChatService:
    def __init__(self, settings: Settings, engine: Engine, ingestor: VideoIngestor,
                 guardrail: Guardrail | None, profile: Resolved):
        self.settings = settings
        self.engine = engine
        self.ingestor = ingestor
        self.guardrail = guardrail
        self.profile = profile
        self.limiter = Limiter(settings.max_concurrent_requests)

    def model_names(self) -> tuple[str, ...]:
        return (self.settings.model_name, self.settings.model)

    async def prepare(self, req: ChatCompletionRequest) -> "ChatCall":
        if req.model not in self.model_names():
            raise ModelNotFoundError(f"model {req.model!r} does not exist; this server serves "
                                     f"{self.settings.model_name!r}", param="model")
        if not self.engine.ready:
            raise NotReadyError("the model is still loading; retry when /health/ready is 200")
        slot = self.limiter.acquire()
        try:
            started = time.perf_counter()
            prepared = await prepare_prompt(req, self.settings, self.profile, self.engine,
                                            self.ingestor)
            sampling = sampling_options(req, self.profile, prepared.prompt_tokens,
                                        self.engine.max_model_len)
            inp = EngineInput(request_id=f"chatcmpl-{uuid.uuid4().hex}", prompt=prepared.prompt,
                              sampling=sampling, videos=prepared.videos, images=prepared.images)
            context = GuardrailContext(duration_s=prepared.duration_s,
                                       choices=req.choices or extract_choices(prepared.question),
                                       truncated=False)
            runner = GuardrailRunner(self.guardrail if req.guardrail else None, context)
            raw = req.return_raw_text
            if raw is None:  # structured output is returned verbatim, never split on tags
                raw = self.settings.return_raw_text or wants_json(req)
            procs = [ChoicePostprocessor(raw, runner, prepared.reasoning)
                     for _ in range(sampling.n)]
            count = UsageCount(started=started, vision=prepared.vision_tokens)
            return ChatCall(self.engine, req, inp, procs, count, slot)
        except BaseException:
            slot.release()
            raise


class ChatCall:
    """One prepared request; run it once with `complete()` or `stream()`."""

    def __init__(self, engine: Engine, req: ChatCompletionRequest, inp: EngineInput,
                 procs: list[ChoicePostprocessor], count: UsageCount, slot: Slot):
        self.engine, self.req, self.inp = engine, req, inp
        self.procs, self.count, self.slot = procs, count, slot
        self.finish: list[str | None] = [None for _ in procs]

    @property
    def request_id(self) -> str:
        return self.inp.request_id

    async def complete(self) -> ChatCompletion:
        texts = ["" for _ in self.procs]
        lps: list[list[TokenLogprob] | None] = [
            [] if self.inp.sampling.logprobs is not None else None for _ in self.procs]
        finished = False
        try:
            async for step in self.engine.generate(self.inp):
                for d in step.deltas:
                    self.count.step(step.prompt_tokens, d.new_tokens)
                    texts[d.index] += d.text
                    if d.logprobs is not None and lps[d.index] is not None:
                        lps[d.index].extend(d.logprobs)
                    if d.finish_reason is not None:
                        self.finish[d.index] = d.finish_reason
                self.count.step(step.prompt_tokens, 0)
            finished = True
        finally:
            await self._end(finished)
        choices = []
        for i, proc in enumerate(self.procs):
            final = proc.complete(texts[i], self.finish[i])
            choices.append(Choice(
                index=i, finish_reason=final.finish_reason, logprobs=_logprobs_out(lps[i]),
                guardrail=final.guardrail,
                message=ResponseMessage(content=final.content, reasoning_content=final.reasoning,
                                        reasoning=final.reasoning)))
        return ChatCompletion(id=self.request_id, model=self.req.model, choices=choices,
                              usage=self.count.usage())

    async def stream(self) -> AsyncIterator[ChatCompletionChunk]:
        created = int(time.time())

        def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=self.request_id, created=created, model=self.req.model,
                                       choices=choices, usage=usage)

        finished = False
        try:
            yield chunk([ChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
                         for i in range(len(self.procs))])
            async for step in self.engine.generate(self.inp):
                self.count.step(step.prompt_tokens, 0)
                for d in step.deltas:
                    self.count.step(step.prompt_tokens, d.new_tokens)
                    for choice in self._chunk_choices(d):  # one choice per chunk, as OpenAI
                        yield chunk([choice])
            finished = True
            if self.req.stream_options is not None and self.req.stream_options.include_usage:
                yield chunk([], self.count.usage())
        finally:
            await self._end(finished)

    def _chunk_choices(self, d) -> list[ChunkChoice]:
        proc = self.procs[d.index]
        pieces = proc.feed(d.text)
        lp = _logprobs_out(d.logprobs)
        out: list[ChunkChoice] = []
        if lp is not None and not pieces:
            out.append(ChunkChoice(index=d.index, delta=DeltaMessage(), logprobs=lp))
        for j, (field, text) in enumerate(pieces):
            out.append(ChunkChoice(index=d.index, delta=_delta(field, text),
                                   logprobs=lp if j == 0 else None))
        if d.finish_reason is not None:
            self.finish[d.index] = d.finish_reason
            tail, final = proc.finish(d.finish_reason)
            out.extend(ChunkChoice(index=d.index, delta=_delta(f, t)) for f, t in tail)
            out.append(ChunkChoice(index=d.index, delta=DeltaMessage(),
                                   finish_reason=final.finish_reason, guardrail=final.guardrail))
        return out

    async def _end(self, finished: bool) -> None:
        """Account the call; abort an engine request left unfinished; free the slot."""
        try:
            if finished:
                self.count.observe(self.finish)
            else:  # cancelled (client gone) or failed: the engine must stop working on it
                await asyncio.shield(self.engine.abort(self.request_id))
        finally:
            self.slot.release()

    def close(self) -> None:
        """For a call that will never run (its response was dropped unsent)."""
        self.slot.release()
