"""Round 5 (issue 15): the phenomena behind the fourth development set's (held-out set 4's)
false positives and misses, each worded anew: letters set aside in other words, sums and
increments that are not totals, compounds in "how many", the verb of a do-question, values of an
owner named in a comparison, runners in a race."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail
from tests.guardrail.findings import fired

ROUTES = ("Which route does the AMR take to the dock?\nA. Through aisle 2\nB. Around the racking\n"
          "C. Through aisle 5\nD. It waits")


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


@pytest.mark.parametrize("reasoning,answer,expected", [
    # A letter that only looks right, is dropped, or is faulted for how it reads the scene is
    # no verdict ...
    ("The robot slows at the end of aisle 2, so C could seem likely, but it turns left and "
     "rolls through aisle 2 to the dock.", "A", []),
    ("It never stops moving, so D can be dropped; the path it takes is the aisle 2 one.", "A", []),
    ("Aisle 5 is blocked by a pallet, so C overstates how clear that path is; it goes through "
     "aisle 2.", "A", []),
    ("So B ignores the open aisle right in front of the robot; aisle 2 it is.", "A", []),
    # ... while one the reasoning settles on still is.
    ("The robot swings around the end of the racking, so B.", "A", ["choice.mismatch"]),
    ("It slows at aisle 5 and turns in there, so the answer is C.", "A", ["choice.mismatch"]),
])
def test_letters_set_aside(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, ROUTES) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # A sum's first term is a part, not the total it closes on.
    ("Two pickers stand at the wall, four load the truck and one drives the forklift. So that "
     "is 2 + 4 + 1 = 7 people.", "7", "How many people are working at the dock?", []),
    ("That makes 2 plus 4 plus 1, which is 7 workers.", "7 workers",
     "How many workers are at the dock?", []),
    # A closing total other than the answer's is still a mismatch.
    ("Two at the wall, four at the truck: that's 2 + 4 = 6 workers.", "7",
     "How many workers are at the dock?", ["answer.count_mismatch"]),
    # "N more" is what was added, not how many there are.
    ("Eleven crates sit on the shelf when the clip opens, and the arm adds three more crates "
     "before it ends, so fourteen in all.", "14", "How many crates are on the shelf at the end?",
     []),
    ("The shelf is half full when the clip opens; the arm adds three more crates before it "
     "ends.", "14", "How many crates are on the shelf at the end?", []),
    ("The arm adds three crates before the clip ends.", "14",
     "How many crates does the arm add?", ["answer.count_mismatch"]),
    # What a compound counts is its head: "how many loading bays" is answered in bays.
    ("The yard has 10 bays; 6 trucks and 2 vans take eight of them.", "2 bays",
     "How many loading bays are still free?", []),
    ("The yard has 10 bays; vans take 3 bays and trucks 4 bays.", "5 bays",
     "How many loading bays are still free?", ["answer.count_mismatch"]),
])
def test_sums_and_increments(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,answer,expected", [
    # The verb before the preposition is the predicate: a denial about another thing ("the
    # grey crate is not the target") is not a denial that the parcel lands in it.
    ("The parcel leaves the chute at 1.1 s and drops squarely into the crate at 1.6 s. The "
     "grey crate to its left is not the target, and nothing falls there.", "Yes", []),
    # A denial of the verb itself still counts.
    ("The parcel clips the crate's rim at 1.6 s and bounces off, so it does not land in "
     "the crate.", "Yes", ["answer.yes_no_mismatch"]),
])
def test_verb_of_a_do_question(guardrail, reasoning, answer, expected):
    question = "Does the parcel land in the crate?"
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A value right after an owner, even as a range, is the owner's, not the subject's.
    ("The streetcar brakes at about 2.5 m/s², far below a sports car's 8–10 m/s², and stops "
     "in 30 m.", []),
    ("The streetcar brakes at about 2.5 m/s², gentler than a hatchback's 6 to 8 m/s².", []),
    # The subject's own value still counts.
    ("The streetcar brakes at about 9 m/s², like a sports car.", ["accel.rail"]),
])
def test_range_after_an_owner(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # In a race, the runners may pass 40 km/h whatever the text calls them ...
    ("At the finish of the 200 m race the winning woman is still doing about 11.5 m/s, which "
     "elite women can hold near the line.", []),
    # ... but nobody passes the fastest sprinter ever measured ...
    ("At the finish of the 200 m race the winning woman is still doing about 14 m/s.",
     ["speed.person_racing"]),
    # ... and away from a race, a person is held to 40 km/h.
    ("On the pavement outside the shop the woman runs at about 11.5 m/s.",
     ["speed.person"]),
])
def test_runners_in_a_race(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,answer,expected", [
    # A bracketed letter closing the reasoning is its verdict, however the sentence runs ...
    ("The robot takes the long way round the end of the racking, which is (B).", "A",
     ["choice.mismatch"]),
    ("Aisle 2 is blocked and it never waits, so its path is the one round the racking, (B).",
     "B", []),
    # ... unless it is denied.
    ("It goes through aisle 2, so the answer is not (B).", "A", []),
])
def test_bracketed_letter_closes(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, ROUTES) == expected


def _timestamps(guardrail, reasoning: str) -> list[str]:
    from app.guardrail import GuardrailContext
    from app.reasoning import parse_reasoning
    parsed = parse_reasoning(f"<think>\n{reasoning}\n</think>\n<answer>\nYes\n</answer>")
    return sorted({f.rule_id for f in guardrail.check(parsed, GuardrailContext(duration_s=8))
                   .findings})


@pytest.mark.parametrize("reasoning,expected", [
    # "By N s" opening a clause is a moment ...
    ("The shot goes in at 6.1 s. By 9.4 s the guard has taken the ball out of the net.",
     ["time.after_clip_end"]),
    ("The van brakes at 2 s, and by 9.5 s it is parked.", ["time.after_clip_end"]),
    # ... a margin "by N s" is not.
    ("She wins the heat by 9.5 s over the next swimmer, a huge gap.", []),
])
def test_by_a_moment(guardrail, reasoning, expected):
    assert _timestamps(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # In a baseball scene the radar reads the pitch, whatever the sentence calls it.
    ("The pitcher comes set and delivers at 1.2 s. The radar shows 118 mph on a grip that "
     "looks like a cutter.", ["speed.pitch", "speed.radar_pitch"]),
    ("The pitcher comes set and delivers at 1.2 s. The radar flashes 118 mph as it crosses.",
     ["speed.radar_pitch"]),
    ("The pitcher comes set and delivers at 1.2 s. The radar flashes 94 mph as it crosses.", []),
    # A batted ball's exit speed and a tennis serve are not pitches.
    ("The pitcher delivers at 1.2 s and the batter drives it; the radar clocks the exit "
     "speed at 112 mph.", []),
    ("The server tosses at 1 s; the radar reads 205 km/h for the serve.", []),
])
def test_radar_in_baseball(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A mass in an apposition ("X, at N t,") is the thing's own.
    ("The pickup, at roughly 30 tonnes, shoves the small car aside.", ["mass.car"]),
    ("The pickup, at roughly 2.5 tonnes, shoves the small car aside.", []),
    # "Outweighs" says a mass too; a load it carries is not its own.
    ("The sedan outweighs the scooter at 40 t.", ["mass.car"]),
    ("The pickup, loaded at roughly 30 tonnes of gravel, crawls up the ramp.", []),
])
def test_mass_in_apposition(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("question,reasoning,answer,expected", [
    # Conclusions that state the question's state in other words than its own ...
    ("Is the pile of tyres still standing when the clip ends?",
     "The loader's bucket nudges the pile at 3 s. The top tyres roll away and by 6 s the whole "
     "pile is down.", "Yes", ["answer.yes_no_mismatch"]),
    ("Is the pile of tyres still standing when the clip ends?",
     "The loader's bucket nudges the pile at 3 s. It wobbles but never tips over, and it stays "
     "put.", "Yes", []),
    ("Does the crate topple off the trolley?",
     "The trolley hits the door sill at 2 s. The crate slides to the edge and falls off.",
     "No", ["answer.yes_no_mismatch"]),
    ("Does the crate topple off the trolley?",
     "The trolley hits the door sill at 2 s. The crate shifts a few centimetres and stays put.",
     "No", []),
    ("Is it safe for the cyclist to pull out now?",
     "A bus is 20 m back in the lane at 40 km/h. Holding back until it passes is wiser.",
     "Yes", ["answer.yes_no_mismatch"]),
    ("Is it safe for the cyclist to pull out now?",
     "The lane behind is empty for 200 m. Nothing is coming, so there is no conflict.",
     "Yes", []),
    ("Did the scooter come to a complete stop at the line?",
     "The scooter slows to walking pace at the line at 2 s. It then rolls through and turns "
     "right.", "Yes", ["answer.yes_no_mismatch"]),
    ("Did the scooter come to a complete stop at the line?",
     "The scooter slows at the line at 2 s. Its wheels are still for a full second, so it came "
     "to rest.", "Yes", []),
    ("Is the cyclist wearing a helmet?",
     "The cyclist passes the camera at 3 s. Her hair blows freely; she is riding bare-headed.",
     "Yes", ["answer.yes_no_mismatch"]),
    ("Did the sprinter in lane 2 win?",
     "Lane 4 leans at the line ahead of everyone. Lane 2 finishes third, a metre back.",
     "Yes", ["answer.yes_no_mismatch"]),
    ("Was the runner out at second?",
     "The tag comes down on his back at 4.2 s. His hand was on the bag a frame earlier: he is "
     "safe.", "Yes", ["answer.yes_no_mismatch"]),
    ("Did any paint spill from the can?",
     "The arm tips the can at 2 s. A few drops land on the bench beside the tray.", "No", []),
    ("Did any paint spill from the can?",
     "The arm tips the can at 2 s. Every drop goes into the tray without a splash.", "Yes",
     ["answer.yes_no_mismatch"]),
    # ... and a question of no family reads nothing into them.
    ("Is the forklift carrying a pallet?",
     "The forklift backs out at 2 s. A stack in the next aisle topples and is down by 5 s.",
     "Yes", []),
])
def test_family_conclusions(guardrail, question, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,answer,expected", [
    # A total given mid-reasoning that the answer contradicts, where the answer's count is
    # never given ...
    ("A tug tows carts past the dock at 4 s, a second one at 9 s and a third at 12 s. That "
     "makes three passing in total. A fourth idles by the charger all along.", "Two",
     ["answer.count_mismatch"]),
    # ... but not where the answer's count is given as well.
    ("A tug tows carts past at 4 s, a second at 9 s and a third at 12 s. That makes three "
     "passing in total. With the one idling by the charger, four tugs are in view.", "Four",
     []),
    # A list that closes the reasoning is a count of its items, whatever they are.
    ("It scans bays 1 to 6 and then 9 and 11, skipping 7, 8 and 10. Scanned: 1, 2, 3, 4, 5, 6, "
     "9, 11.", "7", ["answer.count_mismatch"]),
    ("It scans bays 1 to 6 and then 9 and 11, skipping 7, 8 and 10. Scanned: 1, 2, 3, 4, 5, 6, "
     "9 and 11.", "8", []),
])
def test_totals_and_lists(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, "How many tugs pass the dock?"
                 if "tug" in reasoning else "How many bays does it scan?") == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A speed at one moment and a standstill at another, in different sentences: the change
    # over the time between them ...
    ("At 3.0 s the van is cruising at about 90 km/h in the middle lane. Its brake lights "
     "flash at 3.2 s, and by 3.5 s it is fully stopped.", ["kinematics.acceleration"]),
    ("The delivery van is stopped at the lights at 1.0 s. The light changes and, at 2.0 s, "
     "it is already doing 80 km/h.", ["kinematics.acceleration"]),
    # ... is read with the moments furthest apart, so a plausible stop stays silent ...
    ("At 3.0 s the van is cruising at about 50 km/h in the middle lane. Its brake lights "
     "flash at 5.5 s, and by 7.0 s it is fully stopped.", []),
    # ... and a speed of another object, or one in another paragraph, is not the stop's.
    ("The delivery van is stopped at the lights at 1.0 s. At 1.5 s a motorbike passes it at "
     "80 km/h.", []),
    ("At 3.0 s the van is cruising at about 90 km/h.\n\nBy 3.5 s the tram in the next clip is "
     "fully stopped.", []),
])
def test_speed_changes_between_moments(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("question,reasoning,answer", [
    # Plain "standing" is asked of people too: a stack falling elsewhere says nothing about it.
    ("Is anyone standing in the crossing when the light turns green?",
     "A man waits in the crossing at 4 s. Behind him a stack of cones topples over.", "Yes"),
    # "Out" of a vehicle is no batter's out, whatever "safe" says.
    ("Does he get out of the van before it moves?",
     "The driver opens the door at 2 s and steps down. He is safe on the kerb when it leaves.",
     "Yes"),
    # A running total is not the answer's rival ...
    ("How many tugs pass the dock?",
     "A tug passes at 4 s and a second at 9 s. That makes two so far. Three more pass before "
     "the clip ends.", "5"),
    ("How many tugs pass the dock?",
     "A tug passes at 4 s and a second at 9 s, that makes two. Three more pass before the clip "
     "ends.", "5"),
    # ... nor is a closing list of counts one to count by its items.
    ("How many vehicles park?", "Cars park at 2, 5 and 9 s, vans at 12 s and 14 s. Breakdown: "
     "3 cars, 2 vans.", "5"),
])
def test_silent_on_near_misses(guardrail, question, reasoning, answer):
    assert fired(guardrail, reasoning, answer, question) == []
