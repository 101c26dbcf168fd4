"""Speed changes between moments said in different sentences: "At 4.2 s the hatchback is doing
about 100 km/h. ... by 4.9 s it is completely stationary." is 100 km/h to 0 in at most 0.7 s,
a deceleration of at least 40 m/s² (4 g), though no sentence says so.

A *state* is a speed (a stated one, or zero: "stationary", "stopped", "at rest") in a sentence
that names a moment of the clip ("at 4.2 s", "by 4.9 s"). Two states of different speeds, in
sentences of one paragraph at most two apart, give |v1 - v0| over the time between their
moments; where a sentence names several moments, the pair furthest apart is used, so the value
is the smallest the text allows. The rule (derived.py) asks whether both sentences are about
the same object and whether either dismisses the value, as for any derivation.

Cost: only with a zero state and a speed, both next to a moment, is a sentence looked up; most
texts stop at the first test.
"""
from __future__ import annotations

import re
from bisect import bisect_left

from app.guardrail.kinematics import Derivation, _made
from app.guardrail.route import moment_events
from app.guardrail.motion_cues import _DIM, _END, _MOMENT_BEFORE, _START, _value
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText

# At rest at a moment: "is stopped at the meter", "by 4.9 s it is stationary", "comes to rest".
# Not "stops to let": a state, not an intention; not "starts": that is leaving it.
_AT_REST = re.compile(r"\b(?:(?:is|was|are|were|sits?|sat|stands?|stood|waits?|waited|remains?|"
                      r"stays?)\s+(?:\w+\s+)?(?:stopped|stationary|at (?:a )?(?:standstill|rest))|"
                      r"(?:completely|fully|totally) (?:stationary|stopped|at rest)|"
                      r"(?:comes?|came) to (?:a )?(?:complete |full |dead )?(?:rest|standstill|stop))\b")
# Leaving rest at a moment is a speed of zero then too (round 6): "It pulls away at 2.0 s";
# route.py finds those sentences in its one pass over the clip's moments.
_REACH = 2  # sentences apart, at most
_SPAN = 600  # characters either side of a standstill's sentence where its other state may be
# Words every _AT_REST match contains one of.
_NEEDLES = ("stop", "stationary", "standstill", " rest")
_STOP_BEFORE = ("to a ", "complete ", "full ", "dead ")


def between_moments(st: ScannedText, floor: float) -> list[Derivation]:
    """Speed changes between the moments of a paragraph's sentences, above `floor`."""
    key = ("moments", floor)
    found = st.memo.get(key)
    if found is not None:
        return found
    found = st.memo[key] = []
    low, entries = st.text, st.raw_quantities
    at_rest: dict[int, bool] = {}  # by sentence start
    rests = _rest_sentences(st, at_rest)
    if not rests:
        return found
    speed_entries = [r for r in entries if r[_DIM] == "speed"]
    if not speed_entries:
        return found
    speeds = [r[_START] for r in speed_entries]
    times = [r for r in entries if r[_DIM] == "time"]
    at = [r[_START] for r in times]
    is_moment: dict[int, bool] = {}

    def moments(a: int, b: int) -> list[tuple]:
        """The moments ("at 2 s", "by 4 s") among the times of low[a:b]."""
        out = []
        for r in times[bisect_left(at, a):bisect_left(at, b)]:
            m = is_moment.get(r[_START])
            if m is None:
                m = is_moment[r[_START]] = _MOMENT_BEFORE.search(
                    low, max(0, r[_START] - 24), r[_START]) is not None
            if m:
                out.append(r)
        return out

    for s, e in rests:
        zero = moments(s, e)
        k = bisect_left(speeds, s)
        if not zero or (k < len(speeds) and speeds[k] < e):
            continue  # no moment, or a speed of its own: _sentence's business
        para = (low.rfind("\n\n", max(0, s - _SPAN), s), low.find("\n\n", e, e + _SPAN))
        lo = max(s - _SPAN, para[0] + 2 if para[0] >= 0 else 0)
        hi = min(e + _SPAN, para[1] if para[1] >= 0 else len(low))
        # The other state's sentence has a speed: few texts have one near a standstill.
        seen = {s}
        for v in speed_entries[bisect_left(speeds, lo):bisect_left(speeds, hi)]:
            s1, e1 = st.bounds(v[_START], v[_END])
            if s1 in seen:
                continue
            seen.add(s1)
            moving = moments(s1, e1)
            if not moving:
                continue
            gap = low[e1:s] if s1 < s else low[e:s1]
            if gap.count(". ") > _REACH:
                continue
            rest1 = at_rest.get(s1)
            if rest1 is None:
                rest1 = at_rest[s1] = _AT_REST.search(low, s1, e1) is not None
            if rest1:
                continue
            here = [q for q in speed_entries[bisect_left(speeds, s1):bisect_left(speeds, e1)]]
            d = _derivation(st, floor, zero, moving, here)
            if d is not None:
                found.append(d)
    return found


def _rest_sentences(st: ScannedText, at_rest: dict[int, bool]) -> list[tuple[int, int]]:
    """Sentences that say something is at rest, in order. Each pass over a 16,000-character
    text costs ~8 µs here, so four words are looked for with str.find (every _AT_REST match
    holds one) and the pattern is tried only around them, never over the whole text."""
    low, hits = st.text, []
    for word in _NEEDLES:
        i = low.find(word)
        while i >= 0:
            # "stop" only as "stopped" or "to a / complete / full / dead stop"
            if word != "stop" or low.startswith("stopped", i) or \
                    low.endswith(_STOP_BEFORE, max(0, i - 9), i):
                hits.append(i)
            i = low.find(word, i + 1)
    leaves = moment_events(st)[1]
    starts = {s for s, _ in leaves}
    hits.sort()
    if starts:
        hits = sorted(hits + list(starts))
    found: list[tuple[int, int]] = []
    done = -1
    for i in hits:
        if i < done:
            continue
        s, e = st.bounds(i, i + 1)
        if i in starts:
            # At rest only until its moment: as the other state it may be the moving one
            # ("it pulls away, and at 4.0 s it is doing 120 km/h").
            done = e
            found.append((s, e))
        elif _AT_REST.search(low, max(s, i - 40), min(e, i + 12)) is not None:
            done = e
            at_rest[s] = True
            found.append((s, e))
    return found


def _derivation(st: ScannedText, floor: float, zero: list[tuple], moving: list[tuple],
                speeds: list[tuple]) -> Derivation | None:
    low, raw = st.text, st.raw
    v = min(speeds, key=lambda q: _value(low, q))
    # The pair of moments furthest apart: the smallest value the text allows.
    z, m = max(((a, b) for a in zero for b in moving),
               key=lambda p: abs(_value(low, p[0]) - _value(low, p[1])))
    dt = abs(_value(low, z) - _value(low, m))
    if dt <= 0 or _value(low, v) / dt <= floor:
        return None
    text = lambda r: raw[r[_START]:r[_END]]  # noqa: E731
    said = (f"{text(v)} to 0 between {text(m)} and {text(z)}" if _value(low, z) > _value(low, m)
            else f"0 to {text(v)} between {text(z)} and {text(m)}")
    return _made(st, "acceleration", _value(low, v) / dt, said, v, (v, z, m))._replace(
        also=Quantity(_value(low, z), "time", z[_START], z[_END]))
