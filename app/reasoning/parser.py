"""Split Cosmos-Reason1 output into reasoning and answer, for whole texts and for streams.

Both modes run the same state machine (`parse_reasoning` feeds the whole text at once), so a
stream's concatenated deltas equal the non-streamed split by construction; the tests check it
on every split of every table case.

Rules, in the order they matter:
- Tags are `<think>`, `</think>`, `<answer>`, `</answer>`, any case, with up to one space after
  `<` or `/` and up to three before `>` (`<answer >`). Tags are never part of either field.
- Text inside `<think>` is reasoning; text after `</think>`, inside `<answer>` or after
  `</answer>` is the answer: nothing the model wrote is dropped, only tags and edge whitespace.
- Leading text before any tag waits for the first tag to decide: `</think>`, `<think>` or
  `<answer>` make it reasoning (a missing `<think>`), `</answer>` makes it answer, and no tag at
  all makes the whole text the answer (outcome "none"). With `expect_reasoning=False` it streams
  at once as answer instead, so untagged replies to non-reasoning prompts are not held back.
- Whitespace: each field is stripped at both ends and kept verbatim inside, so the "\\n" inside
  the tags and the "\\n\\n" between `</think>` and `<answer>` are not content. Streams hold
  trailing whitespace until more text of the same field arrives.
- A field is None when the output has neither its tags nor text for it; `<answer></answer>`
  gives "". A partial tag at the end of a truncated output is dropped; of a complete one, kept.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal, NamedTuple

Outcome = Literal["both_tags", "answer_only", "reasoning_only", "none", "truncated"]
# Label values for cosmos_reasoning_parse_total{outcome}.
OUTCOMES: tuple[Outcome, ...] = ("both_tags", "answer_only", "reasoning_only", "none", "truncated")
Source = Literal["reasoning", "answer"]

_TAG_RE = re.compile(r"<\s?(/?)\s?(think|answer)\s{0,3}>", re.IGNORECASE)
# Every proper prefix of a tag; a stream holds such a tail back until the next delta decides.
_PARTIAL_TAG_RE = re.compile(
    r"<\s?/?\s?(?:t(?:h(?:i(?:n(?:k\s{0,3})?)?)?)?|a(?:n(?:s(?:w(?:e(?:r\s{0,3})?)?)?)?)?)?",
    re.IGNORECASE)


class Delta(NamedTuple):
    kind: Literal["reasoning", "content"]
    text: str


@dataclass(frozen=True)
class ParsedOutput:
    reasoning: str | None
    answer: str | None
    outcome: Outcome
    answer_closed: bool  # `</answer>` was seen
    length: int  # of the raw text; where a missing or cut-off answer would have been
    # (field offset, raw offset, length) runs: where each field's characters sit in the raw text.
    reasoning_runs: tuple[tuple[int, int, int], ...] = ()
    answer_runs: tuple[tuple[int, int, int], ...] = ()

    def raw_span(self, source: Source, start: int, end: int) -> tuple[int, int]:
        """Map [start, end) of `reasoning` or `answer` to offsets in the raw model text."""
        runs = self.reasoning_runs if source == "reasoning" else self.answer_runs
        if not runs:
            return 0, 0
        raw_start = self._raw(runs, start)
        return (raw_start, raw_start) if end <= start else (raw_start, self._raw(runs, end - 1) + 1)

    @staticmethod
    def _raw(runs: tuple[tuple[int, int, int], ...], offset: int) -> int:
        i = max(bisect_right(runs, (offset, float("inf"), 0)) - 1, 0)
        field_at, raw_at, _ = runs[i]
        return raw_at + offset - field_at

    @property
    def answer_span(self) -> tuple[int, int] | None:
        """Raw offsets of the answer's first and past-last character; None if it is empty."""
        return self.raw_span("answer", 0, len(self.answer)) if self.answer else None


class _Field:
    """One output field: strips its edges, remembers where each character came from."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.runs: list[tuple[int, int, int]] = []
        self.length = 0
        self.present = False
        self._held: list[tuple[int, str]] = []  # trailing whitespace not yet known to be inner

    def add(self, text: str, at: int) -> str:
        if not self.length:
            stripped = text.lstrip()
            at += len(text) - len(stripped)
            text = stripped
        if not text:
            return ""
        self.present = True
        core = text.rstrip()
        if not core:
            self._held.append((at, text))
            return ""
        emitted = [self._append(h, h_at) for h_at, h in self._held]
        emitted.append(self._append(core, at))
        self._held = [(at + len(core), text[len(core):])] if len(core) < len(text) else []
        return "".join(emitted)

    def _append(self, text: str, at: int) -> str:
        self.parts.append(text)
        if self.runs and sum(self.runs[-1][1:]) == at:  # contiguous in the raw text: one run
            field_at, raw_at, n = self.runs[-1]
            self.runs[-1] = (field_at, raw_at, n + len(text))
        else:
            self.runs.append((self.length, at, len(text)))
        self.length += len(text)
        return text

    def value(self) -> str | None:
        return "".join(self.parts) if self.present else None


class StreamingReasoningParser:
    """Feed model text deltas; get `Delta(kind, text)` pairs back as soon as they are certain."""

    def __init__(self, expect_reasoning: bool = True) -> None:
        self._expect_reasoning = expect_reasoning
        self._state: Literal["pre", "think", "content"] = "pre"
        self._pending = ""  # a possible partial tag
        self._pending_at = 0
        self._pre: list[tuple[int, str]] = []  # untagged leading text awaiting the first tag
        self._reasoning = _Field()
        self._answer = _Field()
        self._tagged = False
        self._answer_closed = False
        self.result: ParsedOutput | None = None  # set by finish()

    def feed(self, delta: str) -> list[Delta]:
        if self.result is not None:
            raise RuntimeError("feed() after finish()")
        out: list[Delta] = []
        text, base, pos = self._pending + delta, self._pending_at, 0
        for m in _TAG_RE.finditer(text):
            self._text(text[pos:m.start()], base + pos, out)
            self._tag(m.group(1) == "/", m.group(2).lower(), out)
            pos = m.end()
        lt = text.rfind("<", pos)
        keep = lt if lt != -1 and _PARTIAL_TAG_RE.fullmatch(text, lt) else len(text)
        self._text(text[pos:keep], base + pos, out)
        self._pending, self._pending_at = text[keep:], base + keep
        return _merged(out)

    def finish(self, truncated: bool = False) -> list[Delta]:
        """Flush held text; `truncated` = generation stopped at max_tokens. Sets `result`."""
        out: list[Delta] = []
        length = self._pending_at + len(self._pending)
        if self._pending and not truncated:
            self._text(self._pending, self._pending_at, out)
        self._pending = ""
        if self._state == "pre":
            self._resolve_pre("content", out)
        reasoning, answer = self._reasoning.value(), self._answer.value()
        outcome: Outcome
        if truncated or self._state == "think":
            outcome = "truncated"
        elif not self._tagged:
            outcome = "none"
        elif answer is None:
            outcome = "reasoning_only"
        elif not reasoning:
            outcome = "answer_only"
        else:
            outcome = "both_tags"
        self.result = ParsedOutput(reasoning, answer, outcome, self._answer_closed, length,
                                   tuple(self._reasoning.runs), tuple(self._answer.runs))
        return _merged(out)

    def _text(self, text: str, at: int, out: list[Delta]) -> None:
        if not text:
            return
        if self._state == "pre":
            if self._expect_reasoning or not text.strip():
                self._pre.append((at, text))
                return
            self._state = "content"  # untagged reply to a non-reasoning prompt: stream it
        if self._state == "think":
            out.append(Delta("reasoning", self._reasoning.add(text, at)))
        else:
            out.append(Delta("content", self._answer.add(text, at)))

    def _tag(self, closing: bool, name: str, out: list[Delta]) -> None:
        self._tagged = True
        answer_tag = name == "answer"
        if self._state == "pre":
            self._resolve_pre("content" if answer_tag and closing else "think", out)
        if answer_tag:
            self._answer.present = True
            self._answer_closed = self._answer_closed or closing
        else:
            self._reasoning.present = True
        self._state = "think" if name == "think" and not closing else "content"

    def _resolve_pre(self, state: Literal["think", "content"], out: list[Delta]) -> None:
        self._state = state
        pre, self._pre = self._pre, []
        for at, text in pre:
            self._text(text, at, out)


def _merged(deltas: list[Delta]) -> list[Delta]:
    merged: list[Delta] = []
    for d in deltas:
        if not d.text:
            continue
        if merged and merged[-1].kind == d.kind:
            merged[-1] = Delta(d.kind, merged[-1].text + d.text)
        else:
            merged.append(d)
    return merged


def parse_reasoning(text: str, truncated: bool = False,
                    expect_reasoning: bool = True) -> ParsedOutput:
    """Split a complete output; `truncated` = generation stopped at max_tokens."""
    parser = StreamingReasoningParser(expect_reasoning)
    parser.feed(text)
    parser.finish(truncated)
    assert parser.result is not None
    return parser.result
