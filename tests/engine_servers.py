"""The real-engine servers of a test session, started in the background before they are needed.

`cosmos-serve serve` on the vLLM CPU engine takes 1-3 minutes to come up on a 2-core machine,
nearly all of it three processes (server, engine core, worker) importing torch and vLLM one
after the other: one core busy, the other idle. So each module declares the servers its tests
need (`plan`), tests/conftest.py runs the tests that use one after all the others, grouped by
server in plan order, and a thread of this process starts those servers one at a time, in that
order, while the other tests run. At most MAX_UP are up or starting at once, fewer where memory
is short (three processes, about 3 GB, each); a server is stopped as soon as the last test that
needs it is done, which makes room for the next. A test whose server the thread has not reached
yet starts it itself, so a narrow selection (one file, -k) never waits on a plan it does not
follow. For a run of the whole suite the session server starts before collection even.

The servers themselves (`Serve`, the tiny checkpoint, free ports) are in tests/serve_process.py;
their names are imported here too, as the tests import them from here.
"""
from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.serve_process import (REPO, TINY_MODEL_DIR, Serve, ServerFailed, free_port,  # noqa: F401
                                 once, tiny_checkpoint)

# Three: with up to five allowed, a CI-like run had four up and 2 GB of 23 left (each held
# 4-5 GB there, server 1.7, engine core 1.0, worker 2.2 resident), so the last two waited on
# memory anyway and an OOM was one large test away. An idle server costs about 2% of a core.
MAX_UP = int(os.environ.get("COSMOS_TEST_SERVERS_UP", "3"))
# A tiny-model server holds about 3.1 GB once up (measured: 1.7 server, 0.4 engine core, 1.0
# worker); another starts only while that much and 2 GB for the tests are left.
SERVER_GB, SPARE_GB = 3.5, 2.0


def available_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return float("inf")
    return kb / 1e6


@dataclass
class _Planned:
    name: str
    fixture: str
    where: str      # the file that defines the fixture (a module may shadow a name)
    start: Callable[[Path], Any]    # tmp dir -> a handle with wait_ready() and stop()
    rank: float
    users: int = 0
    state: str = "planned"          # starting, up, failed, stopped
    handle: Any = None
    error: BaseException | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Pool:
    def __init__(self):
        self._planned: dict[str, _Planned] = {}
        self._cond = threading.Condition()
        self._order: list[_Planned] = []
        self._thread: threading.Thread | None = None
        self._stops: list[threading.Thread] = []
        self._closing = False
        self._tmp = None

    def plan(self, name: str, fixture: Callable, start: Callable[[Path], Any], *,
             rank: float) -> None:
        """The server `start(tmp)` launches, needed by the tests that use `fixture`; servers
        start (and their tests run) by ascending rank."""
        code = inspect.unwrap(fixture).__code__
        self._planned[name] = _Planned(name, getattr(fixture, "name", code.co_name),
                                       code.co_filename, start, rank)

    def _needs(self, item) -> list[_Planned]:
        defs = getattr(item, "_fixtureinfo", None)
        if defs is None:
            return []
        out = []
        for p in self._planned.values():
            chain = defs.name2fixturedefs.get(p.fixture)
            code = getattr(inspect.unwrap(chain[-1].func), "__code__", None) if chain else None
            if code is not None and code.co_filename == p.where:
                out.append(p)
        return out

    def order(self, items: list) -> None:
        """Stable: tests needing no planned server first, then by the rank of their server."""
        def key(item):
            ranks = [p.rank for p in self._needs(item)]
            return (1, min(ranks)) if ranks else (0, 0.0)
        items[:] = sorted(items, key=key)

    def prestart(self, name: str, tmp_factory) -> None:
        """Start `name` now, before collection (which takes a minute of one core): for a run
        of the whole suite, which needs it; begin() stops it again if no test does."""
        self._tmp = tmp_factory
        p = self._planned[name]
        p.state = "starting"
        threading.Thread(target=self._start, args=(p,), name=f"prestart-{name}",
                         daemon=True).start()

    def begin(self, items: list, tmp_factory, *, background: bool) -> None:
        """Count each server's tests; with `background`, start the thread on those needed."""
        self._tmp = tmp_factory
        for item in items:
            for p in self._needs(item):
                p.users += 1
        for p in self._planned.values():
            if not p.users and p.state != "planned":
                self._cancel(p)  # prestarted for tests that were not selected after all
        self._order = sorted((p for p in self._planned.values() if p.users),
                             key=lambda p: p.rank)
        if background and self._order:
            self._thread = threading.Thread(target=self._loop, name="engine-servers",
                                            daemon=True)
            self._thread.start()

    def mktemp(self, name: str) -> Path:
        return Path(self._tmp.mktemp(name))

    def _up(self) -> int:
        return sum(p.state in ("starting", "up") for p in self._planned.values())

    def _room(self) -> bool:
        up = self._up()
        return up == 0 or (up < MAX_UP and available_gb() >= SERVER_GB + SPARE_GB)

    def _loop(self) -> None:
        for p in self._order:
            with self._cond:
                while not (self._closing or self._room()):
                    self._cond.wait(5)  # memory frees without a notice
                if self._closing:
                    return
                if p.state != "planned":
                    continue  # a test got there first
                p.state = "starting"
            self._start(p)

    def _start(self, p: _Planned) -> None:
        try:
            handle = p.start(self.mktemp(p.name))
            with self._cond:
                p.handle = handle
                cancelled = self._closing or p.cancelled
            if cancelled:
                raise ServerFailed("no longer needed")
            handle.wait_ready()
            with self._cond:
                p.state = "up"
        except BaseException as exc:  # noqa: BLE001 - handed to the test that needs it
            with self._cond:
                p.error, p.state = exc, "failed"
            if p.handle is not None:
                p.handle.stop()
        finally:
            p.done.set()
            with self._cond:
                self._cond.notify_all()

    def get(self, name: str) -> Any:
        """The named server once it serves (started here if the thread has not reached it)."""
        p = self._planned[name]
        with self._cond:
            mine = p.state == "planned"
            if mine:
                p.state = "starting"
            elif p.state == "stopped":
                raise ServerFailed(f"{name}: already stopped (its last planned test was done)")
        if mine:
            self._start(p)
        p.done.wait()
        if p.error is not None:
            raise p.error
        return p.handle

    def release(self, name: str) -> None:
        """Stop `name`, on a thread of its own: a server takes 5-10 s to shut vLLM down, which
        the next test need not wait for (close() waits for every stop)."""
        p = self._planned.get(name)
        if p is None:
            return
        with self._cond:
            handle, was = p.handle, p.state
            if was in ("up", "failed"):
                p.state = "stopped"
        if was in ("up", "failed") and handle is not None:
            stop = threading.Thread(target=self._stop, args=(handle,), name=f"stop-{name}",
                                    daemon=True)
            self._stops.append(stop)
            stop.start()
        with self._cond:
            self._cond.notify_all()

    def _stop(self, handle: Any) -> None:
        try:
            handle.stop()
        finally:
            with self._cond:
                self._cond.notify_all()  # its memory is free: the thread may start the next

    def finished(self, item) -> None:
        """After a test: stop each server whose last planned test this was."""
        for p in self._needs(item):
            p.users -= 1
            if p.users <= 0:
                self.release(p.name)

    def _cancel(self, p: _Planned) -> None:
        """Stop p even while it starts: its wait for readiness ends with the process."""
        with self._cond:
            p.cancelled = True
            handle = p.handle
        if handle is not None:
            handle.stop()
        if p.state == "starting":
            p.done.wait(180)
        self.release(p.name)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for p in self._planned.values():
            self._cancel(p)
        if self._thread is not None:
            self._thread.join(60)
        for stop in self._stops:  # no server outlives the session
            stop.join(90)


POOL = Pool()
plan = POOL.plan


def need(name: str) -> Any:
    """The planned server `name`, serving; the test fails with its log if it did not start."""
    import pytest

    try:
        return POOL.get(name)
    except ServerFailed as exc:
        pytest.fail(str(exc))
