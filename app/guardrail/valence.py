"""Yes/no conclusions read from how the reasoning judges the outcome (round 6), for questions
that ask whether a good or a bad outcome happened.

"Does the worker keep a safe distance?" asks about a good outcome, "Did the robot drop the
mug?" about a bad one. A closing "That's a near miss." judges the scene bad, "There's more than
a tonne of margin." good, whatever words the question used. The answer follows: yes when the
judgement matches the outcome asked about, no otherwise. Read only when neither an explicit
verdict, nor a restatement, nor a family state was found (consistency.py), only in the last two
sentences, and only when the question leans one way and the sentences judge one way: any mixed
signal is silence.
"""
from __future__ import annotations

import re

# What a question asks about: a good outcome (kept, within, safe) or a bad one (dropped, hit).
_ASKS_GOOD = re.compile(
    r"\b(?:safe(?:ly)?|keeps? (?:a |an |its |his |her |their )?(?:\w+ )?(?:distance|balance|"
    r"footing|control|grip|clearance)|within (?:the |its |their )?(?:[\w,'-]+ )*?(?:limit|rating|"
    r"capacity|rules?|range|tolerance)|legal(?:ly)?|in time|stable|successful(?:ly)?|"
    r"manages? to|stay (?:upright|on|in control))\b")
_ASKS_BAD = re.compile(
    r"\b(?:drop(?:s|ped)?|collid\w*|crash\w*|false start|guilty|foul\w*|offside|violat\w*|"
    r"exceed\w*|over the (?:\w+ )?limit|speeding|overload\w*|unsafe|illegal(?:ly)?|"
    r"penalt\w*|lose (?:its|his|her|their) (?:balance|grip|footing|control))\b")
# How a conclusion judges the outcome.
_GOOD = re.compile(
    r"\b(?:margin|comfortabl\w*|safely|cleanly|controlled|under control|untroubled|legal|"
    r"within (?:the )?(?:rules?|limits?|rating|capacity|tolerance)|(?:well|comfortably) "
    r"(?:clear|within|inside|under|below|above)|on (?:its|his|her|their) own feet|"
    r"keeps? (?:its|his|her|their) (?:balance|footing|feet)|(?:under|below) (?:the |its |their )?"
    r"(?:rated |safe |posted )?(?:limit|rating|capacity))\b")
_BAD = re.compile(
    r"\b(?:near[- ]miss\w*|close call|danger\w*|unsafe|hazard\w*|violat\w*|illegal\w*|foul\w*|"
    r"too close|collision|collid\w*|crash\w*|overload\w*|lost (?:its|his|her|their) "
    r"(?:balance|grip|footing|control)|drops? (?:it|the)|dropped|exceed\w*|unstable|"
    r"(?:over|above|beyond) (?:the |its |their )?(?:rated |safe |posted )?(?:limit|rating|"
    r"capacity)|tip(?:s|ped)? over|toppl\w+|collaps\w+)\b")
# Denied in its clause: "no sign of danger", "none of which suggests an overload".
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bno|\bnone|\bnothing|\bwithout|\bavoid\w*)\b"
                      r"[^.;,:!?]{0,40}$")


def valence_verdict(tail: str, start: int, question: str) -> tuple[str, int, int] | None:
    """("yes" | "no", start, end) from how tail[start:] (lowercased) judges the outcome the
    question asks about, if both lean one way."""
    q = question.lower()
    good_q, bad_q = _ASKS_GOOD.search(q) is not None, _ASKS_BAD.search(q) is not None
    if good_q == bad_q:
        return None
    sides: set[bool] = set()
    last = None
    for pattern, good in ((_GOOD, True), (_BAD, False)):
        for m in pattern.finditer(tail, start):
            negated = _NEGATED.search(tail, max(start, m.start() - 48), m.start()) is not None
            sides.add(good != negated)
            if last is None or m.start() > last.start():
                last = m
    if len(sides) != 1 or last is None:
        return None
    judged_good = sides.pop()
    return ("yes" if judged_good == good_q else "no", last.start(), last.end())
