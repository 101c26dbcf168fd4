"""Round 6 (issue 15): the mechanisms behind held-out set 5's misses and false positives, each
worded anew: stops and starts carried across sentences, outcomes judged without restating the
question, counts added up from a list, durations that are not moments, pronouns that cannot
name a plural, values read off a display, negated cues."""
from __future__ import annotations

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.reasoning import parse_reasoning
from tests.guardrail.findings import fired


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def fired_in_clip(guardrail: Guardrail, reasoning: str, duration_s: float) -> list[str]:
    text = f"<think>\n{reasoning}\n</think>\n\n<answer>\nSee above.\n</answer>"
    ctx = GuardrailContext(duration_s=duration_s)
    return sorted({f.rule_id for f in guardrail.check(parse_reasoning(text), ctx).findings})


@pytest.mark.parametrize("reasoning,expected", [
    # A stop whose distance follows a verb of motion, not a preposition, two sentences after
    # the speed of the same object.
    ("The van comes down the hill at around 70 km/h. Its hazard lights start flashing. The "
     "front wheels roll just about 2 m further and then the van is stationary.",
     ["kinematics.acceleration"]),
    ("The pallet truck trundles along at about 12 km/h. The operator lets go of the tiller. It "
     "moves only a finger's breadth, roughly 2 cm, and then it is at rest.",
     ["kinematics.acceleration"]),
    # ... a plausible stop of the same shape ...
    ("The van comes down the hill at around 30 km/h. Its hazard lights start flashing. The "
     "front wheels roll about 12 m further and then the van is stationary.", []),
    # ... and a position, not a distance travelled.
    ("The van comes down the hill at around 70 km/h. It moves into the left lane and halts "
     "about 2 m behind the bus.", []),
])
def test_stops_carried_across_sentences(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # Leaving rest at one moment and a speed at another, in the next sentence.
    ("The hatchback waits at the give-way line. It pulls away at 1.0 s, tyres chirping. By "
     "2.0 s it's level with the parked truck, doing roughly 110 km/h judging by my mirror.",
     ["kinematics.acceleration"]),
    ("The tram sits at the platform with its doors shut. It starts moving at 3 s. At 4 s it is "
     "already running at about 60 km/h past the kiosk.", ["kinematics.acceleration"]),
    # The same with a time a car can do it in.
    ("The hatchback waits at the give-way line. It pulls away at 1.0 s, tyres chirping. By "
     "9.0 s it's level with the parked truck, doing roughly 70 km/h judging by my mirror.", []),
    # "Pulls out" is a lane change as often: no start from rest.
    ("The hatchback cruises in lane 1. It pulls out at 1.0 s to pass. By 2.0 s it is doing "
     "about 110 km/h.", []),
])
def test_starts_from_rest_at_a_moment(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("question,reasoning,answer,expected", [
    # A good outcome asked about, the scene judged bad in the closing sentences.
    ("Does the cyclist keep a safe distance from the lorry?",
     "The cyclist filters up the inside at 2 s. The lorry turns left at 3 s with him beside "
     "its rear wheels. That was very nearly a collision.", "Yes", ["answer.yes_no_mismatch"]),
    ("Is the crate's weight within the crane's limit?",
     "The crate is stencilled 800 kg and the hoist plate says 2 t. Plenty of margin remains.",
     "No", ["answer.yes_no_mismatch"]),
    # A bad outcome asked about, the scene judged good.
    ("Did the goalkeeper foul the striker?",
     "The keeper goes down at 4 s and gets his hands on the ball first. The striker hurdles "
     "him cleanly, and it's all within the rules.", "Yes", ["answer.yes_no_mismatch"]),
    # Agreeing answers, a denied judgement, and a mixed one are silent.
    ("Does the cyclist keep a safe distance from the lorry?",
     "The cyclist waits behind the lorry until it has turned. He passes it comfortably on "
     "the right afterwards.", "Yes", []),
    ("Is the forklift within its rated capacity?",
     "The pallet looks heavy, but the mast stays upright. Nothing here points to an overload.",
     "Yes", []),
    ("Is the forklift within its rated capacity?",
     "The pallet is near the rating. There is some margin, but the rear wheels lift, a real "
     "danger.", "Yes", []),
])
def test_outcome_judged_without_restating(guardrail, question, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # A whole list of counts adds up to the answer ...
    ("Across the clip 12 parcels go by. The arm picks off the small ones: so 4 boxes and 3 "
     "pouches in total go to the side bin.", "7", "How many parcels go to the side bin?", []),
    # ... its first terms do not.
    ("Two cones on the left, plus one by the kerb, plus two at the gate, so five cones.", "3",
     "How many cones are on the road?", ["answer.count_mismatch"]),
    # An explicit sum anywhere is the total.
    ("The first lift takes 2 crates and the second 5 crates, so 2 + 5 = 7 crates. The arm "
     "then parks.", "7", "How many crates does the arm lift?", []),
    # What is left is a difference of counts.
    ("The rack has 20 bays; the robot fills 14 bays during the clip.", "6",
     "How many bays are still free at the end?", []),
    ("The rack has 20 bays; the robot fills 14 bays during the clip.", "5",
     "How many bays are still free at the end?", ["answer.count_mismatch"]),
    # "No" with a modifier is none of a kind, "one every 2 s" a rate: neither is the count.
    ("The blades dip at 1.0, 3.0, 5.0, 7.0 and 9.0 s, and no half stroke opens the clip; one "
     "stroke every 2 s.", "5", "How many strokes are taken?", []),
])
def test_counts_added_up(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # How long something takes is no moment of the clip, whatever word stands before it ...
    ("At 5 km/h over the 60 m yard, the walk takes around 43 s, far longer than we see.", []),
    # ... a moment after the clip's end is still one.
    ("The barrier lifts again at around 43 s.", ["time.after_clip_end"]),
])
def test_durations_are_not_moments(guardrail, reasoning, expected):
    assert fired_in_clip(guardrail, reasoning, 15.0) == expected


QUESTION = ("Which tyre failed?\nA. Front left\nB. Front right\nC. Rear left\nD. Rear right")


@pytest.mark.parametrize("reasoning,answer,expected", [
    # A letter judged "very unlikely" is set aside, not chosen.
    ("The debris lands on the right, so A is very unlikely. The front right tread peels off "
     "first: B.", "B", []),
    ("The debris lands on the right, so B is highly implausible; the rear right flaps: D.", "D",
     []),
    ("The debris is all on the right and the front right tread peels off first, so A is very "
     "unlikely.", "B", []),
])
def test_letters_set_aside_with_an_adverb(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, QUESTION) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # "It" does not name the plural just before it: the deer, not the parked cars.
    ("A deer leaps out from between three parked cars. It bounds across the road at about "
     "40 m/s and into the trees.", ["speed.horse"]),
    # A value a display shows of him is his.
    ("The winger picks the ball up at 2 s; the broadcast graphic shows him reaching 19 m/s "
     "down the line.", ["speed.athlete"]),
    ("The winger picks the ball up at 2 s; the broadcast graphic shows him reaching 9 m/s "
     "down the line.", []),
    # A walker said not to hurry is still walking.
    ("The man crosses at the lights. He walks at about 6 m/s, relaxed and not hurrying.",
     ["speed.walking"]),
    # A rate's divisor is not what the clause measures.
    ("At about 600 kg per pallet, the lorry's cargo comes to roughly 13 t.", []),
])
def test_who_the_value_is_about(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected



ROUTE_Q = ("Why does the shuttle halt at the junction?\nA. Its charge is nearly empty\n"
           "B. Its bumper sensor touches a cart\nC. It is waiting for a lift\nD. A software crash")


@pytest.mark.parametrize("reasoning,answer,expected", [
    # The last sentence restates one option's content, and concludes: that option.
    ("The shuttle rolls into the junction at 2 s and stops dead at 2.4 s. A cart left across "
     "the track has its handle right against the front. The bumper sensor touching the cart "
     "is the cause that fits.", "C", ["choice.mismatch"]),
    ("The shuttle rolls into the junction at 2 s and stops dead at 2.4 s. A cart left across "
     "the track has its handle right against the front. The bumper sensor touching the cart "
     "is the cause that fits.", "B", []),
    # A description that merely ends on another option's words, or denies it, concludes nothing.
    ("The lift doors open at 5 s and the shuttle drives in. Its bumper sensor touches a cart "
     "on the way.", "C", []),
    ("The shuttle waits for the lift until 6 s, so the cause is not the bumper sensor or a "
     "cart.", "C", []),
    # A letter that "fits best" or that something "matches" is the verdict.
    ("The doors open at 5 s and it drives straight into the lift. C fits best.", "A",
     ["choice.mismatch"]),
    ("The doors open at 5 s and it drives straight into the lift, which matches C.", "A",
     ["choice.mismatch"]),
])
def test_option_restated_by_content(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, ROUTE_Q) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # A height from a multiple of another ...
    ("The mast looms over the operator: it is about three times his height, and he is roughly "
     "1.9 m.", []),
    ("Beside the 1.7 m driver, the woman looks about twice that.", ["size.compared"]),
    # ... or from a difference ...
    ("Next to the 2.1 m door, the goalkeeper looks a metre taller than the door.", []),
    ("The goalkeeper looks a metre taller than the 2.1 m crossbar.", ["size.compared"]),
    ("The goalkeeper looks 10 cm taller than the 1.9 m crossbar.", []),
    # ... and a mass from a multiple.
    ("The dog looks five times heavier than the 40 kg sack.", ["mass.compared"]),
    ("The dog looks twice as heavy as the 20 kg sack, so about 40 kg.", []),
    # Denied, it is no claim.
    ("The goalkeeper could not be a metre taller than the 2.1 m crossbar.", []),
])
def test_sizes_through_comparison(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,expected", [
    # "makes him N tall": the object pronoun is whose height it is.
    ("The referee stands by the 2 m door frame. His head is well above the lintel, which makes "
     "him about 3.3 m tall.", ["height.person"]),
    ("A man stands in the road beside a box van. Using the van for scale, its roof is about "
     "2.6 m up and his head is above the roofline, which makes him about 3.2 m tall.",
     ["height.person"]),
    ("The referee stands by the 2 m door frame. His head is just below the lintel, which makes "
     "him about 1.9 m tall.", []),
])
def test_makes_him(guardrail, reasoning, expected):
    assert fired(guardrail, reasoning) == expected


@pytest.mark.parametrize("reasoning,answer,question,expected", [
    # A separation is not a size, even in a sentence that says how tall someone is ...
    ("A child, perhaps 1.2 m tall, darts out and halts about 3 m from the kerb.", "See above.",
     None, []),
    # ... while a size still is one.
    ("A child darts out; she is perhaps 2.4 m tall.", "See above.", None, ["height.child"]),
    # "It" after a sentence naming a carrier and what it carries is the carrier.
    ("A forklift of about 4 t, carrying a pallet of 1 t, reverses to the door. It weighs "
     "about 5 t with its load.", "See above.", None, []),
    # A count of the same thing that "also" adds, in the next sentence, joins the list ...
    ("Inside the circle there are four defenders in red. There are also two attacking players "
     "in blue.", "6", "How many players are inside the circle?", []),
    # ... a count of something else does not.
    ("Inside the circle there are four defenders in red. There are also two umpires.", "6",
     "How many defenders are inside the circle?", ["answer.count_mismatch"]),
])
def test_separations_carriers_and_added_counts(guardrail, reasoning, answer, question, expected):
    assert fired(guardrail, reasoning, answer, question) == expected


@pytest.mark.parametrize("reasoning,question,expected", [
    # Two marks of a course at two moments, in different sentences.
    ("The speed skater in green passes the 100 m mark at about 1.5 s, already clear. She holds her "
     "line through the bend and reaches the 300 m mark at 3.5 s.", None, ["kinematics.speed"]),
    ("The speed skater in green passes the 100 m mark at about 1.5 s, already clear. She holds her "
     "line through the bend and reaches the 300 m mark at 19.5 s.", None, []),
    # A race's start and its finish line, the race's length from the question; the sentences
    # name no runner, the question does.
    ("The starting gun fires at 0.4 s. Lane 3 is quickest away. Lane 3 crosses the line first at "
     "5.4 s, a clear metre up.", "Which sprinter wins the 100 m final?", ["kinematics.speed"]),
    ("The starting gun fires at 0.4 s. Lane 3 is quickest away. Lane 3 crosses the line first at "
     "10.4 s, a clear metre up.", "Which sprinter wins the 100 m final?", []),
    # A start and an arrival at the end of a route whose length is said.
    ("The shuttle robot waits at the end of the 50 m corridor. It sets off at about 2.0 s, "
     "humming. It reaches the far end of the corridor at about 5.0 s and docks.", None,
     ["kinematics.speed"]),
    ("The shuttle robot waits at the end of the 50 m corridor. It sets off at about 2.0 s, "
     "humming. It reaches the far end of the corridor at about 30.0 s and docks.", None, []),
    # A start and an arrival with no route length: nothing to derive.
    ("The shuttle robot sets off at about 2.0 s. It reaches the charger at about 3.0 s.", None,
     []),
    # A negation in another clause of the start's sentence does not dismiss the route ...
    ("The humanoid sets off from the start line at 1.0 s with a calm gait; it doesn't "
     "jog. It crosses the 20 m tape at 3.0 s.", None, ["kinematics.speed"]),
])
def test_routes_between_moments(guardrail, reasoning, question, expected):
    assert fired(guardrail, reasoning, "See above.", question) == expected


@pytest.mark.parametrize("reasoning,answer,expected", [
    # A list that enumerates what is counted, item by item, with no total ...
    ("Watching the gate from the left: a courier with a trolley at 2 s, a nurse at 6 s, two "
     "schoolboys together at 9 s, and finally a cyclist pushing her bike at 14 s.", "4",
     ["answer.count_mismatch"]),
    ("Watching the gate from the left: a courier with a trolley at 2 s, a nurse at 6 s, two "
     "schoolboys together at 9 s, and finally a cyclist pushing her bike at 14 s.", "5", []),
    # ... or a run of moments, one per item.
    ("The gate lets people through at about 1.5 s, 4.0 s, 7.5 s and 11.0 s, closing in between.",
     "3", ["answer.count_mismatch"]),
    ("The gate lets people through at about 1.5 s, 4.0 s, 7.5 s and 11.0 s, closing in between.",
     "4", []),
    # The answer's count said elsewhere as a count: the list is not the total.
    ("Watching the gate from the left: a courier with a trolley at 2 s, a nurse at 6 s, two "
     "schoolboys together at 9 s, and a cyclist at 14 s. Only 3 people go through; the courier "
     "turns back.", "3", []),
])
def test_enumerated_lists(guardrail, reasoning, answer, expected):
    assert fired(guardrail, reasoning, answer, "How many people go through the gate?") == expected
