"""Start-up warm-up: one text and one short-video generation before the server reports ready.

vLLM's first multimodal request pays one-time costs that have nothing to do with its size: the HF
video processor is built, kernels of the vision path are JIT-compiled, the first batch shapes are
captured. On an H100 that first request took 19-37 s (2026-11-22) against ~1 s for the next.
Paying it here, before `/health/ready` turns 200, keeps it away from the first user; a load
balancer or Kubernetes sends traffic only once the probe passes.

The clip is synthetic (a moving gradient, 4 frames at 224x224, 128 vision tokens), handed to the
engine exactly as ingestion hands over real clips, so the same code path is exercised.
"""
from __future__ import annotations

import logging
import time
import uuid

import numpy as np

from app.engine.base import Engine, EngineInput, SamplingOptions
from app.ingest.types import VideoClip

log = logging.getLogger(__name__)

_FRAMES, _SIDE, _FPS = 4, 224, 2.0


def synthetic_clip() -> VideoClip:
    ramp = np.linspace(0, 255, _SIDE, dtype=np.float32)
    frames = np.empty((_FRAMES, _SIDE, _SIDE, 3), dtype=np.uint8)
    for i in range(_FRAMES):
        shifted = np.roll(ramp, 16 * i)
        frames[i] = np.stack([np.add.outer(shifted, ramp) / 2, np.tile(shifted, (_SIDE, 1)),
                              np.tile(ramp[:, None], (1, _SIDE))], axis=-1).astype(np.uint8)
    times = [i / _FPS for i in range(_FRAMES)]
    return VideoClip(frames=frames, sample_fps=_FPS, frame_indices=list(range(_FRAMES)),
                     timestamps_s=times, source_fps=_FPS, duration_s=_FRAMES / _FPS,
                     total_source_frames=_FRAMES)


def _inputs(engine: Engine) -> list[EngineInput]:
    # Greedy and ignore_eos: the same work every start, whatever the weights say.
    sampling = SamplingOptions(max_tokens=2, temperature=0.0, top_p=1.0, ignore_eos=True)
    text = engine.render_prompt([{"role": "user", "content": "Warm-up."}])
    video = engine.render_prompt([{"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": "What moves in this clip?"}]}])
    tag = uuid.uuid4().hex[:8]
    return [EngineInput(f"warmup-text-{tag}", text, sampling),
            EngineInput(f"warmup-video-{tag}", video, sampling, videos=[synthetic_clip()])]


async def warm_up(engine: Engine) -> float:
    """Run the warm-up requests; returns the seconds spent. Raises what the engine raises."""
    t0 = time.perf_counter()
    for inp in _inputs(engine):
        async for _ in engine.generate(inp):
            pass
    return time.perf_counter() - t0
