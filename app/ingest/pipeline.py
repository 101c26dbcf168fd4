"""One video, synchronously: index, apply the limits, plan, decode. Runs in a worker thread (the
server) or directly (the `inspect` CLI), so both see exactly the same frames."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from app import metrics
from app.config import Settings
from app.errors import CosmosError, DecodeCancelledError, MediaError, MediaTimeoutError
from app.ingest.cores import CoreScheduler, host_cores
from app.ingest.decode import Decoded, decode
from app.ingest.nvdec import Nvdec, NvdecError, codec_reason
from app.ingest.placement import Placement, work
from app.ingest.probe import Probe, SourceLimits, probe
from app.ingest.sampling import Plan, make_plan
from app.ingest.split import Split, plan_split
from app.ingest.types import VideoClip, VideoOptions
from app.lifecycle.processes import name_os_thread

log = logging.getLogger(__name__)

# Frames are hashed here while the request goes on to the engine (hashlib releases the GIL).
_HASHERS = ThreadPoolExecutor(2, thread_name_prefix="cosmos-sha256",
                              initializer=name_os_thread)


def frames_digest(frames) -> Future:
    return _HASHERS.submit(lambda: hashlib.sha256(frames.data).hexdigest())


def apply_duration_limit(p: Probe, options: VideoOptions, settings: Settings) -> VideoOptions:
    start = min(options.start_s or 0.0, p.duration_s)
    end = min(options.end_s if options.end_s is not None else p.duration_s, p.duration_s)
    limit = settings.video_max_duration_s
    if end - start <= limit:
        return options
    if settings.video_truncate_long:
        return dataclasses.replace(options, end_s=start + limit)
    raise MediaError(f"the video is {end - start:.1f} s long; this server's limit is {limit:g} s "
                     f"(video_max_duration_s); send a shorter span with video_start/video_end",
                     code="video_too_long")


def ingest(source: str | bytes, options: VideoOptions, settings: Settings,
           deadline: float | None = None, cancel: threading.Event | None = None,
           cores: CoreScheduler | None = None, nvdec: Nvdec | None = None,
           placement: Placement | None = None, hash_frames: bool = True) -> VideoClip:
    """`source`: a local path or the file's bytes. Raises CosmosError subclasses only;
    `cancel` stops the work between packets (DecodeCancelledError). `cores`: the server's
    scheduler the decode takes its threads from (without one: every core, or
    video_decode_threads where set). `nvdec`: the server's GPU decoder, when it has one;
    `placement`: lends CPU cores to clips NVDEC would queue (app/ingest/placement.py).
    `hash_frames`: start the frames' SHA-256 here (a decode process leaves it to the server,
    which holds the frames the model gets). Metrics are the caller's: `record(clip)`."""
    try:
        clip = _ingest(source, options, settings, deadline, cancel, cores, nvdec, placement)
        if hash_frames:
            clip.digest = frames_digest(clip.frames)
        return clip
    except CosmosError:
        raise
    except Exception as exc:  # noqa: BLE001 - a file that trips FFmpeg/PyAV is still a bad file
        log.exception("unexpected error ingesting a video")
        raise MediaError(f"the video could not be decoded ({type(exc).__name__})") from exc


def _ingest(source: str | bytes, options: VideoOptions, settings: Settings,
            deadline: float | None, cancel: threading.Event | None,
            cores: CoreScheduler | None, nvdec: Nvdec | None,
            placement: Placement | None) -> VideoClip:
    started = time.perf_counter()
    if deadline is None:
        deadline = time.monotonic() + settings.video_decode_timeout_s
    limits = SourceLimits(settings.video_max_source_pixels, settings.video_max_source_frames)
    p = probe(source, deadline, limits, cancel)
    try:
        options = apply_duration_limit(p, options, settings)
        times = p.seconds(p.frame_pts)
        plan = make_plan(times, p.fps, p.height, p.width, options, tick_s=float(p.time_base))
        split = plan_split(p, plan) if settings.video_decode_split else None
        decoded, fell_back = None, False
        if nvdec is not None and _wants_nvdec(settings, p, nvdec, cores):
            try:
                # Where NVDEC is the better decoder, a clip waits for a free NVDEC slot, or
                # borrows CPU cores (placement) if the CPU would finish it sooner than the queue.
                waits = settings.video_decoder == "nvdec" or _favours_nvdec(settings, p)
                decoded = _on_nvdec(nvdec, p, plan, split, source, deadline, cancel, waits,
                                    placement if settings.video_decoder == "auto" else None,
                                    settings, cores)
            except NvdecError as exc:  # the CPU takes the clip, within the same deadline
                log.warning("NVDEC failed (%s); decoding on the CPU", exc)
                fell_back = True
        if decoded is None:
            decoded = _on_cpu(p, plan, split, settings, deadline, cancel, cores)
        threads = decoded.threads
        stream_index, codec = p.stream.index, p.stream.codec_context.name
    finally:
        p.close()
    return VideoClip(
        frames=decoded.frames, sample_fps=plan.sample_fps,
        frame_indices=plan.indices.tolist(),
        timestamps_s=[float(t) for t in times[plan.indices]],
        source_fps=p.fps, duration_s=p.duration_s, total_source_frames=p.num_frames,
        stream_index=stream_index, skipped_frames=decoded.skipped,
        decode_s=time.perf_counter() - started,
        source_bytes=len(source) if isinstance(source, bytes) else 0,
        extra={"rotation": decoded.rotation, "codec": codec, "span_frames": plan.span_frames,
               "damaged_packets": decoded.damaged, "decode_threads": threads,
               "decode_parts": decoded.parts, "decoder": decoded.decoder,
               "nvdec_fallback": fell_back, "nvdec_overflow": decoded.overflow})


def record(clip: VideoClip) -> None:
    """The decode's counters, recorded by the process that serves /metrics (a decode process
    has its own registry, which nobody scrapes)."""
    metrics.DECODES.labels(clip.extra["decoder"]).inc()
    if clip.extra.get("nvdec_fallback"):
        metrics.NVDEC_FALLBACKS.inc()
    if clip.extra.get("nvdec_overflow"):
        metrics.NVDEC_OVERFLOWS.inc()


def _wants_nvdec(settings: Settings, p: Probe, nvdec: Nvdec, cores: CoreScheduler | None) -> bool:
    """`nvdec`: every clip NVDEC can take. `auto`: those whose frames are large enough to favour
    it (video_nvdec_min_pixels), and any it can take while the CPU is the bottleneck (no core
    free, or decodes waiting for one)."""
    if not nvdec.ready or codec_reason(p) is not None:
        return False
    return settings.video_decoder == "nvdec" or _favours_nvdec(settings, p) or (
        cores is not None and cores.saturated())


def _favours_nvdec(settings: Settings, p: Probe) -> bool:
    return p.width * p.height >= settings.video_nvdec_min_pixels


def _on_nvdec(nvdec: Nvdec, p: Probe, plan: Plan, split: Split | None, source: str | bytes,
              deadline: float, cancel: threading.Event | None, waits: bool,
              placement: Placement | None, settings: Settings,
              cores: CoreScheduler | None) -> Decoded | None:
    """None when no NVDEC slot is free (now, or before the deadline if the clip `waits`): the
    CPU takes the clip then. A waiting clip the placement lends cores to decodes on the CPU."""
    w, parts = work(p, plan), split.max_parts if split else 1
    if not nvdec.try_acquire():
        if not waits:
            return None
        lent = _slot_or_cores(nvdec, placement, w, parts, deadline, cancel)
        if lent < 0:
            return None
        if lent > 0:
            started = time.monotonic()
            try:
                decoded = _on_cpu(p, plan, split, settings, deadline, cancel, cores, lent=lent)
            finally:
                placement.give_back(lent)
            placement.cpu_done(w, (time.monotonic() - started) * lent)
            decoded.overflow = True
            return decoded
    started = time.monotonic()
    if placement is not None:
        placement.slot_begin(w)
    ok = False
    try:
        with nvdec.backend(p, source) as backend:
            # Parts go to NVDEC's engines side by side, one decoder each, as on the CPU.
            decoded = decode(p, plan, deadline=deadline, threads=nvdec.parts(parts) if split
                             else 1, cancel=cancel, split=split, backend=backend)
        ok = True
    except (MediaTimeoutError, DecodeCancelledError):
        raise  # the same for either decoder
    except Exception as exc:  # noqa: BLE001 - any NVDEC error: the CPU takes the clip
        raise NvdecError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        nvdec.release()
        if placement is not None:
            placement.slot_end(w, time.monotonic() - started if ok else None)
    if decoded.skipped:  # a frame NVDEC did not give: the CPU's concealment decides, as always
        raise NvdecError(f"{decoded.skipped} sampled frames missing")
    decoded.threads = 0
    return decoded


def _slot_or_cores(nvdec: Nvdec, placement: Placement | None, w: float, parts: int,
                   deadline: float, cancel: threading.Event | None) -> int:
    """Wait for an NVDEC slot (0), or for the placement to lend CPU cores (how many), or until
    the deadline (-1)."""
    ticket = placement.enqueue(w) if placement is not None else None
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise DecodeCancelledError("nobody waits for this video any more")
            if ticket is not None:
                lent = placement.borrow(ticket, parts)
                if lent:
                    return lent
            left = deadline - time.monotonic()
            if left <= 0:
                return -1
            # Re-asked every 20 ms: the queue ahead shrinks, cores free up.
            if nvdec.try_acquire(min(left, 0.02 if ticket is not None else 0.25)):
                return 0
    finally:
        if ticket is not None:
            placement.leave(ticket)


def _on_cpu(p: Probe, plan: Plan, split: Split | None, settings: Settings, deadline: float,
            cancel: threading.Event | None, cores: CoreScheduler | None,
            lent: int = 0) -> Decoded:
    """`lent`: cores the placement lent this clip, used instead of the scheduler's."""
    parts = split.max_parts if split else 1
    if lent:
        hold = contextlib.nullcontext(lent)
    elif settings.video_decode_threads or cores is None:
        hold = contextlib.nullcontext(settings.video_decode_threads or host_cores())
    else:
        hold = cores.hold(parts, deadline=deadline, cancel=cancel)
    with hold as threads:
        decoded = decode(p, plan, deadline=deadline, threads=threads, cancel=cancel, split=split)
    decoded.threads = threads
    return decoded
