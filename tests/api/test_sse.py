"""SSE keep-alives (app/api/sse.py): a stream closed while its source is in a silent step."""
from __future__ import annotations

import asyncio

from app.api.sse import KEEPALIVE, with_keepalive


def test_closing_during_a_silent_step_cancels_the_step_and_closes_the_source():
    closed = []

    async def source():
        try:
            yield "first"
            await asyncio.sleep(30)  # a critic's pass, a long prefill: nothing to send
            yield "never"
        finally:
            closed.append(True)

    async def main():
        stream = with_keepalive(source(), 0.02)
        assert await stream.__anext__() == "first"
        assert await stream.__anext__() == KEEPALIVE
        # The client leaves here: closing must not fail with "aclose(): asynchronous generator
        # is already running" (the step was still pending), and the source's clean-up runs.
        await asyncio.wait_for(stream.aclose(), 5)

    asyncio.run(main())
    assert closed == [True]
