"""A real Prometheus (Debian's package) scrapes the real server on the tiny checkpoint.

deploy/stack.sh --scrape starts it with the shipped scrape config (deploy/prometheus/prometheus.yml,
target rewritten to the session server) and the shipped alert rules, on loopback. The tests send
requests through the openai client and read the series back through Prometheus' HTTP API: types,
labels, and values equal to what was sent; vLLM's own metrics next to ours; every rule evaluated
without error; every dashboard query answered; every metric the dashboard and the rules name is
one the server exports.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SERVED_NAME, free_port
from tests.deploy.conftest import REPO
from tests.deploy.test_alerts import RULES, dashboard_queries

pytestmark = pytest.mark.engine

CHAT = 'cosmos_requests_total{job="cosmos-serve", endpoint="/v1/chat/completions", status="200"}'
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",),
            "unknown": ("",)}


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def api(self, path: str, **params) -> dict:
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, want: float, timeout_s: float = 90) -> float | None:
        """The query's value once it equals `want` (scrapes run every second), or the last seen."""
        deadline = time.monotonic() + timeout_s
        got = self.value(expr)
        while got != want and time.monotonic() < deadline:
            time.sleep(0.5)
            got = self.value(expr)
        return got


@pytest.fixture(scope="module")
def prometheus(server, prometheus_bin, tmp_path_factory):
    port = free_port()
    stack_dir = tmp_path_factory.mktemp("stack")
    env = {**os.environ, "PROMETHEUS_PORT": str(port), "PROMETHEUS_SCRAPE_INTERVAL": "1s",
           "COSMOS_STACK_DIR": str(stack_dir)}
    target = server.base_url.removeprefix("http://")
    proc = subprocess.Popen(["bash", "deploy/stack.sh", "--scrape", target], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            log = (stack_dir / "prometheus.log")
            pytest.fail(f"Prometheus did not start: {proc.stdout.read() if proc.poll() is not None else ''}"
                        f"{log.read_text()[-3000:] if log.exists() else ''}")
        prom = Prometheus(url)
        assert prom.wait_for('up{job="cosmos-serve"}', 1) == 1, "Prometheus never scraped the server"
        yield prom
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def exported(base_url: str) -> dict[str, str]:
    """Every sample name the server's /metrics can carry, with its family's type."""
    text = httpx.get(base_url + "/metrics", timeout=30).text
    names = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = family.type
        for sample in family.samples:
            names[sample.name] = family.type
    return names


def current(base_url: str, name: str, **labels) -> float:
    """The sum of a sample over the series matching `labels`, read from the server itself."""
    text = httpx.get(base_url + "/metrics", timeout=30).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_series_arrive_with_their_types_and_labels(prometheus, server):
    metadata = prometheus.api("metadata")
    types = {name: entries[0]["type"] for name, entries in metadata.items()}
    for name, kind in [("cosmos_requests_total", "counter"),
                       ("cosmos_time_to_first_token_seconds", "histogram"),
                       ("cosmos_engine_ready", "gauge"),
                       ("vllm:num_requests_waiting", "gauge"),
                       ("vllm:num_requests_running", "gauge"),
                       ("vllm:kv_cache_usage_perc", "gauge"),
                       ("vllm:time_to_first_token_seconds", "histogram"),
                       ("vllm:generation_tokens_total", "counter")]:
        assert types.get(name) == kind, f"{name}: {types.get(name)!r}, want {kind}"

    assert prometheus.value('cosmos_engine_ready{job="cosmos-serve"}') == 1
    (waiting,) = prometheus.query('vllm:num_requests_waiting{job="cosmos-serve"}')
    labels = waiting["metric"]
    assert labels["model_name"] == SERVED_NAME and labels["engine"] == "0"
    assert labels["instance"] == server.base_url.removeprefix("http://")
    usage = prometheus.value('vllm:kv_cache_usage_perc{job="cosmos-serve"}')
    assert usage is not None and 0 <= usage <= 1
    # One exposition, no duplicate families: Prometheus would have refused the whole scrape.
    assert prometheus.value('scrape_samples_scraped{job="cosmos-serve"}') > 100


def test_request_counts_and_histograms_match_what_was_sent(prometheus, server, client, media_dir):
    base = server.base_url
    watched = {
        "chat": (CHAT, "cosmos_requests_total",
                 {"endpoint": "/v1/chat/completions", "status": "200"}),
        "ttft": ('cosmos_time_to_first_token_seconds_count{job="cosmos-serve"}',
                 "cosmos_time_to_first_token_seconds_count", {}),
        "completion": ('cosmos_completion_tokens_total{job="cosmos-serve"}',
                       "cosmos_completion_tokens_total", {}),
        "vision_count": ('cosmos_ingest_vision_tokens_count{job="cosmos-serve"}',
                         "cosmos_ingest_vision_tokens_count", {}),
        "vision_sum": ('cosmos_ingest_vision_tokens_sum{job="cosmos-serve"}',
                       "cosmos_ingest_vision_tokens_sum", {}),
        "vllm_success": ('sum(vllm:request_success_total{job="cosmos-serve"})',
                         "vllm:request_success_total", {}),
        "vllm_ttft": ('sum(vllm:time_to_first_token_seconds_count{job="cosmos-serve"})',
                      "vllm:time_to_first_token_seconds_count", {}),
        "vllm_generated": ('sum(vllm:generation_tokens_total{job="cosmos-serve"})',
                           "vllm:generation_tokens_total", {}),
    }
    before = {k: current(base, name, **labels) for k, (_, name, labels) in watched.items()}
    for key, (expr, _, _) in watched.items():  # Prometheus has caught up before we send
        seen = prometheus.wait_for(expr, before[key])
        assert (seen or 0.0) == before[key], (key, seen, before[key])

    clip = next(p for p in sorted(Path(media_dir).glob("*.mp4")))
    completion = vision = 0
    for content in ("Is the road wet? A) yes B) no", "Count the cars.",
                    [{"type": "video_url", "video_url": {"url": clip.as_uri()}},
                     {"type": "text", "text": "What happens?"}]):
        r = client.chat.completions.create(
            model=SERVED_NAME, max_tokens=6, temperature=0,
            messages=[{"role": "user", "content": content}],
            extra_body={"video_max_frames": 8, "video_max_pixels": 50176})
        completion += r.usage.completion_tokens
        vision += r.usage.prompt_tokens_details.model_dump().get("vision_tokens") or 0
    assert vision > 0, "the video request reported no vision tokens"

    want = {"chat": 3, "ttft": 3, "completion": completion, "vision_count": 1,
            "vision_sum": vision, "vllm_success": 3, "vllm_ttft": 3, "vllm_generated": completion}
    for key, delta in want.items():
        expr = watched[key][0]
        got = prometheus.wait_for(expr, before[key] + delta)
        assert got == before[key] + delta, f"{key}: Prometheus has {got}, want {before[key]} + {delta}"
        # ... and it is what the server itself says now.
        assert current(base, watched[key][1], **watched[key][2]) == got, key


def test_alert_rules_evaluate_on_the_real_series(prometheus):
    def rules():
        groups = prometheus.api("rules")["groups"]
        return {r["name"]: r for g in groups for r in g["rules"]}

    deadline = time.monotonic() + 60
    loaded = rules()
    while time.monotonic() < deadline and any(
            r["lastEvaluation"].startswith("0001") for r in loaded.values()):
        time.sleep(1)
        loaded = rules()
    assert set(loaded) == {r["alert"] for r in RULES}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"
    # A healthy, ready, idle server: nothing fires.
    assert prometheus.api("alerts")["alerts"] == []


def test_every_dashboard_query_runs(prometheus):
    empty = []
    for expr in dashboard_queries():
        if not prometheus.query(expr):  # a query error fails inside api()
            empty.append(expr)
    # Requests were sent before (test order): the core panels have data.
    for needle in ("cosmos_requests_total", "cosmos_time_to_first_token_seconds_bucket",
                   "vllm:kv_cache_usage_perc", "vllm:num_requests_waiting",
                   "cosmos_ingest_vision_tokens_bucket", "cosmos_engine_ready"):
        assert not [e for e in empty if needle in e], f"no data for {needle}: {empty}"


def test_every_metric_the_dashboard_and_the_rules_name_is_exported(server):
    names = exported(server.base_url)
    queries = dashboard_queries() + [r["expr"] for r in RULES]
    used = set()
    for q in queries:
        used |= {m for m in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", q)
                 if m.startswith(("cosmos_", "vllm:", "process_"))}
    assert {"vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
            "cosmos_requests_total"} <= used
    missing = sorted(used - set(names))
    assert not missing, f"queried but not exported by the server: {missing}"
