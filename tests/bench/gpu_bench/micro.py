"""Micro-benchmarks behind the closing figures: which NVDEC routes the payload has, the HF video processor,
and the decoder's batch-1 weight products (the kernels' floor for one stream's decode rate). Our decode of
the clips, CPU against NVDEC, is gpu_bench/decodes.py."""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time

from .clips import Clips


def cmd_nvdec_probe(a: argparse.Namespace) -> int:
    """`gpu.py nvdec-probe`: which NVDEC routes exist in this payload (issue 16, item 2) and what each
    does with the clip; installs nothing. JSON on stdout."""
    print(json.dumps(_nvdec_probe(Clips(a.clip, a.tails).data if os.path.exists(a.tails)
                                  else open(a.clip, "rb").read(), a.clip)), flush=True)
    return 0


def _nvdec_inventory() -> dict:
    """What the payload has: PyAV's FFmpeg cuvid decoders and hwaccel devices, torchcodec and
    PyNvVideoCodec (imported only if present), the GPU's decode engines as nvidia-smi sees them."""
    import importlib.util

    import av

    out: dict = {"pyav": av.__version__,
                 "cuvid_decoders": sorted(c for c in av.codecs_available if c.endswith("_cuvid"))}
    try:
        from av.codec.hwaccel import hwdevices_available

        out["hwaccel_devices"] = list(hwdevices_available())
    except Exception as exc:  # noqa: BLE001
        out["hwaccel_devices"] = f"{type(exc).__name__}: {exc}"[:300]
    for mod in ("torchcodec", "PyNvVideoCodec"):
        spec = importlib.util.find_spec(mod)
        if spec is None:
            out[mod] = "absent"
            continue
        try:
            m = importlib.import_module(mod)
            out[mod] = {"version": getattr(m, "__version__", "?"), "path": spec.origin}
        except Exception as exc:  # noqa: BLE001 - e.g. a CUDA/FFmpeg library it needs is missing
            out[mod] = {"import_error": f"{type(exc).__name__}: {exc}"[:500]}
    from .servers import nvidia_smi

    out["gpu"] = nvidia_smi("name,driver_version,utilization.decoder")
    return out


def _nvdec_probe(data: bytes, path: str | None = None) -> dict:
    import av

    res: dict = {"inventory": _nvdec_inventory()}
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
    inv = res["inventory"]
    if isinstance(inv.get("torchcodec"), dict) and "version" in inv["torchcodec"]:
        try:  # torchcodec's CUDA decoder (NVDEC), frames left on the GPU
            from torchcodec.decoders import VideoDecoder

            t = time.perf_counter()
            dec = VideoDecoder(data, device="cuda")
            n = len(dec)
            batch = dec.get_frames_at(indices=list(range(0, n, max(1, n // 40))))
            res["torchcodec_cuda"] = {"frames": int(batch.data.shape[0]), "of": n,
                                      "device": str(batch.data.device),
                                      "ms": round(1e3 * (time.perf_counter() - t), 1)}
        except Exception as exc:  # noqa: BLE001
            res["torchcodec_cuda"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if isinstance(inv.get("PyNvVideoCodec"), dict) and "version" in inv["PyNvVideoCodec"] and path:
        try:  # NVIDIA's own Python decoder
            import PyNvVideoCodec as nvc

            t = time.perf_counter()
            dec = nvc.SimpleDecoder(path, gpu_id=0)
            n = len(dec)
            frames = dec.get_batch_frames_by_index(list(range(0, n, max(1, n // 40))))
            res["pynvvideocodec"] = {"frames": len(frames), "of": n,
                                     "ms": round(1e3 * (time.perf_counter() - t), 1)}
        except Exception as exc:  # noqa: BLE001
            res["pynvvideocodec"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
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




def cmd_proc_bench(a: argparse.Namespace) -> int:
    """The HF Qwen2.5-VL processor vLLM runs on every video (normalise, patchify), for the clip's 40 frames
    at the two budgets' sizes, on the CPU and on the GPU (`device="cuda"`), plus what vLLM does with the
    output before sending it to its engine core (cast to bf16, copy to host memory)."""
    import numpy as np
    import torch
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(a.model)
    rng = np.random.default_rng(0)
    prompt = "<|vision_start|><|video_pad|><|vision_end|>Describe."
    out: dict = {"torch_threads": torch.get_num_threads()}
    for name, (h, w) in {"81920": (196, 364), "default": (420, 728)}.items():
        frames = rng.integers(0, 255, (40, h, w, 3), dtype=np.uint8)
        meta = {"fps": 4.0, "total_num_frames": 40, "frames_indices": list(range(40)), "duration": 10.0}
        for device in ("cpu", "cuda"):
            def once() -> tuple[float, float]:
                t = time.perf_counter()
                r = proc(text=prompt, videos=[frames], video_metadata=[meta], return_tensors="pt",
                         device=device, size={"shortest_edge": 3136, "longest_edge": h * w})
                pv = r["pixel_values_videos"].to(torch.bfloat16)
                t1 = time.perf_counter()
                host = pv.cpu().contiguous()
                if device == "cuda":
                    torch.cuda.synchronize()
                step = float(r["second_per_grid_ts"][0])
                return t1 - t, time.perf_counter() - t, step, tuple(host.shape)

            try:
                once()
                runs = [once() for _ in range(5)]
                out[f"{name}_{device}"] = {
                    "process_ms": round(1e3 * statistics.median(r[0] for r in runs), 1),
                    "with_host_copy_ms": round(1e3 * statistics.median(r[1] for r in runs), 1),
                    "second_per_grid_ts": runs[0][2], "shape": runs[0][3]}
            except Exception as exc:  # noqa: BLE001
                out[f"{name}_{device}"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(json.dumps(out), flush=True)
    return 0
