"""How many CPU cores decoding may use, and how they are shared among the decodes running.

`os.cpu_count()` is the machine's count; a container limited by a CPU quota (Kubernetes
`limits.cpu`) or a cpuset sees the host's cores there, and sizing threads to those
oversubscribes the few it may use. The quota and the affinity mask both count here.

Throughput and latency pull apart: FFmpeg's frame threads scale poorly (a 1080p clip took
1.8 s on one core and 312 ms on 16 threads, an H200 host, 2026-12-01: 5 core-seconds of work
for 1.8 of decoding), while separate decodes, or separate keyframe intervals of one clip, share
nothing and scale with the cores. `CoreScheduler` hands the cores out in arrival order:

- a decode with nobody waiting behind it takes every free core (its keyframe intervals side by
  side, then frame threads): a lone request's latency;
- with others waiting, it takes only as many as it uses well, one per keyframe-interval part:
  a camera clip (a keyframe a second) still runs 10 parts at once and is done in a tenth of the
  time, so clips finish one after another and the engine starts on the first while the rest
  decode (a burst's wall time approaches max(decode, GPU), not their sum); a clip that cannot
  be split runs on one core beside others (many single-threaded decodes: the most throughput);
- a decode waits only while no core is free.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from app.errors import DecodeCancelledError, MediaTimeoutError


def _cgroup_quota() -> float | None:
    """CPUs the cgroup's quota allows (v2 `cpu.max`, else v1 CFS), or None if unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        base = Path("/sys/fs/cgroup/cpu")
        quota = int((base / "cpu.cfs_quota_us").read_text())
        period = int((base / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


@functools.cache
def host_cores() -> int:
    """Cores this process may run on: the affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota:
        n = min(n, math.ceil(quota))
    return max(1, n)


def decode_workers(setting: int) -> int:
    """Decodes that may run at once: the setting, or (0) one per core."""
    return setting or host_cores()


class CoreScheduler:
    """The cores decodes may use, held by one decode at a time each, handed out first come,
    first served. `queued`: decodes submitted and not yet asking (the server's pool queue)."""

    def __init__(self, total: int | None = None, queued: Callable[[], int] = lambda: 0):
        self.total = total or host_cores()
        self.free = self.total
        self._queued = queued
        self._waiting: collections.deque = collections.deque()
        self._cond = threading.Condition()

    def saturated(self) -> bool:
        """No core free, or decodes waiting for one: the CPU is the bottleneck."""
        return self.free < 1 or bool(self._waiting) or self._queued() > 0

    @contextlib.contextmanager
    def hold(self, parts: int, *, deadline: float,
             cancel: threading.Event | None = None) -> Iterator[int]:
        """Cores for one decode whose clip splits into `parts` independent parts (1: cannot be
        split); yields how many it got, at least one."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while self._waiting[0] is not ticket or self.free < 1:
                    if cancel is not None and cancel.is_set():
                        raise DecodeCancelledError("nobody waits for this video any more")
                    if time.monotonic() > deadline:
                        raise MediaTimeoutError("no CPU core was free for the decode within the "
                                                "time limit (video_decode_timeout_s)")
                    self._cond.wait(0.05)
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may be at the head now
            behind = len(self._waiting) + self._queued()
            got = min(self.free, self.total if not behind else max(1, parts))
            self.free -= got
        try:
            yield got
        finally:
            with self._cond:
                self.free += got
                self._cond.notify_all()

    def try_take(self, want: int) -> int:
        """Up to `want` cores now, without waiting and without passing decodes that wait for
        one (0 if none is free); give them back with `put_back`."""
        with self._cond:
            if self._waiting or self.free < 1:
                return 0
            got = min(self.free, max(1, want))
            self.free -= got
            return got

    def put_back(self, n: int) -> None:
        with self._cond:
            self.free += n
            self._cond.notify_all()
