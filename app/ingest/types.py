"""What ingestion hands the rest of the pipeline: sampled frames plus the timing facts about them.

The engine needs more than pixels: Qwen2.5-VL's temporal position ids depend on the real
seconds between sampled frames, so every clip carries its effective sampling fps, the source
frame indices and the duration, exactly as vLLM's video metadata expects them.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

PATCH = 14
MERGE = 2
TEMPORAL_PATCH = 2
FACTOR = PATCH * MERGE  # 28 px of frame side per LLM token


@dataclass(frozen=True)
class VideoOptions:
    """How one clip is sampled and sized, every value settled (see `app.ingest.options.build`:
    the defaults live in Settings and the profile, not here). Field names mirror qwen-vl-utils'
    video element keys; exactly one of `fps` and `nframes` is set."""
    fps: float | None
    nframes: int | None
    min_frames: int
    max_frames: int
    min_pixels: int
    max_pixels: int
    total_pixels: int
    start_s: float | None = None
    end_s: float | None = None

    def cache_key(self) -> tuple:
        return (self.fps, self.nframes, self.min_frames, self.max_frames, self.min_pixels,
                self.max_pixels, self.total_pixels, self.start_s, self.end_s)


@dataclass
class VideoClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, already at the target size, T even
    sample_fps: float  # frames per second of *sampled* time: T / sampled span * ... as qwen-vl-utils
    frame_indices: list[int]
    timestamps_s: list[float]
    source_fps: float
    duration_s: float
    total_source_frames: int
    stream_index: int = 0
    skipped_frames: int = 0
    fetch_s: float = 0.0
    decode_s: float = 0.0
    source_bytes: int = 0
    cache_hit: bool = False
    # SHA-256 of `frames`' bytes (what the model was given), hashed in a thread beside the
    # engine's work: 25 ms for the default budget's 37 MB, off the time to first token.
    digest: Future | None = field(default=None, repr=False, compare=False)
    extra: dict = field(default_factory=dict)

    @property
    def frames_sha256(self) -> str:
        return self.digest.result() if self.digest is not None else ""

    async def hashed(self) -> str:
        """`frames_sha256`, awaited without holding up the event loop while it is hashed."""
        if self.digest is not None:
            await asyncio.wrap_future(self.digest)
        return self.frames_sha256

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def resized_height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def resized_width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def grid_thw(self) -> tuple[int, int, int]:
        return (self.num_frames // TEMPORAL_PATCH, self.resized_height // PATCH,
                self.resized_width // PATCH)

    @property
    def vision_tokens(self) -> int:
        t, h, w = self.grid_thw
        return t * h * w // (MERGE * MERGE)

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes)

    def vllm_metadata(self) -> dict:
        """Metadata for vLLM's `(frames, metadata)` video input.

        transformers derives the temporal spacing as `len(frames_indices) / total_num_frames *
        fps` seconds per frame (then `second_per_grid_ts = 2 / that`). We state it in terms of
        the frames we hand over — indices 0..T-1 of a T-frame clip at `sample_fps` — so the
        result is exactly our sampling rate, whatever span or VFR timing produced the frames.
        Frames are already sampled and resized: the processor must not sample again.
        """
        n = self.num_frames
        return {
            "fps": self.sample_fps,
            "duration": self.duration_s,
            "total_num_frames": n,
            "frames_indices": list(range(n)),
            "height": self.resized_height,
            "width": self.resized_width,
            "video_backend": "pyav",
            "do_sample_frames": False,
        }

    def report(self) -> dict:
        """The `inspect` view: what the model sees (JSON keys are a public contract)."""
        return {
            "stream_index": self.stream_index,
            "duration_s": round(self.duration_s, 6),
            "source_fps": round(self.source_fps, 6),
            "sample_fps": round(self.sample_fps, 6),
            "sampled_timestamps_s": [round(t, 6) for t in self.timestamps_s],
            "frame_indices": list(self.frame_indices),
            "num_frames": self.num_frames,
            "resized_height": self.resized_height,
            "resized_width": self.resized_width,
            "vision_tokens": self.vision_tokens,
            "skipped_frames": self.skipped_frames,
            "fetch_s": round(self.fetch_s, 6),
            "decode_s": round(self.decode_s, 6),
            "source_bytes": self.source_bytes,
            "cache_hit": self.cache_hit,
            "frames_sha256": self.frames_sha256,
        }
