"""The option a reasoning settles on by restating its content, not its letter (round 6): "The
person in the scanner field is the explanation that fits." for "B. Its safety scanner detects a
person in its path".

Read only when no letter was concluded (choices.py), only in the reasoning's last sentence, and
only when that sentence shares at least two content words with exactly one option and none with
any other; words of the question itself or of more than one option say nothing about which, and
a sentence with a negation ("it isn't the battery") or with no word that concludes ("fits",
"explanation", "so", "best") is left alone.
"""
from __future__ import annotations

import re

from app.guardrail.consistency import _SKIP, SENTENCE_END, _stem

_OPTION = re.compile(r"^[ \t]*(?:[-*][ \t]+)?\(?([A-H])[.):][ \t]*(\S.*)$", re.MULTILINE)
_WORD = re.compile(r"[a-z][a-z'-]+")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|rather than|instead of|unlike)\b|n't\b")
# The sentence must say it concludes: a description of the scene may end on another option's
# road user ("The cyclist in the bike lane rides on unchanged.").
_CUE = re.compile(r"\b(?:fits?|explanation|explains?|answer|therefore|thus|hence|so|best|"
                  r"match(?:es)?|correct|reason|cause|conclusion|verdict|consistent with|"
                  r"points to|most likely)\b")
_MORE_SKIP = frozenset("is are was were be been being has have had does do did will would can "
                       "could should may might what which who why how when where does one "
                       "here there then than so and or but if because".split())


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower())
            if w not in _SKIP and w not in _MORE_SKIP and len(w) > 2}


def content_letter(reasoning: str, question: str | None) -> tuple[str, int, int] | None:
    """(letter, start, end of the sentence) of the one option the last sentence restates."""
    if not question or not reasoning:
        return None
    options = {m.group(1): m.group(2) for m in _OPTION.finditer(question)}
    if len(options) < 2:
        return None
    body = reasoning.rstrip()
    ends = [m.end() for m in SENTENCE_END.finditer(body)]
    start = ends[-1] if ends else 0
    last = body[start:]
    low = last.lower()
    if _NEGATION.search(low) or not _CUE.search(low):
        return None
    stem_of = {k: _stems(v) for k, v in options.items()}
    first = _OPTION.search(question)
    asked = _stems(question[:first.start()] if first else "")
    counts: dict[str, int] = {}
    for stems in stem_of.values():
        for s in stems:
            counts[s] = counts.get(s, 0) + 1
    said = _stems(last) - asked
    shared = {k: {s for s in v if counts[s] == 1} & said for k, v in stem_of.items()}
    hit = [k for k, v in shared.items() if v]
    if len(hit) != 1 or len(shared[hit[0]]) < 2:
        return None
    return hit[0], start, len(body)
