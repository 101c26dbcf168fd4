"""Rules on derived kinematics (kinematics.py): what a sentence implies, against the bound the
rule file's quantity rules give the object's class in that dimension; and free fall.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import ClassVar, Iterable, Iterator, Mapping

from app.guardrail.base import Document, Finding, Rule
from app.guardrail.carried import carried
from app.guardrail.falls import falls_between
from app.guardrail.kinematics import Derivation, derivations
from app.guardrail.motion_cues import G
from app.guardrail.quantities import QuantityRule
from app.guardrail.route import route_speeds
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText
from app.guardrail.timeline import between_moments


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def format_value(dimension: str, si: float) -> str:
    if dimension in ("length", "mass"):
        return f"{_num(si)} {'m' if dimension == 'length' else 'kg'}"
    if dimension == "acceleration":
        return f"{_num(si)} m/s² ({_num(si / G)} g)"
    return f"{_num(si)} m/s ({_num(si * 3.6)} km/h)"


def format_limit(dimension: str, si: float) -> str:
    if dimension in ("length", "mass"):
        return format_value(dimension, si)
    if dimension == "acceleration":
        return f"{_num(si / G)} g"
    return f"{_num(si * 3.6)} km/h" if si >= 5 else f"{_num(si)} m/s"


# Words that name any of several classes: "the quadruped ... the robot", "the forklift ... the
# truck" (a lift truck), "the van ... the vehicle".
_GENERIC_HEADS = frozenset(("robot", "vehicle", "truck", "machine", "unit"))


def _same_object(a: dict[str, str], b: dict[str, str]) -> bool:
    """Same class, the same head noun ("the delivery robot" ... "the robot"), or a later generic
    one ("the quadruped" ... "the robot")."""
    if a.keys() & b.keys():
        return True
    heads = {w.split(" ")[-1].rstrip("s") for w in a.values()}
    later = {w.split(" ")[-1].rstrip("s") for w in b.values()}
    return bool(heads & later) or bool(later & _GENERIC_HEADS and a)


# A subject pronoun before a value in its sentence: "it's alongside", "he then".
_SUBJECT_PRONOUN = re.compile(r"(?:^|[^a-z0-9'])(it|he|she|they)(?=['\u2019]s\b|\s)")


def _pronoun_for(st: ScannedText, q: Quantity, classes: Iterable[str]) -> bool:
    """Whether q's sentence has a subject pronoun before q that refers to one of `classes`."""
    s, _ = st.sentence(q)
    m = _SUBJECT_PRONOUN.search(st.text, max(0, s - 1), q.start)
    if m is None:
        return False
    ref = st._referent(m.group(1), m.start(1), s, st._mentions.get(s) or [])
    return bool(ref) and ref[0].cls in set(classes)


@dataclass(frozen=True)
class DerivedRule(Rule):
    """A bound on what a sentence implies (see the module's docstring). The bound for each object
    class is the lowest `max` of the rule file's quantity rules of the same dimension for that
    class that would apply to a value stated where the derivation's speed (or time) is (their
    requires / unless asked there), times `tolerance`, which absorbs the rounding of the numbers
    models write."""
    unless: re.Pattern[str] | None = None  # the sentence must not match (negations, "reaction")
    tolerance: float = 1.0
    limits: Mapping[str, float] = field(default_factory=dict)  # per class, the lowest of all
    bounds: Mapping[str, tuple[QuantityRule, ...]] = field(default_factory=dict)
    dimension: ClassVar[str] = ""

    def bind(self, rules: Iterable[QuantityRule]) -> "DerivedRule":
        bounds: dict[str, list[QuantityRule]] = {}
        for r in rules:
            if r.dimension == self.dimension and r.max is not None and r.objects:
                for cls in r.objects:
                    bounds.setdefault(cls, []).append(r)
        return replace(self, bounds={c: tuple(rs) for c, rs in bounds.items()},
                       limits={c: min(r.max for r in rs) for c, rs in bounds.items()})

    def limit(self, st: ScannedText, cls: str, at: Quantity) -> float | None:
        """The class's bound for a value said at `at`; None if no rule applies there."""
        found = [r.max for r in self.bounds.get(cls, ()) if not r.conditional or r.applies(st, at)]
        return min(found) if found else None  # type: ignore[type-var]

    def check(self, doc: Document) -> Iterator[Finding]:
        if not self.limits:
            return
        floor = min(self.limits.values()) * self.tolerance  # no class's bound is lower
        for source, st in doc.fields:
            found = derivations(st)
            if self.dimension == "acceleration":
                found = found + carried(st, floor) + between_moments(st, floor)
            elif self.dimension == "speed":
                found = found + route_speeds(st, doc.context.question)
            for d in found:
                if d.dimension != self.dimension or d.value <= floor:
                    continue
                yield from self.judge(doc, source, st, d)

    def judge(self, doc: Document, source: str, st: ScannedText,
              d: Derivation) -> Iterator[Finding]:
        """A finding if the value breaks the bound of what it is about."""
        # Finding what the sentence is about is the costly part: first, whether any
        # class whose bound the value breaks can be mentioned there at all.
        broken = frozenset(c for c, v in self.limits.items() if d.value > v * self.tolerance)
        if not broken or not (st.may_mention(broken, d.anchor) or d.also is not None
                              and st.may_mention(broken, d.also)):
            return
        if self._unsaid(st, d):
            return
        subjects = st.subjects(d.anchor, self.limits)
        carried_to = None
        if not subjects and d.also is not None:
            # A speed said of nothing ("the readout shows 110 km/h") is that of what
            # the stop it carries to is about.
            subjects = carried_to = st.subjects(d.also, self.limits)
            if not subjects:
                # Neither names what moves ("Lane 5 crosses the line at 10.5 s"): the
                # paragraph's topic does.
                subjects = carried_to = st.topic(d.anchor, self.limits)
            if not subjects and doc.context.question:
                # ... or, naming none either, the question ("How did the sprinter ...?").
                subjects = carried_to = ScannedText(doc.context.question, doc.scanner).topic(
                    Quantity(0, "", len(doc.context.question), 0), self.limits)
        limits, bounded = self._bounded(st, d, subjects)
        if not bounded and d.also is not None and carried_to is None:
            # "She arrives at the shelf at 6 s": the clause names where, its pronoun who.
            later = st.subjects(d.also, self.limits)
            if later and _pronoun_for(st, d.anchor, later.keys()):
                subjects = carried_to = later
                limits, bounded = self._bounded(st, d, subjects)
        if not bounded:
            return
        if d.also is not None and carried_to is None:
            later = st.subjects(d.also)
            if not _same_object(subjects, later):
                # "By 3.5 s it's alongside the lorry, doing 140 km/h ... on my car":
                # the clause names others, but its subject is a pronoun for what the
                # other sentence is about.
                if not later or not _pronoun_for(st, d.anchor, later.keys()):
                    return
                subjects = later
                limits, bounded = self._bounded(st, d, subjects)
                if not bounded:
                    return
        cls = bounded[0]
        arithmetic = f"{d.said} is {format_value(self.dimension, d.value)}"
        yield doc.finding(self, source, d.start, d.end, arithmetic=arithmetic,
                          value=format_value(self.dimension, d.value),
                          object=subjects[cls],
                          limit=format_limit(self.dimension, limits[cls]))

    def _bounded(self, st: ScannedText, d: Derivation,
                 subjects: dict[str, str]) -> tuple[dict[str, float | None], list[str]]:
        """The subjects' bounds, and the classes bounded there: none if any bound holds."""
        limits = {c: self.limit(st, c, d.anchor) for c in subjects if c in self.limits}
        bounded = [c for c, v in limits.items() if v is not None]
        if any(d.value <= limits[c] * self.tolerance for c in bounded):
            return limits, []
        return limits, bounded

    def _unsaid(self, st: ScannedText, d: Derivation) -> bool:
        """The sentences negate it ("cannot stop within 5 m") or dismiss it."""
        # A stop carried from a speed said before is negated or conditional in its own sentence;
        # the speed's sentence need only state the speed ("at 16 km/h, clearly too fast").
        for q in (d.anchor, d.also):
            has = st.clause_has if d.kind == "route" else st.sentence_has
            if q is not None and ((self.unless is not None and (d.also is None or q is d.also)
                                   and has(self.unless, q)) or st.not_claimed(q)):
                return True
        return False


@dataclass(frozen=True)
class FreeFallRule(DerivedRule):
    """A fall faster than gravity: a height and the time its fall takes (2h/t² above `max`,
    default g, times `tolerance`). Whatever falls, nothing let go falls faster; `unless` names
    what pushes it down ("thrown", "spiked")."""
    max: float = G
    type: ClassVar[str] = "free_fall"
    dimension: ClassVar[str] = "fall"

    def bind(self, rules: Iterable[QuantityRule]) -> "FreeFallRule":
        return self

    def check(self, doc: Document) -> Iterator[Finding]:
        for source, st in doc.fields:
            for d in derivations(st) + falls_between(st):
                if d.dimension != "fall" or d.value <= self.max * self.tolerance or \
                        self._unsaid(st, d):
                    continue
                value = format_value("acceleration", d.value)
                yield doc.finding(self, source, d.start, d.end, value=value,
                                  arithmetic=f"{d.said} is {value}",
                                  limit=format_limit("acceleration", self.max), object="object")


@dataclass(frozen=True)
class DerivedAccelerationRule(DerivedRule):
    type: ClassVar[str] = "derived_acceleration"
    dimension: ClassVar[str] = "acceleration"


@dataclass(frozen=True)
class DerivedSpeedRule(DerivedRule):
    type: ClassVar[str] = "derived_speed"
    dimension: ClassVar[str] = "speed"
