"""Each rule type on short outputs: what fires, what must not, and where findings point."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail, GuardrailContext, parse_policy
from app.reasoning import parse_reasoning

ABCD = ["A", "B", "C", "D"]


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def fired(guardrail: Guardrail, reasoning: str, answer: str = "B", **ctx) -> list[str]:
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\n{answer}\n</answer>"
    result = guardrail.check(parse_reasoning(text), GuardrailContext(**ctx))
    return sorted({f.rule_id for f in result.findings})


# reasoning, context, rule ids expected (empty: must pass)
CASES = [
    # speeds by object, in several units
    ("A pedestrian is crossing at 90 km/h.", {}, ["speed.person"]),
    ("The pedestrian walks at about 5 km/h.", {}, []),
    ("The child runs out at nearly 50 mph.", {}, ["speed.person"]),
    ("The sprinter reaches 36 km/h.", {}, []),
    ("The striker sprints at 65 km/h.", {}, ["speed.athlete"]),
    ("The car drives at 90 km/h on the highway.", {}, []),
    ("The sedan was doing 480 km/h.", {}, ["speed.car"]),
    ("The forklift moves at 12 km/h.", {}, []),
    ("The forklift speeds down the aisle at 65 km/h.", {}, ["speed.forklift"]),
    ("The AMR travels at 1.5 m/s.", {}, []),
    ("The AMR travels at 12 m/s.", {}, ["speed.mobile_robot"]),
    ("The robot arm moves at 40 m/s.", {}, ["speed.robot_arm"]),
    ("The ball leaves the foot at 600 km/h.", {}, ["speed.ball"]),
    ("The serve reaches 1,400 km/h.", {}, ["speed.serve", "speed.supersonic"]),  # a record, and sound
    ("The speed of the bus is -30 km/h.", {}, ["speed.negative"]),
    ("The relative speed is -5 m/s as the gap closes.", {}, []),
    # a quantity said about several objects must break every one's bound
    ("The car passes the pedestrian at 45 km/h.", {}, []),
    ("The car brakes at 3 g to avoid the pedestrian.", {}, ["accel.car"]),
    ("The worker walks at 5 km/h and the forklift passes at 20 km/h.", {}, []),
    ("The pedestrian is at the curb, and the car approaches at 50 km/h.", {}, []),
    ("The ego vehicle keeps its lane. It accelerates to 500 km/h.", {}, ["speed.car"]),
    ("The keeper dives.\n\nThe serve is hit at around 210 km/h.", {}, []),  # no pronoun
    ("The keeper dives.\n\nIt flies at around 210 km/h.", {}, []),  # another paragraph
    # accelerations, and "g" as gravity or grams
    ("The car performs an emergency stop at 0.8 g.", {}, []),
    ("The car decelerates at 45 m/s² until it stops.", {}, ["accel.car"]),
    ("The gripper lifts a 500 g block and stops above the bin.", {}, []),
    ("The runner accelerates at 4 g out of the blocks.", {}, ["accel.person"]),
    # lengths
    ("The gap to the lead vehicle is -6 m.", {}, ["distance.negative"]),
    ("The target is at x = -0.25 m from the base.", {}, []),
    ("The lanes keep a 2-3 m gap between them.", {}, []),
    ("The worker, about 4 m tall compared with the shelving, reaches the top.", {},
     ["height.person"]),
    ("The worker passes a 10 m tall rack.", {}, []),
    # times against the clip
    ("At 14 s the light turns green.", {"duration_s": 5}, ["time.after_clip_end"]),
    ("At 14 s the light turns green.", {}, []),
    ("At 4.5 s the car stops.", {"duration_s": 5}, []),
    ("At 5.2 s the car stops.", {"duration_s": 5}, []),  # within the tolerance
    ("The gripper releases at 00:12.", {"duration_s": 7}, ["time.after_clip_end"]),
    ("Around the 25-second mark the line stops.", {"duration_s": 10}, ["time.after_clip_end"]),
    ("During the first 20 seconds the arm sorts screws.", {"duration_s": 6},
     ["time.after_clip_end"]),
    ("From 2 s to 9 s the arm sorts screws.", {"duration_s": 6}, ["time.after_clip_end"]),
    ("The time-to-collision is about 8 s.", {"duration_s": 5}, []),  # a duration, not a moment
    ("Contact happens at t = -0.5 s.", {"duration_s": 5}, ["time.negative"]),
    # probabilities
    ("The probability of collision is 1.4.", {}, ["probability.range"]),
    ("There is a 130% chance the stack tips.", {}, ["probability.range"]),
    ("The probability of collision is about 0.15; I'm 90% confident.", {}, []),
    ("The probability that 2 cars collide is low; a 1 in 3 chance.", {}, []),
]


@pytest.mark.parametrize("reasoning,ctx,expected", CASES, ids=[c[0][:50] for c in CASES])
def test_quantity_time_and_probability_rules(guardrail, reasoning, ctx, expected):
    assert fired(guardrail, reasoning, **ctx) == expected


@pytest.mark.parametrize("reasoning,answer,choices,expected", [
    ("So the answer is B.", "B", ABCD, []),
    ("So the answer is B.", "C", ABCD, ["choice.mismatch"]),
    ("Option A says stop. Option C is correct because the light is red.", "(A)", ABCD,
     ["choice.mismatch"]),
    ("Therefore, option B is correct.", "B. Keep the lane.", ABCD, []),
    ("I would pick E.", "E", ABCD, ["choice.not_offered"]),
    ("So the answer is D.", "D", ["A", "B", "C"], ["choice.not_offered"]),
    ("So A car would stop here.", "B", ABCD, []),  # the article is not a letter
    ("The car stops.", "A car is stopping at the line.", None, []),
    ("The answer is not B; it is C.", "C", ABCD, []),
])
def test_choice_rules(guardrail, reasoning, answer, choices, expected):
    assert fired(guardrail, reasoning, answer, choices=choices) == expected


def test_format_rules(guardrail):
    check = lambda text, **kw: sorted({f.rule_id for f in guardrail.check(  # noqa: E731
        parse_reasoning(text, truncated=kw.get("truncated", False)),
        GuardrailContext(truncated=kw.get("truncated", False))).findings})
    assert check("<think>R</think>") == ["format.no_answer"]
    assert check("<think>R</think><answer>\n</answer>") == ["format.empty_answer"]
    assert check("<think>R</think><answer>Stop and", truncated=True) == ["format.truncated"]
    assert check("<think>R is long", truncated=True) == ["format.no_answer", "format.truncated"]
    assert check("The car stops.") == []


def test_spans_point_into_the_raw_text(guardrail):
    text = ("<think>\nThe car is fine. A pedestrian jogs at 90 km/h.\n</think>\n\n"
            "<answer>\nE\n</answer>")
    result = guardrail.check(parse_reasoning(text), GuardrailContext(choices=ABCD))
    spans = {f.rule_id: (text[f.span[0]:f.span[1]], f.source) for f in result.findings}
    assert spans == {"speed.person": ("90 km/h", "reasoning"),
                     "choice.not_offered": ("E", "answer")}
    no_answer = guardrail.check(parse_reasoning("<think>R</think>")).findings[0]
    assert no_answer.span == (16, 16) and no_answer.to_dict()["span"] == [16, 16]


def test_messages_name_the_object_as_written(guardrail):
    result = guardrail.check(parse_reasoning("<think>The Forklift moves at 65 km/h.</think>"))
    speed = next(f for f in result.findings if f.rule_id == "speed.forklift")
    assert speed.message == "forklift at 65 km/h: industrial trucks stay below 30 km/h"
    assert speed.severity == "critical"


@pytest.mark.parametrize("policy,verdict,count", [
    ({}, "flag", 2),
    ({"critical": "block"}, "block", 2),
    ({"critical": "off"}, "flag", 1),
    ({"critical": "off", "warning": "off"}, "pass", 0),
])
def test_policy_decides_verdict_and_drops_off_severities(guardrail, policy, verdict, count):
    text = "<think>The forklift moves at 65 km/h.</think>"  # critical speed + warning no-answer
    result = guardrail.check(parse_reasoning(text), GuardrailContext(), policy=policy)
    assert (result.verdict, len(result.findings)) == (verdict, count)


def test_may_block_and_parse_policy():
    assert not Guardrail.from_yaml().may_block
    blocking = Guardrail.from_yaml(policy=parse_policy("critical=block, info=off"))
    assert blocking.may_block and blocking.enabled
    assert blocking.policy == {"info": "off", "warning": "annotate", "critical": "block"}
    assert not Guardrail.from_yaml(policy=parse_policy("info=off,warning=off,critical=off")).enabled
    with pytest.raises(ValueError):
        parse_policy("critical=drop")
    with pytest.raises(ValueError):
        Guardrail.from_yaml(policy={"severe": "block"})


def test_context_with_truncated_is_a_copy():
    ctx = GuardrailContext(duration_s=5.0, choices=ABCD)
    assert ctx.with_truncated(True) == GuardrailContext(5.0, ABCD, True)
    assert ctx.truncated is False
