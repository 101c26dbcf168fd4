#!/usr/bin/env python3
"""CPU side by side: `cosmos-serve serve` against vLLM's own OpenAI server (`vllm serve`) on the tiny
checkpoint, one after the other, with the real clips of ../shared/media sent as data: URLs.

Prints, per server: seconds to ready, process-tree RSS once ready and after the requests, and per
clip the prompt tokens and latency of a 16-token answer (first question on a clip, then a repeat
question on the same clip, the evaluation pattern). vllm serve gets `--media-io-kwargs` fps 4 so
that both sample at Cosmos' rate; ours also applies Cosmos' whole-clip pixel budget.

    .venv/bin/python tests/bench/server_cpu.py [--clips a.mp4,b.mp4]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from app.dev.demo import stop_process, wait_ready  # noqa: E402
from app.dev.tiny_model import build_tiny_model  # noqa: E402

MEDIA = REPO.parent / "shared" / "media"
CLIPS = ["drv_cr1_sample_4fps.mp4", "drv_predict1_dashcam_batch4.mp4",
         "drv_transfer1_av_rgb_dusk_9s.mp4", "phy_moviepy_airplane_failing_audio.mp4"]
COMMON = ["--served-model-name", "q", "--max-model-len", "16384", "--enforce-eager",
          "--host", "127.0.0.1"]


def tree_rss_mb(pid: int) -> float:
    out = subprocess.run(["ps", "-eo", "pid,ppid,rss"], capture_output=True, text=True).stdout
    rows = [tuple(map(int, ln.split())) for ln in out.splitlines()[1:]]
    pids, grew = {pid}, True
    while grew:
        grew = False
        for p, pp, _ in rows:
            if pp in pids and p not in pids:
                pids.add(p)
                grew = True
    total = sum(rss for p, _, rss in rows if p in pids)
    return total / 1024


def commands(model: Path, port: int) -> dict[str, list[str]]:
    return {
        "cosmos-serve": [sys.executable, "-m", "app", "serve", "--model", str(model),
                         "--port", str(port), "--cpu-kv-cache-gib", "1", *COMMON],
        "vllm serve": [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
                       str(model), "--port", str(port),
                       "--media-io-kwargs", json.dumps({"video": {"fps": 4, "num_frames": -1}}),
                       *COMMON],
    }


def measure(name: str, cmd: list[str], port: int, clips: list[Path]) -> dict:
    from openai import OpenAI

    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1"}
    log = open(f"/tmp/bench_{name.replace(' ', '_')}.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, timeout_s=900)
        res = {"ready_s": round(time.monotonic() - t0, 1), "rss_ready_mb": tree_rss_mb(proc.pid)}
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", timeout=600)
        per_clip = {}
        for clip in clips:
            url = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
            times, usage = [], None
            try:
                for q in ("What happens?", "Is anything unsafe?", "What is moving?"):
                    t = time.perf_counter()
                    r = client.chat.completions.create(
                        model="q", max_tokens=16, temperature=0, extra_body={"ignore_eos": True},
                        messages=[{"role": "user", "content": [
                            {"type": "video_url", "video_url": {"url": url}},
                            {"type": "text", "text": q}]}])
                    times.append(time.perf_counter() - t)
                    usage = r.usage
            except Exception as exc:  # noqa: BLE001 - a rejection is a result too
                per_clip[clip.name] = {"error": str(exc)[:200]}
                continue
            per_clip[clip.name] = {"prompt_tokens": usage.prompt_tokens,
                                   "first_ms": round(times[0] * 1000),
                                   "repeat_ms": round(statistics.median(times[1:]) * 1000)}
        res["clips"] = per_clip
        res["rss_after_mb"] = tree_rss_mb(proc.pid)
        return res
    finally:
        stop_process(proc)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--port", type=int, default=8391)
    args = ap.parse_args()
    model = build_tiny_model(REPO / ".cache" / "tiny-model")
    clips = [MEDIA / c for c in args.clips.split(",")]
    results = {name: measure(name, cmd, args.port, clips)
               for name, cmd in commands(model, args.port).items()}
    ours, peer = results["cosmos-serve"], results["vllm serve"]
    print(json.dumps(results, indent=1))
    print(f"\n{'':34}{'cosmos-serve':>14}{'vllm serve':>12}{'ratio':>8}")
    rows = [("ready (s)", ours["ready_s"], peer["ready_s"]),
            ("RSS ready (MB)", ours["rss_ready_mb"], peer["rss_ready_mb"]),
            ("RSS after requests (MB)", ours["rss_after_mb"], peer["rss_after_mb"])]
    for clip in clips:
        o, p = ours["clips"][clip.name], peer["clips"][clip.name]
        for key, label in (("prompt_tokens", "tokens"), ("first_ms", "first ms"),
                           ("repeat_ms", "repeat ms")):
            rows.append((f"{clip.name[:22]} {label}", o.get(key), p.get(key)))
    for label, a, b in rows:
        fa = f"{a:>14.0f}" if a is not None else f"{'error':>14}"
        fb = f"{b:>12.0f}" if b is not None else f"{'error':>12}"
        ratio = f"{a / b:>8.2f}" if a is not None and b else f"{'-':>8}"
        print(f"{label:34}{fa}{fb}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
