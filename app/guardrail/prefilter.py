"""Cheaper ways to search rule patterns (`requires`, `unless`) in lowercased text, same answers.

Rules ask "does this quantity's sentence match `requires`?" once per sentence. Two shortcuts,
both read from the pattern's parse tree, so rule authors keep writing plain regexes:

- Needles: strings one of which every match contains ("tall", "height"). Most texts contain
  none, and then a couple of `in` tests (C speed over the whole text) answer no for every
  sentence at once; a match in a sentence would be a match in the text.
- Caseless: the rule file's patterns are compiled IGNORECASE, which costs sre its literal fast
  paths (7x slower on a 20-word alternation). On lowercased text it changes nothing for a
  pattern with no upper-case or non-ASCII characters, unless the text has a dotless i or a long
  s: the only characters that str.lower() keeps and IGNORECASE equates with ASCII letters.

sre's parser is private: any surprise in the tree turns the shortcut off, never on.
"""
from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple

try:
    from re import _parser as _sre
except ImportError:  # pragma: no cover
    _sre = None  # type: ignore[assignment]

MAX_NEEDLES = 3  # each absent needle costs a pass over the text; more rarely pays off
# In a sentence (~150 characters), the needles as one alternation of literals cost less than the
# rule's own regex, which tries its look-arounds and alternatives at every position.
MAX_SENTENCE_NEEDLES = 16
# Up to this many, the needles are looked for one by one with str.find (memchr-fast) rather than
# as an alternation: sre stops at every character that opens a needle, and " height" opens with
# a space (3 µs a sentence as a regex, 0.6 µs as two finds).
MAX_FOUND_NEEDLES = 3
_FOLDS_TO_ASCII = ("\u0131", "\u017f")
_CASED = range(ord("A"), ord("Z") + 1)


class Shortcuts(NamedTuple):
    needles: tuple[str, ...] | None  # one of them is in every match
    caseless: re.Pattern[str] | None  # the pattern without IGNORECASE, where that is the same
    ignorecase: bool
    # The needles (up to MAX_SENTENCE_NEEDLES) as one alternation of literals, which sre
    # scans for in C (its first characters as a set): a cheap "no" for most sentences; up to
    # MAX_FOUND_NEEDLES, the needles themselves, for str.find.
    in_sentence: re.Pattern[str] | tuple[str, ...] | None = None


# Rule files' patterns, a handful per process, by id (a compiled pattern's hash reads all its
# code each time); each entry keeps its pattern alive, so that its id is not reused.
_cache: dict[int, tuple[re.Pattern[str], Shortcuts]] = {}
_windowed: dict[tuple[int, bool], tuple[re.Pattern[str], Any]] = {}  # the same, for windowed


def shortcuts(pattern: re.Pattern[str]) -> Shortcuts:
    entry = _cache.get(id(pattern))
    if entry is not None and entry[0] is pattern:
        return entry[1]
    try:
        tree = _sre.parse(pattern.pattern, pattern.flags).data  # type: ignore[union-attr]
        ignorecase = bool(pattern.flags & re.IGNORECASE)
        needles = _required(tree, ignorecase)
        caseless = (re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)
                    if ignorecase and _caseless(tree) else None)
    except Exception:  # noqa: BLE001 - an unexpected tree shape means no shortcut
        needles, caseless = None, None
    found = Shortcuts(tuple(needles) if needles and len(needles) <= MAX_NEEDLES else None,
                      caseless, bool(pattern.flags & re.IGNORECASE),
                      _in_sentence(needles))
    _cache[id(pattern)] = (pattern, found)
    return found


def _in_sentence(needles: list[str] | None) -> re.Pattern[str] | tuple[str, ...] | None:
    if not needles or len(needles) > MAX_SENTENCE_NEEDLES or not all(needles):
        return None
    if len(needles) <= MAX_FOUND_NEEDLES:
        return tuple(needles)
    return re.compile("|".join(map(re.escape, sorted(needles, key=len, reverse=True))))


def folds_to_ascii(low: str) -> bool:
    """Whether `low` (lowercased) has a character IGNORECASE equates with an ASCII letter."""
    return any(c in low for c in _FOLDS_TO_ASCII)


def _best(a: list[str] | None, b: list[str] | None) -> list[str] | None:
    """Fewer needles first (fewer passes over the text), then longer ones (rarer)."""
    if not b:
        return a
    if not a:
        return b
    return min(a, b, key=lambda c: (len(c), -min(map(len, c))))


def _required(items: list[tuple[Any, Any]], ignorecase: bool) -> list[str] | None:
    """Needles for a sequence: its best literal run or best required part. Under IGNORECASE
    the needles are lowercased, and the caller must rule out `folds_to_ascii` texts."""
    best: list[str] | None = None
    run: list[str] = []
    for op, av in items:
        if op is _sre.LITERAL and (not ignorecase or chr(av).isascii()):
            run.append(chr(av).lower() if ignorecase else chr(av))
            continue
        if run:
            best, run = _best(best, ["".join(run)]), []
        part = None
        if op is _sre.BRANCH:
            alternatives = [_required(alt.data, ignorecase) for alt in av[1]]
            if all(alternatives):
                part = [n for alt in alternatives for n in alt]  # type: ignore[union-attr]
        elif op is _sre.SUBPATTERN and not av[1] and not av[2]:  # scoped flags: skip
            part = _required(av[3].data, ignorecase)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            part = _required(av[2].data, ignorecase)
        best = _best(best, part)
    return _best(best, ["".join(run)] if run else None)


def _caseless(items: Any) -> bool:
    """No character in the tree that IGNORECASE would match differently on lowercased text."""
    for op, av in items:
        if op in (_sre.LITERAL, _sre.NOT_LITERAL):
            if av >= 128 or av in _CASED:
                return False
        elif op is _sre.IN:
            if not _caseless(av):
                return False
        elif op is _sre.RANGE:
            if av[1] >= 128 or (av[0] <= _CASED[-1] and av[1] >= _CASED[0]):
                return False
        elif op in (_sre.NEGATE, _sre.CATEGORY, _sre.ANY, _sre.AT):
            continue
        elif op is _sre.BRANCH:
            if not all(_caseless(alt.data) for alt in av[1]):
                return False
        elif op is _sre.SUBPATTERN:
            if av[1] or av[2] or not _caseless(av[3].data):
                return False
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
            if not _caseless(av[2].data):
                return False
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            if not _caseless(av[1].data):
                return False
        elif op is _sre.ATOMIC_GROUP:
            if not _caseless(av.data):
                return False
        else:  # back-references compare case-insensitively; anything else: unknown
            return False
    return True


def windowed(pattern: re.Pattern[str], folds: bool = False) -> Callable[[str, int, int], bool]:
    """(text, start, end) -> whether `pattern.search(text, start, end)` matches. sre
    tries a pattern that opens with an assertion ("\\b(?:weigh|mass|...)") at every position;
    its needles, as literals it can skip to, rule out most windows first (~3x cheaper). `folds`:
    the text has a character IGNORECASE equates with an ASCII letter (see folds_to_ascii)."""
    entry = _windowed.get((id(pattern), folds))
    if entry is not None and entry[0] is pattern:
        return entry[1]
    found = _windowed_search(pattern, folds)
    _windowed[(id(pattern), folds)] = (pattern, found)
    return found


def _windowed_search(pattern: re.Pattern[str], folds: bool) -> Callable[[str, int, int], bool]:
    cuts = shortcuts(pattern)
    ignorecase = cuts.ignorecase
    search = (cuts.caseless or pattern).search if not (ignorecase and folds) else pattern.search
    needles = cuts.in_sentence if not (ignorecase and folds) and _opens_with_assertion(
        pattern) else None
    if needles is None:
        return lambda text, start, end: search(text, start, end) is not None
    if type(needles) is tuple:
        def found(text: str, start: int, end: int) -> bool:
            for needle in needles:  # type: ignore[union-attr]
                if text.find(needle, start, end) >= 0:
                    return search(text, start, end) is not None
            return False
        return found
    first = needles.search  # type: ignore[union-attr]
    return lambda text, start, end: (first(text, start, end) is not None and
                                     search(text, start, end) is not None)


def _opens_with_assertion(pattern: re.Pattern[str]) -> bool:
    try:
        tree = _sre.parse(pattern.pattern, pattern.flags).data  # type: ignore[union-attr]
        return bool(tree) and tree[0][0] in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT)
    except Exception:  # noqa: BLE001 - as in shortcuts: no shortcut
        return False
