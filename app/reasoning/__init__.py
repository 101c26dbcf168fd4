"""Reasoning/answer split of Cosmos-Reason1 output and the instruction that asks for it."""
from app.reasoning.instruction import (DEFAULT_SYSTEM_PROMPT, REASONING_INSTRUCTION,
                                       ensure_reasoning_instruction, has_reasoning_instruction)
from app.reasoning.parser import (OUTCOMES, Delta, Outcome, ParsedOutput, StreamingReasoningParser,
                                  parse_reasoning)

__all__ = ["DEFAULT_SYSTEM_PROMPT", "OUTCOMES", "REASONING_INSTRUCTION", "Delta", "Outcome",
           "ParsedOutput", "StreamingReasoningParser", "ensure_reasoning_instruction",
           "has_reasoning_instruction", "parse_reasoning"]
