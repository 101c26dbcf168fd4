"""Round 4 (issue 15): the phenomena behind the third development set's (held-out set 3's)
misses and false positives, each worded anew: letters rejected together or only in part, totals
said before their parts, rates and partial sums that are not counts, arithmetic in brackets,
baseball pitches by name."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail
from tests.guardrail.findings import fired

CAUSES = "Why does the tote fall?\nA. The belt stops\nB. A robot knocks it\nC. It is too heavy\nD. Wind"


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


@pytest.mark.parametrize("reasoning,answer,expected", [
    # Letters rejected together, or said not to apply, are no verdict ...
    ("The belt keeps running and nothing brushes the tote, so B and D are out. It tips over "
     "because it is overloaded.", "C", []),
    ("The hall is closed and no fan runs, so D does not apply; the load is simply too much.",
     "C", []),
    ("Indoors there is no wind, so D can't be it; the tote is overloaded.", "C", []),
    # ... nor is a letter that covers only part of what happens.
    ("The arm brushes it late, so B explains only the end: the tote was already tipping "
     "from its own weight.", "C", []),
    # A letter the reasoning settles on still counts.
    ("The arm swings through the tote's lane and clips it, so B.", "C", ["choice.mismatch"]),
    ("Nothing is overloaded and there is no wind, so C and D are out. The arm clips it, "
     "so B.", "A", ["choice.mismatch"]),
])
def test_rejected_letters(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, CAUSES) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # A total said before the parts that follow agrees with the answer.
    ("Counting the trucks: two red forklifts by the dock, two in aisle 3 and one charging, "
     "five altogether. None of them moves.", "5", "How many forklifts are in the hall?", []),
    # A part of a sum whose other part is not a number is not the total, and a time before
    # a noun is no count of it ("at 9 s another person").
    ("The gate opens twice. Overall, three people in thermal suits plus the supervisor walk "
     "through it; at 9 s another person waits outside.", "4",
     "How many people walk through the gate?", []),
    # A rate is not a count.
    ("The machine drops one bottle per second, and the crate holds a full layer when the clip "
     "ends.", "18 bottles", "How many bottles are dropped?", []),
    ("The crate fills at two bottles a second until the clip ends.", "18",
     "How many bottles are dropped?", []),
    # A count the reasoning gives and the answer contradicts is still found.
    ("Three vans park at the kerb and none leaves.", "4", "How many vans park?",
     ["answer.count_mismatch"]),
])
def test_counts(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # Brackets of arithmetic do not end a clause: the conditional before them still holds.
    ("The gap is 10 m, so braking from 20 m/s would need 20²/(2·10) = 20 m/s², which no car "
     "manages.", []),
    ("The car brakes from 20 m/s in 10 m: 20²/(2·10) = 20 m/s², and it stops.",
     ["accel.car", "kinematics.acceleration"]),
    # Pitches by name are the ball's speed, not the batter's.
    ("The batter takes a 96 mph slider for strike two.", []),
    ("The batter takes a 200 mph slider for strike two.", ["speed.pitch"]),
])
def test_values(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A time after a start signal is a duration from rest.
    ("The lights go green at 2 s; 2 s after the green the hatchback is at 140 km/h.",
     ["kinematics.acceleration"]),
    ("The lights go green at 2 s; 8 s after the green the hatchback is at 90 km/h.", []),
    ("The sprinter is at 11 m/s 0.5 s after the gun.", ["kinematics.acceleration"]),
    # A green flag starts a rolling race: no standstill.
    ("The pace car peels off; 2 s after the green flag the saloon is at 140 km/h.", []),
    # A stop after a speed said of nothing (a readout, an overlay) is about what stops.
    ("The dashboard overlay reads 90 km/h. A fox darts out. The van is stationary within "
     "3 m of the braking point.", ["kinematics.acceleration"]),
    ("The dashboard overlay reads 90 km/h. A fox darts out. The van is stationary within "
     "60 m of the braking point.", []),
])
def test_starts_and_stops(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # "is" right before a mass states the thing's own mass; what comes along is not the thing.
    ("The van is parked; the little city car beside it is about 150 kg with its two passengers "
     "aboard.", ["mass.car"]),
    ("The little city car is about 950 kg with its two passengers aboard.", []),
    # A difference, a load or a payload is not the thing's mass.
    ("The city car is 150 kg lighter than the estate.", []),
    ("The city car is 150 kg over its rated payload.", []),
    # Toddlers are far shorter than older children.
    ("A toddler, perhaps 1.6 m tall, totters towards the kerb.", ["height.toddler"]),
    ("A toddler, perhaps 0.9 m tall, totters towards the kerb.", []),
    # What someone stands above is not how tall they are.
    ("The mechanic, who at some 3.1 m tall stands well above the shelving, takes the top "
     "bin.", ["height.person"]),
    ("The mechanic, who at some 1.9 m tall stands just above the shelving, takes the top "
     "bin.", []),
    # A tool tip is the arm's.
    ("During the move the tool tip reaches about 25 m/s.", ["speed.robot_arm"]),
    ("During the move the tool tip reaches about 1.5 m/s.", []),
])
def test_sizes_and_parts(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # Over a length, swimmers average far below their peaks.
    ("In lane 2 the swimmer covers the last 50 m length in about 11 s.", ["kinematics.speed"]),
    ("In lane 2 the swimmer covers the last 50 m length in about 27 s.", []),
    ("The swimmer comes off the blocks and the dive carries her at 5 m/s over the first "
     "length's opening metres.", []),
    # A path's length in an aside, covered in a time.
    ("The picker runs from the loading bay to the gatehouse (about 60 m) in roughly 3 s.",
     ["kinematics.speed"]),
    ("The picker runs from the loading bay to the gatehouse (about 60 m) in roughly 14 s.", []),
    # What a mover carries or pushes moves as the mover does: the mover's bound holds.
    ("The fullback carries the ball upfield at 60 km/h.", ["speed.athlete"]),
    ("The fullback carries the ball upfield at 30 km/h.", []),
])
def test_paths_and_lengths(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # A do-question about something no class names: its verb follows the one noun.
    ("The drum is tipped slowly and the floor below stays clean. So there wasn't any leak.",
     "Yes", "Does any oil leak from the drum?", ["answer.yes_no_mismatch"]),
    ("The drum is tipped slowly and the floor below stays clean. So there wasn't any leak.",
     "No", "Does any oil leak from the drum?", []),
    # "during" is no verb of the predicate.
    ("Drops form on the lid at 4 s. So the paint does drip during the lift.", "No",
     "Does paint drip during the lift?", ["answer.yes_no_mismatch"]),
])
def test_do_questions(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected
