"""One real-engine server of the tests as a process: `python -m app serve` on loopback with its
log (`Serve`), on a free port, on the tiny checkpoint built once for the session; and `once`,
for a value every thread of the session shares. tests/engine_servers.py schedules them.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL_DIR = REPO / ".cache" / "tiny-model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_tiny_lock = threading.Lock()


def tiny_checkpoint() -> Path:
    """The tiny checkpoint, built once: by whichever of the thread or a test asks first (in a
    subprocess, so that torch is never first imported on the thread while a test imports it)."""
    from app.dev.tiny_model import is_built

    with _tiny_lock:
        if not is_built(TINY_MODEL_DIR):
            subprocess.run([sys.executable, "-c", "import sys; from app.dev.tiny_model import "
                            "build_tiny_model; build_tiny_model(sys.argv[1])", str(TINY_MODEL_DIR)],
                           cwd=REPO, check=True, capture_output=True)
    return TINY_MODEL_DIR


def once(fn: Callable[[], Any]) -> Callable[[], Any]:
    """fn's result, computed by the first caller of any thread; the others wait for it."""
    lock, box = threading.Lock(), []

    def call():
        with lock:
            if not box:
                box.append(fn())
            return box[0]
    return call


class ServerFailed(RuntimeError):
    pass


class Serve:
    """`python -m app serve ARGS` on loopback, its output in `log_path`."""

    def __init__(self, args: list[str], log_path: Path, timeout_s: float = 900):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.timeout_s = timeout_s
        self.ready_s: float | None = None
        cmd = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port",
               str(self.port), *args]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_ready(self) -> None:
        from app.dev.demo import wait_ready

        try:
            self.ready_s = wait_ready(self.base_url + "/health/ready", self.proc, self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the log says why
            raise ServerFailed(f"server did not start: {exc}\n{self.log_tail(6000)}") from None

    def stop(self) -> None:
        from app.dev.demo import stop_process

        if self.proc.poll() is None:
            stop_process(self.proc)

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]
