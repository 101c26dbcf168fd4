"""Soak a running cosmos-serve with the traffic it must survive, then check that nothing leaked.

    python tests/bench/soak.py --url http://127.0.0.1:8000 --requests 2000 --duration-s 1800 \\
        [--api-key K] [--pid SERVER_PID] [--video-max-bytes 1000000] [--concurrency 12]

Mixed, from `--concurrency` threads until `--requests` are sent or `--duration-s` has passed:
good requests on the real clips of ../shared/media (whole and streamed, as data: URLs, each
response's `media` and vision tokens checked against `/v1/video/inspect` for the same clip),
bad JSON, truncated base64, corrupt videos (mutated real clips), oversized videos (over the
server's `video_max_bytes`, which `--video-max-bytes` must match), SSRF URLs (the server must
not allow private fetches), streams dropped after their first chunk, requests with a deadline
too short to make, a wrong API key, and bursts over the server's caps (more threads than
`max_concurrent_requests`). Before the load, each clip is asked once whole and once streamed
with the same seed, one at a time: the answers must agree.

Afterwards: every request has exactly one outcome, the server's `cosmos_requests_total` grew by
exactly the client's count per status, no slot, engine request or decode is held, memory is
back near its start, and the server still answers. Prints requests, outcomes by class, p50/p99
latency and memory before and after; exits 1 if a check failed (`run()` returns the report).

The traffic itself (kinds, clips, classification): tests/bench/soak_traffic.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

if not __package__:  # run as a script: the repository root makes `tests.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.soak_traffic import CHAT, KINDS, Soak, data_url, video_message  # noqa: E402

GAUGES = ("cosmos_requests_in_flight", "cosmos_engine_requests_running",
          "cosmos_ingest_decodes_running", "cosmos_ingest_decode_queue_depth")


def metrics(url: str, headers: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", headers=headers, timeout=30).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def chat_counts(m: dict[str, float]) -> Counter:
    out: Counter = Counter()
    for key, value in m.items():
        if key.startswith("cosmos_requests_total{") and f'endpoint="{CHAT}"' in key:
            status = key.split('status="')[1].split('"')[0]
            out[int(status)] += int(value)
    return out


def tree_rss_bytes(pid: int | None) -> int | None:
    if pid is None:
        return None
    from app.lifecycle.processes import descendants

    total = 0
    for p in [pid, *(d.pid for d in descendants(pid))]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(url: str, requests: int, duration_s: float, concurrency: int = 12,
        api_key: str | None = None, pid: int | None = None, model: str | None = None,
        video_max_bytes: int = 1_000_000, seed: int = 0, out=sys.stdout) -> dict:
    soak = Soak(url, model or "", api_key, video_max_bytes, seed)
    headers = soak.headers
    if model is None:
        soak.model = httpx.get(url + "/v1/models", headers=headers).json()["data"][0]["id"]
    soak.inspect_all()
    parity = soak.parity()
    before = metrics(url, headers)
    rss_before = tree_rss_bytes(pid)
    kinds = [k for k, (w, _) in KINDS.items() for _ in range(w)]
    started = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(concurrency) as pool:
        futures = []
        while sent < requests and time.monotonic() - started < duration_s:
            # Bounded backlog: a queue of its own would hide the server's 429s.
            while sum(not f.done() for f in futures) >= 2 * concurrency:
                time.sleep(0.01)
            futures.append(pool.submit(soak.task, soak.rng.choice(kinds)))
            sent += 1
        for f in futures:
            f.result()
    elapsed = time.monotonic() - started
    # Quiet again: streams dropped by their client end on the server's next step.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = metrics(url, headers)
        if all(after.get(g, 0) == 0 for g in GAUGES):
            break
        time.sleep(0.5)
    rss_after = tree_rss_bytes(pid)
    final = httpx.post(url + CHAT, headers=headers, timeout=300, json=soak.body(
        video_message(data_url(soak.clips[sorted(soak.expected)[0]]))))
    ready = httpx.get(url + "/health/ready", timeout=30).status_code

    client: Counter = Counter(s for _, _, s, _ in soak.outcomes if s)
    server = chat_counts(after) - chat_counts(before)
    report = {
        "requests": sent, "outcomes": len(soak.outcomes), "elapsed_s": round(elapsed, 1),
        "by_class": dict(Counter(c for _, c, _, _ in soak.outcomes).most_common()),
        "by_kind": dict(Counter(k for k, _, _, _ in soak.outcomes).most_common()),
        "latency_p50_s": round(percentile([t for *_, t in soak.outcomes], 0.5), 3),
        "latency_p99_s": round(percentile([t for *_, t in soak.outcomes], 0.99), 3),
        "parity_checked": parity,
        "server_rss_before": before.get("process_resident_memory_bytes"),
        "server_rss_after": after.get("process_resident_memory_bytes"),
        "tree_rss_before": rss_before, "tree_rss_after": rss_after,
        "clip_cache_bytes": after.get("cosmos_ingest_cache_bytes"),
        "held_after": {g: after.get(g, 0) for g in GAUGES},
        "client_statuses": dict(sorted(client.items())),
        "server_statuses": dict(sorted(server.items())),
        "final_request": final.status_code, "ready": ready,
    }
    checks = {
        "one outcome per request": len(soak.outcomes) == sent,
        "statuses agree with /metrics": client == server,
        "nothing held": all(v == 0 for v in report["held_after"].values()),
        "still answers": final.status_code == 200 and ready == 200,
        "no wrong answer": not soak.failures,
    }
    if rss_before and rss_after:  # the clip cache may keep what it holds: not a leak
        growth = rss_after - rss_before - (after.get("cosmos_ingest_cache_bytes", 0)
                                           - before.get("cosmos_ingest_cache_bytes", 0))
        report["tree_rss_growth_less_cache"] = growth
        checks["memory back near its start"] = growth < 512 * 2**20
    report["checks"] = checks
    report["failures"] = soak.failures[:50]
    print(json.dumps(report, indent=2), file=out)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--duration-s", type=float, default=600)
    ap.add_argument("--concurrency", type=int, default=12)
    ap.add_argument("--api-key")
    ap.add_argument("--pid", type=int, help="the server's pid: memory of its whole tree")
    ap.add_argument("--model")
    ap.add_argument("--video-max-bytes", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    report = run(a.url, a.requests, a.duration_s, a.concurrency, a.api_key, a.pid, a.model,
                 a.video_max_bytes, a.seed)
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
