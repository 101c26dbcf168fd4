#!/usr/bin/env python3
"""GPU benchmark: cosmos-serve against `vllm serve`, same model folder, settings, clips and sampling.

On the GPU machine (vLLM 0.26.0 carried, see docs/performance.md, "GPU"), from the repository root:

    PYTHONPATH=/root/site:$PWD python3 tests/bench/gpu.py run --quant none,fp8

runs everything the issue asks for in one call of under ten minutes and writes $OUT/results.json. Both
servers start together and share the GPU (each with the same fixed KV cache, `--kv-cache-memory-bytes`),
and are then measured one at a time while the other idles, through HTTP with the `openai` client:

- text: one stream, ~100 prompt tokens -> 512 tokens (ignore_eos): TTFT and decode tokens/s;
- video: one request with a real 10 s 1080p30 H.264 clip as a data: URL, 4 fps (40 frames), at the 81,920
  per-frame pixel budget and at Cosmos' default total budget: TTFT (upload and decode included), total time
  for 64 tokens;
- conc32: 32 concurrent such requests (81,920 budget): output tokens/s and TTFT percentiles;
- the first video request after the server said it was ready (start-up costs a user would meet).

Every timed video request gets a clip of its own whose decoded pixels differ (see gpu_bench/clips.py;
decode cost is unchanged), so neither vLLM's processor/encoder caches nor our clip cache can serve it:
the figures are cold. Prefix caching is off in both servers and our clip cache is off. Phases run in
the order of the issue's required rows (bf16 first, then FP8 decode, then FP8 video) and one that would
end past the deadline is skipped for both servers; results.json is rewritten after every phase.

`--layout all` starts every configuration at once (the default, `auto`, picks it where the GPU holds
them all, e.g. an H200; else `pair`; e.g. `--tp 1,2` on two H200s). `--layout sequential` runs one
server at a time with vLLM's memory profiling (`--gpu-mem 0.85`) instead. `--tp 2` adds a scaling
table (tensor parallel 2 against 1 GPU, per server).

**The engine bound** (issue 16): `--which` includes `engine` by default, a process of its own in the same
wave (gpu_bench/engine.py): vLLM's AsyncLLM in-process with our server's engine arguments, fed the same
clip variants decoded and resized before timing, as `(frames, metadata)` the way our engine hands them
over. It runs the video phases (single TTFT at both budgets, the burst) and every video row carries its
figure as `engine`, and `ours / engine` as `ratio_engine`. **The camera-like clip**: `make-clip` also
writes the same content with a keyframe every second (keyint = fps, `..._gop1s.mp4`); ours and vllm
serve run the video phases on it too (`*_gop1s` phases and rows; the engine figure of a `_gop1s` row is
the one of the x264-default clip: the same frames' shapes, the same GPU work). `--clips default` leaves
it out. `--phases text,warmup,video_81920,...` runs a subset of the phases (`warmup` is needed before any
video phase), so the run can be split over two calls.

`--lora-rank 16` adds a server of each kind serving a random rank-16 LoRA adapter next to the
(bf16) base, made before the servers start by gpu_bench/lora_r16.py (`--lora-dir`): its text phase
asks the adapter (`decode_tok_s_lora_r16`), then the base through the same server
(`decode_tok_s_lora_r16_base`); `decode_tok_s_bf16` of the same run is the base alone.

Other subcommands:
    make-clip     (here, once) encode the 10 s 1080p30 clip from ../shared/media, x264 defaults and the
                  1 s-GOP variant: .gpu/clip/
    make-tails    (here, once) encode the clip variants' tails: .gpu/clip/tails.npz (run makes them
                  on the machine when absent, for both clips)
    engine-worker the engine bound's process (started by run)
    nvdec-probe   which NVDEC routes the payload has (PyAV cuvid/hwaccel, torchcodec, PyNvVideoCodec), each
                  tried on the clip; JSON on stdout
    report        merge result files, print the table (ours, vllm serve, ratio), write the docs JSON
    decode-bench  our ingestion of both clips in-process: cpu, nvdec and auto, single and a burst of 32,
                  and NVDEC's pixels against the CPU's and the reference's; JSON on stdout
    gemv-bench    the decoder's weight matrix-vector products at batch 1 (bf16, fp8): the kernels' floor
    proc-bench    the HF video processor vLLM runs per video, on the CPU and on the GPU
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from gpu_bench import N_VARIANTS, T0
from gpu_bench.clips import make_clip, make_tails
from gpu_bench.results import make_rows, scaling_rows, scaling_table, table, variants_table
from gpu_bench.servers import REPO
from gpu_bench.waves import plan_waves, run_all


def cmd_run(a: argparse.Namespace) -> int:
    a.deadline = min(T0 + a.deadline_s, a.deadline_at or math.inf)
    n_servers = len(a.quant.split(",")) * len(a.which.split(",")) * len(str(a.tp).split(","))
    if a.lora_rank:
        from gpu_bench.lora_r16 import make_adapter

        n_servers += len([k for k in a.which.split(",") if k != "engine"])
        make_adapter(a.model, a.lora_dir, a.lora_rank)
    if a.layout == "auto":  # everything at once where the GPU holds it (H200: 141 GiB)
        a.layout = "all" if _gpu_gib() >= SERVER_GIB * n_servers else "pair"
    if a.gpu_mem is None:  # servers sharing a GPU each ask for a share vLLM checks at start
        a.gpu_mem = 0.85 if a.layout == "sequential" else \
            min(0.25, 0.8 / (n_servers if a.layout == "all" else len(a.which.split(","))))
    a.kv_cache_bytes = int(a.kv_cache_gib * 2**30) if a.layout != "sequential" else 0
    res = run_all(plan_waves(a), a)
    print()
    print(f"GPU: {res.data['gpu']}   vLLM {res.data['vllm']}   {res.data['date']}   layout {a.layout}")
    for key, run in sorted(res.data["runs"].items()):
        pts = {p: (run.get(p) or {}).get("prompt_tokens") for p in ("text", "video_81920", "video_default",
                                                                     "conc32")}
        print(f"prompt tokens {key:20s} {pts}")
    print(variants_table(res.data["runs"]))
    for name, rows in res.data.get("scaling", {}).items():
        print(f"\nscaling, {name} against one GPU:")
        print(scaling_table(rows, int(name[2:])))
    print()
    print(table(res.data["rows"]))
    return 0


SERVER_GIB = 30  # one 7B server sharing a GPU: bf16 weights 15.5, KV cache 6, graphs, workspace


def _gpu_gib() -> float:
    from gpu_bench.servers import nvidia_smi

    try:
        return int(nvidia_smi("memory.total").splitlines()[0]) / 1024
    except (ValueError, IndexError):
        return 0.0


def cmd_report(a: argparse.Namespace) -> int:
    merged: dict = {"runs": {}, "micro": {}}
    for f in a.files:
        d = json.loads(Path(f).read_text())
        for k in ("gpu", "date", "vllm", "host", "layout"):
            merged.setdefault(k, d.get(k))
        for key, run in d.get("runs", {}).items():  # phases of one server from several calls add up
            merged["runs"].setdefault(key, {}).update(run)
        merged["micro"].update(d.get("micro", {}))
    rows = make_rows(merged["runs"], a.ours_key, a.vllm_key)
    out = {k: merged.get(k) for k in ("gpu", "date", "vllm", "layout")} | {"rows": rows}
    out |= {"host": merged.get("host"), "runs": merged["runs"], "micro": merged["micro"]}
    tps = sorted({int(k.split("/tp")[1].split("/")[0]) for k in merged["runs"] if "/tp" in k})
    if tps:
        out["scaling"] = {f"tp{tp}": scaling_rows(merged["runs"], tp) for tp in tps}
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"GPU: {out['gpu']}   vLLM {out['vllm']}   {out['date']}")
    print(table(rows))
    print()
    print(variants_table(merged["runs"]))
    for name, srows in out.get("scaling", {}).items():
        print(f"\nscaling, {name} against one GPU:")
        print(scaling_table(srows, int(name[2:])))
    if a.markdown:
        print()
        print("| metric | ours | engine bound | vllm serve | ours / engine | ours / vllm serve | unit |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in rows:
            f = lambda x: "–" if x is None else (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}")  # noqa: E731
            g = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
            print(f"| `{r['metric']}` | {f(r['ours'])} | {f(r.get('engine'))} | {f(r['vllm_serve'])} | "
                  f"{g(r.get('ratio_engine'))} | {g(r['ratio'])} | {r['unit']} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    clip_default = str(REPO / ".gpu/clip/drv_dusk_1080p30_10s.mp4")
    tails_default = str(REPO / ".gpu/clip/tails.npz")
    gop1s_default = str(REPO / ".gpu/clip/drv_dusk_1080p30_10s_gop1s.mp4")
    tails_gop1s_default = str(REPO / ".gpu/clip/tails_gop1s.npz")

    r = sub.add_parser("run", help="start the servers and measure")
    r.add_argument("--quant", default="none,fp8",
                   help="comma-separated: none (bf16), fp8 (on the fly), fp8ckpt (an FP8 checkpoint)")
    r.add_argument("--tp", default="1", help="tensor parallel sizes, e.g. 1,2")
    r.add_argument("--which", default="ours,vllm,engine",
                   help="ours, vllm (vllm serve), engine (the in-process engine bound)")
    r.add_argument("--layout", choices=("auto", "pair", "sequential", "all"), default="auto",
                   help="pair: ours and vllm serve of one quant/tp share the GPU; sequential: one at a "
                        "time; all: every configuration at once; auto: all where the GPU holds "
                        f"{SERVER_GIB} GiB a server, else pair")
    r.add_argument("--label", default="", help="suffix of the run keys, for variants of a setting")
    r.add_argument("--model", default="/root/model")
    r.add_argument("--clip", default=clip_default)
    r.add_argument("--tails", default=tails_default)
    r.add_argument("--clip-gop1s", default=gop1s_default, help="the camera-like clip (make-clip)")
    r.add_argument("--tails-gop1s", default=tails_gop1s_default)
    r.add_argument("--clips", default="default,gop1s", help="default (x264 defaults), gop1s, or both")
    r.add_argument("--phases", default="",
                   help="only these phases, comma-separated (text, text_base, warmup, video_81920, "
                        "video_default, conc32; a clip's phases follow --clips); default: all")
    r.add_argument("--out", default=os.path.join(os.environ.get("OUT", "bench-out"), "results.json"))
    r.add_argument("--out-logs", default=os.environ.get("OUT", ""), help="where server log excerpts go")
    r.add_argument("--logdir", default="/tmp/cosmos-bench-logs")
    r.add_argument("--python", default=sys.executable)
    r.add_argument("--max-model-len", type=int, default=16384)
    r.add_argument("--gpu-mem", type=float, default=None,
                   help="--gpu-memory-utilization of both (default 0.85 sequential, 0.25 shared)")
    r.add_argument("--kv-cache-gib", type=float, default=6.0,
                   help="KV cache per GPU of every server when servers share a GPU (0: profile)")
    r.add_argument("--ours-args", default="", help="extra flags for cosmos-serve serve")
    r.add_argument("--vllm-args", default="", help="extra flags for vllm serve")
    r.add_argument("--ours-env", action="append", default=[], help="KEY=VALUE for our server")
    r.add_argument("--ours-usage-context", default="",
                   help="start our server with this vLLM UsageContext (e.g. ENGINE_CONTEXT)")
    r.add_argument("--vllm-env", action="append", default=[], help="KEY=VALUE for vllm serve")
    r.add_argument("--text-runs", type=int, default=3)
    r.add_argument("--conc", type=int, default=32, help="burst size (32; fewer for dry runs on a CPU)")
    r.add_argument("--start-timeout", type=float, default=330)
    r.add_argument("--deadline-s", type=float, default=570, help="no phase may end after this")
    r.add_argument("--deadline-at", type=float, default=0, help="the same as an epoch time (0: none)")
    r.add_argument("--lora-rank", type=int, default=0,
                   help="also serve a random LoRA adapter of this rank (16 for the issue's row)")
    r.add_argument("--lora-dir", default="/root/lora_r16", help="where that adapter is written")
    r.add_argument("--fp8-checkpoint", default="/root/q7b/fp8",
                   help="the FP8 checkpoint served by --quant fp8ckpt (gpu_bench/quantize_7b.py)")
    r.add_argument("--decode-bench", action="store_true")
    r.add_argument("--gemv-bench", action="store_true")

    mc = sub.add_parser("make-clip")
    mc.add_argument("--src", default=str(REPO.parent / "shared/media/drv_transfer1_av_rgb_dusk_9s.mp4"))
    mc.add_argument("--out", default=clip_default)
    mc.add_argument("--out-gop1s", default=gop1s_default)
    mc.add_argument("--clips", default="default,gop1s")

    ew = sub.add_parser("engine-worker")
    from gpu_bench.engine import add_args

    add_args(ew)

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

    for name in ("decode-bench", "gemv-bench", "proc-bench", "nvdec-probe"):
        m = sub.add_parser(name)
        m.add_argument("--clip", default=clip_default)
        m.add_argument("--tails", default=tails_default)
        m.add_argument("--clip-gop1s", default=gop1s_default)
        m.add_argument("--tails-gop1s", default=tails_gop1s_default)
        m.add_argument("--model", default="/root/model")
        m.add_argument("--explore", action="store_true",
                       help="decode-bench: NVDEC by frame threads and parts first; picks the NVDEC slots and decoders (--env-out)")
        m.add_argument("--env-out", default="", help="decode-bench --explore: write the pick here")

    a = p.parse_args(argv)
    if a.cmd == "make-clip":
        if "default" in a.clips.split(","):
            make_clip(a.src, a.out)
        if "gop1s" in a.clips.split(","):
            make_clip(a.src, a.out_gop1s, gop_s=1)
        return 0
    if a.cmd == "engine-worker":
        from gpu_bench.engine import serve

        return serve(a)
    if a.cmd == "make-tails":
        make_tails(a.clip, a.n, a.out)
        return 0
    if a.cmd == "report":
        return cmd_report(a)
    if a.cmd in ("decode-bench", "gemv-bench", "proc-bench", "nvdec-probe"):
        from gpu_bench import decodes, micro

        return {"decode-bench": decodes.cmd_decode_bench, "gemv-bench": micro.cmd_gemv_bench,
                "proc-bench": micro.cmd_proc_bench, "nvdec-probe": micro.cmd_nvdec_probe}[a.cmd](a)
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
