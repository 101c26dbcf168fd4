"""POST /v1/chat/completions: the HTTP side only. The work is `app.serving.chat.ChatService`."""
from __future__ import annotations

import asyncio
import weakref

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.api import sse
from app.api.protocol import ERROR_RESPONSES, ChatCompletion, ChatCompletionRequest
from app.errors import NotReadyError

router = APIRouter(responses=ERROR_RESPONSES)
_STREAM = {200: {"description": "a chat.completion, or with `stream` its chunks as server-sent "
                                "events", "content": {"text/event-stream": {}}}}


async def _until_disconnected(request: Request, work: asyncio.Future):
    """`work`'s result; cancelled (so the engine request is aborted) if the client leaves."""
    while True:
        done, _ = await asyncio.wait({work}, timeout=0.25)
        if done:
            return work.result()
        if await request.is_disconnected():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise asyncio.CancelledError("client disconnected")


@router.post("/v1/chat/completions", response_model=None, responses=_STREAM)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    service = getattr(request.app.state, "chat", None)
    if service is None:  # the lifespan has not built it (yet)
        raise NotReadyError("the server is starting; retry when /health/ready is 200")
    prepare = asyncio.ensure_future(service.prepare(
        body, request.headers.get("x-request-deadline-s")))
    if not body.stream:
        call = await _until_disconnected(request, prepare)
        result: ChatCompletion = await _until_disconnected(
            request, asyncio.ensure_future(call.complete()))
        return result
    # Rejections before the first byte keep their status; a slow preparation (a long video
    # decoding) starts the stream with keep-alives instead of leaving the proxy in silence.
    interval = service.settings.sse_keepalive_interval_s
    await asyncio.wait({prepare}, timeout=interval)
    if prepare.done():
        prepare.result()  # raises the domain error, mapped to its status in app/errors.py
    gen = sse.frame(prepare, interval)
    weakref.finalize(gen, sse.close_unstarted, prepare)
    return StreamingResponse(gen, media_type="text/event-stream", headers=sse.HEADERS)
