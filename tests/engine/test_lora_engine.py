"""A PEFT adapter served by the real vLLM CPU engine answers as its weights merged into the base.

Two real servers (the whole cost of this module, a few minutes, started in the background ahead
of it: tests/engine_servers.py): the tiny checkpoint with the adapter `--lora site-a=DIR`, and
the same adapter merged into the tiny checkpoint by PEFT's `merge_and_unload` and served as a
plain checkpoint. The adapter has random A and B (so it moves
the output away from the base's) on the language model's projections and, where the engine
applies them, on the vision tower and merger; each request carries a short real clip so those
weights take part.

Tolerance: greedy tokens must be equal and their logprobs within TOL nats. The tiny random
model's next-token distribution is nearly flat, so two candidates can be within bf16 rounding of
each other; if the tokens part at some step, that step must be such a tie (the other server's
token within TOL of the chosen one in its top 5), and the comparison ends there.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.engine_servers import POOL, Serve, need, once, plan, tiny_checkpoint

pytestmark = pytest.mark.engine

TOL = 0.05  # nats; measured 2026-12-01: 16/16 tokens equal, at most 0.0039 apart
NAME = "cosmos-tiny"
CLIP = "drv_cr1_sample_4fps.mp4"


COMMON = ["--served-model-name", NAME, "--enforce-eager", "--max-model-len", "4096",
          "--cpu-kv-cache-gib", "1", "--no-warmup-on-start",
          "--allowed-local-media-dirs", str(REPO.parent / "shared" / "media")]


@once
def adapters() -> Path:
    """site-a (random A and B, vision tower and merger too) and its merge into the base, built
    by PEFT in a subprocess: the background thread may need them before any test does."""
    d = POOL.mktemp("lora")
    done = subprocess.run([sys.executable, "-m", "tests.engine.lora_adapters",
                           str(tiny_checkpoint()), str(d / "site-a"), str(d / "merged")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return d


@pytest.fixture(scope="module")
def adapter_server(tiny_model):
    yield need("lora-adapter")
    POOL.release("lora-adapter")


@pytest.fixture(scope="module")
def merged_server(tiny_model):
    yield need("lora-merged")
    POOL.release("lora-merged")


plan("lora-adapter", adapter_server, rank=1, start=lambda tmp: Serve(
    [*COMMON, "--model", str(tiny_checkpoint()), "--lora", f"site-a={adapters() / 'site-a'}",
     "--allow-runtime-lora-updating"], tmp / "lora.log"))
plan("lora-merged", merged_server, rank=2, start=lambda tmp: Serve(
    [*COMMON, "--model", str(adapters() / "merged")], tmp / "merged.log"))


def ask(url: str, model: str, media_dir: Path) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", timeout=600, json={
        "model": model, "max_tokens": 16, "temperature": 0, "logprobs": True,
        "top_logprobs": 5, "return_raw_text": True, "guardrail": False,
        # a short, small clip: the vision tower runs, the prompt stays small
        "video_fps": 2, "video_end": 2, "video_max_pixels": 128 * 28 * 28,
        "messages": [{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": f"file://{media_dir / CLIP}"}},
            {"type": "text", "text": "What does the car do next?"}]}]})


def tokens(resp: httpx.Response) -> list[dict]:
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["logprobs"]["content"]


@pytest.fixture(scope="module")
def runs(adapter_server, merged_server, media_dir, tmp_path_factory):
    adapter = adapters() / "site-a"
    broken = tmp_path_factory.mktemp("broken")
    (broken / "adapter_config.json").write_text('{"r": 8, "peft_type": "LORA"}')  # no weights
    out: dict = {}
    url = adapter_server.base_url
    out["models"] = httpx.get(url + "/v1/models").json()["data"]
    out["adapter"] = tokens(ask(url, "site-a", media_dir))
    out["base"] = tokens(ask(url, NAME, media_dir))
    out["unknown"] = ask(url, "site-x", media_dir)
    out["load_broken"] = httpx.post(url + "/v1/load_lora_adapter", json={
        "lora_name": "site-b", "lora_path": str(broken)})
    out["load"] = httpx.post(url + "/v1/load_lora_adapter", json={
        "lora_name": "site-b", "lora_path": str(adapter)})
    out["loaded"] = tokens(ask(url, "site-b", media_dir))
    out["unload"] = httpx.post(url + "/v1/unload_lora_adapter", json={"lora_name": "site-b"})
    out["unloaded"] = ask(url, "site-b", media_dir)
    out["log"] = adapter_server.log_path.read_text(errors="replace")
    out["merged"] = tokens(ask(merged_server.base_url, NAME, media_dir))
    return out


def same_greedy(a: list[dict], b: list[dict]) -> int:
    """Compare two greedy runs token by token; returns how many tokens agreed."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x["token"] != y["token"]:
            tops = {t["token"]: t["logprob"] for t in y["top_logprobs"]}
            assert x["token"] in tops and abs(tops[x["token"]] - y["logprob"]) <= TOL, (
                f"token {i}: {x['token']!r} ({x['logprob']:.4f}) vs {y['token']!r} "
                f"({y['logprob']:.4f}) is no tie")
            return i
        assert abs(x["logprob"] - y["logprob"]) <= TOL, (i, x["logprob"], y["logprob"])
    return min(len(a), len(b))


def test_adapter_answers_as_its_merged_weights(runs):
    assert len(runs["adapter"]) == len(runs["merged"]) == 16
    agreed = same_greedy(runs["adapter"], runs["merged"])
    print(f"adapter vs merged: {agreed}/16 tokens equal, max |dlogprob| "
          f"{max(abs(x['logprob'] - y['logprob']) for x, y in zip(runs['adapter'][:agreed], runs['merged'][:agreed])):.4f}"
          if agreed else "adapter vs merged: a tie at the first token")
    # The adapter matters: the base alone answers otherwise.
    base, lora = runs["base"], runs["adapter"]
    assert [t["token"] for t in base] != [t["token"] for t in lora] or max(
        abs(x["logprob"] - y["logprob"]) for x, y in zip(base, lora)) > 10 * TOL


def test_vision_tower_weights_were_applied_not_dropped(runs):
    # ours: the adapter has tower/merger weights; vLLM's: its tower/connector LoRA is on
    assert "LoRA adapter site-a loaded" in runs["log"] and "vision tower too" in runs["log"]
    assert "LoRA for the tower and connector of multimodal models" in runs["log"]


def test_listed_routed_loaded_and_unloaded(runs):
    cards = {c["id"]: c for c in runs["models"]}
    assert cards["site-a"]["parent"] == NAME and cards[NAME]["parent"] is None
    assert runs["unknown"].status_code == 404
    assert runs["unknown"].json()["error"]["code"] == "model_not_found"
    assert runs["load_broken"].status_code == 400
    assert "has no adapter weights" in runs["load_broken"].json()["error"]["message"]
    assert runs["load"].status_code == 200
    assert [t["token"] for t in runs["loaded"]] == [t["token"] for t in runs["adapter"]]
    assert runs["unload"].status_code == 200 and runs["unloaded"].status_code == 404
