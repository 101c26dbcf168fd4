"""Per-request sampling options: server defaults from Settings, overridden field by field.

The server's `video_max_frames` and `video_max_pixels` are ceilings as well as defaults, so a
request cannot buy more work than the operator allows; every rejection names the request field.
"""
from __future__ import annotations

import math
from typing import Any

from app.config import Settings
from app.errors import InvalidRequestError
from app.ingest.types import FACTOR, VideoOptions

# VideoOptions field -> the request field a client sets (our documented extension fields).
PARAM = {"fps": "video_fps", "min_frames": "video_min_frames", "max_frames": "video_max_frames",
         "min_pixels": "video_min_pixels", "max_pixels": "video_max_pixels",
         "total_pixels": "video_total_pixels", "start_s": "video_start", "end_s": "video_end",
         "resized_height": "video_resized_height", "resized_width": "video_resized_width"}
_INTS = {"min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels",
         "resized_height", "resized_width"}


def defaults(settings: Settings) -> VideoOptions:
    return VideoOptions(fps=settings.video_fps, min_frames=settings.video_min_frames,
                        max_frames=settings.video_max_frames, min_pixels=settings.video_min_pixels,
                        max_pixels=settings.video_max_pixels,
                        total_pixels=settings.video_total_pixels)


def _number(key: str, value: Any) -> float | int:
    param = PARAM[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{param} must be a number, got {value!r}", param=param)
    if not math.isfinite(value):
        raise InvalidRequestError(f"{param} must be finite", param=param)
    if key in _INTS:
        if value != int(value):
            raise InvalidRequestError(f"{param} must be an integer, got {value!r}", param=param)
        return int(value)
    return float(value)


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise InvalidRequestError(f"{PARAM[key]} {message}", param=PARAM[key])


def build(settings: Settings, overrides: dict | None) -> VideoOptions:
    """Server defaults plus the request's non-None overrides, validated."""
    values = dict(defaults(settings).__dict__)
    for key, value in (overrides or {}).items():
        if key not in PARAM:
            raise InvalidRequestError(f"unknown video option {key!r}", param=key)
        if value is not None:
            values[key] = _number(key, value)
    o = VideoOptions(**values)
    _check(0 < o.fps <= 60, "fps", f"must be in (0, 60], got {o.fps}")
    _check(o.min_frames >= 2, "min_frames", f"must be at least 2, got {o.min_frames}")
    _check(o.max_frames <= settings.video_max_frames, "max_frames",
           f"is {o.max_frames}; this server's limit is {settings.video_max_frames} "
           f"(video_max_frames)")
    _check(o.max_frames >= o.min_frames, "max_frames",
           f"({o.max_frames}) must be at least video_min_frames ({o.min_frames})")
    _check(o.min_pixels >= FACTOR * FACTOR, "min_pixels",
           f"must be at least {FACTOR * FACTOR}, got {o.min_pixels}")
    _check(o.max_pixels <= settings.video_max_pixels, "max_pixels",
           f"is {o.max_pixels}; this server's limit is {settings.video_max_pixels} "
           f"(video_max_pixels)")
    _check(o.max_pixels >= o.min_pixels, "max_pixels",
           f"({o.max_pixels}) must be at least video_min_pixels ({o.min_pixels})")
    _check(o.total_pixels >= o.min_pixels, "total_pixels",
           f"({o.total_pixels}) must be at least video_min_pixels ({o.min_pixels})")
    _check(o.start_s is None or o.start_s >= 0, "start_s", "must be >= 0")
    _check(o.end_s is None or o.end_s > (o.start_s or 0), "end_s",
           "must be greater than video_start (and 0)")
    _check((o.resized_height is None) == (o.resized_width is None), "resized_height",
           "and video_resized_width must be given together")
    for key in ("resized_height", "resized_width"):
        value = getattr(o, key)
        _check(value is None or 0 < value <= 16384, key, "must be in [1, 16384]")
    return o
