"""A fine-tune as training leaves it (config and weights, plus the `cosmos-serve.yaml` written
by `cosmos-serve profile from-training`), served with no flag but `--processor`, answers through
the `openai` client with the training pipeline's prompt: the same prompt tokens as cosmos-rl's
`create_conversation` + qwen-vl-utils + the HF processor build, and the same frames."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from qwen_vl_utils import vision_process as vp

from tests.conftest import MEDIA, REPO
from tests.engine_servers import POOL, Serve, need, once, plan, tiny_checkpoint
from tests.profiles.official import create_conversation

pytestmark = pytest.mark.engine
DATA = REPO / "tests" / "data" / "profiles"
CLIPS = ["drv_transfer1_av_rgb_dusk_9s.mp4", "drv_cr1_sample_4fps.mp4"]
QUESTION = "What is the weather?\nA: Clear\nB: Rain\nC: Snow\nD: Fog"


@once
def _finetune() -> Path:
    d = POOL.mktemp("finetune")
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (d / name).symlink_to(tiny_checkpoint() / name)
    out = subprocess.run([sys.executable, "-m", "app", "profile", "from-training",
                          str(DATA / "cookbook_sft_config.toml"), "--eval-config",
                          str(DATA / "cookbook_eval_config.yaml"), "-o",
                          str(d / "cosmos-serve.yaml")], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return d


@pytest.fixture(scope="module")
def finetune(tiny_model) -> Path:
    return _finetune()


def test_serve_refuses_a_checkpoint_without_processor_files(finetune):
    out = subprocess.run([sys.executable, "-m", "app", "serve", "--model", str(finetune)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "preprocessor_config.json" in out.stderr and "--processor" in out.stderr


def _ft_server(tmp: Path) -> Serve:
    return Serve(["--model", str(_finetune()), "--processor", str(tiny_checkpoint()),
                  "--enforce-eager", "--max-model-len", "16384", "--cpu-kv-cache-gib", "1",
                  "--allowed-local-media-dirs", str(MEDIA)], tmp / "server.log")


@pytest.fixture(scope="module")
def ft_server(finetune, tiny_model, media_dir):
    yield need("finetune").base_url
    POOL.release("finetune")


plan("finetune", ft_server, _ft_server, rank=7)  # started ahead (tests/engine_servers.py)


def training_pipeline(processor, path: Path, system_prompt: str) -> tuple[int, int]:
    """(prompt tokens, frames) as cosmos-rl builds a training sample of this clip; the minimum
    is lowered to max_pixels, as the qwen-vl-utils the recipe trained with let the max win."""
    vp.FORCE_QWENVL_VIDEO_READER = "decord"
    vp.get_video_reader_backend.cache_clear()
    video, sample_fps = vp.fetch_video({"video": str(path), "fps": 1, "max_pixels": 81_920,
                                        "min_pixels": 81_920},
                                       return_video_sample_fps=True)
    conv = create_conversation(system_prompt=system_prompt, user_prompt=QUESTION,
                               videos=[str(path)])
    text = processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    frames = video.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    out = processor(text=[text], videos=[frames], videos_kwargs={
        "do_sample_frames": False, "video_metadata": [{"fps": sample_fps,
                                                       "total_num_frames": len(frames),
                                                       "frames_indices": list(range(len(frames)))}]},
        return_tensors="np")
    return int(out["input_ids"].shape[1]), len(frames)


@pytest.mark.parametrize("name", CLIPS)
def test_finetune_is_served_as_trained(ft_server, media_dir, tiny_model, name):
    from openai import OpenAI
    from transformers import AutoProcessor

    from app.profiles import load_profile

    client = OpenAI(base_url=ft_server + "/v1", api_key="x", max_retries=0, timeout=300)
    model = client.models.list().data[0]
    assert model.model_extra["profile"]["values"]["fps"] == 1
    assert model.model_extra["profile"]["values"]["temperature"] == 0.0
    # The client asks plainly (text first, no system prompt); the profile does the rest.
    r = client.chat.completions.create(model=model.id, max_tokens=2, messages=[
        {"role": "user", "content": [{"type": "text", "text": QUESTION}, {
            "type": "video_url", "video_url": {"url": (media_dir / name).as_uri()}}]}])
    system = load_profile("cookbook-sft")[1].system_prompt
    tokens, frames = training_pipeline(AutoProcessor.from_pretrained(tiny_model),
                                       media_dir / name, system)
    assert r.usage.prompt_tokens == tokens
    seen = httpx.post(ft_server + "/v1/video/inspect",
                      json={"url": (media_dir / name).as_uri()}, timeout=60).json()
    assert seen["num_frames"] == frames
