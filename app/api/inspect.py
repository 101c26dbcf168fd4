"""POST /v1/video/inspect: what the model would see of a video, without running the model.

The body names the video as `{"video_url": {"url": ...}}`, `{"video_url": "..."}` or
`{"url": "..."}`, with the same `video_*` option fields as chat completions
(`VideoRequestOptions`), on top of the deployment's profile. The answer is the
clip's report (stream, timestamps, frame indices, size, vision tokens, skipped frames,
timings); a second call for the same clip and options is a cache hit.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, field_validator

from app.api.protocol import ERROR_RESPONSES
from app.errors import InvalidRequestError
from app.ingest.options import VideoRequestOptions

router = APIRouter(responses=ERROR_RESPONSES)


class _URLRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str


class InspectRequest(VideoRequestOptions):
    model_config = ConfigDict(extra="forbid")

    video_url: _URLRef | None = None
    url: str | None = None

    @field_validator("video_url", mode="before")
    @classmethod
    def _bare_string(cls, v: Any) -> Any:
        # Some OpenAI-compatible clients send the bare string instead of {"url": ...}.
        return {"url": v} if isinstance(v, str) else v


@router.post("/v1/video/inspect")
async def inspect_video(body: InspectRequest, request: Request) -> dict:
    url = body.video_url.url if body.video_url is not None else body.url
    if not url:
        raise InvalidRequestError("give the video as video_url.url or url", param="video_url")
    ingestor = request.app.state.ingestor
    clip = await ingestor.video(url, ingestor.options(body))
    await clip.hashed()  # report() reads it
    return {**clip.report(), **clip.extra}
