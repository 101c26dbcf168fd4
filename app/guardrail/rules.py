"""Rule types of the guardrail, built from the `rules` list of the YAML file.

Every rule sees one `Document` (the parsed output, scanned once, plus the request's context) and
yields `Finding`s with spans in the raw model text, so a client can highlight them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Iterator, Literal

from app.guardrail.choices import answer_letter, concluded_letter
from app.guardrail.scan import Quantity, ScannedText, Scanner
from app.reasoning import ParsedOutput

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
Source = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class GuardrailContext:
    """What the server knows about the request beyond the model's text."""
    duration_s: float | None = None  # the clip's real duration, from ingestion
    choices: list[str] | None = None  # option letters the question offers
    truncated: bool = False  # generation stopped at max_tokens

    def with_truncated(self, truncated: bool) -> "GuardrailContext":
        return replace(self, truncated=truncated)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    span: tuple[int, int]  # raw model text offsets
    source: Source

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "severity": self.severity, "message": self.message,
                "span": list(self.span), "source": self.source}


class Document:
    def __init__(self, parsed: ParsedOutput, context: GuardrailContext, scanner: Scanner,
                 active: Callable[[str], bool]):
        self.parsed, self.context, self.active = parsed, context, active
        self.fields: list[tuple[Source, ScannedText]] = [
            (src, ScannedText(text, scanner)) for src, text in
            (("reasoning", parsed.reasoning), ("answer", parsed.answer)) if text]

    def finding(self, rule: "Rule", source: Source, start: int, end: int, **fmt: Any) -> Finding:
        return Finding(rule.id, rule.severity, rule.message.format(**fmt),
                       self.parsed.raw_span(source, start, end), source)

    def at_end(self, rule: "Rule", **fmt: Any) -> Finding:
        end = self.parsed.length
        return Finding(rule.id, rule.severity, rule.message.format(**fmt), (end, end), "answer")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    message: str
    type: ClassVar[str]

    def check(self, doc: Document) -> Iterator[Finding]:
        raise NotImplementedError


@dataclass(frozen=True)
class QuantityRule(Rule):
    """A bound on one dimension, for some object classes (or any text when `objects` is empty)."""
    dimension: str = ""
    objects: frozenset[str] = frozenset()
    min: float | None = None
    max: float | None = None
    min_text: str = ""
    max_text: str = ""
    requires: re.Pattern[str] | None = None  # must occur in the sentence
    unless: re.Pattern[str] | None = None  # must not occur in the sentence
    type: ClassVar[str] = "quantity"

    def __post_init__(self) -> None:
        # Open bounds as infinities: `violated` runs for most quantities and must stay cheap.
        object.__setattr__(self, "lo", -math.inf if self.min is None else self.min)
        object.__setattr__(self, "hi", math.inf if self.max is None else self.max)

    def violated(self, value: float) -> bool:
        return not self.lo <= value <= self.hi  # type: ignore[attr-defined]

    def applies(self, st: ScannedText, q: Quantity) -> bool:
        return ((self.requires is None or st.sentence_has(self.requires, q))
                and (self.unless is None or not st.sentence_has(self.unless, q)))

    def limit(self, value: float) -> str:
        return self.max_text if self.max is not None and value > self.max else self.min_text


@dataclass(frozen=True)
class QuantityRules:
    """All quantity rules at once: one pass over the quantities, and a quantity said about several
    objects ("the car passes the pedestrian at 40 km/h") is flagged only if it is implausible for
    each of them that has a bound in that dimension."""
    rules: tuple[QuantityRule, ...] = ()

    def check(self, doc: Document) -> Iterator[Finding]:
        plans: dict[str, _Plan] = {}
        for r in self.rules:
            if doc.active(r.severity):
                plans.setdefault(r.dimension, _Plan()).add(r)
        for source, st in doc.fields:
            for q in st.quantities:
                plan = plans.get(q.dimension)
                # Values inside every bound of their dimension (most) cost one comparison.
                if plan is None or plan.lo <= q.value <= plan.hi:
                    continue
                v, text = q.value, st.raw[q.start:q.end]
                for r in plan.generic:
                    if not r.lo <= v <= r.hi and r.applies(st, q):
                        yield doc.finding(r, source, q.start, q.end, value=text,
                                          limit=r.limit(v), object="object")
                violated = [r for r in plan.specific if not r.lo <= v <= r.hi and r.applies(st, q)]
                if not violated:
                    continue  # spares the costly part: finding what the quantity is about
                subjects = st.subjects(q)
                bad = [c for c in subjects if any(c in r.objects for r in violated)]
                if bad and not any(r.applies(st, q) for c in subjects if c not in bad
                                   for r in plan.by_class.get(c, ())):
                    r = next(r for r in violated if bad[0] in r.objects)
                    yield doc.finding(r, source, q.start, q.end, value=text,
                                      limit=r.limit(v), object=subjects[bad[0]])


class _Plan:
    """The active quantity rules of one dimension, arranged for the per-quantity loop."""

    def __init__(self) -> None:
        self.generic: list[QuantityRule] = []
        self.specific: list[QuantityRule] = []
        self.by_class: dict[str, list[QuantityRule]] = {}
        self.lo, self.hi = -math.inf, math.inf

    def add(self, r: QuantityRule) -> None:
        (self.specific if r.objects else self.generic).append(r)
        for cls in r.objects:
            self.by_class.setdefault(cls, []).append(r)
        if r.min is not None:
            self.lo = max(self.lo, r.min)
        if r.max is not None:
            self.hi = min(self.hi, r.max)


_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?)\s*(%|percent\b)?"
# "probability of 1.7", "likelihood of a rear-end collision is about 1.3", "confidence: 1.2"
_PROB_BEFORE = (r"\w*(?:\s+(?:of|for)\s+(?:an?\s+|the\s+)?[a-z-]+(?:\s+[a-z-]+)?)?"
                r"(?:\s+(?:is|of|at|around|about|approximately|roughly|estimated|score|level|"
                r"value|be|would|will|was|than|~|=|:))*\s*[:=~]?\s*" + _NUMBER)
# "a 130% chance", "a 1.7 probability", "90 percent likely"
_PROB_AFTER = re.compile(_NUMBER + r"\s*$")


@dataclass(frozen=True)
class ProbabilityRule(Rule):
    """A probability, likelihood or confidence outside 0..1 (or 0..100 %) next to its keyword.
    Bare numbers are found here, around keyword occurrences, not by the quantity scan."""
    keywords: tuple[str, ...] = ()
    before: re.Pattern[str] = field(default=re.compile(r"(?!)"))
    type: ClassVar[str] = "probability"
    _AFTER_ONLY: ClassVar[tuple[str, ...]] = ("likely", "certain")

    @classmethod
    def patterns(cls, keywords: list[str]) -> dict[str, Any]:
        keywords = [k.lower() for k in keywords]
        return {"keywords": tuple(keywords),
                "before": re.compile(rf"(?:{'|'.join(map(re.escape, keywords))}){_PROB_BEFORE}")}

    def check(self, doc: Document) -> Iterator[Finding]:
        for source, st in doc.fields:
            low, seen = st.text, set()
            for word in self.keywords + self._AFTER_ONLY:
                at = low.find(word)
                while at >= 0:
                    found = [] if word in self._AFTER_ONLY else [self.before.match(low, at)]
                    m = _PROB_AFTER.search(low, max(0, at - 16), at)
                    # After a number only as "N% chance"; a bare "2 chances" counts no odds.
                    if m and (m.group(2) or word in ("probability", "likelihood")):
                        found.append(m)
                    for m in filter(None, found):
                        value = float(m.group(1)) / (100 if m.group(2) else 1)
                        if not 0 <= value <= 1 and m.start(1) not in seen:
                            seen.add(m.start(1))
                            yield doc.finding(self, source, m.start(1), m.end(2) if m.group(2)
                                              else m.end(1), value=st.raw[m.start(1):m.end()].strip())
                    at = low.find(word, at + len(word))


_TIMESTAMP_BEFORE = re.compile(
    r"(?:\bat|\baround|\buntil|\btill|\bfrom|\bbetween|\bt\s*=|\btimestamp|\bfirst|\blast|"
    r"\bstarting|\bbeginning)(?:\s+(?:about|approximately|roughly|around|the|~|t\s*=))*\s*"
    r"(?:[\d.:]+\s*(?:s|sec|seconds?)?\s*(?:to|and|-|–|until|till)\s*)?$", re.IGNORECASE)
_TIMESTAMP_AFTER = re.compile(r"\s*(?:mark|timestamp|into the (?:clip|video|footage|sequence))",
                              re.IGNORECASE)


@dataclass(frozen=True)
class TimestampRule(Rule):
    """A moment ("at 14 s", "00:14", "the 14-second mark") after the clip's end."""
    tolerance_s: float = 0.5
    tolerance_ratio: float = 0.05
    type: ClassVar[str] = "timestamp"

    def check(self, doc: Document) -> Iterator[Finding]:
        duration = doc.context.duration_s
        if duration is None:
            return
        limit = duration + max(self.tolerance_s, self.tolerance_ratio * duration)
        for source, st in doc.fields:
            for q in st.quantities:
                if q.dimension != "time" or q.value <= limit:
                    continue
                text = st.text
                if (q.clock and text[q.start] == "0") or _TIMESTAMP_AFTER.match(text, q.end) or \
                        _TIMESTAMP_BEFORE.search(text, max(0, q.start - 40), q.start):
                    yield doc.finding(self, source, q.start, q.end, value=st.raw[q.start:q.end],
                                      duration=f"{duration:g} s")


@dataclass(frozen=True)
class ChoiceMismatchRule(Rule):
    """The answer's option letter differs from the one the reasoning settled on."""
    type: ClassVar[str] = "choice_mismatch"

    def check(self, doc: Document) -> Iterator[Finding]:
        given, concluded = answer_letter(doc.parsed.answer), concluded_letter(doc.parsed.reasoning)
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
    FormatRule)}
