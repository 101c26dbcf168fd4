"""Cosmos-Reason1's reasoning instruction, added to the system prompt when a request wants it.

The model only thinks in `<think>` tags when told to; the wording is the one from its model card,
which is also what its chat fine-tuning saw, so it is not paraphrased here.
"""
from __future__ import annotations

import re
from typing import Any

REASONING_INSTRUCTION = ("Answer the question in the following format: <think>\nyour reasoning\n"
                         "</think>\n\n<answer>\nyour answer\n</answer>.")
# Qwen2.5's chat template puts this in when there is no system message; keep it when we add one.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# A prompt that already asks for both tags has its own instruction (perhaps reworded); adding
# ours on top would only repeat it.
_ASKS_FOR_TAGS = re.compile(r"<think>.*<answer>", re.IGNORECASE | re.DOTALL)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return []


def has_reasoning_instruction(messages: list[dict]) -> bool:
    return any(_ASKS_FOR_TAGS.search(t) for m in messages for t in _texts(m.get("content")))


def ensure_reasoning_instruction(messages: list[dict]) -> list[dict]:
    """OpenAI-style messages with the instruction in the system prompt; the input is not changed.

    Appends to the first system message or inserts one in front. A system message sent as text
    parts is joined into one string first, so the instruction is joined the same way (one
    space) whether the system prompt came as a string or as parts: the chat template would
    otherwise glue the parts together ("...footage.Answer the question...").
    """
    if has_reasoning_instruction(messages):
        return list(messages)
    out = [dict(m) for m in messages]
    for m in out:
        if m.get("role") != "system":
            continue
        existing = "".join(_texts(m.get("content"))).rstrip()
        m["content"] = f"{existing} {REASONING_INSTRUCTION}" if existing else REASONING_INSTRUCTION
        return out
    return [{"role": "system", "content": f"{DEFAULT_SYSTEM_PROMPT} {REASONING_INSTRUCTION}"}, *out]
