"""How our frames reach vLLM's multimodal processor, on every vLLM release we run on.

Two differences between releases matter, and both are found by looking at the running engine,
not at version numbers:

- **Video metadata.** vLLM 0.26's parser keeps the `(frames, metadata)` metadata only for
  Qwen3-VL and Molmo2; for Qwen2.5-VL it drops it, transformers then assumes 24 fps, and
  `second_per_grid_ts` (the temporal position step) becomes 2/24 s instead of 2/4 s for 4 fps
  frames: the model's sense of time is off six-fold. Where the parser drops it, we hand the
  metadata to the HF processor ourselves as `mm_processor_kwargs["video_metadata"]` (where the
  parser keeps it, doing so too would pass it twice and fail every request).
- **Blocking processing.** vLLM 0.26's `AsyncLLM.generate` runs the HF processor (normalise,
  patchify, cast) on the caller's event loop, so one video stalls every stream and upload in the
  server (40 frames of 420x728 cost ~0.5 s more there on the CPU than on the GPU: H200,
  2026-12-01). There we run `process_inputs` in one
  worker thread of our own (one, so requests reach the engine core in the order they were
  processed, as vLLM's sender-side cache requires) and hand vLLM the finished request. Later
  releases do this themselves (`process_inputs_async`).

The processor can also run on the GPU (`mm_processor_kwargs["device"]`, transformers' fast
processors): the frames are normalised and patchified there instead of on the CPU, and the
patches are copied back to host memory in that same worker thread (`move_to_host`).
"""
from __future__ import annotations

import logging

from app.ingest.types import VideoClip

log = logging.getLogger(__name__)


def drops_video_metadata(llm, tokenizer) -> bool:
    """Whether vLLM's parser for this model discards the metadata of `(frames, metadata)`."""
    try:
        from vllm.multimodal import MULTIMODAL_REGISTRY

        if not llm.model_config.is_multimodal_model:
            return False
        processor = MULTIMODAL_REGISTRY.create_processor(llm.model_config, tokenizer=tokenizer)
        return not getattr(processor.data_parser, "video_needs_metadata", True)
    except Exception as exc:  # noqa: BLE001 - an unknown vLLM: keep its own behaviour
        log.warning("could not tell whether vLLM keeps video metadata (%s); not passing it", exc)
        return False


def processing_blocks_loop(llm) -> bool:
    """Whether `AsyncLLM.generate` would run multimodal processing on the event loop."""
    ip = getattr(llm, "input_processor", None)
    return (ip is not None and hasattr(ip, "process_inputs")
            and not hasattr(ip, "process_inputs_async"))


def hf_video_metadata(clip: VideoClip) -> dict:
    """The clip's metadata as transformers' `VideoMetadata` fields (vLLM strips
    `do_sample_frames` itself when it forwards its own copy)."""
    return {k: v for k, v in clip.vllm_metadata().items() if k != "do_sample_frames"}


def processor_kwargs(videos: list[VideoClip], *, pass_metadata: bool,
                     device: str | None) -> dict:
    """Per-request `mm_processor_kwargs` for a prompt with these videos (and maybe images)."""
    kw: dict = {}
    if pass_metadata and videos:
        kw["video_metadata"] = [hf_video_metadata(c) for c in videos]
    if device:
        kw["device"] = device
    return kw


def temporal_steps_s(request) -> list[float]:
    """`second_per_grid_ts` of each video in a processed engine-core request: the seconds one
    temporal grid step (two frames) stands for in the model's positions."""
    steps = []
    for feature in getattr(request, "mm_features", None) or []:
        data = getattr(feature, "data", None)
        if feature.modality == "video" and data is not None and "second_per_grid_ts" in data:
            steps.append(float(data["second_per_grid_ts"].data))
    return steps


def check_temporal_steps(request, videos: list[VideoClip]) -> bool | None:
    """Compare what vLLM derived with the real spacing of our frames (2 / sample_fps); None
    when the request does not say."""
    steps = temporal_steps_s(request)
    if not steps or len(steps) != len(videos):
        return None
    want = [2.0 / c.sample_fps for c in videos]
    ok = all(abs(s - w) <= 1e-3 * w for s, w in zip(steps, want))
    (log.info if ok else log.warning)(
        "temporal positions: vLLM uses %s s per grid step, the frames say %s s%s", steps, want,
        "" if ok else " - the model's sense of time will be wrong")
    return ok


def _pinned_copy(tensor):
    """A host copy in page-locked memory (torch's caching host allocator reuses the blocks
    once vLLM has sent the request): DMA speed, where `.cpu()` into pageable memory went at
    ~1.5 GB/s on the H200 host. vLLM's sender-side cache (its default with one API process)
    keeps items' sizes, not their tensors, so the pinned pool stays at what is in flight."""
    import torch

    try:
        host = torch.empty_like(tensor, device="cpu", pin_memory=True)
    except (RuntimeError, TypeError):  # no page-locked memory to be had: a plain copy
        return tensor.cpu()
    host.copy_(tensor)
    return host


def move_to_host(request) -> int:
    """Copy the processed tensors of `request` that live on the GPU (the processor ran there)
    to host memory now, in the processing thread. vLLM would make the same copy while encoding
    the request for its engine core, on the event loop: ~50 ms for the 73 MB of a 40-frame
    420x728 clip (H200, 2026-12-01), during which no other stream or upload moves. Returns the
    bytes moved. Never raises: the request is already processed (and counted as sent by vLLM's
    sender-side cache), and vLLM makes the copy itself if this one fails."""
    moved = 0
    try:
        for feature in getattr(request, "mm_features", None) or []:
            item = getattr(feature, "data", None)
            for elem in (item.values() if item else ()):
                tensor = elem.data
                if getattr(tensor, "is_cuda", False):
                    elem.data = _pinned_copy(tensor)
                    moved += tensor.nbytes
    except Exception:  # noqa: BLE001
        log.exception("could not copy processed tensors to host memory; vLLM will")
    return moved
