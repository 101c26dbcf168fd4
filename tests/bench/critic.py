#!/usr/bin/env python3
"""What the model critic costs on the CPU engine: one `cosmos-serve serve` on the tiny checkpoint,
the same request on a real clip with the critic off and on (`guardrail_critic` per request),
alternating, after one warm-up of each; median end-to-end latency of each and their difference.

Prefix caching is off (`--no-enable-prefix-caching`), so every request pays its prefill as a new
clip would: the critic's prompt (its own system prompt, then the video) shares no prefix with the
answer's anyway, but a repeat of the same critic prompt would. The critic's tokens per ask come
from vLLM's generation-token counter less the answers' own.

    .venv/bin/python tests/bench/critic.py [--clip NAME] [--runs 5] [--critic-max-tokens 1024]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from app.dev.demo import stop_process, wait_ready  # noqa: E402
from app.dev.tiny_model import build_tiny_model  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MEDIA = REPO.parent / "shared" / "media"


def scrape(base: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(base + "/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default="drv_predict1_dashcam_batch4.mp4")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64, help="of the answer")
    ap.add_argument("--critic-max-tokens", type=int, default=1024)
    args = ap.parse_args()
    model = build_tiny_model(REPO / ".cache" / "tiny-model")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "app", "serve", "--model", str(model), "--served-model-name",
           "q", "--host", "127.0.0.1", "--port", str(port), "--enforce-eager",
           "--max-model-len", "16384", "--cpu-kv-cache-gib", "1", "--no-enable-prefix-caching",
           "--guardrail-critic-max-tokens", str(args.critic_max_tokens),
           "--allowed-local-media-dirs", str(MEDIA)]
    log = open(REPO / ".cache" / "critic-bench.log", "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(base + "/health/ready", proc, timeout_s=900)
        body = {"model": "q", "max_tokens": args.max_tokens, "temperature": 0, "messages": [
            {"role": "user", "content": [
                {"type": "video_url", "video_url": {"url": (MEDIA / args.clip).as_uri()}},
                {"type": "text", "text": "Is it safe to turn left? A) yes B) no"}]}]}
        seconds: dict[bool, list[float]] = {False: [], True: []}
        answer_tokens: dict[bool, int] = {False: 0, True: 0}
        generated = {False: 0.0, True: 0.0}
        verdicts: dict[str, int] = {}
        stage = (0.0, 0.0)
        for i in range(args.runs + 1):
            if i == 1:  # the critic stage's histogram from here on, warm-up left out
                stage = (scrape(base, "cosmos_guardrail_critic_seconds_sum"),
                         scrape(base, "cosmos_guardrail_critic_seconds_count"))
            for critic in (False, True):
                before = scrape(base, "vllm:generation_tokens_total")
                t0 = time.perf_counter()
                r = httpx.post(base + "/v1/chat/completions",
                               json={**body, "guardrail_critic": critic}, timeout=600)
                took = time.perf_counter() - t0
                r.raise_for_status()
                if i == 0:
                    continue  # warm-up
                seconds[critic].append(took)
                answer_tokens[critic] += r.json()["usage"]["completion_tokens"]
                generated[critic] += scrape(base, "vllm:generation_tokens_total") - before
        for v in ("plausible", "implausible", "unknown", "skipped", "timeout", "error"):
            verdicts[v] = int(scrape(base, "cosmos_guardrail_critic_verdicts_total", verdict=v))
        off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
        critic_tokens = (generated[True] - answer_tokens[True]) / args.runs
        print(json.dumps({
            "clip": args.clip, "runs": args.runs, "answer_max_tokens": args.max_tokens,
            "critic_max_tokens": args.critic_max_tokens,
            "off_s": [round(s, 2) for s in seconds[False]],
            "on_s": [round(s, 2) for s in seconds[True]],
            "median_off_s": round(off, 2), "median_on_s": round(on, 2),
            "critic_cost_s": round(on - off, 2), "critic_tokens_per_ask": critic_tokens,
            "critic_stage_mean_s": round(
                (scrape(base, "cosmos_guardrail_critic_seconds_sum") - stage[0])
                / max(scrape(base, "cosmos_guardrail_critic_seconds_count") - stage[1], 1), 2),
            "verdicts": verdicts}, indent=1))
    finally:
        stop_process(proc)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
