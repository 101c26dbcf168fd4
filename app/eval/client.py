"""One item, one streamed chat completion through the official `openai` client.

What is asked and how follows `--profile`, the same profiles the server uses: its system prompt,
media before or after the text, its sampling, and our server's extensions for what the model
sees of the video (`video_fps`, ...) and `reasoning`. Without a profile nothing but the question
and the clip is sent, so the server's own profile applies (and any OpenAI-compatible server
accepts the request). Only keys a profile sets are sent.

Transient failures (429, 502/503/504, a connection refused or reset, a stream cut short) are
retried with exponential backoff and jitter, honouring Retry-After; anything else is the item's
error, except a refused key or an unknown model, which no other item can get past either.
"""
from __future__ import annotations

import asyncio
import base64
import mimetypes
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai

from app.eval.dataset import EvalItem

VIDEO_EXTENSIONS = {"fps": "video_fps", "nframes": "video_nframes",
                    "min_frames": "video_min_frames", "max_frames": "video_max_frames",
                    "min_pixels": "video_min_pixels", "max_pixels": "video_max_pixels",
                    "total_pixels": "video_total_pixels"}
_MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska",
         ".mov": "video/quicktime", ".avi": "video/x-msvideo"}
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class FatalError(Exception):
    """An error that every item would hit (a refused key, an unknown model)."""


@dataclass(frozen=True)
class AskPlan:
    """How every item is asked: built once from the profile and the flags."""
    model: str
    system_prompt: str | None = None
    media_first: bool = True
    params: dict = field(default_factory=dict)      # OpenAI sampling parameters
    extra_body: dict = field(default_factory=dict)  # extensions (top_k, video_*, reasoning)

    @classmethod
    def build(cls, model: str, profile=None, max_tokens: int | None = None,
              temperature: float | None = None, seed: int | None = None) -> "AskPlan":
        given = profile.given() if profile is not None else {}
        params = {k: given[k] for k in ("temperature", "top_p", "max_tokens") if k in given}
        extra = {k: given[k] for k in ("top_k", "repetition_penalty") if k in given}
        extra.update({VIDEO_EXTENSIONS[k]: v for k, v in given.items() if k in VIDEO_EXTENSIONS})
        if "reasoning" in given:
            extra["reasoning"] = given["reasoning"]
        for key, value in (("max_tokens", max_tokens), ("temperature", temperature),
                           ("seed", seed)):
            if value is not None:
                params[key] = value
        return cls(model=model, system_prompt=given.get("system_prompt") or None,
                   media_first=given.get("media_first", True), params=params, extra_body=extra)


def media_url(media: Path | str, by_path: bool) -> str:
    """A `file://` URL (the server reads the file itself) or the bytes as a data: URL."""
    if isinstance(media, str):
        return media
    if by_path:
        return media.as_uri()
    mime = _MIME.get(media.suffix.lower()) or mimetypes.guess_type(media.name)[0] or "video/mp4"
    return f"data:{mime};base64," + base64.b64encode(media.read_bytes()).decode()


def build_messages(item: EvalItem, url: str, plan: AskPlan) -> list[dict]:
    part = ({"type": "video_url", "video_url": {"url": url}} if item.media_type == "video"
            else {"type": "image_url", "image_url": {"url": url}})
    text = {"type": "text", "text": item.question}
    messages = [{"role": "system", "content": plan.system_prompt}] if plan.system_prompt else []
    content = [part, text] if plan.media_first else [text, part]
    return messages + [{"role": "user", "content": content}]


@dataclass
class Reply:
    reasoning: str = ""
    answer: str = ""
    finish_reason: str | None = None
    guardrail: str | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    tokens: dict = field(default_factory=lambda: {"prompt": None, "vision": None, "output": None})
    attempts: int = 1


def _extra(obj) -> dict:
    return (getattr(obj, "model_extra", None) or {}) if obj is not None else {}


def _vision_tokens(usage) -> int | None:
    details = getattr(usage, "prompt_tokens_details", None)
    if details is None:
        details = _extra(usage).get("prompt_tokens_details")
    if isinstance(details, dict):
        return details.get("vision_tokens")
    return getattr(details, "vision_tokens", None) or _extra(details).get("vision_tokens")


async def _stream_once(client: openai.AsyncOpenAI, plan: AskPlan, messages: list) -> Reply:
    reply = Reply()
    start = time.perf_counter()
    stream = await client.chat.completions.create(
        model=plan.model, messages=messages, stream=True,
        stream_options={"include_usage": True}, extra_body=plan.extra_body or None,
        **plan.params)
    async with stream:
        async for chunk in stream:
            if chunk.usage is not None:
                u = chunk.usage
                reply.tokens = {"prompt": u.prompt_tokens, "vision": _vision_tokens(u),
                                "output": u.completion_tokens}
            for choice in chunk.choices or []:
                delta, extra = choice.delta, _extra(choice.delta)
                thought = extra.get("reasoning_content") or extra.get("reasoning") or ""
                if (delta.content or thought) and reply.ttft_s is None:
                    reply.ttft_s = time.perf_counter() - start
                reply.answer += delta.content or ""
                reply.reasoning += thought
                if choice.finish_reason:
                    reply.finish_reason = choice.finish_reason
                verdict = _extra(choice).get("guardrail")
                if isinstance(verdict, dict):
                    reply.guardrail = verdict.get("verdict")
    reply.latency_s = time.perf_counter() - start
    if reply.finish_reason is None:  # the stream ended without its last chunk
        raise httpx.RemoteProtocolError("the response stream ended before the answer finished")
    if not reply.reasoning and "<think>" in reply.answer:  # a server that does not split
        from app.reasoning import parse_reasoning

        parsed = parse_reasoning(reply.answer, truncated=reply.finish_reason == "length")
        reply.reasoning, reply.answer = parsed.reasoning or "", parsed.answer or ""
    return reply


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    try:
        return float(response.headers.get("retry-after")) if response is not None else None
    except (TypeError, ValueError):
        return None


def describe(exc: Exception) -> str:
    if isinstance(exc, openai.APIStatusError):
        body = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        return f"HTTP {exc.status_code}: {message or exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "timed out waiting for the server"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        return f"connection failed: {cause or exc}"
    return f"{type(exc).__name__}: {exc}"


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUS
    return isinstance(exc, (openai.APIConnectionError, httpx.TransportError))


def is_fatal(exc: Exception) -> bool:
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return True
    return isinstance(exc, openai.NotFoundError) and "model" in describe(exc).lower()


async def ask(client: openai.AsyncOpenAI, plan: AskPlan, messages: list, retries: int = 4,
              backoff_s: float = 1.0) -> Reply:
    """The item's reply; raises FatalError, or the last error once retries are spent."""
    for attempt in range(retries + 1):
        try:
            reply = await _stream_once(client, plan, messages)
            reply.attempts = attempt + 1
            return reply
        except Exception as exc:  # noqa: BLE001 - sorted below
            if is_fatal(exc):
                raise FatalError(describe(exc)) from exc
            if not is_transient(exc) or attempt == retries:
                raise
            delay = _retry_after(exc) or backoff_s * 2 ** attempt
            await asyncio.sleep(min(delay, 60.0) * random.uniform(0.8, 1.2))
    raise AssertionError("unreachable")
