"""A deterministic stand-in engine for fast unit tests of the HTTP layer (never for serving).

It "generates" a canned Cosmos-style answer word by word, honouring max_tokens, stop strings
and n, so that the API layer's streaming, usage and finish-reason logic can be exercised in
milliseconds. Integration tests use the real vLLM engine.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from app.config import Settings
from app.engine.base import ChoiceDelta, Engine, EngineInput, EngineStep
from app.engine.lora import LoraAdapter, lora_enabled, start_adapters

DEFAULT_SCRIPT = ("<think>\nThe car ahead slows down at 2 s and stops before the crosswalk.\n"
                  "</think>\n\n<answer>\nB\n</answer>")
_WORD = re.compile(r"\S+\s*|\s+")


class FakeEngine(Engine):
    def __init__(self, settings: Settings | None = None, script: str = DEFAULT_SCRIPT,
                 max_model_len: int = 8192, step_delay_s: float = 0.0):
        self.model_name = settings.model_name if settings else "fake"
        self.script = script
        self.max_model_len = max_model_len
        self.step_delay_s = step_delay_s
        self.aborted: list[str] = []
        self.last_input: EngineInput | None = None
        self._ready = False
        # LoRA as the vLLM engine takes it (same checks, same errors); it applies nothing.
        self.adapters, self.lora_vision = start_adapters(settings) if settings else ({}, False)
        self.lora_enabled = lora_enabled(settings) if settings else False

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        self._ready = True

    async def shutdown(self) -> None:
        self._ready = False

    def render_prompt(self, messages: list[dict]) -> str:
        out = []
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                content = "".join(p.get("text", f"<{p['type']}>") for p in content)
            out.append(f"<|im_start|>{m['role']}\n{content}<|im_end|>\n")
        return "".join(out) + "<|im_start|>assistant\n"

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def add_lora(self, adapter: LoraAdapter) -> None:
        if not self.lora_enabled:
            await super().add_lora(adapter)
        self.adapters[adapter.name] = adapter

    async def generate(self, inp: EngineInput) -> AsyncIterator[EngineStep]:
        self.last_input = inp
        s = inp.sampling
        prompt_tokens = self.count_tokens(inp.prompt) + sum(v.vision_tokens - 1
                                                            for v in inp.videos)
        words = _WORD.findall(self.script)
        texts = ["" for _ in range(s.n)]
        for step in range(max(len(words), 1)):
            if self.step_delay_s:
                await asyncio.sleep(self.step_delay_s)
            deltas = []
            for i in range(s.n):
                if texts[i] is None:
                    continue
                word = words[step] if step < len(words) else ""
                new = texts[i] + word
                stop = next((x for x in s.stop if x in new), None)
                if stop is not None:
                    word = new[:new.index(stop)][len(texts[i]):]
                    deltas.append(ChoiceDelta(i, word, 1, "stop", stop))
                    texts[i] = None
                    continue
                texts[i] = new
                length = step + 1 >= s.max_tokens
                last = step + 1 >= len(words)
                reason = "length" if length and not last else ("stop" if last or length else None)
                deltas.append(ChoiceDelta(i, word, 1, reason))
                if reason:
                    texts[i] = None
            if deltas:
                yield EngineStep(deltas=deltas, prompt_tokens=prompt_tokens)
            if all(t is None for t in texts):
                return
