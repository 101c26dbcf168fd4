"""The guardrail's shortcuts (see scan.py, scanned.py, prefilter.py) against the plain way of
doing the same thing, on seeded random texts built from the words the rules care about."""
from __future__ import annotations

import random
import re

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.guardrail.base import Document
from app.guardrail.choices import concluded_letter
from app.guardrail.prefilter import folds_to_ascii, shortcuts
from app.guardrail.scan import lower
from app.guardrail.scanned import ScannedText
from app.reasoning import parse_reasoning

PIECES = ["The", "pedestrian", "car", "ego vehicle", "robot", "AMR", "arm", "cyclist", "it", "they",
          "than the", "compared with the", "is", "at", "about", "tall", "height", "braking", "weighs",
          "speed", "-", "x5", "v2.5", "1:23", "00:14", "12 m", "-3 m", "50 km/h", "4 km/h", "0.6 g",
          "2 g", "45 m/s²", "9 m/s^2", "7 m/s3", "x5 m/s^3 m", "1,500 m", "30 mph", "130%", "2.5 s",
          "probability of 1.7", "a 130% chance", "–", "é", "²", "ſ", "İ", ",", ";", "(", ")"]
ENDS = [" ", " ", " ", ". ", "\n", "? ", "! ", "\n\n", ", "]


def texts(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        words = [r.choice(PIECES) for _ in range(r.randint(1, 160))]
        out.append("".join(w + r.choice(ENDS) for w in words))
    return out


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def test_lower_is_str_lower():
    r = random.Random(1)
    for _ in range(3000):
        top = r.choice([0x7F, 0xFF, 0x2FFF])
        text = "".join(chr(r.randint(0, top)) for _ in range(r.randint(0, 40)))
        assert lower(text) == text.lower()


def _reference_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence window as first written: four rfinds back, four finds forward."""
    lo, hi = max(0, start - 400), min(len(text), end + 400)
    s = lo
    for sep in (". ", "\n", "? ", "! "):
        i = text.rfind(sep, lo, start)
        if i >= 0 and i + len(sep) > s:
            s = i + len(sep)
    e = hi
    for sep in (". ", "\n", "? ", "! "):
        i = text.find(sep, end, e)
        if i >= 0:
            e = i
    return s, e


def test_sentence_bounds_match_the_reference(guardrail):
    for text in texts(200, 2) + ["5 m", "x. 5 m. ", "a" * 900 + " 5 m " + "b" * 900]:
        st = ScannedText(text, guardrail.scanner)
        for q in st.quantities:
            assert st.bounds(q.start, q.end) == _reference_bounds(st.text, q.start, q.end)


def test_digit_scan_equals_the_plain_regex(guardrail):
    scanner = guardrail.scanner
    for text in texts(300, 3) + ["x5 m/s^3 m", "a1 m/s3 4 m", "5 m/s2 and 6 m/s^2"]:
        st = ScannedText(text, scanner)
        plain = scanner._quantities(st.text, scanner._number_re.finditer(st.text), st.bounds, None)
        assert st.quantities == plain
    # "m/s^2" read as digits-as-zeros also matches "m/s^3", which hides the "3 m" that follows.
    assert [q.value for q in ScannedText("x5 m/s^3 m", scanner).quantities] == [3.0]


def test_only_wanted_quantities_are_built_and_nothing_changes(guardrail):
    """Building only the quantities some rule could flag gives the findings that building all
    of them gives."""
    checks = guardrail._checks
    ctx, active = GuardrailContext(duration_s=12.0), frozenset(("info", "warning", "critical"))
    for text in texts(300, 4):
        parsed = parse_reasoning(f"<think>{text}</think><answer>B</answer>")
        every = Document(parsed, ctx, guardrail.scanner, active)
        checks_every = [f for c in checks for f in c.check(every)]
        assert guardrail.check(parsed, ctx).findings == sorted(dict.fromkeys(checks_every),
                                                               key=lambda f: f.span)


def test_may_mention_never_misses_a_subject(guardrail):
    classes = [frozenset({c}) for c in guardrail.scanner.object_classes]
    for text in texts(150, 5):
        st = ScannedText("x" * 300 + " " + text, guardrail.scanner)
        for q in st.quantities:
            # The subjects do not depend on the class asked about: worked out once per quantity
            # (on a fresh scan, so that may_mention's caches cannot shape them), not per class.
            subjects = set(ScannedText(st.raw, guardrail.scanner).subjects(q))
            for cs in classes:
                if subjects & cs:
                    assert st.may_mention(cs, q)


@pytest.mark.parametrize("pattern,needles", [
    (r"\btall\b|\bheight\b", ("tall", "height")),
    (r"\bspeeds?\b|\b(?:moving|travel+ing) at\b", ("speed", " at")),
    (r"x?", None),
    (r"[A-Z]+", None),
])
def test_needles(pattern, needles):
    assert shortcuts(re.compile(pattern, re.IGNORECASE)).needles == needles


@pytest.mark.parametrize("pattern,caseless", [
    (r"distance|away|\bgap\b|[a-z]+ly", True),
    (r"Tall", False),  # upper case: IGNORECASE matters
    (r"(\w)\1", False),  # back-references compare case-insensitively
    (r"[A-Z]x", False),
])
def test_caseless_only_where_it_is_the_same(pattern, caseless):
    compiled = re.compile(pattern, re.IGNORECASE)
    found = shortcuts(compiled).caseless
    assert (found is not None) == caseless
    if found is not None:
        for text in texts(200, 6):
            low = lower(text)
            if not folds_to_ascii(low):
                assert [m.span() for m in found.finditer(low)] == \
                       [m.span() for m in compiled.finditer(low)]


@pytest.mark.parametrize("reasoning,letter", [
    ("(b)so the answer is C", "C"),
    ("Option B is correct. So the answer is D", "D"),
    ("x" * 1200 + " therefore A", "A"),
    ("A car brakes. so A car", None),
])
def test_concluded_letter(reasoning, letter):
    found = concluded_letter(reasoning)
    assert (found and found[0]) == letter
