"""A field's text (lowercased) and the windows rules ask about around a position: its sentence,
its clause, the clause a parenthesis belongs to, and whether a rule's pattern matches there.

Every window is computed at most once, and only around a quantity some rule could flag, so a
long output whose numbers are all plausible costs one pass for the quantities and little more.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right, insort
from typing import Any, Callable

from app.guardrail.prefilter import folds_to_ascii, shortcuts, windowed
from app.guardrail.scan import Quantity, lower

# Sentence ends: ". ", "\n", "? ", "! ". One search finds the nearest after a quantity; the
# nearest before it is the nearest after it in the reversed text, which spares four rfinds.
# Both patterns open with the rare character, so sre skips ahead to it: reversed, ". " reads
# " .", and the space is checked behind the dot.
_SENTENCE_END = re.compile(r"\. |\n|\? |! ")
_SENTENCE_END_REVERSED = re.compile(r"\.(?<= \.)|\?(?<= \?)|!(?<= !)|\n")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?:and|but|while|whereas|as|when|although|though|because|"
                           r"since|so|then|before|after|until)\s")
# Brackets of arithmetic ("v²/(2·8) ≈ 17 m/s²") group numbers; they do not end a clause.
_ARITHMETIC = re.compile(r"\([0-9.\s·*×x/+\-−^²³]+\)")
WINDOW = 400  # no sentence is longer; bounds every look-around
_INF = math.inf


def _found(text: str, needles: tuple[str, ...], start: int, end: int) -> bool:
    """Whether one of the needles lies whole in text[start:end]."""
    for needle in needles:
        if text.find(needle, start, end) >= 0:
            return True
    return False


def _in_arithmetic(text: str, at: int) -> bool:
    """Whether the bracket at text[at] is one of an arithmetic expression's."""
    c = text[at]
    if c == "(":
        return _ARITHMETIC.match(text, at) is not None
    if c == ")":
        opened = text.rfind("(", max(0, at - 40), at)
        return opened >= 0 and _ARITHMETIC.match(text, opened) is not None and \
            _ARITHMETIC.match(text, opened).end() == at + 1
    return False


class Sentences:
    """One field's text (lowercased: every pattern is) and its windows, each computed once."""

    def __init__(self, text: str):
        self.raw = text  # for quoting in messages
        self.text = lower(text)
        self._reversed: str | None = None
        self._sentences: dict[int, tuple[int, int]] = {}
        # Sentences found whole: (start, end, first character of the end before, end of the
        # end after), by start.
        self._known: list[tuple[int, int, float, float]] = []
        self._claims: dict[int, tuple[int, int]] = {}
        self._searches: dict[tuple[int, int], bool] = {}  # (id(pattern), where): found
        self._searchers: dict[int, Callable[..., Any] | None] = {}  # id(pattern): its search
        self._needles: dict[str, bool] = {}
        # id(pattern): see shortcuts
        self._in_sentence: dict[int, re.Pattern[str] | tuple[str, ...] | None] = {}
        self._folds: bool | None = None
        # Whether a pattern matches anywhere in the output or its question (set by Document).
        self.whole_has: Callable[[re.Pattern[str]], bool] = self._whole_has

    @property
    def reversed(self) -> str:
        """The text backwards: a pattern matched there reads what precedes a position."""
        if self._reversed is None:
            self._reversed = self.text[::-1]
        return self._reversed

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """The sentence around text[start:end]: from the end of the last sentence end before it
        to the first one after it, at most WINDOW characters either side."""
        # Most sentences hold several quantities: one found before, with both its ends within
        # reach, is this one's too (no end lies inside a sentence).
        known = self._known
        k = bisect_right(known, (start, _INF)) - 1
        if k >= 0:
            s, e, first, last = known[k]
            if end <= e and first >= start - WINDOW and last <= end + WINDOW:
                return s, e
        text, n = self.text, len(self.text)
        lo, hi = max(0, start - WINDOW), min(n, end + WINDOW)
        if self._reversed is None:
            self._reversed = text[::-1]
        # Reversed, text[i] sits at n - 1 - i. A match is an end's first character; ". " & co.
        # end one further. A dot right before the quantity (at n - start) fails its look-behind,
        # as the space it wants is the quantity's first character.
        m = _SENTENCE_END_REVERSED.search(self._reversed, n - start, n - lo)
        s, first = (n - m.start() + (m.group() != "\n"), n - 1 - m.start()) if m else (lo, -_INF)
        m = _SENTENCE_END.search(text, end, hi)
        e, last = (m.start(), m.end()) if m else (hi, _INF)
        if first > -_INF and last < _INF:
            insort(known, (s, e, first, last))  # where the search may start: any s..e position
        return s, e

    def sentence(self, q: Quantity) -> tuple[int, int]:
        bounds = self._sentences.get(q.start)
        if bounds is None:
            bounds = self._sentences[q.start] = self.bounds(q.start, q.end)
        return bounds

    def early(self, q: Quantity) -> bool:
        """Whether every position whose sentence starts where q's does has q's sentence: true
        of a sentence shorter than WINDOW less a separator (each of its positions finds both its
        ends), and then every window cached by sentence start is the same whoever asks first,
        so a check may ask about q in any order. A longer sentence may share its start with a
        window cut WINDOW characters before a later position, with another end."""
        s, e = self.sentence(q)
        return e - s <= WINDOW - 2

    def sentence_has(self, pattern: re.Pattern[str], q: Quantity) -> bool:
        """Whether the quantity's sentence matches; cached, as many rules ask about one sentence."""
        # Keyed by id: a compiled pattern's hash reads all its code each time (sre's
        # pattern_hash), and the rule file's patterns live as long as the guardrail.
        key = id(pattern)
        if key in self._searchers:
            search = self._searchers[key]
        else:
            search = self._searchers[key] = self._searcher(pattern)
        if search is None:
            return False
        s, e = self.sentence(q)
        found = self._searches.get((key, s))
        if found is None:
            needles = self._in_sentence.get(key)
            if needles is not None and not (
                    _found(self.text, needles, s, e) if type(needles) is tuple
                    else needles.search(self.text, s, e) is not None):  # type: ignore[union-attr]
                self._searches[(key, s)] = False
                return False
            found = self._searches[(key, s)] = search(self.text, s, e) is not None
        return found

    def clause_has(self, pattern: re.Pattern[str], q: Quantity) -> bool:
        """Whether the quantity's clause (see `claim`) matches."""
        cs, ce = self.claim(q)
        key = (id(pattern), -1 - cs)  # apart from sentence_has's keys (sentence starts)
        found = self._searches.get(key)
        if found is None:
            found = self._searches[key] = windowed(pattern, self.folds)(self.text, cs, ce)
        return found

    def may_match(self, pattern: re.Pattern[str] | None) -> bool:
        """False if `pattern` (None: no pattern, True) matches in no sentence of the text."""
        if pattern is None:
            return True
        key = id(pattern)
        if key not in self._searchers:
            self._searchers[key] = self._searcher(pattern)
        return self._searchers[key] is not None

    def _searcher(self, pattern: re.Pattern[str]) -> Callable[..., Any] | None:
        """The fastest equivalent of pattern.search on this text; None if it cannot match."""
        needles, caseless, ignorecase, in_sentence = shortcuts(pattern)
        if ignorecase and self._folds is None:
            self._folds = folds_to_ascii(self.text)
        folds = ignorecase and self._folds
        self._in_sentence[id(pattern)] = None if folds else in_sentence
        if needles is not None and not folds and not any(map(self._has, needles)):
            return None
        return caseless.search if caseless is not None and not folds else pattern.search

    @property
    def folds(self) -> bool:
        """Whether the text has a character IGNORECASE equates with an ASCII letter."""
        if self._folds is None:
            self._folds = folds_to_ascii(self.text)
        return self._folds

    def _has(self, needle: str) -> bool:
        """needle in text, remembered: patterns share needles ("tall"), and each absent one
        costs a pass over the text."""
        found = self._needles.get(needle)
        if found is None:
            found = self._needles[needle] = needle in self.text
        return found

    def _whole_has(self, pattern: re.Pattern[str]) -> bool:
        return pattern.search(self.text) is not None

    def clause(self, q: Quantity) -> tuple[int, int]:
        s, e = self.sentence(q)
        text = self.text
        for m in _CLAUSE_BREAK.finditer(text, s, q.start):
            if not _in_arithmetic(text, m.start()):
                s = m.end()
        for m in _CLAUSE_BREAK.finditer(text, q.end, e):
            if not _in_arithmetic(text, m.start()):
                return s, m.start()
        return s, e

    def claim(self, q: Quantity) -> tuple[int, int]:
        """The clause, with what encloses a parenthesis: "option D (16 m/s) is impossible"."""
        found = self._claims.get(q.start)
        if found is None:
            found = self._claims[q.start] = self._claim(q)
        return found

    def _claim(self, q: Quantity) -> tuple[int, int]:
        cs, ce = self.clause(q)
        text = self.text
        if cs and text[cs - 1] == "(":
            s, _ = self.sentence(q)
            for m in _CLAUSE_BREAK.finditer(text, s, cs - 1):
                s = m.end()
            cs = s
        if ce < len(text) and text[ce] == ")":
            _, e = self.sentence(q)
            m = _CLAUSE_BREAK.search(text, ce + 1, e)
            ce = m.start() if m else e
        return cs, ce
