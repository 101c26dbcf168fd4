"""Multiple-choice letters: those a question offers, the answer's, and the reasoning's verdict.

Letters are upper case A-H only. The article "A" is the trap everywhere ("A car stops"), so a
bare "A" counts only when punctuation or the end of the text follows it.
"""
from __future__ import annotations

import re

# "A. text", "(B) text", "C) text", "D: text" at the start of a line.
_LINE_OPTION = re.compile(r"^[ \t]*(?:[-*][ \t]+)?\(?([A-H])[.):][ \t]*\S", re.MULTILINE)
# "(A) text (B) text" inline.
_INLINE_OPTION = re.compile(r"\(([A-H])\)[ \t]+\S")

_ANSWER_LETTER = re.compile(
    r"^\s*(?:\*\*)?(?:(?i:the\s+)?(?i:correct\s+)?(?i:answer|option|choice)(?:\s+(?i:is))?\s*:?\s*)?"
    r"(?:\*\*)?\(?([A-H])\)?(?:\*\*)?(?=\s*$|[.:),;\]]|\s+[-–—:]|(?<=[B-H])\s+[a-z])")

# How Cosmos-Reason1 states its choice at the end of its reasoning. The last match wins.
_LETTER = r"\(?([A-H])\)?(?![\w'])(?!(?<=A)\s+[a-z])"
_CONCLUSION = re.compile("|".join((
    rf"(?i:answer|option|choice)\s+(?i:is|would be|should be|must be|seems to be|appears to be)"
    rf"\s+(?i:option\s+|choice\s+)?{_LETTER}",
    rf"(?i:so|therefore|thus|hence)[,:]?\s+(?:(?i:option|choice)\s+)?{_LETTER}",
    rf"(?i:choose|pick|select|go with|settle on|opt for)\s+(?:(?i:option|choice)\s+)?{_LETTER}",
    rf"(?i:option|choice)\s+{_LETTER}\s+(?i:is|seems|looks)\s+(?i:correct|right|best|most)",
    rf"\(?([A-H])\)?\s+(?i:is)\s+(?i:the\s+)?(?i:correct|right|best)\s+(?i:answer|option|choice)",
)))
_CONCLUSION_TAIL = 2000  # conclusions sit in the last paragraph; bounds the cost on long outputs


def extract_choices(question: str | None) -> list[str] | None:
    """Letters the question offers, if it lists at least two starting at A; else None."""
    if not question:
        return None
    found = [m.group(1) for m in _LINE_OPTION.finditer(question)]
    if len(found) < 2:
        found = [m.group(1) for m in _INLINE_OPTION.finditer(question)]
    letters = sorted(set(found))
    # A real option list is A, B, C... without gaps; anything else is prose that looks like one.
    if len(letters) < 2 or letters != [chr(ord("A") + i) for i in range(len(letters))]:
        return None
    return letters


def answer_letter(answer: str | None) -> tuple[str, int, int] | None:
    """(letter, start, end) when the answer picks an option: "B", "(B)", "B. text", "Answer: B"."""
    if not answer:
        return None
    m = _ANSWER_LETTER.match(answer)
    return (m.group(1), m.start(1), m.end(1)) if m else None


def concluded_letter(reasoning: str | None) -> tuple[str, int, int] | None:
    """(letter, start, end) of the option the reasoning settles on last, if it says so."""
    if not reasoning:
        return None
    found = None
    for m in _CONCLUSION.finditer(reasoning, max(0, len(reasoning) - _CONCLUSION_TAIL)):
        group = next(g for g in range(1, m.re.groups + 1) if m.group(g))
        found = (m.group(group), m.start(group), m.end(group))
    return found
