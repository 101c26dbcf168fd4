"""The run: waves of servers that start together, then phases measured one server at a time.

A wave is the set of servers that share the GPU(s) at once: by default ours and `vllm serve` of one
quantization and tensor-parallel size. Starting them together halves the start-up time of the run
(start-up is ~100 s a server and is not what we measure); each is then measured while the other sits
idle (an idle vLLM engine waits on its input queue and launches no GPU work). Phases go in the order of
the issue's required rows and a phase that would end past the deadline is skipped for every server of
the wave, so the figures that are there always come in comparable pairs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from . import NAME, N_VARIANTS, V_SINGLE_81920, V_SINGLE_DEFAULT, log
from .client import phase_conc, phase_text, phase_video, warm_text, warm_video
from .clips import Clips, make_tails
from .engine import engine_phase
from .lora_r16 import NAME as LORA
from .results import Results
from .scrape import metric_means, scrape
from .servers import REPO, Server, ServerConfig, server_cmd, server_env, stop_all, wait_gpu_free

# Seconds a phase takes per server (H100, 2026-11-22 runs, rounded up): to skip what cannot finish.
_EST = {"warm_video": {"ours": 8, "vllm": 62, "engine": 8}, "video_81920": {"ours": 7, "vllm": 11, "engine": 5},
        "conc32": {"ours": 16, "vllm": 40, "engine": 10}, "video_default": {"ours": 12, "vllm": 16, "engine": 8}}
GOP1S = ("video_81920_gop1s", "video_default_gop1s", "conc32_gop1s")  # the camera-like clip's phases
_STOP_RESERVE_S = 15


def plan_waves(a: argparse.Namespace) -> list[list[ServerConfig]]:
    configs, port = [], 8100
    for quant in a.quant.split(","):
        for tp in (int(x) for x in str(a.tp).split(",")):
            for kind in a.which.split(","):
                if kind == "engine" and (quant, tp) != ("none", 1):  # the bound of the bf16 rows
                    continue
                configs.append(ServerConfig(kind, quant, tp, port, a.label))
                port += 1
    if getattr(a, "lora_rank", 0):  # the adapter, in servers of their own (bf16, one GPU)
        for kind in (k for k in a.which.split(",") if k != "engine"):
            configs.append(ServerConfig(kind, "none", 1, port, a.label, lora_rank=a.lora_rank))
            port += 1
    if a.layout == "sequential":
        return [[c] for c in configs]
    if a.layout == "all":
        return [configs]
    waves: dict[tuple, list[ServerConfig]] = {}
    for c in configs:
        waves.setdefault((c.quant, c.tp, c.lora_rank), []).append(c)
    return list(waves.values())


def _estimate(phase: str, c: ServerConfig, a: argparse.Namespace) -> float:
    if phase in ("text", "text_base"):
        return a.text_runs * (512 / (230 if c.quant.startswith("fp8") else 155) + 0.3) + 1
    phase = phase.removesuffix("_gop1s")
    return _EST[phase][c.kind if c.kind in ("ours", "engine") else "vllm"] * (a.conc / 32 if phase == "conc32"
                                                                            else 1)


def _measure(name: str, fn, srv: Server, run: dict) -> None:
    before = scrape(srv.base)
    spy = _pyspy(name, srv)
    try:
        run[name] = fn()
    except Exception as exc:  # noqa: BLE001
        run[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        if spy is not None:
            spy.wait(30)
    run[name]["server_metrics_ms"] = metric_means(before, scrape(srv.base))
    log(f"[{srv.key}] {name}: {json.dumps({k: v for k, v in run[name].items() if k != 'runs'})}")


def _pyspy(name: str, srv: Server):
    """With BENCH_PYSPY_DIR set: py-spy samples our server's threads through a burst (idle ones too,
    so that waits show), as collapsed stacks per thread."""
    out = os.environ.get("BENCH_PYSPY_DIR")
    if not out or srv.config.kind != "ours" or not name.startswith("conc32"):
        return None
    path = Path(out) / f"pyspy_{srv.key.replace('/', '_')}_{name}.txt"
    try:
        return subprocess.Popen(["py-spy", "record", "--pid", str(srv.proc.pid), "--duration", "12",
                                 "--rate", "100", "--idle", "--threads", "--nonblocking", "--format", "raw",
                                 "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        log(f"py-spy not started: {exc}")
        return None


def run_wave(wave: list[ServerConfig], a: argparse.Namespace, res: Results, clips_ready) -> None:
    logdir = Path(a.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    servers = []
    for c in wave:
        run = res.run(c.key)
        run.clear()
        cmd = server_cmd(c, a)
        run["cmd"] = shlex.join(cmd)
        extra_env = a.ours_env if c.kind == "ours" else a.vllm_env
        if extra_env:
            run["env"] = extra_env
        srv = Server(c.key, cmd, server_env(c.kind, a), c.port, logdir / f"{c.key.replace('/', '_')}.log")
        srv.key, srv.config = c.key, c
        log(f"[{c.key}] starting: {run['cmd']}")
        srv.start()
        servers.append(srv)
    clips: Clips = clips_ready()  # built while the servers load
    try:
        ready = _wait(servers, a)
        for srv in servers:
            res.run(srv.key)["start_s" if isinstance(ready[srv.key], float) else "error"] = ready[srv.key]
        live = [s for s in servers if isinstance(ready[s.key], float)]
        log("ready: " + ", ".join(f"{k} {v if isinstance(v, float) else 'FAILED'}" for k, v in ready.items()))
        res.save()
        for srv in (s for s in live if s.config.kind != "engine"):  # the engine bound has no HTTP API
            asyncio.run(warm_text(srv.base, srv.config.kind, _text_model(srv)))
        _phases(live, a, res, clips)
    except Exception as exc:  # noqa: BLE001
        for srv in servers:
            res.run(srv.key).setdefault("error", f"{type(exc).__name__}: {exc}"[-3000:])
        log(f"wave failed: {type(exc).__name__}: {exc}")
    finally:
        stop_all(servers)
        for srv in servers:
            if a.out_logs:
                out = Path(a.out_logs) / f"{srv.key.replace('/', '_')}.log"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(srv.excerpt(120, 120))
        res.save()


def _text_model(srv: Server) -> str:
    """What a server's text phase asks: the LoRA adapter where it serves one."""
    return LORA if srv.config.lora_rank else NAME


def _wait(servers: list[Server], a: argparse.Namespace) -> dict[str, float | str]:
    from .servers import wait_all_ready

    limit = min(a.start_timeout, a.deadline - time.time() - _STOP_RESERVE_S)
    return wait_all_ready(servers, max(limit, 10))


def _schedule(live: list[Server], a: argparse.Namespace | None = None) -> list[tuple[str, list[Server]]]:
    """Phases in the order of the issue's required rows: every server's text stream (bf16 and FP8
    decode), one warm-up for all at once (untimed compile and processor start-up), then each
    quantization's video phases, bf16 first: the x264-default clip's (with the engine bound), then the
    camera-like clip's (`--clips`). `--phases` keeps a subset."""
    groups: dict[tuple, list[Server]] = {}
    lora = [s for s in live if s.config.lora_rank]  # text only: with the adapter, then the base
    plain = [s for s in live if not s.config.lora_rank]
    for s in plain:
        groups.setdefault((s.config.quant, s.config.tp), []).append(s)
    servers = [s for s in live if s.config.kind != "engine"]  # the engine bound has no HTTP API
    clips = (getattr(a, "clips", "default") or "default").split(",")
    order = [("text", servers), ("text_base", lora), ("warmup", plain)]
    for group in groups.values():
        if "default" in clips:
            order += [("video_81920", group), ("video_default", group), ("conc32", group)]
        if "gop1s" in clips:
            order += [(name, [s for s in group if s.config.kind != "engine"]) for name in GOP1S]
    only = {p for p in (getattr(a, "phases", "") or "").split(",") if p}
    if only:  # a clip's phases by their base name: video_81920 selects video_81920_gop1s too
        order = [(name, ss) for name, ss in order if name in only or name.removesuffix("_gop1s") in only]
    return [(name, servers) for name, servers in order if servers]


def _phases(live: list[Server], a: argparse.Namespace, res: Results, clips: Clips) -> None:
    def bounded(coro):  # a phase may overrun the deadline by 30 s at most
        return asyncio.run(asyncio.wait_for(coro, max(10.0, a.deadline + 30 - time.time())))

    def fns(srv: Server) -> dict:
        base, kind = srv.base, srv.config.kind
        if kind == "engine":
            return {name: (lambda name=name: engine_phase(base, name, max(10.0, a.deadline + 30 - time.time())))
                    for name in ("warmup", "video_81920", "video_default", "conc32")}
        gop = clips.gop1s
        return {
            "video_81920_gop1s": lambda: bounded(phase_video(base, kind, gop, "81920", V_SINGLE_81920)),
            "video_default_gop1s": lambda: bounded(phase_video(base, kind, gop, "default", V_SINGLE_DEFAULT)),
            "conc32_gop1s": lambda: phase_conc(base, kind, gop, n=a.conc,
                                               timeout=max(10.0, a.deadline + 30 - time.time())),
            "text": lambda: bounded(phase_text(base, kind, a.text_runs, _text_model(srv))),
            "text_base": lambda: bounded(phase_text(base, kind, a.text_runs)),
            "warmup": lambda: bounded(warm_video(base, kind, clips)),
            "video_81920": lambda: bounded(phase_video(base, kind, clips, "81920", V_SINGLE_81920)),
            "conc32": lambda: phase_conc(base, kind, clips, n=a.conc,
                                         timeout=max(10.0, a.deadline + 30 - time.time())),
            "video_default": lambda: bounded(phase_video(base, kind, clips, "default", V_SINGLE_DEFAULT)),
        }

    warmed = set()
    for name, servers in _schedule(live, a):
        est = [_estimate("warm_video" if name == "warmup" else name, s.config, a) for s in servers]
        need = max(est) if name == "warmup" else sum(est)  # the warm-ups run side by side
        ready = name in ("text", "text_base", "warmup") or all(s.key in warmed for s in servers)
        if not ready or time.time() + need + _STOP_RESERVE_S > a.deadline:
            for srv in servers:
                res.run(srv.key)[name] = {"skipped": "out of time"}
            log(f"{name} skipped for {[s.key for s in servers]}: needs ~{need:.0f} s")
            continue
        if name == "warmup":
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(servers)) as pool:
                list(pool.map(lambda srv: _measure(name, fns(srv)[name], srv, res.run(srv.key)),
                              servers))
            warmed |= {s.key for s in servers}
        else:
            for srv in servers:
                _measure(name, fns(srv)[name], srv, res.run(srv.key))
        res.save()


def micro(a: argparse.Namespace, res: Results, what: str, timeout: int) -> None:
    cmd = [a.python, str(REPO / "tests/bench/gpu.py"), what, "--clip", a.clip, "--tails", a.tails]
    log(f"micro {what}: {shlex.join(cmd)}")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=server_env("ours", a), cwd=REPO)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        res.data["micro"][what] = json.loads(lines[-1]) if lines else {"error": (p.stdout + p.stderr)[-3000:]}
    except subprocess.TimeoutExpired:
        res.data["micro"][what] = {"error": f"timeout after {timeout} s"}
    log(f"micro {what}: {json.dumps(res.data['micro'][what])[:3000]}")
    res.save()


def run_all(waves: list[list[ServerConfig]], a: argparse.Namespace) -> Results:
    res = Results(Path(a.out))
    res.data["layout"] = {"layout": a.layout, "gpu_memory_utilization": a.gpu_mem,
                          "kv_cache_memory_bytes": a.kv_cache_bytes or None,
                          "waves": [[c.key for c in w] for w in waves]}
    log(f"gpu: {res.data['gpu']}; vllm {res.data['vllm']}; host {res.data['host']}; waves "
        f"{res.data['layout']['waves']}")
    state: dict = {}

    def clips_ready() -> Clips:
        if "clips" not in state:
            if not Path(a.tails).exists():
                t = time.time()
                make_tails(a.clip, N_VARIANTS, a.tails)
                log(f"made {a.tails} in {time.time() - t:.1f} s")
            t = time.time()
            clips = Clips(a.clip, a.tails)
            for v in range(N_VARIANTS):
                clips.url(v)
            log(f"{N_VARIANTS} clip variants ready in {time.time() - t:.1f} s ({len(clips.variant(0))} B each)")
            if "gop1s" in a.clips.split(","):  # the camera-like clip: its own variants, the same way
                t = time.time()
                if not Path(a.tails_gop1s).exists():
                    make_tails(a.clip_gop1s, N_VARIANTS, a.tails_gop1s)
                clips.gop1s = Clips(a.clip_gop1s, a.tails_gop1s)
                for v in range(N_VARIANTS):
                    clips.gop1s.url(v)
                log(f"{N_VARIANTS} 1 s-GOP clip variants ready in {time.time() - t:.1f} s")
            state["clips"] = clips
        return state["clips"]

    if a.decode_bench:
        micro(a, res, "decode-bench", 240)
    if a.gemv_bench:
        micro(a, res, "gemv-bench", 240)
    for i, wave in enumerate(waves):
        if time.time() + 150 > a.deadline:  # not even a start and the text phase would fit
            for c in wave:
                res.run(c.key)["skipped"] = "out of time"
            log(f"wave {[c.key for c in wave]} skipped: out of time")
            continue
        if i:
            res.data.setdefault("gpu_free_wait_s", []).append(round(wait_gpu_free(), 1))
        run_wave(wave, a, res, clips_ready)
    res.save()
    return res
