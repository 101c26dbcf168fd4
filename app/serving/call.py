"""One prepared chat request, run once: whole (`complete`) or streamed (`stream`).

The call owns its admission slot and releases it when it ends; an engine request it leaves
unfinished (client gone, deadline passed, shutdown, error) is aborted. Token accounting
(`UsageCount`) is recorded to the metrics once, when the call ends.

The model critic, when on, runs after a choice's text is complete and before its verdict, still
inside the call: on its slot, under its deadline, cancelled with it.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from app import context as request_context
from app import metrics
from app.api.protocol import (ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
                              ChoiceLogprobs, ChunkChoice, DeltaMessage, IngestedMedia,
                              PromptTokensDetails, ResponseMessage, TokenLogprobOut, TopLogprob,
                              Usage)
from app.engine.base import Engine, EngineInput, TokenLogprob
from app.errors import DeadlineExceededError, ShuttingDownError
from app.serving.admission import Slot
from app.serving.deadline import Deadline
from app.serving.postprocess import ChoicePostprocessor


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
    ended: float | None = None  # last token (a critic may run after it)

    def step(self, prompt_tokens: int, new_tokens: int) -> None:
        self.prompt = prompt_tokens or self.prompt
        if self.first_token_s is None and new_tokens:
            self.first_token_s = time.perf_counter() - self.started
        self.completion += new_tokens

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt, completion_tokens=self.completion,
                     total_tokens=self.prompt + self.completion,
                     prompt_tokens_details=PromptTokensDetails(vision_tokens=self.vision))

    def note(self) -> None:
        request_context.note(prompt_tokens=self.prompt, vision_tokens=self.vision,
                             completion_tokens=self.completion)

    def observe(self, finish: list[str | None]) -> None:
        if self.first_token_s is not None:
            metrics.TTFT_SECONDS.observe(self.first_token_s)
        metrics.ENGINE_SECONDS.observe((self.ended or time.perf_counter()) - self.started)
        metrics.PROMPT_TOKENS.inc(self.prompt)
        metrics.COMPLETION_TOKENS.inc(self.completion)
        for reason in finish:
            metrics.FINISH_REASONS.labels(reason or "none").inc()


def _abort_reason(exc: BaseException | None, deadline: Deadline) -> str:
    if isinstance(exc, ShuttingDownError):
        return "shutdown"
    if isinstance(exc, DeadlineExceededError):
        return "deadline"
    if exc is None or isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return "client_gone"
    return "error"


async def _no_media() -> None:
    return None


async def _next(steps):
    """The next step, None at the end (`anext(gen, None)` does not pass a cancellation on to
    the generator in Python 3.11)."""
    try:
        return await steps.__anext__()
    except StopAsyncIteration:
        return None


class ChatCall:
    """One prepared request; run it once with `complete()` or `stream()`."""

    def __init__(self, engine: Engine, req: ChatCompletionRequest, inp: EngineInput,
                 procs: list[ChoicePostprocessor], count: UsageCount, slot: Slot,
                 deadline: Deadline | None = None,
                 media: Callable[[], Awaitable[list[IngestedMedia] | None]] | None = None):
        self.engine, self.req, self.inp = engine, req, inp
        self.procs, self.count, self.slot = procs, count, slot
        self.deadline = deadline or Deadline(float("inf"))
        self.media = media or _no_media
        self.finish: list[str | None] = [None for _ in procs]
        self.on_end = lambda: None
        self._failure: BaseException | None = None
        self._generating = False

    @property
    def request_id(self) -> str:
        return self.inp.request_id

    async def _steps(self):
        """The engine's steps, each awaited under the deadline."""
        gen = self.engine.generate(self.inp)
        self._generating = True
        metrics.ENGINE_REQUESTS_RUNNING.inc()
        try:
            while True:
                try:
                    step = await self.deadline.run(gen.__anext__())
                except StopAsyncIteration:
                    return
                yield step
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            await gen.aclose()

    async def complete(self) -> ChatCompletion:
        texts = ["" for _ in self.procs]
        lps: list[list[TokenLogprob] | None] = [
            [] if self.inp.sampling.logprobs is not None else None for _ in self.procs]
        finished = False
        steps = self._steps()
        try:
            async for step in steps:
                for d in step.deltas:
                    self.count.step(step.prompt_tokens, d.new_tokens)
                    texts[d.index] += d.text
                    if d.logprobs is not None and lps[d.index] is not None:
                        lps[d.index].extend(d.logprobs)
                    if d.finish_reason is not None:
                        self.finish[d.index] = d.finish_reason
                self.count.step(step.prompt_tokens, 0)
            finished = True
            self.count.ended = time.perf_counter()
            for i, proc in enumerate(self.procs):
                proc.feed(texts[i])
                proc.close(self.finish[i])
            await self._criticize(range(len(self.procs)))
        finally:
            await steps.aclose()
            await self._end(finished)
        choices = []
        for i, proc in enumerate(self.procs):
            _, final = proc.verdict()
            choices.append(Choice(
                index=i, finish_reason=final.finish_reason, logprobs=_logprobs_out(lps[i]),
                guardrail=final.guardrail,
                message=ResponseMessage(content=final.content, reasoning_content=final.reasoning,
                                        reasoning=final.reasoning)))
        return ChatCompletion(id=self.request_id, model=self.req.model, choices=choices,
                              usage=self.count.usage(), media=await self.media())

    async def stream(self) -> AsyncIterator[ChatCompletionChunk]:
        created = int(time.time())

        def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=self.request_id, created=created, model=self.req.model,
                                       choices=choices, usage=usage)

        finished = False
        steps = self._steps()
        # The engine starts now; the first chunk meanwhile waits for the frames' hashes.
        head = asyncio.ensure_future(_next(steps))
        try:
            first = chunk([ChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
                           for i in range(len(self.procs))])
            first.media = await self.media()
            yield first
            step = await head
            while step is not None:
                self.count.step(step.prompt_tokens, 0)
                for d in step.deltas:
                    self.count.step(step.prompt_tokens, d.new_tokens)
                    for choice in self._chunk_choices(d):  # one choice per chunk, as OpenAI
                        yield chunk([choice])
                    if d.finish_reason is not None:
                        for choice in await self._final_choices(d.index):
                            yield chunk([choice])
                step = await _next(steps)
            finished = True
            if self.req.stream_options is not None and self.req.stream_options.include_usage:
                yield chunk([], self.count.usage())
        finally:
            try:
                if not head.done():  # a generator may not be closed while its step runs
                    head.cancel()
                    await asyncio.gather(head, return_exceptions=True)
                elif not head.cancelled():
                    head.exception()  # raised above already, or moot once the client left
                await steps.aclose()
            finally:  # a cancelled stream's awaits are cancelled again (anyio): end it anyway
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
            self.count.ended = time.perf_counter()
            out.extend(ChunkChoice(index=d.index, delta=_delta(f, t))
                       for f, t in proc.close(d.finish_reason))
        return out

    async def _final_choices(self, index: int) -> list[ChunkChoice]:
        """A finished choice's held answer and its last chunk, with the verdict (the critic's
        too: it is awaited here, the stream sending keep-alives meanwhile)."""
        await self._criticize([index])
        held, final = self.procs[index].verdict()
        return [*(ChunkChoice(index=index, delta=_delta(f, t)) for f, t in held),
                ChunkChoice(index=index, delta=DeltaMessage(), finish_reason=final.finish_reason,
                            guardrail=final.guardrail)]

    async def _criticize(self, indices) -> None:
        """The model critic of these choices, side by side; all are cancelled (and their
        engine requests aborted) if one fails or the call is cancelled."""
        tasks = [asyncio.ensure_future(self.procs[i].criticize(i)) for i in indices
                 if self.procs[i].critiqued]
        if not tasks:
            return
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _end(self, finished: bool) -> None:
        """Account the call; abort an engine request left unfinished; free the slot."""
        try:
            self.count.note()
            if finished:
                self.count.observe(self.finish)
            else:  # cancelled (client gone), past its deadline, stopped or failed
                metrics.ENGINE_ABORTS.labels(_abort_reason(self._failure, self.deadline)).inc()
                if isinstance(self._failure, DeadlineExceededError):
                    metrics.DEADLINES_EXCEEDED.inc()
                await asyncio.shield(self.engine.abort(self.request_id))
        finally:
            if self._generating:
                self._generating = False
                metrics.ENGINE_REQUESTS_RUNNING.dec()
            self.slot.release()
            self.on_end()

    def close(self) -> None:
        """For a call that will never run (its response was dropped unsent)."""
        self.slot.release()
        self.on_end()
