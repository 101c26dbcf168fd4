"""Test clips generated with PyAV: one per file class the ingestion must survive.

Most frames carry their own index as an 8-bit barcode (vertical stripes, white = 1), so a test
can read back which source frame it got, whatever the scaling.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 8


def barcode(i: int, w: int, h: int) -> np.ndarray:
    bits = np.array([(i >> (BITS - 1 - b)) & 1 for b in range(BITS)], dtype=np.uint8)
    row = bits[np.arange(w) * BITS // w] * 255
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (h, w, 3)))


def read_barcode(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    row = frame[h // 2].mean(axis=1)
    centers = [int((b + 0.5) * w / BITS) for b in range(BITS)]
    return int("".join("1" if row[c] > 128 else "0" for c in centers), 2)


def encode(path: Path, images, *, codec="libx264", rate=30, pix_fmt="yuv420p", fmt=None,
           pts=None, time_base=None, options=None, container_options=None, rotation=None):
    """Encode RGB arrays; `pts` (in `time_base`) makes the clip variable-frame-rate."""
    time_base = time_base or Fraction(1, rate)
    out = av.open(str(path), "w", format=fmt, options=container_options or {})
    stream = out.add_stream(codec, rate=rate, options=options or {})
    first = images[0]
    stream.height, stream.width = first.shape[:2]
    stream.pix_fmt = pix_fmt
    stream.time_base = time_base
    if rotation is not None:
        stream.set_display_rotation(rotation)
    for i, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
        frame.pts = pts[i] if pts is not None else i
        frame.time_base = time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def bframes(path: Path, n=90, w=320, h=240) -> Path:
    # B-frames with x264's default pyramid, stored out of presentation order (b-adapt=0: a
    # barcode changes too abruptly for x264 to choose B-frames itself), and a keyframe every
    # second so a late start can skip whole groups.
    params = "keyint=30:min-keyint=30:scenecut=0:bframes=3:b-adapt=0"
    return encode(path, [barcode(i, w, h) for i in range(n)], options={"x264-params": params})


def vfr(path: Path) -> Path:
    # 2 s at 5 fps, then 2 s at 30 fps: sampling by frame index would crowd the second half.
    pts = [i * 200 for i in range(10)] + [2000 + round(i * 1000 / 30) for i in range(60)]
    return encode(path, [barcode(i, 160, 96) for i in range(70)], pts=pts,
                  time_base=Fraction(1, 1000), rate=30)


def rotated(path: Path, degrees: int) -> Path:
    # Shown portrait (320 tall, 176 wide) with a red block at its top-left; stored rotated.
    shown = np.zeros((320, 176, 3), np.uint8)
    shown[:60, :40] = (255, 0, 0)
    stored = np.ascontiguousarray(np.rot90(shown, -degrees // 90))
    return encode(path, [stored] * 8, rate=10, rotation=degrees)


def ten_bit_hevc(path: Path) -> Path:
    return encode(path, [barcode(i, 128, 72) for i in range(30)], codec="libx265",
                  pix_fmt="yuv420p10le", options={"x265-params": "log-level=error"})


def gray(level: int, w=128, h=72, n=8) -> list[np.ndarray]:
    return [np.full((h, w, 3), level, np.uint8)] * n


def full_range(path: Path) -> Path:
    # yuvj420p: full-range luma; read as limited range, mid-gray 192 would come out ~205.
    return encode(path, gray(192), pix_fmt="yuvj420p")


def multi_stream(path: Path, srt_dir: Path) -> Path:
    """MKV: a small non-default video, the default video, audio and subtitles."""
    srt = srt_dir / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n\n")
    subs_in = av.open(str(srt))
    out = av.open(str(path), "w")
    small = out.add_stream("libx264", rate=30)
    main = out.add_stream("libx264", rate=30)
    for s, (w, h) in ((small, (160, 96)), (main, (320, 192))):
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    small.disposition = av.stream.Disposition(0)
    main.disposition = av.stream.Disposition.default
    audio = out.add_stream("aac", rate=48000)
    subs = out.add_stream_from_template(subs_in.streams.subtitles[0])
    for i in range(30):
        for s, image in ((small, barcode(255, 160, 96)), (main, barcode(i, 320, 192))):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            for packet in s.encode(frame):
                out.mux(packet)
    for s in (small, main):
        for packet in s.encode():
            out.mux(packet)
    samples = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp",
                                         layout="stereo")
    samples.sample_rate, samples.pts = 48000, 0
    for packet in [*audio.encode(samples), *audio.encode()]:
        out.mux(packet)
    for packet in subs_in.demux(subs_in.streams.subtitles[0]):
        if packet.size:
            packet.stream = subs
            out.mux(packet)
    out.close()
    subs_in.close()
    return path


def recorder_webm(path: Path) -> Path:
    # What a browser's MediaRecorder uploads: live WebM, no duration, no frame count, jittery
    # millisecond timestamps.
    pts, t = [], 0
    for i in range(45):
        pts.append(t)
        t += 33 + (i % 3) * 4
    return encode(path, [barcode(i, 160, 120) for i in range(45)], codec="libvpx",
                  pts=pts, time_base=Fraction(1, 1000), container_options={"live": "1"})


def tiny(path: Path) -> Path:
    return encode(path, [barcode(i, 50, 50) for i in range(20)])


def uhd(path: Path) -> Path:
    return encode(path, [barcode(i, 3840, 2160) for i in range(8)],
                  options={"preset": "ultrafast"})


def corrupt(path: Path, source: Path) -> Path:
    # Zero the middle third of the file: inside the mdat box, so the index survives.
    data = bytearray(source.read_bytes())
    n = len(data)
    data[n // 3: 2 * n // 3] = bytes(2 * n // 3 - n // 3)
    path.write_bytes(bytes(data))
    return path


def elementary(path: Path) -> Path:
    # Raw Annex B H.264: no container, so no timestamps at all.
    return encode(path, [barcode(i, 160, 96) for i in range(30)], fmt="h264")


def audio_only(path: Path) -> Path:
    out = av.open(str(path), "w")
    audio = out.add_stream("aac", rate=48000)
    samples = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp",
                                         layout="stereo")
    samples.sample_rate, samples.pts = 48000, 0
    for packet in [*audio.encode(samples), *audio.encode()]:
        out.mux(packet)
    out.close()
    return path
