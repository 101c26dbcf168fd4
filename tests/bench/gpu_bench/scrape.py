"""/metrics scraping: the server-side histograms that split a phase's latency (decode, queue, prefill)."""
from __future__ import annotations

import re
import urllib.request

_METRIC = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([-+\deE.naif]+)$")
_WATCH = ("cosmos_ingest_decode_seconds", "cosmos_ingest_fetch_seconds", "cosmos_time_to_first_token_seconds",
          "vllm:time_to_first_token_seconds", "vllm:request_prefill_time_seconds",
          "vllm:request_queue_time_seconds", "vllm:e2e_request_latency_seconds",
          "vllm:request_inference_time_seconds")


def scrape(base: str) -> dict[str, float]:
    try:
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    except Exception:  # noqa: BLE001
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line.strip())
        if not m or not m.group(1).endswith(("_sum", "_count")):
            continue
        name = m.group(1)
        if not name.rsplit("_", 1)[0] in _WATCH:
            continue
        try:
            out[name] = out.get(name, 0.0) + float(m.group(3))  # summed over label sets
        except ValueError:
            pass
    return out


def metric_means(before: dict, after: dict) -> dict[str, float]:
    """Mean of each watched histogram over the phase, in ms."""
    res = {}
    for name in _WATCH:
        s = after.get(name + "_sum", 0) - before.get(name + "_sum", 0)
        c = after.get(name + "_count", 0) - before.get(name + "_count", 0)
        if c > 0:
            res[name] = round(s / c * 1e3, 1)
    return res


