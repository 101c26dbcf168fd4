"""An LRU of ingested clips under a byte budget, with single-flight decoding.

Evaluation traffic asks many questions about one clip (about 15 per video in WTS); keyed by
content and sampling options, the clip is decoded once. Requests that arrive while that decode
runs wait for it instead of starting their own. When the last of them is gone (client left,
deadline passed) the decode is cancelled: nobody would use its frames before they were evicted.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from app import metrics
from app.ingest.types import VideoClip


class ClipCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, VideoClip] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[Hashable, asyncio.Future] = {}
        self._waiters: dict[Hashable, int] = {}

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> VideoClip | None:
        clip = self._items.get(key)
        if clip is not None:
            self._items.move_to_end(key)
        return clip

    def put(self, key: Hashable, clip: VideoClip) -> None:
        if clip.nbytes > self.max_bytes:
            return
        clip.frames.flags.writeable = False  # shared by every request that hits it
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._items[key] = clip
        self._bytes += clip.nbytes
        while self._bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.nbytes
        metrics.CACHE_BYTES.set(self._bytes)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
        metrics.CACHE_BYTES.set(0)

    async def get_or_make(self, key: Hashable,
                          make: Callable[[], Awaitable[VideoClip]]) -> tuple[VideoClip, str]:
        """The clip and how it was obtained: "hit", "miss" (we decoded) or "shared" (we waited
        for a decode another request started)."""
        clip = self.get(key)
        if clip is not None:
            metrics.CACHE_EVENTS.labels("hit").inc()
            return clip, "hit"
        future = self._inflight.get(key)
        outcome = "shared"
        if future is None:
            outcome = "miss"
            future = asyncio.ensure_future(make())
            self._inflight[key] = future
            future.add_done_callback(lambda f: self._settle(key, f))
        metrics.CACHE_EVENTS.labels(outcome).inc()
        # shield: one waiter giving up (client gone) must not cancel the others' decode.
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            return await asyncio.shield(future), outcome
        except asyncio.CancelledError:
            if self._waiters.get(key) == 1 and not future.done():
                future.cancel()
            raise
        finally:
            left = self._waiters.get(key, 1) - 1
            if left > 0:
                self._waiters[key] = left
            else:
                self._waiters.pop(key, None)

    def _settle(self, key: Hashable, future: asyncio.Future) -> None:
        self._inflight.pop(key, None)
        if future.cancelled() or future.exception() is not None:
            return  # failures are not cached: the next request tries again
        self.put(key, future.result())
