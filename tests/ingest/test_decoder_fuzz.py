"""Property-based fuzz of the video ingestion (probe, plan, decode) over mutated real clips.

Each example takes a clip from ../shared/media and damages it as uploads and attackers do: bytes
overwritten (in the header or anywhere), the file cut short, a span deleted or repeated, junk
spliced in. Whatever comes in, ingestion must return a clip within the pixel budget or raise one
of our MediaErrors, through a path written for it (no "unexpected error" logged), never crash
the process, and finish within its decode limit. `FUZZ_EXAMPLES` sets the count (CI: 60).
"""
from __future__ import annotations

import logging
import os
import resource
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from app.config import Settings
from app.errors import CosmosError
from app.ingest import pipeline
from app.ingest.options import build, request_options
from app.profiles.resolve import resolve
from tests.conftest import MEDIA

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
DECODE_LIMIT_S = 10.0
SETTINGS = Settings(model="tiny", engine="fake", video_decode_timeout_s=DECODE_LIMIT_S)
OPTIONS = build(resolve(SETTINGS), request_options({"max_frames": 16}))
CLIPS = sorted(p for p in MEDIA.glob("*") if p.suffix in (".mp4", ".mkv", ".webm")
               and p.stat().st_size < 600_000) if MEDIA.is_dir() else []
OUTCOMES: Counter = Counter()


@st.composite
def damaged(draw):
    path = draw(st.sampled_from(CLIPS))
    data = bytearray(path.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "header", "truncate", "delete", "repeat",
                                     "splice"]))
        n = len(data)
        at = draw(st.integers(0, max(0, n - 1)))
        if kind == "flip":
            for _ in range(draw(st.integers(1, 32))):
                i = draw(st.integers(0, n - 1))
                data[i] ^= draw(st.integers(1, 255))
        elif kind == "header":
            i = draw(st.integers(0, min(n, 512) - 1))
            data[i:i + 4] = draw(st.binary(min_size=4, max_size=4))
        elif kind == "truncate":
            data = data[:at]
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 4096))]
        elif kind == "repeat":
            span = data[at:at + draw(st.integers(1, 4096))]
            data[at:at] = span * draw(st.integers(1, 8))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=2048))
        if not data:
            data = bytearray(b"\0")
    return path.name, bytes(data)


def _ingest_bounded(data: bytes):
    result: dict = {}

    def work():
        try:
            result["clip"] = pipeline.ingest(data, OPTIONS, SETTINGS)
        except CosmosError as exc:
            result["error"] = exc
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["crash"] = exc

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(DECODE_LIMIT_S * 2 + 5)  # the limit applies twice at most: index, then decode
    assert not t.is_alive(), "ingestion hung past its decode limit"
    return result


@pytest.mark.skipif(not CLIPS, reason="no real clips in ../shared/media")
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])  # caplog: cleared here
@given(sample=damaged())
def test_damaged_clips_are_decoded_or_refused(sample, caplog):
    name, data = sample
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="app.ingest"):
        result = _ingest_bounded(data)
    assert "crash" not in result, f"{name}: {result.get('crash')!r}"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        f"{name}: an unexpected error path: {caplog.records[0].getMessage()}"
    if "clip" in result:
        clip = result["clip"]
        assert clip.num_frames >= 2 and clip.frames.nbytes <= 3 * OPTIONS.total_pixels * 2
        OUTCOMES["decoded"] += 1
    else:
        OUTCOMES[result["error"].code or "invalid_media"] += 1


@pytest.mark.skipif(not CLIPS, reason="no real clips in ../shared/media")
def test_fuzz_memory_stayed_bounded():
    """After the fuzz (same process): the peak resident size stayed within 2 GiB."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nfuzz outcomes over {sum(OUTCOMES.values())} examples: {dict(OUTCOMES)}; "
          f"peak RSS {peak_kib / 1024:.0f} MiB")
    assert peak_kib < 2 * 1024 * 1024
