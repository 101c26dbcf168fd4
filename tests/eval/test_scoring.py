"""The option letter read from a model's answer, on the awkward replies models give."""
from __future__ import annotations

import pytest

from app.eval.scoring import answer_part, parse_letter


@pytest.mark.parametrize("text, letter", [
    ("B", "B"),
    ("B.", "B"),
    ("(b)", "B"),
    ("b)", "B"),
    ("**C**", "C"),
    ("Answer: C", "C"),
    ("The correct answer is: B", "B"),
    ("the answer is D) trucks, because they are large", "D"),
    ("option (b)", "B"),
    ("C: driving straight", "C"),
    ("D) The car reverses.", "D"),
    ("It is clearly B.", "B"),
    ("The answer is B, not A", "B"),          # the stated answer wins over a mention
    ("<think>A or maybe C</think>\n<answer>\nC\n</answer>", "C"),
    ("<answer>B</answer> but A was tempting", "B"),
    ("<think>thinking about A</think>D", "D"),
])
def test_letter_found(text, letter):
    assert parse_letter(text) == letter


@pytest.mark.parametrize("text", [
    "",
    None,
    "I do not know",
    "A or B",                    # two letters: ambiguous, not a guess
    "Both A and C are possible",
    "A car is turning left",     # the article, not option A
    "The answer is a car",
    "E",                         # not one of the options
    "<think>it is B</think>",    # reasoning only, no answer
])
def test_no_letter(text):
    assert parse_letter(text) is None


def test_letters_are_the_items_options():
    assert parse_letter("E", "ABCDE") == "E"
    assert parse_letter("C", "AB") is None


def test_answer_part():
    assert answer_part("<think>x</think>\n<answer>\n B \n</answer>") == "B"
    assert answer_part("<think>x</think> plain") == "plain"
    assert answer_part("<answer>cut off") == "cut off"
