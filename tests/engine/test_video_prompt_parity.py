"""The video the engine sees is the video Hugging Face's Qwen2.5-VL processor would build.

For the same sampled frames and fps, the server's prompt token count and the video grid must
equal what transformers' processor computes, and the temporal spacing it derives from our
metadata must be the real seconds between sampled frames (0.5 s per grid at 4 fps).
"""
from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest

from app.config import Settings
from app.ingest import VideoIngestor
from app.reasoning import REASONING_INSTRUCTION
from tests.conftest import SERVED_NAME

pytestmark = pytest.mark.engine
QUESTION = "What is the ego vehicle doing? A) stopping B) turning"
CLIPS = ["drv_cr1_sample_4fps.mp4", "drv_predict1_dashcam_batch4.mp4",
         "gen_mdn_stream_of_water_cc0.mp4"]


@pytest.fixture(scope="module")
def processor(tiny_model):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model)


def ingest(path) -> object:
    ingestor = VideoIngestor(Settings(allowed_local_media_dirs=(path.parent,)))

    async def go():
        try:
            return await ingestor.video(str(path), ingestor.options())
        finally:
            await ingestor.close()

    return asyncio.run(go())


def messages(video_url: str | None) -> list[dict]:
    video = ({"type": "video_url", "video_url": {"url": video_url}} if video_url
             else {"type": "video"})
    return [{"role": "system", "content": f"You are a helpful assistant.\n\n{REASONING_INSTRUCTION}"},
            {"role": "user", "content": [video, {"type": "text", "text": QUESTION}]}]


@pytest.mark.parametrize("name", CLIPS)
def test_prompt_tokens_and_grid_match_hf_processor(name, server, client, media_dir, processor):
    path = media_dir / name
    clip = ingest(path)
    text = processor.apply_chat_template(messages(None), tokenize=False,
                                         add_generation_prompt=True)
    # vLLM pops `do_sample_frames` from the metadata and hands the rest to transformers.
    meta = {k: v for k, v in clip.vllm_metadata().items() if k != "do_sample_frames"}
    hf = processor(text=[text], videos=[clip.frames], videos_kwargs={
        "video_metadata": [meta], "do_sample_frames": False}, return_tensors="np")

    assert hf["video_grid_thw"].tolist() == [list(clip.grid_thw)]
    # Temporal positions: one grid = 2 frames = 2 / sample_fps seconds of real time.
    assert np.allclose(hf["second_per_grid_ts"], 2.0 / clip.sample_fps)

    url = "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()
    r = client.chat.completions.create(model=SERVED_NAME, max_tokens=1, messages=messages(url))
    assert r.usage.prompt_tokens == hf["input_ids"].shape[1]

    seen = httpx.post(server.base_url + "/v1/video/inspect", json={"url": url}, timeout=60).json()
    assert (seen["num_frames"], seen["resized_height"], seen["resized_width"]) == \
        (clip.num_frames, clip.resized_height, clip.resized_width)
    assert seen["vision_tokens"] == int(np.prod(hf["video_grid_thw"][0])) // 4


def test_four_fps_sampling_picks_qwen_vl_utils_frames(media_dir):
    # 2 s at 30 fps sampled at 4 fps: 8 frames spread over the clip as qwen-vl-utils spreads
    # them (linspace over source frames), so sample_fps is 8 / 60 * 30 = 4.
    clip = ingest(media_dir / "drv_predict1_dashcam_batch4.mp4")
    assert clip.num_frames == 8 and clip.sample_fps == pytest.approx(4.0)
    expected = np.round(np.linspace(0, 59, 8)) / 30.0
    assert np.allclose(clip.timestamps_s, expected, atol=1e-3)
