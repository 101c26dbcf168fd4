"""VideoIngestor: options, limits, cache, single-flight, metrics."""
from __future__ import annotations

import asyncio
import time

import pytest

from app import metrics
from app.errors import ContextLengthError, InvalidRequestError, MediaError, MediaTimeoutError
from app.ingest import VideoIngestor, pipeline, service
from tests.ingest.conftest import make_settings


def sample(metric, suffix="_total", **labels) -> float:
    value = metrics.REGISTRY.get_sample_value(metric + suffix, labels or None)
    return value or 0.0


def run(settings, coro_fn):
    async def go():
        ingestor = VideoIngestor(settings)
        try:
            return await coro_fn(ingestor)
        finally:
            await ingestor.close()
    return asyncio.run(go())


def test_options_defaults_and_overrides(settings):
    ingestor = VideoIngestor(settings)
    o = ingestor.options(None)
    assert (o.fps, o.total_pixels, o.max_frames) == (4.0, 6_422_528, 768)
    o = ingestor.options({"fps": 2, "max_frames": None, "start_s": 1.5, "end_s": 3})
    assert (o.fps, o.max_frames, o.start_s, o.end_s) == (2.0, 768, 1.5, 3.0)


@pytest.mark.parametrize("overrides,param,text", [
    ({"fps": 0}, "video_fps", "greater than 0"),
    ({"fps": "fast"}, "video_fps", "number"),
    ({"max_frames": 700, "nframes": 10_000}, "video_nframes", "less than or equal"),
    ({"min_frames": 8, "max_frames": 6}, "video_min_frames", "above the maximum"),
    ({"max_pixels": 10**9}, "video_max_pixels", "limit is 602112"),
    ({"min_pixels": 10}, "video_min_pixels", "greater than or equal to 784"),
    ({"total_pixels": 1.5}, "video_total_pixels", "integer"),
    ({"start_s": 3, "end_s": 2}, "video_end", "greater"),
    ({"fps": float("nan")}, "video_fps", "finite"),
    ({"fps": 2, "nframes": 8}, "video_nframes", "not both"),
    ({"speed": 2}, "speed", "unknown")])
def test_options_rejected_with_param(settings, overrides, param, text):
    with pytest.raises(InvalidRequestError, match=text) as err:
        VideoIngestor(settings).options(overrides)
    assert err.value.param == param and err.value.status_code == 400


def test_cache_hit_decodes_once_and_shares_frames(clip_dir, settings, monkeypatch):
    url = str(clip_dir / "bframes.mp4")
    decodes = []
    real_decode = pipeline.decode
    monkeypatch.setattr(pipeline, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))

    async def go(ing):
        o = ing.options()
        hits0 = sample("cosmos_ingest_cache", result="hit")
        first = await ing.video(url, o)
        again = [await ing.video(url, o) for _ in range(5)]
        other = await ing.video(url, ing.options({"fps": 2}))
        return first, again[-1], other, sample("cosmos_ingest_cache", result="hit") - hits0

    first, again, other, hits = run(settings, go)
    assert not first.cache_hit and again.cache_hit and not other.cache_hit
    assert again.frames is first.frames and not again.frames.flags.writeable
    assert again.decode_s == 0.0 and hits == 5
    assert len(decodes) == 2  # the clip once per distinct option set, never for a hit


def test_lru_evicts_by_bytes(clip_dir):
    # Frames of this clip are 280x392 RGB (329,280 bytes) at any fps: 4, 6 and 12 frames for
    # fps 1, 2 and 4 are 1.3, 2.0 and 4.0 MB; a 6 MB budget must drop the oldest.
    settings = make_settings(clip_dir, video_cache_bytes=6_000_000)

    async def go(ing):
        o = ing.options()
        for fps in (1.0, 2.0, 4.0):  # three different keys
            await ing.video(str(clip_dir / "bframes.mp4"), ing.options({"fps": fps}))
        return len(ing.cache), ing.cache.nbytes, (await ing.video(
            str(clip_dir / "bframes.mp4"), ing.options({"fps": 1.0}))).cache_hit, o

    entries, nbytes, oldest_hit, _ = run(settings, go)
    assert entries == 2 and nbytes <= 6_000_000 and not oldest_hit


def test_concurrent_requests_share_one_decode(clip_dir, settings, monkeypatch):
    calls = []
    real = service.ingest

    def counting(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)  # keep the decode in flight while the others arrive
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "ingest", counting)

    async def go(ing):
        o = ing.options()
        return await asyncio.gather(*[ing.video(str(clip_dir / "vfr.mp4"), o)
                                      for _ in range(8)])

    clips = run(settings, go)
    assert len(calls) == 1
    assert sum(not c.cache_hit for c in clips) == 1
    assert all(c.frames is clips[0].frames for c in clips)
    assert sample("cosmos_ingest_decode_queue_depth", suffix="") == 0


def test_failures_are_not_cached(clip_dir, settings):
    async def go(ing):
        for _ in range(2):
            with pytest.raises(MediaError):
                await ing.video(str(clip_dir / "garbage.mp4"), ing.options())
        return len(ing.cache)

    errors0 = sample("cosmos_ingest_errors", code="invalid_media")
    assert run(settings, go) == 0
    assert sample("cosmos_ingest_errors", code="invalid_media") - errors0 == 2


def test_decode_time_limit(clip_dir):
    settings = make_settings(clip_dir, video_decode_timeout_s=1e-6)
    with pytest.raises(MediaTimeoutError, match="video_decode_timeout_s") as err:
        run(settings, lambda ing: ing.video(str(clip_dir / "bframes.mp4"), ing.options()))
    assert err.value.status_code == 400


def test_duration_limit_rejects_or_truncates(clip_dir):
    url = str(clip_dir / "bframes.mp4")  # 3 s
    with pytest.raises(MediaError, match="limit is 2 s \\(video_max_duration_s\\)") as err:
        run(make_settings(clip_dir, video_max_duration_s=2),
            lambda ing: ing.video(url, ing.options()))
    assert err.value.code == "video_too_long"
    clip = run(make_settings(clip_dir, video_max_duration_s=2),
               lambda ing: ing.video(url, ing.options({"start_s": 0.5, "end_s": 2.0})))
    assert clip.timestamps_s[0] >= 0.5
    clip = run(make_settings(clip_dir, video_max_duration_s=2, video_truncate_long=True),
               lambda ing: ing.video(url, ing.options()))
    assert max(clip.timestamps_s) <= 2.0


def test_metrics_per_request(clip_dir, settings):
    tokens0 = sample("cosmos_ingest_vision_tokens", suffix="_count")
    decodes0 = sample("cosmos_ingest_decode_seconds", suffix="_count")

    async def go(ing):
        for _ in range(3):
            await ing.video(str(clip_dir / "tiny.mp4"), ing.options())

    run(settings, go)
    assert sample("cosmos_ingest_vision_tokens", suffix="_count") - tokens0 == 3
    assert sample("cosmos_ingest_decode_seconds", suffix="_count") - decodes0 == 1
