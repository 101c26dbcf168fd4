"""The one settings object of cosmos-serve.

Every field can be set by a `COSMOS_<FIELD>` environment variable or a `--field-name` flag of
`cosmos-serve serve` (flags win). NIM's `NIM_MODEL_NAME` / `NIM_SERVED_MODEL_NAME` are accepted
too, so a NIM user's `docker run -e ...` line works unchanged. Limits carry their unit in the name.
"""
from __future__ import annotations

from pathlib import Path
import json
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.profiles.model import (Fps, MaxFrames, MaxPixels, MaxTokens, MinFrames, MinPixels,
                                NFrames, RepetitionPenalty, Temperature, TopK, TopP, TotalPixels)
from app.reasoning.instruction import DEFAULT_SYSTEM_PROMPT

Policy = Literal["off", "annotate", "block"]

# Cosmos-Reason1's published preprocessing and sampling defaults.
COSMOS_FPS = 4.0
COSMOS_TOTAL_PIXELS = 6_422_528  # 8192 vision tokens * 28 * 28
REASONING_MAX_TOKENS = 4096


def _env(name: str, *aliases: str) -> AliasChoices:
    # Environment names only: the bare field name stays an init/flag name (populate_by_name).
    return AliasChoices(f"COSMOS_{name.upper()}", *aliases)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COSMOS_", frozen=True, extra="ignore",
                                      populate_by_name=True)

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

    # --- the profile's keys: Cosmos-Reason1's values, overridden by a profile (see
    # app/profiles/resolve.py for the order), and per request --------------------------------
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description=(
        "System prompt for requests that send none; \"\" sends no system message."))
    media_first: bool = Field(False, description=(
        "Move a user turn's videos and images before its text (as cosmos-rl trains)."))
    default_max_tokens: MaxTokens = REASONING_MAX_TOKENS
    default_temperature: Temperature = 0.6
    default_top_p: TopP = 0.95
    default_top_k: TopK | None = Field(None, description="Top-k sampling; None = off.")
    default_repetition_penalty: RepetitionPenalty = 1.05

    # --- video ingestion ----------------------------------------------------------------------
    video_fps: Fps = COSMOS_FPS
    video_nframes: NFrames | None = Field(None, description=(
        "A fixed frame count per clip instead of video_fps (None = use video_fps)."))
    video_min_frames: MinFrames = 4
    video_max_frames: MaxFrames = 768
    video_min_pixels: MinPixels = 128 * 28 * 28
    video_max_pixels: MaxPixels = 768 * 28 * 28
    video_total_pixels: TotalPixels = COSMOS_TOTAL_PIXELS
    video_max_bytes: int = Field(100 * 1024 * 1024, ge=1024,
                                 description="Largest encoded video, in bytes.")
    video_max_duration_s: float = Field(600.0, gt=0, description="Longest video span, in s.")
    video_truncate_long: bool = Field(False, description="Truncate instead of rejecting clips "
                                                         "longer than video_max_duration_s.")
    video_decode_timeout_s: float = Field(60.0, gt=0, description="Decode of one clip, in s.")
    video_decode_workers: int = Field(
        0, ge=0, description="Clips decoded at once (decode threads of the server, each holding "
                             "one clip's frames); 0 = one per CPU core this process may use "
                             "(affinity and cgroup quota counted): in a burst, many "
                             "single-threaded decodes get the most out of the cores.")
    video_decode_queue_max: int = Field(32, ge=0, description="Decodes that may wait for a "
                                                               "worker; beyond, 429.")
    video_max_source_pixels: int = Field(
        150_000_000_000, ge=1, description="Width x height x frames of a video's stream, checked "
                                           "from its headers and index before any decoding "
                                           "(default: 10 min of 4K at 30 fps).")
    video_max_source_frames: int = Field(90_000, ge=1, description="Frames in a video's stream "
                                                                   "(checked while indexing).")
    video_decode_threads: int = Field(
        0, ge=0, description="CPU threads one decode may use, keyframe-interval parts and FFmpeg "
                             "frame threads together; 0 = handed out in arrival order from the "
                             "cores: every free core when no other decode waits, else one per "
                             "keyframe-interval part it can run side by side (one for a clip "
                             "with a single keyframe).")
    video_decode_split: bool = Field(
        True, description="Decode a clip's keyframe intervals side by side, each part with a "
                          "decoder of its own, when its decode has several threads (the frames "
                          "are identical; a camera's 1 s keyframe interval splits well).")
    video_decoder: Literal["auto", "cpu", "nvdec"] = Field(
        "auto", description="Where clips are decoded: cpu; nvdec (the GPU's video decoders, "
                            "H.264/HEVC/VP9, converted and resized on the GPU; any NVDEC error "
                            "falls back to the CPU; the server does not start without a usable "
                            "NVDEC); auto (NVDEC where the host has it, for frames of "
                            "video_nvdec_min_pixels or more, and any clip it can take while "
                            "every CPU core is busy decoding; else the CPU).")
    video_nvdec_device: int = Field(0, ge=0, description="CUDA device index whose NVDEC decodes.")
    video_nvdec_max_decodes: int = Field(
        8, ge=1, description="Clips decoded on NVDEC at once (each holds decoders and surfaces "
                             "in GPU memory); more go to the CPU.")
    video_nvdec_max_decoders: int = Field(
        16, ge=1, description="NVDEC decoders running at once, all clips together: a lone clip "
                              "decodes up to 8 keyframe intervals side by side, clips decoding "
                              "together share this many (a burst gains nothing from splitting "
                              "a clip once the GPU's NVDEC engines are busy).")
    video_nvdec_min_pixels: int = Field(
        640 * 360, ge=0, description="Frame size, in pixels (width x height), from which auto "
                                     "decodes on NVDEC, waiting for a free NVDEC slot, even while "
                                     "CPU cores are free (on an H200 host a 1080p clip took 243 "
                                     "ms on NVDEC, 371 on 16 cores); smaller clips only while "
                                     "every core is busy.")
    video_nvdec_threads: int = Field(
        1, ge=1, le=16, description="FFmpeg frame threads per NVDEC decoder (1, 2, 4 and 8 "
                                    "measured the same on an H200: the GPU decodes).")
    video_cache_bytes: int = Field(1024 * 1024 * 1024, ge=0, description="LRU of decoded clips.")
    fetch_timeout_s: float = Field(30.0, gt=0, description="Whole download of one URL, in s.")
    fetch_connect_timeout_s: float = Field(5.0, gt=0, description="TCP connect, in s.")
    fetch_max_redirects: int = Field(3, ge=0, description="HTTP redirects followed per URL.")
    fetch_allow_private: bool = Field(False, description="Allow loopback/private URL targets.")
    allowed_local_media_dirs: Annotated[tuple[Path, ...], NoDecode] = Field(
        (), description="Directories whose files may be named by path or file:// URL.")
    image_max_bytes: int = Field(20 * 1024 * 1024, ge=1024,
                                 description="Largest encoded image, in bytes.")

    # --- reasoning and guardrail --------------------------------------------------------------
    reasoning_default: bool = Field(True, description="Add the reasoning instruction unless the "
                                                      "request says `reasoning: false`.")
    return_raw_text: bool = Field(False, description="Return the model text unsplit.")
    guardrail_rules_path: Path | None = Field(None, description="YAML rules; None = shipped set.")
    guardrail_policy_info: Policy = Field("annotate", description="off, annotate or block: "
                                                                  "what info findings do.")
    guardrail_policy_warning: Policy = Field("annotate", description="... warning findings.")
    guardrail_policy_critical: Policy = Field("annotate", description="... critical findings.")
    guardrail_critic: bool = Field(
        False, description="Ask the served model, with the request's own video, whether each "
                           "answer is physically plausible (Cosmos-Reason1's video critic "
                           "prompt; one more engine request per answer); an implausible verdict "
                           "is a `critic.implausible` finding. Requests may override it with "
                           "their `guardrail_critic` extension.")
    guardrail_critic_per_request: bool = Field(
        True, description="Let a request turn the model critic on or off (`guardrail_critic` "
                          "extension); false: a request asking otherwise than the server gets "
                          "400.")
    guardrail_critic_max_tokens: int = Field(
        1024, ge=16, le=8192, description="Most tokens the critic may write (its analysis and "
                                          "verdict); fewer if the context has less room.")
    guardrail_critic_severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="Severity of a `critic.implausible` finding: its guardrail "
                               "policy (annotate, block) applies.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(k.strip() for k in v.split(",") if k.strip())
        return tuple(k.strip() for k in v if k.strip()) if isinstance(v, (list, tuple)) else v

    @field_validator("allowed_local_media_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, v: object) -> object:
        # Environment variables carry lists as '["d1","d2"]' (as pydantic-settings writes
        # them), "d1:d2" (as PATH) or "d1,d2".
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return tuple(json.loads(v))
            return tuple(p for p in v.replace(",", ":").split(":") if p)
        return v

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

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model.rstrip("/").split("/")[-1]

    @property
    def guardrail_policy(self) -> dict[str, Policy]:
        return {"info": self.guardrail_policy_info, "warning": self.guardrail_policy_warning,
                "critical": self.guardrail_policy_critical}


def settings_env_names() -> dict[str, str]:
    """Every environment name Settings reads, mapped to its field (for deploy tooling)."""
    names: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [f"COSMOS_{field.upper()}"]
        for choice in choices:
            names[str(choice)] = field
    return names
