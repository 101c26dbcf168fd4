"""Where a clip's decode can be split: the keyframe intervals that hold wanted frames.

A part starts only where no later frame reaches back (an H.264 IDR, an HEVC IRAP, another
codec's keyframe), and a frame shown before its interval's keyframe (an open GOP's leading
B-frames) belongs to the interval before, so parts decoded side by side give the frames of one
decoder, bit for bit (tests/ingest/test_decode_parts.py). The CPU decoder and NVDEC both use it.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from app.ingest.probe import Probe
from app.ingest.sampling import Plan

# Decoded pixels below which a part is not worth a thread and a decoder of its own (about four
# 1080p frames, ~10 ms of one core).
MIN_PART_PIXELS = 8_000_000
# Decoders whose keyframes (in the container's index) are random-access points where parts may
# start; H.264 and HEVC are checked further, by the frame's NAL unit type. Others (MPEG-4 part
# 2, ProRes, ...) are decoded by one decoder.
_SPLITTABLE = {"h264", "hevc", "vp8", "vp9", "libdav1d", "av1", "libaom-av1", "mpeg2video"}


@dataclass
class Part:
    first: int  # packet positions (decode order), both included
    last: int
    slots: dict[int, list[int]]  # frame key -> output slots
    threads: int  # FFmpeg threads of this part's decoder
    # The packet runs to feed, in order (default: first..last). Between two runs the decoder is
    # drained and reset: the packets after an interval's last wanted frame, up to the next
    # random-access point, are never decoded (a 1 s GOP sampled at 4 fps: ~a quarter of it).
    segments: list[tuple[int, int]] | None = None

    def runs(self) -> list[tuple[int, int]]:
        return self.segments or [(self.first, self.last)]


@dataclass
class Split:
    """Where a decode can be split: the keyframe intervals holding wanted frames, in decode
    order, as (first packet, last wanted packet, wanted frame keys)."""
    intervals: list[tuple[int, int, list[int]]]
    max_parts: int  # parts worth a thread and a decoder each (1: one decoder)


def wanted_slots(probe: Probe, plan: Plan) -> dict[int, list[int]]:
    """Output slots of each wanted frame, by its key (pts, or output order without pts)."""
    keys = plan.indices if probe.ordinal else probe.frame_pts[plan.indices]
    slots: dict[int, list[int]] = {}
    for slot, key in enumerate(keys.tolist()):
        slots.setdefault(key, []).append(slot)
    return slots


def plan_split(probe: Probe, plan: Plan, min_part_pixels: int = MIN_PART_PIXELS) -> Split:
    intervals = _intervals(probe, wanted_slots(probe, plan))
    n = len(intervals)
    if min_part_pixels and n:
        decoded = sum(last - first + 1 for first, last, _ in intervals)
        n = min(n, decoded * probe.width * probe.height // min_part_pixels)
    return Split(intervals, max(1, n))


def decode_span(probe: Probe, wanted: set[int]) -> tuple[int, int]:
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


def segments(intervals: list[tuple[int, int, list[int]]]) -> list[tuple[int, int]]:
    """The intervals' packet runs, those that touch or overlap (an open GOP's leading frames
    reach past the next point) merged: a gap is only ever packets no wanted frame needs."""
    out: list[list[int]] = []
    for first, last, _ in sorted(intervals):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return [(a, b) for a, b in out]


def whole(split: Split | None, slots: dict[int, list[int]], threads: int) -> Part | None:
    """One decoder over every interval, skipping the gaps; None when the clip has no split."""
    if split is None or not split.intervals:
        return None
    runs = segments(split.intervals)
    return Part(first=runs[0][0], last=runs[-1][1], slots=slots, threads=threads,
                segments=runs)


def parts_of(split: Split, slots: dict[int, list[int]], threads: int) -> list[Part]:
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
    return [Part(first=run[0][0], last=max(last for _, last, _ in run),
                 slots={k: slots[k] for _, _, ks in run for k in ks},
                 threads=base + (1 if r < extra else 0), segments=segments(run))
            for r, run in enumerate(runs)]
