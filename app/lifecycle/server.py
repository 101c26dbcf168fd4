"""`cosmos-serve serve`'s process lifecycle: stop everything it started within `shutdown_grace_s`.

On SIGTERM/SIGINT (or a dead engine), at once: `/health/ready` turns 503 and uvicorn stops
accepting connections. Requests in flight may finish during the drain window (the grace less a
reserve for stopping the engine); those still running at its end are stopped with a clear error
(503 `shutting_down`, or an error event in a stream). Then the lifespan shuts vLLM down, every
process below the server that is still alive is SIGTERMed and then SIGKILLed, and the server
exits. A backstop thread enforces the grace whatever hangs (a decoder, vLLM's loading thread).

If the server itself is killed, the watchdog (app/lifecycle/watchdog.py) kills what it started.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn

from app.lifecycle import processes

log = logging.getLogger(__name__)
_WATCHDOG = Path(__file__).with_name("watchdog.py")


def engine_stop_reserve_s(grace_s: float) -> float:
    """The part of the grace kept for stopping the engine after the drain."""
    return min(15.0, max(2.0, grace_s / 4))


class ManagedServer(uvicorn.Server):
    """uvicorn's server, plus the drain, the process clean-up and the grace backstop."""

    def __init__(self, config: uvicorn.Config, grace_s: float):
        self.grace_s = grace_s
        self.drain_s = max(0.0, grace_s - engine_stop_reserve_s(grace_s))
        # Stopped calls get a moment to send their error before uvicorn cancels what is left.
        config.timeout_graceful_shutdown = self.drain_s + 2.0
        super().__init__(config)
        self.stopping_since: float | None = None
        self.signal_received: int | None = None
        self.watchdog: subprocess.Popen | None = None
        self._loop = None

    # --- start -------------------------------------------------------------------------------
    def start_guards(self) -> None:
        """Before anything is started: adopt orphans, and have a watchdog outlive us."""
        if not processes.become_subreaper():
            log.warning("could not become a child subreaper; orphaned engine workers would "
                        "escape the shutdown's clean-up")
        self.watchdog = subprocess.Popen(
            [sys.executable, "-I", str(_WATCHDOG), str(os.getpid())],
            stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)

    async def startup(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    # --- stop --------------------------------------------------------------------------------
    def handle_exit(self, sig: int, frame) -> None:
        first = self.stopping_since is None
        super().handle_exit(sig, frame)
        if first:
            self.signal_received = sig
            self.begin_stop(f"received {signal.Signals(sig).name}")

    def begin_stop(self, why: str) -> None:
        """Readiness off, drain timer, backstop; then let uvicorn shut down. Idempotent."""
        if self.stopping_since is not None:
            self.should_exit = True
            return
        self.stopping_since = time.monotonic()
        self.should_exit = True
        app = self.config.app
        app.state.draining = True
        log.info("shutting down (%s): draining requests for up to %.0f s, %.0f s in all "
                 "(shutdown_grace_s)", why, self.drain_s, self.grace_s)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, self.drain_s, self._stop_calls)
        threading.Thread(target=self._backstop, name="cosmos-shutdown-backstop",
                         daemon=True).start()

    def _stop_calls(self) -> None:
        chat = getattr(self.config.app.state, "chat", None)
        if chat is not None:
            n = chat.stop_all()
            if n:
                log.warning("stopped %d request(s) still running at the end of the drain", n)

    def remaining_s(self) -> float:
        if self.stopping_since is None:
            return self.grace_s
        return self.grace_s - (time.monotonic() - self.stopping_since)

    async def shutdown(self, sockets=None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            self.stop_children()

    def stop_children(self) -> None:
        exclude = {self.watchdog.pid} if self.watchdog is not None else set()
        left = processes.stop_descendants(os.getpid(), max(1.0, self.remaining_s() - 0.5),
                                          exclude=exclude)
        if left:
            log.error("processes still alive after shutdown_grace_s: %s",
                      ", ".join(f"{p.name}[{p.pid}]" for p in left))

    def _backstop(self) -> None:
        time.sleep(max(0.0, self.remaining_s()))
        # Still here: something (a decoder inside one packet, vLLM's loading thread) holds the
        # process past its grace. Kill what we started, then end by the signal we were sent.
        log.error("shutdown did not finish within shutdown_grace_s (%.0f s); killing", self.grace_s)
        exclude = {self.watchdog.pid} if self.watchdog is not None else set()
        for p in processes.descendants(os.getpid()):
            if p.pid not in exclude:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass
        logging.shutdown()
        sig = self.signal_received or signal.SIGTERM
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        time.sleep(1)
        os._exit(1)
