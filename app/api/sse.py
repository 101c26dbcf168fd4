"""Server-sent events: framing, keep-alive comments, and the in-band error of a started stream.

A stream's first bytes normally go out once the request is prepared (so a request that will be
rejected gets a plain error status). A long video can take longer than a proxy's idle timeout to
decode, though, and vLLM's prefill of a long clip can too: after `interval_s` of silence the
response starts anyway and sends an SSE comment line (`: keep-alive`), which clients ignore,
every `interval_s` until the next event. An error after the stream has started is sent as a last
`data: {"error": ...}` event before `[DONE]`.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from pydantic import BaseModel

from app.errors import stream_error_body

KEEPALIVE = ": keep-alive\n\n"
DONE = "data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(payload: BaseModel | dict) -> str:
    if isinstance(payload, BaseModel):
        return f"data: {payload.model_dump_json(exclude_none=True)}\n\n"
    return f"data: {json.dumps(payload)}\n\n"


async def with_keepalive(source: AsyncIterator, interval_s: float) -> AsyncIterator:
    """`source`'s items, with KEEPALIVE whenever it is silent for `interval_s`."""
    it = source.__aiter__()
    pending: asyncio.Task | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval_s)
            if not done:
                yield KEEPALIVE
                continue
            task, pending = pending, None
            try:
                yield task.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            # Let the cancelled step finish first: closing a generator that is still running
            # raises "aclose(): asynchronous generator is already running".
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


async def frame(prepare: asyncio.Future, interval_s: float) -> AsyncIterator[str]:
    """The SSE body of a call still being prepared: keep-alives until it is ready (or fails:
    an error event), then its chunks, then `[DONE]`. The call's slot is freed when it ends."""
    call = None
    try:
        while not prepare.done():
            await asyncio.wait({prepare}, timeout=interval_s)
            if not prepare.done():
                yield KEEPALIVE
        call = prepare.result()
        async for item in with_keepalive(call.stream(), interval_s):
            yield item if isinstance(item, str) else event(item)
        yield DONE
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, then end
        yield event(stream_error_body(exc))
        yield DONE
    finally:
        if not prepare.done():
            prepare.cancel()
        elif call is None and not prepare.cancelled() and prepare.exception() is None:
            prepare.result().close()  # prepared, but the stream never ran


def close_unstarted(prepare: asyncio.Future) -> None:
    """For a response dropped before its body ran (the client left at once)."""
    if not prepare.done():
        prepare.cancel()
    elif not prepare.cancelled() and prepare.exception() is None:
        prepare.result().close()
