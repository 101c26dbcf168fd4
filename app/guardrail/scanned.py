"""One field of a model output, scanned once: its quantities, and what each is about (the
objects its clause or sentence mentions, a pronoun's referent) or whether the text itself
dismisses it. The windows (sentence, clause) come from sentences.py.

Every window is computed at most once and only for a quantity some rule could flag, so a long
output whose numbers are all plausible costs one pass for the quantities and nothing more.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from app.guardrail.objects import (IMPERSONAL, PERSONAL, PRONOUN_ALTERNATIVES, PRONOUNS,
                                   Mention)
from app.guardrail.prefilter import windowed
from app.guardrail.scan import Quantity, Raw, Scanner, Wanted
from app.guardrail.sentences import WINDOW, Sentences

_PRONOUN = re.compile(f"[^a-z0-9]({PRONOUN_ALTERNATIVES})")
_PRONOUN_AT_START = re.compile(f"({PRONOUN_ALTERNATIVES})")  # a field may open with one
# "far less than a car's 8 m/s²": a value right after an owner is the owner's.
# "A car's 7-9 m/s²": the lower end of a range may stand between the owner and the quantity.
_OWNER = re.compile(r"([a-z][a-z-]*)['\u2019]s\s+(?:(?:about|around|roughly|approximately|nearly|"
                    r"almost|some|~)\s+)?(?:[0-9][0-9.,]*\s*(?:[-\u2013\u2014]|to\s)\s*)?$")
_BEFORE_OWNED = frozenset(" -\u2013\u2014")
_OBJECT_PRONOUNS = frozenset(("him", "them", "whom"))
_PARTICIPLE = re.compile(r"\s*(?!(?:some|any|no|every)thing\b|during\b|building\b|ceiling\b|"
                         r"morning\b|evening\b|speed\b|need\b)[a-z]{2,}(?:ing|ed)\b")
_THING_PRONOUN = re.compile(r"[^a-z0-9](?:it|its|the(?:y|ir|m)|whose)\b")
_PERSONAL_PRONOUN = re.compile(r"[^a-z0-9](?:he|his|him|she|her|the(?:y|ir|m)|whose)\b")
_DUMMY = re.compile(r"\s+(?:takes|took|will take|would take)\b")  # "it takes him 4 s"
# "it takes him 4 s"; "the overlay shows him hitting 17 m/s", "the gun clocks her at 30 km/h":
# the object pronoun is who has the value.
_TAKES = re.compile(r"(?:takes|took|take|shows?|showed|clocks?|clocked|puts?|has|had|times|makes?|made|"
                    r"timed|registers?|registered)\s+$")
_WHO = re.compile(r"[^a-z0-9]who(?:m|se)?\b")
_REACH = WINDOW // 2  # how far before its sentence a pronoun's referent may be


def _pronouns(text: str, start: int, end: int) -> Any:
    """Pronoun matches in text[start:end] (group 1 the word), one at the text's start too."""
    if start == 0:
        m = _PRONOUN_AT_START.match(text, 0, end)
        if m is not None:
            yield m
    yield from _PRONOUN.finditer(text, start - 1 if start else start, end)


class ScannedText(Sentences):
    """One field's text (lowercased: every pattern is), its quantities, and the windows rules
    ask about, each computed at most once."""

    def __init__(self, text: str, scanner: Scanner,
                 wanted: Callable[[ScannedText], Wanted] | None = None, kinematics: bool = True):
        super().__init__(text)
        self._scanner = scanner
        self._before: dict[tuple[int, int], list[Mention]] = {}  # mentions before a sentence
        # Mentions are cached by sentence start, computed over the window of the first quantity
        # that asked (windows differ only where the WINDOW limit cut a sentence short).
        self._windows: dict[int, int] = {}
        self._mentions: dict[int, list[Mention]] = {}
        self._may_mention: dict[tuple[int, int, frozenset[str]], bool] = {}
        self.memo: dict[Any, Any] = {}  # what checks work out once per text (QuantityRules.plans)
        # What is wanted may depend on the text (see QuantityRules.plans): asked once it is here.
        # Every speed, time and length as matched, for derived kinematics (kinematics.py).
        self.raw_quantities: list[Raw] = []
        self.quantities = scanner.quantities(self.text, self.bounds, wanted and wanted(self),
                                             self.raw_quantities if kinematics else None)

    def plural(self, words: str) -> bool:
        """Whether a mention names several things: "cartons", not "bus" or "glass"."""
        return words.endswith("s") and words not in self._scanner.object_forms

    def not_claimed(self, q: Quantity) -> bool:
        """Whether the text says the quantity is not an object's: its clause dismisses it ("16
        m/s is beyond any human") or its sentence makes it relative ("the closing speed")."""
        patterns = self._scanner.not_claims
        if not patterns:
            return False
        p = patterns.get("sentence")
        if p is not None and q.dimension != "time" and self.sentence_has(p, q):
            return True
        p = patterns.get("clause")
        if p is not None:
            cs, ce = self.claim(q)
            return windowed(p, self.folds)(self.text, cs, ce)
        return False

    def may_mention(self, classes: frozenset[str], q: Quantity) -> bool:
        """False only if none of `classes` can be among subjects(q): none of their words in the
        sentence, nor within _REACH before it if the sentence has a pronoun."""
        s, e = self.sentence(q)
        found = self._may_mention.get((s, e, classes))
        if found is None:
            named = self._mentions.get(s)
            if named is not None and any(m.cls in classes for m in named):
                found = True  # subjects() has read this sentence already
            else:
                found = self._words_near(classes, s, e)
            self._may_mention[(s, e, classes)] = found
        if not found:
            self._windows.setdefault(s, e)  # as subjects(q) would have
        return found

    def _words_near(self, classes: frozenset[str], s: int, e: int) -> bool:
        lo = s - _REACH
        if lo <= 0:  # the finders need a character before a word
            return True
        finder, or_pronoun = self._scanner.finders(classes)
        text = self.text
        m = or_pronoun.search(text, s - 1, e)  # one search usually settles it: neither is there
        if m is not None and (m.group(1) not in PRONOUNS or
                              finder.search(text, m.start(), e) is not None):
            return True
        people = self._scanner.people
        # "who" with no one named before it is someone (the first class of `people`).
        # str.find first: the pattern opens with a class, which sre tests at every character.
        if people and people[0] in classes and text.find("who", s, e) >= 0 and \
                _WHO.search(text, s - 1, e) is not None:
            return True
        if m is None:
            return False
        # A referent before the sentence, if one of its pronouns can name one of the classes:
        # "it" names no person, "he" only people.
        if classes.isdisjoint(people):
            if _THING_PRONOUN.search(text, m.start(), e) is None:
                return False
        elif classes.issubset(people) and _PERSONAL_PRONOUN.search(text, m.start(), e) is None:
            return False
        return finder.search(text, lo - 1, s) is not None

    def subjects(self, q: Quantity, movers: Any = None) -> dict[str, str]:
        """Object classes the quantity may be about, each with its first mention: the clause's
        (the clause with what encloses it, for a parenthesis); else, if the clause has a pronoun
        before the quantity, its referent; else the sentence's; else, if the sentence has a
        pronoun, its referent. A referent is the last object named before the pronoun, in the
        sentence or shortly before it in the paragraph, that the pronoun can name: "it" no
        person, "he" and "who" only people ("who" with no one named is someone). Objects
        something is compared with do not count, nor "men's" in "men's downhill", nor an owner
        of something else ("the striker's shot"), except as a pronoun's referent, nor, beside
        another object of the clause, one after a preposition of place ("from behind the bus").
        An apposition is about the noun before its comma ("the humanoid, about 6 m tall").
        `movers`, if given, are the classes a referent may be of (what can have such a
        quantity: "it is travelling at 110 km/h" is not about the racking named last)."""
        s, e = self.sentence(q)
        if q.start > s and self.text[q.start - 1] in _BEFORE_OWNED and \
                ("'s" in self.text[q.start - 24:q.start] or "\u2019s" in self.text[q.start - 24:q.start]):
            owner = _OWNER.search(self.text, max(s, q.start - 24), q.start)
            cls = owner and self._scanner.class_of(owner.group(1))
            if cls:
                return {cls: owner.group(1)}
        found = self._mentions.get(s)
        if found is None:
            first_e = self._windows.setdefault(s, e)
            found = self._mentions[s] = [
                m for m in self._scanner.mentions(self.text, s, first_e) if not m.compared]
        cs, ce = self.claim(q)
        direct = [m for m in found if not m.possessor]
        in_clause = [m for m in direct if cs <= m.pos < ce]
        # "A child runs out from behind the bus at 50 mph": the bus is where, not who.
        in_clause = [m for m in in_clause if not m.oblique] or in_clause
        if not in_clause:
            text = self.text
            # The clause's subject, if a pronoun ("him" and "them" are someone else, except in
            # "it takes him 4 s", where "it" is no one); else, if the sentence opens with a
            # pronoun, that one: "He then sprints at 68 km/h and collects the ball".
            p = next((p for p in _pronouns(text, cs, q.start)
                      if not (p.group(1) == "it" and _DUMMY.match(text, p.end())) and (
                          p.group(1) not in _OBJECT_PRONOUNS or _TAKES.search(
                              text, max(0, p.start() - 8), p.start(1)))), None)
            if p is None and s < cs:
                p = next(_pronouns(text, s, cs), None)
                if p is not None and (p.group(1) in _OBJECT_PRONOUNS or
                                      any(m.pos < p.start(1) for m in direct)):
                    p = None
            if p is None and not direct:
                p = next(_pronouns(text, s, e), None)
            if p is not None:
                in_clause = self._referent(p.group(1), p.start(1), s, found, movers)
            else:
                # An apposition describes the noun before its comma: "The humanoid, about 6 m
                # tall, ...".
                before = [m for m in direct if m.pos < cs]
                participle = before and text[cs - 1] == "," and _PARTICIPLE.match(text, cs)
                if before and text[cs - 1] == "," and not participle and \
                        not text[before[-1].pos + len(before[-1].words):cs - 1].strip():
                    in_clause = before[-1:]
                elif participle and not before[0].oblique and \
                        text.count(" ", s, before[0].pos) <= 2:
                    # "A jogger ... stays level with the car, running at 48 km/h": a participle
                    # after the comma says what the sentence's subject does.
                    in_clause = before[:1]
                else:
                    in_clause = direct
        first: dict[str, str] = {}
        for m in in_clause:
            first.setdefault(m.cls, m.words)
        return first

    def topic(self, q: Quantity, classes: Any = None) -> dict[str, str]:
        """The first object of `classes` (any, if None) named in q's paragraph before q."""
        top = max(0, self.text.rfind("\n\n", 0, q.start) + 2)
        for m in self._scanner.mentions(self.text, top, q.start):
            if not m.compared and (classes is None or m.cls in classes):
                return {m.cls: m.words}
        return {}

    def _referent(self, pronoun: str, at: int, s: int, found: list[Mention],
                  movers: Any = None) -> list[Mention]:
        people = self._scanner.people

        def can_name(m: Mention, any_class: bool = False) -> bool:
            if movers is not None and m.cls not in movers and not any_class:
                return False
            if pronoun in PERSONAL:
                return m.cls in people
            if pronoun in IMPERSONAL and self.plural(m.words):
                return False  # "bolts out from between parked cars. It runs ...": not the cars
            return pronoun not in IMPERSONAL or m.cls not in people

        before = [m for m in found if m.pos < at and can_name(m)]
        if not before and pronoun.startswith("who") and pronoun in PERSONAL:
            return [Mention(at, people[0], "person", False)] if people else []
        if not before:
            lo = max(0, s - _REACH, self.text.rfind("\n\n", 0, s) + 2)
            window = self._before.get((lo, s))
            if window is None:
                window = self._before[(lo, s)] = [
                    m for m in self._scanner.mentions(self.text, lo, s) if not m.compared]
            before = [m for m in window if can_name(m)]
            # "A forklift of 4.5 t, carrying a pallet of 1.2 t ... it pushes": the carrier, not
            # what it carries or passes behind.
            before = [m for m in before if not m.oblique] or before
            if lo > 0 and not any(can_name(m, any_class=True) for m in window):
                # Nothing the pronoun can name within reach: the paragraph's topic, the first thing it
                # names that the pronoun can name ("The humanoid moves down the corridor. ...
                # It moves along at 45 km/h.").
                top = max(0, self.text.rfind("\n\n", 0, s) + 2)
                topic = self._before.get((top, lo))
                if topic is None:
                    topic = self._before[(top, lo)] = [
                        m for m in self._scanner.mentions(self.text, top, lo) if not m.compared]
                before = [m for m in topic if can_name(m)][:1]
        return before[-1:]
