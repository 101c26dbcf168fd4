"""Decode processes (video_decode_processes): the same frames as the server's own threads, errors
that stay the clip's, a process that dies started again, and the server serving through them."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest

from app import metrics
from app.config import Settings
from app.engine.fake import FakeEngine
from app.errors import DecodeCancelledError, MediaError
from app.ingest.nvdec import host_supports
from app.ingest.options import build, request_options
from app.ingest.pipeline import ingest
from app.ingest.procpool import DecodeProcesses
from app.profiles.resolve import resolve
from tests.api.test_chat_e2e import data_url, video_messages
from tests.conftest import MEDIA

CLIPS = ["drv_transfer1_av_rgb_dusk_9s.mp4", "edge_torchcodec_hevc_frame_numbers.mp4",
         "drv_cr1_sample_4fps.mp4"]


def settings(**overrides) -> Settings:
    return Settings(**{"model": "tiny", "video_decoder": "cpu",
                       "allowed_local_media_dirs": (MEDIA,), **overrides})


def options(s: Settings):
    return build(resolve(s), request_options(None))


@pytest.fixture(scope="module")
def procs(media_dir):
    s = settings()
    pool = DecodeProcesses(s, 2, jobs=4)
    assert pool.start() is None  # video_decoder=cpu: no NVDEC to report on
    yield pool
    pool.close()


def run(pool: DecodeProcesses, source, s: Settings | None = None, cancel=None):
    s = s or settings()
    return pool.run(source, options(s), time.monotonic() + 60, cancel or threading.Event())


@pytest.mark.parametrize("name", CLIPS)
def test_frames_from_a_process_are_the_threads_frames(procs, media_dir, name):
    data = (media_dir / name).read_bytes()
    got = run(procs, data)
    want = ingest(data, options(settings()), settings())
    assert got.frames.shape == want.frames.shape and np.array_equal(got.frames, want.frames)
    assert got.frame_indices == want.frame_indices and got.sample_fps == want.sample_fps
    assert got.timestamps_s == want.timestamps_s and got.vision_tokens == want.vision_tokens
    assert got.extra["decoder"] == "cpu" and got.digest is None  # the server hashes its copy
    got.frames[0, 0, 0] = 7  # writable, as decoded frames always were


def test_a_path_is_decoded_where_it_lies(procs, media_dir):
    path = media_dir / CLIPS[0]
    assert np.array_equal(run(procs, str(path)).frames, run(procs, path.read_bytes()).frames)


def test_a_bad_video_is_the_clips_error_and_the_process_goes_on(procs, media_dir):
    with pytest.raises(MediaError) as err:
        run(procs, b"not a video at all" * 100)
    assert err.value.code == "invalid_media" and "readable video" in err.value.message
    assert all(p.alive for p in procs.procs)
    assert run(procs, (media_dir / CLIPS[0]).read_bytes()).num_frames > 0


def test_a_cancelled_clip_stops_and_the_process_goes_on(procs, media_dir):
    data = (media_dir / CLIPS[0]).read_bytes()
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    t = time.monotonic()
    with pytest.raises(DecodeCancelledError):
        run(procs, data, cancel=cancel)
    assert time.monotonic() - t < 1.0
    assert run(procs, data).num_frames > 0


def test_a_process_that_dies_is_started_again_and_its_clip_tried_once_more(procs, media_dir):
    data = (media_dir / CLIPS[0]).read_bytes()
    before = metrics.DECODE_PROCESS_RESTARTS._value.get()
    results: list = []
    worker = threading.Thread(target=lambda: results.append(run(procs, data)))
    worker.start()
    deadline = time.monotonic() + 10
    while not any(p.pending for p in procs.procs) and time.monotonic() < deadline:
        time.sleep(0.005)
    victim = next(p for p in procs.procs if p.pending)
    victim.process.kill()
    worker.join(60)
    assert results and results[0].num_frames > 0  # decoded by the other process
    deadline = time.monotonic() + 60
    while not all(p.alive for p in procs.procs) and time.monotonic() < deadline:
        run(procs, data)  # a pick notices the dead one and starts it again
        time.sleep(0.2)
    assert all(p.alive for p in procs.procs)
    assert metrics.DECODE_PROCESS_RESTARTS._value.get() == before + 1


def test_the_server_hands_a_burst_to_decode_processes(live, media_dir):
    """A lone clip is decoded by the server itself; clips arriving meanwhile go to the processes,
    with the tokens a server without processes gives, and the server records every decode."""
    url = data_url(media_dir / CLIPS[0])  # 1.5 s to decode here: the burst overlaps
    tokens = {}
    for n in (2, 0):
        with live(FakeEngine(), video_decoder="cpu", video_decode_processes=n) as srv:
            procs = srv.app.state.ingestor.procs
            assert (procs is not None) == bool(n)
            handed = []
            if procs is not None:
                real_run = procs.run
                procs.run = lambda *a: handed.append(1) or real_run(*a)  # counts, runs
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
            before = cpu_decodes(srv)

            def ask(end: float) -> int:  # each span its own clip: no shared decode
                r = client.chat.completions.create(
                    model="tiny", max_tokens=8, messages=video_messages(url),
                    extra_body={"video_end": end})
                return r.usage.prompt_tokens

            ends = [8.0, 7.5, 7.0, 6.5, 6.0]
            if n:
                tokens[n] = [ask(ends[0])]
                assert handed == []  # nothing else was decoding
                with ThreadPoolExecutor(4) as pool:
                    tokens[n] += list(pool.map(ask, ends[1:]))
                assert len(handed) >= 1
                with pytest.raises(openai.BadRequestError) as err:
                    client.chat.completions.create(
                        model="tiny", max_tokens=8,
                        messages=video_messages("data:video/mp4;base64," + "AAAA" * 300))
                assert err.value.body["code"] == "invalid_media"
            else:
                tokens[n] = [ask(end) for end in ends]
            # recorded by the server for every clip, wherever it was decoded
            assert cpu_decodes(srv) == before + len(ends)
    assert tokens[2] == tokens[0] and len(set(tokens[0])) > 1


def cpu_decodes(srv) -> float:
    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith('cosmos_ingest_decodes_total{decoder="cpu"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.skipif(host_supports() is not None, reason=f"no NVDEC here: {host_supports()}")
def test_nvdec_in_processes_gives_the_servers_nvdec_frames(media_dir):
    from app.ingest.nvdec import Nvdec

    s = settings(video_decoder="nvdec", video_nvdec_min_pixels=0)
    pool = DecodeProcesses(s, 2, jobs=4)
    try:
        assert pool.start() is None
        nvdec = Nvdec(0, 2)
        nvdec.start()
        # H.264 (NVDEC takes it); 128x128 HEVC (below NVDEC's HEVC minimum side of 144: the CPU)
        for name, decoder in (("drv_transfer1_av_rgb_dusk_9s.mp4", "nvdec"),
                              ("edge_torchcodec_hevc_frame_numbers.mp4", "cpu")):
            data = (media_dir / name).read_bytes()
            got = run(pool, data, s)
            want = ingest(data, options(s), s, nvdec=nvdec)
            assert (got.extra["decoder"], want.extra["decoder"]) == (decoder, decoder), \
                (name, got.extra, want.extra)
            diff = np.abs(got.frames.astype(int) - want.frames.astype(int))
            assert got.frames.shape == want.frames.shape and diff.max() == 0, \
                (name, got.frames.shape, want.frames.shape, diff.mean(), diff.max())
    finally:
        pool.close()


def test_decode_processes_that_cannot_start_leave_the_server_decoding(live, media_dir,
                                                                       monkeypatch):
    def no_start(self):
        raise RuntimeError("decode process 0 did not start within 300 s")

    monkeypatch.setattr(DecodeProcesses, "start", no_start)
    with live(FakeEngine(), video_decoder="cpu", video_decode_processes=2) as srv:
        assert srv.app.state.ingestor.procs is None  # dropped, logged; the server serves
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
        r = client.chat.completions.create(
            model="tiny", max_tokens=8,
            messages=video_messages(data_url(media_dir / "drv_cr1_sample_4fps.mp4")))
        assert r.usage.prompt_tokens > 1000
