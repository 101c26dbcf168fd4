"""Request and response bodies, mirroring OpenAI's chat completions API field for field.

Our extensions all live in `CosmosExtensions` (request) and are documented there; responses add
only `reasoning_content`/`reasoning` (as vLLM does), `guardrail` and `media`. The response
bodies are defined in responses.py and imported here, so every caller imports both from here.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.api.responses import (ERROR_RESPONSES, ChatCompletion, ChatCompletionChunk,  # noqa: F401
                               Choice, ChoiceLogprobs, ChunkChoice, DeltaMessage, ErrorBody,
                               ErrorResponse, GuardrailFindingOut, GuardrailReport, IngestedMedia,
                               ModelCard, ModelList, PromptTokensDetails, ResponseMessage,
                               ServedProfile, TokenLogprobOut, TopLogprob, Usage)
from app.ingest.options import VideoRequestOptions
from app.profiles.model import MaxTokens, RepetitionPenalty, Temperature, TopK, TopP


class _Lenient(BaseModel):
    # Unknown fields are ignored, as vLLM does, so newer SDKs keep working.
    model_config = ConfigDict(extra="ignore")


class URLRef(_Lenient):
    url: str
    detail: str | None = None


def _url_ref(v: Any) -> Any:
    # Some OpenAI-compatible clients send the bare string instead of {"url": ...}.
    return {"url": v} if isinstance(v, str) else v


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ImagePart(_Lenient):
    type: Literal["image_url"]
    image_url: URLRef
    _coerce = field_validator("image_url", mode="before")(_url_ref)


class VideoPart(_Lenient):
    type: Literal["video_url"]
    video_url: URLRef
    _coerce = field_validator("video_url", mode="before")(_url_ref)


ContentPart = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class JSONSchemaFormat(_Lenient):
    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _needs_schema(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format.json_schema is required for type json_schema")
        return self


class CosmosExtensions(VideoRequestOptions):
    """cosmos-serve's request extensions (all optional; the deployment's profile and settings
    give the defaults; docs/profiles.md has the order).

    - `reasoning`: add Cosmos-Reason1's `<think>/<answer>` instruction to the system prompt.
    - `return_raw_text`: return the model text unsplit in `content`.
    - `video_fps` or `video_nframes`, `video_min_frames`, `video_max_frames`,
      `video_min_pixels`, `video_max_pixels` (per frame), `video_total_pixels` (whole clip),
      `video_start`, `video_end` (seconds): sampling and pixel budgets, with qwen-vl-utils'
      semantics (`VideoRequestOptions`, shared with `POST /v1/video/inspect`).
    - `choices`: the multiple-choice letters the question offers, for the guardrail
      (parsed from the question when absent).
    - `guardrail`: `false` skips the guardrail for this request.
    - `guardrail_critic`: `true` / `false` runs / skips the model critic for this request
      (the server's `guardrail_critic` otherwise; refused with 400 where the server does not
      let requests choose). Its finding, `critic.implausible`, joins the rules' in `guardrail`.
    - `repetition_penalty`, `top_k`, `min_tokens`, `ignore_eos`: vLLM's sampling extras.

    Responses add `message.reasoning_content` (and `reasoning`), `choices[i].guardrail`,
    `usage.prompt_tokens_details.vision_tokens`, and `media`: what was ingested for this
    request, one `IngestedMedia` per video or image part in prompt order, with the SHA-256 of
    the exact frames the model was given (`frames_sha256`, as `/v1/video/inspect` reports it),
    their count, size, duration and vision tokens; a stream carries it in its first chunk.
    It lets a client check that an answer belongs to its own clip.

    Header: `X-Request-Deadline-S` lowers the server's `request_deadline_s` for this request
    (504 `deadline_exceeded` when it passes). `X-Request-Id` is echoed (or one is made up) in
    the response header and in error bodies (`request_id`, beside `error`).
    """
    reasoning: bool | None = None
    return_raw_text: bool | None = None
    choices: list[str] | None = None
    guardrail: bool = True
    guardrail_critic: bool | None = None
    repetition_penalty: RepetitionPenalty | None = None
    top_k: TopK | None = None
    min_tokens: int = Field(0, ge=0)
    ignore_eos: bool = False


class ChatCompletionRequest(CosmosExtensions):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=16)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "ChatCompletionRequest":
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs: true")
        if isinstance(self.stop, list) and len(self.stop) > 16:
            raise ValueError("stop accepts at most 16 sequences")
        return self

    @property
    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class LoadLoraAdapterRequest(BaseModel):
    """POST /v1/load_lora_adapter, vLLM's body. `load_inplace` replaces an adapter of that
    name (otherwise loading a name twice is a 400)."""
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)
    load_inplace: bool = False


class UnloadLoraAdapterRequest(BaseModel):
    """POST /v1/unload_lora_adapter, vLLM's body (`lora_int_id` is accepted and ignored: the
    name identifies an adapter)."""
    lora_name: str = Field(min_length=1)
    lora_int_id: int | None = None
