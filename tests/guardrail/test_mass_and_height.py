"""Masses and heights against what people, vehicles, animals and things weigh and measure, with
the limits cited in default_rules.yaml; loads are not their carriers' own weight."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.reasoning import parse_reasoning


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def findings(guardrail: Guardrail, reasoning: str) -> list[tuple[str, str]]:
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\nSee above.\n</answer>"
    return [(f.rule_id, f.message)
            for f in guardrail.check(parse_reasoning(text), GuardrailContext()).findings]


def test_messages_name_the_object_and_the_limit(guardrail):
    assert findings(guardrail, "The security guard, weighing around 520 kg, opens the gate.") == [
        ("mass.person", "security guard weighing 520 kg: people weigh under 350 kg")]
    assert findings(guardrail, "The van is a light panel van weighing about 300 kg.") == [
        ("mass.van", "van weighing 300 kg: vans weigh between 800 kg and 8 t")]


@pytest.mark.parametrize("reasoning,rule", [
    ("The referee, who weighs about 400 kg, blows the whistle.", "mass.person"),
    ("The defender, with a body mass of 310 kg, holds his line.", "mass.athlete"),
    ("The hatchback has a mass of just 150 kg.", "mass.car"),
    ("The articulated lorry weighs 900 kg unladen.", "mass.truck"),
    ("The reach truck weighs about 90 kg, so it is easy to push.", "mass.forklift"),
    ("A puppy of roughly 400 kg runs into the road.", "mass.dog"),
    ("The robot hands over a teacup of about 12 kg.", "mass.handheld"),
    ("The tote on the belt is 250 kg.", "mass.parcel"),
    ("The football weighs 9 kg.", "mass.ball"),
    ("The 2 t tractor unit pulls out.", None),  # no own-weight word: not read as its weight
    ("The humanoid robot weighs about 900 kg.", "mass.humanoid"),
    # loads are not their carriers' weight
    ("The forklift lifts a pallet of 1,400 kg.", None),
    ("The worker drags a 500 kg crate with a winch.", None),
    ("The crane hook holds a load weighing 20 t.", None),
    ("The hatchback weighs about 1,150 kg.", None),
    ("The sumo wrestler weighs about 190 kg.", None),
    ("A 30 kg dog trots beside the jogger.", None),
    ("The drinking glass weighs about 250 g.", None),
    ("A glass pane of 60 kg is carried in.", None),  # not a glass one holds
])
def test_masses(guardrail, reasoning, rule):
    assert [r for r, _ in findings(guardrail, reasoning)] == ([rule] if rule else [])


@pytest.mark.parametrize("reasoning,rule", [
    ("The centre-back is 2.95 m tall.", "height.person"),
    ("The humanoid, about 6 m tall, reaches the top shelf.", "height.humanoid"),
    ("A child about 2.4 m tall stands at the crossing.", "height.child"),
    ("The box truck is 7 m tall.", "height.vehicle"),
    ("The basketball player is 2.26 m tall.", None),  # tall, not impossible (Wadlow: 2.72 m)
    ("The operator raises the forks to a height of 6 m.", None),  # a lift height, not a body's
    ("A worker on the 4 m tall mezzanine waves.", None),  # the mezzanine's height
])
def test_heights(guardrail, reasoning, rule):
    assert [r for r, _ in findings(guardrail, reasoning)] == ([rule] if rule else [])
