"""Round 6 (issue 15), continued from test_round6.py: negative separations, and the yes/no
families widened to waiting and to goals, each worded anew."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail
from tests.guardrail.findings import fired


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


@pytest.mark.parametrize("reasoning,expected", [
    # A negative separation "short of" or "beyond" a mark is no distance.
    ("The tram halts \u22122 m short of the platform end.", ["distance.negative"]),
    ("The lorry ends up -4 m beyond the barrier.", ["distance.negative"]),
    ("The tram halts 2 m short of the platform end.", []),
])
def test_negative_separations(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("question,reasoning,answer,expected", [
    # Asked whether someone should have waited: no gap, or the other's priority, says yes.
    ("Should the van have yielded to the bus pulling out?",
     "The bus indicates at 2 s and starts moving at 3 s. Buses leaving a stop have priority "
     "here, and the van had no reason to squeeze past. The gap just wasn't there.", "No",
     ["answer.yes_no_mismatch"]),
    ("Should the van have yielded to the bus pulling out?",
     "The bus indicates at 2 s and starts moving at 3 s. Buses leaving a stop have priority "
     "here, and the van had no reason to squeeze past. The gap just wasn't there.", "Yes", []),
    ("Should the scooter have waited before entering the roundabout?",
     "The nearest car is 80 m away at 30 km/h when the scooter enters at 4 s. The gap was big "
     "enough for it.", "Yes", ["answer.yes_no_mismatch"]),
    # Asked whether the whole ball crossed: a goal given says yes.
    ("Did the ball fully cross the line before the keeper scooped it out?",
     "The goal-line camera frame at 6.1 s shows a sliver of grass between ball and line. The "
     "referee points to the centre circle; the goal is given.", "No",
     ["answer.yes_no_mismatch"]),
])
def test_wait_and_goal_families(guardrail, question, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, question) == expected
