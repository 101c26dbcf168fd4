"""How a text says that a time is a duration, a length a distance travelled, a speed zero, a
thing falling: the cues derived kinematics (kinematics.py) reads around the numbers.

Each pattern is matched where a number is, never over the whole text: most open with a rare
character or the character before a word, so that sre skips ahead instead of trying every
alternative at every position, and words that every match contains are tested first with `in`.
"""
from __future__ import annotations

import re
from bisect import bisect_left

from app.guardrail.objects import _alternation
from app.guardrail.scanned import ScannedText

G = 9.80665
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
    r"\s*(?:of\b(?!\s+(?:where|the point where|travel|braking|movement|motion|the (?:brake|braking) "
    r"(?:onset|point|application)|the (?:onset|start) of braking))|short\b|before\b|behind\b|"
    r"ahead\b|away\b|in front\b|clear\b|apart\b|beyond\b|"
    r"past\b|wide\b|tall\b|high\b|deep\b|radius\b|gap\b|"
    r"from\b(?!\s+(?:about\s+|roughly\s+|around\s+|approximately\s+)?(?:[0-9]|rest\b|a standstill|"
    r"standstill|a stop\b|zero\b)))")
_MOMENT_AFTER = re.compile(r"\s*(?:of\b|later\b|earlier\b|ago\b|into\b|mark\b|"
                           r"intervals?\b|each\b|per\b|from now\b|apart\b|delay\b|gap\b|headway\b)")
# A start signal: what moves after it started from rest ("1.5 s after the green", "after the
# gun"); a green flag starts a rolling race, so it is none.
_SIGNAL = (r"after the (?:green\b(?!\s+flag)|(?:starting\s+)?gun\b|start(?:ing)? (?:signal|gun)\b|"
           r"lights? (?:go|goes|went) out\b)")
_AFTER_SIGNAL = re.compile(r"\s+" + _SIGNAL)
# A speed of zero said in words. Each pattern opens with the character before a word, so that
# sre skips from word start to word start instead of trying every alternative at every position.
_ZERO = re.compile(
    r"[^a-z0-9](?:(?:from|to|into)\s+(?:a\s+)?(?:complete\s+|full\s+|dead\s+|total\s+)?"
    r"(?:rest|standstill|stop|halt|zero|stationary|standing start|0(?![0-9.,]))\b"
    r"|(?:stops|stopped|stopping|halts|halted|halting|standstill|stationary)\b"
    r"|pull(?:s|ed)? up\b(?!\s+(?:to|beside|alongside|next|behind|at))"
    r"|stop\b(?!\s+(?:line|sign|bar|light|zone|position|point|marker))"
    r"|at rest\b|" + _SIGNAL + r")|[^a-z0-9.,]0\s*(?:-|–|to)\s*[0-9]")
_FROM_ZERO = re.compile(
    r"[^a-z0-9](?:from\s+(?:a\s+)?(?:complete\s+|full\s+|dead\s+)?(?:rest|standstill|stop|zero|"
    r"stationary|standing start|0(?![0-9.,]))|standing start\b|pulls? away\b|sets? off\b|"
    r"starts? (?:moving|off)\b|" + _SIGNAL + r")|[^a-z0-9.,]0\s*(?:-|–|to)\s*[0-9]")
# Words one of which every match of _ZERO / _FROM_ZERO contains: a few `in` tests on the
# sentence are far cheaper than searching it with the patterns (each position tries them all).
_ZERO_WORDS = ("rest", "standstill", "stop", "halt", "zero", "stationary", "standing", "0",
               "pull", "after the")
_FROM_ZERO_WORDS = ("from", "0", "standing", "pull", "set", "start", "after the")


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
    r"entire|whole|remaining|final|last|first|second|third|next|that|this|further|additional|"
    r"distance|of|across|along|"
    r"down|up|through|past|its|their|his|her))*\s+$")
# A path's length in an aside: "carries it from the halfway line to the box — about 36 m — in
# 2.3 s" (a mover's verb, then from ... to ..., then the length between dashes or brackets).
_ASIDE = re.compile(r"\s(?:—|–|-|\()\s*(?:about\s+|roughly\s+|around\s+|some\s+|~\s*)?$")
_PATH = re.compile(r"\bfrom\s[^,;]{3,80}?\sto\s[^,;]{3,80}$")
_MOVER_VERB = re.compile(r"\b(?:carr(?:y|ies|ied)|dribbl|run|ran|driv|drove|walk|sprint|rid|rode|"
                         r"travel|mov|go|goes|went|swim|swam|roll|cross|rac|dash|jog|fl(?:y|ies|ew))")


def _aside_of_path(low: str, s: int, d: tuple) -> bool:
    m = _ASIDE.search(low, max(s, d[0] - 12), d[0])
    return m is not None and _PATH.search(low, max(s, m.start() - 160), m.start()) is not None \
        and _MOVER_VERB.search(low, max(s, m.start() - 200), m.start()) is not None


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
_STOP_WORDS = ("stop", "halt", "standstill", "stationary", "rest", "pulls up", "pulled up")
_LATER = re.compile(r"\s+later\b")

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
    if r[_DIM] == "time" and m is None and _AFTER_SIGNAL.match(low, r[_END]):
        return True
    if m is None or (r[_DIM] == "time" and m.group(1) == "retfa"):  # "after 2 s": a moment
        return False
    after = _MOMENT_AFTER if r[_DIM] == "time" else _POSITION_AFTER
    return after.match(low, r[_END]) is None


def _falls(low: str, r: tuple) -> bool:
    """Whether a fall is said shortly before the time (a few `in` tests first)."""
    near = low[max(0, r[_START] - 150):r[_START]]
    return any(w in near for w in _FALL_WORDS) and \
        _FALL.search(low, max(0, r[_START] - 151), r[_START]) is not None


# A distance covered from one moment to another, said by what follows it.
_FURTHER = re.compile(
    r"\s+(?:further|farther)\b(?!\s+(?:ahead|behind|back|away|from|than|apart)\b)")
# A moment of the clip: "at 2.0 s", "by about 11 s", "until 9 s".
_MOMENT_BEFORE = re.compile(r"\b(?:at|by|from|until|till|to)\s+(?:about\s+|around\s+|roughly\s+|"
                            r"approximately\s+|~\s*)?$")
_NEAR_BEFORE, _NEAR_AFTER = 200, 120  # how far from a time or distance a speed may be


def _speed_in_sentence(low: str, speeds: list[int], at: int) -> bool:
    """Whether the nearest speed before or after `at` (within reach) is in its sentence: two
    finds, cheaper than the sentence's bounds."""
    k = bisect_left(speeds, at)
    if k and speeds[k - 1] >= at - _NEAR_BEFORE and low.find(". ", speeds[k - 1], at) < 0 and \
            low.find("\n", speeds[k - 1], at) < 0:
        return True
    return k < len(speeds) and speeds[k] <= at + _NEAR_AFTER and \
        low.find(". ", at, speeds[k]) < 0 and low.find("\n", at, speeds[k]) < 0
