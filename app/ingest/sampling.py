"""Which frames the model sees and at what size: qwen-vl-utils 0.0.14's semantics, by timestamp.

The reference (`_read_video_decord`) picks `round(linspace(start_frame, end_frame, nframes))`
by frame *index*, which is the right instant only when frames are evenly spaced. We take its
index wherever that frame lies within half a frame of the evenly spaced instant it stands for
(always, on constant-rate files, so we pick the very same frames), and otherwise the frame
whose presentation timestamp is nearest that instant: variable-rate files are sampled at
true, even time spacing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.errors import InvalidRequestError, MediaError
from app.ingest import reference as ref
from app.ingest.types import FACTOR, VideoOptions


@dataclass(frozen=True)
class Plan:
    indices: np.ndarray  # frame index (presentation order) of each output frame; may repeat
    height: int  # output size in the stream's stored orientation (rotation is applied later)
    width: int
    sample_fps: float  # what qwen-vl-utils returns as video_sample_fps
    span_frames: int  # source frames between video_start and video_end

    @property
    def nframes(self) -> int:
        return len(self.indices)


def frame_range(num_frames: int, fps: float, options: VideoOptions) -> tuple[int, int, int]:
    ele = {k: v for k, v in (("video_start", options.start_s), ("video_end", options.end_s))
           if v is not None}
    try:
        return ref.calculate_video_frame_range(ele, num_frames, fps)
    except ValueError as exc:
        raise InvalidRequestError(f"video_start/video_end select no frames: {exc}",
                                  param="video_start") from exc


def count_frames(span_frames: int, fps: float, options: VideoOptions) -> int:
    if span_frames < ref.FRAME_FACTOR:  # a one-frame clip: shown twice, as a temporal patch
        return ref.FRAME_FACTOR
    if options.nframes is not None:
        ele: dict = {"nframes": options.nframes}
    else:
        ele = {"fps": options.fps, "min_frames": options.min_frames,
               "max_frames": options.max_frames}
    try:
        return ref.smart_nframes(ele, total_frames=span_frames, video_fps=fps)
    except ValueError as exc:  # more frames asked for than the span has
        raise InvalidRequestError(f"video_nframes ({options.nframes}) is more than the "
                                  f"{span_frames} frames the video has in the chosen span",
                                  param="video_nframes") from exc


def target_size(height: int, width: int, nframes: int, options: VideoOptions) -> tuple[int, int]:
    try:
        max_pixels = ref.frame_max_pixels(nframes, options.min_pixels, options.max_pixels,
                                          options.total_pixels)
        return ref.smart_resize(height, width, factor=FACTOR, min_pixels=options.min_pixels,
                                max_pixels=max_pixels)
    except ValueError as exc:  # aspect ratio beyond 200:1
        raise MediaError(f"cannot size {width}x{height} frames: {exc}") from exc


def snap_to_time(indices: np.ndarray, positions: np.ndarray, times_s: np.ndarray, fps: float,
                 tick_s: float) -> np.ndarray:
    """Keep each index whose frame is within half a frame (plus one timestamp tick of
    rounding) of `positions / fps`; replace the others by the frame nearest that instant."""
    target = positions / fps
    off = np.abs(times_s[indices] - target) > 0.5 / fps + 1.5 * tick_s
    if not off.any():
        return indices
    right = np.clip(np.searchsorted(times_s, target[off]), 1, len(times_s) - 1)
    left = right - 1
    nearer_left = (target[off] - times_s[left]) <= (times_s[right] - target[off])
    snapped = indices.copy()
    snapped[off] = np.where(nearer_left, left, right)
    return snapped


def make_plan(times_s: np.ndarray, fps: float, height: int, width: int, options: VideoOptions,
              tick_s: float = 0.0) -> Plan:
    """`times_s`: every frame's presentation time, sorted, in seconds since the first."""
    start, end, span = frame_range(len(times_s), fps, options)
    nframes = count_frames(span, fps, options)
    indices = ref.linspace_round(start, end, nframes)
    positions = np.linspace(start, end, nframes)
    indices = snap_to_time(indices, positions, times_s, fps, tick_s)
    h, w = target_size(height, width, nframes, options)
    return Plan(indices=indices, height=h, width=w,
                sample_fps=nframes / max(span, 1e-6) * fps, span_frames=span)
