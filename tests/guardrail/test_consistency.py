"""Reasoning and answer agree: yes/no verdicts, counts, option letters in the phrasings models
use, probabilities however phrased, negative durations and distances in words."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail, GuardrailContext, extract_choices
from app.reasoning import parse_reasoning

ABC = "Which is right?\nA. Stop\nB. Go\nC. Yield\nD. Turn"


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def check(guardrail, reasoning, answer="B", question=None):
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\n{answer}\n</answer>"
    ctx = GuardrailContext(choices=extract_choices(question), question=question)
    return [(f.rule_id, f.message) for f in guardrail.check(parse_reasoning(text), ctx).findings]


def fired(guardrail, *args) -> list[str]:
    return sorted({r for r, _ in check(guardrail, *args)})


def test_the_issues_examples(guardrail):
    assert check(guardrail, "The pedestrian hesitates at the curb. This matches option C.", "A",
                 ABC) == [("choice.mismatch", "the answer picks A but the reasoning settled on C")]
    assert check(guardrail, "The probability that the pedestrian steps into the road is 140%.",
                 "Yes.") == [("probability.range", "a probability of 140%: probabilities lie "
                                                   "between 0 and 1 (0-100 %)")]
    assert check(guardrail, "I count three pedestrians on the crossing.", "2",
                 "How many pedestrians are crossing?") == [
        ("answer.count_mismatch", 'the answer counts 2 but the reasoning counts '
                                  '"three pedestrians"')]


@pytest.mark.parametrize("reasoning,answer,expected", [
    ("This matches option C.", "A", ["choice.mismatch"]),
    ("So the answer is (C).", "A", ["choice.mismatch"]),
    ("C is correct.", "A", ["choice.mismatch"]),
    ("A is correct.", "C", ["choice.mismatch"]),
    ("I choose C.", "A", ["choice.mismatch"]),
    ("The best action here is option C) yield.", "A", ["choice.mismatch"]),
    ("This does not match option C; option B fits.", "B", []),
    ("So the answer is C.", "C) Yield to the cyclist", []),
    ("So the answer is C.", "(E) Reverse", ["choice.mismatch", "choice.not_offered"]),
])
def test_option_letters(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, ABC) == expected


def test_inline_options_are_offered_choices():
    assert extract_choices("Options: A) keep going, B) stop, C) swerve") == ["A", "B", "C"]


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    ("So it is not safe to turn left.", "Yes", "Is it safe to turn left?", True),
    ("So it is safe to turn left.", "Yes", "Is it safe to turn left?", False),
    ("Turning now is unsafe.", "Yes.", "Is it safe to turn left?", True),
    ("Therefore, the answer is no.", "Yes", "Does the forklift stop?", True),
    ("The forklift does not stop before the worker.", "Yes",
     "Does the forklift stop before the worker?", True),
    ("The car stops 5 m short, so the pedestrian is not at risk.", "No",
     "Is the pedestrian at risk?", False),
    ("There is no need to brake.", "No", "Does the car need to brake?", False),
    ("The AMR moves at 1.2 m/s, which is below the 2 m/s limit.", "No",
     "Is the AMR moving faster than the limit?", False),
    ("No, wait, the light is green. So the answer is yes.", "Yes", "Can the car go?", False),
])
def test_yes_no(guardrail, reasoning, answer, question, expected):
    assert ("answer.yes_no_mismatch" in fired(guardrail, reasoning, answer, question)) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    ("I count three pedestrians crossing.", "3", "How many pedestrians cross?", False),
    ("I count three pedestrians crossing.", "Two pedestrians.", None, True),
    ("Five cars are visible; two of them overtake the ego car.", "2",
     "How many cars overtake the ego car?", False),
    ("One pedestrian is on the left and two on the right, so three pedestrians in total.", "2",
     "How many pedestrians are there?", True),
    ("The robot picks up four boxes.", "4 boxes", None, False),
    ("The gap is 3 m wide.", "2 m", "How wide is the gap?", False),  # a measure, not a count
    ("So the answer is no.", "No.", "Are there pedestrians?", False),
])
def test_counts(guardrail, reasoning, answer, question, expected):
    assert ("answer.count_mismatch" in fired(guardrail, reasoning, answer, question)) == expected


@pytest.mark.parametrize("reasoning,expected", [
    ("There is a 1.3 chance of rain.", True),
    ("P(collision) = 1.2 by my estimate.", True),
    ("I am 150% confident the car stops.", True),
    ("The likelihood that the robot drops the box is about 120 percent.", True),
    ("The chance of 2 cars colliding is low.", False),
    ("The probability of collision is 1.5 times higher at night.", False),
    ("The probability that the car stops in time is 0.9.", False),
])
def test_probabilities(guardrail, reasoning, expected):
    assert ("probability.range" in fired(guardrail, reasoning, "It stops.")) == expected


@pytest.mark.parametrize("reasoning,rule", [
    ("The gap to the lead car is minus 3 m.", "distance.negative"),
    ("The manoeuvre took negative 2 seconds.", "time.negative"),
    ("The lateral offset is negative 0.2 m.", None),
])
def test_negative_quantities_in_words(guardrail, reasoning, rule):
    assert fired(guardrail, reasoning, "It stops.") == ([rule] if rule else [])
