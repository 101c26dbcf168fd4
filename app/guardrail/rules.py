"""Rule types of the guardrail, built from the `rules` list of the YAML file.

The base types live in base.py and the quantity rules in quantities.py; this module has the
others and the registry of all of them, by the `type` a rule file names.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Literal

# The base types and the quantity rules are imported from here too, as before they moved out.
from app.guardrail.base import (SEVERITIES, Document, Finding, GuardrailContext,  # noqa: F401
                                Rule, Severity, Source)
from app.guardrail.choices import answer_letter, concluded_letter
from app.guardrail.compared import ComparedHeightRule, ComparedMassRule
from app.guardrail.consistency import YesNoMismatchRule  # noqa: F401
from app.guardrail.option_content import content_letter
from app.guardrail.counts import CountMismatchRule  # noqa: F401
from app.guardrail.motion_cues import _PRECEDED
from app.guardrail.derived import (DerivedAccelerationRule, DerivedRule,  # noqa: F401
                                   DerivedSpeedRule, FreeFallRule)
from app.guardrail.quantities import QuantityRule, QuantityRules  # noqa: F401
from app.guardrail.scan import Wanted
from app.guardrail.scanned import ScannedText

_NUMBER = r"([-\u2212]?[0-9]+(?:\.[0-9]+)?)\s*(%|percent\b)?"  # U+2212: the minus sign
# "probability of 1.7", "likelihood of a rear-end collision is about 1.3", "confidence: 1.2",
# "the probability that the pedestrian steps into the road is 140%": the first number after the
# keyword, in its sentence, once a verb or sign introduces it.
_CONNECTORS = (r"is|are|of|at|around|about|approximately|roughly|estimated|score|level|value|be|"
               r"would|"
               r"will|was|than|reaches|reached|stands|sits|equals|exceeds|rises|goes up|climbs|"
               r"jumps|becomes|to|like|something like|~|=|:|≈")
_PROB_BEFORE = (r"\w*(?:\s+(?:of|for)\s+(?:an?\s+|the\s+)?[a-z-]+(?:\s+[a-z-]+)?)?"
                rf"(?:\s+(?:{_CONNECTORS}))*\s*[:=~≈]?\s*" + _NUMBER +
                r"|\w*\s+(?:(?:that|of|for)\s+)?[^.;!?\n0-9]{1,100}?\s+(?:is|are|was|would be|"
                r"will be|"
                r"stands at|sits at|reaches|equals|of|at|as high as|about|around|roughly|"
                r"approximately|estimated at)(?:\s+(?:about|around|roughly|approximately|"
                r"estimated at|at|something like|like|~))*\s*[:=~≈]?\s*" + _NUMBER.replace("(", "(?P<n2>", 1)
                .replace("(%", "(?P<p2>%", 1))
# "a 130% chance", "a 1.7 probability", "90 percent likely"
_PROB_AFTER = re.compile(_NUMBER + r"\s*$")
# A number read as a probability is not one when a unit or a ratio follows: "is 1.5 times",
# "a 1 in 3 chance", "at 140 km/h".
_NOT_A_PROBABILITY = re.compile(r"\s*(?:[a-z°]+/|km|m\b|mph|s\b|secs?\b|seconds?|min\b|meters?|"
                                r"metres?|ft\b|feet|g\b|kg|cm|mm|times|x\b|-?fold|to\s+[0-9]|"
                                r"in\s+[0-9]|out of|:[0-9]|/[0-9]|"
                                # a bare number before a noun counts things: "of 2 cars"
                                r"\s(?!(?:overall|which|and|or|but|so|for|in|at|here|now|given|"
                                r"if|when|since|because|as|according|based|by|on|with|i|we|this|"
                                r"that|implying|meaning|indicating)\b)[a-z])")
# "P(collision) = 1.3"
_P_OF = re.compile(r"\bp\s*\([^()]{1,60}\)\s*(?:=|≈|~|is|of)\s*" + _NUMBER)
_NUMBER_ENDS = frozenset("0123456789%t")
_GATE = re.compile(r"[0-9.;!?]")
_DIGITS = frozenset("0123456789")


def _float(number: str) -> float:
    return float(number.replace("\u2212", "-"))


@dataclass(frozen=True)
class ProbabilityRule(Rule):
    """A probability, likelihood or confidence outside 0..1 (or 0..100 %) next to its keyword.
    Bare numbers are found here, around keyword occurrences, not by the quantity scan."""
    keywords: tuple[str, ...] = ()
    percent_keywords: tuple[str, ...] = ()  # words that are probabilities only with a % ("risk")
    before: re.Pattern[str] = field(default=re.compile(r"(?!)"))
    type: ClassVar[str] = "probability"
    # Words that follow a probability but never introduce one ("90% likely", "130% confident").
    _AFTER_ONLY: ClassVar[tuple[str, ...]] = ("likely", "certain", "confident", "sure")

    @classmethod
    def patterns(cls, keywords: list[str], percent_keywords: list[str] = ()) -> dict[str, Any]:
        keywords = [k.lower() for k in keywords]
        percent = [k.lower() for k in percent_keywords]
        return {"keywords": tuple(keywords + percent), "percent_keywords": tuple(percent),
                "before": re.compile(rf"(?:{'|'.join(map(re.escape, keywords + percent))})"
                                     rf"{_PROB_BEFORE}")}

    def check(self, doc: Document) -> Iterator[Finding]:
        for source, st in doc.fields:
            low, seen = st.text, set()
            for at, value, end in self._values(low):
                if not 0 <= value <= 1 and at not in seen:
                    seen.add(at)
                    yield doc.finding(self, source, at, end, value=st.raw[at:end].strip())

    def _values(self, low: str) -> Iterator[tuple[int, float, int]]:
        """(start, value as a fraction, end) of each number stated as a probability."""
        for word in self.keywords + self._AFTER_ONLY:
            before = None if word in self._AFTER_ONLY else self.before
            at = low.find(word)
            while at >= 0:
                found = []
                # What `before` reads up to its number holds no digit and none of .;!?: the
                # first of those after the keyword must be a digit (one C scan to find it).
                m = None
                if before is not None:
                    gate = _GATE.search(low, at + len(word))
                    if gate is not None and gate.group() in _DIGITS:
                        m = before.match(low, at)
                if m is not None:
                    n, p = ("n2", "p2") if m.group("n2") is not None else (1, 2)
                    found.append((m.start(n), m.end(n), m.group(n), m.group(p), m.end(), True))
                # Only a number (or "%", "percent") can end what _PROB_AFTER matches: one
                # look at the last non-space character spares most of its searches.
                tail = low[max(0, at - 16):at].rstrip()
                if tail and tail[-1] in _NUMBER_ENDS:
                    m = _PROB_AFTER.search(low, max(0, at - 16), at)
                    # After a number only as "N% chance" or "a 1.3 chance"; a bare "2 chances"
                    # counts no odds.
                    if m and (m.group(2) or word.startswith(("probabilit", "likelihood")) or
                              (word == "chance" and "." in m.group(1))):
                        found.append((m.start(1), m.end(1), m.group(1), m.group(2), m.end(), False))
                for start, end, number, percent, after, before_it in found:
                    if percent is None and (word in self.percent_keywords or before_it and
                                            _NOT_A_PROBABILITY.match(low, end)):
                        continue
                    yield (start, _float(number) / (100 if percent else 1),
                           after if percent else end)
                at = low.find(word, at + len(word))
        if "p(" in low:
            for m in _P_OF.finditer(low):
                if m.group(2) or not _NOT_A_PROBABILITY.match(low, m.end()):
                    yield m.start(1), _float(m.group(1)) / (100 if m.group(2) else 1), m.end()


_TIMESTAMP_BEFORE = re.compile(
    r"(?:\bat|\baround|\buntil|\btill|\bfrom|\bbetween|\bt\s*=|\btimestamp|\bfirst|\blast|"
    r"\bstarting|\bbeginning|"
    # "By 6.8 s the ball is gone", "and by 4 s it is parked": a moment when it opens a clause
    # ("wins by 0.3 s" is a margin).
    r"(?:^|[.!?;,:]\s*|\band\s+|\n)by)(?:\s+(?:about|approximately|roughly|around|the|~|t\s*=))*\s*"
    r"(?:[\d.:]+\s*(?:s|sec|seconds?)?\s*(?:to|and|-|–|until|till)\s*)?$", re.IGNORECASE)
# A time after these (past qualifiers: "takes around 35 s") is a duration, even where a word
# that names moments ("around") stands before it. _PRECEDED reads backwards, so they are too.
_DURATION_WORDS = frozenset(w[::-1] for w in (
    "in within take takes took taking need needs needed needing require requires required "
    "lasts lasting spend spends spent duration period interval").split())
_TIMESTAMP_AFTER = re.compile(r"\s*(?:mark|timestamp|into the (?:clip|video|footage|sequence))",
                              re.IGNORECASE)


@dataclass(frozen=True)
class TimestampRule(Rule):
    """A moment ("at 14 s", "00:14", "the 14-second mark") after the clip's end, unless its
    sentence matches `unless` (a duration such as a finish time, a moment the sentence itself
    puts after the clip)."""
    tolerance_s: float = 0.5
    tolerance_ratio: float = 0.05
    unless: re.Pattern[str] | None = None
    type: ClassVar[str] = "timestamp"

    def limit(self, context: GuardrailContext) -> float | None:
        duration = context.duration_s
        if duration is None:
            return None
        return duration + max(self.tolerance_s, self.tolerance_ratio * duration)

    def wants(self, context: GuardrailContext, active: frozenset[str], st: ScannedText) -> Wanted:
        limit = self.limit(context)
        return {} if limit is None else {"time": (-math.inf, limit)}

    def check(self, doc: Document) -> Iterator[Finding]:
        limit, duration = self.limit(doc.context), doc.context.duration_s
        if limit is None:
            return
        for source, st in doc.fields:
            for q in st.quantities:
                if q.dimension != "time" or q.value <= limit:
                    continue
                text = st.text
                d = _PRECEDED.match(st.reversed, len(text) - q.start)
                if d is not None and d.group(1) in _DURATION_WORDS:
                    continue  # "that takes around 35 s": how long, not when
                if ((q.clock and text[q.start] == "0") or _TIMESTAMP_AFTER.match(text, q.end) or
                        _TIMESTAMP_BEFORE.search(text, max(0, q.start - 40), q.start)) and \
                        (self.unless is None or not st.sentence_has(self.unless, q)):
                    yield doc.finding(self, source, q.start, q.end, value=st.raw[q.start:q.end],
                                      duration=f"{duration:g} s")


@dataclass(frozen=True)
class ChoiceMismatchRule(Rule):
    """The answer's option letter differs from the one the reasoning settled on."""
    type: ClassVar[str] = "choice_mismatch"

    def check(self, doc: Document) -> Iterator[Finding]:
        given = answer_letter(doc.parsed.answer)
        concluded = given and concluded_letter(doc.parsed.reasoning)  # no letter: no need
        if given and concluded is None:
            # No letter said: the one option the last sentence restates (option_content.py).
            concluded = content_letter(doc.parsed.reasoning, doc.context.question)
        if given and concluded and given[0] != concluded[0]:
            yield doc.finding(self, "answer", given[1], given[2], answer=given[0],
                              reasoning=concluded[0])


@dataclass(frozen=True)
class ChoiceNotOfferedRule(Rule):
    """The answer names an option letter the question did not offer."""
    type: ClassVar[str] = "choice_not_offered"

    def check(self, doc: Document) -> Iterator[Finding]:
        given, choices = answer_letter(doc.parsed.answer), doc.context.choices
        if given and choices and given[0] not in choices:
            yield doc.finding(self, "answer", given[1], given[2], answer=given[0],
                              choices=", ".join(choices))


FormatCondition = Literal["no_answer", "empty_answer", "truncated"]
FORMAT_CONDITIONS: tuple[FormatCondition, ...] = ("no_answer", "empty_answer", "truncated")


@dataclass(frozen=True)
class FormatRule(Rule):
    """`condition`: no_answer | empty_answer | truncated."""
    condition: FormatCondition = "no_answer"
    type: ClassVar[str] = "format"

    def check(self, doc: Document) -> Iterator[Finding]:
        p = doc.parsed
        if self.condition == "no_answer" and p.answer is None or \
                self.condition == "empty_answer" and p.answer == "" or \
                self.condition == "truncated" and (doc.context.truncated or p.outcome == "truncated"):
            yield doc.at_end(self)


RULE_TYPES: dict[str, type[Rule]] = {cls.type: cls for cls in (
    QuantityRule, ProbabilityRule, TimestampRule, ChoiceMismatchRule, ChoiceNotOfferedRule,
    FormatRule, DerivedAccelerationRule, DerivedSpeedRule, FreeFallRule, YesNoMismatchRule,
    CountMismatchRule, ComparedHeightRule, ComparedMassRule)}
