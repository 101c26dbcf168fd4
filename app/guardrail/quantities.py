"""Quantity rules: bounds on speeds, accelerations, lengths and times, per object class.

All of a rule file's quantity rules run as one check, so each quantity is looked at once, and
only as far as needed: its value against the bounds of its dimension, then the rules it breaks,
then (the costly part) what the quantity is about.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import ClassVar, FrozenSet, Iterator, List, Tuple

from app.guardrail.base import Document, Finding, GuardrailContext, Rule
from app.guardrail.scan import Quantity, Wanted
from app.guardrail.scanned import ScannedText


# After a length, what makes it a separation between things rather than a size (round 6): every
# upper bound on a length in the rule file is a size ("2.8 m tall").
_SEPARATION = re.compile(r"\s*(?:from|away|ahead|behind|short of|in front|apart|beyond|past|"
                         r"further|farther|closer|nearer|clear of)\b")


@dataclass(frozen=True)
class QuantityRule(Rule):
    """A bound on one dimension, for some object classes (or any text when `objects` is empty)."""
    dimension: str = ""
    objects: frozenset[str] = frozenset()
    min: float | None = None
    max: float | None = None
    min_text: str = ""
    max_text: str = ""
    requires: re.Pattern[str] | None = None  # must occur in the sentence (or clause)
    unless: re.Pattern[str] | None = None  # must not occur in the sentence (or clause)
    within: str = "sentence"  # where requires / unless are looked for: sentence | clause
    unless_text: re.Pattern[str] | None = None  # must occur nowhere in the output or question
    requires_text: re.Pattern[str] | None = None  # must occur in the output (this field)
    type: ClassVar[str] = "quantity"

    def __post_init__(self) -> None:
        # Open bounds as infinities: `violated` runs for most quantities and must stay cheap.
        object.__setattr__(self, "lo", -math.inf if self.min is None else self.min)
        object.__setattr__(self, "hi", math.inf if self.max is None else self.max)
        # Conditions asked before finding what a quantity is about (those on the sentence or
        # the text), and what they are: rules with the same ones are asked once per quantity.
        object.__setattr__(self, "asked_first", self.conditional and self.within != "clause")
        object.__setattr__(self, "condition", (id(self.requires), id(self.unless), self.within,
                                               id(self.requires_text), id(self.unless_text)))

    def violated(self, value: float) -> bool:
        return not self.lo <= value <= self.hi  # type: ignore[attr-defined]

    @property
    def conditional(self) -> bool:
        return self.requires is not None or self.unless is not None or \
            self.unless_text is not None or self.requires_text is not None

    def applies(self, st: ScannedText, q: Quantity) -> bool:
        has = st.clause_has if self.within == "clause" else st.sentence_has
        return ((self.requires is None or has(self.requires, q))
                and (self.unless is None or not has(self.unless, q))
                and (self.unless_text is None or not st.whole_has(self.unless_text))
                and (self.requires_text is None or st.may_match(self.requires_text)))

    def limit(self, value: float) -> str:
        return self.max_text if self.max is not None and value > self.max else self.min_text


class QuantityRules:
    """All quantity rules at once: one pass over the quantities, and a quantity said about several
    objects ("the car passes the pedestrian at 40 km/h") is flagged only if it is implausible for
    each of them that has a bound in that dimension."""

    def __init__(self, rules: tuple[QuantityRule, ...] = ()):
        self.rules = rules
        self._conditional = [r for r in rules
                             if r.requires is not None or r.requires_text is not None]
        self._plans: dict[tuple[frozenset[str], frozenset[str]], dict[str, _Plan]] = {}

    def plans(self, active: frozenset[str], st: ScannedText) -> dict[str, _Plan]:
        """The active rules by dimension, without those whose `requires` the text lacks: they
        never apply, and without them most lengths need no look at all ("tall" is rare)."""
        plans = st.memo.get((self, active))
        if plans is None:
            dead = frozenset(r.id for r in self._conditional if r.severity in active and not (
                st.may_match(r.requires) and st.may_match(r.requires_text)))
            plans = self._plans.get((active, dead))
            if plans is None:
                if len(self._plans) > 256:  # texts name many combinations: keep it bounded
                    self._plans.clear()
                plans = self._plans[(active, dead)] = {}
                for r in self.rules:
                    if r.severity in active and r.id not in dead:
                        plans.setdefault(r.dimension, _Plan()).add(r)
            st.memo[(self, active)] = plans
        return plans

    def wants(self, context: GuardrailContext, active: frozenset[str], st: ScannedText) -> Wanted:
        return {dim: (plan.lo, plan.hi) for dim, plan in self.plans(active, st).items()}

    def check(self, doc: Document) -> Iterator[Finding]:
        for source, st in doc.fields:
            plans = self.plans(doc.severities, st)
            for q in st.quantities:
                plan = plans.get(q.dimension)
                # Values inside every bound of their dimension (most) cost one comparison.
                if plan is None or plan.lo <= q.value <= plan.hi:
                    continue
                v = q.value
                if v > plan.hi and q.dimension == "length" and \
                        _SEPARATION.match(st.text, q.end) is not None:
                    continue  # "stops 2.5 m from the bumper": a separation, not a size
                found = plan.violations(v)
                generic, specific, objects, ask = found
                for r in generic:
                    if r.applies(st, q) and not st.not_claimed(q) and not doc.unchosen(q):
                        yield doc.finding(r, source, q.start, q.end, value=st.raw[q.start:q.end],
                                          limit=r.limit(v), object="object")
                # Most quantities have none of the classes whose bounds they break named near
                # them: asked first, with all of those classes, it spares searching the
                # sentence for the conditions. (No for all of them is no for the classes of the
                # rules whose conditions hold; `early` says when the order changes nothing.)
                if ask and st.early(q) and not st.may_mention(objects, q):
                    continue
                # Conditions on the sentence or the text are cheap (cached per sentence): asked
                # first. Those on the clause are asked only of the subjects' rules.
                if ask:  # one rule per distinct condition asks it; the rest is remembered
                    failed = 0
                    for i, r in enumerate(ask):
                        if not r.applies(st, q):
                            failed |= 1 << i
                    if failed:
                        specific, objects = plan.kept(found, failed)
                # Both spare the costly part: finding what the quantity is about.
                if not specific or not st.may_mention(objects, q):
                    continue
                subjects = st.subjects(q, plan.by_class)
                if q.dimension == "mass":  # "cartons, 1,200 kg in total": a mass of several
                    subjects = {c: w for c, w in subjects.items() if not st.plural(w)}
                broken = [r for r in specific if not r.objects.isdisjoint(subjects) and (
                    r.within != "clause" or r.applies(st, q))]
                bad = [c for c in subjects if any(c in r.objects for r in broken)]
                if bad and not any(r.applies(st, q) for c in subjects if c not in bad
                                   for r in plan.by_class.get(c, ())) and \
                        not st.not_claimed(q) and not doc.unchosen(q):
                    r = next(r for r in broken if bad[0] in r.objects)
                    yield doc.finding(r, source, q.start, q.end, value=st.raw[q.start:q.end],
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
        self._points: list[float] | None = None  # every bound, sorted: worked out when asked
        self._violations: dict[int, _Violations] = {}
        self._by_value: dict[float, _Violations] = {}
        self._kept: dict[tuple[int, int], tuple[list[QuantityRule], FrozenSet[str]]] = {}

    def violations(self, v: float) -> _Violations:
        """The generic and the specific rules whose bounds `v` breaks, the specific ones' object
        classes, and one of them per distinct condition on the sentence or the text to ask
        (conditions on the clause are asked later, of the subjects' rules only). Only the
        bounds' order matters, so this is worked out once per interval between them (and
        remembered per value: outputs repeat their numbers)."""
        found = self._by_value.get(v)
        if found is not None:
            return found
        if self._points is None:
            self._points = sorted({b for r in self.generic + self.specific
                                   for b in (r.min, r.max) if b is not None})
        i = bisect_left(self._points, v)
        key = 2 * i + (i < len(self._points) and self._points[i] == v)
        found = self._violations.get(key)
        if found is None:
            specific = [r for r in self.specific if not r.lo <= v <= r.hi]
            asked = {r.condition: r for r in specific if r.asked_first}  # type: ignore
            found = self._violations[key] = (
                [r for r in self.generic if not r.lo <= v <= r.hi], specific,
                frozenset(c for r in specific for c in r.objects), tuple(asked.values()))
        if len(self._by_value) < 4096:
            self._by_value[v] = found
        return found

    def kept(self, found: _Violations, failed: int) -> tuple[list[QuantityRule], FrozenSet[str]]:
        """The specific rules of `found` whose conditions did not fail (bit i: the condition
        of found[3][i]), and their classes; worked out once per violation and outcome."""
        key = (id(found), failed)
        kept = self._kept.get(key)
        if kept is None:
            gone = {r.condition for i, r in enumerate(found[3])  # type: ignore[attr-defined]
                    if failed >> i & 1}
            rules = [r for r in found[1] if not (r.asked_first and  # type: ignore[attr-defined]
                                                 r.condition in gone)]  # type: ignore
            kept = self._kept[key] = (rules, frozenset(c for r in rules for c in r.objects))
        return kept


_Violations = Tuple[List[QuantityRule], List[QuantityRule], FrozenSet[str],
                    Tuple[QuantityRule, ...]]
