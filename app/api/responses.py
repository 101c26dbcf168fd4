"""Response bodies, mirroring OpenAI's chat completions API field for field: completions and
their stream chunks, errors, the model list.

Our additions are `reasoning_content`/`reasoning` (as vLLM does), `guardrail` and `media`; the
request side, and every name callers import, is in protocol.py.
"""
from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field


class PromptTokensDetails(BaseModel):
    vision_tokens: int | None = None  # extension: the video and image tokens of the prompt


class IngestedMedia(BaseModel):
    """Extension: one ingested video or image (see CosmosExtensions)."""
    type: Literal["video", "image"]
    frames_sha256: str
    num_frames: int
    width: int
    height: int
    duration_s: float | None = None
    sample_fps: float | None = None
    vision_tokens: int | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None = None


class GuardrailFindingOut(BaseModel):
    rule_id: str
    severity: str
    message: str
    span: list[int]
    source: str


class GuardrailReport(BaseModel):
    verdict: Literal["pass", "flag", "block"]
    findings: list[GuardrailFindingOut] = Field(default_factory=list)


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # vLLM's current name for the same text
    refusal: str | None = None


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None
    guardrail: GuardrailReport | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    media: list[IngestedMedia] | None = None  # extension: what was ingested


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None
    guardrail: GuardrailReport | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    media: list[IngestedMedia] | None = None  # extension, first chunk only


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error: OpenAI's body, plus the request id beside it (extension)."""
    error: ErrorBody
    request_id: str | None = None


# The error statuses an API route can answer with (documented in the OpenAPI schema).
ERROR_RESPONSES: dict = {status: {"model": ErrorResponse, "description": what} for status, what in (
    (400, "invalid request, media or JSON"), (401, "missing or invalid API key"),
    (403, "not allowed on this server"), (404, "unknown model or path"),
    (413, "request body or media too large"), (429, "over a cap: retry after Retry-After"),
    (503, "not ready, engine stopped, or shutting down"),
    (504, "the request's deadline passed"))}


class ServedProfile(BaseModel):
    name: str | None
    values: dict[str, Any]
    sources: dict[str, str]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "cosmos-serve"
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None
    # Extension: the quantization in use (the checkpoint's declared scheme, or on the fly).
    quantization: str | None = None
    # Extension: the profile this model is served with, each key's value and the layer it
    # came from (request > settings > profile > generation_config > default).
    profile: ServedProfile | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
