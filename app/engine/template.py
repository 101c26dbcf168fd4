"""The model's chat template and token count, from its Hugging Face tokenizer.

One place for both, so the engine and the prompt-fidelity tests render prompts the same way.
"""
from __future__ import annotations


class ChatTemplate:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def render(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))
