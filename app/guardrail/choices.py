"""Multiple-choice letters: those a question offers, the answer's, and the reasoning's verdict.

Letters are upper case A-H only. The article "A" is the trap everywhere ("A car stops"), so a
bare "A" counts only when punctuation or the end of the text follows it.
"""
from __future__ import annotations

import re

from app.guardrail.scan import lower

# "A. text", "(B) text", "C) text", "D: text" at the start of a line.
_LINE_OPTION = re.compile(r"^[ \t]*(?:[-*][ \t]+)?\(?([A-H])[.):][ \t]*\S", re.MULTILINE)
# "(A) text (B) text" inline.
_INLINE_OPTION = re.compile(r"\(([A-H])\)[ \t]+\S")
# "Options: A) keep going, B) stop, C) swerve" or "A. yes B. no" inline.
_INLINE_PLAIN = re.compile(r"(?:^|(?<=[\s,;:]))([A-H])[.)][ \t]+\S")

_ANSWER_LETTER = re.compile(
    r"^\s*(?:\*\*)?(?:(?i:the\s+)?(?i:correct\s+|final\s+|best\s+)?(?i:answer|option|choice)"
    r"(?:\s+(?i:is))?\s*:?\s*)?(?:(?i:option|choice)\s+)?"
    r"(?:\*\*)?\(?([A-H])\)?(?:\*\*)?(?=\s*$|[.:),;\]]|\s+[-–—:]|(?<=\))\s|(?<=[B-H])\s+[a-z])")

# How Cosmos-Reason1 states its choice at the end of its reasoning. Matched on the lowercased
# text (scoped case-insensitive groups would cost sre its literal fast path), so the letter's
# case and the "A car" trap are checked on the original afterwards. The last match wins.
# A letter followed by its rejection ("so D is out", "B can be ruled out") is no verdict.
# So is one coordinated with others ("so C and D are out"), one that does not apply ("so D doesn't
# apply") and one that is only part of the story ("B describes only the first phase").
# Nor is one that is only how it looks ("so B may seem right, but ..."), can be dropped, or is
# faulted for how it reads the scene ("so B overstates the load", "A ignores the cyclist").
_LETTER = (r"\(?([a-h])\)?(?![\w'])(?!(?:,?\s+(?:and|or|nor)\s+\(?[a-h]\)?(?![\w'])|,\s*\(?[a-h]\)?"
           r"(?![\w']))*(?:,?\s+(?:is|are|can be|must be|should be|gets?|seems?)\s+"
           r"(?:also\s+|clearly\s+|therefore\s+|both\s+|very\s+|highly\s+|quite\s+|most\s+|"
           r"rather\s+|pretty\s+|fairly\s+|extremely\s+|simply\s+|just\s+)?(?:out|wrong|incorrect|ruled out|"
           r"eliminated|dropped|discarded|rejected|dismissed|set aside|"
           r"excluded|unlikely|implausible|impossible|not\b|only\b|the opposite|incomplete|partial)"
           r"|\s+(?:(?:does|do|did|is|are|can|could|would|will)(?:\s+not\b|n't)|cannot|can't|won't|"
           r"never|fails?\b|only\b|(?:describes?|covers?|explains?|captures?|fits?)\s+only\b|"
           r"(?:might|may|could)\s+(?:\w+\s+)?(?:look|seem|appear|sound)\b|"
           r"(?:over|under)(?:states?|estimates?|rates?)\b|exaggerates?\b|ignores?\b|"
           r"overlooks?\b|misreads?\b|confuses?\b|contradicts?\b|misses\b)))")


def _letter_first(rest: str) -> tuple[str, str]:
    r"""r"\(?([a-h])" + rest as two alternatives that open with a literal and a character set,
    which sre rules out at a glance (an optional bracket first costs it a full attempt at every
    word start): "(b" or "b", the letter captured either way (a look-behind captures the one
    just read), so `lastindex` still names the letter. Only one of the two can match at a
    position: the first needs a bracket there, the second a letter."""
    return r"\(([a-h])" + rest, r"[a-h](?<=([a-h]))" + rest


_CONCLUSION = re.compile("[^a-z](?:" + "|".join((
    rf"(?:answer|option|choice)\s+(?:is|would be|should be|must be|seems to be|appears to be)"
    rf"\s+(?:option\s+|choice\s+)?{_LETTER}",
    rf"(?:so|therefore|thus|hence)[,:]?\s+(?:(?:option|choice)\s+)?{_LETTER}",
    rf"(?:choose|pick|select|go with|settle on|opt for)\s+(?:(?:option|choice)\s+)?{_LETTER}",
    rf"(?:option|choice)\s+{_LETTER}\s+(?:is|seems|looks|appears)\s+(?:to be\s+)?(?:the\s+)?"
    rf"(?:correct|right|best|most|only|one|answer|explanation|reason|cause|match|fit|winner)\b",
    rf"(?:option|choice)\s+{_LETTER}\s+(?:fits|explains|describes|matches|applies|holds)\b",
    rf"(?:so|therefore|thus|hence)[,:]?\s+(?:it'?s|it is|that'?s|that is|this is|we get|i'?d "
    rf"(?:say|pick|choose|go with))\s+(?:option\s+|choice\s+|answer\s+)?{_LETTER}",
    # A letter that closes the reasoning: "..., option B.", "answer (A).", a last "C."
    rf"(?:answer|option|choice)\s*[:\-–—]?\s*\(?([a-h])\)?\s*[.!]?\s*$",
    r"(?<=[.!?:\n])\s*\(?([a-h])\)?\s*[.!]?\s*$",
    # A bracketed letter that closes the reasoning: "..., which fits (B).", "breaststroke, (C)."
    r"\(([a-h])\)\s*[.!]?\s*$",
    *_letter_first(r"\)?,?\s+(?:is|seems|looks)\s+(?:to be\s+)?(?:the\s+)?(?:correct|right|best|"
                   r"only (?:one|option|answer|choice)|answer|explanation|most (?:accurate|"
                   r"appropriate|plausible|likely|reasonable|consistent|fitting))\b"),
    *_letter_first(r"\)?\s+(?:the\s+)?(?:right|correct|best|only)\s+(?:choice|answer|option|one)\b"),
    rf"(?:points?|pointing|leads?|leading)\s+(?:me\s+|us\s+)?(?:straight\s+)?to\s+(?:option\s+|"
    rf"choice\s+|answer\s+)?{_LETTER}",
    rf"(?:match(?:es)?|matching|correspond(?:s|ing)? to|fits|fitting|aligns? with|aligning with|"
    rf"consistent with|points? to|supports?|indicates?|best describes?|leads? (?:me |us )?to|"
    rf"goes with|agrees? with|in line with)\s+(?:(?:the\s+)?(?:option|choice|answer)\s+)?{_LETTER}",
    # "C fits best", "B matches most closely"
    # (What must follow the letter is looked at first: _LETTER's look-aheads are costly, and
    # this alternative is tried at every "a" of the text.)
    *_letter_first(r"(?=\)?\s+(?:fits|matches|works|describes it)\s+(?:best|better|most "
                   r"closely)\b)" + _LETTER[len(r"\(?([a-h])"):] +
                   r"\s+(?:fits|matches|works|describes it)\s+(?:best|better|most closely)\b"),
    rf"(?:answer|option|choice|response)\s*:\s*(?:option\s+|choice\s+)?{_LETTER}",
    rf"(?:best|correct|right|final|appropriate|safest)\s+(?:answer|option|choice|response|action)"
    rf"(?:\s+here)?\s+(?:is|would be|should be|seems to be)\s+(?:option\s+|choice\s+)?{_LETTER}",
)) + ")")  # a non-letter, then the phrase: sre skips ahead from one word start to the next
# "A is correct" and "A would be best" are letters: an article is never followed by a verb.
_ARTICLE = re.compile(r"A\s+(?!(?:is|was|would|seems|looks|appears|fits|matches|remains|must|"
                      r"should|could)\b)[a-z]")
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bno longer)\s+(?:\w+\s+)?$")
_CONCLUSION_TAIL = 700  # conclusions sit in the last sentences; bounds the cost on long outputs


def extract_choices(question: str | None) -> list[str] | None:
    """Letters the question offers, if it lists at least two starting at A; else None."""
    if not question:
        return None
    found = [m.group(1) for m in _LINE_OPTION.finditer(question)]
    if len(found) < 2:
        found = [m.group(1) for m in _INLINE_OPTION.finditer(question)]
    if len(found) < 2:
        found = [m.group(1) for m in _INLINE_PLAIN.finditer(question)]
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
    tail = " " + lower(reasoning[start:])  # the space: no letter before the tail's first word
    m = _CONCLUSION.search(tail)
    while m is not None:
        at = start + m.start(m.lastindex) - 1  # one group per phrase: the letter
        letter = reasoning[at]
        if letter.isupper() and not _ARTICLE.match(reasoning, at) and \
                not _NEGATED.search(tail, max(0, m.start() - 16), m.start() + 1):
            found = (letter, at, at + 1)
        # A match's last character may be the next one's non-letter: "(b)so the answer is c".
        m = _CONCLUSION.search(tail, m.end() - 1)
    return found
