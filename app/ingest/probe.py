"""Open a container, choose its video stream and index every frame without decoding any.

One demux pass (no decoding: it costs milliseconds) gives the true frame count and every
presentation timestamp, even for WebM/MKV uploads whose headers carry neither duration nor
frame count, and variable-frame-rate files. The packets are kept so the decoder can start at
whichever keyframe the sampling plan needs, instead of seeking and demuxing a second time.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.stream import Discard, Disposition

from app.errors import DecodeCancelledError, MediaError, MediaTimeoutError

# A frame this large is a decompression bomb, not a video: 8K UHD is 33 MP.
MAX_FRAME_PIXELS = 8192 * 8192

_IO_BUFFER = 1 << 20


@dataclass(frozen=True)
class SourceLimits:
    """What a stream may hold, checked from its headers and its index before any decoding: a
    few kilobytes can declare 100,000 frames or frames of 16k x 16k (a decompression bomb)."""
    max_pixels: int  # width x height x frames
    max_frames: int

    def check(self, width: int, height: int, frames: int, where: str) -> None:
        if frames > self.max_frames:
            raise MediaError(f"the video has {frames}{where} frames; the limit is "
                             f"{self.max_frames} (video_max_source_frames)",
                             code="video_too_large")
        if width * height * frames > self.max_pixels:
            raise MediaError(f"the video is {width}x{height} x {frames}{where} frames = "
                             f"{width * height * frames} pixels to decode; the limit is "
                             f"{self.max_pixels} (video_max_source_pixels)",
                             code="video_too_large")


@dataclass
class Probe:
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    packets: list[av.Packet]  # decode order, empty packets dropped
    frame_pts: np.ndarray  # one per frame, presentation order, in stream time_base ticks
    ordinal: bool  # timestamps missing: the k-th decoded frame is frame k
    time_base: Fraction
    fps: float  # the average rate, as the reference's reader (decord) reports it
    width: int
    height: int

    @property
    def num_frames(self) -> int:
        return len(self.frame_pts)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def seconds(self, pts: np.ndarray | int) -> np.ndarray | float:
        """Seconds since the first frame."""
        return (np.asarray(pts) - self.frame_pts[0]) * float(self.time_base)

    def close(self) -> None:
        self.container.close()


def _reason(exc: Exception) -> str:
    # FFmpeg's message without the file name and log tail PyAV appends (server paths).
    return getattr(exc, "strerror", None) or type(exc).__name__


def choose_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    # Cover art is stored as a one-frame "video" stream; it is never the video.
    videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not videos:
        raise MediaError("the file has no video stream")
    default = [s for s in videos if s.disposition & Disposition.default]
    return (default or videos)[0]


def _rate(stream: av.video.stream.VideoStream, pts: np.ndarray, tb: Fraction) -> float:
    span = float((pts[-1] - pts[0]) * tb) if len(pts) > 1 else 0.0
    measured = (len(pts) - 1) / span if span > 0 else 0.0
    declared = float(stream.average_rate or 0)
    # The declared average is what the reference reads; header-less WebM (MediaRecorder) can
    # declare a rate estimated from its first frames only, so the measured rate wins when the
    # two disagree by more than 1%.
    if declared > 0 and (measured == 0 or abs(declared - measured) <= 0.01 * measured):
        return declared
    if measured > 0:
        return measured
    guessed = float(stream.guessed_rate or 0)
    return guessed if guessed > 0 else 1.0


def probe(source: str | bytes, deadline: float, limits: SourceLimits | None = None,
          cancel: threading.Event | None = None) -> Probe:
    """`source` is a local path or the file's bytes. `cancel`: set when nobody waits any more."""
    try:
        # Bytes are read through Python, one callback (and one taking of the GIL) per buffer:
        # 1 MiB buffers make a 3.4 MB clip 6 reads instead of 106 (32 KiB, FFmpeg's default).
        container = av.open(io.BytesIO(source), buffer_size=_IO_BUFFER) \
            if isinstance(source, bytes) else av.open(source)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable video file ({_reason(exc)})") from exc
    try:
        stream = choose_stream(container)
        for other in container.streams:
            if other is not stream:
                other.discard = Discard.all  # audio, subtitles, data: never parsed
        cc = stream.codec_context
        if cc is None:
            raise MediaError("no decoder for this video's codec")
        if cc.width * cc.height > MAX_FRAME_PIXELS:
            raise MediaError(f"video frames are {cc.width}x{cc.height}; the limit is "
                             f"{MAX_FRAME_PIXELS} pixels per frame", code="video_too_large")
        if limits is not None and stream.frames:  # the header's count, where it has one
            limits.check(cc.width, cc.height, stream.frames, " (declared)")
        packets: list[av.Packet] = []
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets.append(packet)
                    if limits is not None and len(packets) % 256 == 0:
                        limits.check(cc.width, cc.height, len(packets), "+")
                if time.monotonic() > deadline:
                    raise MediaTimeoutError("reading the video's index ran past the decode "
                                            "time limit (video_decode_timeout_s)")
                if cancel is not None and cancel.is_set():
                    raise DecodeCancelledError("nobody waits for this video any more")
        except av.FFmpegError:
            if not packets:  # a damaged tail still leaves the frames before it
                raise
        shown = [p for p in packets if not p.is_discard]
        if not shown:
            raise MediaError("the video stream has no frames")
        if limits is not None:
            limits.check(cc.width, cc.height, len(shown), "")
        if not cc.width or not cc.height:
            raise MediaError("the video stream does not declare its frame size")
        tb = stream.time_base or Fraction(1, 90000)
        ordinal = any(p.pts is None for p in shown)
        stamps = [p.pts for p in shown] if not ordinal else [p.dts for p in shown]
        if None in stamps:  # an elementary stream: frames are evenly spaced at the declared rate
            tb = 1 / (stream.average_rate or stream.guessed_rate or Fraction(25))
            pts = np.arange(len(shown), dtype=np.int64)
        else:
            pts = np.sort(np.array(stamps, dtype=np.int64))
        return Probe(container=container, stream=stream, packets=packets, frame_pts=pts,
                     ordinal=ordinal, time_base=tb, fps=_rate(stream, pts, tb),
                     width=cc.width, height=cc.height)
    except av.FFmpegError as exc:
        container.close()
        raise MediaError(f"not a readable video file ({_reason(exc)})") from exc
    except BaseException:
        container.close()
        raise
