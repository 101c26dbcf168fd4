"""Reasoning and answer agree: a yes/no answer against what the reasoning concludes, and a count
against the counts the reasoning states.

Both rules read only the answer first and stop there unless it is a bare yes/no or a count, so
they cost nothing on the multiple-choice and free-text answers that make up most outputs. Both
lean towards silence: a yes/no conclusion is read only from an explicit "the answer is no" or a
restatement of the question's own predicate in the last sentences ("it is not safe to turn");
a count only if the reasoning counts the same thing and never with the answer's number.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Iterator

from app.guardrail.base import Document, Finding, Rule
from app.guardrail.scan import Scanner
from app.guardrail.lists import listed_count
from app.guardrail.verdicts import family_verdict

_TAIL = 700  # conclusions sit in the last sentences
_LEAD = r"^\s*(?:\*\*)?(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*:?\s*)?(?:\*\*)?"
_ANSWER_YES_NO = re.compile(_LEAD + r"(yes|no)\b(?:\*\*)?(?=\s*(?:[.,;:!—–-]|$))", re.IGNORECASE)

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
_SENTENCE_END = re.compile(r"[.!?]\s+|\n")
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
        ends = [m.end() for m in _SENTENCE_END.finditer(tail.rstrip())]
        # An explicit verdict outweighs a restatement in its own sentence ("So, no: the door
        # was closed only after the trailer had pulled away").
        said_to = -1
        if found is not None:
            m = _SENTENCE_END.search(tail, found[2])
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
        ends = [m.end() for m in _SENTENCE_END.finditer(tail.rstrip())]
        found = family_verdict(tail, ends[-2] if len(ends) > 1 else 0, question)
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


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER = r"(\d+|" + "|".join(_NUMBER_WORDS) + r"|a single|no|none)"
_ANSWER_COUNT = re.compile(
    _LEAD + r"(?:there\s+(?:are|is|were|was)\s+)?(?:a total of\s+|exactly\s+|only\s+|just\s+)?"
    r"(\d+|" + "|".join(_NUMBER_WORDS) + r"|none|no)\b(?![.,]\d)(?:\*\*)?"
    r"(?:\s+([a-z][\w-]*))?(?:\s+([a-z][\w-]*))?", re.IGNORECASE)
# What introduces a total: "that's three", "so, in total, four", "making five".
_TOTAL = re.compile(r"\b(?:that'?s|that is|that makes|which makes|making|so|therefore|thus|hence|"
                    r"in total|altogether|a total of|in all|overall|giving|gives)\s*,?\s+"
                    r"(?:there (?:are|is|were|was)\s+|we have\s+|i count\s+|exactly\s+|only\s+|"
                    r"just\s+)?$")
_HOW_MANY = re.compile(r"how many\s+([a-z][\w-]*)(?:\s+([a-z][\w-]*))?", re.IGNORECASE)
_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children",
              "foot": "feet"}
_SINGULAR = {v: k for k, v in _IRREGULAR.items()}
_NOT_COUNTED = frozenset(
    "s m km mph ms sec secs second seconds meter meters metre metres minute minutes cm mm ft "
    "feet kg percent times frames frame more of in at and or to".split())


# A number as a count: not part of a decimal, a time or a measure ("2 s", "3.5 m").
_COUNT_WORD = re.compile(r"(?<![\w.,])(\d+|" + "|".join(_NUMBER_WORDS) +
                         r")\b(?![.,]\d)(?:\s+([a-z]+))?")
# A total that closes the reasoning, with or without its noun: "That's six crossings.",
# "Two plus four is six."
_CLOSING_TOTAL = re.compile(
    r"\b(?:that'?s|that is|that makes|which makes|making|in total|altogether|a total of|in all|"
    r"giving|gives|so there (?:are|were)|(?:is|are|makes?|equals)|=)\s*,?\s+(?:exactly\s+|only\s+|"
    r"just\s+)?(\d+|" + "|".join(_NUMBER_WORDS) + r")\b(?![.,]\d)"
    r"(?!\s*(?:[+\u00d7*/\u2212]|-\s*\d|plus\b|minus\b|times\b|and\s+\d))"  # "3 + 2 + 1 = 6": a part
    r"(?:\s+([a-z]+))?+"
    r"(?!\s+(?:per|a|an|each|every)\b)"  # "which is 150 picks per minute": a rate
    r"|(?<![\w.,])(\d+|" + "|".join(_NUMBER_WORDS) + r")\b(?![.,]\d)\s+(?:([a-z-]+)\s+)?"
    r"(?:[a-z-]+\s+)?(?:in total|altogether|in all)\b")
# A unit after a number makes it a measure ("at 9 s another van"); a rate or a "plus" after a
# counted noun makes it a part ("one item per metre", "three on foot plus the driver").
_UNITS = "(?:s|secs?|seconds?|ms|m|cm|mm|km|ft|feet|mph|kg|t|min|minutes?|hours?|percent)"
_PART = re.compile(r"\s+(?:per|an?|each|every)\s+(?!few\b|couple\b)[a-z]"
                   r"|(?:\s+[a-z-]+){0,3}?\s+(?:plus|\+)\s")
# A total that is not the last word: "three so far", "... Two more arrive later."
_RUNNING = re.compile(r"[\w\s]{0,20}?\b(?:so far|until then|by then|at that point|at this point|for now|"
                      r"up to (?:now|then|here))\b")
_MORE = re.compile(r"\b(?:more|another|additional|further|extra)\b")
# "Four more pallets", "two extra carts": what was added, not how many there are.
_INCREMENT = r"(?:more|fewer|less|extra|additional|further|new)\b"
# "is", "are", "makes", "=" close a count only after a sum: "Two plus four is six".
_BARE_CUE = re.compile(r"(?:is|are|makes?|equals|=)\b")
_SUM = re.compile(r"\b(?:plus|total|count|number|sum|together|in all)\b|\+")


def _conclusion(low: str) -> int:
    """Where the reasoning's last sentence starts."""
    body = low.rstrip()
    ends = [m.end() for m in _SENTENCE_END.finditer(body)]
    return ends[-1] if ends else 0


def _value(word: str) -> int:
    word = word.lower()
    if word in ("no", "none"):
        return 0
    if word == "a single":
        return 1
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _forms(noun: str) -> list[str]:
    """Singular and plural of a noun as the question or answer wrote it."""
    n = noun.lower()
    singular = _SINGULAR.get(n) or (
        n[:-3] + "y" if n.endswith("ies") else
        n[:-2] if n.endswith(("xes", "ches", "shes", "sses", "uses")) else
        n[:-1] if n.endswith("s") and not n.endswith("ss") else n)
    plural = _IRREGULAR.get(singular) or (
        singular[:-1] + "ies" if singular.endswith("y") and singular[-2:-1] not in "aeiou" else
        singular + "es" if singular.endswith(("x", "ch", "sh", "s")) else singular + "s")
    return sorted({singular, plural}, key=len, reverse=True)


@dataclass(frozen=True)
class CountMismatchRule(Rule):
    """The answer gives a count the reasoning never gives for what it counts ("three
    pedestrians" in the reasoning, "2" in the answer)."""
    type: ClassVar[str] = "count_mismatch"

    def check(self, doc: Document) -> Iterator[Finding]:
        answer, reasoning = doc.parsed.answer, doc.parsed.reasoning
        given = _ANSWER_COUNT.match(answer) if answer and reasoning else None
        if given is None or (given.group(1).lower() == "no" and not given.group(2)):
            return  # "No." is a yes/no answer
        follow = [w.lower() for w in given.groups()[1:] if w]
        if follow and follow[0] in _NOT_COUNTED:
            return  # "2 m", "3 seconds": a measure, not a count
        nouns = follow[:2]
        asked = _HOW_MANY.search(doc.context.question or "")
        if asked:
            words = [w.lower() for w in asked.groups() if w]
            # "How many pallet positions ...?" answered "2 positions": the compound's head is
            # what is counted, its first word only says of what.
            if len(words) == 2 and follow and follow[0] in _forms(words[1]):
                words = words[1:]
            nouns = words + nouns
        nouns = [n for n in nouns if n not in _NOT_COUNTED and len(n) > 2]
        if not nouns:
            return
        low = reasoning.lower()
        count = _value(given.group(1))
        # The last sentence concludes: if it gives the answer's count (as "Two plus four is
        # six", "That makes 7"), they agree, whatever sub-counts came before; if it closes on
        # another total, they do not.
        at = _conclusion(low)
        totals = [m for m in _CLOSING_TOTAL.finditer(low, at)
                  if (m.group(2) or m.group(4)) not in _NOT_COUNTED and (
                      m.group(1) is None or not _BARE_CUE.match(low, m.start()) or
                      _SUM.search(low, at, m.start()))]
        if totals:
            total = totals[-1]
            n = total.lastindex and (1 if total.group(1) else 3)
            if _value(total.group(n)) != count:
                yield doc.finding(self, "answer", given.start(1), given.end(1),
                                  answer=given.group(1),
                                  reasoning=reasoning[total.start(n):total.end()].strip())
            return
        said = [m for m in _COUNT_WORD.finditer(low, at) if m.group(2) not in _NOT_COUNTED]
        if any(_value(m.group(1)) == count for m in said):
            return
        if any(_value(m.group(1) or m.group(3)) == count and (m.group(1) is None or not
               _BARE_CUE.match(low, m.start())) for m in _CLOSING_TOTAL.finditer(low)):
            return  # a total given anywhere ("seven altogether"): the counts around are parts
        # A total given anywhere ("That makes three in total") that the answer contradicts,
        # where the reasoning never gives the answer's count at all.
        totals = [m for m in _CLOSING_TOTAL.finditer(low)
                  if (m.group(1) is None or not _BARE_CUE.match(low, m.start())) and
                  (m.group(2) or m.group(4)) not in _NOT_COUNTED and
                  not _RUNNING.match(low, m.end())]
        if totals and _MORE.search(low, totals[-1].end()):
            totals = []  # a running total: more come after it
        if totals and not any(_value(m.group(1)) == count for m in _COUNT_WORD.finditer(low)
                              if m.group(2) not in _NOT_COUNTED):
            total = totals[-1]
            n = 1 if total.group(1) else 3
            yield doc.finding(self, "answer", given.start(1), given.end(1), answer=given.group(1),
                              reasoning=reasoning[total.start(n):total.end()].strip())
            return
        listed = listed_count(low, at)
        if listed is not None and listed[0] != count:
            yield doc.finding(self, "answer", given.start(1), given.end(1), answer=given.group(1),
                              reasoning=reasoning[listed[1]:listed[2]].strip())
            return
        for noun in nouns:
            forms = "|".join(map(re.escape, _forms(noun)))
            counts = re.compile(
                rf"(?<![\w.,]){_NUMBER}\s+(?!{_UNITS}\b|{_INCREMENT})"
                rf"(?:(?:[a-z-]+\s+){{0,2}}?(?:{forms})\b|"
                rf"of\s+(?:them|"
                rf"these|those|which|the\s+(?:{forms}))\b)")
            stated = [(m.start(), m.end(), _value(m.group(1))) for m in counts.finditer(low)
                      if not _PART.match(low, m.end())]
            if not stated:
                continue
            s, e, last = stated[-1]
            # Wrong if the reasoning never gives the answer's count, or if it ends on another
            # total ("That's three workers without hard hats.").
            if count not in {v for _, _, v in stated} or (
                    last != count and _TOTAL.search(low, max(0, s - 40), s)):
                yield doc.finding(self, "answer", given.start(1), given.end(1),
                                  answer=given.group(1), reasoning=reasoning[s:e])
            return  # the first noun the reasoning counts decides
