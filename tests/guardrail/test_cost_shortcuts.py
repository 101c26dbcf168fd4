"""Round 4's cost shortcuts (issue 15) against the plain way of doing the same thing: a rule's few
literal needles looked for with str.find in a sentence must answer as its regex does."""
from __future__ import annotations

import random
import re

from app.guardrail import Guardrail
from app.guardrail.prefilter import MAX_FOUND_NEEDLES, shortcuts
from app.guardrail.scanned import ScannedText

WORDS = ["tall", "height", " height", "his height", "the", "car", "is", "12 m", "3 m", "walks",
         "strolls", "swim", "talls", "ht", "hei", ".", ". ", "\n", ",", "about", "standing height"]


def _texts(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    return ["".join(r.choice(WORDS) + r.choice([" ", " ", "", ". "]) for _ in range(r.randint(1, 60)))
            for _ in range(n)]


def test_few_needles_are_found_with_str_find():
    body_height = re.compile(r"\btall\b|(?:his|her|their|body|standing|'s) height\b")
    needles = shortcuts(body_height).in_sentence
    assert isinstance(needles, tuple) and 0 < len(needles) <= MAX_FOUND_NEEDLES
    many = re.compile(r"\b(?:saunter|stroll|wander|tiptoe|shuffl|walk|ambl|limp)")
    assert isinstance(shortcuts(many).in_sentence, re.Pattern)


def test_sentence_has_answers_as_the_regex():
    scanner = Guardrail.from_yaml().scanner
    patterns = [re.compile(r"\btall\b|(?:his|her|their|body|standing|'s) height\b"),
                re.compile(r"\b(?:saunter|stroll|wander|walk)"), re.compile(r"swim\w*")]
    checked = 0
    for text in _texts(400, 5):
        st = ScannedText(text, scanner)
        for q in st.quantities:
            s, e = st.sentence(q)
            for p in patterns:
                assert st.sentence_has(p, q) == (p.search(st.text, s, e) is not None)
                checked += 1
    assert checked > 1000


def test_who_names_someone_far_into_a_text():
    """`who` is looked for with str.find before its regex: both must still see it."""
    guardrail = Guardrail.from_yaml()
    scanner = guardrail.scanner
    people = frozenset(scanner.people[:1])
    opening = "The shelves stand in rows along the aisle. " * 8  # puts the sentence past _REACH
    for sentence, expected in (("Whoever it was, one who sprints at 50 km/h. ", True),
                               ("Someone sprints at 50 km/h. ", False)):
        st = ScannedText(opening + sentence, scanner)
        q = next(q for q in st.quantities if q.dimension == "speed")
        assert st.may_mention(people, q) is expected
