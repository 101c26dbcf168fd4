"""Each profile's prompt equals, token for token, what the official code builds.

`cookbook-sft`: cosmos-reason1's `create_conversation` (what cosmos-rl trains every sample
with) rendered by the processor's chat template. `cosmos-reason1`: the model card's example
(system prompt with the reasoning instruction; the user turn as the client ordered it). Our side
is the server's own path: the request model, the profile, `build_messages`, the reasoning
instruction, and the engine's chat template, with the real Qwen2.5 tokenizer of the tiny
checkpoint.
"""
from __future__ import annotations

import pytest

from app.api.protocol import ChatCompletionRequest
from app.config import Settings
from app.engine.template import ChatTemplate
from app.profiles import load_profile
from app.profiles.resolve import resolve
from app.reasoning import REASONING_INSTRUCTION, ensure_reasoning_instruction
from app.serving.prompt import build_messages
from tests.profiles.official import create_conversation

QUESTION = ("What is the weather in the video?\nA: Clear\nB: Rain\nC: Snow\nD: Fog\n"
            "Answer with the option's letter from the given choices directly.")
VIDEO = {"type": "video_url", "video_url": {"url": "file:///clips/cam3.mp4"}}


@pytest.fixture(scope="module")
def processor(tiny_model):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model)


def ours(processor, profile_name: str, messages: list[dict]) -> list[int]:
    name, profile = load_profile(profile_name)
    resolved = resolve(Settings(), profile, name)
    req = ChatCompletionRequest(model="m", messages=messages)
    built, _, _ = build_messages(req, resolved)
    if resolved["reasoning"]:
        built = ensure_reasoning_instruction(built)
    template = ChatTemplate(processor.tokenizer)
    return processor.tokenizer.encode(template.render(built), add_special_tokens=False)


def official(processor, conversation: list[dict]) -> list[int]:
    text = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return processor.tokenizer.encode(text, add_special_tokens=False)


def test_cookbook_sft_equals_create_conversation(processor):
    # A client that puts the text first still gets the training order (media first), the
    # recipe's system prompt and no reasoning instruction.
    mine = ours(processor, "cookbook-sft", [
        {"role": "user", "content": [{"type": "text", "text": QUESTION}, VIDEO]}])
    _, profile = load_profile("cookbook-sft")
    theirs = official(processor, create_conversation(
        system_prompt=profile.system_prompt, user_prompt=QUESTION, videos=["cam3.mp4"]))
    assert mine == theirs
    assert len(mine) > 40


def test_cosmos_reason1_equals_the_model_card_example(processor):
    card = [{"role": "system", "content": "You are a helpful assistant. Answer the question in "
             "the following format: <think>\nyour reasoning\n</think>\n\n<answer>\nyour "
             "answer\n</answer>."},
            {"role": "user", "content": [{"type": "text", "text": "Is it safe to turn right?"},
                                         {"type": "video", "video": "cam3.mp4", "fps": 4}]}]
    mine = ours(processor, "cosmos-reason1", [
        {"role": "user", "content": [{"type": "text", "text": "Is it safe to turn right?"},
                                     VIDEO]}])
    assert mine == official(processor, card)


@pytest.mark.parametrize("system", [
    "You are a helpful assistant that can answer questions about a street-view CCTV footage.",
    [{"type": "text", "text": "You are a helpful assistant that can answer questions "},
     {"type": "text", "text": "about a street-view CCTV footage."}]])
def test_reasoning_instruction_joins_string_and_parts_alike(processor, system):
    mine = ours(processor, "cosmos-reason1", [{"role": "system", "content": system},
                                              {"role": "user", "content": [VIDEO]}])
    text = processor.tokenizer.decode(mine)
    assert f"CCTV footage. {REASONING_INSTRUCTION}" in text
