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


def _old_store(self, frame, targets) -> None:
    """GpuSink.store as it was before 2026-12-02's fifth session (~36 torch calls per frame, a new
    float32 full-size tensor per step): the same-host baseline for `--conversion old`."""
    torch = self.out.torch
    y = torch.from_dlpack(frame.planes[0].__dlpack__())
    uv = torch.from_dlpack(frame.planes[1].__dlpack__())
    scale = 1.0 if y.dtype == torch.uint8 else 1.0 / 256.0
    h, w = y.shape
    yf = y.float() * scale
    uvf = uv.float() * scale - 128.0
    uvf = uvf.repeat_interleave(2, 0).repeat_interleave(2, 1)[:h, :w]
    u, v = uvf[..., 0], uvf[..., 1]
    if frame.color_range == 2:
        luma, cr, cgu, cgv, cb = yf, 1.402, 0.344136, 0.714136, 1.772
    else:
        luma, cr, cgu, cgv, cb = (yf - 16.0) * (255.0 / 219.0), 1.596027, 0.391762, 0.812968, 2.017232
    rgb = torch.stack((luma + cr * v, luma - cgu * u - cgv * v, luma + cb * u))
    rgb = rgb.sub_(0.5).floor_().clamp_(0.0, 255.0)
    small = torch.nn.functional.interpolate(rgb[None], size=(self.out.height, self.out.width), mode="bicubic",
                                            antialias=True, align_corners=False)[0]
    small = small.round_().clamp_(0.0, 255.0).to(torch.uint8).permute(1, 2, 0)
    for slot in targets:
        self.out.frames[slot] = small
        self.out.filled[slot] = True


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
    p.add_argument("--conversion", default="new", help="new,old: the GPU conversion now and before the fifth session")
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
    from app.ingest.gpu_frames import GpuSink

    new_store = GpuSink.store
    summary = {}
    loads = (False, True) if a.gpu_load else (False,)
    for load in loads:
        ctx = GpuLoad() if load else None
        if ctx:
            ctx.__enter__()
        try:
            for conv in a.conversion.split(","):
                from app.ingest import gpu_frames

                gpu_frames.GpuSink.store = _old_store if conv == "old" else new_store
                for switch in (float(x) for x in a.switch.split(",")):
                    sys.setswitchinterval(switch)  # as the server's gil_switch_interval_s
                    for k, ds in datas.items():
                        for budget in (int(b) for b in a.budgets.split(",")):
                            r = burst(nvdec, ds[5:37], budget)
                            key = (f"{k}_budget{budget}_switch{switch:g}_{'gpuload' if load else 'idle'}"
                                   + ("_oldconversion" if conv == "old" else ""))
                            summary[key] = r["clips_per_s"]
                            print(json.dumps({key: r}), flush=True)
        finally:
            if ctx:
                ctx.__exit__(None, None, None)
    print(json.dumps({"summary_clips_per_s": summary}), flush=True)
    if a.pick:  # both clips, every switch interval
        def score(b: str) -> float:
            return sum(v for k, v in summary.items() if f"_budget{b}_" in k and "old" not in k)

        best = max(a.budgets.split(","), key=score)
        Path(a.pick).write_text(f"COSMOS_VIDEO_NVDEC_CPU_CORES={best}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
