"""One field of a model output, scanned once, and the windows rules ask about around its
quantities: the sentence, the clause, the objects mentioned, whether a pattern matches.

Every window is computed at most once and only for a quantity some rule could flag, so a long
output whose numbers are all plausible costs one pass for the quantities and nothing more.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from app.guardrail.prefilter import folds_to_ascii, shortcuts
from app.guardrail.scan import (PRONOUN_ALTERNATIVES, PRONOUNS, Mention, Quantity, Raw, Scanner,
                                Wanted, lower)

# Sentence ends: ". ", "\n", "? ", "! ". One search finds the nearest after a quantity; the
# nearest before it is the nearest after it in the reversed text, which spares four rfinds.
# Both patterns open with the rare character, so sre skips ahead to it: reversed, ". " reads
# " .", and the space is checked behind the dot.
_SENTENCE_END = re.compile(r"\. |\n|\? |! ")
_SENTENCE_END_REVERSED = re.compile(r"\.(?<= \.)|\?(?<= \?)|!(?<= !)|\n")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?:and|but|while|whereas|as|when|although|though|because|"
                           r"since|so|then)\s")
_PRONOUN = re.compile(PRONOUN_ALTERNATIVES)
WINDOW = 400  # no sentence is longer; bounds every look-around
_REACH = WINDOW // 2  # how far before its sentence a pronoun's referent may be


class ScannedText:
    """One field's text (lowercased: every pattern is), its quantities, and the windows rules
    ask about, each computed at most once."""

    def __init__(self, text: str, scanner: Scanner,
                 wanted: Callable[[ScannedText], Wanted] | None = None, kinematics: bool = True):
        self.raw = text  # for quoting in messages
        self.text = lower(text)
        self._scanner = scanner
        self._reversed: str | None = None
        self._sentences: dict[int, tuple[int, int]] = {}
        # Mentions are cached by sentence start, computed over the window of the first quantity
        # that asked (windows differ only where the WINDOW limit cut a sentence short).
        self._windows: dict[int, int] = {}
        self._mentions: dict[int, list[Mention]] = {}
        self._searches: dict[tuple[re.Pattern[str], int], bool] = {}
        self._searchers: dict[re.Pattern[str], Callable[..., Any] | None] = {}
        self._needles: dict[str, bool] = {}
        self._may_mention: dict[tuple[int, int, frozenset[str]], bool] = {}
        self._folds: bool | None = None
        self.memo: dict[Any, Any] = {}  # what checks work out once per text (QuantityRules.plans)
        # What is wanted may depend on the text (see QuantityRules.plans): asked once it is here.
        # Every speed, time and length as matched, for derived kinematics (kinematics.py).
        self.raw_quantities: list[Raw] = []
        self.quantities = scanner.quantities(self.text, self.bounds, wanted and wanted(self),
                                             self.raw_quantities if kinematics else None)

    @property
    def reversed(self) -> str:
        """The text backwards: a pattern matched there reads what precedes a position."""
        if self._reversed is None:
            self._reversed = self.text[::-1]
        return self._reversed

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """The sentence around text[start:end]: from the end of the last sentence end before it
        to the first one after it, at most WINDOW characters either side."""
        text, n = self.text, len(self.text)
        lo, hi = max(0, start - WINDOW), min(n, end + WINDOW)
        if self._reversed is None:
            self._reversed = text[::-1]
        # Reversed, text[i] sits at n - 1 - i. A match is an end's first character; ". " & co.
        # end one further. A dot right before the quantity (at n - start) fails its look-behind,
        # as the space it wants is the quantity's first character.
        m = _SENTENCE_END_REVERSED.search(self._reversed, n - start, n - lo)
        s = n - m.start() + (m.group() != "\n") if m else lo
        m = _SENTENCE_END.search(text, end, hi)
        return s, m.start() if m else hi

    def sentence(self, q: Quantity) -> tuple[int, int]:
        bounds = self._sentences.get(q.start)
        if bounds is None:
            bounds = self._sentences[q.start] = self.bounds(q.start, q.end)
        return bounds

    def sentence_has(self, pattern: re.Pattern[str], q: Quantity) -> bool:
        """Whether the quantity's sentence matches; cached, as many rules ask about one sentence."""
        if pattern in self._searchers:
            search = self._searchers[pattern]
        else:
            search = self._searchers[pattern] = self._searcher(pattern)
        if search is None:
            return False
        s, e = self.sentence(q)
        found = self._searches.get((pattern, s))
        if found is None:
            found = self._searches[(pattern, s)] = search(self.text, s, e) is not None
        return found

    def may_match(self, pattern: re.Pattern[str] | None) -> bool:
        """False if `pattern` (None: no pattern, True) matches in no sentence of the text."""
        if pattern is None:
            return True
        if pattern not in self._searchers:
            self._searchers[pattern] = self._searcher(pattern)
        return self._searchers[pattern] is not None

    def _searcher(self, pattern: re.Pattern[str]) -> Callable[..., Any] | None:
        """The fastest equivalent of pattern.search on this text; None if it cannot match."""
        needles, caseless, ignorecase = shortcuts(pattern)
        if ignorecase and self._folds is None:
            self._folds = folds_to_ascii(self.text)
        folds = ignorecase and self._folds
        if needles is not None and not folds and not any(map(self._has, needles)):
            return None
        return caseless.search if caseless is not None and not folds else pattern.search

    def _has(self, needle: str) -> bool:
        """needle in text, remembered: patterns share needles ("tall"), and each absent one
        costs a pass over the text."""
        found = self._needles.get(needle)
        if found is None:
            found = self._needles[needle] = needle in self.text
        return found

    def clause(self, q: Quantity) -> tuple[int, int]:
        s, e = self.sentence(q)
        for m in _CLAUSE_BREAK.finditer(self.text, s, q.start):
            s = m.end()
        m = _CLAUSE_BREAK.search(self.text, q.end, e)
        return s, m.start() if m else e

    def may_mention(self, classes: frozenset[str], q: Quantity) -> bool:
        """False only if none of `classes` can be among subjects(q): none of their words in the
        sentence, nor within _REACH before it if the sentence has a pronoun."""
        s, e = self.sentence(q)
        found = self._may_mention.get((s, e, classes))
        if found is None:
            found = self._may_mention[(s, e, classes)] = self._words_near(classes, s, e)
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
        return m is not None and (m.group(1) not in PRONOUNS or finder.search(text, m.start(), e)
                                  is not None or finder.search(text, lo - 1, s) is not None)

    def subjects(self, q: Quantity) -> dict[str, str]:
        """Object classes the quantity may be about, each with its first mention: the clause's,
        else the sentence's, else, if the sentence has a pronoun, the last one mentioned shortly
        before in the paragraph. Objects something is compared with do not count."""
        s, e = self.sentence(q)
        found = self._mentions.get(s)
        if found is None:
            first_e = self._windows.setdefault(s, e)
            found = self._mentions[s] = [
                m for m in self._scanner.mentions(self.text, s, first_e) if not m.compared]
        if len(found) > 1 and len({m.cls for m in found}) > 1:  # else no clause can narrow it
            cs, ce = self.clause(q)
            found = [m for m in found if cs <= m.pos < ce] or found
        elif not found and _PRONOUN.search(self.text, s, e):
            # "It accelerates to 500 km/h": the referent is the last object of the paragraph.
            lo = max(0, s - _REACH, self.text.rfind("\n\n", 0, s) + 2)
            found = self._scanner.mentions(self.text, lo, s)[-1:]
        first: dict[str, str] = {}
        for m in found:
            first.setdefault(m.cls, m.words)
        return first
