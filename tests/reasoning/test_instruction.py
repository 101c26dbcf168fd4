"""The reasoning instruction lands in the system prompt exactly once."""
from __future__ import annotations

from app.reasoning import (DEFAULT_SYSTEM_PROMPT, REASONING_INSTRUCTION,
                           ensure_reasoning_instruction)

USER = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Is it safe?"}]}


def test_inserts_a_system_message_when_there_is_none():
    out = ensure_reasoning_instruction([USER])
    assert out[0] == {"role": "system", "content": f"{DEFAULT_SYSTEM_PROMPT} {REASONING_INSTRUCTION}"}
    assert out[1] == USER


def test_appends_to_a_string_system_message_without_mutating_input():
    messages = [{"role": "system", "content": "You are a driving assistant."}, USER]
    out = ensure_reasoning_instruction(messages)
    assert out[0]["content"] == f"You are a driving assistant. {REASONING_INSTRUCTION}"
    assert messages[0]["content"] == "You are a driving assistant."


def test_parts_and_string_system_prompts_join_the_same_way():
    text = "You are a helpful assistant that can answer questions about a street-view CCTV footage."
    parts = [{"type": "text", "text": text[:40]}, {"type": "text", "text": text[40:]}]
    as_parts = ensure_reasoning_instruction([{"role": "system", "content": parts}, USER])
    as_string = ensure_reasoning_instruction([{"role": "system", "content": text}, USER])
    assert as_parts == as_string
    assert as_parts[0]["content"] == f"{text} {REASONING_INSTRUCTION}"
    assert len(parts) == 2 and parts[1]["text"] == text[40:]  # input untouched


def test_empty_system_message_gets_the_instruction_alone():
    out = ensure_reasoning_instruction([{"role": "system", "content": ""}, USER])
    assert out[0]["content"] == REASONING_INSTRUCTION


def test_not_added_twice():
    once = ensure_reasoning_instruction([USER])
    assert ensure_reasoning_instruction(once) == once


def test_a_reworded_instruction_in_the_user_turn_counts():
    user = {"role": "user", "content": "Reply as <think>...</think> then <answer>...</answer>."}
    assert ensure_reasoning_instruction([user]) == [user]
