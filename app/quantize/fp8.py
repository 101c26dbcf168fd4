"""The calibration-free FP8 writer (`--scheme fp8-dynamic`): torch + safetensors only.

FP8_DYNAMIC needs no data: each Linear weight gets one scale per output channel (its row's
absolute maximum over E4M3's 448), and activations are scaled per token at run time by vLLM. So
the model is never built: the shards are read tensor by tensor and written shard by shard (one
output file per input file), on the GPU when there is one. The previous shard is written by a
background thread while the next one is quantized, so peak memory is about two shards (measured:
3.8 GB RSS for 1.9 GB shards, imports included).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from app.quantize.checkpoint import INDEX, Source
from app.quantize.scheme import is_target

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max  # 448


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel FP8 E4M3: `(q, scale)` with `w ~= q.float() * scale`.

    The scale has shape (out, 1) and the weight's dtype, as llm-compressor stores it: vLLM reads
    any float scale, but transformers' compressed-tensors loader multiplies back in the scale's
    dtype and would hand a bf16 model float32 weights. The division runs in float32 by the stored
    (rounded) scale, so `q * scale` is exactly what every loader reconstructs."""
    # max |w| as max(max, -min) of the bf16 rows: exact, and no |w| copy (half the CPU time)
    amax = torch.maximum(w.amax(dim=1, keepdim=True), -w.amin(dim=1, keepdim=True))
    scale = amax.to(torch.float32).div_(FP8_MAX).to(w.dtype)
    # compressed-tensors' stand-in for the scale of an all-zero row
    scale = torch.where(scale == 0, torch.full_like(scale, torch.finfo(w.dtype).eps), scale)
    q = w.to(torch.float32).div_(scale.to(torch.float32)).clamp_(-FP8_MAX, FP8_MAX).to(FP8)
    return q, scale


def scale_name(weight_name: str) -> str:
    return weight_name[: -len("weight")] + "weight_scale"


def write_fp8_dynamic(src: Source, out: Path, device: torch.device,
                      advance: Callable[[int], None] = lambda n: None) -> int:
    """Write the quantized shards (and the index, if SRC has one) into `out`; returns how many
    tensors were quantized. `advance(n)` is called with the bytes of each tensor read."""
    from safetensors import safe_open

    quantized = 0
    weight_map: dict[str, str] = {}
    total_size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fp8-writer") as pool:
        pending: Future | None = None
        for shard in src.shards:
            tensors: dict[str, torch.Tensor] = {}
            with safe_open(shard, framework="pt") as f:
                metadata = f.metadata() or {"format": "pt"}
                for name in f.keys():
                    t = f.get_tensor(name)
                    size = t.numel() * t.element_size()
                    if is_target(name) and t.dim() == 2 and t.is_floating_point():
                        q, s = quantize_weight(t.to(device, non_blocking=True))
                        tensors[name], tensors[scale_name(name)] = q.cpu(), s.cpu()
                        quantized += 1
                    else:
                        tensors[name] = t
                    advance(size)
            for name, t in tensors.items():
                weight_map[name] = shard.name
                total_size += t.numel() * t.element_size()
            if pending is not None:
                pending.result()  # one shard in flight at most
            pending = pool.submit(_save, tensors, out / shard.name, metadata)
        if pending is not None:
            pending.result()
    if (src.path / INDEX).is_file():
        index = json.loads((src.path / INDEX).read_text())
        index["metadata"] = {**(index.get("metadata") or {}), "total_size": total_size}
        index["weight_map"] = dict(sorted(weight_map.items()))
        (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return quantized


def _save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
