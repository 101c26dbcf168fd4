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

Several cores: a clip whose wanted frames lie in several keyframe intervals (a camera's file, a
keyframe every second) is decoded in parts side by side (app/ingest/split.py), each with a
decoder of its own; FFmpeg's frame threads only get the threads left over (they scale poorly: a
1080p clip took 1.8 s on one core and 312 ms on 16 threads, 5 core-seconds).

The loop is the same for NVDEC (app/ingest/nvdec.py): a `Backend` supplies the decoders, where
kept frames are converted and scaled, and whether a decoder error is a damaged packet (CPU) or a
reason to give the clip back to the CPU (NVDEC).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from app.errors import DecodeCancelledError, MediaError, MediaTimeoutError
from app.ingest.probe import Probe
from app.ingest.sampling import Plan
from app.ingest.split import Part, Split, decode_span, parts_of, wanted_slots, whole
from app.lifecycle.processes import name_os_thread

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
    parts: int = 1  # decoders that ran side by side
    decoder: str = "cpu"  # the backend that produced the frames
    threads: int = 0  # CPU threads it held (NVDEC: 0)
    overflow: bool = False  # decoded on CPU cores lent while NVDEC was busy (placement.py)


class Frames:
    """The output, filled slot by slot by whichever part decodes a frame. Frames are stored as
    decoded (stored orientation); the rotation is applied once at the end."""

    def __init__(self, plan: Plan):
        self.frames = np.empty((plan.nframes, plan.height, plan.width, 3), dtype=np.uint8)
        self.filled = np.zeros(plan.nframes, dtype=bool)
        self.rotation: int | None = None  # from the first frame of the stream's own decoder
        self.width, self.height = plan.width, plan.height

    def note_rotation(self, frame: av.VideoFrame) -> None:
        if self.rotation is None:
            self.rotation = int(round(frame.rotation / 90.0)) * 90 % 360

    def host(self) -> np.ndarray:
        return self.frames


class Sink:
    """One decoder's frames: scales and stores those it was asked for into their slots."""

    def __init__(self, out: Frames, slots: dict[int, list[int]], rotation_source: bool):
        self.out, self.slots, self.rotation_source = out, slots, rotation_source
        self.scaler = VideoReformatter()  # one each, so swscale's contexts are reused
        self.converter = VideoReformatter()

    def take(self, key: int, frame: av.VideoFrame) -> None:
        targets = self.slots.pop(key, None)
        if not targets:
            return
        if self.rotation_source:
            self.out.note_rotation(frame)
        self.store(frame, targets)

    def store(self, frame: av.VideoFrame, targets: list[int]) -> None:
        w, h = self.out.width, self.out.height
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
        for slot in targets:
            self.out.frames[slot] = array
            self.out.filled[slot] = True


class Backend(Protocol):
    name: str
    strict: bool  # a decoder error ends the decode (raised) instead of counting as damage

    def frames(self, plan: Plan) -> Frames: ...
    def decoder(self, probe: Probe, first: bool): ...
    def sink(self, out: Frames, slots: dict[int, list[int]], rotation_source: bool) -> Sink: ...
    def threads(self, wanted: int) -> int: ...


class CpuBackend:
    name, strict = "cpu", False

    def frames(self, plan: Plan) -> Frames:
        return Frames(plan)

    def decoder(self, probe: Probe, first: bool):
        # The stream's own decoder carries the stream's display matrix to its frames.
        cc = probe.stream.codec_context
        return cc if first else fresh_decoder(cc)

    def sink(self, out: Frames, slots: dict[int, list[int]], rotation_source: bool) -> Sink:
        return Sink(out, slots, rotation_source)

    def threads(self, wanted: int) -> int:
        return wanted


CPU = CpuBackend()


def decode(probe: Probe, plan: Plan, *, deadline: float, threads: int = 1,
           cancel: threading.Event | None = None, split: Split | None = None,
           backend: Backend = CPU) -> Decoded:
    """`threads`: CPU threads this decode may use, parts and FFmpeg frame threads together
    (0: FFmpeg's own choice, one decoder). `split`: where it may be split (None: it is not)."""
    slots = wanted_slots(probe, plan)
    out = backend.frames(plan)
    parts = parts_of(split, slots, threads) if split is not None else []
    if len(parts) > 1:
        damaged = _run_parts(probe, parts, out, deadline, cancel, backend)
    else:
        part = whole(split, slots, threads)
        if part is None and probe.ordinal:  # frames known only by their output order: all of it
            part = Part(0, len(probe.packets) - 1, slots, threads)
        elif part is None:
            part = Part(*decode_span(probe, set(slots)), slots, threads)
        damaged = _decode_part(probe, backend.decoder(probe, True), part, out, deadline, cancel,
                               None, rotation_source=True, backend=backend)
    return _finish(out, damaged, max(1, len(parts)), backend.name)


def _decode_part(probe: Probe, cc, part: Part, out: Frames, deadline: float,
                 cancel: threading.Event | None, stop: threading.Event | None,
                 rotation_source: bool, backend: Backend) -> int:
    """Feed packets first..last to `cc`, storing the part's frames; returns damaged packets."""
    sink = backend.sink(out, part.slots, rotation_source)
    if not cc.is_open:  # a pooled NVDEC decoder keeps its threads
        cc.thread_type = "AUTO"
        cc.thread_count = backend.threads(part.threads)
    skip_unwanted = cc.name in _NONREF_SKIPPERS and not probe.ordinal
    shown = damaged = 0

    def consume(frames: list[av.VideoFrame]) -> None:
        nonlocal shown
        for frame in frames:
            sink.take(shown if probe.ordinal else frame.pts, frame)
            shown += 1

    runs = part.runs()
    for r, (first, last) in enumerate(runs):
        if r:  # the gap before a random-access point: drain, then start afresh at the point
            damaged += _drain(cc, consume, backend)
            cc.flush_buffers()
        for packet in probe.packets[first:last + 1]:
            if time.monotonic() > deadline:
                raise MediaTimeoutError("decoding ran past the time limit (video_decode_timeout_s)")
            if cancel is not None and cancel.is_set():  # every request waiting for it is gone
                raise DecodeCancelledError("nobody waits for this video any more")
            if stop is not None and stop.is_set():  # another part failed: its error is raised
                return damaged
            if skip_unwanted:
                cc.skip_frame = "DEFAULT" if packet.pts in sink.slots else "NONREF"
            try:
                consume(cc.decode(packet))
            except av.FFmpegError:
                if backend.strict:
                    raise
                damaged += 1  # its frame is missing; a wanted one is filled in by _finish
                continue
            if not sink.slots:
                return damaged
    if sink.slots:
        damaged += _drain(cc, consume, backend)
    return damaged


def _drain(cc, consume, backend: Backend) -> int:
    """Frames still in the reorder buffer / threads; 1 if the decoder failed doing it."""
    try:
        consume(cc.decode(None))
    except av.FFmpegError:
        if backend.strict:
            raise
        return 1
    return 0


def fresh_decoder(cc, hwaccel=None):
    """A decoder of the stream's codec with the stream's parameters (what a demuxer's codec
    context gets): the extradata, and the colour facts the decoder passes to frames that do not
    state their own."""
    new = av.CodecContext.create(cc.codec, "r", hwaccel=hwaccel)
    new.extradata = cc.extradata
    new.width, new.height = cc.width, cc.height
    for name in ("pix_fmt", "color_range", "color_primaries", "color_trc", "colorspace",
                 "sample_aspect_ratio", "framerate"):
        if hwaccel is not None and name == "pix_fmt":
            continue  # the hardware decoder's own surface format
        value = getattr(cc, name, None)
        if value is not None:
            try:
                setattr(new, name, value)
            except (ValueError, TypeError, AttributeError):
                pass  # a value this decoder's context does not take: it reads it from the stream
    return new


def _run_parts(probe: Probe, parts: list[Part], out: Frames, deadline: float,
               cancel: threading.Event | None, backend: Backend) -> int:
    """Decode the parts side by side: the first with the stream's own decoder in this thread
    (its frames carry the stream's display matrix), the others with fresh ones in threads."""
    stop = threading.Event()
    contexts = [backend.decoder(probe, k == 0) for k in range(len(parts))]

    def run(k: int) -> int:
        try:
            return _decode_part(probe, contexts[k], parts[k], out, deadline, cancel, stop,
                                rotation_source=k == 0, backend=backend)
        except BaseException:
            stop.set()
            raise

    errors: list[BaseException] = []
    damaged = 0
    with ThreadPoolExecutor(len(parts) - 1, thread_name_prefix="cosmos-gop",
                            initializer=name_os_thread) as pool:
        futures = [pool.submit(run, k) for k in range(1, len(parts))]
        try:
            damaged += run(0)
        except Exception as exc:  # noqa: BLE001 - raised below, after the others stopped
            errors.append(exc)
        for f in futures:
            try:
                damaged += f.result()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
    if errors:
        raise errors[0]
    return damaged


def _finish(out: Frames, damaged: int, parts: int, decoder: str) -> Decoded:
    if not out.filled.any():
        raise MediaError("no frame of the video could be decoded")
    frames = out.host()
    missing = np.flatnonzero(~out.filled)
    if len(missing):
        good = np.flatnonzero(out.filled)
        nearest = good[np.abs(good[None, :] - missing[:, None]).argmin(axis=1)]
        frames[missing] = frames[nearest]
    rotation = out.rotation or 0
    if rotation:  # counter-clockwise, as the display matrix says
        frames = np.ascontiguousarray(np.rot90(frames, rotation // 90, axes=(1, 2)))
    return Decoded(frames=frames, skipped=len(missing), rotation=rotation, damaged=damaged,
                   parts=parts, decoder=decoder)
