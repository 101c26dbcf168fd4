"""`cosmos-serve dev demo`: the whole path on a CPU in one command.

Builds the tiny random checkpoint, starts `cosmos-serve serve` on it, streams one real clip
through the official `openai` SDK and prints reasoning and answer as they arrive. The tiny
model's weights are random, so its words are noise; the pipeline around them is the real one.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CLIP = REPO.parent / "shared" / "media" / "drv_cr1_sample_4fps.mp4"
SERVED_NAME = "cosmos-reason1-tiny"


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 900) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"server not ready after {timeout_s:.0f} s")


def stop_process(proc: subprocess.Popen, timeout_s: float = 60) -> None:
    """SIGTERM (the server drains and shuts vLLM down), then SIGKILL if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve_command(model_dir: str, port: int, media_dir: Path) -> list[str]:
    return [sys.executable, "-m", "app", "serve", "--model", str(model_dir),
            "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--enforce-eager", "--max-model-len", "16384", "--cpu-kv-cache-gib", "1",
            "--allowed-local-media-dirs", str(media_dir)]


def run_demo(clip: str | None, port: int, model_dir: str, question: str) -> int:
    from openai import OpenAI

    from app.dev.tiny_model import build_tiny_model

    clip_path = Path(clip or DEFAULT_CLIP).resolve()
    if not clip_path.is_file():
        print(f"demo: no clip at {clip_path}; pass --clip PATH", file=sys.stderr)
        return 2
    print(f"[demo] tiny model: {build_tiny_model(model_dir)}")
    proc = subprocess.Popen(serve_command(model_dir, port, clip_path.parent), cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        took = wait_ready(f"http://127.0.0.1:{port}/health/ready", proc)
        print(f"[demo] server ready after {took:.0f} s; sending {clip_path.name}")
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="demo")
        data_url = "data:video/mp4;base64," + base64.b64encode(clip_path.read_bytes()).decode()
        t0 = time.perf_counter()
        stream = client.chat.completions.create(
            model=SERVED_NAME, stream=True, max_tokens=48, temperature=0.6, seed=0,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": [
                {"type": "video_url", "video_url": {"url": data_url}},
                {"type": "text", "text": question}]}])
        fields = {"reasoning": [], "answer": []}
        usage, first = None, None
        for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                extra = choice.delta.model_extra or {}
                if extra.get("reasoning_content"):
                    fields["reasoning"].append(extra["reasoning_content"])
                if choice.delta.content:
                    fields["answer"].append(choice.delta.content)
                first = first or time.perf_counter()
        total = time.perf_counter() - t0
        print("[demo] reasoning:", "".join(fields["reasoning"]) or "(none)")
        print("[demo] answer:   ", "".join(fields["answer"]) or "(none)")
        if usage:
            print(f"[demo] usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} "
                  f"completion tokens; first token {((first or t0) - t0) * 1000:.0f} ms, "
                  f"total {total * 1000:.0f} ms")
        print("[demo] (random tiny weights: the words are noise, the pipeline is real)")
        return 0
    finally:
        stop_process(proc)
