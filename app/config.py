"""The one settings object of cosmos-serve.

Every field can be set by a `COSMOS_<FIELD>` environment variable or a `--field-name` flag of
`cosmos-serve serve` (flags win). NIM's `NIM_MODEL_NAME` / `NIM_SERVED_MODEL_NAME` are accepted
too, so a NIM user's `docker run -e ...` line works unchanged. Limits carry their unit in the name.

The model, engine, LoRA and HTTP fields are declared in its base class (app/config_runtime.py);
the fields of what a request gets (profile keys, video ingestion, reasoning and guardrail), here.
"""
from __future__ import annotations

from pathlib import Path
import json
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from app.config_runtime import RuntimeSettings
from app.profiles.model import (Fps, MaxFrames, MaxPixels, MaxTokens, MinFrames, MinPixels,
                                NFrames, RepetitionPenalty, Temperature, TopK, TopP, TotalPixels)
from app.reasoning.instruction import DEFAULT_SYSTEM_PROMPT

Policy = Literal["off", "annotate", "block"]

# Cosmos-Reason1's published preprocessing and sampling defaults.
COSMOS_FPS = 4.0
COSMOS_TOTAL_PIXELS = 6_422_528  # 8192 vision tokens * 28 * 28
REASONING_MAX_TOKENS = 4096


class Settings(RuntimeSettings):
    model_config = SettingsConfigDict(env_prefix="COSMOS_", frozen=True, extra="ignore",
                                      populate_by_name=True)

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
    video_decode_processes: int = Field(
        -1, ge=-1, le=64, description="Processes that decode clips for the server while it "
                                      "decodes one itself, each with its own GIL and (where "
                                      "NVDEC is used) CUDA context and NVDEC decoders, sharing "
                                      "the decode limits between them; a lone clip is decoded "
                                      "in the server (no hand-over). In a burst the server's "
                                      "own decode threads queue for its GIL "
                                      "(docs/performance.md). -1 = 4 where NVDEC decodes, else "
                                      "0; 0 = the server's own threads only.")
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
    video_nvdec_blocking_sync: bool = Field(
        False, description="Threads of this process that wait for the GPU (NVDEC frames, "
                           "copies, vLLM's processor) sleep instead of spinning a CPU core "
                           "(CUDA's blocking sync for the server's own CUDA context).")
    video_nvdec_cpu_cores: int = Field(
        0, ge=-1, description="CPU cores that may decode clips which would otherwise queue for "
                              "NVDEC, when the CPU would finish them sooner (both decoders at "
                              "once in a burst); -1 = a quarter of the cores this process may "
                              "use; 0 = never. Off by default: on an H200 host 4 of 16 cores "
                              "measured from 0.7x to 1.3x the clips/s of NVDEC alone, run to run.")
    gil_switch_interval_s: float = Field(
        0.0001, gt=0, le=0.1, description="Python's thread switch interval "
                                          "(sys.setswitchinterval), in s. Decode threads let go "
                                          "of the GIL around every FFmpeg call and wait up to this "
                                          "long to get it back while another thread runs Python: "
                                          "beside one busy thread, 40 frames took 0.45-6.8 s to "
                                          "decode at Python's default 0.005 and 0.3 s at 0.0001 "
                                          "(0.15 s alone).")
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
