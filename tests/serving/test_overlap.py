"""Decoding the next requests' videos overlaps the engine's work on earlier ones: nothing between
ingestion and the engine (a lock, a one-thread pool, an await on another request) makes a
request wait for another's generation (issue 16, item 4), and nor does the SHA-256 of its
frames that the first chunk carries."""
from __future__ import annotations

import json
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.engine.fake import FakeEngine
from tests.conftest import MEDIA

CLIPS = ("drv_predict1_dashcam_batch4.mp4", "gen_mdn_stream_of_water_cc0.mp4",
         "phy_moviepy_airplane_failing_audio.mp4")


class HoldingEngine(FakeEngine):
    """Holds every request at its first step until released, noting which ones reached it."""

    def __init__(self):
        super().__init__()
        self.reached: list[int] = []  # frames of each request's video, in arrival order
        self.changed = threading.Condition()
        self.release = threading.Event()

    async def generate(self, inp):
        with self.changed:
            self.reached.append(inp.videos[0].num_frames)
            self.changed.notify_all()
        await asyncio.to_thread(self.release.wait, 60)
        async for step in super().generate(inp):
            yield step

    def wait_reached(self, n: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.reached) >= n, 60)


def ask(url: str, clip: str) -> int:
    body = {"model": "tiny", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": f"file://{MEDIA / clip}"}},
        {"type": "text", "text": "What happens?"}]}]}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=90).status_code


def test_later_videos_decode_and_reach_the_engine_while_earlier_ones_generate(live):
    engine = HoldingEngine()
    with live(engine, video_cache_bytes=0) as srv, ThreadPoolExecutor(len(CLIPS)) as pool:
        first = pool.submit(ask, srv.url, CLIPS[0])
        assert engine.wait_reached(1)
        # The first request is inside the engine and stays there: the others are decoded and
        # handed over all the same.
        rest = [pool.submit(ask, srv.url, clip) for clip in CLIPS[1:]]
        assert engine.wait_reached(len(CLIPS)) and not first.done()
        engine.release.set()
        assert [f.result() for f in (first, *rest)] == [200] * len(CLIPS)


class GateEngine(FakeEngine):
    """Opens `gate` when a request reaches it once armed (not the start's warm-up)."""

    def __init__(self, gate: threading.Event):
        super().__init__()
        self.gate, self.armed = gate, False

    async def generate(self, inp):
        if self.armed:
            self.gate.set()
        async for step in super().generate(inp):
            yield step


def test_the_frames_hash_runs_beside_the_engine_and_still_comes_first(live, monkeypatch):
    """The first chunk carries the frames' SHA-256, but the engine has the request before the
    hash is done: here the hash can only finish once the engine holds the request."""
    import hashlib
    from concurrent.futures import Future

    from app.ingest import pipeline

    gate, hashed = threading.Event(), []

    def after_the_engine(frames):
        out = Future()

        def finish():
            if not gate.wait(20):
                out.set_exception(RuntimeError("the engine waited for the frames' hash"))
                return
            hashed.append(hashlib.sha256(frames.data).hexdigest())
            out.set_result(hashed[-1])

        threading.Thread(target=finish, daemon=True).start()
        return out

    monkeypatch.setattr(pipeline, "frames_digest", after_the_engine)
    engine = GateEngine(gate)
    with live(engine, video_cache_bytes=0) as srv:
        engine.armed = True
        r = httpx.post(srv.url + "/v1/chat/completions", timeout=60, json={
            "model": "tiny", "stream": True, "messages": [{"role": "user", "content": [
                {"type": "video_url", "video_url": {"url": f"file://{MEDIA / CLIPS[0]}"}},
                {"type": "text", "text": "What happens?"}]}]})
    data = [json.loads(ln[6:]) for ln in r.text.splitlines()
            if ln.startswith("data: ") and ln != "data: [DONE]"]
    assert r.status_code == 200 and "error" not in data[-1]
    assert data[0]["media"][0]["frames_sha256"] == hashed[0]
    assert all("media" not in d for d in data[1:])
