"""A request's deadline, which a shutdown can bring forward.

Every chat request runs under one: `request_deadline_s`, lowered by the client's
`X-Request-Deadline-S` header. Each await of the request that can take long (preparation:
fetch and decode; each engine step) goes through `Deadline.run`, which cancels the awaited work
when the deadline passes or `stop()` is called, and raises the reason: `DeadlineExceededError`
(504), or the error given to `stop` (a shutdown's 503). Cancelling the work is what aborts the
engine request and the decode; the caller's `finally` blocks free the slot.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable
from typing import TypeVar

from app.errors import CosmosError, DeadlineExceededError

T = TypeVar("T")


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.reason: CosmosError | None = None
        self._stopped: asyncio.Future | None = None

    @classmethod
    def for_request(cls, setting_s: float, header: str | None) -> "Deadline":
        """The setting, or the client's lower value; a malformed header is ignored."""
        seconds = setting_s
        try:
            asked = float(header) if header else math.inf
        except ValueError:
            asked = math.inf
        if 0 < asked < seconds:
            seconds = asked
        return cls(seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.reason is not None or self.remaining() <= 0

    def _future(self) -> asyncio.Future:
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
            if self.reason is not None:
                self._stopped.set_result(None)
        return self._stopped

    def stop(self, reason: CosmosError) -> None:
        """End the request now with `reason` (from the event loop's thread)."""
        if self.reason is None:
            self.reason = reason
            if self._stopped is not None and not self._stopped.done():
                self._stopped.set_result(None)

    def error(self) -> CosmosError:
        return self.reason or DeadlineExceededError(
            f"the request did not finish within its deadline of {self.seconds:g} s "
            f"(request_deadline_s, or the X-Request-Deadline-S header)")

    async def run(self, work: Awaitable[T]) -> T:
        """`work`'s result; if the deadline passes or the request is stopped first, `work` is
        cancelled and the reason raised."""
        task = asyncio.ensure_future(work)
        try:
            if not self.expired:
                stopped = self._future()
                await asyncio.wait({task, stopped}, timeout=max(0.0, self.remaining()),
                                   return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
        finally:
            if not task.done():  # ours expired, or our caller was cancelled (client gone)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        raise self.error()
