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

from app.guardrail.kinematics import Derivation, _made
from app.guardrail.motion_cues import _DIM, _END, _MOMENT_BEFORE, _START, _value
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText

# At rest at a moment: "is stopped at the meter", "by 4.9 s it is stationary", "comes to rest".
# Not "stops to let": a state, not an intention; not "starts": that is leaving it.
_AT_REST = re.compile(r"\b(?:(?:is|was|are|were|sits?|sat|stands?|stood|waits?|waited|remains?|"
                      r"stays?)\s+(?:\w+\s+)?(?:stopped|stationary|at (?:a )?(?:standstill|rest))|"
                      r"(?:completely|fully|totally) (?:stationary|stopped|at rest)|"
                      r"(?:comes?|came) to (?:a )?(?:complete |full |dead )?(?:rest|standstill|stop))\b")
_REACH = 2  # sentences apart, at most


def between_moments(st: ScannedText, floor: float) -> list[Derivation]:
    """Speed changes between the moments of a paragraph's sentences, above `floor`."""
    key = ("moments", floor)
    found = st.memo.get(key)
    if found is not None:
        return found
    found = st.memo[key] = []
    low, entries = st.text, st.raw_quantities
    if not any(w in low for w in ("stopped", "stationary", "rest", "standstill", "stop")):
        return found
    moments = [r for r in entries if r[_DIM] == "time" and
               _MOMENT_BEFORE.search(low, max(0, r[_START] - 24), r[_START])]
    if len(moments) < 2 or not any(r[_DIM] == "speed" for r in entries):
        return found
    # Sentences with a moment: (start, end, moments, speeds, at rest).
    sentences: list[tuple[int, int, list[tuple], list[tuple], bool]] = []
    for r in moments:
        if sentences and r[_START] < sentences[-1][1]:
            sentences[-1][2].append(r)
            continue
        s, e = st.bounds(r[_START], r[_END])
        speeds = [q for q in entries if q[_DIM] == "speed" and s <= q[_START] < e]
        sentences.append((s, e, [r], speeds, _AT_REST.search(low, s, e) is not None))
    for i, (s0, e0, t0, v0, rest0) in enumerate(sentences):
        for s1, e1, t1, v1, rest1 in sentences[i + 1:i + 1 + _REACH]:
            if low.find("\n\n", e0, s1) >= 0 or low.count(". ", e0, s1) > _REACH:
                break
            # One sentence at rest without a speed, the other with a speed and not at rest.
            if rest0 and not v0 and v1 and not rest1:
                zero, moving, speeds = t0, t1, v1
            elif rest1 and not v1 and v0 and not rest0:
                zero, moving, speeds = t1, t0, v0
            else:
                continue
            v = min(speeds, key=lambda q: _value(low, q))
            # The pair of moments furthest apart: the smallest value the text allows.
            dt = max(abs(_value(low, a) - _value(low, b)) for a in zero for b in moving)
            if dt <= 0:
                continue
            a = _value(low, v) / dt
            if a <= floor:
                continue
            z = max(zero, key=lambda q: max(abs(_value(low, q) - _value(low, m)) for m in moving))
            m = max(moving, key=lambda q: abs(_value(low, q) - _value(low, z)))
            raw = st.raw
            order = (f"{raw[v[_START]:v[_END]]} to 0" if _value(low, z) > _value(low, m)
                     else f"0 to {raw[v[_START]:v[_END]]}")
            said = f"{order} between {raw[m[_START]:m[_END]]} and {raw[z[_START]:z[_END]]}" \
                if _value(low, z) > _value(low, m) else \
                f"{order} between {raw[z[_START]:z[_END]]} and {raw[m[_START]:m[_END]]}"
            found.append(_made(st, "acceleration", a, said, v, (v, z, m))._replace(
                also=Quantity(_value(low, z), "time", z[_START], z[_END])))
    return found
