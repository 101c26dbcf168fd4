"""A burst of 32 clips decoded the way the server does, NVDEC alone against NVDEC with CPU cores lent
to it (app/ingest/placement.py, `video_nvdec_cpu_cores`), at Python's default thread switch interval
and at the server's (`gil_switch_interval_s`); with `--gpu-load` also while another process keeps the
GPU busy with bf16 matrix products the size of a 7B prefill (as vLLM's engine core does during a
burst): whether a busy GPU slows NVDEC's decodes and the conversion kernels beside them (it did not,
2026-12-02).

    python3 -m tests.bench.gpu_bench.mix --clip X.mp4 --tails X.npz --clip-gop1s Y.mp4 --tails-gop1s Y.npz
JSON lines on stdout, then one summary line.
"""
from __future__ import annotations

import argparse
import json
import sys
import multiprocessing as mp
import time
from pathlib import Path

from .clips import Clips
from .decodes import Server


def _load(stop, ready) -> None:
    """Keep the GPU's SMs busy from another process (its own CUDA context), as a prefill would."""
    import torch

    a = torch.randn(8192, 3584, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(3584, 18944, device="cuda", dtype=torch.bfloat16)
    ready.set()
    while not stop.is_set():
        for _ in range(8):
            a @ b
        torch.cuda.synchronize()


class GpuLoad:
    def __enter__(self):
        ctx = mp.get_context("spawn")
        self.stop, ready = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=_load, args=(self.stop, ready), daemon=True)
        self.proc.start()
        ready.wait(120)
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.proc.join(30)


def burst(nvdec, datas: list[bytes], budget: int) -> dict:
    from app.ingest.placement import Placement

    srv = Server("auto", nvdec)
    placement = Placement(budget, nvdec.max_decodes, srv.cores) if budget else None
    one = srv.one

    def with_placement(data, b="81920"):
        from app.ingest.pipeline import ingest

        from .decodes import _options

        t = time.perf_counter()
        clip = ingest(data, _options(b), srv.settings, cores=srv.cores, nvdec=nvdec,
                      placement=placement)
        return time.perf_counter() - t, clip

    srv.one = with_placement if placement else one
    out = srv.burst(datas)
    if placement:
        out["learned_ms_per_mpx"] = {"nvdec": round(1e3 * placement.nvdec_s.value, 3),
                                     "cpu": round(1e3 * placement.cpu_s.value, 3)}
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--clip", required=True)
    p.add_argument("--tails", required=True)
    p.add_argument("--clip-gop1s", required=True)
    p.add_argument("--tails-gop1s", required=True)
    p.add_argument("--budgets", default="0,4")
    p.add_argument("--switch", default="0.005,0.0001", help="Python switch intervals, s (Python's default first)")
    p.add_argument("--gpu-load", action="store_true", help="also with another process keeping the GPU busy")
    p.add_argument("--pick", default="", help="write the budget with the most clips/s here (env file)")
    a = p.parse_args()
    from app.ingest.nvdec import Nvdec

    nvdec = Nvdec(0, 8, 1, 16)
    nvdec.start()
    sets = {label: Clips(c, t) for label, c, t in
            (("default", a.clip, a.tails), ("gop1s", a.clip_gop1s, a.tails_gop1s))}
    datas = {k: [c.variant(v) for v in range(min(40, c.n))] for k, c in sets.items()}
    for k in datas:  # warm: decoders made, kernels loaded
        burst(nvdec, datas[k][:8], 0)
    summary = {}
    loads = (False, True) if a.gpu_load else (False,)
    for load in loads:
        ctx = GpuLoad() if load else None
        if ctx:
            ctx.__enter__()
        try:
            for switch in (float(x) for x in a.switch.split(",")):
                sys.setswitchinterval(switch)  # as the server's gil_switch_interval_s
                for k, ds in datas.items():
                    for budget in (int(b) for b in a.budgets.split(",")):
                        r = burst(nvdec, ds[5:37], budget)
                        key = f"{k}_budget{budget}_switch{switch:g}_{'gpuload' if load else 'idle'}"
                        summary[key] = r["clips_per_s"]
                        print(json.dumps({key: r}), flush=True)
        finally:
            if ctx:
                ctx.__exit__(None, None, None)
    print(json.dumps({"summary_clips_per_s": summary}), flush=True)
    if a.pick:  # both clips, every switch interval
        def score(b: str) -> float:
            return sum(v for k, v in summary.items() if f"_budget{b}_" in k)

        best = max(a.budgets.split(","), key=score)
        Path(a.pick).write_text(f"COSMOS_VIDEO_NVDEC_CPU_CORES={best}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
