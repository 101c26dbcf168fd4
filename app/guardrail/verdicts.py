"""Yes/no conclusions that do not restate the question: "He's belted in" for "Is the operator
wearing a seatbelt?", "the tower is down" for "Is the stack still standing?".

A question's predicate belongs to a few families of states that scenes of traffic, warehouses,
robots and sport ask about (standing or fallen, safe or not, stopped or rolling, over the line or
not, spilled or not, wearing or not, out or safe, won or lost). Each family lists how text says
either side of the state; the question's own words say which side it asks about, so "Did it
topple?" and "Is it still standing?" read "it is down" as yes and no respectively. Only the last
two sentences are read, and only when neither an explicit verdict nor a restatement was found
(consistency.py), so the families add conclusions without overriding any.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Family(NamedTuple):
    asks_up: re.Pattern[str]  # the question asks about the first side ("still standing")
    asks_down: re.Pattern[str]  # ... or about the second ("topple")
    up: re.Pattern[str]  # the text says the first side holds
    down: re.Pattern[str]  # ... or the second


def _family(asks_up: str, asks_down: str, up: str, down: str) -> Family:
    return Family(*(re.compile(rf"\b(?:{p})\b") for p in (asks_up, asks_down, up, down)))


_NEVER = "(?!)"
FAMILIES = (
    # A stack, a tower, a load, a person: upright or down.
    # (Plain "standing" is asked of people as often: "Is anyone standing in the crossing?")
    _family(r"(?:still|left|remain|remains|stay|stays) standing|upright|"
            r"stay (?:up|upright|on|in place|stacked|intact|put)|"
            r"remain (?:upright|stacked|intact|in place)|intact|stable",
            r"topple|tip over|tips over|collapse|fall (?:over|down|off)|come down|"
            r"knock(?:ed)? (?:over|down)|slide off",
            r"still (?:standing|upright|up|intact|in place|stacked)|"
            r"(?:stays?|stayed|remains?|remained) (?:up|upright|put|intact|standing|in place|stable)|"
            r"holds? (?:together|steady|firm)",
            r"toppl\w+|collaps\w+|overturn\w*|capsiz\w+|(?:fell|falls?|falling|comes?|came|coming|"
            r"goes|go|went|tips?|tipped|tipping|knocked|slides?|slid) (?:down|over|off)|"
            r"(?:is|are|was|were) (?:all )?down|on (?:its|their) sides?"),
    # Safe to go, or wait.
    # (Round 6: "Should the car have waited / yielded?" asks about the second side: a gap that
    # was not there, or the other's priority, says it should have.)
    _family(r"safe", r"unsafe|dangerous|risky|wait(?:ed)?|yield(?:ed)?|give way|given way",
            r"(?:is|it's|it is|was) safe|safe to|can (?:safely )?(?:go|cross|proceed|turn|pull out|merge)|"
            r"(?:no|little) (?:risk|danger|conflict)|(?:gap|window) (?:was|is) (?:big|large|long|wide) "
            r"enough|(?:had|has) (?:plenty of |enough )(?:time|room)",
            r"unsafe|not (?:yet )?safe|dangerous|too risky|(?:should|must|needs? to|has to|have to|"
            r"better to) (?:\w+ )?wait|wait(?:ing|s)? (?:for|until)|hold(?:ing|s)? back|"
            r"gap (?:simply |just )?(?:wasn't|was not|isn't|is not) there|(?:had|has|have) (?:the )?"
            r"(?:priority|right of way)|(?:not|never) enough (?:time|room|gap)"),
    # A stop: complete, or rolling.
    _family(r"(?:complete|full) stop|stop (?:completely|fully)|come to a stop|stop at|"
            r"(?:fully|completely) stop",
            r"rolling stop|roll through|run the",
            r"zero motion|(?:full|complete) stop|(?:fully|completely) stopped|comes? to rest|"
            r"came to rest|(?:is|was) (?:fully |completely )?stationary|"
            r"(?:satisfies|satisfied|meets|met|complies with|complied with) the (?:rule|requirement|law)",
            r"rolling stop|roll(?:s|ed)? through|never (?:fully |completely )?(?:stops|stopped)|"
            r"without stopping|still (?:moving|rolling|creeping)|"
            r"(?:violates|violated|breaks|broke) the (?:rule|requirement|law)"),
    # Over a line (a goal, the finish, a stop line), or not wholly.
    _family(r"cross(?:es|ed)? (?:the )?(?:\w+ )?line|over the (?:\w+ )?line|in(?:side)? the goal",
            _NEVER,
            r"(?:wholly|fully|completely|entirely|all the way) (?:over|across|past|in|inside|within)|"
            r"whole (?:of the )?ball (?:is |was )?(?:over|across|past)|counts as a goal|"
            r"goal (?:is |was )?(?:given|awarded|stands)",
            r"not (?:wholly|fully|completely|entirely|all the way) (?:over|across|past)|"
            r"still (?:\w+ )?(?:over|on|touching|above) the (?:line|paint)|part of (?:it|the ball) "
            r"(?:is|was) still"),
    # Liquid or contents: spilled, or all where it should be.
    _family(r"spill|spills|spilled|spilt|leak|leaks|leaked|drip|drips|splash", _NEVER,
            r"spill\w*|splash\w*|drip\w*|leak\w*|(?:does|did)(?: not|n't) (?:all )?make it (?:in|into)",
            r"no (?:spill|splash|drip|leak)\w*|(?:not|never) a drop|without (?:a |any )?"
            r"(?:spill|drop|splash)\w*|(?:all|every drop) (?:of it )?(?:goes|went|lands|landed|ends up) in(?:to)?"),
    # Wearing a belt, a helmet, a vest: or not.
    _family(r"wear|wears|wearing|belted|buckled|strapped in", _NEVER,
            r"belted|buckled|strapped in|(?:is|he's|she's|they're|are) wearing|"
            r"has (?:it|one|(?:a|his|her|their) [a-z-]+) on",
            r"unbelted|unbuckled|bare-?headed|(?:no|without (?:a|any|his|her|their)) "
            r"(?:seat ?belt|belt|helmet|vest|harness)"),
    # A batter or runner: out, or safe.
    _family(r"(?:batter|runner|hitter|baserunner) (?:\w+ )?out|(?:called|thrown|tagged) out", _NEVER,
            r"(?:is|was|he's|she's|called) out|out by|thrown out|tagged out",
            r"safe|beat (?:it|the throw|the tag|the ball)|beats (?:it|the throw|the tag|the ball)"),
    # A race or a point: won, or lost.
    _family(r"win|wins|won", r"lose|loses|lost",
            r"wins|won|takes (?:it|the race|the title|the point)|(?:crosses|reaches the line) first",
            r"(?:finishes|finished|comes|came|ends up|ended up) (?:second|third|\w+th|behind)|"
            r"loses|lost|runner-up|is beaten|was beaten"),
)
_NEGATION = re.compile(r"(?:\bnot|n't|\bnever|\bno|\bwithout)\s+(?:\w+\s+)?$")


def family_verdict(tail: str, start: int, question: str) -> tuple[str, int, int] | None:
    """("yes" | "no", start, end) of the last statement of a family the question asks about,
    in tail[start:] (lowercased); a side negated right before it ("doesn't topple") is the other
    side."""
    q = question.lower()
    found: tuple[str, int, int] | None = None
    for family in FAMILIES:
        if family.asks_up.search(q):
            asked_up = True
        elif family.asks_down.search(q):
            asked_up = False
        else:
            continue
        for side, pattern in ((True, family.up), (False, family.down)):
            for m in pattern.finditer(tail, start):
                said = side != bool(_NEGATION.search(tail, max(start, m.start() - 16), m.start()))
                if found is None or m.start() >= found[1]:
                    found = ("yes" if said == asked_up else "no", m.start(), m.end())
        if found is not None:
            return found  # the first family the question asks about decides
    return found
