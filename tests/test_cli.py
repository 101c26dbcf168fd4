"""`cosmos-serve serve` as an operator runs it: Ctrl-C (SIGINT) and `docker stop` / Kubernetes
(SIGTERM) shut it down gracefully, with the signal's exit status and no traceback. uvicorn
re-raises the signal after its shutdown, so SIGTERM ends the process by that signal."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from app.dev.demo import wait_ready
from tests.conftest import REPO, free_port


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_serve_stops_cleanly_on_a_signal(sig, code):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--engine", "fake", "--model", "fake",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, timeout_s=60)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, out
    assert "Application shutdown complete" in out
    assert "Traceback" not in out
