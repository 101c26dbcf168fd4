#!/usr/bin/env python3
"""GPU benchmark: cosmos-serve against `vllm serve`, same model folder, settings, clips and sampling.

On the GPU machine (vLLM 0.26.0 carried, see docs/performance.md, "GPU"), from the repository root:

    PYTHONPATH=/root/site:$PWD python3 tests/bench/gpu.py run --quant none --which ours,vllm \\
        --out $OUT/results.json

starts our server (`python -m app serve`, a subprocess) and then `vllm serve` (vLLM's OpenAI server) on the
dummy-weight 7B folder, one after the other (one fits on the GPU at a time), and measures both through HTTP with
the `openai` client:

- text: one stream, ~100 prompt tokens -> 512 tokens (ignore_eos): TTFT and decode tokens/s;
- video: one request with a real 10 s 1080p30 H.264 clip as a data: URL, 4 fps (40 frames), at the 81,920
  per-frame pixel budget and at Cosmos' default total budget: TTFT (upload and decode included), total time
  for 64 tokens;
- conc32: 32 concurrent such requests (81,920 budget): output tokens/s and TTFT percentiles.

Every timed video request gets a clip of its own whose decoded pixels differ (the last GOP is re-encoded with a
16x16 marker, see `make-tails`; decode cost is unchanged), so neither vLLM's processor/encoder caches nor our clip
cache can serve it: the figures are cold. Prefix caching is off in both servers and our clip cache is off.
Results are appended to the JSON as each phase finishes, so a run cut short still leaves what it measured.

Other subcommands:
    make-tails    (here, once) encode the clip variants' tails: .gpu/clip/tails.npz
    report        merge result files, print the table (ours, vllm serve, ratio), write the docs JSON
    decode-bench  CPU decode of the clip (threads, parallel decodes) and an NVDEC probe; JSON on stdout
    gemv-bench    the decoder's weight matrix-vector products at batch 1 (bf16, fp8): the kernels' floor
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import io
import json
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAME = "q"  # served model name in both servers
COSMOS_TOTAL_PIXELS = 6_422_528
N_FRAMES = 40  # 10 s at 4 fps
# qwen-vl-utils' per-frame cap for a 40-frame clip at Cosmos' default total budget:
# max(min(768*28*28, total/40*2), int(128*28*28*1.05))
DEFAULT_FRAME_CAP = int(max(min(768 * 28 * 28, COSMOS_TOTAL_PIXELS / N_FRAMES * 2),
                            int(128 * 28 * 28 * 1.05)))
BUDGET = 81_920
# Variant indices: timed single requests, the concurrent burst, warm-up (never reused across phases).
V_SINGLE_81920 = range(0, 5)
V_SINGLE_DEFAULT = range(5, 10)
V_CONC = range(10, 42)
V_WARM = range(42, 48)
N_VARIANTS = 48
TEXT = ("Autonomous vehicles record long drives with several cameras, and engineers review the clips to "
        "find moments where the planner hesitated, braked late or misjudged a gap. Summarise the typical "
        "causes of such events in urban traffic at dusk, when low sun, headlights and reflections make "
        "pedestrians, cyclists and lane markings harder to see, and explain how a video language model "
        "could help triage the footage.")  # 100 prompt tokens with the chat template

T0 = time.time()


def log(*a: object) -> None:
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


# ----------------------------------------------------------------------------- clip variants

def _annexb_nals(b: bytes) -> list[bytes]:
    starts, i = [], 0
    while (j := b.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(j + 3)
        i = j + 3
    nals = []
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else len(b)
        nal = b[s:e]
        if k + 1 < len(starts):
            nal = nal.rstrip(b"\x00")  # the next start code's leading zero
        nals.append(nal)
    return nals


def make_tails(clip: str, n: int, out: str) -> None:
    """Re-encode the clip's last GOP n times, each with a 16x16 luma marker at its own place, with the
    clip's own x264 settings (defaults, crf 23): same parameter sets, same frame types, ~same sizes.
    Stored as AVCC packets (length-prefixed NALs) to splice onto the untouched head of the clip."""
    import av
    import numpy as np

    data = Path(clip).read_bytes()
    src = av.open(io.BytesIO(data))
    stream = src.streams.video[0]
    tb = stream.time_base
    packets = [p for p in src.demux(stream) if p.size]
    k = max(i for i, p in enumerate(packets) if p.is_keyframe)
    k_pts = packets[k].pts
    dec = av.open(io.BytesIO(data))
    tail = [f.to_ndarray(format="yuv420p") for f in dec.decode(video=0) if f.pts >= k_pts]
    h, w = stream.codec_context.height, stream.codec_context.width
    blobs, sizes, pts, dts, key, variant = [], [], [], [], [], []
    for v in range(n):
        oc = av.open(io.BytesIO(), "w", format="mp4")
        st = oc.add_stream("libx264", rate=round(float(stream.average_rate)))
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.codec_context.options = {"crf": "23", "preset": "medium"}
        pk = []
        for i, a in enumerate(tail):
            a = a.copy()
            x = 16 * (v % (w // 16))
            a[0:16, x:x + 16] = (37 * v + 11) % 256
            frame = av.VideoFrame.from_ndarray(a, format="yuv420p")
            frame.pts = i
            pk += st.encode(frame)
        pk += st.encode(None)
        for p in pk:
            etb = p.time_base or st.time_base
            nals = [x for x in _annexb_nals(bytes(p)) if x and (x[0] & 0x1F) not in (6, 7, 8, 9)]
            avcc = b"".join(len(x).to_bytes(4, "big") + x for x in nals)
            blobs.append(avcc)
            sizes.append(len(avcc))
            pts.append(k_pts + int(round(p.pts * etb / tb)))
            dts.append(k_pts + int(round(p.dts * etb / tb)))
            key.append(int(p.is_keyframe))
            variant.append(v)
        oc.close()
        if v % 16 == 15:
            print(f"variant {v}: {len(pk)} packets, {sum(s for s, vv in zip(sizes, variant) if vv == v)} B",
              flush=True)
    np.savez(out, blob=np.frombuffer(b"".join(blobs), dtype=np.uint8), size=np.array(sizes),
             pts=np.array(pts), dts=np.array(dts), key=np.array(key), variant=np.array(variant),
             k_index=np.array(k), k_pts=np.array(k_pts))
    print(f"wrote {out}: {n} variants, {sum(sizes)} B")


class Clips:
    """The clip and its variants (head of the original + one re-encoded last GOP each)."""

    def __init__(self, clip: str, tails: str):
        import numpy as np

        self.data = Path(clip).read_bytes()
        t = np.load(tails)
        self.blob = t["blob"].tobytes()
        self.rows = list(zip(t["size"].tolist(), t["pts"].tolist(), t["dts"].tolist(),
                             t["key"].tolist(), t["variant"].tolist()))
        self.offsets = []
        off = 0
        for size, *_ in self.rows:
            self.offsets.append(off)
            off += size
        self.n = int(t["variant"].max()) + 1
        self._urls: dict[int, str] = {}

    def variant(self, v: int) -> bytes:
        import av

        src = av.open(io.BytesIO(self.data))
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        k = max(i for i, p in enumerate(packets) if p.is_keyframe)
        buf = io.BytesIO()
        out = av.open(buf, "w", format="mp4")
        ost = out.add_stream_from_template(stream)
        for p in packets[:k]:
            p.stream = ost
            out.mux(p)
        for (size, pts, dts, key, vv), off in zip(self.rows, self.offsets):
            if vv != v:
                continue
            p = av.Packet(self.blob[off:off + size])
            p.pts, p.dts, p.time_base = pts, dts, stream.time_base
            p.is_keyframe = bool(key)
            p.stream = ost
            out.mux(p)
        out.close()
        src.close()
        return buf.getvalue()

    def url(self, v: int) -> str:
        if v not in self._urls:
            self._urls[v] = "data:video/mp4;base64," + base64.b64encode(self.variant(v)).decode()
        return self._urls[v]


# ----------------------------------------------------------------------------- requests

def sampling_extra(kind: str) -> dict:
    # Identical sampling in both servers: greedy, no penalty, no top-k/top-p (vllm serve would otherwise
    # apply the folder's generation_config.json: repetition_penalty 1.05, top_k 1, top_p 0.001).
    extra = {"ignore_eos": True, "repetition_penalty": 1.0, "top_k": -1}
    if kind == "ours":
        # reasoning off: the same prompt as vllm serve; raw text: dummy weights never emit <think>, so
        # the reasoning parser would hold untagged text to the end (see docs/performance.md).
        extra |= {"reasoning": False, "return_raw_text": True}
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


async def stream_chat(cli, messages: list[dict], max_tokens: int, extra: dict) -> dict:
    """One streamed request. TTFT: request start (body upload included) to the first chunk that carries
    text; decode rate: (tokens - 1) / (last text chunk - first text chunk)."""
    t0 = time.perf_counter()
    a0 = time.time()
    first = last = None
    usage = None
    chunks = 0
    stream = await cli.chat.completions.create(
        model=NAME, messages=messages, max_tokens=max_tokens, temperature=0.0, top_p=1.0, stream=True,
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


# ----------------------------------------------------------------------------- phases

async def phase_warmup(base: str, kind: str, clips: Clips) -> dict:
    cli = make_client(base)
    t = time.perf_counter()
    out = {}
    for _ in range(2):
        await stream_chat(cli, text_messages(), 16, sampling_extra(kind))
    # The first video request compiles kernels (tens of seconds): not timed anywhere else.
    w = list(V_WARM)
    out["video_first_s"] = (await stream_chat(cli, video_messages(clips.url(w[0])), 8,
                                              video_extra(kind, "81920")))["e2e_s"]
    await stream_chat(cli, video_messages(clips.url(w[1])), 8, video_extra(kind, "default"))
    # a small burst, so batched shapes are compiled/captured before the timed burst
    await asyncio.gather(*[stream_chat(cli, video_messages(clips.url(v)), 8, video_extra(kind, "81920"))
                           for v in w[2:6]])
    out["total_s"] = time.perf_counter() - t
    await cli.close()
    return out


async def phase_text(base: str, kind: str, runs: int) -> dict:
    cli = make_client(base)
    res = [await stream_chat(cli, text_messages(), 512, sampling_extra(kind)) for _ in range(runs)]
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


def phase_conc(base: str, kind: str, clips: Clips, procs: int = 8, timeout: float = 300) -> dict:
    """32 requests at once, sent from `procs` processes so that the client's JSON encoding of 32 bodies of
    4.6 MB does not serialise the sends."""
    import multiprocessing as mp

    variants = list(V_CONC)
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
            "send_skew_ms": r3(max(r["t_start"] for r in res) - start_at, 1e3)}


# ----------------------------------------------------------------------------- metrics scraping

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


# ----------------------------------------------------------------------------- servers

def nvidia_smi(query: str) -> str:
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return f"n/a ({exc})"


def wait_gpu_free(limit_mib: int = 2000, timeout: float = 90) -> float:
    t = time.time()
    while time.time() - t < timeout:
        used = nvidia_smi("memory.used").splitlines()
        try:
            if max(int(u) for u in used) < limit_mib:
                return time.time() - t
        except ValueError:
            return -1
        time.sleep(1)
    return -1


class Server:
    def __init__(self, kind: str, cmd: list[str], env: dict, port: int, logfile: Path):
        self.kind, self.cmd, self.env, self.port, self.logfile = kind, cmd, env, port, logfile
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.t0 = time.time()
        self.log = open(self.logfile, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=REPO, start_new_session=True)

    def wait_ready(self, timeout: float) -> float:
        while time.time() - self.t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.tail(60)}")
            try:
                if urllib.request.urlopen(self.base + "/health", timeout=2).status == 200:
                    return time.time() - self.t0
            except Exception:  # noqa: BLE001
                pass
            time.sleep(1)
        raise RuntimeError(f"{self.kind} not ready after {timeout:.0f} s:\n{self.tail(60)}")

    def tail(self, n: int) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)  # its own session: the server and its engine processes
        for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(pgid, signal.SIGKILL)  # engine-core children that outlived the parent
        except ProcessLookupError:
            pass


def server_cmd(kind: str, a: argparse.Namespace, quant: str, port: int) -> list[str]:
    py = a.python
    common = ["--model", a.model, "--served-model-name", NAME, "--load-format", "dummy",
              "--max-model-len", str(a.max_model_len), "--gpu-memory-utilization", str(a.gpu_mem),
              "--port", str(port), "--host", "127.0.0.1", "--no-enable-prefix-caching"]
    if quant != "none":
        common += ["--quantization", quant]
    if kind == "ours":
        launcher = ["-m", "app"]
        if a.ours_usage_context:  # A/B of the engine's usage context (vLLM's batch-size defaults)
            launcher = ["-c", _USAGE_CONTEXT_LAUNCHER.replace("CTX", a.ours_usage_context)]
        return [py, *launcher, "serve", *common, "--video-cache-bytes", "0", *shlex.split(a.ours_args)]
    trust = ["--trust-request-mm-kwargs"] if _vllm_gates_request_mm_kwargs() else []
    return [py, "-m", "vllm.entrypoints.openai.api_server", *common, "--seed", "0",
            "--media-io-kwargs", json.dumps({"video": {"fps": 4, "num_frames": -1}}),
            "--limit-mm-per-prompt", json.dumps({"video": 1, "image": 8}), *trust,
            *shlex.split(a.vllm_args)]


_USAGE_CONTEXT_LAUNCHER = """
import sys
import vllm.v1.engine.async_llm as m
from vllm.usage.usage_lib import UsageContext
_orig = m.AsyncLLM.from_engine_args.__func__
def _fea(cls, engine_args, *a, **k):
    k["usage_context"] = UsageContext["CTX"]
    return _orig(cls, engine_args, *a, **k)
m.AsyncLLM.from_engine_args = classmethod(_fea)
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _vllm_gates_request_mm_kwargs() -> bool:
    """vLLM after 0.26 refuses per-request mm_processor_kwargs unless started with
    --trust-request-mm-kwargs (a flag 0.26 does not know)."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        f = Path(loc) / "entrypoints" / "launchers" / "cli_args.py"
        if f.is_file() and "trust_request_mm_kwargs" in f.read_text(errors="replace"):
            return True
    return False


def server_env(kind: str, a: argparse.Namespace) -> dict:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(":") if p]
    if str(REPO) not in paths:
        paths.append(str(REPO))
    env["PYTHONPATH"] = ":".join(paths)
    env.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    for item in (a.ours_env if kind == "ours" else a.vllm_env):
        k, _, v = item.partition("=")
        env[k] = v
    return env


# ----------------------------------------------------------------------------- results

# (metric, quant, phase, field, unit)
ROWS = [
    ("decode_tok_s_bf16", "none", "text", "decode_tok_s", "tok/s"),
    ("decode_tok_s_fp8", "fp8", "text", "decode_tok_s", "tok/s"),
    ("ttft_ms_1080p_81920", "none", "video_81920", "ttft_ms", "ms"),
    ("ttft_ms_1080p_default", "none", "video_default", "ttft_ms", "ms"),
    ("e2e_ms_1080p_81920", "none", "video_81920", "e2e_ms", "ms"),
    ("conc32_out_tok_s", "none", "conc32", "out_tok_s", "tok/s"),
    ("conc32_ttft_p50_ms", "none", "conc32", "ttft_p50_ms", "ms"),
    # the same in FP8, and supporting figures
    ("ttft_ms_1080p_81920_fp8", "fp8", "video_81920", "ttft_ms", "ms"),
    ("ttft_ms_1080p_default_fp8", "fp8", "video_default", "ttft_ms", "ms"),
    ("e2e_ms_1080p_81920_fp8", "fp8", "video_81920", "e2e_ms", "ms"),
    ("conc32_out_tok_s_fp8", "fp8", "conc32", "out_tok_s", "tok/s"),
    ("conc32_ttft_p50_ms_fp8", "fp8", "conc32", "ttft_p50_ms", "ms"),
    ("text_ttft_ms_bf16", "none", "text", "ttft_ms", "ms"),
    ("text_ttft_ms_fp8", "fp8", "text", "ttft_ms", "ms"),
    ("e2e_ms_1080p_default", "none", "video_default", "e2e_ms", "ms"),
    ("e2e_ms_1080p_default_fp8", "fp8", "video_default", "e2e_ms", "ms"),
]


def make_rows(runs: dict, ours_key: str = "ours", vllm_key: str = "vllm") -> list[dict]:
    rows = []
    for metric, quant, phase, field, unit in ROWS:
        def get(server: str):
            return ((runs.get(f"{quant}/{server}") or {}).get(phase) or {}).get(field)

        ours, peer = get(ours_key), get(vllm_key)
        if ours is None and peer is None:
            continue
        ratio = round(ours / peer, 3) if ours is not None and peer else None
        rows.append({"metric": metric, "ours": ours, "vllm_serve": peer, "unit": unit, "ratio": ratio})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'metric':28s} {'ours':>10s} {'vllm serve':>11s} {'ours/vllm':>10s}  unit"]
    for r in rows:
        f = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"{r['metric']:28s} {f(r['ours']):>10s} {f(r['vllm_serve']):>11s} {ratio:>10s}  {r['unit']}")
    return "\n".join(lines)


def variants_table(runs: dict) -> str:
    fields = [("text", "decode_tok_s"), ("text", "ttft_ms"), ("video_81920", "ttft_ms"),
              ("video_81920", "e2e_ms"), ("video_default", "ttft_ms"), ("conc32", "out_tok_s"),
              ("conc32", "ttft_p50_ms")]
    head = f"{'run':34s} " + " ".join(f"{p[:7] + '.' + f[:9]:>18s}" for p, f in fields)
    lines = [head]
    for key in sorted(runs):
        r = runs[key]
        vals = []
        for p, f in fields:
            v = (r.get(p) or {}).get(f)
            vals.append(f"{'-' if v is None else f'{v:.1f}':>18s}")
        lines.append(f"{key:34s} " + " ".join(vals))
    return "\n".join(lines)


class Results:
    def __init__(self, path: Path):
        self.path = path
        self.data = {"gpu": nvidia_smi("name,memory.total"), "date": dt.date.today().isoformat(),
                     "vllm": _vllm_version(), "host": _host(), "rows": [], "runs": {}, "micro": {}}
        if path.exists():
            try:
                old = json.loads(path.read_text())
                self.data["runs"] = old.get("runs", {})
                self.data["micro"] = old.get("micro", {})
            except ValueError:
                pass

    def run(self, key: str) -> dict:
        return self.data["runs"].setdefault(key, {})

    def save(self) -> None:
        self.data["rows"] = make_rows(self.data["runs"])
        self.data["elapsed_s"] = round(time.time() - T0, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def _vllm_version() -> str:
    try:
        from importlib.metadata import version

        return version("vllm")
    except Exception:  # noqa: BLE001
        return "n/a"


def _host() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0]}


# ----------------------------------------------------------------------------- run

def bench_server(kind: str, key: str, a: argparse.Namespace, quant: str, clips: Clips, res: Results,
                 deadline: float, base: str | None = None) -> None:
    run = res.run(key)
    run.clear()
    srv = None
    if base is None:
        port = 8100 if kind == "ours" else 8200
        cmd = server_cmd(kind, a, quant, port)
        run["cmd"] = shlex.join(cmd)
        env_extra = a.ours_env if kind == "ours" else a.vllm_env
        if env_extra:
            run["env"] = env_extra
        logdir = Path(a.logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        srv = Server(kind, cmd, server_env(kind, a), port, logdir / f"{key.replace('/', '_')}.log")
        log(f"[{key}] starting: {run['cmd']}")
        srv.start()
        base = srv.base
    try:
        if srv is not None:
            run["start_s"] = round(srv.wait_ready(min(a.start_timeout, deadline - time.time())), 1)
            log(f"[{key}] ready after {run['start_s']} s")
        res.save()
        run["warmup"] = asyncio.run(asyncio.wait_for(phase_warmup(base, kind, clips),
                                                     max(30.0, deadline - time.time())))
        log(f"[{key}] warm-up {run['warmup']}")
        res.save()
        def bounded(coro):  # a phase may overrun the deadline by 30 s at most
            return asyncio.run(asyncio.wait_for(coro, max(10.0, deadline + 30 - time.time())))

        phases = [("text", lambda: bounded(phase_text(base, kind, a.text_runs)), 15),
                  ("video_81920", lambda: bounded(phase_video(base, kind, clips, "81920",
                                                              V_SINGLE_81920)), 15),
                  ("video_default", lambda: bounded(phase_video(base, kind, clips, "default",
                                                                V_SINGLE_DEFAULT)), 20),
                  ("conc32", lambda: phase_conc(base, kind, clips,
                                                timeout=max(10.0, deadline + 30 - time.time())), 30)]
        for name, fn, need in phases:
            if time.time() + need > deadline:
                run[name] = {"skipped": "out of time"}
                log(f"[{key}] {name} skipped: out of time")
                continue
            before = scrape(base)
            try:
                run[name] = fn()
            except Exception as exc:  # noqa: BLE001
                run[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            run[name]["server_metrics_ms"] = metric_means(before, scrape(base))
            brief = {k: v for k, v in run[name].items() if k != "runs"}
            log(f"[{key}] {name}: {json.dumps(brief)}")
            res.save()
    except Exception as exc:  # noqa: BLE001
        run["error"] = f"{type(exc).__name__}: {exc}"[-4000:]
        log(f"[{key}] FAILED: {run['error']}")
    finally:
        if srv is not None:
            srv.stop()
            run["gpu_free_wait_s"] = round(wait_gpu_free(), 1)
            if a.out_logs:
                tail = Path(a.out_logs) / f"{key.replace('/', '_')}.log"
                tail.parent.mkdir(parents=True, exist_ok=True)
                tail.write_text(srv.tail(a.log_lines))
        res.save()


def micro(a: argparse.Namespace, res: Results, what: str, timeout: int) -> None:
    cmd = [a.python, str(Path(__file__)), what, "--clip", a.clip, "--tails", a.tails]
    log(f"micro {what}: {shlex.join(cmd)}")
    env = server_env("ours", a)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        res.data["micro"][what] = json.loads(lines[-1]) if lines else {
            "error": (p.stdout + p.stderr)[-3000:]}
    except subprocess.TimeoutExpired as exc:
        res.data["micro"][what] = {"error": f"timeout after {timeout} s",
                                   "partial": (exc.stdout or b"")[-2000:].decode(errors="replace")
                                   if isinstance(exc.stdout, bytes) else str(exc.stdout)[-2000:]}
    log(f"micro {what}: {json.dumps(res.data['micro'][what])[:3000]}")
    res.save()


def cmd_run(a: argparse.Namespace) -> int:
    deadline = min(T0 + a.deadline_s, a.deadline_at or math.inf)
    res = Results(Path(a.out))
    log(f"gpu: {res.data['gpu']}; vllm {res.data['vllm']}; host {res.data['host']}")
    if not Path(a.tails).exists():
        t = time.time()
        make_tails(a.clip, N_VARIANTS, a.tails)
        log(f"made {a.tails} in {time.time() - t:.1f} s")
    clips = Clips(a.clip, a.tails)
    t = time.time()
    for v in range(N_VARIANTS):
        clips.url(v)
    log(f"{N_VARIANTS} clip variants ready in {time.time() - t:.1f} s "
        f"({len(clips.variant(0))} B each); per-frame cap at the default budget: {DEFAULT_FRAME_CAP}")
    if a.decode_bench:
        micro(a, res, "decode-bench", 240)
    if a.gemv_bench:
        micro(a, res, "gemv-bench", 240)
    attach = dict(item.split("=", 1) for item in a.attach) if a.attach else {}
    for quant in a.quant.split(","):
        for kind in a.which.split(","):
            key = f"{quant}/{kind}" + (f"/{a.label}" if a.label else "")
            need = 200 if kind == "ours" else 260
            if not attach and time.time() + need > deadline:
                res.run(key)["skipped"] = "out of time"
                log(f"[{key}] skipped: out of time")
                res.save()
                continue
            bench_server(kind, key, a, quant, clips, res, deadline, attach.get(kind))
    res.save()
    print()
    print(f"GPU: {res.data['gpu']}   vLLM {res.data['vllm']}   {res.data['date']}")
    for key, run in sorted(res.data["runs"].items()):
        pts = {p: (run.get(p) or {}).get("prompt_tokens") for p in ("text", "video_81920", "video_default",
                                                                     "conc32")}
        print(f"prompt tokens {key:20s} {pts}")
    print(variants_table(res.data["runs"]))
    print()
    print(table(res.data["rows"]))
    return 0


# ----------------------------------------------------------------------------- report

def cmd_report(a: argparse.Namespace) -> int:
    merged: dict = {"runs": {}, "micro": {}}
    for f in a.files:
        d = json.loads(Path(f).read_text())
        for k in ("gpu", "date", "vllm", "host"):
            merged.setdefault(k, d.get(k))
        merged["runs"].update(d.get("runs", {}))
        merged["micro"].update(d.get("micro", {}))
    rows = make_rows(merged["runs"], a.ours_key, a.vllm_key)
    out = {"gpu": merged.get("gpu"), "date": merged.get("date"), "vllm": merged.get("vllm"),
           "rows": rows, "host": merged.get("host"), "runs": merged["runs"], "micro": merged["micro"]}
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"GPU: {out['gpu']}   vLLM {out['vllm']}   {out['date']}")
    print(table(rows))
    print()
    print(variants_table(merged["runs"]))
    if a.markdown:
        print()
        print("| metric | ours | vllm serve | ours / vllm serve | unit |")
        print("|---|---:|---:|---:|---|")
        for r in rows:
            f = lambda x: "–" if x is None else (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}")  # noqa: E731
            ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"| `{r['metric']}` | {f(r['ours'])} | {f(r['vllm_serve'])} | {ratio} | {r['unit']} |")
    return 0


# ----------------------------------------------------------------------------- micro benchmarks

def cmd_decode_bench(a: argparse.Namespace) -> int:
    """Our ingestion of the clip on this machine's CPU: FFmpeg threads per decode, parallel decodes for a
    burst of 32 clips, and whether NVDEC (PyAV's hwaccel / h264_cuvid) is usable here."""
    from concurrent.futures import ThreadPoolExecutor

    from app.config import Settings
    from app.ingest import options as opts
    from app.ingest.pipeline import ingest

    clips = Clips(a.clip, a.tails)
    datas = [clips.variant(v) for v in range(min(32, clips.n))]
    out: dict = {"cores": os.cpu_count()}

    def one(data: bytes, threads: int, budget: int | None) -> float:
        s = Settings(engine="fake", video_decode_threads=threads)
        o = opts.build(s, {"max_pixels": budget, "min_pixels": 3136} if budget else {})
        t = time.perf_counter()
        ingest(data, o, s)
        return time.perf_counter() - t

    one(datas[0], 0, BUDGET)
    single = {}
    for threads in (0, 1, 2, 4, 8, 16):
        single[str(threads)] = round(1e3 * statistics.median(
            one(datas[i], threads, BUDGET) for i in range(3)), 1)
    out["single_ms_by_threads_81920"] = single
    out["single_ms_default_budget_threads0"] = round(1e3 * statistics.median(
        one(datas[i], 0, None) for i in range(3)), 1)
    burst = {}
    for workers, threads in ((2, 0), (4, 0), (8, 0), (8, 2), (16, 1)):
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda d: one(d, threads, BUDGET), datas))
        burst[f"workers{workers}_threads{threads}"] = round(time.perf_counter() - t, 3)
    out["burst32_wall_s"] = burst
    print(json.dumps(out), flush=True)
    out["nvdec"] = _nvdec_probe(clips.data)
    print(json.dumps(out), flush=True)
    return 0


def _nvdec_probe(data: bytes) -> dict:
    import av

    res: dict = {}
    try:  # FFmpeg's CUDA hwaccel through PyAV (>= 14)
        from av.codec.hwaccel import HWAccel

        t = time.perf_counter()
        c = av.open(io.BytesIO(data), hwaccel=HWAccel(device_type="cuda", allow_software_fallback=False))
        n = 0
        for f in c.decode(video=0):
            n += 1
        res["hwaccel_cuda"] = {"frames": n, "ms": round(1e3 * (time.perf_counter() - t), 1)}
        c.close()
    except Exception as exc:  # noqa: BLE001
        res["hwaccel_cuda"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    try:  # NVIDIA's cuvid decoder
        c = av.open(io.BytesIO(data))
        s = c.streams.video[0]
        cc = av.CodecContext.create("h264_cuvid", "r")
        cc.extradata = s.codec_context.extradata
        t = time.perf_counter()
        n = 0
        for p in c.demux(s):
            for f in cc.decode(p if p.size else None):
                n += 1
        res["h264_cuvid"] = {"frames": n, "ms": round(1e3 * (time.perf_counter() - t), 1)}
    except Exception as exc:  # noqa: BLE001
        res["h264_cuvid"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return res


def cmd_gemv_bench(a: argparse.Namespace) -> int:
    """Batch-1 decode floor of the kernels: the 28 decoder layers' four weight products plus the LM head,
    distinct weights per layer (no L2 reuse), timed with CUDA events; and a device-to-device copy."""
    import torch

    out: dict = {"device": torch.cuda.get_device_name()}
    dev = "cuda"
    hid, inter, kv, vocab, layers = 3584, 18944, 512, 152064, 28
    shapes = [(hid + 2 * kv, hid), (hid, hid), (2 * inter, hid), (hid, inter)]  # (N, K)
    buf = torch.empty(2 * 1024**3, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(buf)
    for _ in range(3):
        dst.copy_(buf)
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        dst.copy_(buf)
    e.record()
    torch.cuda.synchronize()
    out["copy_tb_s"] = round(2 * buf.numel() * 10 / (s.elapsed_time(e) / 1e3) / 1e12, 3)
    del buf, dst

    def timed(step, iters: int = 20) -> float:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        s.record()
        for _ in range(iters):
            step()
        e.record()
        torch.cuda.synchronize()
        return s.elapsed_time(e) / iters

    g = torch.Generator(device=dev).manual_seed(0)
    ws = [[torch.randn(n, k, device=dev, dtype=torch.bfloat16, generator=g) * 0.02 for n, k in shapes]
          for _ in range(layers)]
    head = torch.randn(vocab, hid, device=dev, dtype=torch.bfloat16, generator=g) * 0.02
    x = {k: torch.randn(1, k, device=dev, dtype=torch.bfloat16, generator=g) for k in (hid, inter)}
    weight_bytes = sum(w.numel() * 2 for layer in ws for w in layer) + head.numel() * 2

    def bf16_step() -> None:
        for layer in ws:
            for w in layer:
                torch.nn.functional.linear(x[w.shape[1]], w)
        torch.nn.functional.linear(x[hid], head)

    ms = timed(bf16_step)
    out["bf16"] = {"ms_per_token": round(ms, 3), "tok_s_floor": round(1e3 / ms, 1),
                   "weight_gb": round(weight_bytes / 1e9, 2),
                   "achieved_tb_s": round(weight_bytes / (ms / 1e3) / 1e12, 3)}
    print(json.dumps(out), flush=True)
    try:
        f8 = torch.float8_e4m3fn
        ws8 = [[w.to(f8) for w in layer] for layer in ws]
        del ws
        one = torch.ones((), device=dev, dtype=torch.float32)
        x8 = {k: v.to(f8) for k, v in x.items()}
        fp8_bytes = sum(w.numel() for layer in ws8 for w in layer) + head.numel() * 2

        def fp8_step() -> None:
            for layer in ws8:
                for w in layer:
                    torch._scaled_mm(x8[w.shape[1]], w.t(), scale_a=one, scale_b=one,
                                     out_dtype=torch.bfloat16)
            torch.nn.functional.linear(x[hid], head)

        ms = timed(fp8_step)
        out["fp8_torch_scaled_mm"] = {"ms_per_token": round(ms, 3), "tok_s_floor": round(1e3 / ms, 1),
                                      "weight_gb": round(fp8_bytes / 1e9, 2),
                                      "achieved_tb_s": round(fp8_bytes / (ms / 1e3) / 1e12, 3)}
        print(json.dumps(out), flush=True)
        try:
            from vllm import _custom_ops as ops

            def cutlass_step() -> None:
                for layer in ws8:
                    for w in layer:
                        q, sc = ops.scaled_fp8_quant(x[w.shape[1]], None)
                        ops.cutlass_scaled_mm(q, w.t(), scale_a=sc, scale_b=one.reshape(1),
                                              out_dtype=torch.bfloat16)
                torch.nn.functional.linear(x[hid], head)

            ms = timed(cutlass_step)
            out["fp8_vllm_cutlass_with_act_quant"] = {"ms_per_token": round(ms, 3),
                                                      "tok_s_floor": round(1e3 / ms, 1)}
        except Exception as exc:  # noqa: BLE001
            out["fp8_vllm_cutlass_with_act_quant"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    except Exception as exc:  # noqa: BLE001
        out["fp8_torch_scaled_mm"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(out), flush=True)
    return 0


# ----------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    clip_default = str(REPO / ".gpu/clip/drv_dusk_1080p30_10s.mp4")
    tails_default = str(REPO / ".gpu/clip/tails.npz")

    r = sub.add_parser("run", help="start the servers and measure")
    r.add_argument("--quant", default="none", help="none, fp8, or both: none,fp8")
    r.add_argument("--which", default="ours,vllm")
    r.add_argument("--label", default="", help="suffix of the run key, for variants of a setting")
    r.add_argument("--model", default="/root/model")
    r.add_argument("--clip", default=clip_default)
    r.add_argument("--tails", default=tails_default)
    r.add_argument("--out", default=os.path.join(os.environ.get("OUT", "bench-out"), "results.json"))
    r.add_argument("--out-logs", default=os.environ.get("OUT", ""), help="where server log tails go")
    r.add_argument("--logdir", default="/tmp/cosmos-bench-logs")
    r.add_argument("--log-lines", type=int, default=150)
    r.add_argument("--python", default=sys.executable)
    r.add_argument("--max-model-len", type=int, default=16384)
    r.add_argument("--gpu-mem", type=float, default=0.85)
    r.add_argument("--ours-args", default="", help="extra flags for cosmos-serve serve")
    r.add_argument("--vllm-args", default="", help="extra flags for vllm serve")
    r.add_argument("--ours-env", action="append", default=[], help="KEY=VALUE for our server")
    r.add_argument("--ours-usage-context", default="",
                   help="start our server with this vLLM UsageContext (e.g. ENGINE_CONTEXT)")
    r.add_argument("--vllm-env", action="append", default=[], help="KEY=VALUE for vllm serve")
    r.add_argument("--attach", action="append", default=[],
                   help="ours=URL / vllm=URL: measure a server already running (no start/stop)")
    r.add_argument("--text-runs", type=int, default=3)
    r.add_argument("--start-timeout", type=float, default=330)
    r.add_argument("--deadline-s", type=float, default=560, help="stop starting phases after this")
    r.add_argument("--deadline-at", type=float, default=0, help="the same as an epoch time (0: none)")
    r.add_argument("--decode-bench", action="store_true")
    r.add_argument("--gemv-bench", action="store_true")

    t = sub.add_parser("make-tails")
    t.add_argument("--clip", default=clip_default)
    t.add_argument("--n", type=int, default=N_VARIANTS)
    t.add_argument("--out", default=tails_default)

    rep = sub.add_parser("report")
    rep.add_argument("files", nargs="+")
    rep.add_argument("--json", default="")
    rep.add_argument("--markdown", action="store_true")
    rep.add_argument("--ours-key", default="ours")
    rep.add_argument("--vllm-key", default="vllm")

    for name in ("decode-bench", "gemv-bench"):
        m = sub.add_parser(name)
        m.add_argument("--clip", default=clip_default)
        m.add_argument("--tails", default=tails_default)

    a = p.parse_args(argv)
    if a.cmd == "make-tails":
        make_tails(a.clip, a.n, a.out)
        return 0
    if a.cmd == "report":
        return cmd_report(a)
    if a.cmd == "decode-bench":
        return cmd_decode_bench(a)
    if a.cmd == "gemv-bench":
        return cmd_gemv_bench(a)
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
