"""The client side: identical requests to both servers through the `openai` client, and the phases
that time them (text decode, single video requests, the 32-request burst)."""
from __future__ import annotations

import asyncio
import math
import statistics
import time

from . import BUDGET, DEFAULT_FRAME_CAP, NAME, V_CONC, V_WARM
from .clips import Clips

TEXT = ("Autonomous vehicles record long drives with several cameras, and engineers review the clips to "
        "find moments where the planner hesitated, braked late or misjudged a gap. Summarise the typical "
        "causes of such events in urban traffic at dusk, when low sun, headlights and reflections make "
        "pedestrians, cyclists and lane markings harder to see, and explain how a video language model "
        "could help triage the footage.")  # 100 prompt tokens with the chat template


def sampling_extra(kind: str) -> dict:
    # Identical sampling in both servers: greedy, no penalty, no top-k/top-p (vllm serve would otherwise
    # apply the folder's generation_config.json: repetition_penalty 1.05, top_k 1, top_p 0.001).
    extra = {"ignore_eos": True, "repetition_penalty": 1.0, "top_k": -1}
    if kind == "ours":
        # reasoning off: the same prompt as vllm serve (no reasoning instruction); the answer then
        # streams as it comes, through the parser and the guardrail as users get it.
        extra |= {"reasoning": False}
    return extra


def video_extra(kind: str, budget: str) -> dict:
    extra = sampling_extra(kind)
    if kind == "ours":
        if budget == "81920":
            extra |= {"video_max_pixels": BUDGET, "video_min_pixels": 3136}
        # "default": the server's defaults (4 fps, total 6,422,528 px, per-frame cap 768*28*28)
    else:
        cap = BUDGET if budget == "81920" else DEFAULT_FRAME_CAP
        extra["mm_processor_kwargs"] = {"max_pixels": cap, "min_pixels": 3136}
    return extra


def video_messages(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                         {"type": "text", "text": "Describe what happens in this video."}]}]


def text_messages() -> list[dict]:
    return [{"role": "user", "content": TEXT}]


def make_client(base: str):
    import httpx
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base + "/v1", api_key="unused", timeout=600, max_retries=0,
                       http_client=httpx.AsyncClient(timeout=600, limits=httpx.Limits(
                           max_connections=256, max_keepalive_connections=64)))


async def stream_chat(cli, messages: list[dict], max_tokens: int, extra: dict,
                      model: str = NAME) -> dict:
    """One streamed request. TTFT: request start (body upload included) to the first chunk that carries
    text; decode rate: (tokens - 1) / (last text chunk - first text chunk)."""
    t0 = time.perf_counter()
    a0 = time.time()
    first = last = None
    usage = None
    chunks = 0
    stream = await cli.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=0.0, top_p=1.0, stream=True,
        stream_options={"include_usage": True}, extra_body=extra)
    async for chunk in stream:
        now = time.perf_counter()
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            d = c.delta
            if d is None:
                continue
            extra_fields = d.model_extra or {}
            if d.content or extra_fields.get("reasoning_content") or extra_fields.get("reasoning"):
                if first is None:
                    first = now
                last = now
                chunks += 1
    end = time.perf_counter()
    out = {"t_start": a0, "ttft_s": None if first is None else first - t0, "e2e_s": end - t0,
           "chunks": chunks}
    if usage is not None:
        out["prompt_tokens"] = usage.prompt_tokens
        out["completion_tokens"] = usage.completion_tokens
        if first is not None and last is not None and last > first and usage.completion_tokens > 1:
            out["decode_tok_s"] = (usage.completion_tokens - 1) / (last - first)
    return out


def med(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs: list, q: float) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    f, c = math.floor(k), math.ceil(k)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def r3(x: float | None, scale: float = 1.0) -> float | None:
    return None if x is None else round(x * scale, 3)


async def warm_text(base: str, kind: str, model: str = NAME) -> None:
    cli = make_client(base)
    for _ in range(2):
        await stream_chat(cli, text_messages(), 16, sampling_extra(kind), model)
    await cli.close()


async def warm_video(base: str, kind: str, clips: Clips) -> dict:
    """The first video requests after ready: vllm serve compiles kernels and builds its processor here
    (tens of seconds); ours did that before it reported ready. Never timed elsewhere."""
    cli = make_client(base)
    t = time.perf_counter()
    w = list(V_WARM)
    out = {"video_first_ms": r3((await stream_chat(cli, video_messages(clips.url(w[0])), 8,
                                                   video_extra(kind, "81920")))["e2e_s"], 1e3)}
    out["video_default_first_ms"] = r3((await stream_chat(cli, video_messages(clips.url(w[1])), 8,
                                                          video_extra(kind, "default")))["e2e_s"], 1e3)
    # a small burst, so batched shapes are compiled/captured before the timed burst
    await asyncio.gather(*[stream_chat(cli, video_messages(clips.url(v)), 8, video_extra(kind, "81920"))
                           for v in w[2:6]])
    out["total_s"] = r3(time.perf_counter() - t)
    await cli.close()
    return out


async def phase_text(base: str, kind: str, runs: int, model: str = NAME) -> dict:
    """`model`: the base, or a LoRA adapter the server serves next to it."""
    cli = make_client(base)
    res = [await stream_chat(cli, text_messages(), 512, sampling_extra(kind), model)
           for _ in range(runs)]
    await cli.close()
    return {"runs": res, "prompt_tokens": res[0].get("prompt_tokens"),
            "completion_tokens": res[0].get("completion_tokens"),
            "decode_tok_s": r3(med([r.get("decode_tok_s") for r in res])),
            "ttft_ms": r3(med([r["ttft_s"] for r in res]), 1e3),
            "e2e_ms": r3(med([r["e2e_s"] for r in res]), 1e3)}


async def phase_video(base: str, kind: str, clips: Clips, budget: str, variants) -> dict:
    cli = make_client(base)
    res = []
    for v in variants:
        res.append(await stream_chat(cli, video_messages(clips.url(v)), 64, video_extra(kind, budget)))
    await cli.close()
    return {"runs": res, "prompt_tokens": sorted({r.get("prompt_tokens") for r in res}),
            "completion_tokens": res[0].get("completion_tokens"),
            "ttft_ms": r3(med([r["ttft_s"] for r in res]), 1e3),
            "ttft_ms_min": r3(min(r["ttft_s"] for r in res), 1e3),
            "e2e_ms": r3(med([r["e2e_s"] for r in res]), 1e3),
            "decode_tok_s": r3(med([r.get("decode_tok_s") for r in res]))}


def _conc_worker(job: tuple) -> list[dict]:
    base, kind, urls, start_at = job

    async def go() -> list[dict]:
        cli = make_client(base)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        res = await asyncio.gather(*[stream_chat(cli, video_messages(u), 64, video_extra(kind, "81920"))
                                     for u in urls])
        await cli.close()
        return list(res)

    return asyncio.run(go())


def phase_conc(base: str, kind: str, clips: Clips, n: int = 32, procs: int = 8, timeout: float = 300) -> dict:
    """32 requests at once, sent from `procs` processes so that the client's JSON encoding of 32 bodies of
    4.6 MB does not serialise the sends."""
    import multiprocessing as mp

    variants = list(V_CONC)[:n]
    procs = min(procs, n)
    urls = [clips.url(v) for v in variants]  # built before the fork: children inherit them
    groups = [urls[i::procs] for i in range(procs)]
    start_at = time.time() + 3.0
    with mp.get_context("fork").Pool(procs) as pool:
        parts = pool.map_async(_conc_worker, [(base, kind, g, start_at) for g in groups]).get(timeout)
    res = [r for part in parts for r in part]
    end = max(r["t_start"] + r["e2e_s"] for r in res)
    wall = end - start_at
    out_tokens = sum(r.get("completion_tokens") or 0 for r in res)
    ttfts = [r["ttft_s"] for r in res]
    return {"requests": len(res), "wall_s": r3(wall), "output_tokens": out_tokens,
            "out_tok_s": r3(out_tokens / wall), "prompt_tokens": sorted({r.get("prompt_tokens") for r in res}),
            "ttft_p50_ms": r3(pct(ttfts, 0.5), 1e3), "ttft_p90_ms": r3(pct(ttfts, 0.9), 1e3),
            "ttft_max_ms": r3(max(t for t in ttfts if t is not None), 1e3),
            "e2e_p50_ms": r3(pct([r["e2e_s"] for r in res], 0.5), 1e3),
            "send_skew_ms": r3(max(r["t_start"] for r in res) - start_at, 1e3),
            "epoch_start": round(start_at, 3), "epoch_end": round(end, 3)}  # for threads.py


