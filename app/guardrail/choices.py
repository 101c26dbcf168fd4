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

# How Cosmos-Reason1 states its choice at the end of its reasoning. Matched on the lowercased
# text (scoped case-insensitive groups would cost sre its literal fast path), so the letter's
# case and the "A car" trap are checked on the original afterwards. The last match wins.
_LETTER = r"\(?([a-h])\)?(?![\w'])"
_CONCLUSION = re.compile("[^a-z](?:" + "|".join((
    rf"(?:answer|option|choice)\s+(?:is|would be|should be|must be|seems to be|appears to be)"
    rf"\s+(?:option\s+|choice\s+)?{_LETTER}",
    rf"(?:so|therefore|thus|hence)[,:]?\s+(?:(?:option|choice)\s+)?{_LETTER}",
    rf"(?:choose|pick|select|go with|settle on|opt for)\s+(?:(?:option|choice)\s+)?{_LETTER}",
    rf"(?:option|choice)\s+{_LETTER}\s+(?:is|seems|looks)\s+(?:correct|right|best|most)",
    rf"\(?([a-h])\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\s+(?:answer|option|choice)",
)) + ")")  # a non-letter, then the phrase: sre skips ahead from one word start to the next
_ARTICLE = re.compile(r"A\s+[a-z]")
_CONCLUSION_TAIL = 1000  # conclusions sit in the last sentences; bounds the cost on long outputs


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
    start = max(0, len(reasoning) - _CONCLUSION_TAIL)
    tail = " " + reasoning[start:].lower()  # the space: no letter before the tail's first word
    m = _CONCLUSION.search(tail)
    while m is not None:
        at = start + m.start(m.lastindex) - 1  # one group per phrase: the letter
        letter = reasoning[at]
        if letter.isupper() and not _ARTICLE.match(reasoning, at):
            found = (letter, at, at + 1)
        # A match's last character may be the next one's non-letter: "(b)so the answer is c".
        m = _CONCLUSION.search(tail, m.end() - 1)
    return found
