"""Where one clip decodes: NVDEC or the CPU, chosen per clip from what each would cost now.

NVDEC is the better decoder for a large frame (on an H200 host a 1080p clip took 243 ms there
and 371 ms on 16 cores), but its engines have a ceiling (~2,480 frames/s of 1080p H.264, about
15 of the server's clips a second) that a burst reaches while most of the host's cores sit idle
(4.3 of 16 busy in a burst of 32, docs/performance.md). So a clip that would queue behind other
NVDEC work goes to the CPU instead when the CPU would finish it sooner, within a core budget
(`video_nvdec_cpu_cores`) that leaves the rest to NVDEC's feeding threads, the event loop and
vLLM's processing: CPU decodes taking every core slowed NVDEC's (2026-12-02: 9.4 clips/s mixed,
11.0 on NVDEC alone).

Both costs are learned from this server's own decodes (an exponential average of seconds per
frame-megapixel decoded: NVDEC slot-seconds, CPU core-seconds), starting from the H200 host's
figures, so a slower GPU or a busier host shifts the split by itself.
"""
from __future__ import annotations

import threading

from app.ingest.cores import CoreScheduler, host_cores
from app.ingest.probe import Probe
from app.ingest.sampling import Plan

# Priors, seconds per decoded frame-megapixel: NVDEC slot time (a 1080p clip held one of 8 slots
# ~0.53 s for ~250 frames in a burst) and one CPU core's time (1.8 core-s for 300 frames).
NVDEC_PRIOR_S = 0.0021 / 2.07
CPU_PRIOR_S = 0.0060 / 2.07
_ALPHA = 0.2  # weight of the newest decode in the averages


class Ewma:
    def __init__(self, prior: float):
        self.value = prior

    def add(self, x: float) -> None:
        if x > 0:
            self.value += _ALPHA * (x - self.value)


def overflow_budget(setting: int) -> int:
    """Cores CPU decodes may use beside a busy NVDEC: the setting, or (-1) a quarter of the
    cores (none on a host of fewer than 4)."""
    return host_cores() // 4 if setting < 0 else setting


def work(p: Probe, plan: Plan) -> float:
    """A clip's decode work in frame-megapixels: the frames of its span at the source size."""
    return max(1, plan.span_frames) * p.width * p.height / 1e6


class Placement:
    """The NVDEC queue as the CPU sees it, and the CPU cores lent to it."""

    def __init__(self, budget: int, slots: int, cores: CoreScheduler | None):
        self.budget, self.slots, self.cores = budget, max(1, slots), cores
        self.nvdec_s = Ewma(NVDEC_PRIOR_S)
        self.cpu_s = Ewma(CPU_PRIOR_S)
        self._waiting: dict[object, float] = {}  # work waiting for a slot, in arrival order
        self.running = 0.0  # work holding a slot
        self.lent = 0  # cores of the budget in use
        self._lock = threading.Lock()

    def nvdec_wait_s(self, ahead: float, w: float) -> float:
        """Seconds until NVDEC would have decoded work `w` with `ahead` queued before it (the
        clips holding a slot counted half done)."""
        rate = self.slots / self.nvdec_s.value  # frame-megapixels per second, all slots
        return (ahead + 0.5 * self.running + w) / rate

    def enqueue(self, w: float) -> object:
        ticket = object()
        with self._lock:
            self._waiting[ticket] = w
        return ticket

    def leave(self, ticket: object) -> None:
        with self._lock:
            self._waiting.pop(ticket, None)

    def borrow(self, ticket: object, parts: int) -> int:
        """Cores for this waiting clip on the CPU if it would finish there sooner than behind
        the NVDEC work queued before it (0: it keeps waiting). Never blocks; a clip given cores
        leaves the queue. Give them back with `give_back`."""
        with self._lock:
            free = self.budget - self.lent
            if free < 1 or self.cores is None or ticket not in self._waiting:
                return 0
            w, ahead = self._waiting[ticket], 0.0
            for t, other in self._waiting.items():
                if t is ticket:
                    break
                ahead += other
            want = min(free, max(1, parts))
            if w * self.cpu_s.value / want >= self.nvdec_wait_s(ahead, w):
                return 0
            got = self.cores.try_take(want)
            if got:
                self.lent += got
                del self._waiting[ticket]
            return got

    def give_back(self, got: int) -> None:
        if got:
            self.cores.put_back(got)
            with self._lock:
                self.lent -= got

    def slot_begin(self, w: float) -> None:
        with self._lock:
            self.running += w

    def slot_end(self, w: float, slot_s: float | None) -> None:
        with self._lock:
            self.running -= w
        if slot_s is not None:
            self.nvdec_s.add(slot_s / w)

    def cpu_done(self, w: float, core_s: float) -> None:
        self.cpu_s.add(core_s / w)
