"""A decode process: clips decoded beside the server, with a GIL, a CUDA context and NVDEC
decoders of its own (`video_decode_processes`; the server's end is app/ingest/procpool.py).

Why a process: in a burst the server's decode threads spend most of their time waiting for the
GIL, which every PyAV and torch call gives up and must take back, and which they share with the
event loop, vLLM's input processing and each other (py-spy inside the server: docs/performance.md,
fifth session). Here a clip runs the same `ingest` as in the server's threads, so its frames,
sizes and tokens are the same; only the frames' bytes cross back (shared_frames.py).

Messages on the process pair's socket:
  server -> here: ("job", id, source, options, deadline) | ("cancel", id) | None (stop)
  here -> server: ("ready", failure or None) once; then per job ("done", id, clip without its
  frames, shape) followed by the frames' memfd, or ("error", id, exception)
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.reduction import send_handle

from app.config import Settings
from app.errors import CosmosError
from app.ingest import shared_frames
from app.ingest.cores import CoreScheduler
from app.ingest.nvdec import Nvdec, host_supports
from app.ingest.pipeline import ingest
from app.ingest.placement import Placement, overflow_budget
from app.lifecycle.processes import name_os_thread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Share:
    """One process's part of the server's decode limits."""
    index: int
    cores: int  # CPU cores its CPU decodes may use at once
    nvdec_decodes: int  # clips it decodes on NVDEC at once
    nvdec_decoders: int  # NVDEC decoders it runs at once
    jobs: int  # clips it may be given at once (the server's decode threads bound them)


def main(conn, settings: Settings, share: Share) -> None:
    """The process's entry point (multiprocessing's spawn target)."""
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s decode-{share.index} %(levelname)s %(name)s: "
                               f"%(message)s")
    sys.setswitchinterval(settings.gil_switch_interval_s)
    _Worker(conn, settings, share).serve()


class _Worker:
    def __init__(self, conn, settings: Settings, share: Share):
        self.conn, self.settings = conn, settings
        self.nvdec = Nvdec(settings.video_nvdec_device, share.nvdec_decodes,
                           settings.video_nvdec_threads, share.nvdec_decoders,
                           settings.video_nvdec_blocking_sync,
                           keep_idle=settings.video_nvdec_max_decoders) \
            if settings.video_decoder != "cpu" and host_supports() is None else None
        self.pool = ThreadPoolExecutor(share.jobs, thread_name_prefix="cosmos-decode",
                                       initializer=name_os_thread)
        self.queued = 0  # jobs given and not started: the core scheduler's view of the queue
        self.cores = CoreScheduler(total=share.cores, queued=lambda: self.queued)
        budget = min(overflow_budget(settings.video_nvdec_cpu_cores), share.cores)
        self.placement = Placement(budget, share.nvdec_decodes, self.cores) \
            if self.nvdec and budget else None
        self.cancels: dict[int, threading.Event] = {}
        self.lock = threading.Lock()  # one message (and its descriptor) on the socket at a time

    def serve(self) -> None:
        failure = None
        if self.nvdec is not None:
            try:
                self.nvdec.start()
            except Exception as exc:  # noqa: BLE001 - the server decides what it means
                failure = self.nvdec.failure = f"{type(exc).__name__}: {exc}"
        elif self.settings.video_decoder != "cpu":
            failure = host_supports()
        self._send(("ready", failure))
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                break  # the server is gone
            if msg is None:
                break
            if msg[0] == "job":
                _, job, source, options, deadline = msg
                self.cancels[job] = threading.Event()
                with self.lock:
                    self.queued += 1
                self.pool.submit(self._job, job, source, options, deadline, self.cancels[job])
            elif msg[0] == "cancel" and msg[1] in self.cancels:
                self.cancels[msg[1]].set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _job(self, job: int, source, options, deadline: float, cancel: threading.Event) -> None:
        with self.lock:
            self.queued -= 1
        try:
            clip = ingest(source, options, self.settings, deadline=deadline, cancel=cancel,
                          cores=self.cores, nvdec=self.nvdec, placement=self.placement,
                          hash_frames=False)
            frames, clip.frames = clip.frames, None
            fd = shared_frames.write(frames)
            try:
                with self.lock:
                    self.conn.send(("done", job, clip, frames.shape))
                    send_handle(self.conn, fd, os.getppid())
            finally:
                os.close(fd)
        except CosmosError as exc:
            self._send(("error", job, exc))
        except Exception as exc:  # noqa: BLE001 - a bug here is the server's 500, as in-process
            log.exception("decode process job failed")
            self._send(("error", job, RuntimeError(f"{type(exc).__name__}: {exc}")))
        finally:
            self.cancels.pop(job, None)

    def _send(self, msg) -> None:
        with self.lock:
            self.conn.send(msg)
