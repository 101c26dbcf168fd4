"""The recipe's settings through the server (fake engine, real clips, real ingestion): per
request, per deployment and as a profile, with frame counts and sizes equal to qwen-vl-utils'
own math for the same clip."""
from __future__ import annotations

import av
import httpx
import pytest
from qwen_vl_utils import vision_process as vp

from app.engine.fake import FakeEngine
from tests.conftest import MEDIA

CLIPS = ["drv_cr1_sample_4fps.mp4", "drv_transfer1_av_rgb_dusk_9s.mp4",
         "drv_predict1_dashcam_batch4.mp4"]
RECIPE = {"fps": 1, "max_pixels": 81_920}


def expected(name: str) -> tuple[int, int, int]:
    """Frames, height, width as qwen-vl-utils computes them for fps 1 / max_pixels 81920, the
    minimum lowered to the maximum (what the recipe's qwen-vl-utils did)."""
    with av.open(str(MEDIA / name)) as c:
        s = c.streams.video[0]
        total, fps, h, w = s.frames, float(s.average_rate), s.height, s.width
    n = vp.smart_nframes({"fps": 1, "min_frames": 4, "max_frames": 768}, total_frames=total,
                         video_fps=fps)
    h2, w2 = vp.smart_resize(h, w, factor=28, min_pixels=81_920, max_pixels=81_920)
    return n, h2, w2


def chat(srv, name: str, **extra) -> dict:
    video = {"type": "video_url", "video_url": {"url": f"file://{MEDIA}/{name}"}}
    r = httpx.post(srv.url + "/v1/chat/completions", timeout=60, json={
        "model": "tiny", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Which? A) x B) y"}, video]}], **extra})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("name", CLIPS)
def test_recipe_settings_per_request(live, name):
    engine = FakeEngine()
    with live(engine) as srv:
        out = chat(srv, name, video_fps=1, video_max_pixels=81_920)
    clip = engine.last_input.videos[0]
    assert (clip.num_frames, clip.resized_height, clip.resized_width) == expected(name)
    assert out["usage"]["prompt_tokens_details"]["vision_tokens"] == clip.vision_tokens


def test_recipe_settings_per_deployment(live):
    engine = FakeEngine()
    with live(engine, video_fps=1, video_max_pixels=81_920) as srv:
        chat(srv, CLIPS[1])
        card = httpx.get(srv.url + "/v1/models").json()["data"][0]
    clip = engine.last_input.videos[0]
    assert (clip.num_frames, clip.resized_height, clip.resized_width) == expected(CLIPS[1])
    assert card["profile"]["values"]["min_pixels"] == 81_920
    assert card["profile"]["sources"]["max_pixels"] == "settings"


def test_cookbook_profile_asks_as_the_recipe_trained(live):
    engine = FakeEngine(script="B")
    with live(engine, profile="cookbook-sft") as srv:
        out = chat(srv, CLIPS[1])
        card = httpx.get(srv.url + "/v1/models").json()["data"][0]
        seen = httpx.post(srv.url + "/v1/video/inspect",
                          json={"url": f"file://{MEDIA}/{CLIPS[1]}"}).json()
    inp = engine.last_input
    assert "street-view CCTV footage" in inp.prompt and "<think>" not in inp.prompt
    assert inp.prompt.index("<video>") < inp.prompt.index("Which?")  # media first
    assert (inp.sampling.temperature, inp.sampling.repetition_penalty,
            inp.sampling.max_tokens) == (0.0, 1.0, 1024)
    assert out["choices"][0]["message"]["content"] == "B"
    assert card["profile"]["name"] == "cookbook-sft"
    assert card["profile"]["values"]["fps"] == 1
    assert seen["num_frames"] == expected(CLIPS[1])[0]
