"""From an OpenAI request to an engine input: media ingested, chat template applied, budgets checked.

Media parts are replaced by `{"type": "video"}` / `{"type": "image"}` placeholders that the
model's chat template turns into `<|vision_start|><|video_pad|><|vision_end|>`; vLLM then expands
each pad to the clip's vision tokens. Knowing those counts up front (ingestion computes them) lets
us reject an over-long prompt with its token count before the engine sees it: this is the one
context-length check, against the engine's real `max_model_len`.

The profile decides how the model is asked: its system prompt (when the request sends none),
media before text in the user turn (`media_first`, as cosmos-rl's `create_conversation` builds
training samples) and whether the reasoning instruction is added.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.api.protocol import ChatCompletionRequest, ImagePart, TextPart, VideoPart
from app.config import Settings
from app.engine.base import Engine, SamplingOptions
from app.errors import ContextLengthError, InvalidRequestError
from app.ingest import VideoClip, VideoIngestor
from app.ingest import options as video_options
from app.ingest.reference import smart_resize
from app.profiles.resolve import Resolved
from app.reasoning import ensure_reasoning_instruction

# vLLM's Qwen2.5-VL image processor bounds (preprocessor_config.json of the model family).
_IMAGE_MIN_PIXELS, _IMAGE_MAX_PIXELS = 3136, 12_845_056


@dataclass
class PreparedPrompt:
    prompt: str
    prompt_tokens: int  # text tokens + vision tokens, as the engine will count them
    videos: list[VideoClip] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    question: str = ""  # last user text, for the guardrail's choice extraction
    reasoning: bool = True  # the reasoning instruction is in the prompt

    @property
    def duration_s(self) -> float | None:
        return max((v.duration_s for v in self.videos), default=None)

    @property
    def vision_tokens(self) -> int:
        return sum(v.vision_tokens for v in self.videos) + sum(_image_tokens(i)
                                                               for i in self.images)


def wants_json(req: ChatCompletionRequest) -> bool:
    return req.response_format is not None and req.response_format.type != "text"


def _image_tokens(image: Any) -> int:
    h, w = smart_resize(image.height, image.width, factor=28, min_pixels=_IMAGE_MIN_PIXELS,
                        max_pixels=_IMAGE_MAX_PIXELS)
    return (h // 28) * (w // 28)


def _ordered(parts: list, media_first: bool) -> list:
    if not media_first:
        return list(parts)
    return ([p for p in parts if not isinstance(p, TextPart)]
            + [p for p in parts if isinstance(p, TextPart)])


def build_messages(req: ChatCompletionRequest, profile: Resolved
                   ) -> tuple[list[dict], list[tuple[str, str]], str]:
    """Template messages, media jobs `(kind, url)` in prompt order, and the last user text."""
    messages: list[dict] = []
    jobs: list[tuple[str, str]] = []
    question = ""
    for m_idx, msg in enumerate(req.messages):
        role = "system" if msg.role == "developer" else msg.role
        if msg.content is None or isinstance(msg.content, str):
            messages.append({"role": role, "content": msg.content or ""})
            question = msg.content or "" if role == "user" else question
            continue
        parts: list[dict] = []
        texts: list[str] = []
        for part in _ordered(msg.content, profile["media_first"] and role == "user"):
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
                texts.append(part.text)
            elif role != "user":
                raise InvalidRequestError(f"media parts are only allowed in user messages "
                                          f"(message {m_idx} has role {msg.role!r})",
                                          param=f"messages.{m_idx}.content")
            elif isinstance(part, VideoPart):
                parts.append({"type": "video"})
                jobs.append(("video", part.video_url.url))
            elif isinstance(part, ImagePart):
                parts.append({"type": "image"})
                jobs.append(("image", part.image_url.url))
        messages.append({"role": role, "content": parts})
        question = "\n".join(texts) if role == "user" else question
    if profile["system_prompt"] and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": profile["system_prompt"]})
    return messages, jobs, question


def _check_counts(jobs: list[tuple[str, str]], settings: Settings) -> None:
    n_video = sum(1 for kind, _ in jobs if kind == "video")
    for kind, n, limit in (("video", n_video, settings.limit_videos_per_prompt),
                           ("image", len(jobs) - n_video, settings.limit_images_per_prompt)):
        if n > limit:
            raise InvalidRequestError(f"at most {limit} {kind}(s) per request; got {n}",
                                      param="messages")


async def prepare_prompt(req: ChatCompletionRequest, settings: Settings, profile: Resolved,
                         engine: Engine, ingestor: VideoIngestor) -> PreparedPrompt:
    messages, jobs, question = build_messages(req, profile)
    _check_counts(jobs, settings)
    reasoning = req.reasoning
    if reasoning is None:  # a JSON answer has no room for <think>: off unless asked for
        reasoning = profile["reasoning"] and not wants_json(req)
    if reasoning:
        messages = ensure_reasoning_instruction(messages)

    # The model's own profile (a LoRA adapter may carry one), not the ingestor's deployment one.
    options = video_options.build(profile, video_options.request_options(req)) \
        if any(k == "video" for k, _ in jobs) else None
    media = await asyncio.gather(*[ingestor.video(url, options) if kind == "video"
                                   else ingestor.image(url) for kind, url in jobs])
    videos = [m for (kind, _), m in zip(jobs, media) if kind == "video"]
    images = [m for (kind, _), m in zip(jobs, media) if kind == "image"]

    prompt = engine.render_prompt(messages)
    prepared = PreparedPrompt(prompt=prompt, prompt_tokens=0, videos=videos, images=images,
                              question=question, reasoning=reasoning)
    # Each placeholder counts one token in the rendered text; vLLM expands it to the media's.
    prepared.prompt_tokens = (engine.count_tokens(prompt) + prepared.vision_tokens - len(media))
    if engine.max_model_len and prepared.prompt_tokens >= engine.max_model_len:
        raise ContextLengthError(
            f"this request has {prepared.prompt_tokens} prompt tokens "
            f"({sum(v.vision_tokens for v in videos)} of them video), but the model's context "
            f"is {engine.max_model_len} tokens; lower video_fps, video_total_pixels or "
            f"video_max_frames, or shorten the video", param="messages")
    return prepared


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def sampling_options(req: ChatCompletionRequest, profile: Resolved, prompt_tokens: int,
                     max_model_len: int) -> SamplingOptions:
    room = max_model_len - prompt_tokens if max_model_len else None
    asked = req.max_completion_tokens or req.max_tokens
    if asked is not None and room is not None and asked > room:
        raise ContextLengthError(
            f"max_tokens is {asked}, but the prompt has {prompt_tokens} tokens and the "
            f"model's context is {max_model_len}: at most {room} tokens can be generated",
            param="max_tokens")
    max_tokens = asked or min(profile["max_tokens"], room or profile["max_tokens"])
    schema = None
    if req.response_format is not None and req.response_format.type == "json_schema":
        schema = req.response_format.json_schema.schema_
    return SamplingOptions(
        max_tokens=max_tokens,
        temperature=_pick(req.temperature, profile["temperature"]),
        top_p=_pick(req.top_p, profile["top_p"]),
        top_k=_pick(req.top_k, profile["top_k"]), seed=req.seed, stop=req.stop_list, n=req.n,
        presence_penalty=req.presence_penalty, frequency_penalty=req.frequency_penalty,
        repetition_penalty=_pick(req.repetition_penalty, profile["repetition_penalty"]),
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        json_schema=schema,
        json_object=req.response_format is not None and req.response_format.type == "json_object",
        ignore_eos=req.ignore_eos, min_tokens=req.min_tokens)
