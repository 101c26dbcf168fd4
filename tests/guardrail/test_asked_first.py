"""Round 5's cost shortcut (issue 15): whether a quantity's sentence can name one of the classes
whose bounds it breaks is asked before its conditions. Checked against the plain order, and the
two facts it rests on, on seeded random texts built from the words the rules care about."""
from __future__ import annotations

import random

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.guardrail.scanned import ScannedText
from app.guardrail.sentences import WINDOW
from app.reasoning import parse_reasoning

WORDS = ["The", "pedestrian", "car", "robot", "forklift", "cyclist", "swimmer", "he", "it", "they",
         "who", "his", "walks", "swims", "strolls", "jogs", "a lap", "tall", "height", "than the",
         "behind the bus", "at", "about", "50 km/h", "18 km/h", "6 km/h", "3 m/s", "12 m", "2 m",
         "1.9 m", "0.6 g", "80 kg", "2.5 s", "and", "while", "(", ")", ",", "stops within", "4 m"]
ENDS = [" ", " ", " ", " ", " ", ". ", "\n", ", ", "! "]


def _run_on(text: str) -> str:
    """The text with no sentence end: one sentence, longer than WINDOW if the text is."""
    return text.replace(". ", " ").replace("\n", " ").replace("! ", " ")


def _texts(n: int, seed: int, longest: int = 120) -> list[str]:
    r = random.Random(seed)
    return ["".join(r.choice(WORDS) + r.choice(ENDS) for _ in range(r.randint(1, longest)))
            for _ in range(n)]


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def test_asking_first_changes_no_finding(guardrail, monkeypatch):
    ctx = GuardrailContext(duration_s=12.0)
    # Texts with few sentence ends too, so that some sentences run past WINDOW.
    cases = _texts(400, 1) + ["x" * 390 + " " + t for t in _texts(100, 2)] + [
        _run_on(t) for t in _texts(100, 3, 200)]
    outputs = [parse_reasoning(f"<think>{t}</think><answer>B</answer>") for t in cases]
    fast = [guardrail.check(p, ctx).findings for p in outputs]
    monkeypatch.setattr(ScannedText, "early", lambda self, q: False)
    plain = [guardrail.check(p, ctx).findings for p in outputs]
    assert fast == plain
    assert sum(map(len, plain)) > 200


def test_early_only_where_a_sentence_start_has_one_end(guardrail):
    """Where `early` holds, every quantity, and every number derived kinematics reads, whose
    sentence starts at the same place has the same sentence."""
    asked = 0
    for text in _texts(300, 4) + [_run_on(t) for t in _texts(100, 5, 200)]:
        st = ScannedText(text, guardrail.scanner)
        spans = [(q.start, q.end) for q in st.quantities] + [r[:3:2] for r in st.raw_quantities]
        by_start: dict[int, set[tuple[int, int]]] = {}
        for start, end in spans:
            s, e = st.bounds(start, end)
            by_start.setdefault(s, set()).add((s, e))
        for q in st.quantities:
            if st.early(q):
                asked += 1
                assert by_start[st.sentence(q)[0]] == {st.sentence(q)}
    assert asked > 500


def test_early_is_false_for_a_sentence_longer_than_the_window(guardrail):
    st = ScannedText("The robot moves at 3 m/s " + "and then on " * 40 + "at 3 m/s. ",
                     guardrail.scanner)
    first, last = st.quantities[0], st.quantities[-1]
    assert st.sentence(last)[1] - st.sentence(last)[0] > WINDOW - 2
    assert not st.early(last) and st.early(first) is (
        st.sentence(first)[1] - st.sentence(first)[0] <= WINDOW - 2)


def test_no_for_some_classes_is_no_for_fewer(guardrail):
    """may_mention is monotone in the classes asked about, which asking first relies on."""
    classes = guardrail.scanner.object_classes
    r = random.Random(6)
    checked = 0
    for text in _texts(40, 7):
        st = ScannedText("x" * 300 + " " + text, guardrail.scanner)
        for q in st.quantities:
            wide = frozenset(r.sample(classes, 4))
            if not st.may_mention(wide, q):
                for cls in wide:
                    fresh = ScannedText(st.raw, guardrail.scanner)
                    assert not fresh.may_mention(frozenset((cls,)), q)
                    checked += 1
    assert checked > 200
