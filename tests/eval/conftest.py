"""Servers the eval tests ask: the real server on the fake engine (fast; `engine` tests use the
real vLLM one from tests/conftest.py), and a flaky stand-in for transient failures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

DATA = REPO / "tests" / "data" / "eval"
API_KEY = "eval-test-key"


def run_eval(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`cosmos-serve eval ...` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "app", "eval", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="session")
def fake_server(media_dir: Path, tmp_path_factory):
    """`cosmos-serve serve --engine fake` with an API key: the real HTTP layer and ingest (the
    clips are decoded), a canned answer ("B") instead of a model."""
    from app.dev.demo import stop_process, wait_ready

    port = free_port()
    log_path = tmp_path_factory.mktemp("fake") / "server.log"
    cmd = [sys.executable, "-m", "app", "serve", "--engine", "fake", "--model", "fake-model",
           "--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY,
           "--allowed-local-media-dirs", str(media_dir), "--log-level", "warning"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, timeout_s=120)
        yield f"http://127.0.0.1:{port}"
    except Exception as exc:
        pytest.fail(f"fake server did not start: {exc}\n{log_path.read_text()[-3000:]}")
    finally:
        stop_process(proc)


SSE_ANSWER = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "Looks sunny."},
                  "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "B"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                  "guardrail": {"verdict": "flag", "findings": []}}]},
    {"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125,
                              "prompt_tokens_details": {"vision_tokens": 100}}},
]


class FlakyServer:
    """An OpenAI-shaped server whose chat endpoint fails as `plan` says, then answers "B".

    plan: a list consumed one entry per chat request: 429 / 503 (with Retry-After: 0), "reset"
    (the connection is closed without a response), "cut" (the stream stops before its last
    chunk), or an int status with an error body; when it is empty, the request succeeds.
    """

    def __init__(self, plan: list):
        self.plan = list(plan)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._json(200, {"object": "list", "data": [{"id": "flaky", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                step = server.plan.pop(0) if server.plan else None
                if step == "reset":
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(step, int):
                    self._json(step, {"error": {"message": f"status {step} from the test",
                                                "type": "x", "param": None, "code": None}},
                               {"Retry-After": "0"})
                    return
                chunks = SSE_ANSWER[:2] if step == "cut" else SSE_ANSWER
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for c in chunks:
                    self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                if step != "cut":
                    self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
