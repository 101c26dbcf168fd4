"""The Dockerfile's HEALTHCHECK, run here: it targets the readiness route, follows the configured
port (COSMOS_PORT or NIM_HTTP_API_PORT), and answers for the real app.
"""
from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from app.config import Settings
from tests.deploy.dockerfile import REPO, final_env, healthcheck_argv, route


# --- healthcheck ---------------------------------------------------------------------------------

def test_healthcheck_targets_the_readiness_route():
    argv, options = healthcheck_argv()
    (path,) = re.findall(r"http://127\.0\.0\.1:\{[^}]+\}(/[\w/]+)", " ".join(argv))
    assert route(path).endpoint.__name__ == "ready"
    # urlopen must give up before Docker kills the check.
    urlopen_timeout = float(re.search(r"timeout=(\d+)", " ".join(argv)).group(1))
    assert urlopen_timeout < float(options["timeout"].rstrip("s"))


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).seen.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_healthcheck(env_extra: dict[str, str]) -> int:
    argv, _ = healthcheck_argv()
    assert argv[0] == "python3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "NIM_"))}
    env.update(final_env(), PYTHONPATH=str(REPO), **env_extra)
    return subprocess.run([sys.executable, *argv[1:]], env=env, cwd=REPO, capture_output=True,
                          timeout=60).returncode


@pytest.mark.parametrize("port_var", ["COSMOS_PORT", "NIM_HTTP_API_PORT"])
def test_healthcheck_command_follows_the_configured_port(port_var):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ready)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Ready.seen.clear()
        _Ready.status = 200
        assert _run_healthcheck({port_var: str(port)}) == 0
        assert _Ready.seen == ["/health/ready"]
        _Ready.status = 503  # loading
        assert _run_healthcheck({port_var: str(port)}) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert _run_healthcheck({port_var: str(port)}) != 0  # nothing listening


def test_healthcheck_against_the_real_app():
    try:
        from app.api.app import create_app
    except ImportError as exc:
        pytest.skip(f"the app cannot be assembled in this checkout: {exc}")
    import uvicorn

    from app.engine.fake import FakeEngine

    port = _free_port()
    settings = Settings(engine="fake", host="127.0.0.1", port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, FakeEngine(settings)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        assert _run_healthcheck({"COSMOS_PORT": str(port)}) == 0
    finally:
        server.should_exit = True
        thread.join(timeout=30)
