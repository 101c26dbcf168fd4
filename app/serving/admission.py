"""Admission control: a bounded number of requests in flight, the rest answered 429 at once,
with `Retry-After`.

Beyond `max_concurrent_requests` the client's retry policy is a better queue than our memory.
A `Slot` is one admitted request; releasing it twice is harmless, so every exit path (normal
end, error, cancellation, a stream dropped before its first chunk) may release it.
"""
from __future__ import annotations

from app import metrics
from app.errors import OverloadedError


class Slot:
    def __init__(self, limiter: "Limiter"):
        self._limiter: Limiter | None = limiter

    @property
    def held(self) -> bool:
        return self._limiter is not None

    def release(self) -> None:
        if self._limiter is not None:
            self._limiter.in_flight -= 1
            metrics.REQUESTS_IN_FLIGHT.set(self._limiter.in_flight)
            self._limiter = None


class Limiter:
    def __init__(self, limit: int, retry_after_s: int = 1):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    def acquire(self) -> Slot:
        if self.in_flight >= self.limit:
            raise OverloadedError(f"server is at its limit of {self.limit} concurrent requests; "
                                  f"retry later", retry_after_s=self.retry_after_s)
        self.in_flight += 1
        metrics.REQUESTS_IN_FLIGHT.set(self.in_flight)
        return Slot(self)
