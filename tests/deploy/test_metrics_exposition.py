"""/metrics renders our registry and the process-global one (where vLLM's AsyncLLM registers its
`vllm:*` metrics) as one valid exposition: a global family that clashes with one of ours is left
out rather than breaking the scrape. Over real HTTP on the fake engine; the real engine's metrics
are checked by a real Prometheus in test_prometheus.py.
"""
from __future__ import annotations

import httpx
from prometheus_client import REGISTRY as GLOBAL, Counter, Gauge
from prometheus_client.parser import text_string_to_metric_families


def families(url: str) -> dict[str, object]:
    text = httpx.get(url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in out, f"{family.name} twice in one exposition"
        out[family.name] = family
    return out


def test_global_metrics_next_to_ours_and_clashes_left_out(live):
    from app.engine.fake import FakeEngine

    waiting = Gauge("vllm:num_requests_waiting", "as vLLM registers it", ["model_name", "engine"])
    clash = Counter("cosmos_requests", "a global family named like ours")
    try:
        waiting.labels("tiny", "0").set(3)
        clash.inc(1000)
        with live(FakeEngine()) as srv:
            got = families(srv.url)
            (sample,) = got["vllm:num_requests_waiting"].samples
            assert sample.labels == {"model_name": "tiny", "engine": "0"} and sample.value == 3
            assert "process_start_time_seconds" in got  # prometheus_client's process collector
            # Ours won: its help text, not the global one's value of 1000.
            assert got["cosmos_requests"].documentation == "Chat completion requests by outcome."
            assert all(s.value != 1000 for s in got["cosmos_requests"].samples)
            assert srv.metric("cosmos_engine_ready") == 1
    finally:
        GLOBAL.unregister(waiting)
        GLOBAL.unregister(clash)
