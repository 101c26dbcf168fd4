"""Falls between moments said in different sentences (round 6): "opens the gripper at about
4.30 s, with the block roughly 1 m above the floor. It's on the ground by 4.42 s." is a 1 m fall
in 0.12 s, 2h/t² = 139 m/s², though free fall takes 0.45 s.

A release ("opens the gripper", "lets go", "tips off the edge") at one moment, a landing ("hits
the floor", "on the ground by", "lands") at a later one in the next sentences of the paragraph,
and a height said as such ("1 m above the floor", "a working height of around 0.75 m"): the
smallest height and the moments furthest apart give the smallest value. The free-fall rule
(derived.py) checks it, and asks the release's and landing's clauses about what pushes it down.

Cost: the events come from route.py's one pass over the clip's moments (said before each moment
in its sentence); a paragraph is read only with both a release and a landing.
"""
from __future__ import annotations

import re

from app.guardrail.kinematics import Derivation, _made
from app.guardrail.motion_cues import _DIM, _END, _START, _value
from app.guardrail.route import moment_events
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText

_HEIGHT_AFTER = re.compile(r"\s+(?:above|high\b|up\b|off the (?:floor|ground))")
_HEIGHT_WORDS = re.compile(r"\bheight\b")
_REACH = 3  # sentences apart, at most


def falls_between(st: ScannedText) -> list[Derivation]:
    """2h/t² of the paragraph's releases and landings (see the docstring)."""
    found = st.memo.get("falls")
    if found is not None:
        return found
    found = st.memo["falls"] = []
    low = st.text
    events = moment_events(st)[0]
    releases = [(e[2], e[3]) for e in events if e[0] == "release"]
    landings = [(e[2], e[3]) for e in events if e[0] == "land"]
    if not releases or not landings:
        return found
    for a, sa in releases:
        for b, sb in landings:
            ta, tb = _value(low, a), _value(low, b)
            if tb <= ta or "\n\n" in low[sa:sb] or low.count(". ", sa, sb) > _REACH:
                continue
            h = _height(st, sa, b[_START])
            if h is None:
                continue
            hv = _value(low, h)
            raw = st.raw
            said = (f"a {raw[h[_START]:h[_END]]} fall between {raw[a[_START]:a[_END]]} and "
                    f"{raw[b[_START]:b[_END]]}")
            found.append(_made(st, "fall", 2 * hv / (tb - ta) ** 2, said, h, (a, b))._replace(
                also=Quantity(ta, "time", a[_START], a[_END]), kind="route"))
    return found


def _height(st: ScannedText, lo: int, hi: int) -> tuple | None:
    """The smallest height said between 200 characters before lo and hi."""
    low, best = st.text, None
    for r in st.raw_quantities:
        if r[_START] >= hi:
            break
        if r[_DIM] != "length" or r[_START] < lo - 200:
            continue
        if _HEIGHT_AFTER.match(low, r[_END]) or \
                _HEIGHT_WORDS.search(low, *st.bounds(r[_START], r[_END])):
            if best is None or _value(low, r) < _value(low, best):
                best = r
    return best
