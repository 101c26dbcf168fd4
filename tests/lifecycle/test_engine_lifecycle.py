"""`cosmos-serve serve` on the real vLLM CPU engine, stopped the ways an orchestrator stops it.
After each case, no process the server started is alive.

- SIGTERM while vLLM loads (its engine core ignores SIGTERM then): the server exits within
  shutdown_grace_s and takes the engine core and its workers with it;
- SIGKILL of the server while vLLM loads: the watchdog kills them;
- the soak's short form (tests/bench/soak.py), then SIGTERM mid-stream: readiness off at once,
  the stream finishes or ends with a clear error, exit within the grace;
- the engine core killed mid-stream: the stream ends with an error (never a hang), new requests
  and the probes say 503, and the server exits 1 so that it is restarted.

Each case starts its own server (1-3 minutes each on a small CPU machine): the first two while
the test watches, the last two ahead, in the background (tests/engine_servers.py), as they are
only used once they serve.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from app.lifecycle import processes
from tests.conftest import MEDIA, REPO, free_port
from tests.engine_servers import POOL, need, plan, tiny_checkpoint

pytestmark = pytest.mark.engine
# Short, as the soak case waits out the drain (its long stream runs until the drain ends):
# what is checked is that the server keeps to the grace it was given, whatever its length.
# 12 s leaves 9 s to drain and 3 s to stop the engine (app/lifecycle/server.py).
GRACE_S = 12
KEY = "lifecycle-key"


class Server:
    def __init__(self, tiny_model, tmp_path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "server.log"
        cmd = [sys.executable, "-m", "app", "serve", "--model", str(tiny_model),
               "--served-model-name", "cosmos-tiny", "--host", "127.0.0.1",
               "--port", str(self.port), "--enforce-eager", "--max-model-len", "4096",
               "--cpu-kv-cache-gib", "1", "--shutdown-grace-s", str(GRACE_S),
               "--api-key", KEY, *extra]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.seen: dict[tuple[int, int], processes.Proc] = {}
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._record, daemon=True)
        self._watcher.start()

    def _record(self) -> None:
        """Every process the server ever started, as the watchdog sees them."""
        while not self._stop.is_set() and self.proc.poll() is None:
            for p in processes.descendants(self.proc.pid):
                self.seen[(p.pid, p.start)] = p
            time.sleep(0.2)

    def wait_for_process(self, name: str, timeout_s: float = 900) -> processes.Proc:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            for p in list(self.seen.values()):
                if p.name.startswith(name) and processes.alive(p):
                    return p
            time.sleep(0.2)
        raise AssertionError(f"no {name} process after {timeout_s} s\n{self.tail()}")

    def wait_ready(self, timeout_s: float = 900) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            try:
                if httpx.get(self.url + "/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise AssertionError(f"not ready after {timeout_s} s\n{self.tail()}")

    def exit_code(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout_s} s\n{self.tail()}") from None

    def leftovers(self, timeout_s: float = 15) -> list[processes.Proc]:
        """Recorded processes still alive once the watchdog and resource tracker had time."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        while True:
            left = [p for p in self.seen.values() if processes.alive(p)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def stop(self) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        processes.signal_all(list(self.seen.values()), signal.SIGKILL)

    def tail(self, n: int = 5000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def start(tiny_model, tmp_path):
    servers: list[Server] = []

    def make(*extra: str) -> Server:
        where = tmp_path / str(len(servers))
        where.mkdir()
        srv = Server(tiny_model, where, *extra)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.cleanup()


# The soak's caps: 8 threads against 4 slots and 2 decodes, videos over 1 MB refused.
SOAK_CAPS = ("--max-concurrent-requests", "4", "--video-decode-queue-max", "2",
             "--video-max-bytes", "1000000")


@pytest.fixture
def soak_server(tiny_model):
    yield need("lifecycle-soak")
    POOL.release("lifecycle-soak")


@pytest.fixture
def stream_server(tiny_model):
    yield need("lifecycle-stream")
    POOL.release("lifecycle-stream")


plan("lifecycle-soak", soak_server, lambda tmp: Server(tiny_checkpoint(), tmp, *SOAK_CAPS),
     rank=4)
plan("lifecycle-stream", stream_server, lambda tmp: Server(tiny_checkpoint(), tmp),
     rank=5)


def _names(procs) -> list[str]:
    return [f"{p.name}[{p.pid}]" for p in procs]


def test_sigterm_while_the_engine_loads_stops_everything(start):
    srv = start()
    srv.wait_for_process("VLLM::EngineCor")
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.exit_code(GRACE_S + 10) == -signal.SIGTERM, srv.tail()
    assert _names(srv.leftovers()) == [], srv.tail()
    assert any(p.name.startswith("VLLM::EngineCor") for p in srv.seen.values())


def test_sigkill_of_the_server_while_the_engine_loads_leaves_nothing(start):
    srv = start()
    srv.wait_for_process("VLLM::EngineCor")
    time.sleep(1.5)  # the watchdog looks twice a second
    srv.proc.kill()
    srv.proc.wait()
    assert _names(srv.leftovers()) == [], srv.tail()


def _long_stream(srv: Server, events: list, first: threading.Event) -> None:
    body = {"model": "cosmos-tiny", "stream": True, "max_tokens": 3000, "ignore_eos": True,
            "messages": [{"role": "user", "content": "Tell a long story."}]}
    try:
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body, timeout=300,
                          headers=srv.headers()) as r:
            events.append(r.status_code)
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                    first.set()
    except httpx.HTTPError as exc:
        events.append(exc)
    first.set()


def _stream_outcome(events: list) -> str:
    """"done" (finished), or the error code of its last event; never cut off silently."""
    assert events and events[0] == 200, events[:3]
    assert events[-1] == "[DONE]", events[-3:]
    last = json.loads(events[-2])
    if "error" in last:
        return last["error"]["code"]
    assert last["choices"][0]["finish_reason"] in ("length", "stop"), last
    return "done"


def test_soak_then_sigterm_mid_stream(soak_server):
    from tests.bench import soak

    srv = soak_server
    srv.wait_ready()
    report = soak.run(srv.url, requests=60, duration_s=300, concurrency=8, api_key=KEY,
                      pid=srv.proc.pid, video_max_bytes=1_000_000)
    assert all(report["checks"].values()), json.dumps(report, indent=1)
    assert report["by_class"].get("ok", 0) > 0
    events: list = []
    first = threading.Event()
    reader = threading.Thread(target=_long_stream, args=(srv, events, first))
    reader.start()
    assert first.wait(300), srv.tail()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        ready = httpx.get(srv.url + "/health/ready", timeout=5).status_code
    except httpx.TransportError:
        ready = "refused"
    assert ready in (503, "refused")
    reader.join(GRACE_S + 30)
    assert _stream_outcome(events) in ("done", "shutting_down")
    assert srv.exit_code(GRACE_S + 10) == -signal.SIGTERM, srv.tail()
    assert _names(srv.leftovers()) == [], srv.tail()


def test_engine_death_mid_stream_is_503_and_the_server_exits(stream_server):
    srv = stream_server
    srv.wait_ready()
    events: list = []
    first = threading.Event()
    reader = threading.Thread(target=_long_stream, args=(srv, events, first))
    reader.start()
    assert first.wait(300), srv.tail()
    core = srv.wait_for_process("VLLM::EngineCor", timeout_s=5)
    os.kill(core.pid, signal.SIGKILL)
    reader.join(120)
    assert not reader.is_alive(), "the stream hung after its engine died"
    assert _stream_outcome(events) == "engine_unavailable", events[-3:]
    try:
        r = httpx.post(srv.url + "/v1/chat/completions", headers=srv.headers(), timeout=30,
                       json={"model": "cosmos-tiny", "messages": [{"role": "user",
                                                                   "content": "hi"}]})
        assert r.status_code == 503, r.text
        live = httpx.get(srv.url + "/health/ready", timeout=5).status_code
        assert live == 503
    except httpx.TransportError:
        pass  # already gone: the server exits on its own so that it is restarted
    assert srv.exit_code(GRACE_S + 30) == 1, srv.tail()
    assert _names(srv.leftovers()) == [], srv.tail()
