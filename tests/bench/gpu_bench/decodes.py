"""`gpu.py decode-bench`: our ingestion of the benchmark clips in-process, CPU against NVDEC (issue 16).

For each clip (x264 defaults, 1 s GOP) and each decoder (cpu, nvdec, auto), the way the server runs it
(app/ingest/pipeline.py with the server's core scheduler and NVDEC slots):
- single: one clip at a time, cold variants, median latency (81,920 and the default budget);
- burst: 32 different variants submitted at once to a pool as large as the server's, wall time, median
  and p90 latency, and which decoder took each clip;
- pixels: NVDEC's frames against the CPU's, and both against the reference decode (qwen-vl-utils'
  method: full-size RGB, torchvision's antialiased bicubic), mean and p99 absolute difference.
JSON on stdout, one line per clip as it completes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import BUDGET, COSMOS_TOTAL_PIXELS, N_VARIANTS
from .clips import Clips, make_tails

MODES = ("cpu", "nvdec", "auto")


def _options(budget: str):
    from app.ingest.types import VideoOptions

    if budget == "81920":
        return VideoOptions(fps=4.0, nframes=None, min_frames=4, max_frames=768, min_pixels=3136,
                            max_pixels=BUDGET, total_pixels=COSMOS_TOTAL_PIXELS)
    return VideoOptions(fps=4.0, nframes=None, min_frames=4, max_frames=768,
                        min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28,
                        total_pixels=COSMOS_TOTAL_PIXELS)


class Server:
    """What VideoIngestor holds: settings, the core scheduler, NVDEC, a pool of its size."""

    def __init__(self, mode: str, nvdec):
        from app.config import Settings
        from app.ingest.cores import CoreScheduler, decode_workers

        self.settings = Settings(engine="fake", video_decoder=mode,
                                 video_nvdec_threads=nvdec.threads if nvdec else 4,
                                 video_nvdec_max_decodes=nvdec.max_decodes if nvdec else 8,
                                 video_nvdec_max_decoders=nvdec.max_decoders if nvdec else 16)
        self.nvdec = nvdec if mode != "cpu" else None
        self.queued = 0
        self.cores = CoreScheduler(queued=lambda: self.queued)
        self.workers = decode_workers(0) + (self.settings.video_nvdec_max_decodes
                                            if self.nvdec else 0)

    def one(self, data: bytes, budget: str = "81920"):
        from app.ingest.pipeline import ingest

        t = time.perf_counter()
        clip = ingest(data, _options(budget), self.settings, cores=self.cores, nvdec=self.nvdec)
        return time.perf_counter() - t, clip

    def burst(self, datas: list[bytes]) -> dict:
        self.queued = len(datas)

        def job(d: bytes):
            self.queued -= 1
            return self.one(d)

        t = time.perf_counter()
        with ThreadPoolExecutor(self.workers) as pool:
            res = list(pool.map(job, datas))
        wall = time.perf_counter() - t
        lat = sorted(r[0] for r in res)
        used = [r[1].extra["decoder"] for r in res]
        return {"wall_s": round(wall, 3), "p50_ms": round(1e3 * lat[len(lat) // 2], 1),
                "p90_ms": round(1e3 * lat[int(0.9 * len(lat))], 1),
                "clips_per_s": round(len(datas) / wall, 2),
                "decoders": {k: used.count(k) for k in set(used)}}


def _diff(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"mean": round(float(d.mean()), 3), "p99": float(np.percentile(d, 99)),
            "max": int(d.max())}


def _reference(data: bytes, clip) -> np.ndarray:
    """The reference's pixels for the frames we kept: full-size RGB (swscale), torchvision resize."""
    import io

    import av
    import torch
    from torchvision.transforms import functional as F

    want = set(clip.frame_indices)
    frames = {}
    with av.open(io.BytesIO(data)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                frames[i] = f.to_ndarray(format="rgb24")
    h, w = clip.frames.shape[1:3]
    x = torch.from_numpy(np.stack([frames[i] for i in clip.frame_indices])).permute(0, 3, 1, 2)
    x = F.resize(x, [h, w], interpolation=F.InterpolationMode.BICUBIC, antialias=True)
    return x.permute(0, 2, 3, 1).numpy()


# (clips decoding on NVDEC at once, NVDEC decoders at once): what a burst is measured with.
BURST_CONFIGS = ((8, 16), (16, 16), (16, 32), (32, 32))


def _sized(nvdec, max_decodes: int, max_decoders: int) -> None:
    """Resize NVDEC's slots between measurements (the server fixes them at start)."""
    import threading

    nvdec.max_decodes, nvdec.max_decoders = max_decodes, max_decoders
    nvdec._slots = threading.BoundedSemaphore(max_decodes)


def explore(nvdec, a: argparse.Namespace) -> dict:
    """NVDEC alone: a lone clip's latency by parts (1, 2, 4, 8), then the burst of 32 by
    BURST_CONFIGS, each burst twice (the second finds the decoders the first made), with the
    process's CPU seconds per clip; picks the config of the most warm clips/s over both clips."""
    import resource

    res: dict = {}
    sets = {}
    for label, clip, tails in (("default", a.clip, a.tails), ("gop1s", a.clip_gop1s, a.tails_gop1s)):
        if not Path(tails).exists():
            make_tails(clip, N_VARIANTS, tails)
        clips = Clips(clip, tails)
        sets[label] = [clips.variant(v) for v in range(min(40, clips.n))]
    for label, datas in sets.items():
        for parts in (1, 2, 4, 8):
            _sized(nvdec, 8, parts)  # a lone clip's share is max_decoders
            srv = Server("nvdec", nvdec)
            srv.one(datas[0])
            res[f"{label}_single_p{parts}_ms"] = round(1e3 * statistics.median(
                [srv.one(d)[0] for d in datas[1:4]]), 1)
    print(json.dumps(res), flush=True)
    for slots, decoders in BURST_CONFIGS:
        _sized(nvdec, slots, decoders)
        for label, datas in sets.items():
            srv = Server("nvdec", nvdec)
            for run in ("first", "warm"):
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                b = srv.burst(datas[4:36])
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
                res[f"{label}_burst_s{slots}_d{decoders}_{run}"] = {
                    "clips_per_s": b["clips_per_s"], "p50_ms": b["p50_ms"],
                    "cpu_s_per_clip": round(cpu / 32, 3), "decoders": b["decoders"]}
            print(json.dumps({k: v for k, v in res.items() if f"s{slots}_d{decoders}" in k}),
                  flush=True)
    best = max(BURST_CONFIGS, key=lambda c: sum(
        res[f"{label}_burst_s{c[0]}_d{c[1]}_warm"]["clips_per_s"] for label in sets))
    res["best"] = {"max_decodes": best[0], "max_decoders": best[1]}
    _sized(nvdec, *best)
    return res


def cmd_decode_bench(a: argparse.Namespace) -> int:
    from app.ingest.nvdec import Nvdec, host_supports

    nvdec = None
    out: dict = {"nvdec_problem": host_supports()}
    if out["nvdec_problem"] is None:
        nvdec = Nvdec(0, 8, 1, 16)
        out["nvdec_start_s"] = round(nvdec.start(), 3)
        if a.explore:
            out["explore"] = explore(nvdec, a)
            if a.env_out:
                Path(a.env_out).write_text(
                    f"COSMOS_VIDEO_NVDEC_MAX_DECODES={nvdec.max_decodes}\n"
                    f"COSMOS_VIDEO_NVDEC_MAX_DECODERS={nvdec.max_decoders}\n")
    print(json.dumps(out), flush=True)
    for label, clip, tails in (("default", a.clip, a.tails), ("gop1s", a.clip_gop1s, a.tails_gop1s)):
        if not Path(tails).exists():
            make_tails(clip, N_VARIANTS, tails)
        clips = Clips(clip, tails)
        datas = [clips.variant(v) for v in range(min(40, clips.n))]
        res: dict = {"clip": label}
        modes = MODES if nvdec is not None else ("cpu",)
        servers = {m: Server(m, nvdec) for m in modes}
        for m, srv in servers.items():
            srv.one(datas[-1])  # warm: swscale contexts, NVDEC sessions, torch kernels
            for budget in ("81920", "default"):
                lat = [srv.one(datas[i], budget)[0] for i in range(5)]
                res[f"single_ms_{budget}_{m}"] = round(1e3 * statistics.median(lat), 1)
            res[f"burst32_{m}"] = srv.burst(datas[5:37])
        if nvdec is not None:
            _, cpu = servers["cpu"].one(datas[0])
            _, gpu = servers["nvdec"].one(datas[0])
            ref = _reference(datas[0], cpu)
            res["pixels"] = {"nvdec_vs_cpu": _diff(gpu.frames, cpu.frames),
                             "nvdec_vs_reference": _diff(gpu.frames, ref),
                             "cpu_vs_reference": _diff(cpu.frames, ref),
                             "decoder": gpu.extra["decoder"], "parts": gpu.extra["decode_parts"]}
        print(json.dumps(res), flush=True)
    return 0
