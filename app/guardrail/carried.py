"""Stops whose speed was said in an earlier sentence: "The forklift is doing 16 km/h. It stops
within 4 cm." (kinematics.py keeps the candidates: a time or length with a speed within reach
before it and a stop word near it.)

Round 6: the distance of such a stop need not follow a preposition. "The bumper moves only
about 3 m further before the car is fully stationary" and "the truck creeps a hand's width,
about 5 cm, and it's stationary" say a distance travelled through the verb before it or
"further" after it; a length after a position word ("2 m short of the line") is still no
distance travelled.
"""
from __future__ import annotations

import re
from bisect import bisect_left

from app.guardrail.kinematics import Derivation, _made, derivations
from app.guardrail.motion_cues import (_CARRY, _DIM, _END, _FROM_ZERO, _FROM_ZERO_WORDS,
                                       _FURTHER, _MOMENT_AFTER, _POSITION_AFTER, _START, _ZERO,
                                       _ZERO_WORDS, _complement, _says, _value)
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText

# A verb of motion up to 40 characters before the length, in its clause: "moves only about",
# "rolls a further", "creeps a hand's width, about", "slides on for".
_TRAVEL_VERB = re.compile(
    r"\b(?:mov(?:e|es|ed|ing)|roll(?:s|ed|ing)?|creep(?:s|ing)?|crept|slid(?:e|es|ing)?|"
    r"travel+(?:s|ed|ing)?|cover(?:s|ed|ing)?|coast(?:s|ed|ing)?|drift(?:s|ed|ing)?|"
    r"advanc(?:e|es|ed|ing)|carr(?:y|ies|ied) on|continu(?:e|es|ed|ing))\b[^.;:!?\n]{0,40}$")


# The speed said before is not the one the stop starts from when the text slows it in between
# ("Near the rack it slows to a crawl.") or the stop is a slow manoeuvre of its own ("it creeps
# the last 2 m", "moves forward 0.5 m to line up with the kerb").
_SLOWED = re.compile(r"\b(?:slow(?:s|ed|ing)\b|decelerat\w*|eases? off|eased off|coast\w*|crawl\w*|"
                     r"creep\w*|crept|inch(?:es|ed|ing)? (?:forward|along|up)|edg(?:es|ed|ing) "
                     r"(?:forward|up)|nudg\w*|slowly|gently|gradually|(?:the )?(?:last|final) "
                     r"(?:few )?(?:\d|metre|meter|bit)|lin(?:e|es|ed|ing) up|reposition\w*|"
                     r"walking pace|shuffl\w*)")


def travelled(st: ScannedText, r: tuple) -> bool:
    """Whether a time is a duration or a length a distance travelled (see the docstring)."""
    if _complement(st, r):
        return True
    if r[_DIM] != "length":
        return False
    low = st.text
    if _FURTHER.match(low, r[_END]):
        return True
    return _POSITION_AFTER.match(low, r[_END]) is None and \
        _TRAVEL_VERB.search(low, max(0, r[_START] - 60), r[_START]) is not None


def carried(st: ScannedText, floor: float) -> list[Derivation]:
    """Stops with no speed in their sentence, from the speed of the sentences before. The
    smallest of those speeds, with the longest distance or time of the stop's sentence, gives
    the smallest value; values not above `floor` (no rule could flag them) are not worked out.
    Whether both sentences are about the same object is asked by the rule, and only of a value
    it would flag."""
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
                not travelled(st, r):
            continue
        s, e = st.bounds(r[_START], r[_END])
        done = e
        if v[_START] >= s:
            continue  # a speed in the same sentence: _sentence's business
        inside = entries[bisect_left(starts, s):bisect_left(starts, e)]
        if any(q[_DIM] == "speed" for q in inside):
            continue
        if not _says(_ZERO, _ZERO_WORDS, low, s, e) or \
                _says(_FROM_ZERO, _FROM_ZERO_WORDS, low, s, e) or \
                _SLOWED.search(low, v[_END], e) is not None:
            continue
        for dim in ("time", "length"):
            group = [q for q in inside if q[_DIM] == dim and travelled(st, q)]
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
