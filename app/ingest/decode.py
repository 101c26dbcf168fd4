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
keyframe every second) is decoded in parts side by side, each with a decoder of its own that
starts at the random-access point opening its first interval and stops after its last wanted
frame; FFmpeg's frame threads only get the threads left over (they scale poorly: a 1080p clip
took 1.8 s on one core and 312 ms on 16 threads, 5 core-seconds). A part starts only where no
later frame reaches back (an H.264 IDR, an HEVC IRAP, another codec's keyframe), and a frame
shown before its interval's keyframe (an open GOP's leading B-frames) belongs to the interval
before, so the frames are those of one decoder, bit for bit (tests/ingest/test_decode_parts.py).
"""
from __future__ import annotations

import bisect
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
# Decoded pixels below which a part is not worth a thread and a decoder of its own (about four
# 1080p frames, ~10 ms of one core).
MIN_PART_PIXELS = 8_000_000
# Decoders whose keyframes (in the container's index) are random-access points where parts may
# start; H.264 and HEVC are checked further, by the frame's NAL unit type. Others (MPEG-4 part
# 2, ProRes, ...) are decoded by one decoder.
_SPLITTABLE = {"h264", "hevc", "vp8", "vp9", "libdav1d", "av1", "libaom-av1", "mpeg2video"}


@dataclass
class Decoded:
    frames: np.ndarray  # (T, H, W, 3) uint8, display orientation
    skipped: int  # sampled frames that could not be decoded and repeat a neighbour
    rotation: int  # degrees counter-clockwise applied from the display matrix
    damaged: int  # packets the decoder rejected (frames after them may show concealment)
    parts: int = 1  # decoders that ran side by side


@dataclass
class _Part:
    first: int  # packet positions (decode order), both included
    last: int
    slots: dict[int, list[int]]  # frame key -> output slots
    threads: int  # FFmpeg threads of this part's decoder


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


class _Frames:
    """The output array, filled slot by slot by whichever part decodes a frame. Frames are
    stored as decoded (stored orientation); the rotation is applied once at the end."""

    def __init__(self, plan: Plan):
        self.frames = np.empty((plan.nframes, plan.height, plan.width, 3), dtype=np.uint8)
        self.filled = np.zeros(plan.nframes, dtype=bool)
        self.rotation: int | None = None  # from the first frame of the stream's own decoder
        self.width, self.height = plan.width, plan.height


class _Sink:
    """One decoder's frames: scales and stores those it was asked for into their slots."""

    def __init__(self, out: _Frames, slots: dict[int, list[int]], rotation_source: bool):
        self.out, self.slots, self.rotation_source = out, slots, rotation_source
        self.scaler = VideoReformatter()  # one each, so swscale's contexts are reused
        self.converter = VideoReformatter()

    def take(self, key: int, frame: av.VideoFrame) -> None:
        targets = self.slots.pop(key, None)
        if not targets:
            return
        if self.rotation_source and self.out.rotation is None:
            self.out.rotation = int(round(frame.rotation / 90.0)) * 90 % 360
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


@dataclass
class Split:
    """Where a decode can be split: the keyframe intervals holding wanted frames, in decode
    order, as (first packet, last wanted packet, wanted frame keys)."""
    intervals: list[tuple[int, int, list[int]]]
    max_parts: int  # parts worth a thread and a decoder each (1: one decoder)


def _slots(probe: Probe, plan: Plan) -> dict[int, list[int]]:
    """Output slots of each wanted frame, by its key (pts, or output order without pts)."""
    keys = plan.indices if probe.ordinal else probe.frame_pts[plan.indices]
    slots: dict[int, list[int]] = {}
    for slot, key in enumerate(keys.tolist()):
        slots.setdefault(key, []).append(slot)
    return slots


def plan_split(probe: Probe, plan: Plan, min_part_pixels: int = MIN_PART_PIXELS) -> Split:
    intervals = _intervals(probe, _slots(probe, plan))
    n = len(intervals)
    if min_part_pixels and n:
        decoded = sum(last - first + 1 for first, last, _ in intervals)
        n = min(n, decoded * probe.width * probe.height // min_part_pixels)
    return Split(intervals, max(1, n))


def decode(probe: Probe, plan: Plan, *, deadline: float, threads: int = 1,
           cancel: threading.Event | None = None, split: Split | None = None) -> Decoded:
    """`threads`: CPU threads this decode may use, parts and FFmpeg frame threads together
    (0: FFmpeg's own choice, one decoder). `split`: where it may be split (None: it is not)."""
    slots = _slots(probe, plan)
    out = _Frames(plan)
    parts = _parts(split, slots, threads) if split is not None else []
    if len(parts) > 1:
        damaged = _run_parts(probe, parts, out, deadline, cancel)
    else:
        if probe.ordinal:  # frames are known only by their output order: decode all from the start
            first, last = 0, len(probe.packets) - 1
        else:
            first, last = _decode_span(probe, set(slots))
        part = _Part(first, last, slots, threads)
        damaged = _decode_part(probe, probe.stream.codec_context, part, out, deadline, cancel,
                               None, rotation_source=True)
    return _finish(out, damaged, max(1, len(parts)))


def _decode_part(probe: Probe, cc, part: _Part, out: _Frames, deadline: float,
                 cancel: threading.Event | None, stop: threading.Event | None,
                 rotation_source: bool) -> int:
    """Feed packets first..last to `cc`, storing the part's frames; returns damaged packets."""
    sink = _Sink(out, part.slots, rotation_source)
    cc.thread_type = "AUTO"
    cc.thread_count = part.threads
    skip_unwanted = cc.name in _NONREF_SKIPPERS and not probe.ordinal
    shown = damaged = 0

    def consume(frames: list[av.VideoFrame]) -> None:
        nonlocal shown
        for frame in frames:
            sink.take(shown if probe.ordinal else frame.pts, frame)
            shown += 1

    for packet in probe.packets[part.first:part.last + 1]:
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
            damaged += 1  # its frame is missing; a wanted one is filled in by _finish
            continue
        if not sink.slots:
            break
    if sink.slots:
        try:
            consume(cc.decode(None))  # drain frames still in the reorder buffer / threads
        except av.FFmpegError:
            damaged += 1
    return damaged


# --- parts -----------------------------------------------------------------------------------

def _nal_size(codec: str, extradata: bytes | None) -> int:
    """Length-prefix size of the packets' NAL units (avcC / hvcC), 0 for Annex B start codes."""
    if not extradata or extradata[0] != 1:
        return 0
    at = 4 if codec == "h264" else 21  # lengthSizeMinusOne's byte in avcC / hvcC
    return (extradata[at] & 3) + 1 if len(extradata) > at else 0


def _first_vcl(codec: str, data: bytes, nal_size: int) -> int | None:
    """NAL unit type of the packet's first coded slice."""
    hevc = codec == "hevc"
    heads: list[int] = []
    if nal_size:
        i = 0
        while i + nal_size < len(data):
            heads.append(data[i + nal_size])
            i += nal_size + int.from_bytes(data[i:i + nal_size], "big")
    else:
        i = data.find(b"\x00\x00\x01")
        while 0 <= i < len(data) - 3:
            heads.append(data[i + 3])
            i = data.find(b"\x00\x00\x01", i + 3)
    for head in heads:
        kind = (head >> 1) & 0x3F if hevc else head & 0x1F
        if (hevc and kind < 32) or (not hevc and 1 <= kind <= 5):
            return kind
    return None


def _random_access_points(probe: Probe) -> list[int]:
    """Positions of the packets a fresh decoder can start at with nothing later reaching back."""
    cc = probe.stream.codec_context
    codec = cc.name
    nal_size = _nal_size(codec, cc.extradata) if codec in ("h264", "hevc") else 0
    points = []
    for i, packet in enumerate(probe.packets):
        if not packet.is_keyframe or packet.pts is None:
            continue
        if codec in ("h264", "hevc"):
            kind = _first_vcl(codec, bytes(packet), nal_size)
            # H.264: an IDR only (a recovery-point I-frame may be followed by frames that refer
            # to frames before it); HEVC: IDR, CRA or BLA (their leading pictures are shown
            # before them, and so belong to the interval before).
            if kind != 5 if codec == "h264" else not (kind is not None and 16 <= kind <= 23):
                continue
        points.append(i)
    return points


def _intervals(probe: Probe, slots: dict[int, list[int]]) -> list[tuple[int, int, list[int]]]:
    """The keyframe intervals holding wanted frames; [] when the decode cannot be split."""
    if probe.ordinal or probe.stream.codec_context.name not in _SPLITTABLE:
        return []
    if len(np.unique(probe.frame_pts)) != probe.num_frames:  # frames not known by their pts
        return []
    packets = probe.packets
    where: dict[int, int] = {}
    for i, p in enumerate(packets):
        if p.pts in slots:
            where.setdefault(p.pts, i)
    points = _random_access_points(probe)
    groups: dict[int, list[int]] = {}
    for key, i in where.items():
        j = bisect.bisect_right(points, i) - 1
        while j >= 0 and packets[points[j]].pts > key:  # a leading frame: the interval before
            j -= 1
        if j < 0:  # shown before any random-access point: one decoder from the start
            return []
        groups.setdefault(points[j], []).append(key)
    return sorted((start, max(where[k] for k in ks), ks) for start, ks in groups.items())


def _parts(split: Split, slots: dict[int, list[int]], threads: int) -> list[_Part]:
    """The intervals grouped into contiguous runs, one part each, balanced by packet count, and
    the threads shared among them; [] for one decoder."""
    intervals = split.intervals
    n = min(threads, split.max_parts)
    if n < 2:
        return []
    sizes = [last - first + 1 for first, last, _ in intervals]
    runs: list[list[tuple]] = [[]]
    done, total = 0, sum(sizes)
    for k, (interval, size) in enumerate(zip(intervals, sizes)):
        runs[-1].append(interval)
        done += size
        left = len(intervals) - k - 1
        more = n - len(runs)  # runs still to open after this one
        if more and left and (done >= total * len(runs) / n or left == more):
            runs.append([])
    base, extra = divmod(threads, len(runs))
    return [_Part(first=run[0][0], last=max(last for _, last, _ in run),
                  slots={k: slots[k] for _, _, ks in run for k in ks},
                  threads=base + (1 if r < extra else 0))
            for r, run in enumerate(runs)]


def _fresh_decoder(cc):
    """A decoder of the stream's codec with the stream's parameters (what a demuxer's codec
    context gets): the extradata, and the colour facts the decoder passes to frames that do not
    state their own."""
    new = av.CodecContext.create(cc.codec, "r")
    new.extradata = cc.extradata
    new.width, new.height = cc.width, cc.height
    for name in ("pix_fmt", "color_range", "color_primaries", "color_trc", "colorspace",
                 "sample_aspect_ratio", "framerate"):
        value = getattr(cc, name, None)
        if value is not None:
            try:
                setattr(new, name, value)
            except (ValueError, TypeError, AttributeError):
                pass  # a value this decoder's context does not take: it reads it from the stream
    return new


def _run_parts(probe: Probe, parts: list[_Part], out: _Frames, deadline: float,
               cancel: threading.Event | None) -> int:
    """Decode the parts side by side: the first with the stream's own decoder in this thread
    (its frames carry the stream's display matrix), the others with fresh ones in threads."""
    stop = threading.Event()
    cc = probe.stream.codec_context
    contexts = [cc] + [_fresh_decoder(cc) for _ in parts[1:]]

    def run(k: int) -> int:
        try:
            return _decode_part(probe, contexts[k], parts[k], out, deadline, cancel, stop,
                                rotation_source=k == 0)
        except BaseException:
            stop.set()
            raise

    errors: list[BaseException] = []
    damaged = 0
    with ThreadPoolExecutor(len(parts) - 1, thread_name_prefix="cosmos-gop") as pool:
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


def _finish(out: _Frames, damaged: int, parts: int) -> Decoded:
    if not out.filled.any():
        raise MediaError("no frame of the video could be decoded")
    missing = np.flatnonzero(~out.filled)
    if len(missing):
        good = np.flatnonzero(out.filled)
        nearest = good[np.abs(good[None, :] - missing[:, None]).argmin(axis=1)]
        out.frames[missing] = out.frames[nearest]
    rotation = out.rotation or 0
    frames = out.frames
    if rotation:  # counter-clockwise, as the display matrix says
        frames = np.ascontiguousarray(np.rot90(frames, rotation // 90, axes=(1, 2)))
    return Decoded(frames=frames, skipped=len(missing), rotation=rotation, damaged=damaged,
                   parts=parts)
