"""Round 3 (issue 15): the phenomena behind the second development set's misses and false
positives, each worded anew: values of options the answer does not pick, conditionals, owners'
values, participle clauses, closing totals, explicit verdicts, rejected letters, minus signs,
vocabulary (sport bikes, plates, belts, legged robots, swimmers) and stops said after the speed."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail
from tests.guardrail.findings import fired

SPEEDS = "How fast is it going?\nA. 8 km/h\nB. 60 km/h\nC. 400 km/h\nD. 900 km/h"
LETTERS = "Why did the van swerve?\nA. A dog\nB. A pothole\nC. A cyclist\nD. Ice"


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


@pytest.mark.parametrize("reasoning,answer,expected", [
    # Options the answer leaves are weighed, not claimed ...
    ("The drone crosses the yard quickly. 400 km/h and 900 km/h are jet speeds, not a drone's. "
     "B.", "B", []),
    # ... the one it picks is claimed.
    ("The drone crosses the yard in a blur, so it flies at 900 km/h. D.", "D", ["speed.drone"]),
])
def test_option_values(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, SPEEDS) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A conditional states no motion.
    ("At 20 m/s the shuttle robot would cross the whole grid in a second.", []),
    ("Going at 30 m/s, the robot dog would outrun a racehorse.", []),
    # A value right after an owner is the owner's, even in a comparison.
    ("The tram brakes at 2.5 m/s², far gentler than a sports car's 9 m/s².", []),
    ("The tram brakes at 9 m/s², harder than any car.", ["accel.rail"]),
    # After the comma, a participle says what the sentence's subject does.
    ("A runner on the path keeps pace with the bus, jogging along at 50 km/h.",
     ["speed.athlete"]),
    ("The bus overtakes the cyclist, passing him at 50 km/h.", []),
    # A sport bike is a motorcycle; a plate is no handheld thing; a belt conveys.
    ("The sport bike pulls away and reaches 200 km/h.", []),
    ("The rating plate on the mast says 2,500 kg.", []),
    ("The belt moves the totes at about 30 m/s.", ["speed.conveyor"]),
    # Legged robots run faster than wheeled warehouse robots, and slower than cars.
    ("The quadruped gallops across the lab at about 5 m/s.", []),
    ("The quadruped sprints down the hall at 25 m/s.", ["speed.legged_robot"]),
    # Whoever swims is held to swimming speeds.
    ("In the pool the athlete in lane 2 swims freestyle at 8 m/s.", ["speed.swimming"]),
    ("The athlete in lane 2 swims freestyle at about 2 m/s.", []),
    # A distance covered between two moments of the clip.
    ("The cyclist passes the first lamp at 2.0 s and the bridge, 300 m further on, at about "
     "6 s.", ["kinematics.speed"]),
    ("The cyclist passes the first lamp at 2.0 s and the bridge, 30 m further on, at about "
     "6 s.", []),
    ("At 2 s the lead car is 30 m further ahead than at 1 s.", []),
    # A stop said after the speed, by a generic name, over a few centimetres.
    ("The robot dog trots along at 3 m/s. A ball rolls in front of it. The robot stops within "
     "2 cm of where it starts braking.", ["kinematics.acceleration"]),
    ("The pallet jack rolls along at 10 km/h, far too fast here. The truck pulls up within 5 cm "
     "of where braking begins.", ["kinematics.acceleration"]),
])
def test_subjects_and_vocabulary(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # The conclusion closes on a total: sub-counts before it do not count.
    ("One box is on the left, a second on the belt, and a third falls. Two plus one is three.",
     "3", "How many boxes are there?", []),
    ("First crossing at 2 s, then one at 5 s, two more at 7 s and 9 s. That's four crossings.",
     "3", "How many robots cross?", ["answer.count_mismatch"]),
    ("Four cartons stay and 2 slide off the pallet. So 2 fall.", "2",
     "How many cartons fall?", []),
    ("The arm stacks 12 cups, which is 72 cups per minute.", "12",
     "How many cups are stacked?", []),
    # "is" closes a count only after a sum.
    ("Four workers are on the dock. The tallest is one who wears a vest.", "4",
     "How many workers are on the dock?", []),
])
def test_counts(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    ("The van is still moving when the light changes. So, no: it stopped only after the line.",
     "Yes.", "Did the van stop before the line?", ["answer.yes_no_mismatch"]),
    ("The fielder juggles the ball twice. So it wasn't a clean catch.", "Yes.",
     "Was it a clean catch?", ["answer.yes_no_mismatch"]),
])
def test_yes_no(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,answer,expected", [
    ("The van brakes hard and the surface is dry, so D is out. The dog in the lane is the cause.",
     "A", []),
    ("A dog runs out from the verge. The dog, A, is correct.", "B", ["choice.mismatch"]),
])
def test_letters(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, LETTERS) == expected


@pytest.mark.parametrize("reasoning,expected", [
    ("The likelihood of a collision is about \u221215%.", ["probability.range"]),
    ("I'd put the chance of the stack toppling at something like 150%.", ["probability.range"]),
    ("I'd put the chance of the stack toppling at something like 15%.", []),
])
def test_probabilities(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected
