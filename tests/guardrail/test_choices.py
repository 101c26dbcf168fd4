"""Option letters: offered by the question, picked by the answer, settled on by the reasoning."""
from __future__ import annotations

import pytest

from app.guardrail import answer_letter, concluded_letter, extract_choices


@pytest.mark.parametrize("question,expected", [
    ("What should the car do?\nA. Stop\nB. Go\nC. Turn left\nD. Reverse", ["A", "B", "C", "D"]),
    ("Pick one:\n(A) yes\n(B) no", ["A", "B"]),
    ("Pick one:\n  A) yes\n  B) no\n  C) maybe", ["A", "B", "C"]),
    ("Which foul? (A) Handball (B) Offside (C) Tripping", ["A", "B", "C"]),
    ("A car stops at the light. Is it safe?", None),
    ("B. only one option\nC. and a gap", None),
    ("", None),
    (None, None),
])
def test_extract_choices(question, expected):
    assert extract_choices(question) == expected


@pytest.mark.parametrize("answer,letter", [
    ("B", "B"), ("(C)", "C"), ("B. Stop at the line.", "B"), ("Answer: D", "D"),
    ("The answer is C.", "C"), ("**B**", "B"), ("C: turn left", "C"), ("A", "A"), ("A.", "A"),
    ("B because the light is red", "B"),
    ("A car stops.", None), ("I think so.", None), ("", None), (None, None),
])
def test_answer_letter(answer, letter):
    found = answer_letter(answer)
    assert (found[0] if found else None) == letter
    if found:
        assert answer[found[1]:found[2]] == letter


@pytest.mark.parametrize("reasoning,letter", [
    ("Option A says stop. Option B says go. So the answer is B.", "B"),
    ("Therefore, C is the correct answer.", "C"),
    ("I will go with D.", "D"),
    ("Option C is correct because the light is red.", "C"),
    ("The answer should be (D) since the lane is blocked.", "D"),
    ("First I thought the answer is A. But no, the answer is B.", "B"),
    ("So A car would stop.", None),
    ("The answer is not B.", None),
    ("The car slows down and yields.", None),
])
def test_concluded_letter(reasoning, letter):
    found = concluded_letter(reasoning)
    assert (found[0] if found else None) == letter
