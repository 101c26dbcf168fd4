"""Derived kinematics: what a sentence implies (a = dv/dt, a = v²/2d, v = d/t) against the bounds
the rule file gives each object class, with the arithmetic in the message."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.reasoning import parse_reasoning


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def findings(guardrail: Guardrail, reasoning: str) -> list[tuple[str, str]]:
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\nIt is fine.\n</answer>"
    return [(f.rule_id, f.message) for f in guardrail.check(parse_reasoning(text)).findings]


def test_the_issues_examples_show_the_arithmetic(guardrail):
    assert findings(guardrail, "The sedan comes to a stop from 100 km/h within 0.5 m, which is "
                               "ordinary braking.") == [
        ("kinematics.acceleration", "100 km/h to 0 in 0.5 m is 772 m/s² (78.7 g); a sedan "
                                    "accelerates or brakes at most ~1.5 g")]
    assert findings(guardrail, "The delivery van accelerates from rest to 200 km/h in 2 seconds "
                               "on the residential street.") == [
        ("kinematics.acceleration", "0 to 200 km/h in 2 seconds is 27.8 m/s² (2.83 g); a "
                                    "delivery van accelerates or brakes at most ~1 g")]


# sentence, rule expected (None: must pass)
CASES = [
    # speed change over a time
    ("The car accelerates 0-100 km/h in 1 s.", "kinematics.acceleration"),
    ("The car accelerates 0-100 km/h in 6 s.", None),
    ("The bus slows from 50 km/h to 20 km/h in 0.5 s.", "kinematics.acceleration"),
    ("The bus slows from 50 km/h to 20 km/h over 4 s.", None),
    ("The forklift goes from 10 km/h to a standstill in half a second.", None),  # 0.57 g
    ("The forklift goes from 25 km/h to a standstill in a split second.", None),  # "a second"
    ("The tram brakes from 50 km/h to a halt in 2 s.", "kinematics.acceleration"),  # 0.71 g
    ("The train takes 0.5 s to stop from 80 km/h.", "kinematics.acceleration"),
    # speed change over a distance
    ("The car brakes from 50 km/h to a stop in 12 m.", None),  # 0.82 g
    ("The car slows from 80 to 30 km/h within 5 m.", "kinematics.acceleration"),
    ("The motorcycle's stopping distance of 2 m from 120 km/h is short.",
     "kinematics.acceleration"),
    ("The AMR accelerates from rest to 2 m/s over 0.1 m.", "kinematics.acceleration"),
    # distance over a time
    ("The runner covers 100 m in 5 s.", "kinematics.speed"),
    ("The runner covers 100 m in 12 s.", None),
    ("The drone flies 500 m in 2 s over the yard.", "kinematics.speed"),
    # positions, moments and negations are not motion
    ("The forklift stops within 0.5 m of the worker while moving at 15 km/h.", None),
    ("The car at 60 km/h cannot stop within 5 m, so a collision is likely.", None),
    ("The car at 60 km/h stops 2 m before the line after 3 s.", None),
    ("With a reaction time of 0.2 s the driver brakes from 100 km/h to a stop.", None),
    ("The car travels at 50 km/h and will reach the crossing in 2 s.", None),
    ("The ball goes from 0 to 120 km/h in 0.01 s off the boot.", None),  # no bound for balls
]


@pytest.mark.parametrize("sentence,rule", CASES, ids=[c[0][:48] for c in CASES])
def test_derived_values(guardrail, sentence, rule):
    fired = {r for r, _ in findings(guardrail, sentence) if r.startswith("kinematics.")}
    assert fired == ({rule} if rule else set())


def test_bounds_come_from_the_quantity_rules(guardrail):
    limits = next(r for r in guardrail.rules if r.id == "kinematics.acceleration").limits
    stated = {r.id: r.max for r in guardrail.rules if r.id.startswith("accel.")}
    assert limits["car"] == stated["accel.car"]
    assert limits["van"] == stated["accel.truck"]
    assert limits["tram"] == stated["accel.rail"] < limits["car"]


def test_the_object_may_be_a_pronouns_referent(guardrail):
    # 50 km/h to 0 in 2 s is 0.71 g: fine for a car, not for a tram.
    assert findings(guardrail, "The tram approaches the stop. It brakes from 50 km/h to a "
                               "standstill in 2 s.")
    assert not findings(guardrail, "The car approaches the stop. It brakes from 50 km/h to a "
                                   "standstill in 2 s.")
