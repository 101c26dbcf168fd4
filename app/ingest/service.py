"""VideoIngestor: the one object the server calls for media.

Fetching is async on the event loop; decoding runs in a bounded thread pool (PyAV releases the
GIL while FFmpeg decodes and scales) so a burst of uploads queues instead of oversubscribing
the CPU, and the queue depth is a metric. The pool has one worker per core by default; each
decode takes its threads from a core scheduler (app/ingest/cores.py): every core for a lone
request, as many as its keyframe intervals use well when others wait. Beyond
`video_decode_queue_max` waiting decodes a request gets 429 at once. Every decode has a
deadline it checks between packets; a backstop on the awaiting side covers a decoder stuck
inside one packet. A decode nobody waits for any more (its requests were cancelled: client
gone, deadline) is cancelled between packets too. Where decode processes are set
(app/ingest/procpool.py), a clip that arrives while another decodes here goes to one of them,
and the pool thread only waits for it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from app import metrics
from app.config import Settings
from app.errors import CosmosError, DecodeCancelledError, MediaTimeoutError, OverloadedError
from app.ingest import options as opts
from app.ingest.cache import ClipCache
from app.ingest.cores import CoreScheduler, decode_workers
from app.ingest.images import decode_image
from app.ingest.nvdec import Nvdec, host_supports
from app.ingest.pipeline import frames_digest, ingest, record
from app.ingest.placement import Placement, overflow_budget
from app.ingest.procpool import DecodeProcesses
from app.ingest.sources import Media, Sources
from app.ingest.types import VideoClip, VideoOptions
from app.lifecycle.processes import name_os_thread
from app.profiles.resolve import Resolved, resolve

log = logging.getLogger(__name__)


class VideoIngestor:
    def __init__(self, settings: Settings, profile: Resolved | None = None) -> None:
        self.settings = settings
        # The deployment's resolved profile: its video keys are every request's defaults.
        self.profile = profile or resolve(settings)
        self.sources = Sources(settings)
        self.cache = ClipCache(settings.video_cache_bytes)
        # NVDEC (app/ingest/nvdec.py) is made here and started by the server once the engine
        # runs (`start_decoders`); its decodes occupy a pool thread each but hardly any CPU.
        nvdec_host = settings.video_decoder != "cpu" and host_supports() is None
        self.workers = decode_workers(settings.video_decode_workers) + (
            settings.video_nvdec_max_decodes if nvdec_host else 0)
        # Decode processes (app/ingest/procpool.py) take the clips that arrive while the server
        # decodes one itself; its pool's threads then only wait for them.
        count = settings.video_decode_processes
        count = (4 if nvdec_host else 0) if count < 0 else count
        self.procs = DecodeProcesses(settings, count, self.workers) if count else None
        self._local = 0  # decodes running in this process (app/ingest/pipeline.py)
        self.nvdec = Nvdec(settings.video_nvdec_device, settings.video_nvdec_max_decodes,
                           settings.video_nvdec_threads, settings.video_nvdec_max_decoders,
                           settings.video_nvdec_blocking_sync) if nvdec_host else None
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cosmos-decode",
                                          initializer=name_os_thread)
        self._pending = 0  # jobs submitted to the pool and not finished (running or queued)
        self._queued = 0  # of which not started (changed by workers too: under _queue_lock)
        self._queue_lock = threading.Lock()
        self.cores = CoreScheduler(queued=lambda: self._queued)
        # CPU cores lent to clips NVDEC would queue (a burst: both decoders at once). Without
        # any, a clip waiting for NVDEC sleeps on its slot instead of asking every 20 ms.
        budget = overflow_budget(settings.video_nvdec_cpu_cores)
        self.placement = Placement(budget, settings.video_nvdec_max_decodes, self.cores) \
            if self.nvdec and budget else None

    async def start_decoders(self) -> None:
        """Start NVDEC and the decode processes (after the engine: see app/ingest/nvdec.py).
        Raises only where the settings ask for NVDEC and nothing else (video_decoder=nvdec);
        auto serves on the CPU."""
        if self.nvdec is not None:
            try:
                took = await asyncio.to_thread(self.nvdec.start)
                log.info("NVDEC ready on CUDA device %d in %.2f s", self.nvdec.device, took)
            except Exception as exc:  # noqa: BLE001
                self.nvdec.failure = f"{type(exc).__name__}: {exc}"
                if self.settings.video_decoder == "nvdec":
                    raise
                log.warning("NVDEC unavailable (%s); decoding on the CPU", self.nvdec.failure)
        if self.procs is not None:
            try:
                failure = await asyncio.to_thread(self.procs.start)
            except Exception:  # noqa: BLE001 - the server's own threads decode instead
                log.exception("decode processes failed to start; decoding in the server")
                await asyncio.to_thread(self.procs.close)
                self.procs = None
                return
            log.info("%d decode processes ready", self.procs.count)
            if failure and self.settings.video_decoder == "nvdec":
                raise RuntimeError(f"NVDEC failed in a decode process: {failure}")
            if failure:
                log.warning("NVDEC unavailable in the decode processes (%s); they decode on "
                            "the CPU", failure)

    def options(self, overrides: dict | opts.VideoRequestOptions | None = None) -> VideoOptions:
        return opts.build(self.profile, opts.request_options(overrides))

    async def video(self, url: str, options: VideoOptions) -> VideoClip:
        try:
            media = await self.sources.resolve(url, max_bytes=self.settings.video_max_bytes,
                                               limit_name="video_max_bytes")
            clip, outcome = await self.cache.get_or_make(
                (media.key, options.cache_key()), lambda: self._decode(media, options))
        except CosmosError as exc:
            metrics.MEDIA_ERRORS.labels(exc.code or "invalid_media").inc()
            raise
        metrics.FRAMES_SAMPLED.observe(clip.num_frames)
        metrics.VISION_TOKENS.observe(clip.vision_tokens)
        # A per-request view: the frames are shared (read-only), the timings are this request's.
        return dataclasses.replace(clip, fetch_s=media.fetch_s, cache_hit=outcome != "miss",
                                   decode_s=clip.decode_s if outcome == "miss" else 0.0,
                                   extra=dict(clip.extra))

    async def image(self, url: str) -> Image.Image:
        try:
            media = await self.sources.resolve(url, max_bytes=self.settings.image_max_bytes,
                                               limit_name="image_max_bytes")
            return await self._run(_image_now, media, self.settings.image_max_bytes)
        except CosmosError as exc:
            metrics.MEDIA_ERRORS.labels(exc.code or "invalid_media").inc()
            raise

    async def _decode(self, media: Media, options: VideoOptions) -> VideoClip:
        clip = await self._run(self._ingest_now, media, options, time.monotonic(), cancel=True)
        record(clip)
        metrics.DECODE_SECONDS.observe(clip.decode_s)
        metrics.SKIPPED_FRAMES.inc(clip.skipped_frames)
        return clip

    def _ingest_now(self, media: Media, options: VideoOptions, queued_at: float,
                    cancel: threading.Event) -> VideoClip:
        limit = self.settings.video_decode_timeout_s
        if time.monotonic() - queued_at > limit:
            raise MediaTimeoutError(f"the server is busy: no decoder was free within {limit:g} s "
                                    f"(video_decode_timeout_s)")
        source = media.load(self.settings.video_max_bytes, "video_max_bytes")
        deadline = time.monotonic() + limit
        with self._queue_lock:  # a lone clip here: no hand-over; others to the processes
            local = self.procs is None or not self.procs.ready or self._local == 0
            self._local += local
        try:
            if local:
                clip = ingest(source, options, self.settings, deadline=deadline, cancel=cancel,
                              cores=self.cores, nvdec=self.nvdec, placement=self.placement)
            else:
                clip = self.procs.run(source, options, deadline, cancel)
                clip.digest = frames_digest(clip.frames)
        finally:
            with self._queue_lock:
                self._local -= local
        if isinstance(source, str):
            clip.source_bytes = media.size
        return clip

    async def _run(self, fn, *args, cancel: bool = False):
        """Run `fn` in the decode pool, counting it in the queue gauge until a worker starts.
        With `cancel`, `fn` gets a threading.Event, set if this call is cancelled."""
        s = self.settings
        if self._pending >= self.workers + s.video_decode_queue_max:
            raise OverloadedError(f"{self._pending - self.workers} decodes are waiting "
                                  f"for a worker already (video_decode_queue_max); retry later",
                                  retry_after_s=s.overload_retry_after_s)
        stop = threading.Event()
        if cancel:
            args = (*args, stop)
        queued = [True]

        def leave_queue() -> None:
            # once, whether a worker starts it or the waiter gives up first
            with self._queue_lock:
                if queued[0]:
                    queued[0] = False
                    self._queued -= 1
                    metrics.DECODE_QUEUE.dec()

        def job():
            leave_queue()
            if stop.is_set():
                raise DecodeCancelledError("cancelled before it started")
            metrics.DECODES_RUNNING.inc()
            try:
                return fn(*args)
            finally:
                metrics.DECODES_RUNNING.dec()

        def done(f) -> None:
            self._pending -= 1
            if not f.cancelled():
                f.exception()  # retrieved: a cancelled call's error is nobody's to report

        metrics.DECODE_QUEUE.inc()
        with self._queue_lock:
            self._queued += 1
        self._pending += 1
        future = asyncio.get_running_loop().run_in_executor(self._pool, job)
        future.add_done_callback(done)
        # Queue wait and the decode are each limited to video_decode_timeout_s in the worker;
        # this outer limit only fires if a decoder hangs inside a single packet.
        backstop = 2 * self.settings.video_decode_timeout_s + 5
        try:
            return await asyncio.wait_for(asyncio.shield(future), backstop)
        except TimeoutError as exc:
            stop.set()
            raise MediaTimeoutError(f"decoding did not finish within {backstop:g} s "
                                    f"(video_decode_timeout_s)") from exc
        except asyncio.CancelledError:
            stop.set()  # the worker stops at its next packet
            metrics.DECODES_CANCELLED.inc()
            raise
        finally:
            leave_queue()

    async def close(self) -> None:
        await self.sources.close()
        if self.procs is not None:
            await asyncio.to_thread(self.procs.close)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.cache.clear()


def _image_now(media: Media, max_bytes: int) -> Image.Image:
    source = media.load(max_bytes, "image_max_bytes")
    if isinstance(source, str):
        with open(source, "rb") as f:
            source = f.read()
    return decode_image(source)
