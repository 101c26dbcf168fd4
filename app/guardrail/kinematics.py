"""Derived kinematics: the accelerations and speeds a sentence implies without stating them.

"The sedan comes to a stop from 100 km/h within 0.5 m" states a speed and a distance; together
they are a deceleration of v²/2d = 772 m/s² (78.7 g). Within one sentence this module combines
a speed change over a time (a = Δv/Δt), a speed change over a distance (a = |v1² - v0²| / 2d), a
distance over a time (v = d/t) and, for a stop with no speed given, a distance and a time
(a = 2d/t²). "From rest", "to a stop", "to a standstill", "comes to a halt" are a speed of zero.
The rules check the derived value against the bound the rule file's `quantity` rules give the
object's class in that dimension, so each class has its limits in one place.

Conservative by construction: where a sentence offers several speeds, times or distances, the
combination giving the smallest derived value is the one checked; a time or distance counts only
as the complement of "in", "within", "over", "takes", "stopping distance of" and the like, not as
a position ("within 1 m of the line", "2 m ahead"); nothing is derived from a reaction time.

Cost: nothing here walks the whole text. The scan keeps every speed, time and length aside
(`ScannedText.raw_quantities`); a time or distance is looked at only with a speed near it or a
distance right before it, and only then is its sentence read.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from typing import ClassVar, Iterable, Iterator, Mapping, NamedTuple

from app.guardrail.base import Document, Finding, Rule
from app.guardrail.quantities import QuantityRule
from app.guardrail.scan import Quantity, _alternation
from app.guardrail.scanned import ScannedText

G = 9.80665
_NEAR_BEFORE, _NEAR_AFTER = 200, 120  # how far from a time or distance a speed may be
# What makes a time a duration and a length a distance travelled: the word before it, past
# qualifiers ("in just under 2 s", "stopping distance of about 3 m").
_PREPOSITIONS = frozenset(
    "in within over under inside across after take takes took taking need needs needed needing "
    "require requires required requiring lasts lasting spend spends spent use uses used "
    "using distance span space period stretch duration interval".split())
_QUALIFIERS = frozenset(
    "just only about roughly approximately around barely merely mere nearly almost less than some "
    "a an the its their his her next last final first remaining another approx approx. ~ ≈ "
    "of is was be would will : = him them it us me".split())


def _backwards(words: frozenset[str]) -> str:
    """The words reversed, as an alternation grouped by first character (see scan.py)."""
    return _alternation(sorted((w[::-1] for w in words), key=len, reverse=True))


# Matched on the reversed text at a number's start: one anchored match reads what precedes the
# number, backwards. Possessive, and grouped by first character: as cheap as any match call.
_PRECEDED = re.compile(
    rf"[~≈]?\s(?:(?:{_backwards(_QUALIFIERS)})\s)*+({_backwards(_PREPOSITIONS)})(?![a-z])")


# ... and what makes it something else: "within 1 m of the line", "in 2 s from now".
_POSITION_AFTER = re.compile(
    r"\s*(?:of\b(?!\s+(?:where|the point where|travel|braking|movement|motion))|short\b|before\b|behind\b|ahead\b|away\b|in front\b|clear\b|apart\b|beyond\b|"
    r"past\b|wide\b|tall\b|high\b|deep\b|radius\b|gap\b|"
    r"from\b(?!\s+(?:about\s+|roughly\s+|around\s+|approximately\s+)?(?:[0-9]|rest\b|a standstill|"
    r"standstill|a stop\b|zero\b)))")
_MOMENT_AFTER = re.compile(r"\s*(?:of\b|later\b|earlier\b|ago\b|into\b|mark\b|"
                           r"intervals?\b|each\b|per\b|from now\b|apart\b|delay\b|gap\b|headway\b)")
# A speed of zero said in words. Each pattern opens with the character before a word, so that
# sre skips from word start to word start instead of trying every alternative at every position.
_ZERO = re.compile(
    r"[^a-z0-9](?:(?:from|to|into)\s+(?:a\s+)?(?:complete\s+|full\s+|dead\s+|total\s+)?"
    r"(?:rest|standstill|stop|halt|zero|stationary|standing start|0(?![0-9.,]))\b"
    r"|(?:stops|stopped|stopping|halts|halted|halting|standstill|stationary)\b"
    r"|pull(?:s|ed)? up\b(?!\s+(?:to|beside|alongside|next|behind|at))"
    r"|stop\b(?!\s+(?:line|sign|bar|light|zone|position|point|marker))"
    r"|at rest\b)|[^a-z0-9.,]0\s*(?:-|–|to)\s*[0-9]")
_FROM_ZERO = re.compile(
    r"[^a-z0-9](?:from\s+(?:a\s+)?(?:complete\s+|full\s+|dead\s+)?(?:rest|standstill|stop|zero|"
    r"stationary|standing start|0(?![0-9.,]))|standing start\b|pulls? away\b|sets? off\b|"
    r"starts? (?:moving|off)\b)|[^a-z0-9.,]0\s*(?:-|–|to)\s*[0-9]")
# Words one of which every match of _ZERO / _FROM_ZERO contains: a few `in` tests on the
# sentence are far cheaper than searching it with the patterns (each position tries them all).
_ZERO_WORDS = ("rest", "standstill", "stop", "halt", "zero", "stationary", "standing", "0",
               "pull")
_FROM_ZERO_WORDS = ("from", "0", "standing", "pull", "set", "start")


def _says(pattern: re.Pattern[str], words: tuple[str, ...], low: str, s: int, e: int) -> bool:
    segment = low[s:e]
    return any(w in segment for w in words) and pattern.search(low, max(0, s - 1), e) is not None


# Between two speeds of one change: "from 50 km/h to 80 km/h", "60 km/h, dropping to 20 km/h".
_LINK = re.compile(
    r"\s*,?\s*(?:(?:and|then|and then|before|eventually|finally)\s+)?(?:(?:slowing|dropping|"
    r"falling|decelerating|accelerating|speeding up|climbing|rising|going|getting|braking)\s+)?"
    r"(?:all the way\s+|right\s+)?(?:down\s+|up\s+)?(?:to|-|–|→|until|till|into)\s+"
    r"(?:about\s+|roughly\s+|around\s+|approximately\s+|nearly\s+|almost\s+|just\s+|only\s+|~)?")
# A bare number that shares the next speed's unit: "from 80 to 30 km/h", "0-100 km/h".
_BARE_BEFORE = re.compile(r"(?:\bfrom\s+([0-9]+(?:\.[0-9]+)?)|(?<![0-9.,])(0))\s*(?:to|-|–|→)\s*"
                          r"(?:about\s+|roughly\s+|around\s+)?$")
# The verb before a distance that is covered in a time: "covers 30 m in 2 s".
_MOVED = re.compile(
    r"\b(?:cover|travel|run|ran|move|drive|drove|go|goes|went|roll|sprint|cross|advance|fl(?:y|ies|ew)|"
    r"walk|swim|swam|slide|slid|ride|rode|jog|dash|race|zoom|shoot|shot|glide|cruise|coast|dart|"
    r"rush|skid|hurtle|charge|sped|trundle|traverse|clear|complete|do|does|did)\w*(?:\s+(?:a|an|"
    r"the|another|about|roughly|nearly|almost|over|just|only|approximately|around|some|full|"
    r"entire|whole|remaining|final|last|first|further|additional|distance|of|across|along|"
    r"down|up|through|past|its|their|his|her))*\s+$")
# "in half a second", "within a second": times in words (the scan only finds numbers).
_SECOND = re.compile("second")
_WORD_TIME = re.compile(r"(?<![a-z])(half a|a half|a split|a fraction of a|a quarter of a|"
                        r"a tenth of a|a couple of|a|one|two|three|four|five)\s+$")
_WORD_TIME_ENDS = (" a ", "split ", " of a ", " one ", " two ", " three ", " four ", " five ")
_WORD_VALUES = {"half a": 0.5, "a half": 0.5, "a quarter of a": 0.25, "a tenth of a": 0.1,
                "a couple of": 2.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0}


# A fall: what gravity alone does to what is let go ("the 1.5 m fall takes 0.08 s").
_FALL_WORDS = ("fall", "fell", "drop", "plummet", "plunge", "tumble")
_FALL = re.compile(r"[^a-z0-9](?:fall(?:s|ing|en)?|fell|drop(?:s|ped|ping)?|free[- ]?fall\w*|"
                   r"plummet\w*|plung\w*|tumbl\w*)\b")
# A stop said with no speed in its sentence takes the speed from the sentences before, at most
# this far back and within the paragraph ("It is doing 16 km/h. ... It stops within 4 cm.").
_CARRY = 400
_STOP_WORDS = ("stop", "halt", "standstill", "rest", "pulls up", "pulled up")


class Derivation(NamedTuple):
    dimension: str  # acceleration | speed | fall (an acceleration from a fall)
    value: float  # SI
    said: str  # "100 km/h to 0 in 0.5 m": the arithmetic, written out only for a finding
    start: int  # span in the field's text
    end: int
    anchor: Quantity  # the quantity whose clause says what moves
    also: Quantity | None = None  # a quantity of another sentence the derivation used


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def format_value(dimension: str, si: float) -> str:
    if dimension == "acceleration":
        return f"{_num(si)} m/s² ({_num(si / G)} g)"
    return f"{_num(si)} m/s ({_num(si * 3.6)} km/h)"


def format_limit(dimension: str, si: float) -> str:
    if dimension == "acceleration":
        return f"{_num(si / G)} g"
    return f"{_num(si * 3.6)} km/h" if si >= 5 else f"{_num(si)} m/s"


def derivations(st: ScannedText) -> list[Derivation]:
    """What the field's sentences imply, worked out once per field for every rule."""
    found = st.memo.get("kinematics")
    if found is None:
        found = st.memo["kinematics"] = list(_derive(st))
    return found


# Fields of a Raw, read by index in the loops below (the scan keeps plain tuples).
_START, _NUM_END, _END, _FACTOR, _DIM = range(5)


def _value(low: str, r: tuple) -> float:
    return r[_FACTOR] if r[_NUM_END] < 0 else \
        float(low[r[_START]:r[_NUM_END]].replace(",", "")) * r[_FACTOR]


def _word_times(low: str) -> list[tuple]:
    out = []
    for m in _SECOND.finditer(low):
        if not low.endswith(_WORD_TIME_ENDS, max(0, m.start() - 8), m.start()):
            continue  # "2 seconds", "a second car": one C call settles most
        after = m.end() + (low[m.end():m.end() + 1] == "s")
        if low[after:after + 1].isalpha():  # "secondary"
            continue
        w = _WORD_TIME.search(low, max(0, m.start() - 20), m.start())
        if w:
            out.append((w.start(1), -1, after, _WORD_VALUES.get(w.group(1), 1.0), "time"))
    return out


def _complement(st: ScannedText, r: tuple) -> bool:
    """Whether the time or length is a duration or a distance travelled."""
    low = st.text
    m = _PRECEDED.match(st.reversed, len(low) - r[_START])
    if m is None or (r[_DIM] == "time" and m.group(1) == "retfa"):  # "after 2 s": a moment
        return False
    after = _MOMENT_AFTER if r[_DIM] == "time" else _POSITION_AFTER
    return after.match(low, r[_END]) is None


def _speed_in_sentence(low: str, speeds: list[int], at: int) -> bool:
    """Whether the nearest speed before or after `at` (within reach) is in its sentence: two
    finds, cheaper than the sentence's bounds."""
    k = bisect_left(speeds, at)
    if k and speeds[k - 1] >= at - _NEAR_BEFORE and low.find(". ", speeds[k - 1], at) < 0 and \
            low.find("\n", speeds[k - 1], at) < 0:
        return True
    return k < len(speeds) and speeds[k] <= at + _NEAR_AFTER and \
        low.find(". ", at, speeds[k]) < 0 and low.find("\n", at, speeds[k]) < 0


def _derive(st: ScannedText) -> Iterator[Derivation]:
    low, entries = st.text, st.raw_quantities
    extra = _word_times(low) if "second" in low else None
    if extra:
        entries = sorted(entries + extra)
    speeds = [r[_START] for r in entries if r[_DIM] == "speed"]
    if not speeds and len(entries) < 2:
        return
    starts, last_end = None, -1
    rev, n, preceded = st.reversed, len(low), _PRECEDED.match
    for i, r in enumerate(entries):
        # Most of an output's times and lengths are neither durations nor distances travelled:
        # the words before the number settle them.
        if r[_DIM] == "speed" or r[_START] < last_end:
            continue
        m = preceded(rev, n - r[_START])
        if m is None or (r[_DIM] == "time" and m.group(1) == "retfa"):  # "after 2 s": a moment
            # ... except in a fall: "hits the floor 0.1 s later", "lands after 0.1 s".
            if r[_DIM] == "time" and (m is not None or _LATER.match(low, r[_END])) and \
                    _falls(low, r):
                s, e = st.bounds(r[_START], r[_END])
                last_end = e
                if starts is None:
                    starts = [r[_START] for r in entries]
                yield from _fall(st, s, e, entries[bisect_left(starts, s):bisect_left(starts, e)],
                                 [r])
            continue
        if not (_speed_in_sentence(low, speeds, r[_START]) or r[_DIM] == "time" and (
                (i and entries[i - 1][_DIM] == "length" and
                 r[_START] - entries[i - 1][_END] <= 40) or  # "covers 30 m in 2 s"
                (i + 1 < len(entries) and entries[i + 1][_DIM] == "length" and
                 entries[i + 1][_START] - r[_END] <= 40))):  # "takes 4 s to walk 60 m"
            # Maybe a stop whose speed was said in the sentences before: a speed within reach
            # and a stop word near the number. Kept for `carried`, asked only by a rule that
            # could flag the result.
            k = bisect_left(speeds, r[_START])
            if k and speeds[k - 1] >= r[_START] - _CARRY and \
                    any(w in low[max(0, r[_START] - 120):r[_END] + 40] for w in _STOP_WORDS):
                st.memo.setdefault("carry", []).append(r)
            continue
        if (_MOMENT_AFTER if r[_DIM] == "time" else _POSITION_AFTER).match(low, r[_END]):
            continue
        s, e = st.bounds(r[_START], r[_END])
        last_end = e  # one look per sentence
        if starts is None:
            starts = [r[_START] for r in entries]
        yield from _sentence(st, s, e, entries[bisect_left(starts, s):bisect_left(starts, e)])


def carried(st: ScannedText, floor: float) -> list[Derivation]:
    """Stops with no speed in their sentence, from the speed of the sentences before: "The
    forklift is doing 16 km/h. It stops within 4 cm." The smallest of those speeds, with the
    longest distance or time of the stop's sentence, gives the smallest value; values not
    above `floor` (no rule could flag them) are not worked out. Whether both sentences are
    about the same object is asked by the rule, and only of a value it would flag."""
    key = ("carried", floor)
    found = st.memo.get(key)
    if found is not None:
        return found
    found = st.memo[key] = []
    derivations(st)  # collects the candidates
    low, entries, done = st.text, st.raw_quantities, -1
    starts = [r[_START] for r in entries]
    for r in st.memo.get("carry", ()):
        if r[_START] < done:
            continue
        k = bisect_left(starts, r[_START])
        para = low.rfind("\n\n", max(0, r[_START] - _CARRY), r[_START])
        lo = max(r[_START] - _CARRY, para + 2 if para >= 0 else 0)
        prior = [p for p in entries[bisect_left(starts, lo):k] if p[_DIM] == "speed"]
        if not prior:
            continue
        v = min(prior, key=lambda p: _value(low, p))
        v0, x = _value(low, v), _value(low, r)
        if x <= 0 or (v0 / x if r[_DIM] == "time" else v0 ** 2 / (2 * x)) <= floor:
            continue  # the cheap test: most stops end here
        if (_MOMENT_AFTER if r[_DIM] == "time" else _POSITION_AFTER).match(low, r[_END]) or \
                not _complement(st, r):
            continue
        s, e = st.bounds(r[_START], r[_END])
        done = e
        if v[_START] >= s:
            continue  # a speed in the same sentence: _sentence's business
        here = [q for q in entries[bisect_left(starts, s):bisect_left(starts, e)]
                if q[_DIM] in ("time", "length")]
        if any(q[_DIM] == "speed" for q in entries[bisect_left(starts, s):bisect_left(starts, e)]):
            continue
        if not _says(_ZERO, _ZERO_WORDS, low, s, e) or \
                _says(_FROM_ZERO, _FROM_ZERO_WORDS, low, s, e):
            continue
        for dim in ("time", "length"):
            group = [q for q in here if q[_DIM] == dim and _complement(st, q)]
            if not group:
                continue
            d = max(group, key=lambda q: _value(low, q))
            x = _value(low, d)
            a = v0 / x if dim == "time" else v0 ** 2 / (2 * x)
            if x <= 0 or a <= floor:
                continue
            said = f"{st.raw[v[_START]:v[_END]]} to 0 in {st.raw[d[_START]:d[_END]]}"
            found.append(_made(st, "acceleration", a, said, v, (v, d))._replace(
                also=Quantity(x, dim, d[_START], d[_END])))
    return found


def _sentence(st: ScannedText, s: int, e: int, entries: list[tuple]) -> Iterator[Derivation]:
    low, raw = st.text, st.raw
    text = lambda r: raw[r[_START]:r[_END]]  # noqa: E731
    value = lambda r: _value(low, r)  # noqa: E731
    speeds = [r for r in entries if r[_DIM] == "speed"]
    times = [r for r in entries if r[_DIM] == "time" and _complement(st, r)]
    lengths = [r for r in entries if r[_DIM] == "length" and _complement(st, r)]
    if not times and not lengths:
        return
    found: list[Derivation] = []
    if times and any(w in low[s:e] for w in _FALL_WORDS):
        found.extend(_fall(st, s, e, entries, times))
    # Speed changes: (from, to, how they read, the speed whose clause says what moves).
    changes: list[tuple[float, float, str, tuple]] = []
    paired: set[tuple] = set()
    for a, b in zip(speeds, speeds[1:]):
        if _LINK.fullmatch(low, a[_END], b[_START]):
            changes.append((value(a), value(b), f"{text(a)} to {text(b)}", a))
            paired.update((a, b))
    zero: bool | None = None  # is a speed of 0 said ("to a stop")? looked up when needed
    from_zero = None
    for r in speeds:
        if r in paired:
            continue
        # A bare number shares this speed's unit only after "to", "-" or "→" (a cheap look first).
        near = low[max(s, r[_START] - 5):r[_START]]
        m = _BARE_BEFORE.search(low, max(s, r[_START] - 24), r[_START]) \
            if ("to" in near or "-" in near or "–" in near or "→" in near) else None
        if m:
            bare = m.group(1) or m.group(2)
            changes.append((float(bare) * r[_FACTOR], value(r), f"{bare} to {text(r)}", r))
        else:
            if zero is None:
                zero = _says(_ZERO, _ZERO_WORDS, low, s, e)
            if not zero:
                continue
            v = value(r)
            if from_zero is None:
                from_zero = _says(_FROM_ZERO, _FROM_ZERO_WORDS, low, s, e)
            changes.append((0.0, v, f"0 to {text(r)}", r) if from_zero else
                           (v, 0.0, f"{text(r)} to 0", r))
    if changes:
        if times:
            t = max(times, key=value)
            v0, v1, said, by = min(changes, key=lambda c: abs(c[1] - c[0]))
            a = abs(v1 - v0) / value(t) if value(t) > 0 else 0.0
            found.append(_made(st, "acceleration", a, f"{said} in {text(t)}", by, (by, t)))
        if lengths:
            d = max(lengths, key=value)
            v0, v1, said, by = min(changes, key=lambda c: abs(c[1] ** 2 - c[0] ** 2))
            a = abs(v1 ** 2 - v0 ** 2) / (2 * value(d)) if value(d) > 0 else 0.0
            found.append(_made(st, "acceleration", a, f"{said} in {text(d)}", by, (by, d)))
    for t in times:  # a distance covered in a time: "covers 30 m in 2 s", "takes 4 s to walk 60 m"
        i = entries.index(t)
        d = entries[i - 1] if i else None
        after = entries[i + 1] if i + 1 < len(entries) else None
        if after is not None and after[_DIM] == "length" and after[_START] - t[_END] <= 40 and \
                _MOVED.search(low, t[_END], after[_START]) and \
                not re.search(r"[,;]", low[t[_END]:after[_START]]):
            dt, dd = value(t), value(after)
            if dt > 0:
                found.append(_made(st, "speed", dd / dt, f"{text(after)} in {text(t)}", t,
                                   (t, after)))
            continue
        if d is None or d[_DIM] != "length" or t[_START] - d[_END] > 40 or \
                re.search(r"[,;]", low[d[_END]:t[_START]]):
            continue
        dt, dd = value(t), value(d)
        if dt <= 0:
            continue
        if _MOVED.search(low, max(s, d[_START] - 60), d[_START]):
            found.append(_made(st, "speed", dd / dt, f"{text(d)} in {text(t)}", d, (d, t)))
        elif not changes and d in lengths and (zero if zero is not None else
                                               _says(_ZERO, _ZERO_WORDS, low, s, e)):
            found.append(_made(st, "acceleration", 2 * dd / dt ** 2,
                               f"{text(d)} to or from a standstill in {text(t)}", d, (d, t)))
    # One finding per sentence and dimension: the strongest of the (each conservative) readings.
    best: dict[str, Derivation] = {}
    for d in found:
        if d.dimension not in best or d.value > best[d.dimension].value:
            best[d.dimension] = d
    yield from best.values()


_LATER = re.compile(r"\s+later\b")


def _falls(low: str, r: tuple) -> bool:
    """Whether a fall is said shortly before the time (a few `in` tests first)."""
    near = low[max(0, r[_START] - 150):r[_START]]
    return any(w in near for w in _FALL_WORDS) and \
        _FALL.search(low, max(0, r[_START] - 151), r[_START]) is not None


def _fall(st: ScannedText, s: int, e: int, entries: list[tuple],
          times: list[tuple]) -> Iterator[Derivation]:
    """A fall from a height in a time takes at least sqrt(2h/g), so 2h/t² is at most g. The
    smallest height and the longest time give the smallest value."""
    low = st.text
    if not _FALL.search(low, max(0, s - 1), e):
        return
    heights = [r for r in entries if r[_DIM] == "length"]
    if not heights:
        return
    h, t = min(heights, key=lambda r: _value(low, r)), max(times, key=lambda r: _value(low, r))
    if _value(low, t) > 0:
        raw = st.raw
        yield _made(st, "fall", 2 * _value(low, h) / _value(low, t) ** 2,
                    f"a {raw[h[_START]:h[_END]]} fall in {raw[t[_START]:t[_END]]}", h, (h, t))


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


def _made(st: ScannedText, dimension: str, value: float, said: str, by: tuple,
          parts: tuple[tuple, ...]) -> Derivation:
    start, end = min(p[_START] for p in parts), max(p[_END] for p in parts)
    anchor = Quantity(value, dimension, by[_START], by[_END])
    return Derivation(dimension, value, said, start, end, anchor)


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
                found = found + carried(st, floor)
            for d in found:
                if d.dimension != self.dimension or d.value <= floor:
                    continue
                # Finding what the sentence is about is the costly part: first, whether any
                # class whose bound the value breaks can be mentioned there at all.
                broken = frozenset(c for c, v in self.limits.items() if d.value > v * self.tolerance)
                if not broken or not st.may_mention(broken, d.anchor):
                    continue
                if self._unsaid(st, d):
                    continue
                subjects = st.subjects(d.anchor, self.limits)
                limits = {c: self.limit(st, c, d.anchor) for c in subjects if c in self.limits}
                bounded = [c for c, v in limits.items() if v is not None]
                if not bounded or any(d.value <= limits[c] * self.tolerance for c in bounded):
                    continue
                if d.also is not None and not _same_object(subjects, st.subjects(d.also)):
                    continue
                cls = bounded[0]
                arithmetic = f"{d.said} is {format_value(self.dimension, d.value)}"
                yield doc.finding(self, source, d.start, d.end, arithmetic=arithmetic,
                                  value=format_value(self.dimension, d.value),
                                  object=subjects[cls],
                                  limit=format_limit(self.dimension, limits[cls]))

    def _unsaid(self, st: ScannedText, d: Derivation) -> bool:
        """The sentences negate it ("cannot stop within 5 m") or dismiss it."""
        # A stop carried from a speed said before is negated or conditional in its own sentence;
        # the speed's sentence need only state the speed ("at 16 km/h, clearly too fast").
        for q in (d.anchor, d.also):
            if q is not None and ((self.unless is not None and (d.also is None or q is d.also)
                                   and st.sentence_has(self.unless, q)) or st.not_claimed(q)):
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
            for d in derivations(st):
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
