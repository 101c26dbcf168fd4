"""The server's decode processes (`video_decode_processes`): each clip goes to the one with the
fewest clips in hand, which runs it exactly as the server's own threads would
(app/ingest/procworker.py) and hands back the frames by memfd (shared_frames.py).

The server's decode threads still bound how many clips decode at once, and each waits for its
clip here, which costs no GIL. A process that dies (FFmpeg crashing on a hostile file, the
kernel's OOM killer) is started again; its clips are each tried once more on another process,
and a clip that stops a process twice is refused as a bad video.
"""
from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import threading
import time
from concurrent.futures import Future, TimeoutError as FutureTimeout
from multiprocessing.reduction import recv_handle

from app import metrics
from app.config import Settings
from app.errors import DecodeCancelledError, MediaError, MediaTimeoutError
from app.ingest import procworker, shared_frames
from app.ingest.cores import host_cores
from app.ingest.types import VideoClip, VideoOptions

log = logging.getLogger(__name__)
_START_TIMEOUT_S = 300.0  # importing torch and starting NVDEC in a fresh interpreter


class ProcessDied(Exception):
    """The decode process stopped with this clip in hand."""


class _Proc:
    def __init__(self, settings: Settings, share: procworker.Share):
        ctx = multiprocessing.get_context("spawn")  # never fork a process that holds CUDA
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=procworker.main, args=(child, settings, share),
                                   name=f"cosmos-decode-{share.index}", daemon=True)
        self.process.start()
        child.close()
        self.share = share
        self.pending: dict[int, Future] = {}
        self.alive = True
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def wait_ready(self) -> str | None:
        """Blocks until the process has started (and NVDEC in it); its NVDEC failure or None."""
        if not self.conn.poll(_START_TIMEOUT_S):
            raise RuntimeError(f"decode process {self.share.index} did not start within "
                               f"{_START_TIMEOUT_S:g} s")
        _, failure = self.conn.recv()
        threading.Thread(target=self._read, name=f"cosmos-decode-{self.share.index}-reader",
                         daemon=True).start()
        return failure

    def submit(self, source: str | bytes, options: VideoOptions, deadline: float) \
            -> tuple[int, Future]:
        future: Future = Future()
        with self._lock:
            if not self.alive:
                raise ProcessDied("the decode process has stopped")
            job = next(self._ids)
            try:
                self.conn.send(("job", job, source, options, deadline))
            except OSError as exc:  # it died before its reader noticed
                self.alive = False
                raise ProcessDied(f"the decode process stopped ({exc})") from exc
            self.pending[job] = future
        return job, future

    def cancel(self, job: int) -> None:
        with self._lock:
            if self.alive and job in self.pending:
                try:
                    self.conn.send(("cancel", job))
                except OSError:
                    pass  # it died: its reader fails the clip

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
                if msg[0] == "done":
                    _, job, clip, shape = msg
                    clip.frames = shared_frames.read(recv_handle(self.conn), shape)
                    result = clip
                else:
                    _, job, result = msg
            except (EOFError, OSError):
                break
            with self._lock:
                future = self.pending.pop(job, None)
            if future is None:
                continue  # its waiter gave up (cancelled): the frames go with `result`
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        with self._lock:
            self.alive = False
            pending, self.pending = self.pending, {}
        self.process.join(5)
        why = f"the decode process stopped (exit code {self.process.exitcode})"
        for future in pending.values():
            future.set_exception(ProcessDied(why))

    def stop(self) -> None:
        with self._lock:
            if self.alive:
                try:
                    self.conn.send(None)
                except OSError:
                    pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


class DecodeProcesses:
    def __init__(self, settings: Settings, count: int, jobs: int):
        self.settings, self.count = settings, count
        self.shares = [procworker.Share(
            index=i, cores=max(1, host_cores() // count),
            nvdec_decodes=math.ceil(settings.video_nvdec_max_decodes / count),
            nvdec_decoders=math.ceil(settings.video_nvdec_max_decoders / count),
            jobs=jobs) for i in range(count)]
        self.procs: list[_Proc] = []
        self.ready = False
        self._lock = threading.Lock()
        self._restarting: set[int] = set()

    def start(self) -> str | None:
        """Start every process and wait for it; the NVDEC failure they report, or None."""
        self.procs = [_Proc(self.settings, share) for share in self.shares]
        failures = {p.wait_ready() for p in self.procs} - {None}
        self.ready = True
        return failures.pop() if failures else None

    def run(self, source: str | bytes, options: VideoOptions, deadline: float,
            cancel: threading.Event) -> VideoClip:
        """One clip, in a decode process (blocking: a server decode thread waits here)."""
        try:
            return self._once(source, options, deadline, cancel)
        except ProcessDied as exc:
            log.warning("%s with a clip in hand; trying the clip once more", exc)
        try:
            return self._once(source, options, deadline, cancel)
        except ProcessDied as exc:
            raise MediaError(f"the video stopped two decoders ({exc}); it was not decoded",
                             code="invalid_media") from exc

    def _once(self, source, options, deadline: float, cancel: threading.Event) -> VideoClip:
        proc = self._pick(deadline)
        job, future = proc.submit(source, options, deadline)
        while True:
            try:  # woken by the result; every 0.2 s to see a cancel (each wake takes the GIL,
                # which a burst's many waiting threads should not queue for at 20 Hz each)
                return future.result(timeout=0.2)
            except FutureTimeout:
                if cancel.is_set():
                    proc.cancel(job)  # it stops at its next packet; the result is dropped
                    raise DecodeCancelledError("nobody waits for this video any more") from None
                if time.monotonic() > deadline + 5.0:  # stuck inside one packet
                    proc.cancel(job)
                    raise MediaTimeoutError("decoding did not finish within the time limit "
                                            "(video_decode_timeout_s)") from None

    def _pick(self, deadline: float) -> _Proc:
        """The live process with the fewest clips in hand; a stopped one is started again in
        the background (the others take its clips meanwhile)."""
        while True:
            with self._lock:
                for i, proc in enumerate(self.procs):
                    if not proc.alive and i not in self._restarting:
                        self._restarting.add(i)
                        threading.Thread(target=self._restart, args=(i,), daemon=True).start()
                live = [p for p in self.procs if p.alive]
                if live:
                    return min(live, key=lambda p: len(p.pending))
            if time.monotonic() > deadline:
                raise MediaTimeoutError("no decode process was running within the time limit "
                                        "(video_decode_timeout_s)")
            time.sleep(0.05)

    def _restart(self, i: int) -> None:
        old = self.procs[i]
        metrics.DECODE_PROCESS_RESTARTS.inc()
        log.warning("decode process %d stopped (exit code %s); starting it again", i,
                    old.process.exitcode)
        try:
            new = _Proc(self.settings, self.shares[i])
            new.wait_ready()
            with self._lock:
                self.procs[i] = new
        except Exception:  # noqa: BLE001 - the next pick tries again
            log.exception("decode process %d could not be started again", i)
        finally:
            with self._lock:
                self._restarting.discard(i)

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
