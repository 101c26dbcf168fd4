"""Start-up warm-up: what it sends the engine, and that readiness waits for it (fake engine).

That the real engine accepts the warm-up clip is checked against the session server's log in
tests/api/test_chat_e2e.py.
"""
from __future__ import annotations

import asyncio

import httpx

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine
from app.engine.warmup import synthetic_clip


class RecordingEngine(FakeEngine):
    def __init__(self, settings: Settings, fail: bool = False, **kw):
        super().__init__(settings, **kw)
        self.inputs = []
        self.fail = fail

    async def generate(self, inp):
        self.inputs.append(inp)
        if self.fail:
            raise RuntimeError("kernel exploded")
        async for step in super().generate(inp):
            yield step


def probe_until_ready(settings: Settings, engine: FakeEngine) -> list[tuple[int, str]]:
    """Every distinct /health/ready answer from start-up until 200."""
    app = create_app(settings, engine=engine)

    async def go():
        seen: list[tuple[int, str]] = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for _ in range(500):
                    r = await c.get("/health/ready")
                    answer = (r.status_code, r.json()["status"])
                    if not seen or seen[-1] != answer:
                        seen.append(answer)
                    if r.status_code == 200:
                        return seen
                    await asyncio.sleep(0.01)
        return seen

    return asyncio.run(go())


def test_ready_only_after_text_and_video_warm_up():
    settings = Settings(model="tiny", engine="fake")
    engine = RecordingEngine(settings, step_delay_s=0.05)
    seen = probe_until_ready(settings, engine)
    assert (503, "warming_up") in seen
    assert seen[-1] == (200, "ready")
    assert [len(i.videos) for i in engine.inputs] == [0, 1]
    video = engine.inputs[1]
    assert video.prompt.count("<video>") == 1
    assert video.sampling.max_tokens == 2 and video.sampling.ignore_eos
    assert video.sampling.temperature == 0.0


def test_failed_warm_up_still_serves():
    settings = Settings(model="tiny", engine="fake")
    engine = RecordingEngine(settings, fail=True)
    seen = probe_until_ready(settings, engine)
    assert seen[-1] == (200, "ready")
    assert len(engine.inputs) == 1  # the first failure ends the warm-up


def test_warm_up_can_be_turned_off():
    settings = Settings(model="tiny", engine="fake", warmup_on_start=False)
    engine = RecordingEngine(settings, step_delay_s=0.05)
    seen = probe_until_ready(settings, engine)
    assert seen[-1] == (200, "ready")
    assert (503, "warming_up") not in seen
    assert engine.inputs == []


def test_synthetic_clip_is_a_valid_even_clip_with_time_metadata():
    clip = synthetic_clip()
    assert clip.frames.shape == (4, 224, 224, 3)
    assert clip.frames.dtype.name == "uint8"
    assert clip.grid_thw == (2, 16, 16) and clip.vision_tokens == 128
    assert len({clip.frames[i].tobytes() for i in range(4)}) == 4  # frames differ: motion
    meta = clip.vllm_metadata()
    assert meta["fps"] == 2.0 and meta["total_num_frames"] == 4 and meta["duration"] == 2.0
    assert meta["do_sample_frames"] is False
