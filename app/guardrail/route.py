"""Speeds over a route between two moments said in different sentences (round 6): "passes the
200 m mark at 2.0 s ... crosses the finish line at 10.5 s" in a 400 m race is 200 m in 8.5 s;
"sets off from the aisle entrance at 3 s ... reaches the end of the 60 m aisle at 8 s" is 60 m in
5 s; "the gun fires at 0.6 s ... reaches the line at 4.7 s" in a 60 m sprint, 60 m in 4.1 s.

An *event* is a moment of the clip ("at 2.0 s", "by 3.5 s") with what happens then said just
before it in its clause: a position on a course ("the 200 m mark", "the 10 m tape", "the start
line" as 0, "the finish line" as the race's length, from "a 400 m race" in the question or the
text), a start ("sets off", "enters", "the gun fires") or an arrival at the end of a route
("reaches the far end", "arrives at the bench"). Two positions give the distance between them;
a start and an arrival need the route's length, a length said of an aisle, a course, a lane, or
"N m away", in the paragraph up to the arrival (the shortest, so the smallest speed). The pair
of moments furthest apart is used, so the value is the smallest the text allows. The rule
(derived.py) asks what moves and whether either sentence dismisses the value.

Cost: only the clip's moments are looked at (a few `in` tests on what their sentence says before
them, up to 120 characters), and a paragraph only where it has two events.
"""
from __future__ import annotations

import re

from app.guardrail.kinematics import Derivation, _made
from app.guardrail.motion_cues import _DIM, _END, _MOMENT_BEFORE, _START, _value
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText

_BEFORE = 120  # characters before a moment where its event is said
# Words one of which every event contains: cheap `in` tests before any pattern.
_CUES = ("reach", "arriv", " off", "start", "away", "enter", "leav", "mark", "tape", "the line",
         "m line", "gun", "finish", "opens", "opened", "releas", "let go", "lets go", "slip",
         "tips ", "tipped", "hits ", "hit the", "strikes", "struck", "lands", "landed",
         "on the ground", "on the floor")
# A release and a landing, for falls between moments (falls.py).
_RELEASE = re.compile(r"\b(?:opens?|opened|opening|releases?|released|lets? go|let go|tips? (?:off|"
                      r"over)|tipped (?:off|over)|slips? (?:off|out)|slipped (?:off|out))\b")
_LAND = re.compile(r"\b(?:hits?|strikes?|struck|lands?|landed|touch(?:es)? down|"
                   r"on the (?:ground|floor)|reaches the (?:ground|floor))\b")
# Leaving rest (timeline.py's states of zero speed): "pulls away", "sets off", "starts moving".
# Not "pulls out" (a lane change as often) nor "pulls off" (off the road, slowing).
_LEAVES_REST = re.compile(r"\b(?:pull(?:s|ed)? away\b(?!\s+from\s+(?!(?:the\s+|a\s+)?(?:kerb|curb|"
                          r"stop|lights?|line|junction|bay|dock|rank|standstill|rest|gate)))|"
                          r"(?:sets?|moves?|moved) off|"
                          r"start(?:s|ed)? (?:moving|rolling|to move|to roll))\b")
_POSITION = re.compile(r"(\d+(?:\.\d+)?)\s*(?:m|metres?|meters?)\s+(?:mark|tape|line|marker|"
                       r"cone|board)\b")
_ZERO_POSITION = re.compile(r"\bstart(?:ing)?[- ](?:tape|line|blocks?|gate|mark)\b|"
                            r"\b(?:the )?gun (?:fires|goes|sounds|went|fired|goes off)\b|"
                            r"\bto the gun\b")
_FINISH = re.compile(r"\bfinish(?:ing)?[- ]line\b|\b(?:crosses|crossed|reaches|reached|hits|hit) "
                     r"the line\b|\bfinishes\b|\bfinished\b")
_LEAVES = re.compile(r"\b(?:sets? off|set off|pulls? (?:off|away)|starts? (?:off|out|walking|"
                    r"moving|driving|running)|enters|entered|leaves|left the|departs|departed)\b")
# An arrival at the end of the route ("reaches the far end", "the end of the aisle") ...
_ARRIVE_END = re.compile(r"\b(?:arrives?|arrived|reaches|reached|gets? to|got to)\b[^.;]*?"
                         r"\b(?:(?:far|other|opposite) (?:end|side)|end (?:cap|of))")
# ... or somewhere else, whose distance must then be said as such ("10 m away", "the full 45 m
# down to the stations"), not as a route's length: the pick face may be anywhere in the aisle.
_ARRIVE = re.compile(r"\b(?:arrives?|arrived|reaches|reached|gets? to|got to|pulls up|docks)\b")
# A route's length: "the 60 m aisle", "the full 45 m down to", "about 10 m away", "the 10 m
# test course".
_ROUTE_AFTER = re.compile(r"\s+(?:(?:long\s+)?(?:aisle|course|test course|track|lane|straight|"
                          r"corridor|hall|run|route|path|walkway|away|long|down|across))\b")
_RACE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:m|metres?|meters?)\b(?:\s+[a-z-]+){0,2}?\s+"
                   r"(?:race|sprint|dash|heat|final|hurdles|course|run|event)\b")
_REACH = 3  # sentences apart, at most
_EVENTS = (("mark", _POSITION), ("zero", _ZERO_POSITION), ("finish", _FINISH),
           ("start", _LEAVES), ("end", _ARRIVE_END), ("arrive", _ARRIVE),
           ("release", _RELEASE), ("land", _LAND))
# A sentence about a route ("The aisle is long: 30 bays of 2.7 m, so about 80 m."): its lengths
# are the route's, except those of its parts.
_ROUTE_NOUN = re.compile(r"\b(?:aisle|course|track|corridor|lane|straight|route|walkway)\b")
_TO_PLACE = re.compile(r"\s+(?:away\b|(?:down|up|over|across|along)\s+to\b)")
_PART_AFTER = re.compile(r"\s+(?:each|apiece|apart|wide|high|tall|per|long each)\b")


def moment_events(st: ScannedText) -> tuple[list[tuple], list[tuple[int, int]]]:
    """The field's events at moments, (kind, position or None, time entry, sentence start),
    and the sentences that say something leaves rest at a moment ("It pulls away at 2.0 s",
    for timeline.py): one pass over the clip's moments serves both."""
    found = st.memo.get("events")
    if found is not None:
        return found
    low = st.text
    events, leaves = [], []
    for r in st.raw_quantities:
        if r[_DIM] != "time":
            continue
        at = r[_START]
        # Only what its sentence says before the moment: one C call finds where that starts,
        # and a moment that opens its sentence ("At 2.5 s the light turns") is skipped at once.
        lo = max(0, at - _BEFORE)
        k = low.rfind(". ", lo, at)
        if k >= 0:
            lo = k + 2
        if at - lo < 8:
            continue
        window = low[lo:at]
        for c in _CUES:
            if c in window:
                break
        else:
            continue
        if _MOMENT_BEFORE.search(low, at - 24 if at > 24 else 0, at) is None:
            continue
        s, e = st.bounds(at, r[_END])
        lo = max(s, lo)
        if _LEAVES_REST.search(low, lo, r[_START]) is not None and \
                (not leaves or leaves[-1][0] != s):
            leaves.append((s, e))
        # The event said nearest before the moment: "sets off at 4.0 s and arrives at the
        # bench at 5.2 s" is an arrival at 5.2 s.
        best = None
        for kind, pattern in _EVENTS:
            m = None
            for m in pattern.finditer(low, lo, r[_START]):
                pass
            if m is not None and (best is None or m.start() > best[1].start()):
                best = (kind, m)
        if best is not None:
            kind, m = best
            where = float(m.group(1)) if kind == "mark" else 0.0 if kind == "zero" else None
            events.append(("at" if where is not None else kind, where, r, s))
    found = st.memo["events"] = (events, leaves)
    return found


def route_speeds(st: ScannedText, question: str | None) -> list[Derivation]:
    """Speeds over routes between moments of the field's paragraphs (see the docstring)."""
    found = st.memo.get("route")
    if found is not None:
        return found
    found = st.memo["route"] = []
    events = moment_events(st)[0]
    if len(events) < 2:
        return found
    low, race = st.text, None
    for text in (question or "", low):
        m = _RACE.search(text.lower())
        if m:
            race = float(m.group(1))
            break
    for i, a in enumerate(events):
        for b in events[i + 1:]:
            d = _pair(st, a, b, race)
            if d is not None:
                found.append(d)
    return found


def _pair(st: ScannedText, a: tuple, b: tuple, race: float | None) -> Derivation | None:
    low = st.text
    ta, tb = _value(low, a[2]), _value(low, b[2])
    if tb <= ta or "\n\n" in low[a[3]:b[3]] or low.count(". ", a[3], b[3]) > _REACH:
        return None
    kinds = (a[0], b[0])
    if kinds == ("at", "at"):
        pa, pb = a[1], b[1]
    elif kinds == ("at", "finish") and race is not None:
        pa, pb = a[1], race
    elif kinds == ("start", "finish") and race is not None:
        pa, pb = 0.0, race  # a start in a race is at its start line
    elif kinds in (("start", "end"), ("start", "arrive")):
        length = _route_length(st, a[3], b[2][_START], b[0] == "arrive")
        if length is None:
            return None
        pa, pb = 0.0, length
    else:
        return None
    if pb == pa:
        return None
    raw = st.raw
    text = lambda r: raw[r[_START]:r[_END]]  # noqa: E731
    said = f"{abs(pb - pa):g} m between {text(a[2])} and {text(b[2])}"
    v = abs(pb - pa) / (tb - ta)
    return _made(st, "speed", v, said, b[2], (a[2], b[2]))._replace(
        also=Quantity(ta, "time", a[2][_START], a[2][_END]), kind="route")


def _route_length(st: ScannedText, lo: int, hi: int, to_place: bool) -> float | None:
    """The shortest length said of a route from 200 characters before lo up to hi: one that
    names it ("the 60 m aisle", "10 m away", "the full 45 m") or in a sentence about it; with
    `to_place`, only a distance to somewhere ("10 m away", "the full 45 m down to")."""
    low, best = st.text, None
    for r in st.raw_quantities:
        if r[_START] >= hi:
            break
        if r[_DIM] != "length" or r[_START] < lo - 200 or "\n\n" in low[r[_START]:hi]:
            continue
        if to_place:
            if not (_TO_PLACE.match(low, r[_END]) or low.endswith("full ", 0, r[_START])):
                continue
        elif not (_ROUTE_AFTER.match(low, r[_END]) or low.endswith("full ", 0, r[_START]) or (
                not _PART_AFTER.match(low, r[_END]) and
                _ROUTE_NOUN.search(low, *st.bounds(r[_START], r[_END])) is not None)):
            continue
        v = _value(low, r)
        best = v if best is None else min(best, v)
    return best
