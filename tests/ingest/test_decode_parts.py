"""A clip decoded in parts side by side (one decoder per run of keyframe intervals) gives the
frames, indices and sizes of one decoder, bit for bit; the core scheduler hands out threads as
documented in app/ingest/cores.py."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from app.errors import DecodeCancelledError, MediaTimeoutError
from app.ingest import VideoIngestor, cores
from app.ingest.decode import decode
from app.ingest.split import plan_split, whole
from app.ingest.options import default_options
from app.ingest.pipeline import ingest
from app.ingest.probe import probe
from app.ingest.sampling import make_plan
from tests.ingest import clips as gen
from tests.ingest.conftest import REAL_CLIPS, make_settings

FPS = 30


def moving(n: int, w: int, h: int) -> list[np.ndarray]:
    """Barcoded frames with a moving pattern in their top quarter, so that P- and B-frames
    carry real motion and residuals (the barcode is read in the middle row)."""
    x = np.arange(w, dtype=np.int32)[None, :]
    y = np.arange(h // 4, dtype=np.int32)[:, None]
    out = []
    for i in range(n):
        frame = gen.barcode(i, w, h).copy()
        frame[:h // 4, :, 1] = ((x + 3 * i) ^ (y - 2 * i)) & 0xFF
        frame[:h // 4, :, 2] = (x * y // 7 + 5 * i) & 0xFF
        out.append(frame)
    return out


def _x264(extra: str = "") -> dict:
    return {"x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0:bframes=3:b-adapt=0"
                          + extra}


# name -> writer of a 4 s clip with a keyframe every second (keyint = fps)
GOP_CLIPS = {
    "h264_closed_bframes.mp4": lambda p: gen.encode(p, moving(120, 320, 192), options=_x264()),
    # open GOP: non-IDR I-frames with leading B-frames that refer to the interval before
    "h264_open_gop.mp4": lambda p: gen.encode(p, moving(120, 320, 192),
                                              options=_x264(":open-gop=1")),
    # x265's default is an open GOP: CRA pictures and their RASL leading pictures
    "hevc_cra.mp4": lambda p: gen.encode(p, moving(120, 256, 144), codec="libx265", options={
        "x265-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0:log-level=error"}),
    "vp9.webm": lambda p: gen.encode(p, moving(120, 256, 144), codec="libvpx-vp9",
                                     options={"g": str(FPS), "keyint_min": str(FPS)}),
    "fullrange.mp4": lambda p: gen.encode(p, moving(120, 256, 144), pix_fmt="yuvj420p",
                                          options=_x264()),
    "rotated90.mp4": lambda p: gen.encode(p, moving(120, 256, 144), rotation=90,
                                          options=_x264()),
}


@pytest.fixture(scope="module")
def gop_dir(tmp_path_factory) -> Path:
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # encoders are chatty; later tests read libav's log
    try:
        d = tmp_path_factory.mktemp("gop1s")
        for name, write in GOP_CLIPS.items():
            write(d / name)
    finally:
        av.logging.set_level(level)
    return d


def both(path: Path, options=None, threads: int = 4):
    """The clip decoded by one decoder and in parts (no minimum part size)."""
    options = options or default_options()
    results = []
    for split in (False, True):
        p = probe(str(path), time.monotonic() + 60)
        try:
            plan = make_plan(p.seconds(p.frame_pts), p.fps, p.height, p.width, options)
            s = plan_split(p, plan, min_part_pixels=0) if split else None
            results.append((plan, decode(p, plan, deadline=time.monotonic() + 60,
                                         threads=threads if split else 1, split=s)))
        finally:
            p.close()
    return results


def assert_same(one, parts) -> None:
    (plan1, d1), (plan2, d2) = one, parts
    assert plan1.indices.tolist() == plan2.indices.tolist()
    assert d1.frames.shape == d2.frames.shape
    assert (d1.skipped, d1.rotation, d1.damaged) == (d2.skipped, d2.rotation, d2.damaged)
    assert np.array_equal(d1.frames, d2.frames)


@pytest.mark.parametrize("name", sorted(GOP_CLIPS))
def test_one_second_gop_clips_split_and_match(gop_dir, name):
    one, parts = both(gop_dir / name)
    # 4 s, a keyframe a second, 4 threads; an H.264 open GOP's non-IDR I-frames may be followed
    # by frames that refer across them: one decoder
    assert one[1].parts == 1 and parts[1].parts == (1 if name == "h264_open_gop.mp4" else 4)
    assert_same(one, parts)
    if not name.startswith("rotated"):  # the barcode says which source frame each one is
        assert [gen.read_barcode(f) for f in parts[1].frames] == parts[0].indices.tolist()


@pytest.mark.parametrize("name", sorted(GOP_CLIPS))
def test_one_decoder_skips_what_follows_the_last_wanted_frame_of_each_interval(gop_dir, name):
    """4 fps of 30: the last wanted frame of each 1 s interval is ~frame 22; the packets from
    there to the next random-access point are never fed, and the frames are the same."""
    p = probe(str(gop_dir / name), time.monotonic() + 60)
    try:
        plan = make_plan(p.seconds(p.frame_pts), p.fps, p.height, p.width, default_options())
        split = plan_split(p, plan, min_part_pixels=0)
        part = whole(split, {}, 1)
        skipped = part.last - part.first + 1 - sum(b - a + 1 for a, b in part.segments)
        if name == "h264_open_gop.mp4":  # one interval: nothing can be skipped
            assert len(part.segments) == 1 and skipped == 0
        else:  # HEVC CRA: leading pictures reach past the point, and those runs merge
            assert len(part.segments) >= 3 and skipped >= len(part.segments) - 1, part.segments
        gapped = decode(p, plan, deadline=time.monotonic() + 60, threads=1, split=split)
    finally:
        p.close()
    one, _ = both(gop_dir / name)
    assert_same(one, (plan, gapped))
    if not name.startswith("rotated"):
        assert [gen.read_barcode(f) for f in gapped.frames] == plan.indices.tolist()


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_fewer_threads_than_intervals_and_frame_threads_left_over(gop_dir, threads):
    one, parts = both(gop_dir / "h264_closed_bframes.mp4", threads=threads)
    assert parts[1].parts == min(threads, 4)
    assert_same(one, parts)


@pytest.mark.parametrize("extra", [{"start_s": 1.4}, {"start_s": 0.5, "end_s": 2.2},
                                   {"nframes": 40}, {"fps": 1.0}])
def test_spans_and_rates(gop_dir, extra):
    options = VideoIngestor(make_settings()).options(extra)
    for name in ("h264_closed_bframes.mp4", "hevc_cra.mp4"):
        assert_same(*both(gop_dir / name, options))


@pytest.mark.parametrize("name", REAL_CLIPS)
def test_real_clips_match(real_clips, name):
    if name not in real_clips:
        pytest.skip(f"{name} is not in ../shared/media")
    one, parts = both(real_clips[name])
    assert_same(one, parts)


def test_real_clips_with_several_keyframes_do_split(real_clips):
    # airplane: keyframes at packets 0, 81, 270; water: 0, 60; HEVC: 0, 2, 3, 5, 7
    names = [n for n in ("phy_moviepy_airplane_failing_audio.mp4",
                         "gen_mdn_stream_of_water_cc0.mp4",
                         "edge_torchcodec_hevc_frame_numbers.mp4") if n in real_clips]
    if not names:
        pytest.skip("no real clip with several keyframes in ../shared/media")
    for name in names:
        assert both(real_clips[name])[1][1].parts > 1, name


def test_small_decodes_are_not_split(gop_dir):
    p = probe(str(gop_dir / "h264_closed_bframes.mp4"), time.monotonic() + 60)
    plan = make_plan(p.seconds(p.frame_pts), p.fps, p.height, p.width, default_options())
    # 120 frames of 320x192 = 7.4 Mpx decoded: less than one part's worth by default
    assert plan_split(p, plan).max_parts == 1 and plan_split(p, plan, 0).max_parts == 4
    p.close()


def test_pipeline_identical_with_and_without_split(gop_dir):
    clip = gop_dir / "hevc_cra.mp4"
    a = ingest(str(clip), default_options(), make_settings(gop_dir, video_decode_split=False))
    b = ingest(str(clip), default_options(), make_settings(gop_dir, video_decode_threads=4))
    assert a.frames_sha256 == b.frames_sha256 and a.frame_indices == b.frame_indices
    assert a.extra["decode_parts"] == 1 and b.extra["decode_threads"] == 4


def test_burst_through_the_ingestor_gives_each_clip_its_frames(gop_dir):
    names = sorted(GOP_CLIPS)
    settings = make_settings(gop_dir, video_cache_bytes=0)
    want = {n: ingest(str(gop_dir / n), default_options(),
                      make_settings(gop_dir, video_decode_split=False)) for n in names}

    async def go():
        ing = VideoIngestor(settings)
        try:
            return await asyncio.gather(*[ing.video(str(gop_dir / n), ing.options()) for n in
                                          names * 3])
        finally:
            await ing.close()

    got = asyncio.run(go())
    assert [c.frames_sha256 for c in got] == [want[n].frames_sha256 for n in names * 3]


# --- the core scheduler ------------------------------------------------------------------------

def test_host_cores_counts_affinity_and_workers_default_to_it():
    assert 1 <= cores.host_cores() <= len(os.sched_getaffinity(0)) <= os.cpu_count()
    assert cores.decode_workers(0) == cores.host_cores() and cores.decode_workers(3) == 3


def test_lone_decode_takes_every_core_and_queued_ones_take_their_parts():
    queued = [0]
    s = cores.CoreScheduler(8, queued=lambda: queued[0])
    far = time.monotonic() + 60
    with s.hold(3, deadline=far) as n:
        assert n == 8 and s.free == 0  # nobody behind it: all of them (frame threads too)
    queued[0] = 5
    with s.hold(3, deadline=far) as a, s.hold(1, deadline=far) as b, \
            s.hold(10, deadline=far) as c:
        assert (a, b, c) == (3, 1, 4)  # its parts; one; what is left
    assert s.free == 8


def test_a_decode_waits_for_a_free_core_in_arrival_order():
    s = cores.CoreScheduler(2, queued=lambda: 1)
    far = time.monotonic() + 60
    order, started = [], threading.Event()
    first = s.hold(2, deadline=far)
    assert first.__enter__() == 2

    def later(name: str):
        started.set()
        with s.hold(1, deadline=far) as n:
            order.append((name, n))

    threads = [threading.Thread(target=later, args=(name,)) for name in "ab"]
    threads[0].start()
    started.wait()
    while not s._waiting:  # "a" is in line before "b" starts
        time.sleep(0.001)
    threads[1].start()
    while len(s._waiting) < 2:
        time.sleep(0.001)
    assert order == []  # no core free: both wait
    first.__exit__(None, None, None)
    for t in threads:
        t.join(10)
    assert [name for name, _ in order] == ["a", "b"] and s.free == 2


def test_waiting_for_cores_honours_cancel_and_deadline():
    s = cores.CoreScheduler(1)
    with s.hold(1, deadline=time.monotonic() + 60):
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(DecodeCancelledError):
            with s.hold(1, deadline=time.monotonic() + 60, cancel=cancel):
                pass
        with pytest.raises(MediaTimeoutError, match="video_decode_timeout_s"):
            with s.hold(1, deadline=time.monotonic() - 1):
                pass
    assert s.free == 1 and not s._waiting
