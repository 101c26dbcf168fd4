"""From an OpenAI request to an engine input: media ingested, chat template applied, budgets checked.

Media parts are replaced by `{"type": "video"}` / `{"type": "image"}` placeholders that the
model's chat template turns into `<|vision_start|><|video_pad|><|vision_end|>`; vLLM then expands
each pad to the clip's vision tokens. Knowing those counts up front (ingestion computes them) lets
us reject an over-long prompt with its token count before the engine sees it.
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
from app.ingest.reference import smart_resize
from app.reasoning import ensure_reasoning_instruction

# vLLM's Qwen2.5-VL image processor bounds (preprocessor_config.json of the model family).
_IMAGE_MIN_PIXELS, _IMAGE_MAX_PIXELS = 3136, 12_845_056


@dataclass
class PreparedPrompt:
    prompt: str
    prompt_tokens: int  # estimate: text tokens + vision tokens
    videos: list[VideoClip] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    question: str = ""  # last user text, for the guardrail's choice extraction
    reasoning: bool = True  # the reasoning instruction is in the prompt

    @property
    def duration_s(self) -> float | None:
        return max((v.duration_s for v in self.videos), default=None)


def wants_json(req: ChatCompletionRequest) -> bool:
    return req.response_format is not None and req.response_format.type != "text"


def _video_overrides(req: ChatCompletionRequest) -> dict:
    return {"fps": req.video_fps, "min_frames": req.video_min_frames,
            "max_frames": req.video_max_frames, "min_pixels": req.video_min_pixels,
            "max_pixels": req.video_max_pixels, "total_pixels": req.video_total_pixels,
            "start_s": req.video_start, "end_s": req.video_end}


def _image_tokens(image: Any) -> int:
    h, w = smart_resize(image.height, image.width, factor=28, min_pixels=_IMAGE_MIN_PIXELS,
                        max_pixels=_IMAGE_MAX_PIXELS)
    return (h // 28) * (w // 28)


async def prepare_prompt(req: ChatCompletionRequest, settings: Settings, engine: Engine,
                         ingestor: VideoIngestor) -> PreparedPrompt:
    messages: list[dict] = []
    jobs: list[tuple[str, int, str]] = []  # (kind, message index, url) in prompt order
    question = ""
    for m_idx, msg in enumerate(req.messages):
        role = "system" if msg.role == "developer" else msg.role
        if msg.content is None or isinstance(msg.content, str):
            messages.append({"role": role, "content": msg.content or ""})
            if role == "user":
                question = msg.content or ""
            continue
        parts: list[dict] = []
        texts: list[str] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
                texts.append(part.text)
            elif isinstance(part, VideoPart):
                parts.append({"type": "video"})
                jobs.append(("video", m_idx, part.video_url.url))
            elif isinstance(part, ImagePart):
                parts.append({"type": "image"})
                jobs.append(("image", m_idx, part.image_url.url))
        if role != "user" and len(texts) != len(parts):
            raise InvalidRequestError(f"media parts are only allowed in user messages "
                                      f"(message {m_idx} has role {msg.role!r})",
                                      param=f"messages.{m_idx}.content")
        messages.append({"role": role, "content": parts})
        if role == "user":
            question = "\n".join(texts)

    n_video = sum(1 for kind, _, _ in jobs if kind == "video")
    n_image = len(jobs) - n_video
    if n_video > settings.limit_videos_per_prompt:
        raise InvalidRequestError(f"at most {settings.limit_videos_per_prompt} video(s) per "
                                  f"request; got {n_video}", param="messages")
    if n_image > settings.limit_images_per_prompt:
        raise InvalidRequestError(f"at most {settings.limit_images_per_prompt} image(s) per "
                                  f"request; got {n_image}", param="messages")

    reasoning = req.reasoning
    if reasoning is None:  # a JSON answer has no room for <think>: off unless asked for
        reasoning = settings.reasoning_default and not wants_json(req)
    if reasoning:
        messages = ensure_reasoning_instruction(messages)

    options = ingestor.options(_video_overrides(req)) if n_video else None
    media = await asyncio.gather(*[
        ingestor.video(url, options) if kind == "video" else ingestor.image(url)
        for kind, _, url in jobs])
    videos = [m for (kind, _, _), m in zip(jobs, media) if kind == "video"]
    images = [m for (kind, _, _), m in zip(jobs, media) if kind == "image"]

    prompt = engine.render_prompt(messages)
    tokens = (engine.count_tokens(prompt) + sum(v.vision_tokens - 1 for v in videos)
              + sum(_image_tokens(i) - 1 for i in images))
    if engine.max_model_len and tokens >= engine.max_model_len:
        raise ContextLengthError(
            f"this request has {tokens} prompt tokens ({sum(v.vision_tokens for v in videos)} "
            f"of them video), but the model's context is {engine.max_model_len} tokens; lower "
            f"video_fps, video_total_pixels or video_max_frames, or shorten the video",
            param="messages")
    return PreparedPrompt(prompt=prompt, prompt_tokens=tokens, videos=videos, images=images,
                          question=question, reasoning=reasoning)


def sampling_options(req: ChatCompletionRequest, settings: Settings, prompt_tokens: int,
                     max_model_len: int) -> SamplingOptions:
    room = max_model_len - prompt_tokens if max_model_len else None
    asked = req.max_completion_tokens or req.max_tokens
    if asked is not None and room is not None and asked > room:
        raise ContextLengthError(
            f"max_tokens is {asked}, but the prompt has {prompt_tokens} tokens and the "
            f"model's context is {max_model_len}: at most {room} tokens can be generated",
            param="max_tokens")
    max_tokens = asked or min(settings.default_max_tokens, room or settings.default_max_tokens)
    schema = None
    if req.response_format is not None and req.response_format.type == "json_schema":
        schema = req.response_format.json_schema.schema_
    return SamplingOptions(
        max_tokens=max_tokens,
        temperature=settings.default_temperature if req.temperature is None else req.temperature,
        top_p=settings.default_top_p if req.top_p is None else req.top_p,
        top_k=req.top_k, seed=req.seed, stop=req.stop_list, n=req.n,
        presence_penalty=req.presence_penalty, frequency_penalty=req.frequency_penalty,
        repetition_penalty=(settings.default_repetition_penalty
                            if req.repetition_penalty is None else req.repetition_penalty),
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        json_schema=schema,
        json_object=req.response_format is not None and req.response_format.type == "json_object",
        ignore_eos=req.ignore_eos, min_tokens=req.min_tokens)
