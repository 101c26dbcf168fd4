"""NVDEC decode (app/ingest/nvdec.py) against the CPU decoder, and the choice between them.

The GPU tests run where NVDEC starts (an NVIDIA GPU with its driver) and skip with the reason
elsewhere; the fallback and configuration tests run everywhere.

Pixel tolerance (stated, measured on an H200; docs/performance.md, "NVDEC"): NVDEC's YUV
samples are the CPU decoder's (H.264/HEVC decoding is bit-exact by the standard), but the GPU
converts at full size and resizes with torch's antialiased bicubic, as the reference
(qwen-vl-utils with torchvision) does, while the CPU path scales the YUV planes with swscale
first. So frame selection, sizes, timestamps and token counts are identical, and pixels differ
by at most MEAN_TOL levels on average and P99_TOL levels at the 99th percentile.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.ingest.nvdec import Nvdec, host_supports
from app.ingest.pipeline import ingest, record
from app.ingest.types import VideoOptions
from tests.conftest import REPO
from tests.ingest.conftest import make_settings

MEAN_TOL = 1.5  # levels of 255, mean absolute difference per clip
P99_TOL = 12  # levels of 255, 99th percentile of the absolute difference

BUDGETS = {"81920": dict(min_pixels=4 * 28 * 28, max_pixels=81_920, total_pixels=10**9),
           "default": dict(min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28,
                           total_pixels=6_422_528)}


def options(budget: str = "81920") -> VideoOptions:
    return VideoOptions(fps=4.0, nframes=None, min_frames=4, max_frames=768, **BUDGETS[budget])


@pytest.fixture(scope="module")
def nvdec() -> Nvdec:
    problem = host_supports()
    if problem:
        pytest.skip(f"no NVDEC here: {problem}")
    n = Nvdec(0, 8)
    n.start()  # on a host with the driver, a failure here is a failure
    return n


def both(path: Path, nvdec: Nvdec, budget: str = "81920", **overrides):
    settings = make_settings(path.parent, **overrides)
    cpu = ingest(str(path), options(budget), settings)
    gpu = ingest(str(path), options(budget), settings.model_copy(
        update={"video_decoder": "nvdec"}), nvdec=nvdec)
    return cpu, gpu


def assert_same_frames(cpu, gpu) -> dict:
    assert gpu.frame_indices == cpu.frame_indices
    assert gpu.timestamps_s == cpu.timestamps_s
    assert gpu.frames.shape == cpu.frames.shape and gpu.frames.dtype == np.uint8
    assert gpu.vision_tokens == cpu.vision_tokens
    diff = np.abs(gpu.frames.astype(np.int16) - cpu.frames.astype(np.int16))
    stats = {"mean": float(diff.mean()), "p99": float(np.percentile(diff, 99)),
             "max": int(diff.max())}
    print(f"NVDEC vs CPU: {stats}")
    assert stats["mean"] <= MEAN_TOL and stats["p99"] <= P99_TOL, stats
    return stats


@pytest.mark.parametrize("budget", ["81920", "default"])
@pytest.mark.parametrize("name", ["drv_cr1_sample_4fps.mp4", "drv_predict1_dashcam_batch4.mp4",
                                  "drv_transfer1_av_rgb_dusk_9s.mp4",
                                  "edge_torchcodec_hevc_frame_numbers.mp4",
                                  "edge_torchcodec_av1_testsrc.mkv"])
def test_real_clips_match_the_cpu_decoder(nvdec, real_clips, name, budget):
    if name not in real_clips:
        pytest.skip(f"{name} not in the media folder")
    cpu, gpu = both(real_clips[name], nvdec, budget)
    # NVDEC takes H.264 and HEVC from 144x144; the 128x128 HEVC and the AV1 clip (libdav1d) stay
    # on the CPU, by choice and not by a fallback.
    on_gpu = name.startswith("drv_")
    assert gpu.extra["decoder"] == ("nvdec" if on_gpu else "cpu") and cpu.extra["decoder"] == "cpu"
    assert_same_frames(cpu, gpu)


def test_frames_reach_host_memory_page_locked(nvdec, real_clips):
    # What vLLM's processor reads back to the GPU: DMA both ways, no pageable staging.
    import torch

    name = "drv_cr1_sample_4fps.mp4"
    if name not in real_clips:
        pytest.skip(f"{name} not in the media folder")
    _, gpu = both(real_clips[name], nvdec)
    assert gpu.extra["decoder"] == "nvdec" and gpu.extra["rotation"] == 0
    assert torch.from_numpy(gpu.frames).is_pinned()


@pytest.mark.parametrize("clip", ["bframes.mp4", "rotated90.mp4", "rotated-90.mp4",
                                  "rotated180.mp4", "fullrange.mp4", "vfr.mp4", "uhd.mp4"])
def test_generated_clips_match_the_cpu_decoder(nvdec, clip_dir, clip):
    # B-frame pyramids, display rotation, full-range luma, variable frame rate, 4K.
    cpu, gpu = both(clip_dir / clip, nvdec)
    assert gpu.extra["decoder"] == "nvdec"
    assert gpu.extra["rotation"] == cpu.extra["rotation"]
    assert_same_frames(cpu, gpu)


def test_keyframe_interval_parts_give_the_frames_of_one_decoder(nvdec, tmp_path):
    from tests.ingest import clips as gen

    # 720p, a keyframe every 30 frames, B-frame pyramids: 3 parts worth a decoder each.
    path = str(gen.encode(tmp_path / "gop30.mp4", [gen.barcode(i, 1280, 720) for i in range(90)],
                          options={"x264-params": "keyint=30:min-keyint=30:scenecut=0:bframes=3:"
                                                  "b-adapt=0", "preset": "ultrafast"}))
    settings = make_settings(tmp_path, video_decoder="nvdec")
    split = ingest(path, options(), settings, nvdec=nvdec)
    one = ingest(path, options(), settings.model_copy(update={"video_decode_split": False}),
                 nvdec=nvdec)
    assert split.extra["decoder"] == one.extra["decoder"] == "nvdec"
    assert split.extra["decode_parts"] > 1 and one.extra["decode_parts"] == 1
    assert np.array_equal(split.frames, one.frames)


def test_a_lone_clip_splits_into_at_most_max_decoders_parts(nvdec, tmp_path):
    from tests.ingest import clips as gen

    # 720p: enough decoded pixels for more than two parts (a 360p clip is one part's worth).
    path = str(gen.encode(tmp_path / "gop10.mp4", [gen.barcode(i, 1280, 720) for i in range(90)],
                          options={"x264-params": "keyint=10:min-keyint=10:scenecut=0",
                                   "preset": "ultrafast"}))
    settings = make_settings(tmp_path, video_decoder="nvdec")
    full = ingest(path, options(), settings, nvdec=nvdec)
    kept = nvdec.max_decoders
    nvdec.max_decoders = 2
    try:
        two = ingest(path, options(), settings, nvdec=nvdec)
    finally:
        nvdec.max_decoders = kept
    assert full.extra["decode_parts"] > 2 and two.extra["decode_parts"] == 2
    assert np.array_equal(full.frames, two.frames)


def test_nvdec_decodes_a_burst_side_by_side(nvdec, real_clips):
    from concurrent.futures import ThreadPoolExecutor

    path = real_clips.get("drv_transfer1_av_rgb_dusk_9s.mp4")
    if path is None:
        pytest.skip("drv_transfer1_av_rgb_dusk_9s.mp4 not in the media folder")
    settings = make_settings(path.parent, video_decoder="nvdec")
    want = ingest(str(path), options(), settings, nvdec=nvdec).frames
    with ThreadPoolExecutor(8) as pool:
        clips = list(pool.map(lambda _: ingest(str(path), options(), settings, nvdec=nvdec),
                              range(8)))
    assert all(c.extra["decoder"] == "nvdec" and np.array_equal(c.frames, want) for c in clips)


# --- everywhere: the fallback and the settings -------------------------------------------------

def test_blocking_sync_is_the_context_s_wait_mode(nvdec):
    # In a process of its own: the flag must be set before the context exists.
    code = ("import ctypes; from app.ingest.nvdec import Nvdec, _cuda\n"
            "n = Nvdec(0, 1, blocking_sync={on}); n.start(); n.bind_thread()\n"
            "f = ctypes.c_uint(); _cuda().cuCtxGetFlags(ctypes.byref(f)); print(f.value & 7)")
    modes = [subprocess.run([sys.executable, "-c", code.format(on=on)], cwd=REPO, text=True,
                            capture_output=True, timeout=120) for on in (True, False)]
    assert [m.returncode for m in modes] == [0, 0], [m.stderr[-2000:] for m in modes]
    assert int(modes[0].stdout.split()[-1]) == 4  # CU_CTX_SCHED_BLOCKING_SYNC
    assert int(modes[1].stdout.split()[-1]) != 4


def test_clips_decoding_together_share_the_nvdec_decoders():
    n = Nvdec(0, max_decodes=4, threads=1, max_decoders=6)  # no CUDA is touched
    assert n.try_acquire()
    assert (n.parts(12), n.parts(3)) == (6, 3)  # alone: its intervals, up to max_decoders
    assert n.try_acquire()
    assert n.parts(12) == 3
    assert n.try_acquire() and n.try_acquire() and not n.try_acquire()  # 4 slots
    assert n.parts(12) == 1
    for _ in range(4):
        n.release()
    assert n.try_acquire() and n.parts(12) == 6


def test_an_nvdec_error_gives_the_clip_to_the_cpu(clip_dir):
    from app import metrics

    broken = Nvdec(0, 1)
    broken.ready = True  # never started: its first CUDA call fails, on any host
    settings = make_settings(clip_dir, video_decoder="nvdec")
    before = metrics.NVDEC_FALLBACKS._value.get()
    clip = ingest(str(clip_dir / "bframes.mp4"), options(), settings, nvdec=broken)
    record(clip)  # what the server records for every decode
    want = ingest(str(clip_dir / "bframes.mp4"), options(), settings)
    assert clip.extra["decoder"] == "cpu" and np.array_equal(clip.frames, want.frames)
    assert metrics.NVDEC_FALLBACKS._value.get() == before + 1
    assert broken.try_acquire()  # its slot was given back


def test_serve_refuses_nvdec_where_there_is_none():
    if host_supports() is None:
        pytest.skip("this host has NVDEC")
    out = subprocess.run([sys.executable, "-m", "app", "serve", "--engine", "fake",
                          "--model", "tiny", "--video-decoder", "nvdec"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "video_decoder=nvdec" in out.stderr and "auto or cpu" in out.stderr


def test_auto_serves_and_reports_the_decoder_in_metrics(live, media_dir):
    import httpx

    from app.engine.fake import FakeEngine
    from tests.api.test_chat_e2e import data_url, video_messages

    clip = media_dir / "drv_cr1_sample_4fps.mp4"  # 1008x560: auto takes it to NVDEC from 0 px
    with live(FakeEngine(), video_nvdec_min_pixels=0) as srv:
        before = {d: _decodes(srv, d) for d in ("cpu", "nvdec")}
        fallbacks = srv.metric("cosmos_ingest_nvdec_fallbacks_total")
        r = httpx.post(srv.url + "/v1/chat/completions", timeout=120,
                       json={"model": "tiny", "max_tokens": 8,
                             "messages": video_messages(data_url(clip))})
        assert r.status_code == 200, r.text
        ran = "nvdec" if host_supports() is None else "cpu"
        deadline = time.monotonic() + 5
        while _decodes(srv, ran) != before[ran] + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _decodes(srv, ran) == before[ran] + 1
        assert srv.metric("cosmos_ingest_nvdec_fallbacks_total") == fallbacks


def _decodes(srv, decoder: str) -> float:
    import httpx

    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith(f'cosmos_ingest_decodes_total{{decoder="{decoder}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
