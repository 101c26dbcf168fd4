"""How the server and its engine run: the model and engine, LoRA adapters and HTTP fields of
`Settings` (app/config.py), which is the one settings object and the only class to use.

Kept as a base class so config.py stays readable; its fields come first in `Settings`, in this
order, so `cosmos-serve serve --help` lists them as before.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode


def _env(name: str, *aliases: str) -> AliasChoices:
    # Environment names only: the bare field name stays an init/flag name (populate_by_name).
    return AliasChoices(f"COSMOS_{name.upper()}", *aliases)


class RuntimeSettings(BaseSettings):
    """Base of `Settings` only: its model_config (prefix, frozen) is declared there."""

    # --- model and engine -------------------------------------------------------------------
    model: str = Field("nvidia/Cosmos-Reason1-7B", validation_alias=_env("model", "NIM_MODEL_NAME"),
                       description="Local checkpoint directory or hub id.")
    served_model_name: str | None = Field(
        None, validation_alias=_env("served_model_name", "NIM_SERVED_MODEL_NAME"),
        description="Name clients pass as `model`; defaults to the model path's last component.")
    profile: str | None = Field(
        None, description="Model profile: a built-in name (cosmos-reason1, cookbook-sft) or a "
                          "profile YAML file; default: the checkpoint's cosmos-serve.yaml, else "
                          "Cosmos-Reason1's settings. See docs/profiles.md.")
    processor: str | None = Field(
        None, description="Directory or hub id to take the processor, tokenizer and chat "
                          "template from, for a checkpoint that lacks them (e.g. the base model).")
    engine: Literal["vllm", "fake"] = Field("vllm", description="`fake` is for unit tests only.")
    dtype: str = Field("auto", description="Weight dtype (`auto` = the checkpoint's).")
    max_model_len: int | None = Field(None, description="Context length in tokens; None = model's.")
    quantization: Literal["fp8"] | None = Field(
        None, description="`fp8` quantizes bf16 weights on load; FP8 checkpoints are detected from "
                          "their config.json and need no flag.")
    kv_cache_dtype: str = Field("auto", description="KV cache dtype (`fp8` halves it).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over.")
    gpu_memory_utilization: float = Field(0.90, gt=0, le=1,
                                          description="Share of GPU memory vLLM may use.")
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1, description="GPU KV cache per GPU in bytes; set, it replaces the sizing from "
                                "gpu_memory_utilization (e.g. two servers sharing one GPU).")
    cpu_kv_cache_gib: int = Field(4, ge=1, description="KV cache size on the CPU engine (GiB).")
    max_num_seqs: int | None = Field(None, ge=1, description="Sequences per engine step; "
                                                          "None = vLLM's default.")
    enforce_eager: bool = Field(False, description="Skip CUDA graphs / torch.compile (faster start).")
    enable_prefix_caching: bool = Field(True, description="Reuse KV of shared prompt "
                                                          "prefixes.")
    load_format: str = Field("auto", description="`dummy` = random weights (benchmarks).")
    warmup_on_start: bool = Field(
        True, description="Run one text and one short-video request before /health/ready is 200, "
                          "so that the first user does not pay kernel and processor start-up.")
    engine_watchdog_interval_s: float = Field(
        5.0, gt=0, description="How often a dead engine is looked for (then the server exits).")
    mm_processor_device: Literal["auto", "cpu"] = Field(
        "auto", description="Where vLLM's multimodal processor normalises and patchifies our "
                            "frames: `auto` = the GPU on a CUDA machine (falls back to the CPU "
                            "if it fails there), `cpu` = always the CPU.")
    limit_videos_per_prompt: int = Field(1, ge=0, description="Videos one request may carry.")
    limit_images_per_prompt: int = Field(8, ge=0, description="Images one request may carry.")
    seed: int = Field(0, description="Engine seed for requests that give none.")

    # --- LoRA adapters (app/engine/lora.py) -------------------------------------------------
    lora_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="LoRA adapters served over the base model, each NAME=PATH (a PEFT "
                        "adapter directory); clients choose one by passing NAME as `model`. "
                        "Flag: --lora NAME=PATH, repeatable; variable: comma-separated or a "
                        "JSON list.")
    max_lora_rank: int = Field(16, description="Largest adapter rank the engine reserves room "
                                               "for: 1, 8, 16, 32, 64, 128, 256, 320 or 512.")
    max_loras: int = Field(1, ge=1, description="Adapters that can run in one engine step "
                                                "(more are served, in turns).")
    lora_vision_tower: Literal["auto", "on", "off"] = Field(
        "auto", description="Apply adapter weights on the vision tower and merger (vLLM's "
                            "experimental tower/connector LoRA): `auto` = when a --lora adapter "
                            "has such weights; `off`: such adapters are refused, never trimmed.")
    allow_runtime_lora_updating: bool = Field(
        False, description="Enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter "
                           "(vLLM's names); set api_key too, or anyone who can reach the port "
                           "can change what is served.")
    trust_remote_code: bool = Field(False, description="Run a checkpoint's own Python code.")

    # --- HTTP server ------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8000, validation_alias=_env("port", "NIM_HTTP_API_PORT"),
                      description="TCP port to listen on.")
    api_key: str | None = Field(None, description="If set, requests need `Authorization: Bearer`.")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="More accepted API keys (COSMOS_API_KEYS: comma-separated).")
    api_keys_file: Path | None = Field(
        None, description="File of accepted API keys, one per line (a mounted Secret); re-read "
                          "when it changes, so keys rotate without a restart.")
    metrics_require_key: bool = Field(False, description="/metrics needs an API key too "
                                                         "(health probes never do).")
    max_concurrent_requests: int = Field(256, ge=1, description="Beyond this, 429.")
    overload_retry_after_s: int = Field(
        1, ge=0, description="Retry-After (seconds) sent with a 429 when a cap is reached.")
    request_deadline_s: float = Field(
        600.0, gt=0, description="Longest a chat request may take, in s, from arrival to its "
                                 "last token; a client may lower it with the "
                                 "X-Request-Deadline-S header. Past it: 504 (an error event in "
                                 "a stream), engine request aborted, decode cancelled.")
    shutdown_grace_s: float = Field(
        120.0, gt=0, description="On SIGTERM/SIGINT, seconds until everything the server started "
                                 "has stopped: requests drain for all but the last quarter "
                                 "(at most 15 s, kept to stop the engine), then get 503. Keep "
                                 "the pod's terminationGracePeriodSeconds above it.")
    max_request_body_bytes: int = Field(200 * 1024 * 1024, ge=1024,
                                        description="Largest request body, in bytes (413).")
    sse_keepalive_interval_s: float = Field(
        10.0, gt=0, description="Seconds of silence after which a stream sends an SSE comment "
                                "(while a long video decodes or prefills), so proxies with idle "
                                "timeouts keep it open.")
    log_level: str = Field("info", description="debug, info, warning or error.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per line (request id, route, status, "
                            "latency, tokens), for log collectors; `text` for a terminal.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(k.strip() for k in v.split(",") if k.strip())
        return tuple(k.strip() for k in v if k.strip()) if isinstance(v, (list, tuple)) else v

    @field_validator("lora_modules", mode="before")
    @classmethod
    def _split_loras(cls, v: object) -> object:
        # '["a=/p","b=/q"]' or "a=/p,b=/q" from the environment; NAME=PATH checked here so a
        # malformed one is a settings error before anything loads.
        if isinstance(v, str):
            v = json.loads(v) if v.lstrip().startswith("[") else [p for p in v.split(",") if p]
        from app.engine.lora import parse_lora_module

        names = [parse_lora_module(str(spec))[0] for spec in v or ()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"LoRA adapter name(s) given twice: {', '.join(twice)}")
        return tuple(str(spec) for spec in v or ())

    @field_validator("max_lora_rank")
    @classmethod
    def _lora_rank(cls, v: int) -> int:
        from app.engine.lora import LORA_RANKS

        if v not in LORA_RANKS:
            raise ValueError(f"max_lora_rank must be one of {', '.join(map(str, LORA_RANKS))} "
                             f"(vLLM's choices)")
        return v
