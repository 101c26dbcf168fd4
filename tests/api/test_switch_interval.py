"""The server sets Python's thread switch interval (gil_switch_interval_s) for its process: decode
threads that let go of the GIL around each FFmpeg call get it back sooner (app/api/app.py)."""
from __future__ import annotations

import sys

import httpx

from app.engine.fake import FakeEngine


def test_the_server_sets_the_switch_interval_for_its_process(live):
    before = sys.getswitchinterval()
    try:
        with live(FakeEngine(), gil_switch_interval_s=0.0003) as srv:
            assert httpx.get(srv.url + "/health/ready").status_code == 200
            assert abs(sys.getswitchinterval() - 0.0003) < 1e-9
    finally:
        sys.setswitchinterval(before)
