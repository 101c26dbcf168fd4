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


@pytest.mark.parametrize("reasoning,expected", [
    # A speed slowed in between, or a slow manoeuvre of its own, is not where a stop starts.
    ("The lorry approaches the gate at 40 km/h. It brakes gently as the barrier stays down. It "
     "creeps the last 1 m and stops at the line.", []),
    ("The coach does about 50 km/h between stops. At the stop it moves forward 0.4 m to line "
     "up with the kerb and halts.", []),
    # Pulling away from the pack is no start from rest; from the kerb it is.
    ("The leading car pulls away from the group at 3 s. At 4 s it is doing about 150 km/h on "
     "the straight.", []),
    ("The scooter pulls away from the kerb at 3 s. At 4 s it is doing about 60 km/h.",
     ["kinematics.acceleration"]),
    # Arriving somewhere inside a route is not covering all of it ...
    ("The picker enters the 90 m aisle at 2 s with her trolley. She arrives at the pick face at "
     "about 6 s and starts scanning.", []),
    # ... while a distance said to the place is.
    ("The picker leaves the desk at 2 s; the shelf is about 60 m away. She arrives at the shelf "
     "at about 6 s and starts scanning.", ["kinematics.speed"]),
])
def test_stops_starts_and_arrivals_guarded(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("question,reasoning,answer,expected", [
    # Mixed judgements are silence; a rate is no size to multiply.
    ("Is the forklift within its rated capacity?",
     "It clears the doorway comfortably, but the load is 2 t over the rating.", "No", []),
    ("Is the forklift within its rated capacity?",
     "The pallet sits well under the rated capacity and the mast is steady.", "No",
     ["answer.yes_no_mismatch"]),
    (None, "She walks at 1.5 m/s and the man beside her jogs at twice that.", "See above.", []),
])
def test_mixed_judgements_and_rates(guardrail, question, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # Items of which only some name what is counted list more than it: a subset.
    ("Vehicles seen at the gate: a forklift at 2 s, a pallet jack at 4 s, and a forklift at "
     "7 s.", "2", "How many forklifts pass the gate?", []),
    ("Vehicles seen at the gate: a forklift at 2 s, a pallet jack at 4 s, and a forklift at "
     "7 s.", "2", "How many vehicles pass the gate?", ["answer.count_mismatch"]),
    # An aside naming the counted thing does not make the list a subset.
    ("In turn: a man with a dog at 2 s (the dog is no walker), a jogger at 5 s, and two "
     "women at 8 s.", "3", "How many walkers pass the bench?", ["answer.count_mismatch"]),
])
def test_enumerations_of_a_subset(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A release at one moment, a landing at another in the next sentence, a height said as such.
    ("The arm swings the cup out over the floor and opens its fingers at about 5.20 s, the cup "
     "some 1.2 m above the tiles. It hits the floor at 5.28 s and shatters.",
     ["kinematics.free_fall"]),
    ("The arm swings the cup out over the floor and opens its fingers at about 5.20 s, the cup "
     "some 1.2 m above the tiles. It hits the floor at 5.80 s and shatters.", []),
    # A low drop, or one pushed down, is no free fall to bound.
    ("The arm lowers the cup to 4 cm above the tray and opens its fingers at 2.0 s. It lands at "
     "2.1 s.", []),
    ("The worker throws the sack from 2 m high, releasing it at 1.0 s; it hits the floor at "
     "1.2 s.", []),
])
def test_falls_between_moments(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected
