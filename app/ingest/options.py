"""The per-request video options: one model for chat, `POST /v1/video/inspect` and the CLI.

A request's `video_*` fields go on top of the deployment's resolved profile (see
`app/profiles/resolve.py`); the deployment's `max_frames` and `max_pixels` are ceilings as well
as defaults, so a request cannot buy more work than the operator allows. Every rejection names
the request field.
"""
from __future__ import annotations

import dataclasses

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import InvalidRequestError
from app.ingest.types import VideoOptions
from app.profiles.model import (VIDEO_KEYS, Fps, MaxFrames, MaxPixels, MinFrames, MinPixels,
                                NFrames, TotalPixels)
from app.profiles.resolve import Resolved


class VideoRequestOptions(BaseModel):
    """`video_*` request fields (all optional; the deployment's profile gives the defaults)."""
    model_config = ConfigDict(extra="ignore")

    video_fps: Fps | None = None
    video_nframes: NFrames | None = None
    video_min_frames: MinFrames | None = None
    video_max_frames: MaxFrames | None = None
    video_min_pixels: MinPixels | None = None
    video_max_pixels: MaxPixels | None = None
    video_total_pixels: TotalPixels | None = None
    video_start: float | None = Field(None, ge=0, description="Start of the span, in seconds.")
    video_end: float | None = Field(None, gt=0, description="End of the span, in seconds.")

    @field_validator("video_nframes")
    @classmethod
    def _one_rate(cls, v, info):
        if v is not None and info.data.get("video_fps") is not None:
            raise ValueError("give video_fps or video_nframes, not both")
        return v

    @field_validator("video_end")
    @classmethod
    def _span(cls, v, info):
        start = info.data.get("video_start")
        if v is not None and start is not None and v <= start:
            raise ValueError("video_end must be greater than video_start")
        return v

    def profile_overrides(self) -> dict:
        """The profile keys this request sets (`video_fps` -> `fps`, ...)."""
        return {k: getattr(self, f"video_{k}") for k in VIDEO_KEYS}


VIDEO_REQUEST_FIELDS = tuple(VideoRequestOptions.model_fields)


def _ceiling(value: int | None, limit: int, field: str) -> None:
    if value is not None and value > limit:
        raise InvalidRequestError(f"{field} is {value}; this server's limit is {limit} "
                                  f"({field})", param=field)


def build(deployment: Resolved, request: VideoRequestOptions | None = None) -> VideoOptions:
    """The options one clip is ingested with: the deployment's, then the request's."""
    request = request or VideoRequestOptions()
    _ceiling(request.video_max_frames, deployment["max_frames"], "video_max_frames")
    _ceiling(request.video_nframes, deployment["max_frames"], "video_nframes")
    _ceiling(request.video_max_pixels, deployment["max_pixels"], "video_max_pixels")
    v = deployment.with_request(request.profile_overrides())
    return VideoOptions(fps=v["fps"], nframes=v["nframes"], min_frames=v["min_frames"],
                        max_frames=v["max_frames"], min_pixels=v["min_pixels"],
                        max_pixels=v["max_pixels"], total_pixels=v["total_pixels"],
                        start_s=request.video_start, end_s=request.video_end)


_KEY_TO_FIELD = {**{k: f"video_{k}" for k in VIDEO_KEYS}, "start_s": "video_start",
                 "end_s": "video_end"}
FIELD_TO_KEY = {v: k for k, v in _KEY_TO_FIELD.items()}


def request_options(overrides: dict | VideoRequestOptions | None) -> VideoRequestOptions:
    """Request options from a model or from a dict of VideoOptions keys (`fps`, `start_s`...),
    which is how code other than the HTTP layer (inspect, benchmarks) states them."""
    if overrides is None or isinstance(overrides, VideoRequestOptions):
        return overrides or VideoRequestOptions()
    fields = {}
    for key, value in overrides.items():
        if key not in _KEY_TO_FIELD:
            raise InvalidRequestError(f"unknown video option {key!r}", param=key)
        if value is not None:
            fields[_KEY_TO_FIELD[key]] = value
    try:
        return VideoRequestOptions(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = str(first["loc"][0])
        raise InvalidRequestError(f"{param}: {first['msg']}", param=param) from None


def default_options(settings=None, **changes) -> VideoOptions:
    """The deployment's options for `settings` (default: the environment's), with `changes`."""
    from app.config import Settings
    from app.profiles.resolve import resolve

    options = build(resolve(settings or Settings()))
    return dataclasses.replace(options, **changes) if changes else options
