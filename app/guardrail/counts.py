"""Reasoning and answer agree on a count: a count answer against the counts the reasoning states
(the yes/no answer is app/guardrail/consistency.py).

The rule reads only the answer first and stops there unless it is a count, so it costs nothing
on the multiple-choice and free-text answers that make up most outputs. It leans towards
silence: a count is flagged only if the reasoning counts the same thing and never with the
answer's number.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Iterator

from app.guardrail.base import Document, Finding, Rule
from app.guardrail.consistency import ANSWER_LEAD, SENTENCE_END
from app.guardrail.lists import enumerated_count, listed_count

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER = r"(\d+|" + "|".join(_NUMBER_WORDS) + r"|a single|no|none)"
_ANSWER_COUNT = re.compile(
    ANSWER_LEAD + r"(?:there\s+(?:are|is|were|was)\s+)?(?:a total of\s+|exactly\s+|only\s+|just\s+)?"
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
_PART = re.compile(r"\s+(?:per|an?|each|every)\s+(?!few\b|couple\b)[a-z0-9]"
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


_ALSO = re.compile(r"\b(?:also|in addition|as well|besides)\b[^.;]{0,16}$")
# A question about what is left: its answer is a difference of counts ("26 positions, 22
# filled" answers "how many are still free?" with 4).
_REMAINDER = re.compile(r"\b(?:left|remain\w*|still (?:free|empty|open|available|unused)|spare|"
                        r"unused|unoccupied|vacant)\b", re.IGNORECASE)


# Between two counts of one list: "3 cartons and 2 polybags", "two, one plus one".
_JOINED = re.compile(r"(?:\s+[a-z-]+){0,3}?\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*\+\s*|\s+plus\s+)")


def _composed(low: str, count: int, question: str, noun: re.Pattern[str] | None = None) -> bool:
    """Whether a whole list of counts in the reasoning adds up to the answer's count ("so 3
    cartons and 2 polybags" for 5; not the first terms of "two plus one plus one plus one":
    that one's total is five), or, asked what is left, one count taken from another gives it.
    With `noun` (what is counted), a count of it that "also" adds, in the next sentence, joins
    the list: "three defenders ... There are also two attacking players"."""
    found = [m for m in _COUNT_WORD.finditer(low)
             if m.group(2) not in _NOT_COUNTED and m.group(1) not in ("no", "none")]
    total, prev, terms = 0, None, 0
    for m in found:
        if prev is not None and (_JOINED.fullmatch(low, prev.end(), m.start()) or (
                noun is not None and _ALSO.search(low, max(prev.end(), m.start() - 24),
                                                  m.start()) is not None and
                low.count(". ", prev.end(), m.start()) <= 1 and
                noun.match(low, m.start()) is not None)):
            total += _value(m.group(1))
            terms += 1
        else:
            if prev is not None and terms > 1 and total == count:
                return True
            total, terms = _value(m.group(1)), 1
        prev = m
    if prev is not None and terms > 1 and total == count:
        return True
    if _REMAINDER.search(question):
        seen = {_value(m.group(1)) for m in found}
        return any(v - count in seen for v in seen if v > count)
    return False


def _conclusion(low: str) -> int:
    """Where the reasoning's last sentence starts."""
    body = low.rstrip()
    ends = [m.end() for m in SENTENCE_END.finditer(body)]
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
        found = list(self._check(doc))
        if found:
            yield from found
            return
        # Round 6: nothing said of the count's noun, but a list that enumerates it item by
        # item ("In order: a woman ..., a man ..., two teenagers ...") counts otherwise, and
        # the reasoning never gives the answer's count nor adds it up.
        answer, reasoning = doc.parsed.answer, doc.parsed.reasoning
        given = _ANSWER_COUNT.match(answer) if answer and reasoning else None
        question = doc.context.question or ""
        if given is None or given.group(1).lower() == "no" or "how many" not in question.lower():
            return
        low, count = reasoning.lower(), _value(given.group(1))
        listed = enumerated_count(low, question)
        if listed is None or listed[0] == count or _composed(low, count, question) or any(
                _value(m.group(1)) == count for m in _COUNT_WORD.finditer(low)
                if m.group(2) not in _NOT_COUNTED):
            return
        yield doc.finding(self, "answer", given.start(1), given.end(1), answer=given.group(1),
                          reasoning=reasoning[listed[1]:listed[2]].strip())

    def _check(self, doc: Document) -> Iterator[Finding]:
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
            # "4 boxes and 3 pouches in total": the total is the whole list's.
            if _value(total.group(n)) != count and not _composed(low[at:], count, ""):
                yield doc.finding(self, "answer", given.start(1), given.end(1),
                                  answer=given.group(1),
                                  reasoning=reasoning[total.start(n):total.end()].strip())
            return
        said = [m for m in _COUNT_WORD.finditer(low, at) if m.group(2) not in _NOT_COUNTED]
        if any(_value(m.group(1)) == count for m in said):
            return
        if any(_value(m.group(1) or m.group(3)) == count and (
                m.group(1) is None or not _BARE_CUE.match(low, m.start()) or
                _SUM.search(low, max(0, m.start() - 30), m.start()))  # "3 + 4 = 7"
               for m in _CLOSING_TOTAL.finditer(low)):
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
                              if m.group(2) not in _NOT_COUNTED) and \
                not _composed(low, count, doc.context.question or ""):
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
            # "no partial stroke", "no other van": none of a kind, not the total.
            stated = [(m.start(), m.end(), _value(m.group(1))) for m in counts.finditer(low)
                      if not _PART.match(low, m.end()) and
                      not (m.group(1) in ("no", "none") and m.group().count(" ") > 1)]
            if not stated:
                continue
            s, e, last = stated[-1]
            # Wrong if the reasoning never gives the answer's count (nor adds it up from parts
            # it counts), or if it ends on another total ("That's three workers without hard
            # hats.").
            if count not in {v for _, _, v in stated} and not _composed(
                    low, count, doc.context.question or "", counts) or (
                    last != count and _TOTAL.search(low, max(0, s - 40), s)):
                yield doc.finding(self, "answer", given.start(1), given.end(1),
                                  answer=given.group(1), reasoning=reasoning[s:e])
            return  # the first noun the reasoning counts decides
