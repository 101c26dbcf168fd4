"""Reasoning and answer agree: a yes/no answer against what the reasoning concludes (the count
against the reasoning's counts is app/guardrail/counts.py).

The rule reads only the answer first and stops there unless it is a bare yes/no, so it costs
nothing on the multiple-choice and free-text answers that make up most outputs. It leans towards
silence: a yes/no conclusion is read only from an explicit "the answer is no" or a restatement of
the question's own predicate in the last sentences ("it is not safe to turn").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Iterator

from app.guardrail.base import Document, Finding, Rule
from app.guardrail.scan import Scanner
from app.guardrail.valence import valence_verdict
from app.guardrail.verdicts import family_verdict

_TAIL = 700  # conclusions sit in the last sentences
ANSWER_LEAD = r"^\s*(?:\*\*)?(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*:?\s*)?(?:\*\*)?"
_ANSWER_YES_NO = re.compile(ANSWER_LEAD + r"(yes|no)\b(?:\*\*)?(?=\s*(?:[.,;:!—–-]|$))", re.IGNORECASE)

# Explicit verdicts in the reasoning: "so the answer is no", "Therefore, yes.", "I'd say no".
_SAID = re.compile(
    r"(?:answer|response)\s+(?:is|would be|should be|must be|will be|:)\s*[\"'*]*(yes|no)\b"
    r"|(?:^|[.!?]\s+|\n|\b(?:so|therefore|thus|hence|overall|in short|in conclusion|in summary)"
    r"\s*,?\s+)(yes|no)\s*[,.!:;—–](?!\s*(?:wait|actually|hold on|hmm|let me|but))"
    r"|\bi(?: would|'d)? (?:say|answer)\s+(yes|no)\b")

_AUX = {
    "be": "is|are|was|were|'s|'re|be|remains?|stays?|seems?|looks?|appears?|becomes?",
    "do": "does|do|did",
    "can": "can|could|is able to|are able to|will be able to",
    "will": "will|would|is going to|are going to|'ll",
    "should": "should|must|needs? to|has to|have to|ought to",
    "have": "has|have|had",
}
_QUESTION_AUX = {"is": "be", "are": "be", "was": "be", "were": "be", "does": "do", "do": "do",
                 "did": "do", "can": "can", "could": "can", "will": "will", "would": "will",
                 "should": "should", "must": "should", "has": "have", "have": "have",
                 "had": "have"}
_YES_NO_QUESTION = re.compile(r"(?:^|[.!?:\n]\s*)(" + "|".join(_QUESTION_AUX) +
                              r")\s+([^?.!\n]{3,200})\?", re.IGNORECASE)
_SKIP = frozenset(
    "the a an this that these those it there they he she any each its their his her our your my "
    "at in on of to for from by with into onto than as about some ego white black red blue green "
    "yellow grey gray silver dark small large big left right front rear other another current "
    "visible first second same already still really actually likely".split())
SENTENCE_END = re.compile(r"[.!?]\s+|\n")
# Words that start a predicate after an unnamed subject ("Is the lip in place?").
_PREDICATE_STARTS = frozenset("in on inside within behind ahead above below under over near "
                              "able allowed safe clear visible moving stopped parked".split())
_PREPOSITIONS = frozenset("in on inside within behind above below under over near".split())
_NOT_VERBS = frozenset("during nothing something anything everything morning ceiling".split())
_NEGATIONS = frozenset("not never no cannot unable n't nothing nobody none neither nor".split())


def _stem(word: str) -> str:
    w = word.lower().strip("'")
    for suffix, keep in (("ingly", 4), ("ing", 4), ("ly", 4), ("ed", 3), ("es", 4), ("s", 3)):
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            w = w[:-len(suffix)]
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # "stopp(ing)" -> "stop"
    return w


@dataclass(frozen=True)
class YesNoMismatchRule(Rule):
    """The answer says yes (no) but the reasoning concludes no (yes)."""
    type: ClassVar[str] = "yes_no_mismatch"

    def check(self, doc: Document) -> Iterator[Finding]:
        answer, reasoning = doc.parsed.answer, doc.parsed.reasoning
        given = _ANSWER_YES_NO.match(answer) if answer and reasoning else None
        if given is None:
            return
        start = max(0, len(reasoning) - _TAIL)
        tail = reasoning[start:].lower()
        found = concluded(tail, doc.context.question, _object_stems(doc.scanner))
        if found is None:
            return
        polarity, at, end = found
        if polarity != given.group(1).lower():
            yield doc.finding(self, "answer", given.start(1), given.end(1),
                              answer=given.group(1), reasoning=reasoning[start + at:start + end])


_object_stems_of: dict[int, frozenset[str]] = {}


def _object_stems(scanner: Scanner) -> frozenset[str]:
    """Stems of every word of the rule file's object spellings ("sedan", "vehicl")."""
    found = _object_stems_of.get(id(scanner))
    if found is None:
        found = _object_stems_of[id(scanner)] = frozenset(
            _stem(w) for form in scanner.object_forms for w in form.split(" ")
            if w not in _SKIP and len(w) > 2)  # "ship to shore crane": not "to"
    return found


def concluded(tail: str, question: str | None, objects: frozenset[str]) -> tuple[str, int, int] | None:
    """("yes" | "no", start, end) of the last conclusion in `tail` (lowercased), if any."""
    found: tuple[str, int, int] | None = None
    for m in _SAID.finditer(tail):
        word = m.group(m.lastindex or 1)
        found = (word, m.start(m.lastindex or 1), m.end())
    pattern = _restatement(question, objects) if question else None
    if pattern is not None:
        # Restatements count only in the last two sentences, where the conclusion is.
        ends = [m.end() for m in SENTENCE_END.finditer(tail.rstrip())]
        # An explicit verdict outweighs a restatement in its own sentence ("So, no: the door
        # was closed only after the trailer had pulled away").
        said_to = -1
        if found is not None:
            m = SENTENCE_END.search(tail, found[2])
            said_to = m.start() if m else len(tail)
        for m in pattern.finditer(tail, ends[-2] if len(ends) > 1 else 0):
            if m.start() < said_to:
                continue
            gap = m.group("gap") if m.group("gap") is not None else m.group("gap2") or ""
            negative = bool(m.group("neg") or m.group("neg2") or m.group("anti") or any(
                w in _NEGATIONS or w.endswith("n't") for w in re.findall(r"[a-z']+", gap)))
            found = ("no" if negative else "yes", m.start(), m.end())
    if found is None and question:
        # Neither said nor restated: a state of the question's family in the last two
        # sentences ("He's belted in", "the tower is down").
        ends = [m.end() for m in SENTENCE_END.finditer(tail.rstrip())]
        found = family_verdict(tail, ends[-2] if len(ends) > 1 else 0, question)
        if found is None:
            # Nor a state: how the last sentences judge the outcome asked about (valence.py).
            found = valence_verdict(tail, ends[-2] if len(ends) > 1 else 0, question)
    return found


def _restatement(question: str, objects: frozenset[str]) -> re.Pattern[str] | None:
    """The question's own predicate, affirmed or denied: for "Is it safe to turn left?" the
    pattern finds "it is safe", "is not safe", "is unsafe", "no longer safe"."""
    asked = None
    for asked in _YES_NO_QUESTION.finditer(question):
        pass
    if asked is None:
        return None
    aux = _QUESTION_AUX[asked.group(1).lower()]
    words = re.findall(r"[a-z][a-z'-]*", asked.group(2).lower())
    # The predicate's first word comes after the subject: skip articles and the like, and
    # the words of the last object named in the first four words ("the white sedan").
    last_object = max((i for i, w in enumerate(words[:4]) if _stem(w) in objects), default=-1)
    if last_object < 0:
        # No object named: the subject ends before the first word that can only be predicate
        # ("Is the dock lip fully resting ...": "fully").
        last_object = next((i - 1 for i, w in enumerate(words[:6]) if i and (
            w.endswith(("ing", "ly")) and w not in _NOT_VERBS or w in _PREDICATE_STARTS)), -1)
        # "Does the thrown ball land in the bin?": after "does", the word before a preposition
        # is the verb, and the predicate starts there.
        if aux == "do" and last_object > 0 and words[last_object + 1] in _PREPOSITIONS and \
                words[last_object] not in _SKIP:
            last_object -= 1
        if last_object < 0 and aux == "do":  # "Does any liquid spill?": a verb after one noun
            last_object = next((i for i, w in enumerate(words[:3]) if w not in _SKIP), -1)
    content = [w for w in words[last_object + 1:] if w not in _SKIP and len(w) > 2]
    if not content:
        return None
    # An adverb is one way to restate it, the word it qualifies another ("is fully resting",
    # "is not resting fully").
    stems = [_stem(w) for w in content[:2 if content[0].endswith("ly") else 1]]
    p = "(?:" + "|".join(map(re.escape, stems)) + ")"
    forms = _AUX[aux] + ("|" + _AUX["be"] if aux != "be" else "")
    cue = r"(?:so|therefore|thus|hence|which means|meaning)\s*,?\s+(?:it|they|he|she|the\s+[\w-]+)"
    return re.compile(
        rf"(?:\b(?:{forms})\b|(?P<cue>{cue}))(?P<neg>\s+not\b|n't|\s+never\b|\s+no longer\b)?"
        rf"(?P<gap>(?:\s+[\w'-]+){{0,2}}?)\s+(?P<anti>un|in|non-?)?{p}[a-z]*\b"
        rf"|(?P<neg2>\b(?:not|never|no|cannot|unable to|fails? to|failed to|without)|n't)"
        rf"(?P<gap2>(?:\s+[\w'-]+){{0,2}}?)\s+{p}[a-z]*\b")
