"""The rule ids a check fires on one output, for tests that word cases as reasoning, answer and
question (the round tests)."""
from __future__ import annotations

from app.guardrail import Guardrail, GuardrailContext, extract_choices
from app.reasoning import parse_reasoning


def fired(guardrail: Guardrail, reasoning: str, answer: str = "See above.",
          question: str | None = None) -> list[str]:
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\n{answer}\n</answer>"
    ctx = GuardrailContext(choices=extract_choices(question), question=question)
    return sorted({f.rule_id for f in guardrail.check(parse_reasoning(text), ctx).findings})
