"""What a quantity is about: people and things for pronouns, the clause before the sentence, owners,
event categories, where a mover comes from; values the text itself dismisses or makes relative;
the kind of scene for running bounds."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.reasoning import parse_reasoning


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def fired(guardrail: Guardrail, reasoning: str, question: str | None = None) -> list[str]:
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\nSee above.\n</answer>"
    result = guardrail.check(parse_reasoning(text), GuardrailContext(question=question))
    return sorted({f.rule_id for f in result.findings})


@pytest.mark.parametrize("reasoning,expected", [
    # "it" names no person: the van, not the woman, is at 90 km/h.
    ("A woman waits at the kerb beside a van. It pulls away and reaches 90 km/h.", []),
    # "he" names only people: the runner, not the car.
    ("The car slows for the runner. He then accelerates to 60 km/h along the verge.",
     ["speed.athlete"]),
    # A clause with no object and no pronoun of its own takes the sentence's opening pronoun.
    ("The winger gets the ball. He glances back and then dashes down the wing at 70 km/h, "
     "beating the full-back.", ["speed.athlete"]),
    # A pronoun that opens the output names no one the text names ("its": the truck the
    # question asked about, not the car it is compared with).
    ("Its much greater mass (around 40 t) and slower brakes, versus about 0.8 g for the car.", []),
    # "him" is someone else; "it takes him" is his own time.
    ("The bus overtakes the jogger, passing him at 50 km/h.", []),
    # "who" with no one named before it is someone.
    ("The tallest of the group, who stands about 3.1 m tall, waves.", ["height.person"]),
    # a pronoun that would name a thing that never moves names the mover before it
    ("The tram glides past the shelter; judging by the blur it is doing 160 km/h.",
     ["speed.tram"]),
])
def test_pronouns(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    ("The quarterback's pass travels at 95 km/h.", []),  # the pass, not its owner
    ("The quarterback's top speed is 62 km/h.", ["speed.athlete"]),  # his own speed
    ("In the women's downhill the leaders exceed 120 km/h.", []),  # an event, not the women
    ("The pitcher throws at 150 km/h.", []),  # what he throws moves at that speed
    ("The pitcher jogs to the mound at 30 km/h.", ["speed.jogging"]),
    ("A boy bolts out from behind the parked van at 55 km/h.", ["speed.person"]),
])
def test_owners_events_and_projectiles(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    ("Option D (25 m/s for the walker) is physically impossible.", []),
    ("A walker at 25 m/s would be far too fast for any person.", []),
    ("No pedestrian reaches 60 km/h, so option C is out.", []),
    ("Their closing speed, the two cyclists riding head-on, is about 110 km/h.", []),
    ("The forklift is gaining on the walker at about 35 km/h.", []),
    ("The walker strides along at 20 km/h.", ["speed.walking"]),
])
def test_values_the_text_does_not_claim(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


def test_running_bounds_hold_for_people_on_foot(guardrail):
    sentence = "The leading sprinter hits 68 km/h in the final 200 m."
    assert fired(guardrail, sentence, "How fast does the leader run?") == ["speed.athlete"]
    assert fired(guardrail, sentence, "Who wins the bunch sprint at the velodrome?") == []


@pytest.mark.parametrize("reasoning,expected", [
    ("A shopper strolls past the tills at 18 km/h.", ["speed.walking"]),
    ("She walks to the door, then sprints at 18 km/h to catch the bus.", []),
    ("The toddler totters towards the fountain at 45 km/h.", ["speed.person"]),
    ("The golf buggy whirs along the fairway at 95 km/h.", ["speed.cart"]),
    ("The ice skater, crouched low, holds 95 km/h through the straight.", ["speed.skater"]),
    ("The e-scooter rider weaves through traffic at 130 km/h.", ["speed.e_scooter"]),
    ("The hockey puck leaves the stick at 250 km/h.", ["speed.puck"]),
])
def test_vocabulary(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected
