"""CPU cores lent to clips NVDEC would queue (app/ingest/placement.py): a clip borrows cores only when
the CPU would finish it sooner than the NVDEC work queued before it, within the core budget; such a
clip's frames are the CPU decoder's, bit for bit, and the overflow is counted."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app import metrics
from app.errors import MediaTimeoutError
from app.ingest.cores import CoreScheduler, host_cores
from app.ingest.options import default_options
from app.ingest.pipeline import ingest, record
from app.ingest.placement import Placement, overflow_budget
from tests.ingest import clips as gen
from tests.ingest.conftest import make_settings

W = 250 * 1920 * 1080 / 1e6  # a 1080p clip's span of 250 frames, in frame-megapixels


def test_head_of_the_queue_waits_for_nvdec_and_the_tail_borrows():
    cores = CoreScheduler(total=16)
    pl = Placement(budget=8, slots=8, cores=cores)
    pl.slot_begin(8 * W)  # every slot busy
    tickets = [pl.enqueue(W) for _ in range(24)]
    # the first in line waits a fraction of a second for a slot: cheaper than the CPU
    assert pl.borrow(tickets[0], parts=2) == 0
    # the last has 23 clips' work before it: two cores finish it first
    assert pl.borrow(tickets[-1], parts=2) == 2
    assert cores.free == 14 and pl.lent == 2
    assert pl.borrow(tickets[-1], parts=2) == 0  # it left the queue when it got its cores
    pl.give_back(2)
    assert cores.free == 16 and pl.lent == 0


def test_the_budget_bounds_what_is_lent():
    cores = CoreScheduler(total=16)
    pl = Placement(budget=3, slots=8, cores=cores)
    pl.slot_begin(8 * W)
    tickets = [pl.enqueue(W) for _ in range(40)]
    got = [pl.borrow(t, parts=2) for t in reversed(tickets)]
    assert sum(got) == 3 and max(got) == 2  # 2 then 1, then nothing until they come back
    assert Placement(budget=0, slots=8, cores=cores).borrow(
        Placement(budget=0, slots=8, cores=cores).enqueue(W), 1) == 0


def test_no_core_is_taken_from_decodes_that_wait_for_one():
    cores = CoreScheduler(total=2)
    with cores.hold(2, deadline=time.monotonic() + 5):
        assert cores.try_take(1) == 0
    assert cores.try_take(4) == 2


def test_costs_are_learned_from_the_decodes():
    pl = Placement(budget=4, slots=8, cores=CoreScheduler(total=4))
    before = pl.nvdec_wait_s(0.0, W)
    pl.slot_begin(W)
    pl.slot_end(W, slot_s=W * pl.nvdec_s.value * 6)  # NVDEC much slower than assumed
    assert pl.nvdec_wait_s(0.0, W) > before
    cpu = pl.cpu_s.value
    pl.cpu_done(W, core_s=W * cpu / 2)
    assert pl.cpu_s.value < cpu


def test_default_budget_is_a_quarter_of_the_cores():
    assert overflow_budget(-1) == host_cores() // 4
    assert overflow_budget(0) == 0 and overflow_budget(5) == 5


class BusyNvdec:
    """NVDEC whose every slot stays taken: a clip can only wait or borrow CPU cores."""

    ready, threads = True, 1

    def try_acquire(self, wait_s: float = 0.0) -> bool:
        time.sleep(wait_s)
        return False


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return gen.bframes(tmp_path_factory.mktemp("place") / "b.mp4", n=60, w=640, h=368)


def test_a_queued_clip_decodes_on_lent_cores_with_the_cpu_frames(clip: Path):
    settings = make_settings(clip.parent, video_decoder="auto", video_nvdec_min_pixels=0)
    options = default_options()
    cores = CoreScheduler(total=4)
    pl = Placement(budget=2, slots=1, cores=cores)
    pl.slot_begin(1000.0)  # a long queue: the CPU is sooner
    before = metrics.NVDEC_OVERFLOWS._value.get()
    got = ingest(str(clip), options, settings, cores=cores, nvdec=BusyNvdec(), placement=pl)
    record(got)  # what the server records for every decode
    assert metrics.NVDEC_OVERFLOWS._value.get() == before + 1
    assert got.extra["decoder"] == "cpu" and 1 <= got.extra["decode_threads"] <= 2
    assert cores.free == 4 and pl.lent == 0  # given back
    ref = ingest(str(clip), options, make_settings(clip.parent, video_decoder="cpu"))
    assert got.frame_indices == ref.frame_indices
    assert np.array_equal(np.asarray(got.frames.data), np.asarray(ref.frames.data))


def test_a_clip_with_little_queued_before_it_keeps_waiting_for_nvdec(clip: Path):
    settings = make_settings(clip.parent, video_decoder="auto", video_nvdec_min_pixels=0)
    pl = Placement(budget=2, slots=8, cores=CoreScheduler(total=4))
    before = metrics.NVDEC_OVERFLOWS._value.get()
    t = time.monotonic()
    with pytest.raises(MediaTimeoutError):  # NVDEC never frees a slot, the CPU gets no time
        ingest(str(clip), default_options(), settings, deadline=time.monotonic() + 0.4,
               cores=CoreScheduler(total=4), nvdec=BusyNvdec(), placement=pl)
    assert time.monotonic() - t >= 0.4
    assert metrics.NVDEC_OVERFLOWS._value.get() == before and pl.lent == 0


def test_without_cores_to_lend_a_waiting_clip_sleeps_on_its_slot(clip: Path):
    """No placement (video_nvdec_cpu_cores=0): the wait is a few long sleeps on the slot, not a
    poll every 20 ms (each wake takes the GIL the burst's decode threads queue for)."""
    settings = make_settings(clip.parent, video_decoder="auto", video_nvdec_min_pixels=0)

    class Counting(BusyNvdec):
        calls = 0

        def try_acquire(self, wait_s: float = 0.0) -> bool:
            Counting.calls += 1
            return super().try_acquire(wait_s)

    with pytest.raises(MediaTimeoutError):
        ingest(str(clip), default_options(), settings, deadline=time.monotonic() + 0.6,
               cores=CoreScheduler(total=4), nvdec=Counting(), placement=None)
    assert 2 <= Counting.calls <= 5
