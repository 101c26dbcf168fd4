"""Decode only what the plan needs, converting only the kept frames, straight to the target size.

Work avoided, in order of what it saves:
- packets before the keyframe that opens the first wanted frame's group are never decoded
  (a late `video_start` costs nothing), and decoding stops after the last wanted frame;
- H.264/HEVC frames that no other frame references (most B-frames) are skipped by the decoder
  when unwanted (`skip_frame=NONREF`, set per packet: FFmpeg copies it into each frame
  thread's context when the packet is submitted);
- colour conversion and scaling run once per *kept* frame, in libswscale: the YUV planes are
  scaled to the target size first, then converted to RGB there, so no full-resolution RGB
  array ever exists. Scaling in YUV and converting after is 2-4x cheaper than swscale's
  combined scale-to-RGB path and closer to the reference, which converts at full size and
  then resizes (mean abs difference 0.1-0.6 vs 0.8-0.9 levels on the real clips).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from app.errors import DecodeCancelledError, MediaError, MediaTimeoutError
from app.ingest.probe import Probe
from app.ingest.sampling import Plan

# Decoders that honour skip_frame per packet. Others (libdav1d) read it once when opened, so
# toggling it could silently drop a wanted frame.
_NONREF_SKIPPERS = {"h264", "hevc"}
# The reference (decord, like torchvision's PyAV reader) converts with swscale's default
# BT.601 matrix whatever the stream's tag; matching it matters more than colorimetry here.
_COLORSPACE = "ITU601"


@dataclass
class Decoded:
    frames: np.ndarray  # (T, H, W, 3) uint8, display orientation
    skipped: int  # sampled frames that could not be decoded and repeat a neighbour
    rotation: int  # degrees counter-clockwise applied from the display matrix
    damaged: int  # packets the decoder rejected (frames after them may show concealment)


def _decode_span(probe: Probe, wanted: set[int]) -> tuple[int, int]:
    """First and last packet (decode order) to feed: from the keyframe that opens the group of
    the earliest wanted frame, to the last wanted frame's packet."""
    packets = probe.packets
    positions = [i for i, p in enumerate(packets) if p.pts in wanted]
    first, last = min(positions), max(positions)
    earliest = min(wanted)
    for i in range(first, -1, -1):
        # A keyframe shown after the wanted frame does not open its group (open GOPs).
        if packets[i].is_keyframe and packets[i].pts is not None and packets[i].pts <= earliest:
            return i, last
    return 0, last


class _Sink:
    """Scales and stores decoded frames into their output slots."""

    def __init__(self, plan: Plan, slots: dict[int, list[int]]):
        self.plan, self.slots = plan, slots
        self.frames: np.ndarray | None = None
        self.filled = np.zeros(plan.nframes, dtype=bool)
        self.rotation = 0
        self.scaler = VideoReformatter()  # one each, so swscale's contexts are reused
        self.converter = VideoReformatter()

    def take(self, key: int, frame: av.VideoFrame) -> None:
        targets = self.slots.pop(key, None)
        if not targets:
            return
        if self.frames is None:
            self.rotation = int(round(frame.rotation / 90.0)) * 90 % 360
            h, w = self.plan.height, self.plan.width
            shape = (w, h) if self.rotation in (90, 270) else (h, w)
            self.frames = np.empty((self.plan.nframes, *shape, 3), dtype=np.uint8)
        w, h = self.plan.width, self.plan.height
        if frame.format.name.startswith("yuv"):
            small = self.scaler.reformat(frame, width=w, height=h,
                                         interpolation=Interpolation.BICUBIC)
            rgb = self.converter.reformat(small, format="rgb24", src_colorspace=_COLORSPACE,
                                          dst_colorspace=_COLORSPACE)
        else:  # RGB, palette or gray sources: swscale's one combined pass
            rgb = self.scaler.reformat(frame, width=w, height=h, format="rgb24",
                                       interpolation=Interpolation.BICUBIC,
                                       src_colorspace=_COLORSPACE, dst_colorspace=_COLORSPACE)
        array = rgb.to_ndarray()
        if self.rotation:
            array = np.rot90(array, self.rotation // 90)  # counter-clockwise, as the matrix says
        for slot in targets:
            self.frames[slot] = array
            self.filled[slot] = True


def decode(probe: Probe, plan: Plan, *, deadline: float, threads: int = 0,
           cancel: threading.Event | None = None) -> Decoded:
    wanted_pts = probe.frame_pts[plan.indices]
    keys = plan.indices if probe.ordinal else wanted_pts
    slots: dict[int, list[int]] = {}
    for slot, key in enumerate(keys.tolist()):
        slots.setdefault(key, []).append(slot)
    sink = _Sink(plan, slots)
    cc = probe.stream.codec_context
    cc.thread_type = "AUTO"
    cc.thread_count = threads
    skip_unwanted = cc.name in _NONREF_SKIPPERS and not probe.ordinal
    if probe.ordinal:  # frames are known only by their output order: decode all from the start
        first, last = 0, len(probe.packets) - 1
    else:
        first, last = _decode_span(probe, set(slots))
    shown = damaged = 0

    def consume(frames: list[av.VideoFrame]) -> None:
        nonlocal shown
        for frame in frames:
            sink.take(shown if probe.ordinal else frame.pts, frame)
            shown += 1

    for packet in probe.packets[first:last + 1]:
        if time.monotonic() > deadline:
            raise MediaTimeoutError("decoding ran past the time limit (video_decode_timeout_s)")
        if cancel is not None and cancel.is_set():  # every request waiting for it is gone
            raise DecodeCancelledError("nobody waits for this video any more")
        if skip_unwanted:
            cc.skip_frame = "DEFAULT" if packet.pts in sink.slots else "NONREF"
        try:
            consume(cc.decode(packet))
        except av.FFmpegError:
            damaged += 1  # its frame is missing; a wanted one is filled in by _finish
            continue
        if not sink.slots:
            break
    if sink.slots:
        try:
            consume(cc.decode(None))  # drain frames still in the reorder buffer / threads
        except av.FFmpegError:
            damaged += 1
    return _finish(sink, damaged)


def _finish(sink: _Sink, damaged: int) -> Decoded:
    if sink.frames is None:
        raise MediaError("no frame of the video could be decoded")
    missing = np.flatnonzero(~sink.filled)
    if len(missing):
        good = np.flatnonzero(sink.filled)
        nearest = good[np.abs(good[None, :] - missing[:, None]).argmin(axis=1)]
        sink.frames[missing] = sink.frames[nearest]
    return Decoded(frames=sink.frames, skipped=len(missing), rotation=sink.rotation,
                   damaged=damaged)
