"""Derived kinematics: the accelerations and speeds a sentence implies without stating them.

"The sedan comes to a stop from 100 km/h within 0.5 m" states a speed and a distance; together
they are a deceleration of v²/2d = 772 m/s² (78.7 g). Within one sentence this module combines
a speed change over a time (a = Δv/Δt), a speed change over a distance (a = |v1² - v0²| / 2d), a
distance over a time (v = d/t) and, for a stop with no speed given, a distance and a time
(a = 2d/t²). "From rest", "to a stop", "to a standstill", "comes to a halt" are a speed of zero.
The rules (derived.py) check the derived value against the bound the rule file's `quantity`
rules give the object's class in that dimension, so each class has its limits in one place.

Conservative by construction: where a sentence offers several speeds, times or distances, the
combination giving the smallest derived value is the one checked; a time or distance counts only
as the complement of "in", "within", "over", "takes", "stopping distance of" and the like, not as
a position ("within 1 m of the line", "2 m ahead"); nothing is derived from a reaction time.

Cost: nothing here walks the whole text. The scan keeps every speed, time and length aside
(`ScannedText.raw_quantities`); a time or distance is looked at only with a speed near it or a
distance right before it, and only then is its sentence read.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from typing import Iterator, NamedTuple

from app.guardrail.motion_cues import (_AFTER_SIGNAL, _BARE_BEFORE, _CARRY, _DIM, _END,
                                       _FACTOR, _FALL, _FALL_WORDS, _aside_of_path, _FROM_ZERO, _FROM_ZERO_WORDS,
                                       _LATER, _LINK,
                                       _FURTHER, _MOMENT_AFTER, _MOMENT_BEFORE, _MOVED,
                                       _NUM_END, _POSITION_AFTER, _PRECEDED, _START,
                                       _STOP_WORDS, _ZERO, _ZERO_WORDS, _complement, _falls, _says,
                                       _speed_in_sentence, _value, _word_times)
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText



class Derivation(NamedTuple):
    dimension: str  # acceleration | speed | fall (an acceleration from a fall)
    value: float  # SI
    said: str  # "100 km/h to 0 in 0.5 m": the arithmetic, written out only for a finding
    start: int  # span in the field's text
    end: int
    anchor: Quantity  # the quantity whose clause says what moves
    also: Quantity | None = None  # a quantity of another sentence the derivation used
    # "route" (route.py): events of separate clauses, each asked about negations in its own
    # clause only ("it doesn't run" in another clause of its sentence says nothing of it)
    kind: str = ""


def derivations(st: ScannedText) -> list[Derivation]:
    """What the field's sentences imply, worked out once per field for every rule."""
    found = st.memo.get("kinematics")
    if found is None:
        found = st.memo["kinematics"] = list(_derive(st))
    return found


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
        if (m is None or (r[_DIM] == "time" and m.group(1) == "retfa")) and not (
                r[_DIM] == "time" and _AFTER_SIGNAL.match(low, r[_END])):  # "after 2 s": a moment
            # ... except in a fall: "hits the floor 0.1 s later", "lands after 0.1 s".
            if r[_DIM] == "time" and (m is not None or _LATER.match(low, r[_END])) and \
                    _falls(low, r):
                s, e = st.bounds(r[_START], r[_END])
                last_end = e
                if starts is None:
                    starts = [r[_START] for r in entries]
                yield from _fall(st, s, e, entries[bisect_left(starts, s):bisect_left(starts, e)],
                                 [r])
            elif r[_DIM] == "length" and _FURTHER.match(low, r[_END]):
                # "enters at 2.0 s and reaches the junction, 400 m further on, at about 11 s"
                s, e = st.bounds(r[_START], r[_END])
                if starts is None:
                    starts = [r[_START] for r in entries]
                here = entries[bisect_left(starts, s):bisect_left(starts, e)]
                found = _between(st, s, e, here, r)
                if found is not None:
                    last_end = e
                    yield found
            if r[_DIM] == "length" and not _POSITION_AFTER.match(low, r[_END]):
                # "moves only about 3 m further before it is stationary": with no preposition,
                # a stop carried from an earlier speed may still have travelled it (carried.py
                # asks how the sentence says so, and only of a value a rule could flag); "2 m
                # ahead", "1 m from the line" are positions.
                _keep_for_carry(st, low, speeds, r)
            continue
        if not (_speed_in_sentence(low, speeds, r[_START]) or r[_DIM] == "time" and (
                (i and entries[i - 1][_DIM] == "length" and
                 r[_START] - entries[i - 1][_END] <= 40) or  # "covers 30 m in 2 s"
                (i + 1 < len(entries) and entries[i + 1][_DIM] == "length" and
                 entries[i + 1][_START] - r[_END] <= 40))):  # "takes 4 s to walk 60 m"
            # Maybe a stop whose speed was said in the sentences before: a speed within reach
            # and a stop word near the number. Kept for `carried`, asked only by a rule that
            # could flag the result.
            _keep_for_carry(st, low, speeds, r)
            continue
        if (_MOMENT_AFTER if r[_DIM] == "time" else _POSITION_AFTER).match(low, r[_END]):
            continue
        s, e = st.bounds(r[_START], r[_END])
        last_end = e  # one look per sentence
        if starts is None:
            starts = [r[_START] for r in entries]
        yield from _sentence(st, s, e, entries[bisect_left(starts, s):bisect_left(starts, e)])


def _keep_for_carry(st: ScannedText, low: str, speeds: list[int], r: tuple) -> None:
    """Keep a time or length for `carried` (carried.py) if a speed is within reach before it
    and a stop word near it."""
    k = bisect_left(speeds, r[_START])
    if k and speeds[k - 1] >= r[_START] - _CARRY:
        near = low[max(0, r[_START] - 120):r[_END] + 60]
        for w in _STOP_WORDS:
            if w in near:
                st.memo.setdefault("carry", []).append(r)
                return


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
        if _MOVED.search(low, max(s, d[_START] - 60), d[_START]) or _aside_of_path(low, s, d):
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


def _between(st: ScannedText, s: int, e: int, entries: list[tuple],
             d: tuple) -> Derivation | None:
    """A distance covered between the first and the last moment its sentence names: the
    longest interval, so the smallest speed. The first moment's clause says who moves (the
    distance's may name a landmark: "the bridge, 300 m further on")."""
    low = st.text
    moments = [r for r in entries if r[_DIM] == "time" and r[_NUM_END] > 0 and
               _MOMENT_BEFORE.search(low, max(s, r[_START] - 24), r[_START])]
    if len(moments) < 2:
        return None
    first = min(moments, key=lambda r: _value(low, r))
    last = max(moments, key=lambda r: _value(low, r))
    dt = _value(low, last) - _value(low, first)
    if dt <= 0:
        return None
    raw = st.raw
    return _made(st, "speed", _value(low, d) / dt,
                 f"{raw[d[_START]:d[_END]]} between {raw[first[_START]:first[_END]]} and "
                 f"{raw[last[_START]:last[_END]]}", first, (d, first, last))


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


def _made(st: ScannedText, dimension: str, value: float, said: str, by: tuple,
          parts: tuple[tuple, ...]) -> Derivation:
    start, end = min(p[_START] for p in parts), max(p[_END] for p in parts)
    anchor = Quantity(value, dimension, by[_START], by[_END])
    return Derivation(dimension, value, said, start, end, anchor)
